//! The worker loop on the in-memory storage, with synthetic and external-command objectives.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use greenlab_meter::{Joules, Seconds, Source, Tracker};
use greenlab_tune::config::StudyConfig;
use greenlab_tune::process::ProcessTable;
use greenlab_tune::study::{
    CommandObjective, ObjectiveError, ObjectiveFunction, ObjectiveOutput, RunOptions, StopReason,
    Study, TrialContext,
};
use greenlab_tune::{
    MemoryStorage, ParamValue, Params, Storage, TrialEnergy, TrialState, Worker, WorkerProcess,
};

fn config(extra: &str) -> StudyConfig {
    StudyConfig::from_toml(&format!(
        "name = \"s\"\n[space]\nx = {{ type = \"float\", low = -1.0, high = 1.0 }}\n{extra}"
    ))
    .unwrap()
}

fn energy(j: f64) -> Option<TrialEnergy> {
    Some(TrialEnergy {
        total: Some(Joules(j)),
        attributed: Some(Joules(j)),
        source: Source::Estimated,
        duration: Seconds(0.1),
        domains: Vec::new(),
        unknown: None,
        warnings: Vec::new(),
    })
}

fn accuracy(p: &Params) -> f64 {
    let x = p["x"].as_f64().unwrap();
    1.0 - x * x
}

/// 1 - x², costing 10 J.
fn quadratic(p: &Params, _ctx: &mut TrialContext<'_>) -> Result<ObjectiveOutput, ObjectiveError> {
    Ok(ObjectiveOutput {
        metrics: [("accuracy".to_string(), accuracy(p))].into(),
        energy: energy(10.0),
        diverged: false,
    })
}

fn storage() -> Arc<dyn Storage> {
    Arc::new(MemoryStorage::new())
}

#[test]
fn four_workers_run_exactly_n_trials() {
    let study = Study::create(storage(), config("[stop]\nn_trials = 25\n")).unwrap();
    let options = RunOptions {
        workers: 4,
        ..Default::default()
    };
    let summary = study.run(Arc::new(quadratic), &options).unwrap();
    assert_eq!(summary.trials_run, 25);
    assert_eq!(summary.stop, StopReason::TrialLimit(25));
    let trials = study.trials().unwrap();
    assert_eq!(trials.len(), 25);
    for t in &trials {
        assert_eq!(t.state, TrialState::Complete);
        let v = t.values.as_ref().unwrap()[0];
        assert!((v - accuracy(&t.params)).abs() < 1e-12);
        assert_eq!(t.energy.as_ref().unwrap().total, Some(Joules(10.0)));
    }
}

#[test]
fn failing_and_panicking_objectives_fail_their_trial_only() {
    let study = Study::create(storage(), config("[stop]\nn_trials = 9\n")).unwrap();
    let objective = |p: &Params, ctx: &mut TrialContext<'_>| match ctx.number() % 3 {
        0 => Err(ObjectiveError::Failed("out of memory".into())),
        1 => panic!("boom"),
        _ => quadratic(p, ctx),
    };
    let summary = study
        .run(Arc::new(objective), &RunOptions::default())
        .unwrap();
    assert_eq!(summary.trials_run, 9);
    for t in study.trials().unwrap() {
        let error = t.attrs.get("error").and_then(|e| e.as_str()).unwrap_or("");
        match t.number % 3 {
            0 => {
                assert_eq!(t.state, TrialState::Failed);
                assert_eq!(error, "out of memory");
            }
            1 => {
                assert_eq!(t.state, TrialState::Failed);
                assert!(error.contains("panicked: boom"), "{error}");
            }
            _ => assert_eq!(t.state, TrialState::Complete),
        }
    }
}

#[test]
fn missing_metric_and_divergence_are_recorded() {
    let study = Study::create(storage(), config("[stop]\nn_trials = 2\n")).unwrap();
    let objective = |_p: &Params, ctx: &mut TrialContext<'_>| {
        Ok(if ctx.number() == 0 {
            ObjectiveOutput {
                metrics: [("loss".to_string(), 0.3)].into(),
                ..Default::default()
            }
        } else {
            ObjectiveOutput {
                metrics: [("accuracy".to_string(), 0.1)].into(),
                diverged: true,
                ..Default::default()
            }
        })
    };
    study
        .run(Arc::new(objective), &RunOptions::default())
        .unwrap();
    let trials = study.trials().unwrap();
    assert_eq!(trials[0].state, TrialState::Failed);
    let error = trials[0].attrs["error"].as_str().unwrap();
    assert!(
        error.contains("no metric accuracy") && error.contains("loss"),
        "{error}"
    );
    assert_eq!(trials[1].state, TrialState::Diverged);
}

#[test]
fn energy_budget_stops_the_study() {
    let study = Study::create(
        storage(),
        config("[stop]\nn_trials = 100\nenergy_budget = \"35 J\"\n"),
    )
    .unwrap();
    let summary = study
        .run(Arc::new(quadratic), &RunOptions::default())
        .unwrap();
    // 10 J per trial: after 4 trials 40 J ≥ 35 J.
    assert_eq!(summary.trials_run, 4);
    assert_eq!(
        summary.stop,
        StopReason::EnergyBudget {
            budget: 35.0,
            spent: 40.0
        }
    );
}

#[test]
fn an_energy_budget_on_unknown_energy_stops_and_says_why() {
    let study = Study::create(
        storage(),
        config("[stop]\nn_trials = 100\nenergy_budget = \"35 J\"\n"),
    )
    .unwrap();
    let unmeasured = |p: &Params, _ctx: &mut TrialContext<'_>| {
        let mut e = energy(10.0);
        if let Some(e) = &mut e {
            e.total = None;
            e.attributed = None;
            e.unknown = Some("psys: the counter froze at 1.000 s".into());
        }
        Ok(ObjectiveOutput {
            metrics: [("accuracy".to_string(), accuracy(p))].into(),
            energy: e,
            diverged: false,
        })
    };
    let summary = study
        .run(Arc::new(unmeasured), &RunOptions::default())
        .unwrap();
    assert_eq!(
        summary.trials_run, 1,
        "never run on as if the trial cost 0 J"
    );
    match &summary.stop {
        StopReason::EnergyUnknown { trial, why, .. } => {
            assert_eq!(*trial, 0);
            assert!(why.contains("froze"), "{why}");
        }
        other => panic!("stopped for {other}"),
    }
    assert!(summary.stop.to_string().contains("cannot be kept"));
}

#[test]
fn target_stops_the_study() {
    let study =
        Study::create(storage(), config("[stop]\nn_trials = 500\ntarget = 0.95\n")).unwrap();
    let summary = study
        .run(Arc::new(quadratic), &RunOptions::default())
        .unwrap();
    let StopReason::TargetReached { best, .. } = summary.stop else {
        panic!("expected target stop, got {:?}", summary.stop);
    };
    assert!(best >= 0.95);
    assert!(summary.trials_run < 500);
    let trials = study.trials().unwrap();
    let reached: Vec<_> = trials
        .iter()
        .filter(|t| t.values.as_ref().is_some_and(|v| v[0] >= 0.95))
        .collect();
    assert_eq!(
        reached.len(),
        1,
        "the study stops at the first trial reaching the target"
    );
    assert_eq!(reached[0].number, trials.last().unwrap().number);
}

#[test]
fn median_pruner_stops_bad_trials_through_the_context() {
    let study = Study::create(
        storage(),
        config(
            "[pruner]\nname = \"median\"\noptions = { n_startup_trials = 3 }\n[stop]\nn_trials = 12\n",
        ),
    )
    .unwrap();
    // Trials 0..3 are good; later odd trials are bad from step 1. Each reports 5 steps.
    let objective = |_p: &Params, ctx: &mut TrialContext<'_>| {
        let good = ctx.number() < 3 || ctx.number().is_multiple_of(2);
        let mut steps_run = 0.0;
        for step in 1..=5u32 {
            steps_run += 1.0;
            let value = if good { 0.5 + 0.05 * step as f64 } else { 0.1 };
            if ctx.report(step, value, Some(Joules(steps_run))) == ControlFlow::Break(()) {
                break;
            }
        }
        Ok(ObjectiveOutput {
            metrics: [("accuracy".to_string(), if good { 0.75 } else { 0.1 })].into(),
            energy: energy(steps_run),
            diverged: false,
        })
    };
    study
        .run(Arc::new(objective), &RunOptions::default())
        .unwrap();
    for t in study.trials().unwrap() {
        let bad = t.number >= 3 && t.number % 2 == 1;
        if bad {
            assert_eq!(t.state, TrialState::Pruned, "trial {}", t.number);
            assert_eq!(t.intermediate.len(), 1, "pruned at its first step");
            assert_eq!(t.attrs["pruned_at_step"], serde_json::json!(1));
            assert_eq!(t.energy.as_ref().unwrap().total, Some(Joules(1.0)));
        } else {
            assert_eq!(t.state, TrialState::Complete, "trial {}", t.number);
            assert_eq!(t.intermediate.len(), 5);
        }
    }
}

#[test]
fn enqueued_trials_run_first_and_dead_workers_are_reaped() {
    let storage = storage();
    let study = Study::create(Arc::clone(&storage), config("[stop]\nn_trials = 4\n")).unwrap();
    let id = study.record().id;
    // A worker that died mid-trial (its lease already expired).
    let dead = storage.create_trial(id, "dead", Duration::ZERO).unwrap();
    let mut p = Params::new();
    p.insert("x".into(), ParamValue::Float(0.25));
    let queued = storage.enqueue_trial(id, &p).unwrap();
    // A second process joins the study by name and runs it.
    let joined = Study::open(Arc::clone(&storage), "s").unwrap();
    assert_eq!(joined.config(), study.config());
    let summary = joined
        .run(Arc::new(quadratic), &RunOptions::default())
        .unwrap();
    assert_eq!(
        summary.trials_run, 4,
        "the queued trial and three new ones: the lost trial never had parameters, so it does \
         not count"
    );
    let trials = joined.trials().unwrap();
    assert_eq!(trials.len(), 5);
    let d = trials.iter().find(|t| t.id == dead.id).unwrap();
    assert_eq!(d.state, TrialState::Failed);
    assert!(d.attrs["error"].as_str().unwrap().contains("lease expired"));
    let q = trials.iter().find(|t| t.id == queued.id).unwrap();
    assert_eq!(q.state, TrialState::Complete);
    assert_eq!(q.values, Some(vec![1.0 - 0.0625]));
}

#[test]
fn a_changed_definition_under_the_same_name_is_refused() {
    let storage = storage();
    Study::create(Arc::clone(&storage), config("[stop]\nn_trials = 4\n")).unwrap();
    let other_space = StudyConfig::from_toml(
        "name = \"s\"\n[space]\nx = { type = \"float\", low = -2.0, high = 1.0 }\n[stop]\nn_trials = 4\n",
    )
    .unwrap();
    let err = Study::create(Arc::clone(&storage), other_space).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let other_sampler = config("[sampler]\nname = \"random\"\nseed = 99\n[stop]\nn_trials = 4\n");
    assert!(Study::create(Arc::clone(&storage), other_sampler).is_err());
}

#[test]
fn a_finished_study_can_be_extended_by_its_stopping_rules() {
    let storage = storage();
    let study = Study::create(Arc::clone(&storage), config("[stop]\nn_trials = 4\n")).unwrap();
    study
        .run(Arc::new(quadratic), &RunOptions::default())
        .unwrap();
    let more = Study::create(Arc::clone(&storage), config("[stop]\nn_trials = 6\n")).unwrap();
    assert_eq!(more.record().id, study.record().id, "the same study");
    let summary = more
        .run(Arc::new(quadratic), &RunOptions::default())
        .unwrap();
    assert_eq!(
        (summary.trials_run, summary.stop),
        (2, StopReason::TrialLimit(6))
    );
    assert_eq!(more.trials().unwrap().len(), 6);
}

#[test]
fn grid_study_ends_when_the_grid_is_exhausted() {
    let study = Study::create(
        storage(),
        config("[sampler]\nname = \"grid\"\noptions = { levels = 6 }\n"),
    )
    .unwrap();
    let summary = study
        .run(
            Arc::new(quadratic),
            &RunOptions {
                workers: 3,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(summary.stop, StopReason::SamplerExhausted(6));
    let mut xs: Vec<f64> = study
        .trials()
        .unwrap()
        .iter()
        .map(|t| t.params["x"].as_f64().unwrap())
        .collect();
    xs.sort_by(f64::total_cmp);
    let expected = [-1.0, -0.6, -0.2, 0.2, 0.6, 1.0];
    assert_eq!(xs.len(), 6);
    for (a, b) in xs.iter().zip(expected) {
        assert!((a - b).abs() < 1e-12, "{xs:?}");
    }
}

fn command_study(argv: &[&str], n: u64) -> (Study, Arc<dyn ObjectiveFunction>) {
    let study = Study::create(storage(), config(&format!("[stop]\nn_trials = {n}\n"))).unwrap();
    let objective = CommandObjective::new(
        argv.iter().map(|s| s.to_string()).collect(),
        &study.config().search_space(),
        Arc::new(Tracker::estimate_only()),
    )
    .unwrap();
    (study, Arc::new(objective))
}

#[test]
fn command_objective_reads_the_last_json_line() {
    let (study, objective) = command_study(
        &[
            "sh",
            "-c",
            "echo starting; echo '{\"step\": 1, \"accuracy\": 0.2}'; echo '{\"accuracy\": 0.5, \"x\": {x}}'; echo done",
        ],
        2,
    );
    study.run(objective, &RunOptions::default()).unwrap();
    for t in study.trials().unwrap() {
        assert_eq!(t.state, TrialState::Complete, "{:?}", t.attrs);
        assert_eq!(t.values, Some(vec![0.5]));
        let echoed = t.attrs["metrics"]["x"].as_f64().unwrap();
        // serde_json's fast float parser may differ from the printed value in the last bit.
        let x = t.params["x"].as_f64().unwrap();
        assert!(
            (echoed - x).abs() < 1e-15,
            "{{x}} was substituted: {echoed} vs {x}"
        );
        assert_eq!(t.intermediate.len(), 1, "the step line was reported");
        assert!(t.energy.is_some(), "the process was measured");
    }
}

#[test]
fn command_failures_are_recorded_with_their_reason() {
    let (study, objective) = command_study(&["sh", "-c", "echo 'cuda oom' >&2; exit 3"], 1);
    study.run(objective, &RunOptions::default()).unwrap();
    let t = &study.trials().unwrap()[0];
    assert_eq!(t.state, TrialState::Failed);
    let e = t.attrs["error"].as_str().unwrap();
    assert!(e.contains("status 3") && e.contains("cuda oom"), "{e}");

    let (study, objective) = command_study(&["sh", "-c", "echo hello"], 1);
    study.run(objective, &RunOptions::default()).unwrap();
    let t = &study.trials().unwrap()[0];
    assert_eq!(t.state, TrialState::Failed);
    assert!(
        t.attrs["error"]
            .as_str()
            .unwrap()
            .contains("no JSON metrics line")
    );

    let (study, objective) = command_study(&["/nonexistent/greenlab-objective"], 1);
    study.run(objective, &RunOptions::default()).unwrap();
    let t = &study.trials().unwrap()[0];
    assert_eq!(t.state, TrialState::Failed);
    assert!(t.attrs["error"].as_str().unwrap().contains("cannot start"));
}

#[test]
fn command_placeholders_must_name_parameters() {
    let space = config("[stop]\nn_trials = 1\n").search_space();
    let err = CommandObjective::new(
        vec!["train".into(), "--lr={lr}".into()],
        &space,
        Arc::new(Tracker::estimate_only()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("{lr}"), "{err}");
    let mut p = BTreeMap::new();
    p.insert("x".to_string(), ParamValue::Int(3));
    let sub = |t: &str| greenlab_tune::study::substitute(t, &p).unwrap();
    assert_eq!(sub("{{x}}={x}"), "{x}=3");
    assert_eq!(sub("{\"a\": {x}}"), "{\"a\": 3}");
    assert_eq!(sub("{ x }{}"), "{ x }{}");
}

#[test]
fn cancelling_interrupts_the_running_trial_and_stops_the_run() {
    let study = Study::create(storage(), config("[stop]\nn_trials = 10\n")).unwrap();
    let options = RunOptions::default();
    let cancel = Arc::clone(&options.cancel);
    let objective = move |p: &Params, ctx: &mut TrialContext<'_>| {
        if ctx.number() == 2 {
            // As a Ctrl-C handler would, in the middle of the trial.
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            assert!(ctx.should_stop() && ctx.is_cancelled());
            assert_eq!(
                ctx.report(1, 0.5, Some(Joules(3.0))),
                ControlFlow::Break(())
            );
            return Ok(ObjectiveOutput {
                metrics: [("accuracy".to_string(), 0.5)].into(),
                energy: energy(3.0),
                diverged: false,
            });
        }
        quadratic(p, ctx)
    };
    let summary = study.run(Arc::new(objective), &options).unwrap();
    assert_eq!(summary.stop, StopReason::Cancelled);
    assert_eq!(summary.trials_run, 3);
    let trials = study.trials().unwrap();
    assert_eq!(trials.len(), 3, "no trial starts after the cancel");
    assert_eq!(trials[1].state, TrialState::Complete);
    let t = &trials[2];
    assert_eq!(
        t.state,
        TrialState::Failed,
        "an interrupted trial is not complete"
    );
    assert_eq!(t.attrs["interrupted"], serde_json::json!(true));
    assert!(t.attrs["error"].as_str().unwrap().contains("interrupted"));
    assert_eq!(
        t.energy.as_ref().unwrap().total,
        Some(Joules(3.0)),
        "energy kept"
    );

    // Resuming runs the interrupted point again and does not count it towards n_trials.
    let summary = study
        .run(Arc::new(quadratic), &RunOptions::default())
        .unwrap();
    assert_eq!(summary.stop, StopReason::TrialLimit(10));
    let trials = study.trials().unwrap();
    assert_eq!(trials.len(), 11);
    assert_eq!(
        trials[3].params, trials[2].params,
        "the interrupted point comes first"
    );
    assert!(trials[3..].iter().all(|t| t.state == TrialState::Complete));
}

#[test]
fn an_interrupted_last_trial_runs_again_on_resume() {
    // The interrupted trial is the study's last: its requeued copy brings the count back to
    // n_trials, and must still run rather than end the study as "full".
    let study = Study::create(storage(), config("[stop]\nn_trials = 3\n")).unwrap();
    let options = RunOptions::default();
    let cancel = Arc::clone(&options.cancel);
    let objective = move |p: &Params, ctx: &mut TrialContext<'_>| {
        if ctx.number() == 2 {
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            return Err(ObjectiveError::Failed("stopped by the user".into()));
        }
        quadratic(p, ctx)
    };
    let summary = study.run(Arc::new(objective), &options).unwrap();
    assert_eq!(summary.stop, StopReason::Cancelled);

    let summary = study
        .run(Arc::new(quadratic), &RunOptions::default())
        .unwrap();
    assert_eq!(summary.stop, StopReason::TrialLimit(3));
    assert_eq!(
        summary.trials_run, 1,
        "only the interrupted point runs again"
    );
    let trials = study.trials().unwrap();
    assert_eq!(trials.len(), 4);
    assert_eq!(trials[3].params, trials[2].params);
    assert_eq!(trials[3].state, TrialState::Complete);
}

/// Draws a constant 10 W from the moment it is built, as a machine-wide counter.
struct TenWatts(std::time::Instant, Vec<greenlab_meter::Domain>);

impl greenlab_meter::Meter for TenWatts {
    fn name(&self) -> &'static str {
        "ten-watts"
    }
    fn domains(&self) -> &[greenlab_meter::Domain] {
        &self.1
    }
    fn read(&mut self) -> Result<greenlab_meter::Reading, greenlab_meter::MeterError> {
        Ok(greenlab_meter::Reading {
            domains: vec![greenlab_meter::DomainReading::new(
                Joules(10.0 * self.0.elapsed().as_secs_f64()),
                Source::Counter,
                // The counter changes at every read, as a live one does.
                self.0.elapsed().as_nanos() as u64,
            )],
            warnings: Vec::new(),
        })
    }
}

#[test]
fn concurrent_workers_do_not_count_the_machine_twice() {
    let meter = TenWatts(
        std::time::Instant::now(),
        vec![greenlab_meter::Domain::cpu_package(0)],
    );
    let tracker = Arc::new(
        Tracker::from_meters(
            vec![Box::new(meter)],
            &greenlab_meter::MeterOptions::default(),
        )
        .unwrap(),
    );
    let study = Study::create(storage(), config("[stop]\nn_trials = 2\n")).unwrap();
    let both = Arc::new(std::sync::Barrier::new(2));
    let objective = move |p: &Params, _ctx: &mut TrialContext<'_>| {
        // Both trials run at the same time for a while (the work is the sleep).
        both.wait();
        std::thread::sleep(Duration::from_millis(40));
        both.wait();
        Ok(ObjectiveOutput {
            metrics: [("accuracy".to_string(), accuracy(p))].into(),
            ..Default::default()
        })
    };
    let whole = tracker.begin("run").unwrap();
    let options = RunOptions {
        workers: 2,
        tracker: Some(Arc::clone(&tracker)),
        ..Default::default()
    };
    study.run(Arc::new(objective), &options).unwrap();
    let whole = tracker.end(whole).unwrap();
    let trials = study.trials().unwrap();
    let sum: f64 = trials
        .iter()
        .map(|t| t.energy.as_ref().unwrap().total.unwrap().0)
        .sum();
    let whole = whole.total.unwrap().0;
    assert!(sum > 0.0);
    assert!(
        sum <= whole * (1.0 + 1e-9),
        "trials claim {sum} J of the {whole} J the machine used"
    );
    for t in &trials {
        assert_eq!(t.state, TrialState::Complete);
        assert!(
            t.attrs["energy_attribution"]
                .as_str()
                .unwrap()
                .contains("shared equally"),
            "{:?}",
            t.attrs
        );
    }
}

/// The identity of a process that has exited (a worker killed on this machine).
fn dead_process(table: &ProcessTable) -> WorkerProcess {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let identity = table.identity(child.id());
    let pid = child.id();
    child.wait().unwrap();
    WorkerProcess {
        host: "here".into(),
        pid,
        identity,
    }
}

#[test]
fn a_dead_local_worker_is_reaped_at_once_and_its_trial_runs_again() {
    let storage = storage();
    let study = Study::create(Arc::clone(&storage), config("[stop]\nn_trials = 3\n")).unwrap();
    let id = study.record().id;
    let table = ProcessTable::new("/proc");
    // A worker of this machine died mid-trial; its lease would last an hour.
    let dead = Worker {
        name: "dead".into(),
        process: Some(dead_process(&table)),
    };
    let lost = storage
        .create_trial_for(id, &dead, Duration::from_secs(3600))
        .unwrap();
    let mut p = Params::new();
    p.insert("x".into(), ParamValue::Float(0.5));
    storage.set_params(lost.id, &p).unwrap();
    // A live worker elsewhere (another machine): its trial is left to its lease.
    let remote = Worker {
        name: "remote".into(),
        process: Some(WorkerProcess {
            host: "elsewhere".into(),
            pid: 1,
            identity: "another-boot/pid:[1]/1".into(),
        }),
    };
    let remote_trial = storage
        .create_trial_for(id, &remote, Duration::from_secs(3600))
        .unwrap();
    let options = RunOptions {
        process: Some(table.current("here")),
        process_table: Some(table),
        ..Default::default()
    };
    let summary = study.run(Arc::new(quadratic), &options).unwrap();
    let trials = study.trials().unwrap();
    let l = trials.iter().find(|t| t.id == lost.id).unwrap();
    assert!(l.was_lost(), "{:?}", l.attrs);
    assert!(
        l.attrs["error"].as_str().unwrap().contains("is gone"),
        "{:?}",
        l.attrs
    );
    let retry = trials
        .iter()
        .find(|t| Some(t.number) == l.retried_as())
        .expect("the retry");
    assert_eq!(retry.retry_of, Some(lost.number));
    assert_eq!(retry.params, p, "the same parameters ran again");
    assert_eq!(retry.state, TrialState::Complete);
    assert_eq!(retry.host(), Some("here"), "trials record their host");
    let r = trials.iter().find(|t| t.id == remote_trial.id).unwrap();
    assert_eq!(
        r.state,
        TrialState::Running,
        "a remote lease is not reaped early"
    );
    // n_trials = 3 counts the remote running trial, the retry and one more: the lost one
    // does not count.
    assert_eq!(summary.trials_run, 2);
    let counted = trials
        .iter()
        .filter(|t| greenlab_tune::study::counts_towards_n_trials(t))
        .count();
    assert_eq!(counted, 3);
}

#[test]
fn retries_stop_at_max_retries_and_the_last_loss_counts() {
    let storage = storage();
    let study = Study::create(
        Arc::clone(&storage),
        config("[stop]\nn_trials = 1\nmax_retries = 1\n"),
    )
    .unwrap();
    let id = study.record().id;
    let mut p = Params::new();
    p.insert("x".into(), ParamValue::Float(0.5));
    // The original and its one retry both lose their worker.
    let first = storage.create_trial(id, "a", Duration::ZERO).unwrap();
    storage.set_params(first.id, &p).unwrap();
    let reaped = storage.reap_lost(id, &[], 1).unwrap();
    let retry = reaped[0].retried_as.unwrap();
    let claimed = storage
        .claim_waiting(id, "b", Duration::ZERO)
        .unwrap()
        .unwrap();
    assert_eq!(claimed.number, retry);
    let summary = study
        .run(Arc::new(quadratic), &RunOptions::default())
        .unwrap();
    assert_eq!(
        summary.trials_run, 0,
        "the second loss used up the retries and counts as the study's one trial"
    );
    let trials = study.trials().unwrap();
    assert_eq!(trials.len(), 2);
    assert!(trials.iter().all(|t| t.was_lost()));
    assert_eq!(trials[1].retried_as(), None);
}

/// Whether a live process is still in process group `pgid` (zombies, killed but not yet
/// reaped by whoever adopted them, do not count).
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        // Fields after the name: state, ppid, pgrp, ...
        let fields: Vec<&str> = after.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

#[test]
fn a_timed_out_command_fails_with_its_energy_and_its_whole_group_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pgid");
    let script = format!(
        "echo $$ > {}; sleep 60 & sleep 60; echo '{{\"accuracy\": 1}}'",
        pid_file.display()
    );
    let study = Study::create(
        storage(),
        config("[stop]\nn_trials = 1\n[objective]\ntimeout = \"0.5s\"\n"),
    )
    .unwrap();
    let objective = CommandObjective::new(
        vec!["sh".into(), "-c".into(), script],
        &study.config().search_space(),
        Arc::new(Tracker::estimate_only()),
    )
    .unwrap();
    let options = RunOptions {
        tracker: Some(Arc::new(Tracker::estimate_only())),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    study.run(Arc::new(objective), &options).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the trial was stopped, not waited for"
    );
    let t = &study.trials().unwrap()[0];
    assert_eq!(t.state, TrialState::Failed);
    assert_eq!(t.attrs["timed_out"], serde_json::json!(true));
    assert!(
        t.attrs["error"].as_str().unwrap().contains("timed out"),
        "{:?}",
        t.attrs
    );
    assert!(t.energy.is_some(), "a timed-out trial keeps its energy");
    let pgid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !group_alive(pgid),
        "the background sleep of the timed-out shell was killed with it"
    );
}

#[test]
fn a_finished_command_leaves_nothing_running_in_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pgid");
    // The background job keeps stdout open: the trial ends only because its group is killed
    // once the shell exits.
    let script = format!(
        "echo $$ > {}; sleep 60 & echo '{{\"accuracy\": 0.5}}'",
        pid_file.display()
    );
    let (study, objective) = command_study(&["sh", "-c", &script], 1);
    let started = std::time::Instant::now();
    study.run(objective, &RunOptions::default()).unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    let t = &study.trials().unwrap()[0];
    assert_eq!(t.state, TrialState::Complete, "{:?}", t.attrs);
    let pgid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!group_alive(pgid), "the background job was killed");
}

#[test]
fn each_worker_gets_its_own_device_and_trial_number() {
    let study = Study::create(storage(), config("[stop]\nn_trials = 6\n")).unwrap();
    let objective = CommandObjective::new(
        vec![
            "sh".into(),
            "-c".into(),
            "echo \"{\\\"accuracy\\\": $GREENLAB_TRIAL, \\\"device\\\": $CUDA_VISIBLE_DEVICES, \\\"worker\\\": $GREENLAB_WORKER}\"".into(),
        ],
        &study.config().search_space(),
        Arc::new(Tracker::estimate_only()),
    )
    .unwrap()
    .with_devices(vec!["4".into(), "7".into()]);
    let options = RunOptions {
        workers: 2,
        ..Default::default()
    };
    study.run(Arc::new(objective), &options).unwrap();
    for t in study.trials().unwrap() {
        assert_eq!(t.state, TrialState::Complete, "{:?}", t.attrs);
        let m = &t.attrs["metrics"];
        assert_eq!(m["accuracy"].as_f64(), Some(t.number as f64));
        let worker = m["worker"].as_f64().unwrap() as usize;
        let device = m["device"].as_f64().unwrap();
        assert_eq!(device, [4.0, 7.0][worker % 2], "worker {worker}");
    }
}

#[test]
fn energy_per_host_sums_known_figures_and_flags_processes_sharing_a_host() {
    let trial = |number: u64, params: Params, values: Option<Vec<f64>>, state: TrialState| {
        greenlab_tune::Trial {
            id: number as i64,
            number,
            state,
            params,
            values,
            intermediate: Vec::new(),
            energy: None,
            attrs: BTreeMap::new(),
            worker: None,
            process: None,
            retry_of: None,
            started_at: None,
            finished_at: None,
        }
    };
    let at = |host: &str, pid: u32| WorkerProcess {
        host: host.into(),
        pid,
        identity: format!("b/ns/{pid}"),
    };
    let run = |n: u64, p: WorkerProcess, span: (f64, f64), joules: Option<f64>| {
        let mut t = trial(n, Params::new(), Some(vec![0.5]), TrialState::Complete);
        t.process = Some(p);
        t.started_at = Some(span.0);
        t.finished_at = Some(span.1);
        t.energy = joules.and_then(energy);
        t
    };
    let trials = vec![
        run(0, at("a", 1), (0.0, 10.0), Some(5.0)),
        run(1, at("a", 2), (5.0, 15.0), Some(7.0)), // overlaps trial 0, another process
        run(2, at("a", 1), (20.0, 30.0), None),     // unknown energy
        run(3, at("b", 9), (0.0, 10.0), Some(3.0)),
        trial(4, Params::new(), None, TrialState::Waiting), // never ran: not counted
    ];
    let by_host = greenlab_tune::study::energy_by_host(&trials);
    assert_eq!(by_host.hosts.len(), 2);
    let a = &by_host.hosts[0];
    assert_eq!(
        (a.host.as_str(), a.trials, a.unknown, a.processes),
        ("a", 3, 1, 2)
    );
    assert_eq!(
        a.joules, 12.0,
        "unknown energy is left out, not counted as 0"
    );
    assert_eq!(a.overlapping, 2);
    let b = &by_host.hosts[1];
    assert_eq!(
        (b.host.as_str(), b.trials, b.joules, b.processes),
        ("b", 1, 3.0, 1)
    );
    assert_eq!(b.overlapping, 0);
    assert_eq!(by_host.joules, 15.0);
    assert_eq!(by_host.unknown, 1);
    let notes = greenlab_tune::study::energy_by_host_notes(&by_host).join("\n");
    assert!(
        notes.contains("1 trial(s) have no energy figure"),
        "{notes}"
    );
    assert!(
        notes.contains("each see the whole host") && notes.contains("a (2 trials)"),
        "{notes}"
    );
}
