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

/// Writes a counter atomically from the shell, as the kernel would present it to a reader.
fn set_counter_sh(zone: &Path, uj: u64) -> String {
    format!(
        "printf {uj} > '{0}/.e' && mv '{0}/.e' '{0}/energy_uj'",
        zone.display()
    )
}

#[test]
fn fake_powercap_tree_gives_exact_energy() {
    let dir = tempdir();
    let root = dir.path().join("powercap");
    // A realistic range (about 262 kJ) so no wrap can be missed between 100 ms samples.
    let range_max: u64 = 262_143_328_850;
    for (zone, name, start) in [
        ("intel-rapl:0", "package-0", 1_000_000u64),
        ("intel-rapl:0:0", "core", 5),
        ("intel-rapl:0:1", "dram", range_max - 400),
    ] {
        let z = root.join(zone);
        std::fs::create_dir_all(&z).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(z.join("name"), format!("{name}\n")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(z.join("max_energy_range_uj"), format!("{range_max}\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(z.join("energy_uj"), format!("{start}\n")).unwrap_or_else(|e| panic!("{e}"));
    }
    // The "work": package +2.5 J; dram wraps (+400 µJ to the top, +1 to zero, +599 beyond);
    // core (nested in the package) moves too, and must not be counted.
    let script = [
        set_counter_sh(&root.join("intel-rapl:0"), 3_500_000),
        set_counter_sh(&root.join("intel-rapl:0:1"), 599),
        set_counter_sh(&root.join("intel-rapl:0:0"), 9_999_999),
    ]
    .join(" && ");
    let json = dir.path().join("rapl.json");
    let (code, stderr) = run(greenlab()
        .args(["measure", "--meter", "rapl", "--powercap-root"])
        .arg(&root)
        .arg("--json")
        .arg(&json)
        .args(["--", "sh", "-c", &script]));
    assert_eq!(code, 0, "{stderr}");
    let v = read_json(&json);
    assert_eq!(v["energy"]["source"], "counter", "{v}");
    assert_eq!(v["estimated"], false);
    let domains = v["domains"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = domains
        .iter()
        .filter_map(|d| d["domain"].as_str())
        .collect();
    assert_eq!(names, ["cpu-package-0", "dram-0"]);
    let energy = |i: usize| domains[i]["energy"]["value"].as_f64().unwrap_or(f64::NAN);
    assert!((energy(0) - 2.5).abs() < 1e-9, "{v}");
    assert!((energy(1) - 0.001).abs() < 1e-12, "{v}");
    let total = v["energy"]["value"].as_f64().unwrap_or(f64::NAN);
    assert!((total - 2.501).abs() < 1e-9, "{v}");
    assert!(!stderr.contains("ESTIMATED"), "{stderr}");
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
