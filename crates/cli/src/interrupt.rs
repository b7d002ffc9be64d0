//! Ctrl-C (SIGINT) and SIGTERM for the long-running commands.
//!
//! The first signal sets a flag that the training loop polls after every step and the tuning
//! workers poll between trials: the run in progress stops at once, is recorded as interrupted
//! with the energy it spent (a study trial as `failed`, a factorial point to be run again), the
//! results so far stay in the storage and the process exits with 130, so rerunning the same
//! command resumes. The handler then restores the default action: a second Ctrl-C ends the
//! process immediately (leases of its running trials expire and they are reaped as usual).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Exit code of an interrupted command, as shells report SIGINT (128 + 2).
pub const EXIT_INTERRUPTED: u8 = 130;

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

const MESSAGE: &[u8] = b"\ngreenlab: interrupted; stopping the run in progress and recording \
what it did (Ctrl-C again quits at once)\n";

extern "C" fn on_signal(signal: libc::c_int) {
    // Only async-signal-safe work here: an atomic store, write(2) and signal(2).
    if let Some(flag) = FLAG.get() {
        flag.store(true, Ordering::SeqCst);
    }
    // SAFETY: write(2) and signal(2) are async-signal-safe; the buffer is a static.
    unsafe {
        libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// Installs the handler for SIGINT and SIGTERM (once per process) and returns the flag it sets.
pub fn install() -> Arc<AtomicBool> {
    let flag = Arc::clone(FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))));
    let handler: extern "C" fn(libc::c_int) = on_signal;
    // SAFETY: the handler only does async-signal-safe work (see `on_signal`).
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
    flag
}

/// Whether an interrupt arrived (false when no handler was installed).
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// The error a command returns when it stopped because of an interrupt; `main` prints it and
/// exits with [`EXIT_INTERRUPTED`].
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted: {}", self.0)
    }
}

impl std::error::Error for Interrupted {}

/// The message of an error that an interrupt caused (this module's [`Interrupted`] or an
/// experiment's), or `None` for any other error.
pub fn message(err: &anyhow::Error) -> Option<String> {
    if let Some(stopped) = err.downcast_ref::<Interrupted>() {
        return Some(stopped.to_string());
    }
    match err.downcast_ref::<greenlab_experiment::ExperimentError>() {
        Some(e @ greenlab_experiment::ExperimentError::Interrupted(_)) => Some(e.to_string()),
        _ => None,
    }
}
