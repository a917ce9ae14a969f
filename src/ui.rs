//! Terminal helpers: spinners for long steps and one-line errors.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Runs `f` under a spinner labelled `msg` (hidden when stderr is not a terminal) and
/// returns its result with the elapsed time.
pub(crate) fn timed<T>(msg: &str, f: impl FnOnce() -> T) -> (T, Duration) {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(msg.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    let start = Instant::now();
    let out = f();
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    (out, elapsed)
}

/// The error and its causes on one line.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ").replace('\n', " ")
}

/// Formats values compactly.
pub(crate) fn fmt_values(v: &[f32]) -> String {
    let shown: Vec<String> = v.iter().take(16).map(|x| format!("{x:.5}")).collect();
    let more = if v.len() > 16 { format!(", … ({} values)", v.len()) } else { String::new() };
    format!("[{}{more}]", shown.join(", "))
}
