//! greenlab-meter.
