//! greenlab-data.
