//! The measured work's share of the machine: CPU time and memory of a process tree against the
//! whole machine's busy CPU time, read from procfs.
//!
//! Energy counters and the utilisation estimate are machine-wide: a neighbour's load lands in
//! them. A [`Tracker`](crate::Tracker) therefore gives every window two figures: the *machine*
//! figure (what the counters or the machine-wide model say) and the *attributed* figure, this
//! process tree's share. The share of CPU-side counters is the tree's CPU time over the
//! machine's busy CPU time in the window; the estimate's attributed figure is the tree's CPU
//! time × the model's power per logical CPU, plus the DRAM term for the tree's resident memory
//! (CodeCarbon's `tracking_mode="process"` does the same for CPU and RAM). GPUs use NVML's
//! per-process utilisation where the driver reports it, the whole device otherwise.
//!
//! The tree is the process and every live descendant (found through
//! `/proc/PID/task/TID/children`), plus the children it has already waited for (`cutime` and
//! `cstime` in `/proc/PID/stat`). procfs counts CPU time in clock ticks (100 per second), so
//! windows shorter than a few ticks get a coarse share.

use std::path::{Path, PathBuf};

use crate::error::MeterError;
use crate::units::Seconds;

/// Clock ticks per second of procfs's CPU times (`sysconf(_SC_CLK_TCK)`; 100 on Linux).
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn page_bytes() -> f64 {
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as f64 } else { 4096.0 }
}

/// One reading of a process tree and of the machine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessSample {
    /// CPU time of the tree: the process, its live descendants and their waited-for children.
    pub tree_cpu: Seconds,
    /// Busy CPU time of the whole machine (all CPUs), from `/proc/stat`.
    pub machine_busy: Seconds,
    /// Resident memory of the tree, in GiB.
    pub tree_rss_gib: f64,
    /// The processes of the tree (the root first).
    pub pids: Vec<u32>,
}

/// Reads a process tree's CPU time and memory from procfs (a fake tree in tests).
#[derive(Clone, Debug)]
pub struct ProcessTree {
    proc_root: PathBuf,
    pid: u32,
    ticks: f64,
    page: f64,
}

impl ProcessTree {
    /// The tree rooted at `pid`, read from `proc_root` (normally `/proc`).
    pub fn new(proc_root: &Path, pid: u32) -> ProcessTree {
        ProcessTree {
            proc_root: proc_root.to_owned(),
            pid,
            ticks: ticks_per_second(),
            page: page_bytes(),
        }
    }

    /// The root process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Reads the tree and the machine now.
    pub fn sample(&self) -> Result<ProcessSample, MeterError> {
        let stat = self.proc_root.join("stat");
        let text = std::fs::read_to_string(&stat).map_err(|e| MeterError::io(&stat, e))?;
        let busy_ticks = crate::estimate::parse_stat(&stat, &text)?.busy;
        let mut pids = Vec::new();
        self.collect(self.pid, &mut pids, 0);
        let mut ticks = 0u64;
        let mut pages = 0u64;
        for (i, &pid) in pids.iter().enumerate() {
            match self.process_ticks(pid) {
                Ok(t) => ticks += t,
                // The root must be readable; a descendant may exit between the listing and
                // the read (its time is then in its parent's waited-for children).
                Err(e) if i == 0 => return Err(e),
                Err(_) => continue,
            }
            pages += self.resident_pages(pid).unwrap_or(0);
        }
        Ok(ProcessSample {
            tree_cpu: Seconds(ticks as f64 / self.ticks),
            machine_busy: Seconds(busy_ticks as f64 / self.ticks),
            tree_rss_gib: pages as f64 * self.page / (1024.0 * 1024.0 * 1024.0),
            pids,
        })
    }

    /// Adds `pid` and its live descendants to `out` (depth-first, bounded against cycles).
    fn collect(&self, pid: u32, out: &mut Vec<u32>, depth: usize) {
        if depth > 64 || out.contains(&pid) {
            return;
        }
        out.push(pid);
        let tasks = self.proc_root.join(pid.to_string()).join("task");
        let Ok(entries) = std::fs::read_dir(&tasks) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("children")) else {
                continue;
            };
            for child in text
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                self.collect(child, out, depth + 1);
            }
        }
    }

    /// utime + stime + cutime + cstime of one process, in clock ticks.
    fn process_ticks(&self, pid: u32) -> Result<u64, MeterError> {
        let path = self.proc_root.join(pid.to_string()).join("stat");
        let text = std::fs::read_to_string(&path).map_err(|e| MeterError::io(&path, e))?;
        parse_process_ticks(&path, &text)
    }

    fn resident_pages(&self, pid: u32) -> Option<u64> {
        let path = self.proc_root.join(pid.to_string()).join("statm");
        let text = std::fs::read_to_string(path).ok()?;
        text.split_whitespace().nth(1)?.parse().ok()
    }
}

/// Fields 14–17 of `/proc/PID/stat` (after the command name, which may hold spaces and
/// parentheses: everything up to the last `)` is skipped).
fn parse_process_ticks(path: &Path, text: &str) -> Result<u64, MeterError> {
    let after = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| MeterError::malformed(path, "no `(comm)` field"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, i.e. index 11 here.
    let get = |i: usize| -> Result<u64, MeterError> {
        fields
            .get(i)
            .and_then(|f| f.parse::<i64>().ok())
            .map(|v| v.max(0) as u64)
            .ok_or_else(|| MeterError::malformed(path, format!("field {} is not a number", i + 3)))
    };
    Ok(get(11)? + get(12)? + get(13)? + get(14)?)
}

/// The share of the machine's busy CPU time in a window that the tree used: `Δtree / Δbusy`,
/// in `0..=1`. A window in which procfs saw no busy tick at all gets 1 if the tree used any
/// CPU time and 0 otherwise.
pub fn cpu_share(start: &ProcessSample, end: &ProcessSample) -> f64 {
    let tree = (end.tree_cpu.0 - start.tree_cpu.0).max(0.0);
    let busy = (end.machine_busy.0 - start.machine_busy.0).max(0.0);
    if busy <= 0.0 {
        return if tree > 0.0 { 1.0 } else { 0.0 };
    }
    (tree / busy).clamp(0.0, 1.0)
}

/// Writes a fake procfs for tests: `/proc/stat` with the machine's busy ticks, and one process
/// per entry `(pid, ticks, rss_pages, children)`.
pub mod fake {
    use std::path::Path;

    /// Writes (or rewrites) the fake tree under `root`.
    pub fn write_proc(
        root: &Path,
        machine_busy_ticks: u64,
        processes: &[(u32, u64, u64, &[u32])],
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(root)?;
        std::fs::write(
            root.join("stat"),
            format!("cpu  {machine_busy_ticks} 0 0 1000000 0 0 0 0 0 0\ncpu0 0 0 0 0\n"),
        )?;
        for &(pid, ticks, pages, children) in processes {
            let dir = root.join(pid.to_string());
            let task = dir.join("task").join(pid.to_string());
            std::fs::create_dir_all(&task)?;
            // utime carries the ticks; stime, cutime and cstime are 0.
            std::fs::write(
                dir.join("stat"),
                format!("{pid} (a (b) c) S 1 1 1 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 1 1 1\n"),
            )?;
            std::fs::write(dir.join("statm"), format!("100 {pages} 0 0 0 0 0\n"))?;
            let list: Vec<String> = children.iter().map(u32::to_string).collect();
            std::fs::write(task.join("children"), list.join(" "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_adds_live_descendants_and_survives_odd_names() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        fake::write_proc(
            dir.path(),
            500,
            &[
                (10, 100, 256, &[11]),
                (11, 50, 256, &[12]),
                (12, 25, 0, &[]),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let tree = ProcessTree::new(dir.path(), 10);
        let s = tree.sample().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.pids, vec![10, 11, 12]);
        let tick = 1.0 / ticks_per_second();
        assert!((s.tree_cpu.0 - 175.0 * tick).abs() < 1e-9, "{s:?}");
        assert!((s.machine_busy.0 - 500.0 * tick).abs() < 1e-9, "{s:?}");
        assert!(s.tree_rss_gib > 0.0);
    }

    #[test]
    fn the_share_is_the_tree_over_the_busy_machine() {
        let a = ProcessSample {
            tree_cpu: Seconds(1.0),
            machine_busy: Seconds(2.0),
            ..Default::default()
        };
        let b = ProcessSample {
            tree_cpu: Seconds(2.0),
            machine_busy: Seconds(6.0),
            ..Default::default()
        };
        assert_eq!(cpu_share(&a, &b), 0.25);
        assert_eq!(cpu_share(&a, &a), 0.0);
        let clock_skew = ProcessSample {
            tree_cpu: Seconds(9.0),
            ..b.clone()
        };
        assert_eq!(cpu_share(&a, &clock_skew), 1.0, "clamped");
    }

    #[test]
    fn a_missing_root_is_an_error_and_a_vanished_child_is_not() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        fake::write_proc(dir.path(), 10, &[(10, 1, 1, &[99])]).unwrap_or_else(|e| panic!("{e}"));
        let s = ProcessTree::new(dir.path(), 10).sample();
        assert!(s.is_ok(), "{s:?}");
        assert!(ProcessTree::new(dir.path(), 42).sample().is_err());
    }

    #[test]
    fn this_process_is_readable_on_linux() {
        let s = ProcessTree::new(Path::new("/proc"), std::process::id()).sample();
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.pids.first(), Some(&std::process::id()));
        assert!(s.tree_rss_gib > 0.0);
    }
}
