//! greenlab-model.
