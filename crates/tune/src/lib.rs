//! greenlab-tune.
