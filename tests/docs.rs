//! The documentation checked against itself and against the tree, so that
//! it cannot drift without a failing test:
//!
//! - numeric ranges: the C header (generated from the doc comments of
//!   src/ffi) states each range once, in the comment of its function. A
//!   range in a comment of the C++ wrapper or the Fortran module must be the
//!   header's range of the C function that comment names, written exactly as
//!   the header writes it; a range in README.md or a page of the manual
//!   (docs/, its reference pages included) must have the same numbers as the
//!   header's range of a function (or of its environment variable) named in
//!   the same paragraph, list item or table row;
//! - names: every `tf_*` name in a wrapper comment exists in the header (or
//!   in the wrapper itself), every wrapper member that calls a C function
//!   names it in its comment, every `See tf_x` is declared there, and every C
//!   function is bound by both wrappers;
//! - docs/layout.md: every path it names exists, and every file or
//!   directory at the levels it covers is named;
//! - the repository stands alone: no file cites a document outside it (the
//!   server's protocol is docs/PROTOCOL.md);
//! - docs/performance.md quotes only figures that BENCHMARKS.md, the report
//!   of the recorded `make bench`, holds;
//! - links: every relative link of README.md and the manual leads to a file
//!   of the repository and, with a `#fragment`, to a heading of that file;
//! - the reference pages (docs/reference/, written by mk/reference.py from
//!   the header's comments) are what the committed header makes now.
//!
//! Each check collects every finding and fails once, listing them all. The
//! checkers are also run on drifted text (the `*_is_caught` tests), which
//! they must reject.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn fail_on(findings: &[String], what: &str) {
    assert!(
        findings.is_empty(),
        "{what}: {} finding(s):\n  - {}",
        findings.len(),
        findings.join("\n  - ")
    );
}

// ---------------------------------------------------------------------------
// Ranges

/// A numeric range as written: `0..100`, `[0.001, 1e6]`, `(0, 1e6]`,
/// `from 0 to 86400`, or `at most 1000` (no lower bound).
#[derive(Clone, Debug)]
struct Range {
    lo: Option<f64>,
    hi: f64,
    lo_open: bool,
    hi_open: bool,
    /// The range as written, white space collapsed.
    text: String,
}

impl Range {
    /// The same numbers and ends; "at most N" only compares its upper end.
    fn same_numbers(&self, other: &Range) -> bool {
        let lower = match (self.lo, other.lo) {
            (Some(a), Some(b)) => a == b && self.lo_open == other.lo_open,
            _ => true,
        };
        lower && self.hi == other.hi && self.hi_open == other.hi_open
    }
}

/// A number starting at byte `i` of `text` (`12`, `0.001`, `1e6`), not
/// glued to a word or another number before it: (value, end).
fn number_at(text: &str, i: usize) -> Option<(f64, usize)> {
    let b = text.as_bytes();
    if i >= b.len() || !b[i].is_ascii_digit() {
        return None;
    }
    let after_dots = i >= 2 && &b[i - 2..i] == b"..";
    if i > 0
        && (b[i - 1].is_ascii_alphanumeric()
            || b[i - 1] == b'_'
            || (b[i - 1] == b'.' && !after_dots))
    {
        return None;
    }
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
        j += 1;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
    }
    if j + 1 < b.len() && (b[j] == b'e' || b[j] == b'E') && b[j + 1].is_ascii_digit() {
        j += 1;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
    }
    if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_') {
        return None; // a word such as 2xx or an identifier
    }
    Some((text[i..j].parse().ok()?, j))
}

fn skip_spaces(text: &str, mut i: usize) -> usize {
    let b = text.as_bytes();
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every range written in `text`.
fn ranges(text: &str) -> Vec<Range> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let Some((first, end)) = number_at(text, i) else {
            i += 1;
            continue;
        };
        // `[a, b]`, `(a, b]`, `[a, b)`, `(a, b)`
        let before = text[..i].trim_end();
        if before.ends_with('[') || before.ends_with('(') {
            let open = before.len() - 1;
            let comma = skip_spaces(text, end);
            if comma < b.len() && b[comma] == b',' {
                let second_at = skip_spaces(text, comma + 1);
                if let Some((second, second_end)) = number_at(text, second_at) {
                    let close = skip_spaces(text, second_end);
                    if close < b.len() && (b[close] == b']' || b[close] == b')') {
                        found.push(Range {
                            lo: Some(first),
                            hi: second,
                            lo_open: b[open] == b'(',
                            hi_open: b[close] == b')',
                            text: collapse(&text[open..=close]),
                        });
                        i = close + 1;
                        continue;
                    }
                }
            }
        }
        // `a..b`
        if text[end..].starts_with("..") {
            if let Some((second, second_end)) = number_at(text, end + 2) {
                if !text[second_end..].starts_with('-') {
                    found.push(Range {
                        lo: Some(first),
                        hi: second,
                        lo_open: false,
                        hi_open: false,
                        text: text[i..second_end].to_string(),
                    });
                    i = second_end;
                    continue;
                }
            }
        }
        // `from a to b`
        let lower_before = before.to_ascii_lowercase();
        if lower_before.ends_with(" from") || lower_before == "from" {
            let rest = &text[end..];
            if let Some(after_to) = rest.strip_prefix(" to ") {
                let second_at = end + rest.len() - after_to.len();
                if let Some((second, second_end)) = number_at(text, second_at) {
                    found.push(Range {
                        lo: Some(first),
                        hi: second,
                        lo_open: false,
                        hi_open: false,
                        text: format!("from {}", &text[i..second_end]),
                    });
                    i = second_end;
                    continue;
                }
            }
        }
        // `at most b`
        if lower_before.ends_with("at most") {
            found.push(Range {
                lo: None,
                hi: first,
                lo_open: false,
                hi_open: false,
                text: format!("at most {}", &text[i..end]),
            });
        }
        i = end;
    }
    found
}

/// `tf_*` identifiers in `text` (a trailing `_`, as in `tf_run_list_*`, dropped).
fn tf_names(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("tf_") {
        let start = i + at;
        let glued = start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let mut end = start + 3;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        if !glued && end > start + 3 {
            names.push(text[start..end].trim_end_matches('_').to_string());
        }
        i = end;
    }
    names
}

/// `tf_x` for every `tf_x(` in `code` (calls and declarations), and
/// `c_tf_x` for every `c_tf_x(` (the Fortran module's bindings).
fn tf_calls(code: &str) -> BTreeSet<String> {
    let mut calls = BTreeSet::new();
    let b = code.as_bytes();
    let mut i = 0;
    while let Some(at) = code[i..].find("tf_") {
        let start = i + at;
        let mut end = start + 3;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        let glued = start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let c_binding = start >= 2 && &b[start - 2..start] == b"c_";
        if (!glued || c_binding) && code[end..].trim_start().starts_with('(') {
            let from = if c_binding { start - 2 } else { start };
            calls.insert(code[from..end].to_string());
        }
        i = end;
    }
    calls
}

/// What the header says: the doc comment of every function, its other names.
struct Header {
    /// Function name → its doc comment.
    docs: BTreeMap<String, String>,
    /// Every `tf_*` name declared outside comments (functions, types, enums).
    identifiers: BTreeSet<String>,
    /// `TASKFARM_X` → the function whose comment says "The default is `TASKFARM_X`".
    variables: BTreeMap<String, String>,
}

impl Header {
    fn parse(text: &str) -> Header {
        let mut docs = BTreeMap::new();
        let mut code = String::new();
        let mut rest = text;
        while let Some(open) = rest.find("/*") {
            code.push_str(&rest[..open]);
            let close = rest[open..]
                .find("*/")
                .expect("unclosed comment in the header")
                + open;
            let comment = clean_c_comment(&rest[open + 2..close]);
            rest = &rest[close + 2..];
            // The declaration the comment documents: up to its `;`.
            let declaration = &rest[..rest.find(';').unwrap_or(rest.len())];
            if !declaration.contains("/*") && !declaration.contains('{') {
                if let Some(function) = tf_calls(declaration).into_iter().next() {
                    docs.insert(function, comment);
                }
            }
        }
        code.push_str(rest);
        let mut variables = BTreeMap::new();
        for (function, doc) in &docs {
            let collapsed = collapse(doc);
            let mut at = 0;
            while let Some(found) = collapsed[at..].find("The default is `TASKFARM_") {
                let start = at + found + "The default is `".len();
                let end = start + collapsed[start..].find('`').unwrap();
                variables.insert(collapsed[start..end].to_string(), function.clone());
                at = end;
            }
        }
        Header {
            docs,
            identifiers: tf_names(&code).into_iter().collect(),
            variables,
        }
    }

    fn ranges_of(&self, function: &str) -> Vec<Range> {
        self.docs
            .get(function)
            .map(|d| ranges(d))
            .unwrap_or_default()
    }

    fn committed() -> Header {
        Header::parse(&read("include/taskfarm_worker.h"))
    }
}

/// A C comment's text without its ` * ` line starts.
fn clean_c_comment(comment: &str) -> String {
    comment
        .lines()
        .map(|l| {
            let l = l.trim();
            let l = l.strip_prefix('*').unwrap_or(l);
            l.strip_prefix('*').unwrap_or(l).trim()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One documented place of a wrapper: its comment and the C functions its
/// code calls.
struct Documented {
    /// `file:line` of the comment.
    place: String,
    comment: String,
    calls: BTreeSet<String>,
}

/// The doc comments (`/** ... */`) of the C++ wrapper, each with the code up
/// to the next doc comment.
fn cpp_documented(file: &str, text: &str) -> Vec<Documented> {
    let mut found = Vec::new();
    let starts: Vec<usize> = text.match_indices("/**").map(|(i, _)| i).collect();
    for (n, &start) in starts.iter().enumerate() {
        let close = text[start..].find("*/").expect("unclosed comment") + start;
        let code_end = starts.get(n + 1).copied().unwrap_or(text.len());
        found.push(Documented {
            place: format!("{file}:{}", text[..start].lines().count() + 1),
            comment: clean_c_comment(&text[start + 3..close]),
            calls: tf_calls(&text[close + 2..code_end]),
        });
    }
    found
}

/// The `!>` comment blocks of the Fortran module, each with the C functions
/// (`c_tf_x(`) that the procedure it documents calls.
fn fortran_documented(file: &str, text: &str) -> Vec<Documented> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].trim_start().starts_with("!>") {
            i += 1;
            continue;
        }
        let start = i;
        let mut comment = Vec::new();
        while i < lines.len() && lines[i].trim_start().starts_with("!>") {
            comment.push(lines[i].trim_start()[2..].trim());
            i += 1;
        }
        let mut calls = BTreeSet::new();
        if let Some(name) = lines.get(i).and_then(|l| procedure_name(l)) {
            let end = (i..lines.len())
                .find(|&j| {
                    let l = lines[j].trim().to_ascii_lowercase();
                    l == format!("end function {name}") || l == format!("end subroutine {name}")
                })
                .unwrap_or_else(|| panic!("{file}: no end of procedure {name}"));
            for call in tf_calls(&lines[i..end].join("\n")) {
                if let Some(c_name) = call.strip_prefix("c_") {
                    calls.insert(c_name.to_string());
                }
            }
        }
        found.push(Documented {
            place: format!("{file}:{}", start + 1),
            comment: comment.join("\n"),
            calls,
        });
    }
    found
}

/// The name of the procedure a line starts (`function x(`, `impure elemental subroutine x(`).
fn procedure_name(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "function" || *w == "subroutine")?;
    if words[..at]
        .iter()
        .any(|w| !matches!(*w, "pure" | "impure" | "elemental" | "recursive"))
    {
        return None;
    }
    let name = words.get(at + 1)?;
    Some(name.split('(').next()?.to_string())
}

/// The names a Fortran module defines itself (types, procedures, constants).
fn fortran_definitions(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('!'))
        .collect::<Vec<_>>()
        .join("\n");
    tf_names(&code).into_iter().collect()
}

/// The range findings of the wrapper comments: a range must be stated in a
/// comment that names its C function, as the header writes it.
fn wrapper_range_findings(header: &Header, documented: &[Documented]) -> Vec<String> {
    let mut findings = Vec::new();
    for place in documented {
        let comment_ranges = ranges(&place.comment);
        if comment_ranges.is_empty() {
            continue;
        }
        let functions: Vec<String> = tf_names(&place.comment)
            .into_iter()
            .filter(|n| header.docs.contains_key(n))
            .collect();
        for range in comment_ranges {
            let stated: Vec<(String, String)> = functions
                .iter()
                .flat_map(|f| {
                    header
                        .ranges_of(f)
                        .into_iter()
                        .map(move |r| (f.clone(), r.text))
                })
                .collect();
            if stated.iter().any(|(_, text)| *text == range.text) {
                continue;
            }
            if functions.is_empty() {
                findings.push(format!(
                    "{}: states the range `{}` but names no C function whose header comment states it",
                    place.place, range.text
                ));
            } else {
                let header_says = if stated.is_empty() {
                    "no range".to_string()
                } else {
                    stated
                        .iter()
                        .map(|(f, t)| format!("{f}: `{t}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                findings.push(format!(
                    "{}: states the range `{}` for {}, the C header states {header_says}",
                    place.place,
                    range.text,
                    functions.join(", ")
                ));
            }
        }
    }
    findings
}

/// The name findings of the wrapper comments.
fn wrapper_name_findings(
    header: &Header,
    own_names: &BTreeSet<String>,
    documented: &[Documented],
) -> Vec<String> {
    let mut findings = Vec::new();
    for place in documented {
        let named = tf_names(&place.comment);
        for name in &named {
            if !header.identifiers.contains(name) && !own_names.contains(name) {
                findings.push(format!(
                    "{}: names `{name}`, which include/taskfarm_worker.h does not declare",
                    place.place
                ));
            }
        }
        let collapsed = collapse(&place.comment);
        for (at, _) in collapsed.match_indices("See tf_") {
            let name = tf_names(&collapsed[at + 4..])
                .into_iter()
                .next()
                .unwrap_or_default();
            if !header.identifiers.contains(&name) {
                findings.push(format!(
                    "{}: `See {name}` is not a function or type of include/taskfarm_worker.h",
                    place.place
                ));
            }
        }
        if !place.calls.is_empty() && !place.calls.iter().any(|c| named.contains(c)) {
            findings.push(format!(
                "{}: the member calls {} but its comment names none of them",
                place.place,
                place.calls.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    findings
}

/// The paragraphs, list items and table rows of a Markdown text, each with
/// its first line number. Code blocks are left out.
fn markdown_units(text: &str) -> Vec<(usize, String)> {
    let mut units: Vec<(usize, String)> = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut in_code = false;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            units.extend(current.take());
            continue;
        }
        if in_code {
            continue;
        }
        let starts_unit = trimmed.is_empty()
            || trimmed.starts_with("- ")
            || trimmed.starts_with('|')
            || trimmed.starts_with('#');
        if starts_unit {
            units.extend(current.take());
        }
        if trimmed.is_empty() {
            continue;
        }
        match &mut current {
            Some((_, unit)) => {
                unit.push('\n');
                unit.push_str(line);
            }
            None => current = Some((n + 1, line.to_string())),
        }
        if trimmed.starts_with('|') || trimmed.starts_with('#') {
            units.extend(current.take());
        }
    }
    units.extend(current);
    units
}

/// The range findings of a Markdown text: a range in a unit that names a C
/// function (or its environment variable) with ranges in the header must
/// have the numbers of one of them ("at most N" counts in table rows only). Returns the findings and the number of
/// ranges checked.
fn markdown_range_findings(header: &Header, file: &str, text: &str) -> (Vec<String>, usize) {
    let mut findings = Vec::new();
    let mut checked = 0;
    for (line, unit) in markdown_units(text) {
        let mut functions: BTreeSet<(String, String)> = BTreeSet::new();
        for name in tf_names(&unit) {
            if header.docs.contains_key(&name) {
                functions.insert((name.clone(), name));
            }
        }
        for (variable, function) in &header.variables {
            if unit.contains(variable.as_str()) {
                functions.insert((function.clone(), variable.clone()));
            }
        }
        let stated: Vec<(String, Range)> = functions
            .iter()
            .flat_map(|(f, via)| {
                header
                    .ranges_of(f)
                    .into_iter()
                    .map(move |r| (via.clone(), r))
            })
            .collect();
        if stated.is_empty() {
            continue;
        }
        // "at most N" says many things in prose (a wait, a size); in a table
        // row it is the bound of that row's variable.
        let row = unit.trim_start().starts_with('|');
        for range in ranges(&unit).into_iter().filter(|r| row || r.lo.is_some()) {
            checked += 1;
            if stated.iter().any(|(_, r)| range.same_numbers(r)) {
                continue;
            }
            findings.push(format!(
                "{file}:{line}: states `{}` beside {}, the C header states {}",
                range.text,
                stated
                    .iter()
                    .map(|(via, _)| via.as_str())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", "),
                stated
                    .iter()
                    .map(|(via, r)| format!("`{}` ({via})", r.text))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    (findings, checked)
}

fn wrappers() -> Vec<(&'static str, Vec<Documented>, BTreeSet<String>)> {
    let hpp = "include/taskfarm_worker.hpp";
    let f90 = "fortran/taskfarm_worker.f90";
    let f90_text = read(f90);
    vec![
        (hpp, cpp_documented(hpp, &read(hpp)), BTreeSet::new()),
        (
            f90,
            fortran_documented(f90, &f90_text),
            fortran_definitions(&f90_text),
        ),
    ]
}

#[test]
fn the_header_states_the_ranges_this_test_compares() {
    // If the parser stopped finding them, every comparison below would pass
    // for want of anything to compare.
    let header = Header::committed();
    for (function, range) in [
        ("tf_taskfarm_set_timeout", "[0.001, 1e6]"),
        ("tf_taskfarm_set_retries", "0..1000"),
        ("tf_worker_set_update_interval", "[0, 86400]"),
        ("tf_worker_update", "0..100"),
        ("tf_taskfarm_create", "1..2147483647"),
    ] {
        let stated: Vec<String> = header
            .ranges_of(function)
            .into_iter()
            .map(|r| r.text)
            .collect();
        assert!(
            stated.iter().any(|t| t == range),
            "{function}: the header's comment should state {range}, the test found {stated:?}"
        );
    }
    for (variable, function) in [
        ("TASKFARM_TIMEOUT", "tf_taskfarm_set_timeout"),
        ("TASKFARM_RETRIES", "tf_taskfarm_set_retries"),
        ("TASKFARM_UPDATE_INTERVAL", "tf_worker_set_update_interval"),
    ] {
        assert_eq!(
            header.variables.get(variable).map(String::as_str),
            Some(function)
        );
    }
}

#[test]
fn ranges_in_the_wrappers_are_the_headers() {
    let header = Header::committed();
    let mut findings = Vec::new();
    for (_, documented, _) in wrappers() {
        findings.extend(wrapper_range_findings(&header, &documented));
    }
    fail_on(
        &findings,
        "a range in a wrapper comment differs from the C header (state it once, in src/ffi, and `make header`)",
    );
}

#[test]
fn ranges_in_the_readme_and_the_manual_are_the_headers() {
    let header = Header::committed();
    let mut findings = Vec::new();
    let mut checked_per_file = BTreeMap::new();
    for file in manual_files() {
        let (found, checked) = markdown_range_findings(&header, &file, &read(&file));
        findings.extend(found);
        checked_per_file.insert(file, checked);
    }
    fail_on(
        &findings,
        "README.md or a page of docs/ states a range that the C header does not",
    );
    let checked: usize = checked_per_file.values().sum();
    assert!(
        checked >= 4,
        "only {checked} ranges of README.md and docs/ were compared with the header: {checked_per_file:?}"
    );
}

/// README.md and every Markdown page under docs/ (relative paths, sorted).
fn manual_files() -> Vec<String> {
    fn walk(dir: &str, found: &mut Vec<String>) {
        for path in entries(dir) {
            let name = path.to_string_lossy().into_owned();
            if root().join(&path).is_dir() {
                walk(&name, found);
            } else if name.ends_with(".md") {
                found.push(name);
            }
        }
    }
    let mut found = vec!["README.md".to_string()];
    walk("docs", &mut found);
    assert!(
        found.len() > 12,
        "only {} Markdown files found: {found:?}",
        found.len()
    );
    found
}

#[test]
fn wrapper_comments_name_the_c_functions_they_call() {
    let header = Header::committed();
    let mut findings = Vec::new();
    for (file, documented, own) in wrappers() {
        let calling = documented.iter().filter(|d| !d.calls.is_empty()).count();
        assert!(
            calling >= 40,
            "{file}: only {calling} documented members that call a C function were found"
        );
        findings.extend(wrapper_name_findings(&header, &own, &documented));
    }
    fail_on(
        &findings,
        "a wrapper comment and the C header disagree on names",
    );
}

#[test]
fn every_c_function_is_bound_by_both_wrappers() {
    let header = Header::committed();
    let hpp = tf_calls(&read("include/taskfarm_worker.hpp"));
    let f90 = read("fortran/taskfarm_worker.f90");
    let mut findings = Vec::new();
    for function in header.docs.keys() {
        if !hpp.contains(function) {
            findings.push(format!(
                "include/taskfarm_worker.hpp never calls {function}"
            ));
        }
        if !f90.contains(&format!("name='{function}'")) {
            findings.push(format!(
                "fortran/taskfarm_worker.f90 has no bind(c, name='{function}') interface"
            ));
        }
    }
    fail_on(&findings, "a C function without its wrapper");
}

#[test]
fn a_drifted_range_is_caught() {
    let header = Header::committed();
    // The C++ comment as it was before the ranges lived in one place.
    let drifted = cpp_documented(
        "drifted.hpp",
        "/** Sets the timeout, in seconds, in (0, 1e6] (tf_taskfarm_set_timeout). */\n\
         void set_timeout(double s) const { check(tf_taskfarm_set_timeout(handle(), s)); }\n\
         /** Sets the retries, 0..1000 (tf_taskfarm_set_retries). */\n\
         void set_retries(unsigned r) const { check(tf_taskfarm_set_retries(handle(), r)); }\n\
         /** A percentage in 0..100. */\n",
    );
    let findings = wrapper_range_findings(&header, &drifted);
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert!(
        findings[0].contains("`(0, 1e6]` for tf_taskfarm_set_timeout")
            && findings[0].contains("`[0.001, 1e6]`"),
        "{findings:#?}"
    );
    assert!(findings[1].contains("names no C function"), "{findings:#?}");

    let (findings, checked) = markdown_range_findings(
        &header,
        "drifted.md",
        "| `TASKFARM_UPDATE_INTERVAL` | seconds; 0..3600 | 1 |\n\n\
         Any interval from 0 to 86400 s: `tf_worker_set_update_interval`.\n\n\
         | `TASKFARM_RETRIES` | at most 100 | 10 |\n\n\
         - `TASKFARM_RETRIES`: each wait at most 120 s.\n",
    );
    assert_eq!(checked, 3);
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert!(
        findings[0].starts_with("drifted.md:1: states `0..3600`"),
        "{findings:#?}"
    );
    assert!(
        findings[1].starts_with("drifted.md:5: states `at most 100`"),
        "{findings:#?}"
    );
}

#[test]
fn a_member_without_its_c_function_is_caught() {
    let header = Header::committed();
    let cpp = cpp_documented(
        "drifted.hpp",
        "/** The number of tasks done. */\n\
         std::int64_t num_done() const { check(tf_taskfarm_num_done(handle(), &n)); }\n\
         /** See tf_taskfarm_num_finished. */\n\
         std::int64_t num_finished() const { return 0; }\n",
    );
    let findings = wrapper_name_findings(&header, &BTreeSet::new(), &cpp);
    assert_eq!(findings.len(), 3, "{findings:#?}");
    assert!(findings[0].contains("calls tf_taskfarm_num_done but its comment names none"));
    assert!(findings[1].contains("`tf_taskfarm_num_finished`, which include/taskfarm_worker.h"));
    assert!(findings[2].contains("`See tf_taskfarm_num_finished` is not a function or type"));

    let f90 = fortran_documented(
        "drifted.f90",
        "contains\n   !> The tasks done.\n   function taskfarm_num_done(self, n) result(stat)\n\
         \x20     stat = int(c_tf_taskfarm_num_done(self%handle, n))\n   end function taskfarm_num_done\n",
    );
    let findings = wrapper_name_findings(&header, &BTreeSet::new(), &f90);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(findings[0].starts_with("drifted.f90:2: the member calls tf_taskfarm_num_done"));
}

// ---------------------------------------------------------------------------
// docs/layout.md

/// The names .gitignore leaves out of the tree: `name`, `*.ext`, `/path`.
fn ignored(relative: &Path, patterns: &[String]) -> bool {
    let name = relative.file_name().unwrap().to_string_lossy();
    if name.starts_with('.') {
        return true;
    }
    patterns.iter().any(|p| {
        let p = p.trim_end_matches('/');
        if let Some(anchored) = p.strip_prefix('/') {
            relative == Path::new(anchored)
        } else if let Some(ext) = p.strip_prefix('*') {
            name.ends_with(ext)
        } else {
            name == p
        }
    })
}

fn gitignore() -> Vec<String> {
    read(".gitignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// The entries of directory `dir` (relative), without what .gitignore leaves out.
fn entries(dir: &str) -> Vec<PathBuf> {
    let patterns = gitignore();
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|e| Path::new(dir).join(e.unwrap().file_name()))
        .filter(|p| !ignored(p, &patterns))
        .collect();
    found.sort();
    found
}

/// A `*` pattern against a name.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
    }
}

/// The existing paths (relative, directories without their `/`) that
/// `token` names when read against `base`.
fn resolve(base: &Path, token: &str) -> Vec<PathBuf> {
    let path = base.join(token.trim_end_matches('/'));
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    if name.contains('*') {
        let dir = path.parent().unwrap();
        let Ok(listing) = std::fs::read_dir(root().join(dir)) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = listing
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| matches(&name, n))
            .map(|n| dir.join(n))
            .collect();
        if !found.is_empty() {
            found.push(dir.to_path_buf());
        }
        return found;
    }
    let on_disk = root().join(&path);
    let exists = if token.ends_with('/') {
        on_disk.is_dir()
    } else {
        on_disk.exists()
    };
    if exists {
        vec![path]
    } else {
        Vec::new()
    }
}

/// The backticked file or directory names of a text: with a `/`, or a
/// name with an extension; no commands (white space) or other code.
fn path_tokens(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| !t.is_empty() && !t.contains(char::is_whitespace))
        .filter(|t| {
            t.contains('/')
                || t.rsplit_once('.').is_some_and(|(stem, ext)| {
                    !stem.is_empty()
                        && !ext.is_empty()
                        && ext.chars().all(|c| c.is_ascii_alphanumeric())
                })
        })
        .map(String::from)
        .collect()
}

/// What the layout page `file` (its text: `layout`) names: (named paths,
/// findings for names that do not exist). A name is read against the
/// directories named before it in the same list item (a file names its
/// directory), then the root.
fn layout_names(file: &str, layout: &str) -> (BTreeSet<PathBuf>, Vec<String>) {
    let mut named = BTreeSet::new();
    let mut findings = Vec::new();
    for (line, item) in markdown_units(layout) {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for token in path_tokens(&item) {
            let mut found = Vec::new();
            for base in dirs.iter().rev().chain(std::iter::once(&PathBuf::new())) {
                for path in resolve(base, &token) {
                    if !found.contains(&path) {
                        found.push(path);
                    }
                }
            }
            if found.is_empty() {
                findings.push(format!(
                    "{file}:{line}: the Layout names `{token}`, which is not in the tree"
                ));
            }
            for path in &found {
                if root().join(path).is_dir() {
                    dirs.push(path.clone());
                } else if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    dirs.push(parent.to_path_buf());
                }
            }
            // A file or directory named names the directories it is in.
            for path in &found {
                named.extend(
                    path.ancestors()
                        .skip(1)
                        .filter(|a| !a.as_os_str().is_empty())
                        .map(Path::to_path_buf),
                );
            }
            named.extend(found);
        }
    }
    (named, findings)
}

/// The files and directories the Layout covers, one level each.
fn covered_entries() -> Vec<PathBuf> {
    let mut covered = Vec::new();
    for dir in [
        "src/client",
        "src/client/http",
        "src/client/worker",
        "src/client/scheduler",
        "src/ffi",
        "src/bin/taskfarm/reap",
    ] {
        covered.extend(
            entries(dir)
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "rs") || root().join(p).is_dir()),
        );
    }
    covered.extend(
        entries("tests")
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rs") || root().join(p).is_dir()),
    );
    for dir in ["mk", "bench", "examples"] {
        covered.extend(entries(dir));
    }
    covered
}

/// The layout page of the manual.
const LAYOUT: &str = "docs/layout.md";

#[test]
fn every_path_the_layout_names_exists() {
    let (named, findings) = layout_names(LAYOUT, &read(LAYOUT));
    fail_on(&findings, "docs/layout.md and the tree disagree");
    assert!(
        named.len() > 50,
        "only {} paths found in the Layout",
        named.len()
    );
}

#[test]
fn the_layout_names_every_file_at_the_levels_it_covers() {
    let (named, _) = layout_names(LAYOUT, &read(LAYOUT));
    let findings: Vec<String> = covered_entries()
        .into_iter()
        .filter(|p| !named.contains(p))
        .map(|p| {
            let kind = if root().join(&p).is_dir() {
                "directory"
            } else {
                "file"
            };
            format!("the {kind} {} is not named in docs/layout.md", p.display())
        })
        .collect();
    fail_on(&findings, "docs/layout.md misses part of the tree");
}

#[test]
fn a_layout_that_drifted_is_caught() {
    let (named, findings) = layout_names(
        "drifted.md",
        "# Layout\n\n- `src/client/`: `settings.rs`, `nowhere.rs`.\n- `mk/`: `lint.sh`, `tests/gone/`.\n\n## More\n\n`src/ffi/`, `docs/gone.md`\n",
    );
    assert_eq!(findings.len(), 3, "{findings:#?}");
    assert!(
        findings[0].starts_with("drifted.md:3: the Layout names `nowhere.rs`"),
        "{findings:#?}"
    );
    assert!(
        findings[1].starts_with("drifted.md:4: the Layout names `tests/gone/`"),
        "{findings:#?}"
    );
    assert!(
        findings[2].starts_with("drifted.md:8: the Layout names `docs/gone.md`"),
        "{findings:#?}"
    );
    assert!(named.contains(Path::new("src/client/settings.rs")));
    assert!(named.contains(Path::new("mk/lint.sh")));
    assert!(
        named.contains(Path::new("src/ffi")),
        "a name in a later section of the page did not count"
    );
}

// ---------------------------------------------------------------------------
// The repository stands alone

/// Every text file of the tree (relative paths), without what .gitignore
/// leaves out.
fn tree_files(dir: &str, patterns: &[String], found: &mut Vec<PathBuf>) {
    let Ok(listing) = std::fs::read_dir(root().join(dir)) else {
        return;
    };
    for entry in listing.flatten() {
        let relative = Path::new(dir).join(entry.file_name());
        if ignored(&relative, patterns) {
            continue;
        }
        if entry.path().is_dir() {
            tree_files(&relative.to_string_lossy(), patterns, found);
        } else {
            found.push(relative);
        }
    }
}

#[test]
fn no_file_cites_a_document_outside_the_repository() {
    // The project's working documents live outside the repository; the
    // protocol facts the code relies on are in docs/PROTOCOL.md.
    let outside = [
        "API.md",
        "TECH-NOTES",
        "STYLE.md",
        "../shared",
        "shared/",
        "seed/",
    ];
    let patterns = gitignore();
    let mut files = Vec::new();
    tree_files("", &patterns, &mut files);
    assert!(
        files.len() > 100,
        "only {} files found in the tree",
        files.len()
    );
    let mut findings = Vec::new();
    for file in files.iter().filter(|f| *f != Path::new("tests/docs.rs")) {
        let Ok(text) = std::fs::read_to_string(root().join(file)) else {
            continue; // not text
        };
        for (n, line) in text.lines().enumerate() {
            let place = format!("{}:{}", file.display(), n + 1);
            for cited in outside {
                if line.contains(cited) {
                    findings.push(format!(
                        "{place}: cites `{cited}`, which is not in the repository"
                    ));
                }
            }
            for (at, _) in line.match_indices("PROTOCOL.md") {
                // A page of docs/ links to it as a sibling: `](PROTOCOL.md)`.
                let sibling_link = file.starts_with("docs") && line[..at].ends_with("](");
                if !line[..at].ends_with("docs/")
                    && !sibling_link
                    && file != Path::new("docs/PROTOCOL.md")
                {
                    findings.push(format!(
                        "{place}: says PROTOCOL.md where the file is docs/PROTOCOL.md"
                    ));
                }
            }
        }
    }
    fail_on(
        &findings,
        "a file cites a document the repository does not hold",
    );
}

// ---------------------------------------------------------------------------
// README.md and the manual: length, links

/// The README gets a newcomer to a worker; the rest is the manual's.
const README_MAX_LINES: usize = 300;

#[test]
fn the_readme_is_short() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move the details into a chapter of docs/"
    );
}

/// The anchor GitHub gives a heading: lower case, white space as `-`,
/// punctuation other than `-` and `_` dropped.
fn heading_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of the headings of a Markdown text (code blocks left out).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.insert(heading_anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// The relative link targets of a Markdown text, `[text](target)`, each
/// with its line number (code blocks and inline code left out; `http:`,
/// `https:` and `mailto:` links are not the repository's).
fn relative_links(markdown: &str) -> Vec<(usize, String)> {
    let mut links = Vec::new();
    let mut in_code = false;
    for (n, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        // Inline code spans are the odd pieces between backticks.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for (at, _) in prose.match_indices("](") {
            let rest = &prose[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if !["http://", "https://", "mailto:"]
                .iter()
                .any(|s| target.starts_with(s))
            {
                links.push((n + 1, target.to_string()));
            }
        }
    }
    links
}

/// The links of page `file` (its text: `text`) that lead nowhere: to no
/// file, or to a heading that the target page does not have.
/// `read_page` gives the text of a repository file, None when it does not
/// exist (a directory gives Some("")).
fn link_findings(
    file: &str,
    text: &str,
    read_page: &dyn Fn(&Path) -> Option<String>,
) -> Vec<String> {
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let mut findings = Vec::new();
    for (line, target) in relative_links(text) {
        let (path, fragment) = match target.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (target.as_str(), None),
        };
        let page = if path.is_empty() {
            Some(text.to_string())
        } else {
            // Lexically: `..` leaves a directory.
            let mut resolved = PathBuf::new();
            for part in dir.join(path).components() {
                match part {
                    std::path::Component::ParentDir => {
                        resolved.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => resolved.push(other),
                }
            }
            read_page(&resolved)
        };
        match (page, fragment) {
            (None, _) => findings.push(format!(
                "{file}:{line}: links to `{target}`, which is not in the repository"
            )),
            (Some(page), Some(fragment)) if !anchors(&page).contains(fragment) => {
                findings.push(format!(
                    "{file}:{line}: links to `{target}`, but that page has no heading with the anchor `{fragment}`"
                ))
            }
            _ => {}
        }
    }
    findings
}

fn repository_page(path: &Path) -> Option<String> {
    let on_disk = root().join(path);
    if on_disk.is_dir() {
        Some(String::new())
    } else {
        std::fs::read_to_string(on_disk).ok()
    }
}

#[test]
fn every_link_of_the_manual_leads_somewhere() {
    let mut findings = Vec::new();
    let mut links = 0;
    for file in manual_files() {
        let text = read(&file);
        links += relative_links(&text).len();
        findings.extend(link_findings(&file, &text, &repository_page));
    }
    fail_on(&findings, "a link of README.md or docs/ leads nowhere");
    assert!(links > 80, "only {links} relative links found");
}

#[test]
fn a_broken_link_is_caught() {
    let pages = |path: &Path| match path.to_str() {
        Some("docs/stopping.md") => {
            Some("# Stopping: signals, time limits\n\n## What the tests prove\n".to_string())
        }
        Some("README.md") => Some("# x\n## Using it from Rust\n".to_string()),
        _ => None,
    };
    let page = "# Index\n\n[a](stopping.md#what-the-tests-prove), [b](stopping.md#stopping-signals-time-limits),\n\
                [c](../README.md#using-it-from-rust) `[d](gone.md)`\n\n\
                [e](gone.md), [f](stopping.md#what-the-code-proves), [g](#index), [h](#nowhere)\n\n\
                ```\n[i](gone.md)\n```\n[j](https://example.org/x)\n";
    let findings = link_findings("docs/README.md", page, &pages);
    assert_eq!(findings.len(), 3, "{findings:#?}");
    assert!(findings[0].starts_with("docs/README.md:6: links to `gone.md`, which is not"));
    assert!(
        findings[1].contains("`stopping.md#what-the-code-proves`, but that page has no heading")
    );
    assert!(findings[2].contains("`#nowhere`"));
    assert_eq!(
        heading_anchor(" One password check per farm: `TASKFARM_TOKEN`"),
        "one-password-check-per-farm-taskfarm_token"
    );
}

// ---------------------------------------------------------------------------
// docs/performance.md against BENCHMARKS.md

/// The numbers of `text` as written: digits with `,` or `.` between digit
/// groups (`3,504`, `44.6`, `0.4.0`); a `.` or `,` that ends a sentence is
/// not part of them, nor are the digits of a name (`e3`, `x86_64`).
fn written_numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut numbers = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit()
            || (i > 0 && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_'))
        {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_digit()
                || (matches!(chars[i], '.' | ',')
                    && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())))
        {
            i += 1;
        }
        numbers.push(chars[start..i].iter().collect());
    }
    numbers
}

/// Every number the page `file` (its text: `page`) quotes that the report
/// does not hold.
fn performance_findings(file: &str, page: &str, report: &str) -> Vec<String> {
    let held: BTreeSet<String> = written_numbers(report).into_iter().collect();
    let mut findings: Vec<String> = written_numbers(page)
        .into_iter()
        .filter(|n| !held.contains(n))
        .map(|n| format!("{file} quotes {n}, which BENCHMARKS.md does not hold"))
        .collect();
    findings.dedup();
    findings
}

/// docs/performance.md quotes the recorded run: after a new `make bench`,
/// its figures must be brought up to date with BENCHMARKS.md.
#[test]
fn the_performance_chapter_quotes_the_figures_of_the_recorded_benchmark() {
    let page = "docs/performance.md";
    let text = read(page);
    assert!(
        written_numbers(&text).len() > 30,
        "{page}: too few figures found to compare"
    );
    fail_on(
        &performance_findings(page, &text, &read("BENCHMARKS.md")),
        "docs/performance.md quotes figures that are not the recorded run's",
    );
}

#[test]
fn a_figure_of_another_run_is_caught() {
    let page = "# Performance\n\nCPU 44.6 µs against 425.4 µs, 3,504 kB, taskfarm 0.4.0.\n\n## More\n\n9.9 and 1.5\n";
    let report = "| cpu | 44.6 | 425.0 |\n| rss | 3,504 kB |\n0.4.0 and 9.9\n";
    assert_eq!(
        performance_findings("drifted.md", page, report),
        [
            "drifted.md quotes 425.4, which BENCHMARKS.md does not hold",
            "drifted.md quotes 1.5, which BENCHMARKS.md does not hold"
        ]
    );
    assert_eq!(
        written_numbers("e3, x86_64: 1,003.5 and 2.28 ms."),
        ["1,003.5", "2.28"]
    );
}

// ---------------------------------------------------------------------------
// docs/reference/ against the header

/// `mk/reference.py --check DIR`: (success, what it says on stderr).
fn reference_check(dir: &Path) -> (bool, String) {
    let out = std::process::Command::new("python3")
        .arg(root().join("mk/reference.py"))
        .arg("--check")
        .arg(dir)
        .output()
        .expect("run python3 mk/reference.py (python3 is a prerequisite)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The reference pages are made from the header's comments: after `make
/// header`, `make reference` writes them again (commit them).
#[test]
fn the_reference_pages_are_what_the_header_makes() {
    let dir = root().join("docs/reference");
    let (fresh, says) = reference_check(&dir);
    assert!(
        fresh,
        "{says}\n(make reference writes docs/reference/ from include/taskfarm_worker.h)"
    );
    let header = Header::committed();
    for function in header.docs.keys() {
        assert!(
            dir.join(format!("{function}.md")).is_file(),
            "docs/reference/{function}.md is missing"
        );
    }
}

#[test]
fn a_stale_reference_page_is_caught() {
    // A copy of the pages in this test process's own directory under target/tmp.
    let copy = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("docs-reference-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(root().join("docs/reference")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    assert!(reference_check(&copy).0, "the copy should be fresh");
    let page = copy.join("tf_worker_task.md");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, text.replace("0..numTasks-1", "0..numTasks")).unwrap();
    std::fs::remove_file(copy.join("tf_worker_done.md")).unwrap();
    std::fs::write(copy.join("tf_worker_gone.md"), "# tf_worker_gone\n").unwrap();
    let (fresh, says) = reference_check(&copy);
    let _ = std::fs::remove_dir_all(&copy);
    assert!(!fresh, "a drifted copy passed the check");
    for finding in [
        "tf_worker_task.md differs",
        "tf_worker_done.md is missing",
        "tf_worker_gone.md is not a function",
    ] {
        assert!(says.contains(finding), "{finding:?} not in: {says}");
    }
}
