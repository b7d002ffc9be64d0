//! A full factorial design over architecture factors, run as a durable study.
//!
//! Every cell × repetition becomes a waiting trial of a study in the storage, enqueued once in
//! a seeded random order (the run order the paper randomised). Workers claim waiting trials, so
//! an interrupted run resumes where it stopped and several processes (or machines, with
//! PostgreSQL) can share the work. A trial whose worker died is failed by its expired lease and
//! its design point is enqueued again (at most `max_attempts` times).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use greenlab_train::{Control, RunStatus, train_interruptible};
use greenlab_tune::study::{trial_energy_of, was_interrupted};
use greenlab_tune::{ParamValue, Params, Storage, Trial, TrialEnergy, TrialOutcome, TrialState};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::ExperimentError;
use crate::objective::TrainObjective;

type Result<T> = std::result::Result<T, ExperimentError>;

/// The design: factors and their levels, repetitions, seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Design {
    /// Study name in the storage.
    pub name: String,
    /// Factor name → levels (training parameter names: `conv`, `linear`, `relu`, `lr`, ...).
    pub factors: BTreeMap<String, Vec<ParamValue>>,
    /// Runs per cell.
    pub repetitions: usize,
    /// Seeds the run order (and, through `rep`, each run's training seed).
    pub seed: u64,
    /// How often a design point is retried after its worker died or it failed.
    #[serde(default = "default_attempts")]
    pub max_attempts: usize,
    /// Hyperparameter configurations every cell is run with (each `repetitions` times), e.g.
    /// the paper's 16 random (lr, β1, β2) draws per cell; none: the base settings only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configurations: Vec<Params>,
    /// Parameters recorded with each run but not applied to its training (the paper's code
    /// logged a sampled β2 and trained with 0.999).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logged_only: Vec<String>,
}

fn default_attempts() -> usize {
    2
}

impl Design {
    /// The paper's design: conv {1, 4} × linear {3, 7} × ReLU {on, off}.
    pub fn paper(name: &str, repetitions: usize, seed: u64) -> Design {
        let mut factors = BTreeMap::new();
        factors.insert("conv".into(), vec![ParamValue::Int(1), ParamValue::Int(4)]);
        factors.insert(
            "linear".into(),
            vec![ParamValue::Int(3), ParamValue::Int(7)],
        );
        factors.insert(
            "relu".into(),
            vec![ParamValue::Bool(true), ParamValue::Bool(false)],
        );
        Design {
            name: name.into(),
            factors,
            repetitions,
            seed,
            max_attempts: default_attempts(),
            configurations: Vec::new(),
            logged_only: Vec::new(),
        }
    }

    /// Checks the design: at least one factor, each with at least two distinct levels, at
    /// least one repetition (two are needed for any test; the analysis says so).
    pub fn validate(&self) -> Result<()> {
        if self.factors.is_empty() {
            bail!("the factorial design has no factors; add a [factors] table, e.g. conv = [1, 4]");
        }
        for (name, levels) in &self.factors {
            if levels.len() < 2 {
                bail!(
                    "factor {name} has {} level(s); a factor needs at least two levels to have an effect",
                    levels.len()
                );
            }
            for (i, a) in levels.iter().enumerate() {
                if levels[..i].contains(a) {
                    bail!("factor {name} lists level {a} twice");
                }
            }
        }
        if self.repetitions == 0 {
            bail!("repetitions must be at least 1");
        }
        Ok(())
    }

    /// Every cell × repetition, in the seeded random run order.
    pub fn points(&self) -> Vec<Params> {
        let mut points: Vec<Params> = vec![Params::new()];
        for (name, levels) in &self.factors {
            points = points
                .into_iter()
                .flat_map(|p| {
                    levels.iter().map(move |l| {
                        let mut q = p.clone();
                        q.insert(name.clone(), l.clone());
                        q
                    })
                })
                .collect();
        }
        let configurations: Vec<Params> = if self.configurations.is_empty() {
            vec![Params::new()]
        } else {
            self.configurations.clone()
        };
        let reps = self.repetitions;
        let mut all: Vec<Params> = points
            .into_iter()
            .flat_map(|p| {
                configurations
                    .iter()
                    .enumerate()
                    .flat_map(move |(c, config)| {
                        let p = p.clone();
                        (0..reps).map(move |r| {
                            let mut q = p.clone();
                            q.extend(config.iter().map(|(k, v)| (k.clone(), v.clone())));
                            // Distinct per (configuration, repetition): it seeds the weights.
                            q.insert("rep".into(), ParamValue::Int((c * reps + r) as i64));
                            q
                        })
                    })
            })
            .collect();
        all.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(self.seed));
        all
    }
}

/// One finished run of the design.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactorialRun {
    /// Factor levels (and `rep`).
    pub params: Params,
    /// Final test accuracy.
    pub accuracy: f64,
    /// Energy of the run (training and evaluation).
    pub energy: TrialEnergy,
    /// Trial number in the study.
    pub trial: u64,
}

/// Progress callback: (finished runs, total runs, the trial just finished).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, &Trial);

/// Runs (or resumes) the design to completion in this process and returns every finished run.
/// Setting `interrupt` (Ctrl-C in the cli) stops the run in progress (recorded as interrupted,
/// run again on resume) and returns [`ExperimentError::Interrupted`].
pub fn run(
    storage: &dyn Storage,
    design: &Design,
    objective: &TrainObjective,
    worker: &str,
    interrupt: &AtomicBool,
    progress: Progress<'_>,
) -> Result<Vec<FactorialRun>> {
    design.validate()?;
    let spec = serde_json::to_string(&serde_json::json!({
        "design": design,
        "training": objective.identity(),
    }))
    .map_err(|source| ExperimentError::Serialise {
        what: "the design",
        source,
    })?;
    let study = storage
        .create_study(&design.name, &spec)
        .map_err(ExperimentError::study(format!(
            "a factorial study named {:?} with another design or other training settings is in \
             the storage; give this one another name, --out or --storage",
            design.name
        )))?;
    let points = design.points();
    if storage.trials(study.id)?.is_empty() {
        for p in &points {
            storage.enqueue_trial(study.id, p)?;
        }
    }
    let lease = Duration::from_secs(120);
    loop {
        if interrupt.load(Ordering::SeqCst) {
            let done = storage
                .trials(study.id)?
                .iter()
                .filter(|t| t.state == TrialState::Complete)
                .count();
            return Err(ExperimentError::Interrupted(format!(
                "{} has {done} of {} runs done; rerun the same command to resume",
                design.name,
                points.len()
            )));
        }
        storage.reap_expired(study.id)?;
        requeue_failed(storage, study.id, design, &points)?;
        let Some(trial) = storage.claim_waiting(study.id, worker, lease)? else {
            break;
        };
        let outcome = run_one(storage, objective, design, &trial, worker, lease, interrupt);
        storage.finish_trial(trial.id, &outcome)?;
        let trials = storage.trials(study.id)?;
        let done = trials
            .iter()
            .filter(|t| t.state == TrialState::Complete)
            .count();
        if let Some(t) = trials.iter().find(|t| t.id == trial.id) {
            progress(done, points.len(), t);
        }
    }
    let trials = storage.trials(study.id)?;
    if trials.iter().any(|t| t.state == TrialState::Running) {
        return Err(ExperimentError::Busy(format!(
            "other workers still hold running trials of {}; rerun when they finish (or their leases expire) to analyse the whole design",
            design.name
        )));
    }
    Ok(finished_runs(&trials))
}

/// The complete runs of a factorial study's trials.
pub fn finished_runs(trials: &[Trial]) -> Vec<FactorialRun> {
    trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .filter_map(|t| {
            Some(FactorialRun {
                params: t.params.clone(),
                accuracy: t.values.as_ref()?.first().copied()?,
                energy: t.energy.clone()?,
                trial: t.number,
            })
        })
        .collect()
}

fn requeue_failed(
    storage: &dyn Storage,
    study: i64,
    design: &Design,
    points: &[Params],
) -> Result<()> {
    let trials = storage.trials(study)?;
    for p in points {
        let same: Vec<&Trial> = trials.iter().filter(|t| &t.params == p).collect();
        let settled = same.iter().any(|t| {
            matches!(
                t.state,
                TrialState::Complete
                    | TrialState::Waiting
                    | TrialState::Running
                    | TrialState::Diverged
            )
        });
        // An interrupted run (Ctrl-C) is run again without using up an attempt.
        let failed = same.iter().any(|t| t.state == TrialState::Failed);
        let attempts = same
            .iter()
            .filter(|t| t.state == TrialState::Failed && !was_interrupted(t))
            .count();
        if !settled && failed && attempts < design.max_attempts {
            storage.enqueue_trial(study, p)?;
        }
    }
    Ok(())
}

fn run_one(
    storage: &dyn Storage,
    objective: &TrainObjective,
    design: &Design,
    trial: &Trial,
    worker: &str,
    lease: Duration,
    interrupt: &AtomicBool,
) -> TrialOutcome {
    let failed = |message: String| {
        let mut attrs = BTreeMap::new();
        attrs.insert("error".to_string(), serde_json::Value::String(message));
        TrialOutcome {
            state: TrialState::Failed,
            values: None,
            energy: None,
            attrs,
        }
    };
    let mut applied = trial.params.clone();
    for name in &design.logged_only {
        applied.remove(name);
    }
    let config = match objective.config_for(&applied) {
        Ok(c) => c,
        Err(e) => return failed(e.to_string()),
    };
    // Renew the lease while training runs; the channel closes when training is done.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let result = std::thread::scope(|scope| {
        scope.spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(lease / 3) {
                if storage.heartbeat(trial.id, worker, lease).is_err() {
                    break;
                }
            }
        });
        let mut step = 0u32;
        // Attributed energy so far; unknown from the first unmeasured window on, never 0.
        let mut cumulative = Some(greenlab_meter::Joules(0.0));
        let mut callback = |epoch: &greenlab_train::EpochReport| {
            step += 1;
            for m in std::iter::once(&epoch.energy).chain(epoch.evaluation.as_ref()) {
                cumulative = cumulative.zip(m.attributed).map(|(a, b)| a + b);
            }
            if let Some(acc) = epoch.test_accuracy {
                let _ = storage.report_intermediate(trial.id, step, acc, cumulative.map(|c| c.0));
            }
            Control::Continue
        };
        let r = train_interruptible(
            objective.engine.as_ref(),
            &objective.split,
            &config,
            &objective.tracker,
            &mut callback,
            interrupt,
        );
        drop(done_tx);
        r
    });
    match result {
        Err(e) => failed(e.to_string()),
        Ok(r) => {
            let mut attrs = BTreeMap::new();
            attrs.insert("duration_s".into(), serde_json::json!(r.total_duration.0));
            attrs.insert(
                "images_per_second".into(),
                serde_json::json!(r.images_per_second()),
            );
            attrs.insert("parameters".into(), serde_json::json!(r.parameters));
            attrs.insert("forward_flops".into(), serde_json::json!(r.forward_flops));
            attrs.insert("network".into(), serde_json::json!(r.network));
            let windows: Vec<greenlab_meter::Measurement> = r
                .epochs
                .iter()
                .flat_map(|e| std::iter::once(&e.energy).chain(e.evaluation.as_ref()))
                .cloned()
                .collect();
            let energy = Some(trial_energy_of(&windows));
            if let RunStatus::Interrupted { epoch, step } = r.status {
                attrs.insert(
                    "error".into(),
                    serde_json::json!(format!("interrupted at epoch {epoch}, step {step}")),
                );
                attrs.insert("interrupted".into(), serde_json::Value::Bool(true));
                return TrialOutcome {
                    state: TrialState::Failed,
                    values: None,
                    energy,
                    attrs,
                };
            }
            if r.diverged() {
                attrs.insert(
                    "error".into(),
                    serde_json::json!("training diverged (NaN or infinite loss)"),
                );
                return TrialOutcome {
                    state: TrialState::Diverged,
                    values: None,
                    energy,
                    attrs,
                };
            }
            match r.final_test_accuracy {
                Some(acc) => TrialOutcome {
                    state: TrialState::Complete,
                    values: Some(vec![acc]),
                    energy,
                    attrs,
                },
                None => failed("the run produced no test accuracy".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_design_has_eight_cells_in_a_seeded_order() {
        let d = Design::paper("f", 3, 7);
        d.validate().unwrap();
        let p = d.points();
        assert_eq!(p.len(), 24);
        assert_eq!(p, d.points());
        assert_ne!(p, Design::paper("f", 3, 8).points());
        let mut distinct = p.clone();
        distinct.sort_by_key(|x| format!("{x:?}"));
        distinct.dedup();
        assert_eq!(distinct.len(), 24);
    }

    #[test]
    fn configurations_multiply_the_cells_and_get_distinct_repetitions() {
        let mut d = Design::paper("f", 2, 7);
        let config = |lr: f64| -> Params { [("lr".to_string(), ParamValue::Float(lr))].into() };
        d.configurations = vec![config(1e-3), config(1e-4), config(5e-4)];
        let p = d.points();
        // 8 cells × 3 configurations × 2 repetitions.
        assert_eq!(p.len(), 48);
        let cell = |q: &Params| format!("{:?}{:?}{:?}", q["conv"], q["linear"], q["relu"]);
        let first = cell(&p[0]);
        let mut reps: Vec<i64> = p
            .iter()
            .filter(|q| cell(q) == first)
            .map(|q| match q["rep"] {
                ParamValue::Int(r) => r,
                _ => -1,
            })
            .collect();
        reps.sort();
        assert_eq!(reps, (0..6).collect::<Vec<_>>());
        assert_eq!(
            p.iter()
                .filter(|q| q["lr"] == ParamValue::Float(1e-4))
                .count(),
            16
        );
    }

    #[test]
    fn degenerate_designs_are_rejected() {
        let mut d = Design::paper("f", 3, 7);
        d.factors
            .insert("relu".into(), vec![ParamValue::Bool(true)]);
        assert!(
            d.validate()
                .unwrap_err()
                .to_string()
                .contains("at least two levels")
        );
        let mut d = Design::paper("f", 0, 7);
        assert!(d.validate().is_err());
        d.factors.clear();
        assert!(d.validate().is_err());
    }
}
