//! greenlab-engine.
