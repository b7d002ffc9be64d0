//! The engine conformance suite (greenlab_engine::testing) against the libtorch engine on CPU,
//! one test per check so a failure names what broke.

use greenlab_engine::testing;
use greenlab_torch::TorchEngine;

fn engine() -> TorchEngine {
    TorchEngine::with_threads("cpu", 2).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn parameter_counts_match_the_specs() {
    testing::check_parameter_counts(&engine());
}

#[test]
fn evaluation_does_not_train() {
    testing::check_evaluate(&engine());
}

#[test]
fn every_architecture_learns() {
    testing::check_learns(&engine());
}

#[test]
fn seeds_decide_the_initial_network() {
    testing::check_seeded(&engine());
}

#[test]
fn bad_batches_are_refused() {
    testing::check_bad_batches(&engine());
}

#[test]
fn profiles_time_every_layer() {
    testing::check_profile(&engine());
}
