//! Which process holds a trial's lease, and whether that process still lives.
//!
//! A lease names its worker process by host, process id and an *identity* that stays unique
//! over time: the kernel's boot id, the process-id namespace and the process's start time (in
//! clock ticks since boot, from `/proc/<pid>/stat`). A worker that reads the same boot id and
//! namespace shares the process table with the holder, so it can tell for certain whether the
//! holder is gone — its pid no longer exists, or now belongs to a process started at another
//! time — and reap its trial at once instead of waiting for the lease to expire. Anyone else
//! (another machine, another container) cannot tell and relies on the lease.
//!
//! The proc file system's root is a constructor parameter, so tests point it at a fake tree.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The worker process that holds (or held) a trial.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkerProcess {
    /// The machine's name, as shown in reports and used to group energy by host.
    pub host: String,
    /// Process id (in the namespace named by `identity`).
    pub pid: u32,
    /// `<boot id>/<pid namespace>/<start time in clock ticks>`; whatever part could not be
    /// read is empty, and then nobody can tell that the process is gone.
    pub identity: String,
}

impl WorkerProcess {
    /// The part of the identity that names the process table (`<boot id>/<pid namespace>`),
    /// when both parts are known.
    pub fn table(&self) -> Option<&str> {
        let (table, start) = self.identity.rsplit_once('/')?;
        let (boot, ns) = table.split_once('/')?;
        (!boot.is_empty() && !ns.is_empty() && !start.is_empty()).then_some(table)
    }

    fn start(&self) -> Option<&str> {
        self.table()?;
        self.identity.rsplit_once('/').map(|(_, s)| s)
    }
}

/// What this machine's process table says about a lease holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// The process runs.
    Alive,
    /// The process is certainly gone (its pid is free or belongs to a younger process).
    Gone,
    /// The holder is on another machine or namespace, or its identity is incomplete.
    Unknown,
}

/// The process table of this machine as seen through a proc file system.
#[derive(Clone, Debug)]
pub struct ProcessTable {
    root: PathBuf,
    /// `<boot id>/<pid namespace>`, when both could be read.
    table: Option<String>,
}

impl ProcessTable {
    /// The table under `root` (normally `/proc`): reads the boot id and this process's pid
    /// namespace once. A table whose boot id or namespace cannot be read answers
    /// [`Liveness::Unknown`] for everyone (leases still expire).
    pub fn new(root: impl Into<PathBuf>) -> ProcessTable {
        let root = root.into();
        let boot = std::fs::read_to_string(root.join("sys/kernel/random/boot_id"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && !s.contains('/'));
        let ns = std::fs::read_link(root.join("self/ns/pid"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty() && !s.contains('/'));
        let table = match (boot, ns) {
            (Some(b), Some(n)) => Some(format!("{b}/{n}")),
            _ => None,
        };
        ProcessTable { root, table }
    }

    /// The identity of process `pid` on this machine (see [`WorkerProcess::identity`]).
    pub fn identity(&self, pid: u32) -> String {
        let table = self.table.clone().unwrap_or_else(|| "/".into());
        let start = start_time(&self.root, pid).unwrap_or_default();
        format!("{table}/{start}")
    }

    /// This process, on the host named `host`.
    pub fn current(&self, host: &str) -> WorkerProcess {
        let pid = std::process::id();
        WorkerProcess {
            host: host.to_string(),
            pid,
            identity: self.identity(pid),
        }
    }

    /// Whether `holder` still runs, as far as this machine can tell.
    pub fn liveness(&self, holder: &WorkerProcess) -> Liveness {
        let (Some(mine), Some(theirs), Some(start)) =
            (self.table.as_deref(), holder.table(), holder.start())
        else {
            return Liveness::Unknown;
        };
        if mine != theirs {
            return Liveness::Unknown;
        }
        match start_time(&self.root, holder.pid) {
            Some(now) if now == start => Liveness::Alive,
            // A pid that is free, or reused by a process started at another time.
            Some(_) => Liveness::Gone,
            None if !self.root.join(holder.pid.to_string()).exists() => Liveness::Gone,
            // The pid exists but its stat could not be read: do not guess.
            None => Liveness::Unknown,
        }
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot). The command name in
/// field 2 may hold spaces and parentheses, so fields are counted after its last `)`.
/// A zombie (exited, not yet reaped by its parent) has no start time: it is gone.
fn start_time(root: &Path, pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(root.join(pid.to_string()).join("stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name come fields 3 (state), 4, ...: field 22 is the 20th of them.
    let mut fields = after.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return Some("exited".into());
    }
    let start = fields.nth(18)?;
    start
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| start.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(dir: &Path, boot: &str, ns: &str) {
        std::fs::create_dir_all(dir.join("sys/kernel/random")).unwrap();
        std::fs::write(dir.join("sys/kernel/random/boot_id"), format!("{boot}\n")).unwrap();
        std::fs::create_dir_all(dir.join("self/ns")).unwrap();
        std::os::unix::fs::symlink(ns, dir.join("self/ns/pid")).unwrap();
    }

    fn fake_process(dir: &Path, pid: u32, start: u64) {
        let d = dir.join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        // A name with a space and a parenthesis, as `(sd-pam)` or `tmux: server` have.
        let fields: Vec<String> = (3..=52)
            .map(|i| match i {
                3 => "S".to_string(),
                22 => start.to_string(),
                _ => "0".into(),
            })
            .collect();
        std::fs::write(
            d.join("stat"),
            format!("{pid} (a (b) c) {}\n", fields.join(" ")),
        )
        .unwrap();
    }

    #[test]
    fn a_local_process_is_alive_until_its_pid_is_free_or_reused() {
        let dir = tempfile::tempdir().unwrap();
        fake_proc(dir.path(), "boot-1", "pid:[4026531836]");
        fake_process(dir.path(), 42, 1000);
        let table = ProcessTable::new(dir.path());
        let holder = WorkerProcess {
            host: "h".into(),
            pid: 42,
            identity: table.identity(42),
        };
        assert_eq!(holder.identity, "boot-1/pid:[4026531836]/1000");
        assert_eq!(table.liveness(&holder), Liveness::Alive);
        // The pid was reused by a younger process.
        fake_process(dir.path(), 42, 2000);
        assert_eq!(table.liveness(&holder), Liveness::Gone);
        std::fs::remove_dir_all(dir.path().join("42")).unwrap();
        assert_eq!(table.liveness(&holder), Liveness::Gone);
    }

    #[test]
    fn other_machines_namespaces_and_incomplete_identities_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        fake_proc(dir.path(), "boot-1", "pid:[1]");
        let table = ProcessTable::new(dir.path());
        for identity in [
            "boot-2/pid:[1]/1000", // another machine (or this one before a reboot)
            "boot-1/pid:[2]/1000", // another container on this machine
            "boot-1/pid:[1]/",     // start time unknown
            "//1000",
            "",
        ] {
            let holder = WorkerProcess {
                host: "h".into(),
                pid: 7,
                identity: identity.into(),
            };
            assert_eq!(table.liveness(&holder), Liveness::Unknown, "{identity:?}");
        }
        // A table that cannot read its own boot id cannot tell anything.
        let bare = tempfile::tempdir().unwrap();
        let blind = ProcessTable::new(bare.path());
        let holder = WorkerProcess {
            host: "h".into(),
            pid: 7,
            identity: "boot-1/pid:[1]/1000".into(),
        };
        assert_eq!(blind.liveness(&holder), Liveness::Unknown);
    }

    #[test]
    fn the_real_proc_knows_this_process_and_a_finished_child() {
        let table = ProcessTable::new("/proc");
        let me = table.current("here");
        assert!(me.table().is_some(), "identity {:?}", me.identity);
        assert_eq!(table.liveness(&me), Liveness::Alive);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let holder = WorkerProcess {
            host: "here".into(),
            pid: child.id(),
            identity: table.identity(child.id()),
        };
        child.wait().unwrap();
        assert_eq!(table.liveness(&holder), Liveness::Gone);
    }
}
