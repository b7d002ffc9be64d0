//! greenlab-train.
