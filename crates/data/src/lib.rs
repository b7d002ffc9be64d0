//! greenlab-data: real image-classification datasets, read from the files users have.
//!
//! Readers for the IDX format (MNIST, Fashion-MNIST; gzip-compressed or raw) and the binary
//! version of CIFAR-10, each checked thoroughly (magic numbers, sizes, label ranges, counts) so
//! that a corrupt file is an error naming the file, never a silently wrong dataset. Pixels are
//! scaled to `[0, 1]` as in the paper. [`Batches`] iterates over mini-batches in an order
//! shuffled with a seed. This crate does not download anything.
//!
//! ```no_run
//! use greenlab_data::{DatasetKind, load};
//! let split = load(DatasetKind::FashionMnist, "/usr/share/datasets/fashion-mnist".as_ref())?;
//! assert_eq!(split.train.len(), 60_000);
//! # Ok::<(), greenlab_data::DataError>(())
//! ```

mod batch;
mod cifar;
mod idx;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use batch::{Batch, Batches};
pub use cifar::{CIFAR10_FILES, load_cifar10};
pub use idx::{load_idx_pair, read_idx};

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const DEFAULT_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// What can go wrong reading a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A required file is missing.
    #[error("missing dataset file {path}; {hint}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// What to do about it.
        hint: String,
    },
    /// A file is not what it should be.
    #[error("corrupt dataset file {path}: {problem}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Images and labels do not match.
    #[error("dataset mismatch: {0}")]
    Mismatch(String),
    /// An unknown dataset name.
    #[error("unknown dataset {0:?}; known: fashion-mnist, mnist, cifar10")]
    UnknownDataset(String),
}

/// The datasets greenlab reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Zalando's Fashion-MNIST (IDX files).
    FashionMnist,
    /// LeCun's MNIST (IDX files).
    Mnist,
    /// CIFAR-10, binary version (`data_batch_1.bin` … `test_batch.bin`).
    Cifar10,
}

impl DatasetKind {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Mnist => "mnist",
            DatasetKind::Cifar10 => "cifar10",
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "fashion-mnist" | "fmnist" => Ok(DatasetKind::FashionMnist),
            "mnist" => Ok(DatasetKind::Mnist),
            "cifar10" | "cifar-10" => Ok(DatasetKind::Cifar10),
            _ => Err(DataError::UnknownDataset(s.to_string())),
        }
    }
}

/// Labelled images, all of one shape, pixels in `[0, 1]`, stored example-major (N × C × H × W).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Channels per image.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Number of classes (labels are `0..classes`).
    pub classes: usize,
    /// Pixel values, `len() * channels * height * width` of them.
    pub images: Vec<f32>,
    /// One label per image.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per example.
    pub fn example_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The first `n` examples (all of them if `n` is larger), e.g. for quick presets.
    pub fn truncated(mut self, n: usize) -> Dataset {
        let n = n.min(self.len());
        self.images.truncate(n * self.example_len());
        self.labels.truncate(n);
        self
    }

    /// A seeded, class-balanced-in-expectation random subset of `n` examples.
    pub fn subset(&self, n: usize, seed: u64) -> Dataset {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        order.truncate(n.min(self.len()));
        order.sort_unstable();
        let el = self.example_len();
        let mut images = Vec::with_capacity(order.len() * el);
        for &i in &order {
            images.extend_from_slice(&self.images[i * el..(i + 1) * el]);
        }
        Dataset {
            channels: self.channels,
            height: self.height,
            width: self.width,
            classes: self.classes,
            images,
            labels: order.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

/// A training and a test set.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Training examples.
    pub train: Dataset,
    /// Held-out test examples.
    pub test: Dataset,
}

/// Loads a dataset from a folder holding its standard files.
///
/// IDX datasets look for `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
/// `t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]`; CIFAR-10 for
/// `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin` (also inside a
/// `cifar-10-batches-bin/` subfolder).
pub fn load(kind: DatasetKind, dir: &Path) -> Result<Split, DataError> {
    match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => {
            let hint = match kind {
                DatasetKind::FashionMnist => {
                    "install it with `apt-get install dataset-fashion-mnist` (files go to /usr/share/datasets/fashion-mnist) or pass --data-dir"
                }
                _ => {
                    "put MNIST's four IDX files (train-images-idx3-ubyte.gz, …) in one folder and pass --data-dir"
                }
            };
            let train = load_idx_pair(dir, "train", hint)?;
            let test = load_idx_pair(dir, "t10k", hint)?;
            if (train.height, train.width) != (test.height, test.width) {
                return Err(DataError::Mismatch(format!(
                    "training images are {}x{} but test images are {}x{}",
                    train.height, train.width, test.height, test.width
                )));
            }
            Ok(Split { train, test })
        }
        DatasetKind::Cifar10 => load_cifar10(dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_parse() {
        assert_eq!(
            "fashion-mnist".parse::<DatasetKind>().unwrap(),
            DatasetKind::FashionMnist
        );
        assert_eq!(
            "CIFAR10".parse::<DatasetKind>().unwrap(),
            DatasetKind::Cifar10
        );
        assert!(matches!(
            "imagenet".parse::<DatasetKind>(),
            Err(DataError::UnknownDataset(_))
        ));
    }

    #[test]
    fn subset_is_seeded_and_consistent() {
        let ds = Dataset {
            channels: 1,
            height: 1,
            width: 2,
            classes: 10,
            images: (0..20).map(|i| i as f32).collect(),
            labels: (0..10).collect(),
        };
        let a = ds.subset(4, 7);
        assert_eq!(a, ds.subset(4, 7));
        assert_eq!(a.len(), 4);
        for (k, &label) in a.labels.iter().enumerate() {
            // the image of example i is [2i, 2i+1]
            assert_eq!(a.images[2 * k], 2.0 * label as f32);
        }
    }
}
