//! Conformance suites every implementation must pass (cargo feature `testing`).
//!
//! - [`check_storage`] pins down the [`Storage`] contract: run it against every backend
//!   (`MemoryStorage` here; SQLite and PostgreSQL in `greenlab-store`'s tests).
//! - [`check_sampler`] pins down the [`Sampler`] contract: suggestions inside the space, and the
//!   same seed and history give the same suggestion for a trial number whatever the order in
//!   which numbers are asked.
//!
//! The checks panic (with a message naming the broken rule) so they read as ordinary tests:
//!
//! ```
//! use greenlab_tune::memory::MemoryStorage;
//! greenlab_tune::testing::check_storage(&|| Box::new(MemoryStorage::new()));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use greenlab_meter::{Joules, Seconds, Source};

use crate::TuneError;
use crate::process::WorkerProcess;
use crate::sampler::{SampleContext, Sampler};
use crate::space::{Distribution, ParamValue, Params, SearchSpace};
use crate::storage::{Gone, LEASE_EXPIRED, Storage, Worker};
use crate::trial::{Direction, Objective, Trial, TrialEnergy, TrialOutcome, TrialState};

const HOUR: Duration = Duration::from_secs(3600);

/// Runs every storage check, each on a fresh storage from `make`.
pub fn check_storage(make: &dyn Fn() -> Box<dyn Storage>) {
    check_studies(make().as_ref());
    check_dense_numbering(make().as_ref());
    check_enqueue_and_claim(make().as_ref());
    check_params(make().as_ref());
    check_heartbeat_and_leases(make().as_ref());
    check_lost_workers_and_retries(make().as_ref());
    check_finish(make().as_ref());
    check_intermediate(make().as_ref());
    check_concurrency(Arc::from(make()));
}

/// A complete outcome with one value and some energy.
pub fn complete_outcome(value: f64) -> TrialOutcome {
    let mut attrs = BTreeMap::new();
    attrs.insert("accuracy".to_string(), serde_json::json!(value));
    TrialOutcome {
        state: TrialState::Complete,
        values: Some(vec![value]),
        energy: Some(TrialEnergy {
            total: Some(Joules(12.5)),
            attributed: Some(Joules(10.25)),
            source: Source::Estimated,
            duration: Seconds(1.5),
            domains: vec![(
                "cpu-package-0".into(),
                Some(Joules(12.5)),
                Source::Estimated,
            )],
            unknown: None,
            warnings: vec!["a warning the meter gave".into()],
        }),
        attrs,
    }
}

/// A complete outcome whose energy was not measured (a frozen counter, nothing to stand in).
pub fn unmeasured_outcome(value: f64) -> TrialOutcome {
    let mut outcome = complete_outcome(value);
    outcome.energy = Some(TrialEnergy {
        total: None,
        attributed: None,
        source: Source::Counter,
        duration: Seconds(1.5),
        domains: vec![("psys".into(), None, Source::Counter)],
        unknown: Some("psys: no counter update inside the window (1.500 s)".into()),
        warnings: Vec::new(),
    });
    outcome
}

fn params(lr: f64) -> Params {
    let mut p = Params::new();
    p.insert("lr".into(), ParamValue::Float(lr));
    p.insert("conv".into(), ParamValue::Int(2));
    p.insert("opt".into(), ParamValue::Str("adam".into()));
    p.insert("relu".into(), ParamValue::Bool(true));
    p
}

/// Studies: create, idempotent re-create, conflicting definition, list, lookup.
pub fn check_studies(s: &dyn Storage) {
    let a = s.create_study("alpha", r#"{"v":1}"#).expect("create study");
    let again = s
        .create_study("alpha", r#"{"v":1}"#)
        .expect("re-create same study");
    assert_eq!(
        a.id, again.id,
        "re-creating a study must return the same one"
    );
    assert!(
        matches!(
            s.create_study("alpha", r#"{"v":2}"#),
            Err(TuneError::StudyConflict(_))
        ),
        "a different definition under the same name must be StudyConflict"
    );
    let b = s.create_study("beta", "{}").expect("create second study");
    assert_ne!(a.id, b.id);
    let names: Vec<String> = s
        .list_studies()
        .expect("list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["alpha", "beta"], "studies listed by name");
    assert_eq!(s.study("beta").expect("lookup").id, b.id);
    assert_eq!(s.study("alpha").expect("lookup").spec_json, r#"{"v":1}"#);
    assert!(matches!(s.study("gamma"), Err(TuneError::UnknownStudy(_))));
    assert!(s.trials(a.id).expect("trials of a new study").is_empty());
}

/// Trial numbers are dense from 0, per study, whether created or enqueued.
pub fn check_dense_numbering(s: &dyn Storage) {
    let a = s.create_study("a", "{}").expect("create");
    let b = s.create_study("b", "{}").expect("create");
    let mut numbers = Vec::new();
    for i in 0..5 {
        let t = if i % 2 == 0 {
            s.create_trial(a.id, "w", HOUR).expect("create trial")
        } else {
            s.enqueue_trial(a.id, &params(0.1)).expect("enqueue")
        };
        numbers.push(t.number);
    }
    assert_eq!(numbers, [0, 1, 2, 3, 4], "numbers are dense from 0");
    let tb = s.create_trial(b.id, "w", HOUR).expect("create in b");
    assert_eq!(tb.number, 0, "each study numbers its own trials");
    let listed: Vec<u64> = s
        .trials(a.id)
        .expect("trials")
        .iter()
        .map(|t| t.number)
        .collect();
    assert_eq!(listed, [0, 1, 2, 3, 4], "trials listed by number");
    let t0 = &s.trials(a.id).expect("trials")[0];
    assert_eq!(t0.state, TrialState::Running);
    assert_eq!(t0.worker.as_deref(), Some("w"));
    assert!(t0.started_at.is_some());
    assert_eq!(s.trial(a.id, t0.id).expect("one trial").number, 0);
}

/// Enqueued trials wait with their parameters; claims take the oldest, once.
pub fn check_enqueue_and_claim(s: &dyn Storage) {
    let st = s.create_study("q", "{}").expect("create");
    assert!(s.claim_waiting(st.id, "w1", HOUR).expect("claim").is_none());
    let first = s.enqueue_trial(st.id, &params(0.1)).expect("enqueue");
    let second = s.enqueue_trial(st.id, &params(0.2)).expect("enqueue");
    assert_eq!(first.state, TrialState::Waiting);
    assert_eq!(first.params, params(0.1));
    let c1 = s
        .claim_waiting(st.id, "w1", HOUR)
        .expect("claim")
        .expect("a waiting trial");
    assert_eq!(c1.id, first.id, "the oldest waiting trial is claimed first");
    assert_eq!(c1.state, TrialState::Running);
    assert_eq!(c1.worker.as_deref(), Some("w1"));
    assert_eq!(
        c1.params,
        params(0.1),
        "claimed trials keep their parameters"
    );
    let c2 = s
        .claim_waiting(st.id, "w2", HOUR)
        .expect("claim")
        .expect("a second waiting trial");
    assert_eq!(c2.id, second.id);
    assert!(
        s.claim_waiting(st.id, "w3", HOUR).expect("claim").is_none(),
        "a trial is claimed once"
    );
}

/// Parameters of every kind survive the round trip.
pub fn check_params(s: &dyn Storage) {
    let st = s.create_study("p", "{}").expect("create");
    let t = s.create_trial(st.id, "w", HOUR).expect("create trial");
    assert!(t.params.is_empty());
    let mut p = params(3.5e-4);
    p.insert("neg".into(), ParamValue::Int(-7));
    p.insert("big".into(), ParamValue::Float(1.0e300));
    s.set_params(t.id, &p).expect("set params");
    s.set_params(t.id, &p)
        .expect("setting the same parameters again is harmless");
    assert_eq!(s.trial(st.id, t.id).expect("trial").params, p);
}

/// Heartbeats renew leases; expired leases are reaped as failed; others are left alone.
pub fn check_heartbeat_and_leases(s: &dyn Storage) {
    let st = s.create_study("l", "{}").expect("create");
    let lost = s.create_trial(st.id, "w1", Duration::ZERO).expect("create");
    let renewed = s.create_trial(st.id, "w2", Duration::ZERO).expect("create");
    let healthy = s.create_trial(st.id, "w3", HOUR).expect("create");
    s.heartbeat(renewed.id, "w2", HOUR).expect("heartbeat");
    assert!(
        matches!(
            s.heartbeat(healthy.id, "intruder", HOUR),
            Err(TuneError::TrialState { .. })
        ),
        "a heartbeat from another worker is a TrialState error"
    );
    s.report_intermediate(lost.id, 1, 0.3, Some(5.0))
        .expect("report");
    assert_eq!(
        s.reap_expired(st.id).expect("reap"),
        1,
        "exactly the lost trial is reaped"
    );
    assert_eq!(
        s.reap_expired(st.id).expect("reap again"),
        0,
        "reaping is idempotent"
    );
    let trials = s.trials(st.id).expect("trials");
    let by_id = |id| trials.iter().find(|t| t.id == id).expect("trial present");
    let l = by_id(lost.id);
    assert_eq!(l.state, TrialState::Failed);
    assert!(
        l.attrs
            .get("error")
            .and_then(|v| v.as_str())
            .is_some_and(|m| m.contains("lease expired")),
        "a reaped trial says why: {:?}",
        l.attrs
    );
    assert_eq!(
        l.intermediate.len(),
        1,
        "a reaped trial keeps its intermediate values"
    );
    assert_eq!(by_id(renewed.id).state, TrialState::Running);
    assert_eq!(by_id(healthy.id).state, TrialState::Running);
    assert!(
        matches!(
            s.heartbeat(lost.id, "w1", HOUR),
            Err(TuneError::TrialState { .. })
        ),
        "a reaped trial cannot be renewed"
    );
    let waiting = s.enqueue_trial(st.id, &params(0.5)).expect("enqueue");
    assert_eq!(s.reap_expired(st.id).expect("reap"), 0);
    assert_eq!(
        s.trial(st.id, waiting.id).expect("trial").state,
        TrialState::Waiting,
        "waiting trials hold no lease and are never reaped"
    );
}

/// A worker with a process identity, as `greenlab` workers take trials.
fn located(name: &str, host: &str, pid: u32) -> Worker {
    Worker {
        name: name.to_string(),
        process: Some(WorkerProcess {
            host: host.to_string(),
            pid,
            identity: format!("boot/pid:[1]/{}", 1000 + pid),
        }),
    }
}

/// Lost workers: trials record their worker's process; a trial whose worker is gone (listed
/// by a worker on its machine, or with an expired lease) fails as lost and its parameters are
/// enqueued again, linked to the original, until the retry limit; nothing else is touched.
pub fn check_lost_workers_and_retries(s: &dyn Storage) {
    let st = s.create_study("lost", "{}").expect("create");
    let w1 = located("w1", "node-a", 11);
    let t0 = s.create_trial_for(st.id, &w1, HOUR).expect("create");
    assert_eq!(
        t0.process, w1.process,
        "create_trial_for returns the process"
    );
    s.set_params(t0.id, &params(0.1)).expect("params");
    s.report_intermediate(t0.id, 1, 0.5, Some(2.0))
        .expect("report");
    let stored = s.trial(st.id, t0.id).expect("trial");
    assert_eq!(stored.process, w1.process, "the process is stored");
    assert_eq!(stored.host(), Some("node-a"));
    assert_eq!(stored.retry_of, None);

    // A finished trial and a trial of a live worker are left alone.
    let done = s
        .create_trial_for(st.id, &located("w9", "node-a", 19), HOUR)
        .expect("create");
    s.finish_trial(done.id, &complete_outcome(0.7))
        .expect("finish");
    let live = s
        .create_trial_for(st.id, &located("w2", "node-b", 12), HOUR)
        .expect("create");
    let gone = |trial: &Trial, worker: &str| Gone {
        trial: trial.id,
        worker: worker.to_string(),
        reason: format!("worker lost: its process {worker} is gone"),
    };
    let wrong_holder = s
        .reap_lost(st.id, &[gone(&t0, "someone-else"), gone(&done, "w9")], 2)
        .expect("reap");
    assert!(
        wrong_holder.is_empty(),
        "a trial is reaped only while the named worker holds it: {wrong_holder:?}"
    );

    let reaped = s.reap_lost(st.id, &[gone(&t0, "w1")], 2).expect("reap");
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!(reaped[0].number, t0.number);
    let retry_number = reaped[0].retried_as.expect("a retry is enqueued");
    assert!(
        s.reap_lost(st.id, &[gone(&t0, "w1")], 2)
            .expect("reap again")
            .is_empty(),
        "reaping is idempotent"
    );
    let trials = s.trials(st.id).expect("trials");
    let by_number = |n: u64| trials.iter().find(|t| t.number == n).expect("trial");
    let lost = by_number(t0.number);
    assert_eq!(lost.state, TrialState::Failed);
    assert!(lost.was_lost(), "{:?}", lost.attrs);
    assert_eq!(lost.retried_as(), Some(retry_number));
    assert_eq!(
        lost.attrs.get("error").and_then(|v| v.as_str()),
        Some("worker lost: its process w1 is gone")
    );
    assert_eq!(lost.intermediate.len(), 1, "intermediate values are kept");
    let retry = by_number(retry_number);
    assert_eq!(retry.state, TrialState::Waiting);
    assert_eq!(
        retry.params,
        params(0.1),
        "the retry runs the same parameters"
    );
    assert_eq!(retry.retry_of, Some(t0.number), "and names the original");
    assert_eq!(by_number(live.number).state, TrialState::Running);
    assert_eq!(by_number(done.number).state, TrialState::Complete);

    // Retries of retries still name the original, and stop at the limit.
    let w3 = located("w3", "node-c", 13);
    let claimed = s
        .claim_waiting_for(st.id, &w3, HOUR)
        .expect("claim")
        .expect("the retry waits");
    assert_eq!(claimed.number, retry_number);
    assert_eq!(claimed.process, w3.process, "a claim records the claimer");
    assert_eq!(claimed.retry_of, Some(t0.number));
    let second = s
        .reap_lost(st.id, &[gone(&claimed, "w3")], 2)
        .expect("reap");
    let second_number = second[0].retried_as.expect("a second retry");
    let claimed = s
        .claim_waiting(st.id, "w4", HOUR)
        .expect("claim")
        .expect("the second retry waits");
    assert_eq!(claimed.number, second_number);
    assert_eq!(claimed.retry_of, Some(t0.number));
    assert_eq!(
        claimed.process, None,
        "a worker known only by name records none"
    );
    let third = s
        .reap_lost(st.id, &[gone(&claimed, "w4")], 2)
        .expect("reap");
    assert_eq!(
        third[0].retried_as, None,
        "two retries of the original exist: the limit is reached"
    );
    let last = s.trial(st.id, claimed.id).expect("trial");
    assert!(last.was_lost() && last.retried_as().is_none());

    // Expired leases are lost too; a trial without parameters has nothing to run again.
    let expired = s.create_trial(st.id, "w5", Duration::ZERO).expect("create");
    s.set_params(expired.id, &params(0.3)).expect("params");
    let empty = s.create_trial(st.id, "w6", Duration::ZERO).expect("create");
    let reaped = s.reap_lost(st.id, &[], 1).expect("reap");
    assert_eq!(reaped.len(), 2, "{reaped:?}");
    for r in &reaped {
        assert_eq!(r.reason, LEASE_EXPIRED);
        if r.number == expired.number {
            assert!(r.retried_as.is_some(), "the expired trial runs again");
        } else {
            assert_eq!(r.number, empty.number);
            assert_eq!(r.retried_as, None, "nothing to retry without parameters");
        }
    }
    // reap_expired never retries.
    let once = s.create_trial(st.id, "w7", Duration::ZERO).expect("create");
    s.set_params(once.id, &params(0.4)).expect("params");
    assert_eq!(s.reap_expired(st.id).expect("reap"), 1);
    let after = s.trial(st.id, once.id).expect("trial");
    assert!(after.was_lost() && after.retried_as().is_none());
    let numbers: BTreeSet<u64> = s
        .trials(st.id)
        .expect("trials")
        .iter()
        .map(|t| t.number)
        .collect();
    assert_eq!(
        numbers.len() as u64,
        *numbers.iter().last().expect("trials") + 1,
        "retries keep numbering dense"
    );
}

/// Finishing is idempotent; a different outcome afterwards is an error; values and energy
/// are kept exactly.
pub fn check_finish(s: &dyn Storage) {
    let st = s.create_study("f", "{}").expect("create");
    let t = s.create_trial(st.id, "w", HOUR).expect("create");
    let outcome = complete_outcome(0.875);
    s.finish_trial(t.id, &outcome).expect("finish");
    s.finish_trial(t.id, &outcome)
        .expect("recording the same outcome again succeeds");
    let mut other = outcome.clone();
    other.values = Some(vec![0.5]);
    assert!(
        matches!(
            s.finish_trial(t.id, &other),
            Err(TuneError::TrialState { .. })
        ),
        "a different outcome for a finished trial is a TrialState error"
    );
    let mut failed = outcome.clone();
    failed.state = TrialState::Failed;
    assert!(s.finish_trial(t.id, &failed).is_err());
    let stored = s.trial(st.id, t.id).expect("trial");
    assert_eq!(stored.state, TrialState::Complete);
    let unknown = s.create_trial(st.id, "w", HOUR).expect("create");
    let unmeasured = unmeasured_outcome(0.5);
    s.finish_trial(unknown.id, &unmeasured).expect("finish");
    let back = s.trial(st.id, unknown.id).expect("trial");
    assert_eq!(
        back.energy, unmeasured.energy,
        "unknown energy is stored as unknown (null) with its reason, never as 0"
    );
    assert_eq!(stored.values, Some(vec![0.875]));
    assert_eq!(stored.energy, outcome.energy, "energy is stored exactly");
    assert_eq!(
        stored.attrs.get("accuracy"),
        Some(&serde_json::json!(0.875))
    );
    assert!(stored.finished_at.is_some());
    assert!(
        s.heartbeat(t.id, "w", HOUR).is_err(),
        "a finished trial cannot be renewed"
    );
    assert!(
        matches!(
            s.finish_trial(424_242, &outcome),
            Err(TuneError::UnknownTrial(_))
        ),
        "finishing an unknown trial is UnknownTrial"
    );

    // Every final state is stored as such, with its reason.
    for state in [TrialState::Pruned, TrialState::Failed, TrialState::Diverged] {
        let t = s.create_trial(st.id, "w", HOUR).expect("create");
        let mut attrs = BTreeMap::new();
        attrs.insert("error".to_string(), serde_json::json!("reason"));
        let o = TrialOutcome {
            state,
            values: None,
            energy: None,
            attrs,
        };
        s.finish_trial(t.id, &o).expect("finish");
        let stored = s.trial(st.id, t.id).expect("trial");
        assert_eq!(stored.state, state);
        assert_eq!(
            stored.attrs.get("error"),
            Some(&serde_json::json!("reason"))
        );
    }
}

/// Intermediate values are kept by step, rewrites replace, finished trials refuse new ones.
pub fn check_intermediate(s: &dyn Storage) {
    let st = s.create_study("i", "{}").expect("create");
    let t = s.create_trial(st.id, "w", HOUR).expect("create");
    s.report_intermediate(t.id, 2, 0.6, Some(20.0))
        .expect("report");
    s.report_intermediate(t.id, 1, 0.4, Some(10.0))
        .expect("report");
    s.report_intermediate(t.id, 2, 0.6, Some(20.0))
        .expect("rewriting a step with the same value is harmless");
    s.report_intermediate(t.id, 3, 0.7, Some(30.5))
        .expect("report");
    s.report_intermediate(t.id, 4, 0.75, None)
        .expect("an unknown energy is stored as unknown");
    let stored = s.trial(st.id, t.id).expect("trial");
    let steps: Vec<(u32, f64, Option<f64>)> = stored
        .intermediate
        .iter()
        .map(|i| (i.step, i.value, i.energy.map(|e| e.0)))
        .collect();
    assert_eq!(
        steps,
        [
            (1, 0.4, Some(10.0)),
            (2, 0.6, Some(20.0)),
            (3, 0.7, Some(30.5)),
            (4, 0.75, None)
        ],
        "unknown energy comes back unknown, never as 0"
    );
    s.finish_trial(t.id, &complete_outcome(0.7))
        .expect("finish");
    assert!(
        matches!(
            s.report_intermediate(t.id, 5, 0.8, Some(40.0)),
            Err(TuneError::TrialState { .. })
        ),
        "a finished trial takes no more intermediate values"
    );
}

/// 8 threads × 50 trials: 400 distinct numbers 0..400, every outcome recorded.
pub fn check_concurrency(s: Arc<dyn Storage>) {
    let st = s.create_study("c", "{}").expect("create");
    let handles: Vec<_> = (0..8)
        .map(|w| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let worker = format!("w{w}");
                let mut numbers = Vec::new();
                for i in 0..50 {
                    let t = s.create_trial(st.id, &worker, HOUR).expect("create trial");
                    s.set_params(t.id, &params(i as f64)).expect("set params");
                    s.heartbeat(t.id, &worker, HOUR).expect("heartbeat");
                    s.report_intermediate(t.id, 1, 0.5, Some(1.0))
                        .expect("report");
                    s.finish_trial(t.id, &complete_outcome(t.number as f64))
                        .expect("finish");
                    numbers.push(t.number);
                }
                numbers
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for h in handles {
        let numbers = h.join().expect("a worker thread panicked");
        for n in numbers {
            assert!(all.insert(n), "trial number {n} handed out twice");
        }
    }
    assert_eq!(
        all,
        (0..400).collect::<BTreeSet<u64>>(),
        "numbers 0..400, none lost"
    );
    let trials = s.trials(st.id).expect("trials");
    assert_eq!(trials.len(), 400);
    for t in &trials {
        assert_eq!(
            t.state,
            TrialState::Complete,
            "trial {} not complete",
            t.number
        );
        assert_eq!(t.values, Some(vec![t.number as f64]), "outcome mixed up");
    }
}

/// A small space with every kind of parameter, for sampler checks.
pub fn sampler_space() -> SearchSpace {
    SearchSpace::new([
        ("lr", Distribution::log_float(1e-5, 1e-1)),
        ("beta1", Distribution::float(0.1, 0.999)),
        ("conv", Distribution::int(1, 4)),
        ("opt", Distribution::categorical(["adam", "sgd", "rmsprop"])),
    ])
}

/// A history of `n` finished trials on [`sampler_space`] with a smooth synthetic accuracy,
/// plus one running trial, for samplers that learn from history.
pub fn sampler_history(n: u64) -> Vec<Trial> {
    let space = sampler_space();
    let mut trials: Vec<Trial> = (0..n)
        .map(|i| {
            let u: Vec<f64> = (0..space.dims())
                .map(|d| ((i as f64 + 1.0) * (0.618_033_988_75 + d as f64 * 0.414_213_562)).fract())
                .collect();
            let p = space.from_unit(&u).unwrap_or_default();
            let lr = p.get("lr").and_then(ParamValue::as_f64).unwrap_or(1e-3);
            let acc = 0.9 - 0.05 * (lr.log10() + 3.0).powi(2);
            Trial {
                id: i as i64 + 1,
                number: i,
                state: TrialState::Complete,
                params: p,
                values: Some(vec![acc, 10.0 + i as f64]),
                intermediate: Vec::new(),
                energy: Some(TrialEnergy {
                    total: Some(Joules(10.0 + i as f64)),
                    attributed: Some(Joules(10.0 + i as f64)),
                    source: Source::Estimated,
                    duration: Seconds(1.0),
                    domains: Vec::new(),
                    unknown: None,
                    warnings: Vec::new(),
                }),
                attrs: BTreeMap::new(),
                worker: Some("w".into()),
                process: None,
                retry_of: None,
                started_at: Some(0.0),
                finished_at: Some(1.0),
            }
        })
        .collect();
    trials.push(Trial {
        id: n as i64 + 1,
        number: n,
        state: TrialState::Running,
        params: Params::new(),
        values: None,
        intermediate: Vec::new(),
        energy: None,
        attrs: BTreeMap::new(),
        worker: Some("w".into()),
        process: None,
        retry_of: None,
        started_at: Some(0.0),
        finished_at: None,
    });
    trials
}

/// The objectives [`sampler_history`] records: accuracy (max), energy (min).
pub fn sampler_objectives() -> Vec<Objective> {
    vec![
        Objective {
            metric: "accuracy".into(),
            direction: Direction::Maximize,
        },
        Objective {
            metric: "energy".into(),
            direction: Direction::Minimize,
        },
    ]
}

/// Checks the sampler contract with `make(seed)`: every suggestion lies in the space; the same
/// seed and history give the same suggestion for each trial number, whichever order the
/// numbers are asked in and whichever instance answers; two seeds do not give identical
/// suggestion sequences. Runs with an empty history and with `history_len` finished trials.
pub fn check_sampler(make: &dyn Fn(u64) -> Box<dyn Sampler>, history_len: u64) {
    let space = sampler_space();
    let objectives = sampler_objectives();
    for history in [Vec::new(), sampler_history(history_len)] {
        let base = history.len() as u64;
        let numbers: Vec<u64> = (base..base + 6).collect();
        let ask = |sampler: &dyn Sampler, number: u64| -> Params {
            let ctx = SampleContext {
                space: &space,
                objectives: &objectives,
                history: &history,
                number,
            };
            let p = sampler
                .suggest(&ctx)
                .unwrap_or_else(|e| panic!("{}: suggest failed: {e}", sampler.name()));
            assert!(
                space.to_unit(&p).is_some() && p.len() == space.dims(),
                "{}: suggestion {p:?} is not a point of the space",
                sampler.name()
            );
            p
        };
        let a = make(7);
        let forward: Vec<Params> = numbers.iter().map(|&n| ask(a.as_ref(), n)).collect();
        let b = make(7);
        let backward: Vec<Params> = numbers.iter().rev().map(|&n| ask(b.as_ref(), n)).collect();
        let backward: Vec<Params> = backward.into_iter().rev().collect();
        assert_eq!(
            forward,
            backward,
            "{}: same seed and history must give the same suggestions in any order",
            a.name()
        );
        let again: Vec<Params> = numbers.iter().map(|&n| ask(a.as_ref(), n)).collect();
        assert_eq!(
            forward,
            again,
            "{}: asking twice must give the same answer",
            a.name()
        );
        let c = make(8);
        let other: Vec<Params> = numbers.iter().map(|&n| ask(c.as_ref(), n)).collect();
        assert_ne!(
            forward,
            other,
            "{}: different seeds gave identical suggestions",
            a.name()
        );
    }
}

/// A trial with these parameters, values and state, and nothing else recorded.
pub fn trial(number: u64, params: Params, values: Option<Vec<f64>>, state: TrialState) -> Trial {
    Trial {
        id: number as i64,
        number,
        state,
        params,
        values,
        intermediate: vec![],
        energy: None,
        attrs: BTreeMap::new(),
        worker: None,
        process: None,
        retry_of: None,
        started_at: None,
        finished_at: None,
    }
}

/// Continues `history` to `total` sequential trials: each asks `sampler` for parameters and
/// completes with the values `objective` gives them (one per objective of the study).
pub fn run_trials(
    sampler: &dyn Sampler,
    space: &SearchSpace,
    objectives: &[Objective],
    history: &mut Vec<Trial>,
    total: u64,
    mut objective: impl FnMut(&Params) -> Vec<f64>,
) {
    for number in history.len() as u64..total {
        let ctx = SampleContext {
            space,
            objectives,
            history,
            number,
        };
        let p = sampler
            .suggest(&ctx)
            .unwrap_or_else(|e| panic!("{}: suggest failed: {e}", sampler.name()));
        let values = objective(&p);
        history.push(trial(number, p, Some(values), TrialState::Complete));
    }
}

/// Median of `values` (mean of the middle two for an even count; NaN when empty), for quality
/// checks over several seeds.
pub fn median(mut values: Vec<f64>) -> f64 {
    crate::pruner::median(&mut values).unwrap_or(f64::NAN)
}

/// ZDT1 (Zitzler, Deb & Thiele 2000) on `x ∈ [0, 1]^d`: two costs to minimise with a convex
/// Pareto front `f2 = 1 − √f1` where `x1.. = 0`.
pub fn zdt1(x: &[f64]) -> (f64, f64) {
    let g = zdt_g(x);
    (x[0], g * (1.0 - (x[0] / g).sqrt()))
}

/// ZDT2: as [`zdt1`] with the concave front `f2 = 1 − f1²`.
pub fn zdt2(x: &[f64]) -> (f64, f64) {
    let g = zdt_g(x);
    (x[0], g * (1.0 - (x[0] / g).powi(2)))
}

fn zdt_g(x: &[f64]) -> f64 {
    let rest = &x[1..];
    1.0 + 9.0 * rest.iter().sum::<f64>() / rest.len().max(1) as f64
}

/// Runs `sampler` for `trials` sequential trials on the two-cost `problem` over `d` parameters
/// `x0..` in `[0, 1]`, recorded as a real study would: accuracy `1 − f1` (maximised) and energy
/// `f2` (minimised). Returns the hypervolume of all the evaluated `(f1, f2)` below the
/// reference point `(1.1, 11)` (the true front of ZDT1 dominates ≈ 11.77 of it, that of ZDT2
/// ≈ 11.43).
pub fn two_objective_hypervolume(
    sampler: &dyn Sampler,
    problem: fn(&[f64]) -> (f64, f64),
    d: usize,
    trials: u64,
) -> f64 {
    let space = SearchSpace {
        params: (0..d)
            .map(|i| (format!("x{i}"), Distribution::float(0.0, 1.0)))
            .collect(),
    };
    let mut points = vec![];
    run_trials(
        sampler,
        &space,
        &sampler_objectives(),
        &mut vec![],
        trials,
        |p| {
            let x: Vec<f64> = (0..d)
                .map(|i| p[&format!("x{i}")].as_f64().unwrap_or(f64::NAN))
                .collect();
            let (f1, f2) = problem(&x);
            points.push((f1, f2));
            vec![1.0 - f1, f2]
        },
    );
    crate::sampler::nsga2::hypervolume_2d(&points, (1.1, 11.0))
}
