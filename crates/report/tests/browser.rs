//! The HTML report in a real browser: headless Chromium loads the example report (every block
//! type), takes a screenshot, and dumps the DOM after a probe script measured every figure.
//!
//! Chromium is required, not optional: CI installs it (`apt-get install -y chromium`); without
//! it these tests fail and say how to install it. `CHROMIUM=/path/to/chrome` picks another
//! binary. The screenshot is kept as an artefact under Cargo's target tmp dir (path printed).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use greenlab_report::{example, render_html};

/// Generous: a cold Chromium on a busy 2-core machine takes a few seconds.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);
/// Screenshot window; tall enough for the whole example page (checked by the DOM test).
const SCREENSHOT_WIDTH: u32 = 1280;
const SCREENSHOT_HEIGHT: u32 = 5000;

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let candidates = [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ];
    match candidates.iter().map(Path::new).find(|p| p.exists()) {
        Some(path) => path.to_owned(),
        None => panic!(
            "chromium is not installed, and the report's browser tests need it: \
             install it with `apt-get install -y chromium` (.ci/run does this), \
             or point CHROMIUM at a Chrome/Chromium binary"
        ),
    }
}

struct BrowserRun {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs headless Chromium with the isolation flags plus `extra`, output captured in files
/// (pipes could be held open by Chromium's helper processes), killed after the timeout.
fn run_chromium(work: &Path, extra: &[String]) -> BrowserRun {
    let profile = tempfile::tempdir_in(work).unwrap();
    let stdout_path = work.join(format!("stdout-{}.txt", extra.len()));
    let stderr_path = work.join(format!("stderr-{}.txt", extra.len()));
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap());
    let mut child = command.spawn().unwrap_or_else(|error| {
        panic!(
            "cannot start {}: {error}; install it with `apt-get install -y chromium`",
            chromium().display()
        )
    });
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    let status = match finished.recv_timeout(BROWSER_TIMEOUT) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?}; killed it (pid {pid})");
        }
    };
    BrowserRun {
        status,
        stdout: std::fs::read_to_string(&stdout_path).unwrap(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap(),
    }
}

/// Console messages Chromium logged for the page. The report has no scripts, so any console
/// message (an uncaught error, a blocked fetch, a CSP violation) is a defect.
fn console_messages(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| {
            line.contains(":CONSOLE") || line.contains("Uncaught") || line.contains("ERROR:CONSOLE")
        })
        .collect()
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn write_report(work: &Path) -> PathBuf {
    let path = work.join("report.html");
    let html = render_html(&example::report()).unwrap();
    greenlab_report::write_atomically(&path, html).unwrap();
    path
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG"
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (width, height)
}

#[test]
fn screenshot_of_the_report_is_taken_without_console_errors() {
    let work = tempfile::tempdir().unwrap();
    let report = write_report(work.path());
    let screenshot = work.path().join("report.png");
    let run = run_chromium(
        work.path(),
        &[
            format!("--screenshot={}", screenshot.display()),
            format!("--window-size={SCREENSHOT_WIDTH},{SCREENSHOT_HEIGHT}"),
            file_url(&report),
        ],
    );
    assert!(
        run.status.success(),
        "chromium failed ({}):\n{}",
        run.status,
        run.stderr
    );
    let console = console_messages(&run.stderr);
    assert!(
        console.is_empty(),
        "the report logged to the console:\n{}",
        console.join("\n")
    );

    let bytes = std::fs::read(&screenshot).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {}: {e}\n{}",
            screenshot.display(),
            run.stderr
        )
    });
    assert_eq!(png_size(&bytes), (SCREENSHOT_WIDTH, SCREENSHOT_HEIGHT));
    // A blank or unstyled page of this size compresses to a few kilobytes; cards, badges and
    // five plots do not.
    assert!(
        bytes.len() > 60_000,
        "screenshot is suspiciously small ({} bytes)",
        bytes.len()
    );

    let artefacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("greenlab-report");
    std::fs::create_dir_all(&artefacts).unwrap();
    let kept = artefacts.join("example-report.png");
    std::fs::write(&kept, &bytes).unwrap();
    std::fs::copy(&report, artefacts.join("example-report.html")).unwrap();
    println!("screenshot artefact: {}", kept.display());
}

/// Injected into a copy of the page (the shipped page allows no scripts): measures every
/// figure after layout and records errors, then writes the result into the DOM.
const PROBE: &str = r#"<script>
const errors = [];
window.addEventListener('error', e => errors.push(String(e.message)));
window.addEventListener('load', () => {
  const figures = [...document.querySelectorAll('figure')].map(f => {
    const svg = f.querySelector(':scope > svg');
    const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
    return {
      class: f.className,
      kind: f.dataset.plot || '',
      svg: !!svg,
      width: box.width,
      height: box.height,
      shapes: svg ? svg.querySelectorAll('polyline, polygon, rect, circle, path, line').length : 0,
      texts: svg ? svg.querySelectorAll('text').length : 0,
      caption: (f.querySelector('figcaption') || {}).textContent || '',
    };
  });
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    errors,
    figures,
    badges: document.querySelectorAll('.badge').length,
    pageHeight: document.documentElement.scrollHeight,
  });
  document.body.appendChild(out);
});
</script>"#;

#[test]
fn every_plot_renders_as_a_sized_inline_svg_in_the_browser() {
    let work = tempfile::tempdir().unwrap();
    let html = render_html(&example::report()).unwrap();
    let policy = "script-src 'none'";
    assert!(
        html.contains(policy),
        "the shipped page must forbid scripts"
    );
    let probed = html
        .replacen(policy, "script-src 'unsafe-inline'", 1)
        .replacen("</body>", &format!("{PROBE}\n</body>"), 1);
    let page = work.path().join("probed.html");
    std::fs::write(&page, probed).unwrap();

    let run = run_chromium(
        work.path(),
        &[
            "--dump-dom".to_owned(),
            "--window-size=1280,900".to_owned(),
            file_url(&page),
        ],
    );
    assert!(
        run.status.success(),
        "chromium failed ({}):\n{}",
        run.status,
        run.stderr
    );
    let console = console_messages(&run.stderr);
    assert!(
        console.is_empty(),
        "the page logged to the console:\n{}",
        console.join("\n")
    );

    let dom = &run.stdout;
    let start = dom
        .find(r#"<pre id="probe">"#)
        .unwrap_or_else(|| panic!("the probe did not run; dumped DOM:\n{dom:.2000}"));
    let json = &dom[start + r#"<pre id="probe">"#.len()..];
    let json = &json[..json.find("</pre>").unwrap()];
    // textContent is HTML-escaped in the serialised DOM.
    let json = json
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let probe: serde_json::Value = serde_json::from_str(&json).unwrap();

    assert_eq!(
        probe["errors"],
        serde_json::json!([]),
        "script errors on the page"
    );
    let figures = probe["figures"].as_array().unwrap();
    assert_eq!(figures.len(), example::PLOT_COUNT, "figures: {figures:#?}");
    let mut kinds: Vec<&str> = figures
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "interval-plot",
            "line-plot",
            "line-plot",
            "scatter",
            "stacked-bars"
        ]
    );
    for figure in figures {
        assert_eq!(figure["class"], "plot", "{figure}");
        assert_eq!(figure["svg"], true, "figure without inline svg: {figure}");
        // Cards are ~1030 px wide at this window size; a collapsed svg would be 0 or tiny.
        assert!(
            figure["width"].as_f64().unwrap() > 600.0,
            "svg too narrow: {figure}"
        );
        assert!(
            figure["height"].as_f64().unwrap() > 150.0,
            "svg too short: {figure}"
        );
        assert!(
            figure["shapes"].as_u64().unwrap() > 10,
            "svg draws almost nothing: {figure}"
        );
        assert!(
            figure["texts"].as_u64().unwrap() > 5,
            "svg has no labels: {figure}"
        );
        assert!(
            !figure["caption"].as_str().unwrap().is_empty(),
            "figure without caption"
        );
    }
    // 4 findings × (section + summary table) + 4 tally badges (one per verdict).
    assert_eq!(probe["badges"], 4 * 2 + 4);
    // Chromium's --screenshot captures the window only; keep the artefact complete.
    let height = probe["pageHeight"].as_f64().unwrap();
    assert!(
        height <= f64::from(SCREENSHOT_HEIGHT),
        "the example page is {height} px tall; raise SCREENSHOT_HEIGHT so the screenshot shows it all"
    );
}

/// The console check must be able to fail: a page with an uncaught error is caught.
#[test]
fn console_check_catches_an_uncaught_error() {
    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>x</p><script>throw new Error('deliberate');</script></body></html>",
    )
    .unwrap();
    let run = run_chromium(work.path(), &["--dump-dom".to_owned(), file_url(&page)]);
    let console = console_messages(&run.stderr);
    assert!(
        console
            .iter()
            .any(|line| line.contains("Uncaught Error: deliberate")),
        "the uncaught error was not seen; stderr:\n{}",
        run.stderr
    );
}
