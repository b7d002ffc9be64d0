//! `greenlab measure` end to end: the built binary on real commands, on this machine's meters
//! and on a fake powercap tree whose exact energy is known.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn greenlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_greenlab"))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run greenlab: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_code_is_the_commands_and_json_carries_units_and_sources() {
    let dir = tempdir();
    let json = dir.path().join("out.json");
    let emissions = dir.path().join("emissions.csv");
    let (code, stderr) = run(greenlab()
        .args([
            "measure",
            "--meter",
            "estimate",
            "--idle-s",
            "0.2",
            "--country",
            "FRA",
            "--json",
        ])
        .arg(&json)
        .arg("--emissions-csv")
        .arg(&emissions)
        .args(["--", "sh", "-c", "exit 3"]));
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("ESTIMATED"),
        "the summary must say it is an estimate: {stderr}"
    );
    let v = read_json(&json);
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["command"], serde_json::json!(["sh", "-c", "exit 3"]));
    assert_eq!(v["estimated"], true);
    assert_eq!(v["energy"]["unit"], "J");
    assert_eq!(v["energy"]["source"], "estimated");
    assert_eq!(v["duration"]["unit"], "s");
    assert_eq!(v["carbon"]["intensity"]["value"], 56.0);
    // Idle baseline: gross = idle share + net, net never negative.
    let gross = v["energy"]["value"].as_f64().unwrap_or(f64::NAN);
    let idle_j = v["idle"]["energy"]["value"].as_f64().unwrap_or(f64::NAN);
    let net = v["idle"]["net_energy"]["value"]
        .as_f64()
        .unwrap_or(f64::NAN);
    assert!(
        v["idle"]["power"]["value"]
            .as_f64()
            .is_some_and(|p| p > 0.0),
        "{v}"
    );
    assert!(net >= 0.0 && net <= gross, "{v}");
    assert!((net - (gross - idle_j).max(0.0)).abs() < 1e-9, "{v}");
    let domains = v["domains"].as_array().cloned().unwrap_or_default();
    assert_eq!(domains.len(), 2, "{v}");
    for d in &domains {
        assert_eq!(d["source"], "estimated");
        assert_eq!(d["energy"]["unit"], "J");
        assert!(
            d["energy"]["value"].as_f64().is_some_and(|e| e >= 0.0),
            "{d}"
        );
    }
    // One CodeCarbon row under CodeCarbon's header; a second run appends.
    let (code, stderr) = run(greenlab()
        .args(["measure", "--meter", "estimate", "--emissions-csv"])
        .arg(&emissions)
        .args(["--", "true"]));
    assert_eq!(code, 0, "{stderr}");
    let csv = std::fs::read_to_string(&emissions).unwrap_or_default();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with(
        "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,"
    ));
    let cols = lines[0].split(',').count();
    assert!(
        lines[1..].iter().all(|l| l.split(',').count() == cols),
        "{csv}"
    );
}

#[test]
fn auto_mode_works_here_and_labels_what_it_used() {
    let dir = tempdir();
    let json = dir.path().join("auto.json");
    let csv = dir.path().join("series.csv");
    let (code, stderr) = run(greenlab()
        .args(["measure", "--no-gpu", "--interval-ms", "5", "--json"])
        .arg(&json)
        .arg("--csv")
        .arg(&csv)
        .args([
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
        ]));
    assert_eq!(code, 0, "{stderr}");
    let v = read_json(&json);
    let source = v["energy"]["source"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(["counter", "estimated"].contains(&source.as_str()), "{v}");
    assert_eq!(v["estimated"], source == "estimated");
    let series = std::fs::read_to_string(&csv).unwrap_or_default();
    assert!(series.starts_with("time_s,phase,"), "{series}");
    assert!(series.lines().count() >= 2, "{series}");
}

/// Adds `uj` to a zone's counter atomically from the shell, as the kernel would present it.
fn add_counter_sh(zone: &Path, uj: u64) -> String {
    format!(
        "e=$(cat '{0}/energy_uj') && printf $((e + {uj})) > '{0}/.e' && mv '{0}/.e' '{0}/energy_uj'",
        zone.display()
    )
}

/// A fake powercap tree: package-0 with a nested core zone and a dram subzone, a realistic
/// range (about 262 kJ) so no wrap can be missed between 100 ms samples.
fn fake_rapl(root: &Path, zones: &[(&str, &str)]) {
    for (zone, name) in zones {
        let z = root.join(zone);
        std::fs::create_dir_all(&z).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(z.join("name"), format!("{name}\n")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(z.join("max_energy_range_uj"), "262143328850\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(z.join("energy_uj"), "1000000\n").unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Moves the counters of `zones` by `step_uj` every millisecond, as live hardware does, until
/// stopped; returns the total it added to each.
fn mover(
    root: &Path,
    zones: &'static [&'static str],
    step_uj: u64,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<u64>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    let root = root.to_owned();
    let handle = std::thread::spawn(move || {
        let mut added = 0;
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            for zone in zones {
                let z = root.join(zone);
                let e: u64 = std::fs::read_to_string(z.join("energy_uj"))
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0);
                std::fs::write(z.join(".m"), format!("{}\n", e + step_uj)).ok();
                std::fs::rename(z.join(".m"), z.join("energy_uj")).ok();
            }
            added += step_uj;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        added
    });
    (stop, handle)
}

#[test]
fn a_live_fake_powercap_tree_is_probed_used_and_counted() {
    let dir = tempdir();
    let root = dir.path().join("powercap");
    fake_rapl(
        &root,
        &[
            ("intel-rapl:0", "package-0"),
            ("intel-rapl:0:0", "core"),
            ("intel-rapl:0:1", "dram"),
        ],
    );
    // The counters move while greenlab probes them; the command waits until they are still,
    // then does its "work": package +2.5 J, dram +1 mJ, core (nested) +10 J.
    let started = dir.path().join("started");
    let still = dir.path().join("still");
    let work = [
        format!("touch '{}'", started.display()),
        format!("while [ ! -e '{}' ]; do sleep 0.01; done", still.display()),
        add_counter_sh(&root.join("intel-rapl:0"), 2_500_000),
        add_counter_sh(&root.join("intel-rapl:0:1"), 1_000),
        add_counter_sh(&root.join("intel-rapl:0:0"), 10_000_000),
    ]
    .join(" && ");
    let (stop, moving) = mover(&root, &["intel-rapl:0", "intel-rapl:0:1"], 1_000);
    let json = dir.path().join("rapl.json");
    let child = greenlab()
        .args(["measure", "--meter", "rapl", "--powercap-root"])
        .arg(&root)
        .arg("--proc-root")
        .arg(dir.path().join("no-proc"))
        .arg("--json")
        .arg(&json)
        .args(["--", "sh", "-c", &work])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !started.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let moved_uj = moving.join().unwrap_or(0);
    std::fs::write(&still, "").unwrap_or_else(|e| panic!("{e}"));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v = read_json(&json);
    assert_eq!(v["energy"]["source"], "counter", "{v}");
    assert_eq!(v["provenance"], "counter", "{v}");
    let domains = v["domains"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = domains
        .iter()
        .filter_map(|d| d["domain"].as_str())
        .collect();
    assert_eq!(
        names,
        ["cpu-package-0", "dram-0"],
        "core is nested: never summed"
    );
    let energy = |i: usize| domains[i]["energy"]["value"].as_f64().unwrap_or(f64::NAN);
    // The window saw the command's work plus whatever the mover added after it began.
    let moved = moved_uj as f64 * 1e-6;
    assert!(
        energy(0) >= 2.5 - 1e-9 && energy(0) <= 2.5 + moved + 1e-9,
        "{v}"
    );
    assert!(
        energy(1) >= 0.001 - 1e-12 && energy(1) <= 0.001 + moved + 1e-9,
        "{v}"
    );
    let total = v["energy"]["value"].as_f64().unwrap_or(f64::NAN);
    assert!((total - energy(0) - energy(1)).abs() < 1e-9, "{v}");
    assert!(!stderr.contains("ESTIMATED"), "{stderr}");
}

#[test]
fn a_dead_counter_is_never_zero_joules_measured() {
    // The shape of the virtual machine that broke greenlab: a platform counter that exists,
    // opens, and never moves.
    let dir = tempdir();
    let root = dir.path().join("powercap");
    fake_rapl(&root, &[("intel-rapl:0", "psys")]);
    let json = dir.path().join("auto.json");
    let (code, stderr) = run(greenlab()
        .args(["measure", "--no-gpu", "--perf-root"])
        .arg(dir.path().join("no-perf"))
        .arg("--powercap-root")
        .arg(&root)
        .arg("--json")
        .arg(&json)
        .args(["--", "sleep", "0.3"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("intel-rapl:0/energy_uj: opened, but did not change in 300 ms"),
        "the dead counter is named: {stderr}"
    );
    let v = read_json(&json);
    assert_eq!(v["energy"]["source"], "estimated", "{v}");
    assert!(
        v["energy"]["value"].as_f64().is_some_and(|e| e > 0.0),
        "a labelled non-zero estimate: {v}"
    );
    assert!(stderr.contains("ESTIMATED"), "{stderr}");

    // Forced, the dead counter is an error that names it and says what to do.
    let (code, stderr) = run(greenlab()
        .args(["measure", "--meter", "rapl", "--powercap-root"])
        .arg(&root)
        .args(["--", "true"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("did not change") && stderr.contains("--meter estimate"),
        "{stderr}"
    );

    // Nothing works at all (no counter, no /proc): the figures say "not measured", never 0.
    let json = dir.path().join("nothing.json");
    let (code, stderr) = run(greenlab()
        .args(["measure", "--no-gpu", "--perf-root"])
        .arg(dir.path().join("no-perf"))
        .arg("--powercap-root")
        .arg(dir.path().join("no-powercap"))
        .arg("--proc-root")
        .arg(dir.path().join("no-proc"))
        .arg("--json")
        .arg(&json)
        .args(["--", "true"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("NOT MEASURED"), "{stderr}");
    let v = read_json(&json);
    assert!(v["energy"]["value"].is_null(), "{v}");
    assert!(v["energy"]["reason"].as_str().is_some(), "{v}");
    assert_eq!(v["provenance"], "not_measured", "{v}");
}

#[test]
fn meters_explains_every_source_and_each_choice() {
    let dir = tempdir();
    let root = dir.path().join("powercap");
    fake_rapl(&root, &[("intel-rapl:0", "psys")]);
    let out = greenlab()
        .args(["meters", "--json", "--no-gpu", "--perf-root"])
        .arg(dir.path().join("no-perf"))
        .arg("--powercap-root")
        .arg(&root)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let candidates = v["survey"]["candidates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rapl = &candidates[0];
    assert_eq!(rapl["opened"], true, "{v}");
    assert_eq!(rapl["used"], false, "{v}");
    assert_eq!(rapl["domains"][0]["moved"], false, "{v}");
    let perf = &candidates[1];
    assert_eq!(perf["opened"], false, "{v}");
    assert!(
        perf["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not exist")),
        "{v}"
    );
    let estimate = candidates
        .iter()
        .find(|c| c["source"] == "estimate")
        .unwrap_or_else(|| panic!("{v}"));
    assert!(
        estimate["detail"]
            .as_str()
            .is_some_and(|d| d.contains("logical cpus")),
        "{v}"
    );
    let choices = v["survey"]["choices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rapl_choice = choices.iter().find(|c| c["choice"] == "rapl");
    assert!(
        rapl_choice
            .and_then(|c| c["error"].as_str())
            .is_some_and(|e| e.contains("did not change")),
        "{v}"
    );
    // The table names the same things for a person.
    let table = greenlab()
        .args(["meters", "--no-gpu", "--perf-root"])
        .arg(dir.path().join("no-perf"))
        .arg("--powercap-root")
        .arg(&root)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("rapl (powercap)") && text.contains("did not change"),
        "{text}"
    );
    assert!(text.contains("*auto"), "{text}");
}

#[test]
fn a_missing_command_is_a_clear_error_and_writes_nothing() {
    let dir = tempdir();
    let json = dir.path().join("none.json");
    let (code, stderr) = run(greenlab()
        .args(["measure", "--meter", "estimate", "--json"])
        .arg(&json)
        .args(["--", "greenlab-no-such-command-xyz"]));
    assert_eq!(code, 127, "{stderr}");
    assert!(
        stderr.contains("cannot run `greenlab-no-such-command-xyz`"),
        "{stderr}"
    );
    assert!(!json.exists());
}

#[test]
fn bad_options_fail_before_running_anything() {
    let dir = tempdir();
    let marker = dir.path().join("ran");
    let touch = format!("touch '{}'", marker.display());
    for bad in [
        vec!["--cpu-tdp-w", "-5", "--meter", "estimate"],
        vec!["--country", "ATLANTIS"],
        vec!["--pue", "0.5"],
        vec!["--meter", "magic"],
        vec![
            "--meter",
            "rapl",
            "--powercap-root",
            "/nonexistent/powercap",
        ],
    ] {
        let (code, stderr) = run(greenlab()
            .arg("measure")
            .args(&bad)
            .args(["--", "sh", "-c", &touch]));
        assert_ne!(code, 0, "{bad:?}: {stderr}");
        assert!(stderr.starts_with("error:"), "{bad:?}: {stderr}");
        assert!(!marker.exists(), "{bad:?} ran the command");
    }
}
