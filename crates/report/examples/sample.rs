//! Writes the illustrative report with every block type as HTML (and Markdown and JSON beside
//! it), for previews and screenshots:
//!
//! ```text
//! cargo run -p greenlab-report --example sample -- [OUT.html]
//! ```

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let html_path = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "sample.html".into()),
    );
    let report = greenlab_report::example::report();
    greenlab_report::write_atomically(&html_path, greenlab_report::render_html(&report)?)?;
    let markdown_path = html_path.with_extension("md");
    greenlab_report::write_atomically(&markdown_path, greenlab_report::render_markdown(&report))?;
    let json_path = html_path.with_extension("json");
    greenlab_report::write_atomically(&json_path, greenlab_report::render_json(&report)?)?;
    println!(
        "wrote {}, {} and {}",
        html_path.display(),
        markdown_path.display(),
        json_path.display()
    );
    Ok(())
}
