//! greenlab-stats.
