//! Writing to stdout: text for people, compact JSON for programs. A closed
//! pipe (`taskfarm list | head -1`) ends the tool quietly, as for any Unix
//! filter; other write errors are local failures.

use std::io::Write;

use serde::Serialize;

use crate::failure::Failure;

/// Writes `text` to stdout as it is and flushes it.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            Failure::local(format!("cannot write to stdout: {e}"))
        })
}

/// Writes `line` and a newline to stdout.
pub fn line(line: &str) -> Result<(), Failure> {
    print(&format!("{line}\n"))
}

/// Writes `value` as one line of compact JSON to stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string(value)
        .map_err(|e| Failure::local(format!("cannot encode the output as JSON: {e}")))?;
    line(&text)
}
