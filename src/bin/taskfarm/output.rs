//! Writing to stdout: text for people, compact JSON for programs. A closed
//! pipe (`taskfarm list | head -1`) ends the tool quietly, as for any Unix
//! filter; other write errors are local failures.

use std::io::Write;

use serde::Serialize;

use crate::failure::Failure;
use crate::format::is_bidi_control;

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

/// Writes `value` as one line of compact JSON to stdout, safe for a
/// terminal ([`terminal_safe_json`]).
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string(value)
        .map_err(|e| Failure::local(format!("cannot encode the output as JSON: {e}")))?;
    line(&terminal_safe_json(&text))
}

/// `json` (serde_json's output) with DEL, the C1 controls and the
/// bidirectional formatting characters written as `\uXXXX` escapes, as
/// serde_json already writes C0: the same JSON value, and no escape sequence
/// or reordering a server's string could send reaches a terminal. Those
/// characters occur only inside JSON strings, where the escape means the
/// character itself.
pub fn terminal_safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_control() || is_bidi_control(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output_escapes_del_c1_and_bidi_and_reads_back_the_same() {
        let value = serde_json::json!({"name": "a\u{7f}b\u{85}c\u{9b}31m\u{202e}d\né", "n": 1});
        let text = terminal_safe_json(&serde_json::to_string(&value).unwrap());
        assert!(
            !text.chars().any(|c| c.is_control() || is_bidi_control(c)),
            "{text:?}"
        );
        assert!(
            text.contains(r"a\u007fb\u0085c\u009b31m\u202ed\né"),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
