//! greenlab-report.
