//! The engine conformance suite: what every [`Engine`] must do, checked the same way for all.
//!
//! Each engine crate calls [`check_engine`] (or the individual checks, to see them as separate
//! tests) from its `tests/` folder. The checks build the paper's three networks in several
//! sizes, train on a small synthetic problem that any working engine learns in a few dozen
//! steps, and feed malformed batches. They panic with a message naming the engine and what it
//! got wrong, like any test assertion.
//!
//! ```no_run
//! # fn engine() -> Box<dyn greenlab_engine::Engine> { unimplemented!() }
//! greenlab_engine::testing::check_engine(engine().as_ref());
//! ```

use greenlab_data::Batch;
use greenlab_model::{Architecture, InputShape, NetworkSpec};

use crate::{AdamConfig, Engine, EngineError};

/// Fashion-MNIST's shape.
const MNIST: InputShape = InputShape {
    channels: 1,
    height: 28,
    width: 28,
};

/// The small images of the synthetic problem.
const SMALL: InputShape = InputShape {
    channels: 1,
    height: 8,
    width: 8,
};

/// Runs every check below.
pub fn check_engine(engine: &dyn Engine) {
    check_parameter_counts(engine);
    check_evaluate(engine);
    check_learns(engine);
    check_seeded(engine);
    check_bad_batches(engine);
    check_profile(engine);
}

/// The built networks have exactly the parameters their specs count, for all three
/// architectures in several sizes and for one- and three-channel inputs.
pub fn check_parameter_counts(engine: &dyn Engine) {
    let cifar = InputShape {
        channels: 3,
        height: 32,
        width: 32,
    };
    let cases = [
        (
            Architecture::SimpleCnn {
                conv: 1,
                linear: 3,
                relu: true,
            },
            MNIST,
        ),
        (
            Architecture::SimpleCnn {
                conv: 2,
                linear: 3,
                relu: true,
            },
            MNIST,
        ),
        (
            Architecture::SimpleCnn {
                conv: 4,
                linear: 7,
                relu: false,
            },
            MNIST,
        ),
        (
            Architecture::SimpleCnn {
                conv: 2,
                linear: 1,
                relu: true,
            },
            cifar,
        ),
        (Architecture::DensePoly { linear: 1 }, MNIST),
        (Architecture::DensePoly { linear: 3 }, MNIST),
        (Architecture::DensePoly { linear: 7 }, MNIST),
        (Architecture::DenseLinear { linear: 3 }, MNIST),
        (Architecture::DenseLinear { linear: 7 }, SMALL),
    ];
    for (arch, input) in cases {
        let spec = spec(arch, input, 10);
        let trainer = build(engine, &spec, &AdamConfig::default(), 1);
        assert_eq!(
            trainer.parameter_count(),
            spec.parameter_count(),
            "{} engine: {} has {} parameters, its spec counts {}",
            engine.name(),
            spec.name,
            trainer.parameter_count(),
            spec.parameter_count()
        );
    }
}

/// Evaluating a batch gives a finite loss sum and at most one correct answer per example, and
/// does not train: evaluating twice gives the same result.
pub fn check_evaluate(engine: &dyn Engine) {
    for arch in [
        Architecture::SimpleCnn {
            conv: 2,
            linear: 3,
            relu: true,
        },
        Architecture::DensePoly { linear: 3 },
        Architecture::DenseLinear { linear: 3 },
    ] {
        let spec = spec(arch, MNIST, 10);
        let mut trainer = build(engine, &spec, &AdamConfig::default(), 3);
        let batch = separable_batch(MNIST, 10, 7, 11);
        let first = trainer
            .evaluate(&batch)
            .unwrap_or_else(|e| panic!("{} engine: evaluate failed: {e}", engine.name()));
        assert!(
            first.loss_sum.is_finite() && first.loss_sum > 0.0,
            "{} engine: {}: loss sum {} on a fresh network",
            engine.name(),
            spec.name,
            first.loss_sum
        );
        assert!(first.correct <= batch.size);
        let again = trainer.evaluate(&batch).expect("second evaluation");
        assert!(
            (again.loss_sum - first.loss_sum).abs() <= 1e-4 * first.loss_sum.abs(),
            "{} engine: {}: evaluating changed the network ({} then {})",
            engine.name(),
            spec.name,
            first.loss_sum,
            again.loss_sum
        );
        assert_eq!(again.correct, first.correct);
    }
}

/// Every architecture learns a small separable problem: after a few dozen Adam steps the
/// training loss has dropped well below its start and held-out accuracy is high.
pub fn check_learns(engine: &dyn Engine) {
    let classes = 4;
    let adam = AdamConfig {
        lr: 3e-3,
        ..AdamConfig::default()
    };
    let test = separable_batch(SMALL, classes, 200, 999);
    for arch in [
        Architecture::SimpleCnn {
            conv: 1,
            linear: 2,
            relu: true,
        },
        Architecture::DensePoly { linear: 2 },
        Architecture::DenseLinear { linear: 2 },
    ] {
        let spec = spec(arch, SMALL, classes);
        let mut trainer = build(engine, &spec, &adam, 5);
        let before = trainer.evaluate(&test).expect("evaluate before training");
        let mut losses = Vec::new();
        for step in 0..40 {
            let batch = separable_batch(SMALL, classes, 32, 100 + step);
            let stats = trainer
                .train_step(&batch)
                .unwrap_or_else(|e| panic!("{} engine: train step failed: {e}", engine.name()));
            assert!(stats.correct <= batch.size);
            losses.push(stats.loss);
        }
        let after = trainer.evaluate(&test).expect("evaluate after training");
        let first = losses[0];
        let last = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
        assert!(
            first.is_finite() && last < 0.5 * first,
            "{} engine: {} did not learn: first loss {first:.4}, last five {last:.4}",
            engine.name(),
            spec.name
        );
        let acc_before = before.correct as f64 / test.size as f64;
        let acc_after = after.correct as f64 / test.size as f64;
        assert!(
            acc_after >= 0.9 && acc_after > acc_before,
            "{} engine: {}: held-out accuracy {acc_before:.3} before, {acc_after:.3} after training",
            engine.name(),
            spec.name
        );
        assert!(
            after.loss_sum < before.loss_sum,
            "{} engine: {}: held-out loss rose from {} to {}",
            engine.name(),
            spec.name,
            before.loss_sum,
            after.loss_sum
        );
    }
}

/// The same seed gives the same network (the same first loss); another seed another one.
pub fn check_seeded(engine: &dyn Engine) {
    let spec = spec(
        Architecture::SimpleCnn {
            conv: 1,
            linear: 2,
            relu: true,
        },
        SMALL,
        4,
    );
    let batch = separable_batch(SMALL, 4, 16, 3);
    let first_loss = |seed| {
        build(engine, &spec, &AdamConfig::default(), seed)
            .train_step(&batch)
            .expect("train step")
            .loss
    };
    let a = first_loss(42);
    let b = first_loss(42);
    let c = first_loss(43);
    assert!(
        (a - b).abs() <= 1e-6 * a.abs().max(1.0),
        "{} engine: seed 42 gave first losses {a} and {b}",
        engine.name()
    );
    assert!(
        (a - c).abs() > 1e-6,
        "{} engine: seeds 42 and 43 gave the same first loss {a}",
        engine.name()
    );
}

/// Malformed batches are refused with [`EngineError::Batch`], by training and evaluation, and
/// the trainer still works afterwards.
pub fn check_bad_batches(engine: &dyn Engine) {
    let spec = spec(Architecture::DensePoly { linear: 2 }, SMALL, 4);
    let mut trainer = build(engine, &spec, &AdamConfig::default(), 1);
    let good = separable_batch(SMALL, 4, 8, 1);
    let mut bad_label = good.clone();
    bad_label.labels[3] = 4;
    let mut short = good.clone();
    short.images.pop();
    let mut miscounted = good.clone();
    miscounted.size = 9;
    let empty = Batch::default();
    for (what, batch) in [
        ("a label ≥ classes", &bad_label),
        ("an image too short", &short),
        ("a size that does not match", &miscounted),
        ("an empty batch", &empty),
    ] {
        let step = trainer.train_step(batch);
        assert!(
            matches!(step, Err(EngineError::Batch(_))),
            "{} engine: train_step on {what}: {step:?}",
            engine.name()
        );
        let eval = trainer.evaluate(batch);
        assert!(
            matches!(eval, Err(EngineError::Batch(_))),
            "{} engine: evaluate on {what}: {eval:?}",
            engine.name()
        );
    }
    let ok = trainer.train_step(&good);
    assert!(
        ok.is_ok(),
        "{} engine: a good batch failed after bad ones: {ok:?}",
        engine.name()
    );
}

/// Where an engine profiles steps, it times every layer of the spec, in order, with finite,
/// non-negative times, and a whole step that takes time.
pub fn check_profile(engine: &dyn Engine) {
    let spec = spec(
        Architecture::SimpleCnn {
            conv: 2,
            linear: 3,
            relu: true,
        },
        MNIST,
        10,
    );
    let mut trainer = build(engine, &spec, &AdamConfig::default(), 1);
    let batch = separable_batch(MNIST, 10, 16, 2);
    let profile = match trainer.profile_step(&batch) {
        Err(EngineError::Unsupported(_)) => return,
        Err(e) => panic!("{} engine: profile_step failed: {e}", engine.name()),
        Ok(p) => p,
    };
    assert_eq!(profile.layers.len(), spec.layers.len());
    for (timing, layer) in profile.layers.iter().zip(&spec.layers) {
        assert_eq!(timing.index, layer.index);
        assert_eq!(timing.kind, layer.layer.kind());
        let times = [Some(timing.forward), timing.backward];
        for t in times.into_iter().flatten() {
            assert!(
                t.0.is_finite() && t.0 >= 0.0,
                "layer {}: {t:?}",
                layer.index
            );
        }
    }
    for t in [profile.loss, profile.optimizer] {
        assert!(t.0.is_finite() && t.0 >= 0.0, "{t:?}");
    }
    assert!(profile.whole_step.0 > 0.0);
    // the trainer keeps training after profiling
    trainer
        .train_step(&batch)
        .expect("train step after profiling");
}

/// A synthetic, linearly separable problem: class `k` lights up the `k`-th horizontal band of
/// the image (bands split the rows evenly) on top of uniform noise in `[0, 0.3)`.
pub fn separable_batch(shape: InputShape, classes: usize, size: usize, seed: u64) -> Batch {
    let mut rng = SplitMix64(seed);
    let rows = shape.height;
    let per_band = rows.div_ceil(classes).max(1);
    let mut images = Vec::with_capacity(size * shape.len());
    let mut labels = Vec::with_capacity(size);
    for _ in 0..size {
        let label = (rng.next() % classes as u64) as usize;
        labels.push(label as u8);
        for _c in 0..shape.channels {
            for r in 0..rows {
                let lit = (r / per_band) % classes == label;
                for _w in 0..shape.width {
                    let noise = rng.unit() * 0.3;
                    images.push(if lit { 0.7 + noise } else { noise });
                }
            }
        }
    }
    Batch {
        size,
        images,
        labels,
    }
}

fn spec(arch: Architecture, input: InputShape, classes: usize) -> NetworkSpec {
    arch.spec(input, classes)
        .unwrap_or_else(|e| panic!("{arch} on {input:?}: {e}"))
}

fn build(
    engine: &dyn Engine,
    spec: &NetworkSpec,
    adam: &AdamConfig,
    seed: u64,
) -> Box<dyn crate::Trainer> {
    engine
        .build(spec, adam, seed)
        .unwrap_or_else(|e| panic!("{} engine cannot build {}: {e}", engine.name(), spec.name))
}

/// A tiny deterministic generator (SplitMix64), so the suite needs no dependencies.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_batches_are_seeded_and_lit_by_label() {
        let a = separable_batch(SMALL, 4, 10, 1);
        assert_eq!(a, separable_batch(SMALL, 4, 10, 1));
        assert_ne!(a, separable_batch(SMALL, 4, 10, 2));
        assert_eq!(a.images.len(), 10 * 64);
        for (img, &label) in a.images.chunks(64).zip(&a.labels) {
            // rows 2·label and 2·label+1 are lit (8 rows, 4 classes)
            let band: f32 = img[label as usize * 16..label as usize * 16 + 16]
                .iter()
                .sum();
            let total: f32 = img.iter().sum();
            assert!(band > 0.5 * total, "label {label}: {band} of {total}");
        }
    }
}
