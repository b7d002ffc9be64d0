//! The engine conformance suite (filled in with the first engine).
