//! Tree-structured Parzen estimator (being written).
