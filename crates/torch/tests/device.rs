//! Device selection: names are checked, and a CUDA device libtorch cannot see is an error (a
//! `Device` error naming the fix), never a panic.

use greenlab_engine::{Engine, EngineError};
use greenlab_torch::TorchEngine;

#[test]
fn cpu_engine_reports_its_device() {
    let engine = TorchEngine::new("cpu").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(engine.name(), "torch");
    assert_eq!(engine.device(), "cpu");
    assert!(
        engine.sync_hook().is_none(),
        "no synchronisation on the CPU"
    );
}

#[test]
fn cuda_without_a_visible_gpu_is_a_device_error() {
    let result = TorchEngine::new("cuda:0");
    if tch::Cuda::is_available() {
        // A machine with a GPU and a binary built with the `cuda` feature.
        let engine = result.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(engine.device(), "cuda:0");
        assert!(engine.sync_hook().is_some());
    } else {
        match result {
            Err(EngineError::Device { device, message }) => {
                assert_eq!(device, "cuda:0");
                assert!(message.contains("no CUDA device"), "{message}");
                assert!(message.contains("--device cpu"), "{message}");
            }
            other => panic!("expected a device error, got {other:?}"),
        }
    }
}

#[test]
fn a_gpu_index_past_the_last_gpu_is_a_device_error() {
    let result = TorchEngine::new("cuda:99");
    assert!(
        matches!(result, Err(EngineError::Device { ref device, .. }) if device == "cuda:99"),
        "{result:?}"
    );
}

#[test]
fn unknown_device_names_are_device_errors() {
    for name in ["tpu", "cuda:x", ""] {
        let result = TorchEngine::new(name);
        assert!(
            matches!(result, Err(EngineError::Device { .. })),
            "{name:?}: {result:?}"
        );
    }
}
