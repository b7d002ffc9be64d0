//! Quasi-random search (being written).
