//! The quality bar of the training issue on the real data: SimpleCNN(conv=2, linear=3), one
//! epoch, batch 512, Adam with the paper's defaults, on Fashion-MNIST as installed by Debian's
//! `dataset-fashion-mnist` (CI installs it) reaches ≥ 0.80 test accuracy.

use std::path::Path;
use std::time::Instant;

use greenlab_data::{Batch, Batches, DEFAULT_FASHION_MNIST_DIR, DatasetKind, load};
use greenlab_engine::{AdamConfig, Engine};
use greenlab_model::{Architecture, InputShape};
use greenlab_torch::TorchEngine;

#[test]
fn simple_cnn_reaches_80_percent_in_one_epoch() {
    let split = load(
        DatasetKind::FashionMnist,
        Path::new(DEFAULT_FASHION_MNIST_DIR),
    )
    .unwrap_or_else(|e| {
        panic!("{e}\n(install the data with `apt-get install dataset-fashion-mnist`)")
    });
    let input = InputShape {
        channels: split.train.channels,
        height: split.train.height,
        width: split.train.width,
    };
    let spec = Architecture::SimpleCnn {
        conv: 2,
        linear: 3,
        relu: true,
    }
    .spec(input, split.train.classes)
    .unwrap_or_else(|e| panic!("{e}"));
    let engine = TorchEngine::with_threads("cpu", 2).unwrap_or_else(|e| panic!("{e}"));
    let mut trainer = engine
        .build(&spec, &AdamConfig::default(), 1)
        .unwrap_or_else(|e| panic!("{e}"));

    let start = Instant::now();
    let mut batches = Batches::new(&split.train, 512, Some(1));
    let mut batch = Batch::default();
    let (mut seen, mut correct, mut steps) = (0usize, 0usize, 0usize);
    while batches.next_into(&mut batch) {
        let stats = trainer.train_step(&batch).unwrap_or_else(|e| panic!("{e}"));
        assert!(stats.loss.is_finite(), "step {steps}: loss {}", stats.loss);
        seen += batch.size;
        correct += stats.correct;
        steps += 1;
    }
    let train_seconds = start.elapsed().as_secs_f64();
    assert_eq!(seen, 60_000);

    let mut test = Batches::new(&split.test, 1000, None);
    let (mut test_correct, mut test_seen) = (0usize, 0usize);
    while test.next_into(&mut batch) {
        let stats = trainer.evaluate(&batch).unwrap_or_else(|e| panic!("{e}"));
        test_correct += stats.correct;
        test_seen += batch.size;
    }
    let accuracy = test_correct as f64 / test_seen as f64;
    println!(
        "torch engine, SimpleCNN(2,3), 1 epoch, batch 512, 2 threads: train accuracy {:.4}, \
         test accuracy {accuracy:.4}, {steps} steps in {train_seconds:.1} s ({:.0} images/s)",
        correct as f64 / seen as f64,
        seen as f64 / train_seconds
    );
    assert_eq!(test_seen, 10_000);
    assert!(accuracy >= 0.80, "test accuracy {accuracy:.4} < 0.80");
}
