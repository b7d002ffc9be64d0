//! Multi-objective sampling (being written).
