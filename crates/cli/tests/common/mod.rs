//! Helpers shared by the cli's integration tests.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the built `greenlab` binary.
pub fn greenlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greenlab"))
        .args(args)
        .output()
        .expect("the greenlab binary runs")
}

/// The process's standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes an IDX file of unsigned bytes with the given dimensions.
pub fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// A tiny Fashion-MNIST-shaped set: 28×28 images, 10 classes; class k lights rows 2k..2k+2 on
/// top of a little seeded noise, so a small network learns it in a couple of epochs.
pub fn tiny_dataset(dir: &Path, train: usize, test: usize) {
    let mut state = 12345u64;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % 60) as u8
    };
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let mut images = Vec::with_capacity(n * 784);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let label = (i * 7 % 10) as u8;
            labels.push(label);
            for r in 0..28 {
                for _ in 0..28 {
                    let lit = r / 2 == label as usize + 2;
                    images.push(if lit { 200 + noise() / 2 } else { noise() });
                }
            }
        }
        write_idx(
            &dir.join(format!("{prefix}-images-idx3-ubyte")),
            &[n as u32, 28, 28],
            &images,
        );
        write_idx(
            &dir.join(format!("{prefix}-labels-idx1-ubyte")),
            &[n as u32],
            &labels,
        );
    }
}

/// A tiny CIFAR-10-format set, as distributed (`data_batch_1.bin` … `data_batch_5.bin`,
/// `test_batch.bin`: records of 1 label byte and 3×32×32 channel-major pixels): `per_batch`
/// records per training batch, `test` in the test batch; class k brightens rows 3k..3k+3 of the
/// red channel on top of seeded noise, so a small network learns it quickly.
pub fn tiny_cifar(dir: &Path, per_batch: usize, test: usize) {
    let mut state = 987654321u64;
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % 60) as u8
    };
    let files = [
        ("data_batch_1.bin", per_batch),
        ("data_batch_2.bin", per_batch),
        ("data_batch_3.bin", per_batch),
        ("data_batch_4.bin", per_batch),
        ("data_batch_5.bin", per_batch),
        ("test_batch.bin", test),
    ];
    for (b, (name, n)) in files.iter().enumerate() {
        let mut bytes = Vec::with_capacity(n * 3073);
        for i in 0..*n {
            let label = ((i + b) * 7 % 10) as u8;
            bytes.push(label);
            for channel in 0..3 {
                for r in 0..32 {
                    for _ in 0..32 {
                        let lit = channel == 0 && r / 3 == label as usize;
                        bytes.push(if lit { 200 + noise() / 2 } else { noise() });
                    }
                }
            }
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
