//! The external-command objective: `greenlab tune … -- python train.py --lr {lr}`.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use greenlab_meter::{Joules, Measurement, Tracker, WindowId};

use super::objective::{
    ObjectiveError, ObjectiveFunction, ObjectiveOutput, TrialContext, trial_energy_of,
};
use crate::TuneError;
use crate::space::{Params, SearchSpace};
use crate::trial::TrialEnergy;

/// Lines of the command's stderr kept for the failure reason.
const STDERR_TAIL: usize = 15;

/// Runs a command per trial, with `{name}` in its arguments replaced by parameter values
/// (see [`substitute`]), measured by the tracker around the process.
///
/// Protocol: the command prints JSON objects on stdout, one per line, among any other output.
/// The **last** such line holds the final metrics (numbers; `"diverged": true` marks
/// divergence). A line with an integer `"step"` and the study's first metric (for instance
/// `{"step": 3, "accuracy": 0.91}`) is an intermediate value: it is reported to the pruner,
/// with the energy measured so far, and if the trial is pruned the process is killed. A
/// non-zero exit status, a crash, or no JSON line fails the trial with the reason (and the
/// tail of stderr); the study goes on.
///
/// Process tree: the command starts in a process group of its own, and when the trial ends
/// the whole group is killed — at once when it is pruned, its lease is lost or its time limit
/// (`[objective] timeout`) passes; after a grace period of [`INTERRUPT_GRACE`] following a
/// SIGTERM when the run is interrupted; and after the command exits, so that shell wrappers,
/// data-loader workers or background jobs never keep running unmeasured. The command also
/// dies with the worker thread that started it (`PR_SET_PDEATHSIG`), so a worker killed with
/// SIGKILL does not leave it running (its own children stay in the group; a cluster
/// scheduler's cgroup ends those).
///
/// Environment: each trial's command sees `GREENLAB_TRIAL` (the trial number) and
/// `GREENLAB_WORKER` (the worker index in this process), and with [`with_devices`]
/// `CUDA_VISIBLE_DEVICES` set to its worker's device.
///
/// [`with_devices`]: CommandObjective::with_devices
pub struct CommandObjective {
    argv: Vec<String>,
    tracker: Arc<Tracker>,
    devices: Vec<String>,
}

/// How long an interrupted command has between SIGTERM and SIGKILL.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(5);

/// How often the watcher of a command's process group looks at it.
const WATCH_EVERY: Duration = Duration::from_millis(10);

/// Why a command's process group was killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Still running, or exited by itself.
    None = 0,
    /// The pruner stopped it.
    Pruned = 1,
    /// The time limit passed.
    TimedOut = 2,
    /// The run was interrupted (SIGTERM, then SIGKILL after the grace period).
    Interrupted = 3,
    /// The worker lost its lease on the trial.
    Lost = 4,
}

impl Ending {
    fn from_u8(v: u8) -> Ending {
        match v {
            1 => Ending::Pruned,
            2 => Ending::TimedOut,
            3 => Ending::Interrupted,
            4 => Ending::Lost,
            _ => Ending::None,
        }
    }
}

/// A command's process group, named by its leader's pid. The leader is reaped (by
/// `Child::wait`) only after the watcher saw it exit and killed the group, so the group id
/// cannot be reused by another process while it is signalled.
struct Group {
    pgid: libc::pid_t,
}

impl Group {
    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) with a negative pid signals the process group; no memory is shared.
        unsafe {
            libc::kill(-self.pgid, signal);
        }
    }

    /// Whether the leader has exited, without reaping it (`WNOWAIT`).
    fn leader_exited(&self) -> bool {
        // SAFETY: waitid(2) writes only into the zeroed siginfo we own.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                self.pgid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            // An error (ECHILD) means it is already reaped: exited too.
            r != 0 || info.si_pid() != 0
        }
    }
}

impl std::fmt::Debug for CommandObjective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandObjective")
            .field("argv", &self.argv)
            .finish_non_exhaustive()
    }
}

impl CommandObjective {
    /// A command objective for `space`: every `{name}` must name a parameter.
    pub fn new(
        argv: Vec<String>,
        space: &SearchSpace,
        tracker: Arc<Tracker>,
    ) -> Result<CommandObjective, TuneError> {
        if argv.is_empty() {
            return Err(TuneError::InvalidConfig(
                "no objective command; give one after `--` or in [objective] command".into(),
            ));
        }
        let probe: Params = space
            .params
            .iter()
            .map(|(k, d)| (k.clone(), d.from_unit(0.5)))
            .collect();
        for arg in &argv {
            substitute(arg, &probe)?;
        }
        Ok(CommandObjective {
            argv,
            tracker,
            devices: Vec::new(),
        })
    }

    /// Gives worker `i` of this process the device `devices[i % len]`: its trials' commands
    /// run with `CUDA_VISIBLE_DEVICES` set to it (one GPU per worker on a multi-GPU node).
    pub fn with_devices(mut self, devices: Vec<String>) -> CommandObjective {
        self.devices = devices;
        self
    }

    /// The command line for `params`.
    pub fn command_line(&self, params: &Params) -> Result<Vec<String>, TuneError> {
        self.argv.iter().map(|a| substitute(a, params)).collect()
    }
}

/// Replaces `{name}` by the parameter's value, where `name` looks like an identifier
/// (letters, digits, `_`, `-`, `.`); any other brace, as in inline JSON, is kept as written, and
/// `{{` / `}}` are literal braces. An identifier that is not a parameter is an error.
pub fn substitute(template: &str, params: &Params) -> Result<String, TuneError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('{')
            && let Some(end) = tail.find('}')
        {
            let name = &tail[1..end];
            let is_name = !name.is_empty()
                && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if is_name {
                let value = params.get(name).ok_or_else(|| {
                    TuneError::InvalidConfig(format!(
                        "the command names {{{name}}}, which is not a parameter of the search \
                         space (parameters: {})",
                        params.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                out.push_str(&value.to_string());
                rest = &tail[end + 1..];
                continue;
            }
        }
        out.push_str(&tail[..1]);
        rest = &tail[1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Ends the group for `why`: SIGKILL, or for an interrupt SIGTERM (the watcher sends SIGKILL
/// after [`INTERRUPT_GRACE`]). The first reason recorded stands.
fn end_group(group: &Group, ending: &AtomicU8, why: Ending) {
    if ending
        .compare_exchange(
            Ending::None as u8,
            why as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        )
        .is_err()
    {
        return;
    }
    group.signal(if why == Ending::Interrupted {
        libc::SIGTERM
    } else {
        libc::SIGKILL
    });
}

/// Watches a command's process group until its leader exits, then kills what is left of the
/// group; meanwhile ends it when the deadline passes, the run is cancelled or the lease lost.
fn watch(
    group: &Group,
    ending: &AtomicU8,
    deadline: Option<Instant>,
    cancel: &AtomicBool,
    lost: &AtomicBool,
) {
    let mut term_sent: Option<Instant> = None;
    loop {
        if group.leader_exited() {
            // Whatever the leader left behind in its group (a shell's children, loader
            // workers, background jobs) goes with it.
            group.signal(libc::SIGKILL);
            return;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            end_group(group, ending, Ending::TimedOut);
        } else if lost.load(Ordering::Relaxed) {
            end_group(group, ending, Ending::Lost);
        } else if cancel.load(Ordering::Relaxed) {
            end_group(group, ending, Ending::Interrupted);
        }
        if Ending::from_u8(ending.load(Ordering::SeqCst)) == Ending::Interrupted {
            let sent = *term_sent.get_or_insert_with(Instant::now);
            if sent.elapsed() >= INTERRUPT_GRACE {
                group.signal(libc::SIGKILL);
            }
        }
        std::thread::sleep(WATCH_EVERY);
    }
}

/// Energy windows around the process: one per segment between intermediate reports, so the
/// cumulative energy at each step is known.
struct Segments<'a> {
    tracker: &'a Tracker,
    open: Option<WindowId>,
    done: Vec<Measurement>,
    /// Why a segment could not be measured (its energy, and so the trial's, is unknown).
    failed: Option<String>,
}

impl Segments<'_> {
    /// Closes the open segment, opens the next, and returns the trial's cumulative attributed
    /// energy so far (`None` once any segment is unknown).
    fn cut(&mut self) -> Option<Joules> {
        self.close();
        self.open = self.tracker.begin("trial segment").ok();
        self.attributed()
    }

    fn close(&mut self) {
        if let Some(id) = self.open.take() {
            match self.tracker.end(id) {
                Ok(m) => self.done.push(m),
                Err(e) => self.failed = Some(format!("the energy meter failed: {e}")),
            }
        } else if self.failed.is_none() {
            self.failed = Some("the energy meter could not open a window".to_owned());
        }
    }

    fn attributed(&self) -> Option<Joules> {
        if self.failed.is_some() {
            return None;
        }
        self.done.iter().map(|m| m.attributed).sum()
    }

    fn finish(mut self) -> Option<TrialEnergy> {
        self.close();
        let mut energy = trial_energy_of(&self.done);
        if let Some(why) = self.failed {
            // A segment was lost: the sum of the others would be a partial figure.
            energy.total = None;
            energy.attributed = None;
            energy.unknown = Some(why);
        }
        Some(energy)
    }
}

impl ObjectiveFunction for CommandObjective {
    fn run(
        &self,
        params: &Params,
        ctx: &mut TrialContext<'_>,
    ) -> Result<ObjectiveOutput, ObjectiveError> {
        let argv = self
            .command_line(params)
            .map_err(|e| ObjectiveError::Failed(e.to_string()))?;
        let metric = ctx
            .objectives()
            .first()
            .map(|o| o.metric.clone())
            .unwrap_or_else(|| "accuracy".into());
        let mut segments = Segments {
            tracker: &self.tracker,
            open: self.tracker.begin("trial").ok(),
            done: Vec::new(),
            failed: None,
        };
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("GREENLAB_TRIAL", ctx.number().to_string())
            .env("GREENLAB_WORKER", ctx.worker_index().to_string())
            .process_group(0);
        if !self.devices.is_empty() {
            let device = &self.devices[ctx.worker_index() % self.devices.len()];
            command.env("CUDA_VISIBLE_DEVICES", device);
        }
        // SAFETY: the closure runs in the child between fork and exec and calls only
        // async-signal-safe functions (prctl, getppid).
        let parent = std::process::id() as libc::pid_t;
        unsafe {
            command.pre_exec(move || {
                // Die with the thread that started us; and if it already died, do not start.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("the worker died"));
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| {
            ObjectiveError::Failed(format!(
                "cannot start {:?}: {e}; check the objective command",
                argv[0]
            ))
        })?;
        let group = Group {
            pgid: child.id() as libc::pid_t,
        };
        let (cancel, lost) = ctx.stop_flags();
        let deadline = ctx.deadline();
        let ending = AtomicU8::new(Ending::None as u8);
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (last_json, killed, stderr_tail) = std::thread::scope(|scope| {
            let (group, ending) = (&group, &ending);
            scope.spawn(move || watch(group, ending, deadline, cancel, lost));
            let tail = scope.spawn(move || {
                let mut tail = VecDeque::new();
                if let Some(err) = stderr {
                    for line in BufReader::new(err).lines().map_while(Result::ok) {
                        if tail.len() == STDERR_TAIL {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                }
                tail.into_iter().collect::<Vec<_>>().join("\n")
            });
            let mut last_json: Option<serde_json::Map<String, serde_json::Value>> = None;
            let mut killed = false;
            if let Some(out) = stdout {
                let mut reader = BufReader::new(out);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let Ok(serde_json::Value::Object(obj)) =
                        serde_json::from_str::<serde_json::Value>(line.trim())
                    else {
                        continue;
                    };
                    let step = obj.get("step").and_then(|s| s.as_u64());
                    let value = obj.get(&metric).and_then(|v| v.as_f64());
                    last_json = Some(obj);
                    if let (Some(step), Some(value)) = (step, value) {
                        let energy = segments.cut();
                        if ctx.report(step as u32, value, energy) == ControlFlow::Break(()) {
                            // Pruned, lease lost, interrupted or out of time: stop the whole
                            // process group now to save its energy.
                            let why = if ctx.is_cancelled() {
                                Ending::Interrupted
                            } else if ctx.is_timed_out() {
                                Ending::TimedOut
                            } else if ctx.was_pruned() {
                                Ending::Pruned
                            } else {
                                Ending::Lost
                            };
                            end_group(group, ending, why);
                            killed = true;
                            // Drain what is left so the child is not blocked on a full pipe.
                            let _ = std::io::copy(
                                &mut reader.by_ref().take(1 << 20),
                                &mut std::io::sink(),
                            );
                            break;
                        }
                    }
                }
            }
            let stderr_tail = tail.join().unwrap_or_default();
            (last_json, killed, stderr_tail)
        });
        let status = child.wait().map_err(|e| {
            ObjectiveError::Failed(format!("lost track of the objective process: {e}"))
        })?;
        let energy = segments.finish();
        let ending = Ending::from_u8(ending.load(Ordering::SeqCst));
        let killed = killed || ending != Ending::None;
        let with_stderr = |msg: String| {
            if stderr_tail.trim().is_empty() {
                msg
            } else {
                format!("{msg}; stderr ends with:\n{stderr_tail}")
            }
        };
        if ending == Ending::TimedOut {
            ctx.mark_timed_out();
            return Err(ObjectiveError::Failed(with_stderr(
                "objective command ran past its time limit ([objective] timeout); its process \
                 group was killed"
                    .to_string(),
            )));
        }
        if ending == Ending::Interrupted {
            return Err(ObjectiveError::Failed(
                "objective command stopped: the run was interrupted".to_string(),
            ));
        }
        if !killed && !status.success() {
            let how = match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".to_string(),
            };
            return Err(ObjectiveError::Failed(with_stderr(format!(
                "objective command {how}"
            ))));
        }
        let Some(obj) = last_json else {
            if killed {
                return Ok(ObjectiveOutput {
                    energy,
                    ..Default::default()
                });
            }
            return Err(ObjectiveError::Failed(with_stderr(
                "objective command printed no JSON metrics line on stdout; print one as its \
                 last line, e.g. {\"accuracy\": 0.91}"
                    .to_string(),
            )));
        };
        let metrics: BTreeMap<String, f64> = obj
            .iter()
            .filter(|(k, _)| k.as_str() != "step")
            .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
            .collect();
        let diverged = obj
            .get("diverged")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        Ok(ObjectiveOutput {
            metrics,
            energy,
            diverged,
        })
    }
}
