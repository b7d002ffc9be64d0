//! greenlab-store.
