//! Burn engine (placeholder while the workspace is laid out).
