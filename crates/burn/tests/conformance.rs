//! The engine conformance suite, run against the Burn engine (one test per check).

use greenlab_burn::{BurnEngine, BurnOptions, SimdLevel};
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
    assert!(BurnEngine::for_device("cuda:0", BurnOptions::default()).is_err());
    assert!(BurnEngine::new(Some(0)).is_err());
    let options = BurnOptions {
        threads: Some(2),
        ..BurnOptions::default()
    };
    let e = BurnEngine::for_device("cpu", options).expect("cpu engine");
    assert_eq!(e.effective_threads(), 2);
}

#[test]
fn vector_levels_are_detected_limited_and_refused_beyond_the_cpu() {
    let native = BurnEngine::new(Some(1)).expect("engine");
    assert_eq!(native.simd_level(), SimdLevel::detect());
    for level in [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512] {
        let options = BurnOptions {
            threads: Some(1),
            simd: Some(level),
        };
        match BurnEngine::with_options(options) {
            Ok(e) => {
                assert!(level <= SimdLevel::detect());
                assert_eq!(e.simd_level(), level);
                // The engine at this level trains (the conformance checks' smallest one).
                testing::check_learns(&e);
            }
            Err(e) => {
                assert!(level > SimdLevel::detect());
                assert!(e.to_string().contains("this CPU has no"), "{e}");
            }
        }
    }
}

#[test]
fn gemm_peak_is_positive_and_finite() {
    let gflops = engine().gemm_gflops(64, 2);
    assert!(gflops.is_finite() && gflops > 0.0, "{gflops}");
}
