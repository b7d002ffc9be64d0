//! Checks the NVML reader on a real NVIDIA GPU: for the same window, the total-energy counter
//! against power sampled every 20 ms and integrated (trapezoid), and records the trace in the
//! format `TraceBackend::parse_csv` replays, so it can become a test fixture.
//!
//! `cargo run --release -p greenlab-meter --example nvml_check -- [SECONDS] [TRACE.csv]`
//! Run a GPU workload alongside (e.g. `greenlab train --device cuda`) for a loaded figure.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use greenlab_meter::nvml::{GpuBackend, NvmlBackend};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let trace_path = args.next();
    let mut backend = match NvmlBackend::load(None) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("nvml_check: {e}");
            std::process::exit(1);
        }
    };
    let count = match backend.device_count() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nvml_check: {e}");
            std::process::exit(1);
        }
    };
    println!("devices: {count}, window {seconds} s, power sampled every 20 ms");
    let mut trace = String::from("t_s,device,energy_mj,power_mw\n");
    let start = Instant::now();
    let mut first_energy = Vec::new();
    let mut last_power: Vec<(f64, f64)> = Vec::new();
    let mut integral_j = vec![0.0f64; count as usize];
    let mut samples = 0u64;
    for d in 0..count {
        let e = backend.energy_mj(d).ok().flatten();
        let p = backend.power_mw(d).unwrap_or(0);
        first_energy.push(e);
        last_power.push((0.0, f64::from(p)));
        let _ = writeln!(
            trace,
            "0,{d},{},{p}",
            e.map(|v| v.to_string()).unwrap_or_default()
        );
    }
    let step = Duration::from_millis(20);
    let mut next = start + step;
    while start.elapsed().as_secs_f64() < seconds {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        next += step;
        let t = start.elapsed().as_secs_f64();
        samples += 1;
        for d in 0..count {
            let idx = d as usize;
            let e = backend.energy_mj(d).ok().flatten();
            match backend.power_mw(d) {
                Ok(p) => {
                    let (t0, p0) = last_power[idx];
                    integral_j[idx] += 0.5 * (p0 + f64::from(p)) * 1e-3 * (t - t0);
                    last_power[idx] = (t, f64::from(p));
                    let _ = writeln!(
                        trace,
                        "{t:.6},{d},{},{p}",
                        e.map(|v| v.to_string()).unwrap_or_default()
                    );
                }
                Err(err) => println!("device {d} at {t:.3} s: {err}"),
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    for d in 0..count {
        let idx = d as usize;
        let last = backend.energy_mj(d).ok().flatten();
        match (first_energy[idx], last) {
            (Some(a), Some(b)) => {
                let counter_j = (b.saturating_sub(a)) as f64 * 1e-3;
                println!(
                    "gpu {d}: counter {counter_j:.3} J, integrated power {:.3} J \
                     ({samples} samples), ratio integrated/counter {:.4}, mean power {:.1} W",
                    integral_j[idx],
                    integral_j[idx] / counter_j.max(1e-9),
                    counter_j / elapsed
                );
            }
            _ => println!(
                "gpu {d}: no energy counter; integrated power {:.3} J over {elapsed:.2} s",
                integral_j[idx]
            ),
        }
    }
    if let Some(path) = trace_path {
        match std::fs::write(&path, trace) {
            Ok(()) => println!("trace written to {path}"),
            Err(e) => eprintln!("nvml_check: cannot write {path}: {e}"),
        }
    }
}
