//! CIFAR-10, binary version: records of 1 label byte then 3×32×32 pixel bytes.

use std::path::{Path, PathBuf};

use crate::{DataError, Dataset, Split};

const RECORD: usize = 1 + 3 * 32 * 32;

fn read_batch(path: &Path, into: &mut Dataset) -> Result<(), DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(DataError::Corrupt {
            path: path.to_path_buf(),
            problem: format!(
                "{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records; the file is truncated",
                bytes.len()
            ),
        });
    }
    for record in bytes.chunks_exact(RECORD) {
        if record[0] >= 10 {
            return Err(DataError::Corrupt {
                path: path.to_path_buf(),
                problem: format!("label {} is outside 0..10", record[0]),
            });
        }
        into.labels.push(record[0]);
        into.images
            .extend(record[1..].iter().map(|&p| p as f32 / 255.0));
    }
    Ok(())
}

fn empty() -> Dataset {
    Dataset {
        channels: 3,
        height: 32,
        width: 32,
        classes: 10,
        images: Vec::new(),
        labels: Vec::new(),
    }
}

/// The files of CIFAR-10's binary version (`cifar-10-binary.tar.gz`), in the order they are read.
pub const CIFAR10_FILES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];

/// Loads CIFAR-10's binary batches from `dir` (or `dir/cifar-10-batches-bin`): the five
/// training batches and the test batch. A folder without all six files is an error naming the
/// missing ones and every file expected.
pub fn load_cifar10(dir: &Path) -> Result<Split, DataError> {
    let nested = dir.join("cifar-10-batches-bin");
    let base: PathBuf = if !dir.join("test_batch.bin").is_file() && nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    let missing: Vec<&str> = CIFAR10_FILES
        .iter()
        .copied()
        .filter(|f| !base.join(f).is_file())
        .collect();
    if let Some(first) = missing.first() {
        return Err(DataError::Missing {
            path: base.join(first),
            hint: format!(
                "the CIFAR-10 folder {} lacks {} of its 6 files ({}); it needs {} — the binary \
                 version as distributed (cifar-10-binary.tar.gz); pass its folder with --data-dir",
                base.display(),
                missing.len(),
                missing.join(", "),
                CIFAR10_FILES.join(", ")
            ),
        });
    }
    let mut train = empty();
    for name in &CIFAR10_FILES[..5] {
        read_batch(&base.join(name), &mut train)?;
    }
    let mut test = empty();
    read_batch(&base.join(CIFAR10_FILES[5]), &mut test)?;
    Ok(Split { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_rejects_truncation() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
            "test_batch.bin",
        ] {
            let mut bytes = Vec::new();
            for label in [3u8, 7] {
                bytes.push(label);
                bytes.extend(std::iter::repeat_n(255u8, RECORD - 1));
            }
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let split = load_cifar10(dir.path()).unwrap();
        assert_eq!(split.train.len(), 10);
        assert_eq!(split.test.labels, vec![3, 7]);
        assert_eq!(split.train.images[0], 1.0);
        std::fs::write(dir.path().join("test_batch.bin"), [1u8; 100]).unwrap();
        let e = load_cifar10(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("test_batch.bin") && e.contains("truncated"),
            "{e}"
        );
    }

    #[test]
    fn a_partial_folder_names_what_is_missing_and_what_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["data_batch_1.bin", "data_batch_2.bin", "test_batch.bin"] {
            std::fs::write(dir.path().join(name), [0u8; RECORD]).unwrap();
        }
        let e = load_cifar10(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("lacks 3 of its 6 files")
                && e.contains("data_batch_3.bin, data_batch_4.bin, data_batch_5.bin")
                && e.contains(&CIFAR10_FILES.join(", ")),
            "{e}"
        );
        let empty = tempfile::tempdir().unwrap();
        let e = load_cifar10(empty.path()).unwrap_err().to_string();
        assert!(e.contains("lacks 6 of its 6 files"), "{e}");
    }
}
