//! The external-command objective: `greenlab tune … -- python train.py --lr {lr}`.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::process::{Command, Stdio};
use std::sync::Arc;

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
pub struct CommandObjective {
    argv: Vec<String>,
    tracker: Arc<Tracker>,
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
        Ok(CommandObjective { argv, tracker })
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
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                ObjectiveError::Failed(format!(
                    "cannot start {:?}: {e}; check the objective command",
                    argv[0]
                ))
            })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (last_json, killed, stderr_tail) = std::thread::scope(|scope| {
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
                            // Pruned (or lease lost): stop the process now to save its energy.
                            let _ = child.kill();
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
        let with_stderr = |msg: String| {
            if stderr_tail.trim().is_empty() {
                msg
            } else {
                format!("{msg}; stderr ends with:\n{stderr_tail}")
            }
        };
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
