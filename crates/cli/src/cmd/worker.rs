//! `greenlab worker`: join an existing study from any machine that reaches its storage.
//!
//! A worker runs the objective stored in the study. For a command objective that means running
//! a program that whoever can write to the database chose, on this machine, so a worker runs a
//! stored command only when its user allows it: by passing the same command after `--`, or with
//! `--trust-stored-command`. It prints the command before running anything.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use greenlab_store::redact_url;
use greenlab_tune::config::{ObjectiveKind, StudyConfig};
use greenlab_tune::study::Study;

use crate::meters::MeterArgs;

use super::tune::{
    Placement, TrainObjectiveFactory, build_objective, build_tracker, interrupted_exit,
    open_storage, print_summary, run_options, train_objective,
};

/// Arguments of `greenlab worker`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the study lives: sqlite:///abs/path.db, postgres://user@host/db (password from
    /// PGPASSWORD or ~/.pgpass), ...
    #[arg(long)]
    pub storage: String,
    /// Name of the study to join.
    #[arg(long)]
    pub study: String,
    /// Worker threads in this process.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    #[command(flatten)]
    pub meter: MeterArgs,
    /// Lease of a running trial in seconds.
    #[arg(long, default_value_t = 60)]
    pub lease_s: u64,
    /// Run the command stored in the study without it being given after `--` (anyone who can
    /// write to the study's database then chooses what this machine runs).
    #[arg(long)]
    pub trust_stored_command: bool,
    #[command(flatten)]
    pub placement: Placement,
    /// The study's objective command, exactly as stored (`{name}` placeholders included); the
    /// worker refuses to run a stored command that differs.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Runs `greenlab worker`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    run_with(args, &train_objective)
}

/// A command line as a shell would take it back (arguments with spaces or quotes quoted).
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%{}".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the worker will run, once the user's permission is checked: the stored command must
/// be the one given after `--`, or `--trust-stored-command` must be set.
pub fn allowed_objective(
    config: &StudyConfig,
    given: &[String],
    trust: bool,
) -> anyhow::Result<String> {
    match config.objective.kind {
        ObjectiveKind::Train => {
            if !given.is_empty() {
                bail!(
                    "study {:?} trains greenlab's built-in networks and runs no command; drop \
                     the command after `--`",
                    config.name
                );
            }
            Ok(format!(
                "greenlab's built-in training with the study's options {}",
                serde_json::Value::Object(config.objective.options.clone())
            ))
        }
        ObjectiveKind::Command => {
            let stored = &config.objective.command;
            if !given.is_empty() && given != stored.as_slice() {
                bail!(
                    "the command given after `--` ({}) is not the command stored in study {:?} \
                     ({}); a worker runs only the study's own command: pass exactly that, or \
                     join a study that runs yours",
                    shell_words(given),
                    config.name,
                    shell_words(stored)
                );
            }
            if given.is_empty() && !trust {
                bail!(
                    "study {:?} runs the command `{}`, which is stored in its database; a worker \
                     runs a stored command only when you allow it, since anyone who can write to \
                     the database chooses it: pass the same command after `--` (greenlab worker \
                     ... -- {}) or give --trust-stored-command",
                    config.name,
                    shell_words(stored),
                    shell_words(stored)
                );
            }
            Ok(shell_words(stored))
        }
    }
}

/// Runs `greenlab worker` with `train` building `kind = "train"` objectives.
pub fn run_with(args: Args, train: &TrainObjectiveFactory) -> anyhow::Result<ExitCode> {
    let storage = open_storage(&args.storage)?;
    let shown = redact_url(&args.storage);
    let study = Study::open(Arc::from(storage), &args.study)
        .with_context(|| format!("cannot join study {:?} in {shown}", args.study))?;
    let what = allowed_objective(study.config(), &args.command, args.trust_stored_command)?;
    eprintln!("worker will run: {what}");
    let tracker = build_tracker(&args.meter, study.config())?;
    let objective = build_objective(
        study.config(),
        Arc::clone(&tracker),
        train,
        args.placement.devices(args.workers),
    )?;
    eprintln!(
        "joined study {:?} in {shown} with {} worker(s)",
        args.study, args.workers
    );
    let options = run_options(args.workers, args.lease_s, tracker, &args.placement);
    let summary = study.run(objective, &options)?;
    print_summary(&study, &summary)?;
    interrupted_exit(&study, &summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(command: &[&str]) -> StudyConfig {
        let mut c = StudyConfig::from_toml(
            "name = \"s\"\n[space]\nx = { type = \"float\", low = 0.0, high = 1.0 }\n[stop]\nn_trials = 1\n",
        )
        .unwrap();
        c.objective.command = command.iter().map(|s| s.to_string()).collect();
        c
    }

    #[test]
    fn a_stored_command_runs_only_when_given_or_trusted() {
        let c = config(&["python", "train.py", "--x", "{x}"]);
        let same: Vec<String> = c.objective.command.clone();
        assert_eq!(
            allowed_objective(&c, &same, false).unwrap(),
            "python train.py --x {x}"
        );
        let e = allowed_objective(&c, &[], false).unwrap_err().to_string();
        assert!(
            e.contains("--trust-stored-command") && e.contains("python train.py --x {x}"),
            "{e}"
        );
        assert!(allowed_objective(&c, &[], true).is_ok());
        let other = vec!["sh".to_string(), "-c".into(), "rm -rf ~".into()];
        let e = allowed_objective(&c, &other, true).unwrap_err().to_string();
        assert!(
            e.contains("'rm -rf ~'") && e.contains("not the command stored"),
            "{e}"
        );
    }
}
