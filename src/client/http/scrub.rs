//! Secrets kept out of messages and log lines.
//!
//! The library never builds a sentence of its own from a secret, so its own
//! words never need cleaning. What comes from outside may hold one: a
//! server, a proxy or a load balancer may echo the request (debug pages and
//! WAFs do), an OS or TLS error string may quote it. So every handle
//! registers its secrets here while it lives, and:
//! - [`clean`] removes every form of them from *foreign* text (a body
//!   excerpt, a JSON error quoting an answer, ureq's or the OS's description
//!   of a failure, the debug log's lines), the bare password whatever its
//!   length: a short password is as secret as a long one;
//! - [`clean_compound`], the last net of [`Error`](crate::client::Error)'s
//!   constructors over whole messages, removes only the forms that no
//!   sentence of the library's own can hold: `user:password`, `token:`,
//!   their base64, and a bare password or token of at least
//!   [`NET_PLAIN_CHARS`] characters. With the password `server`, a message
//!   says "the server refused", never "the *** refused".
//!
//! The forms, for every live handle of the process:
//! - the password, and `user:password` (the decoded Basic credentials);
//! - the token, and `token:`;
//! - the Basic forms: base64 of `user:password` and of `token:` (without the
//!   `=` padding, so a copy that drops it matches too);
//! - each of these as JSON (`\"`, `\\`, `\/`, `\uXXXX`) and HTML (`&amp;`,
//!   `&lt;`, ...) escape it, as an echo in a JSON or HTML page shows it.
//!
//! The body excerpt is cleaned before it is cut (a secret cut in two would
//! not match).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;

/// The shortest bare password or token that [`clean_compound`] removes from
/// a whole message: no word of the library's own is that long and random.
pub const NET_PLAIN_CHARS: usize = 16;

/// What a removed secret is replaced with.
pub const MARK: &str = "***";

struct Entry {
    id: u64,
    /// Every form: for foreign text.
    needles: Arc<[String]>,
    /// The forms no sentence of the library's own holds.
    compound: Arc<[String]>,
}

struct Registry {
    next_id: u64,
    entries: Vec<Entry>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next_id: 1,
    entries: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Secrets removed from every message until this is dropped.
pub struct Registration {
    id: Option<u64>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Registration(..)")
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            registry().entries.retain(|e| e.id != id);
        }
    }
}

/// Registers the password of `user` (nothing for an empty password).
pub fn register_credentials(user: &str, password: &str) -> Registration {
    if password.is_empty() {
        return Registration { id: None };
    }
    let pair = format!("{user}:{password}");
    register(vec![unpadded_base64(&pair), pair], password)
}

/// Registers a token (nothing for an empty one).
pub fn register_token(token: &str) -> Registration {
    if token.is_empty() {
        return Registration { id: None };
    }
    let pair = format!("{token}:");
    register(vec![unpadded_base64(&pair), pair], token)
}

/// Registers the `compound` forms of a secret and the `bare` secret.
fn register(compound: Vec<String>, bare: &str) -> Registration {
    let escaped = |forms: &[String]| {
        let mut needles: Vec<String> = Vec::new();
        for form in forms {
            for needle in escaped_forms(form) {
                if !needle.is_empty() && !needles.contains(&needle) {
                    needles.push(needle);
                }
            }
        }
        needles
    };
    let mut net = compound.clone();
    if bare.chars().count() >= NET_PLAIN_CHARS {
        net.push(bare.to_owned());
    }
    let mut all = compound;
    all.push(bare.to_owned());
    let mut registry = registry();
    let id = registry.next_id;
    registry.next_id += 1;
    registry.entries.push(Entry {
        id,
        needles: escaped(&all).into(),
        compound: escaped(&net).into(),
    });
    Registration { id: Some(id) }
}

/// Foreign `text` (a server's answer, an OS or TLS error string) with every
/// form of every registered secret replaced by [`MARK`]. Overlapping
/// occurrences are removed as one.
pub fn clean(text: &str) -> String {
    replace(text, |e| Arc::clone(&e.needles))
}

/// A whole message with the forms no sentence of the library's own holds
/// replaced by [`MARK`]: the last net under [`clean`], which leaves the
/// library's words alone however short the password.
pub fn clean_compound(text: &str) -> String {
    replace(text, |e| Arc::clone(&e.compound))
}

fn replace(text: &str, forms: impl Fn(&Entry) -> Arc<[String]>) -> String {
    // Searched without the lock: a long body must not hold up other handles.
    let needles: Vec<Arc<[String]>> = registry().entries.iter().map(forms).collect();
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for needle in needles.iter().flat_map(|n| n.iter()) {
        let first = ranges.len();
        let mut from = 0;
        while let Some(found) = text[from..].find(needle.as_str()) {
            let (start, end) = (from + found, from + found + needle.len());
            match ranges[first..].last_mut() {
                // An occurrence overlapping the last one extends it.
                Some(last) if start <= last.1 => last.1 = end,
                _ => ranges.push((start, end)),
            }
            // Look again from the next character: occurrences may overlap.
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    if ranges.is_empty() {
        return text.to_owned();
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < ranges.len() {
        let (start, mut end) = ranges[i];
        while i + 1 < ranges.len() && ranges[i + 1].0 <= end {
            end = end.max(ranges[i + 1].1);
            i += 1;
        }
        out.push_str(&text[copied..start]);
        out.push_str(MARK);
        copied = end;
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn unpadded_base64(text: &str) -> String {
    STANDARD_NO_PAD.encode(text)
}

/// `text` as written, as a JSON string's content (with and without `\/`,
/// and with every non-ASCII character as `\uXXXX`), and HTML-escaped.
fn escaped_forms(text: &str) -> Vec<String> {
    let json = serde_json::to_string(text)
        .map(|quoted| quoted[1..quoted.len() - 1].to_owned())
        .unwrap_or_default();
    let mut ascii_json = String::new();
    for c in json.chars() {
        if c.is_ascii() {
            ascii_json.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii_json.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    let html = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    vec![
        text.to_owned(),
        json.replace('/', "\\/"),
        ascii_json.replace('/', "\\/"),
        uppercase_escapes(&ascii_json).replace('/', "\\/"),
        json,
        ascii_json,
        html.replace('\'', "&#39;"),
        html.replace('\'', "&#x27;"),
        html,
    ]
}

/// `\u00e9` written `\u00E9`, as some JSON encoders write it.
fn uppercase_escapes(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(at) = rest.find("\\u") {
        let hex_end = (at + 6).min(rest.len());
        out.push_str(&rest[..at + 2]);
        out.push_str(&rest[at + 2..hex_end].to_ascii_uppercase());
        rest = &rest[hex_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The registry is process-wide and unit tests run in parallel: every
    // test uses secrets of its own that no other test's text contains.

    #[test]
    fn the_password_its_pair_and_its_basic_form_are_removed() {
        let _r = register_credentials("alice", "PASSWORDXYZ");
        let header = "Authorization: Basic YWxpY2U6UEFTU1dPUkRYWVo=";
        assert_eq!(clean(header), "Authorization: Basic ***=");
        assert_eq!(clean("got alice:PASSWORDXYZ!"), "got ***!");
        assert_eq!(clean("pw=PASSWORDXYZ"), "pw=***");
        assert_eq!(clean("nothing here"), "nothing here");
    }

    #[test]
    fn tokens_are_removed_and_forgotten_with_their_registration() {
        let registration = register_token("eyJhbGciOiJIUzUxMiJ9.tok-7731");
        let b64 =
            base64::engine::general_purpose::STANDARD.encode(b"eyJhbGciOiJIUzUxMiJ9.tok-7731:");
        assert_eq!(clean(&format!("Basic {b64}")), "Basic ***");
        assert_eq!(clean("t=eyJhbGciOiJIUzUxMiJ9.tok-7731;"), "t=***;");
        drop(registration);
        assert_eq!(
            clean("t=eyJhbGciOiJIUzUxMiJ9.tok-7731;"),
            "t=eyJhbGciOiJIUzUxMiJ9.tok-7731;"
        );
    }

    #[test]
    fn escaped_copies_are_removed() {
        let _r = register_credentials("bob", "p\"a/s<s>é'9");
        for echoed in [
            r#"{"pw": "p\"a/s<s>é'9"}"#,
            r#"{"pw": "p\"a\/s<s>é'9"}"#,
            r#"{"pw": "p\"a\/s<s>\u00e9'9"}"#,
            r#"{"pw": "p\"a\/s<s>\u00E9'9"}"#,
            "<td>p&quot;a/s&lt;s&gt;é&#39;9</td>",
            "<td>p&quot;a/s&lt;s&gt;é&#x27;9</td>",
        ] {
            let cleaned = clean(echoed);
            assert!(
                cleaned.contains(MARK) && !cleaned.contains("s<s>") && !cleaned.contains("s&lt;s"),
                "{echoed} -> {cleaned}"
            );
        }
    }

    #[test]
    fn a_short_password_is_removed_from_foreign_text_but_never_from_the_librarys_words() {
        let _r = register_credentials("carol", "server");
        // Foreign text: every occurrence, however short the password.
        assert_eq!(clean("echo: pw=server"), "echo: pw=***");
        assert_eq!(clean("carol:server"), "***");
        // The library's own sentence: only the compound forms.
        assert_eq!(
            clean_compound("the server refused user \"carol\""),
            "the server refused user \"carol\""
        );
        assert_eq!(clean_compound("sent carol:server"), "sent ***");
        let _long = register_credentials("carol", "a-long-password-7731");
        assert_eq!(clean_compound("x a-long-password-7731 y"), "x *** y");
    }

    #[test]
    fn overlapping_occurrences_become_one_mark() {
        let _r = register_token("QQQQ-8812");
        assert_eq!(clean("QQQQ-8812QQQQ-8812"), "***");
        let _s = register_credentials("dave", "ABCDE-991");
        // "dave:ABCDE-991" contains the password: one mark for both.
        assert_eq!(clean("[dave:ABCDE-991]"), "[***]");
        let _t = register_credentials("frank", "ZZZZ");
        assert_eq!(clean(&format!("<{}>", "Z".repeat(100_000))), "<***>");
    }

    #[test]
    fn registrations_without_a_secret_remove_nothing() {
        let _r = register_token("");
        let _s = register_credentials("erin", "");
        assert_eq!(clean("erin: Og=="), "erin: Og==");
    }
}
