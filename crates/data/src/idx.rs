//! The IDX file format (MNIST, Fashion-MNIST): big-endian header, then raw unsigned bytes.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{DataError, Dataset};

/// The header and payload of one IDX file of unsigned bytes.
#[derive(Debug)]
pub struct IdxArray {
    /// Sizes of each dimension.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes (`0x00 0x00 0x08 ndim`), gzip-compressed or not.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| corrupt(path, format!("gzip stream is damaged ({e})")))?;
        out
    } else {
        raw
    };
    parse_idx(path, &bytes)
}

fn corrupt(path: &Path, problem: impl Into<String>) -> DataError {
    DataError::Corrupt {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

fn parse_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray, DataError> {
    if bytes.len() < 4 {
        return Err(corrupt(
            path,
            format!("{} bytes is too short for an IDX header", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(corrupt(
            path,
            format!(
                "wrong magic number {:02x}{:02x}{:02x}{:02x}; not an IDX file",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(corrupt(
            path,
            format!(
                "element type 0x{:02x} is not unsigned bytes (0x08)",
                bytes[2]
            ),
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > 4 {
        return Err(corrupt(
            path,
            format!("{ndim} dimensions; expected 1 (labels) or 3 (images)"),
        ));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(corrupt(path, "truncated header"));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            u32::from_be_bytes([
                bytes[4 + 4 * i],
                bytes[5 + 4 * i],
                bytes[6 + 4 * i],
                bytes[7 + 4 * i],
            ]) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| corrupt(path, "dimensions overflow"))?;
    let payload = &bytes[header..];
    if payload.len() != expected {
        return Err(corrupt(
            path,
            format!(
                "header promises {expected} values ({dims:?}) but the file holds {}; the file is truncated or padded",
                payload.len()
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: payload.to_vec(),
    })
}

fn find(dir: &Path, stem: &str, hint: &str) -> Result<PathBuf, DataError> {
    let gz = dir.join(format!("{stem}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let raw = dir.join(stem);
    if raw.is_file() {
        return Ok(raw);
    }
    Err(DataError::Missing {
        path: gz,
        hint: hint.to_string(),
    })
}

/// Loads `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` from `dir`
/// (prefix `train` or `t10k`), checking that they agree.
pub fn load_idx_pair(dir: &Path, prefix: &str, hint: &str) -> Result<Dataset, DataError> {
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"), hint)?;
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"), hint)?;
    let images = read_idx(&images_path)?;
    let labels = read_idx(&labels_path)?;
    if images.dims.len() != 3 {
        return Err(corrupt(
            &images_path,
            format!("images need 3 dimensions, found {:?}", images.dims),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(corrupt(
            &labels_path,
            format!("labels need 1 dimension, found {:?}", labels.dims),
        ));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(DataError::Mismatch(format!(
            "{} holds {} images but {} holds {} labels",
            images_path.display(),
            images.dims[0],
            labels_path.display(),
            labels.dims[0]
        )));
    }
    if images.dims[0] == 0 {
        return Err(corrupt(&images_path, "holds no images"));
    }
    if let Some(bad) = labels.data.iter().find(|&&l| l >= 10) {
        return Err(corrupt(
            &labels_path,
            format!("label {bad} is outside 0..10"),
        ));
    }
    Ok(Dataset {
        channels: 1,
        height: images.dims[1],
        width: images.dims[2],
        classes: 10,
        images: images.data.iter().map(|&p| p as f32 / 255.0).collect(),
        labels: labels.data,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Writes a tiny IDX pair (gzip) with `n` images of `h`×`w` into `dir`.
    pub(crate) fn write_pair(dir: &Path, prefix: &str, n: usize, h: usize, w: usize) {
        let mut img = vec![0, 0, 8, 3];
        for d in [n, h, w] {
            img.extend_from_slice(&(d as u32).to_be_bytes());
        }
        img.extend((0..n * h * w).map(|i| (i % 256) as u8));
        let mut lab = vec![0, 0, 8, 1];
        lab.extend_from_slice(&(n as u32).to_be_bytes());
        lab.extend((0..n).map(|i| (i % 10) as u8));
        for (name, bytes) in [
            (format!("{prefix}-images-idx3-ubyte.gz"), img),
            (format!("{prefix}-labels-idx1-ubyte.gz"), lab),
        ] {
            let f = std::fs::File::create(dir.join(name)).unwrap();
            let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            enc.write_all(&bytes).unwrap();
            enc.finish().unwrap();
        }
    }

    #[test]
    fn reads_gzipped_pairs_and_scales_pixels() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "train", 5, 4, 3);
        let ds = load_idx_pair(dir.path(), "train", "").unwrap();
        assert_eq!((ds.len(), ds.height, ds.width), (5, 4, 3));
        assert_eq!(ds.images[1], 1.0 / 255.0);
        assert_eq!(ds.labels, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn corrupt_files_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, [1, 2, 8, 3]).unwrap();
        let e = read_idx(&p).unwrap_err().to_string();
        assert!(
            e.contains("magic") && e.contains(p.to_str().unwrap()),
            "{e}"
        );
        let mut truncated = vec![0, 0, 8, 1];
        truncated.extend_from_slice(&10u32.to_be_bytes());
        truncated.extend([1, 2, 3]);
        std::fs::write(&p, &truncated).unwrap();
        let e = read_idx(&p).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        std::fs::write(&p, [0x1f, 0x8b, 0, 0]).unwrap();
        assert!(read_idx(&p).unwrap_err().to_string().contains("gzip"));
    }

    #[test]
    fn count_mismatch_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "train", 5, 2, 2);
        let other = tempfile::tempdir().unwrap();
        write_pair(other.path(), "train", 4, 2, 2);
        std::fs::copy(
            other.path().join("train-labels-idx1-ubyte.gz"),
            dir.path().join("train-labels-idx1-ubyte.gz"),
        )
        .unwrap();
        assert!(matches!(
            load_idx_pair(dir.path(), "train", ""),
            Err(DataError::Mismatch(_))
        ));
        assert!(
            matches!(load_idx_pair(dir.path(), "t10k", "install it"), Err(DataError::Missing { hint, .. }) if hint == "install it")
        );
    }
}
