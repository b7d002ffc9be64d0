//! Unit tests of the GP sampler.
