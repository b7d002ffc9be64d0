//! Empty stand-in for `burn-tch`, so that Cargo's lockfile does not hold two packages linking
//! libtorch (see this crate's Cargo.toml). Nothing in greenlab enables Burn's `tch` feature,
//! so this crate is never built; if someone enables it, compilation fails where Burn names its
//! missing types, which is the intended signal to use greenlab-torch instead.
