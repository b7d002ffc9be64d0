//! Small helpers for reading kernel pseudo-files with errors that name the file.

use std::path::Path;

use crate::error::MeterError;

/// The file's content without surrounding whitespace.
pub(crate) fn read_trimmed(path: &Path) -> Result<String, MeterError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| MeterError::io(path, e))
}

/// The file's content parsed as an unsigned decimal integer.
#[cfg(test)]
pub(crate) fn read_u64(path: &Path) -> Result<u64, MeterError> {
    let text = read_trimmed(path)?;
    parse_u64(path, &text)
}

pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, MeterError> {
    text.parse::<u64>().map_err(|_| {
        MeterError::malformed(
            path,
            format!("expected an unsigned integer, found {text:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else {
            panic!("no temp dir");
        };
        let p = dir.path().join("energy_uj");
        let missing = read_u64(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(missing.contains("energy_uj"), "{missing}");
        std::fs::write(&p, "12x\n").ok();
        let bad = read_u64(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            bad.starts_with("malformed") && bad.contains("\"12x\""),
            "{bad}"
        );
        std::fs::write(&p, " 42\n").ok();
        assert_eq!(read_u64(&p).ok(), Some(42));
    }
}
