//! The engine conformance suite, run against the Burn engine (one test per check).

use greenlab_burn::BurnEngine;
use greenlab_engine::testing;

/// One worker thread per test: the test harness already runs tests side by side.
fn engine() -> BurnEngine {
    BurnEngine::new(Some(1)).expect("a one-thread pool starts")
}

#[test]
fn parameter_counts_match_the_spec() {
    testing::check_parameter_counts(&engine());
}

#[test]
fn evaluation_is_finite_and_read_only() {
    testing::check_evaluate(&engine());
}

#[test]
fn learns_a_separable_problem() {
    testing::check_learns(&engine());
}

#[test]
fn same_seed_same_network() {
    testing::check_seeded(&engine());
}

#[test]
fn bad_batches_are_refused() {
    testing::check_bad_batches(&engine());
}

#[test]
fn profiles_every_layer() {
    testing::check_profile(&engine());
}

#[test]
fn only_the_cpu_is_offered() {
    assert!(BurnEngine::for_device("cuda:0", None).is_err());
    assert!(BurnEngine::new(Some(0)).is_err());
    let e = BurnEngine::for_device("cpu", Some(2)).expect("cpu engine");
    assert_eq!(e.effective_threads(), 2);
}
