//! Grid search (being written).
