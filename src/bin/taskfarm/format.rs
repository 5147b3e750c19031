//! Text for people: a server's string made safe for a terminal, Python's
//! `str()` of a JSON value (for the exact manageTF output), percentages,
//! rates and durations, tables.

use std::time::Duration;

use serde_json::Value;

/// `text` (a string the server sent) safe to print on a terminal: every
/// control character (C0 with CR, LF and ESC, DEL, C1) and every bidirectional
/// formatting character is written out visibly as `\u{..}`, so that no
/// escape sequence, line break or reordering reaches the terminal; nothing
/// else changes.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// The characters that reorder text on a terminal that renders
/// bidirectional text (the "Trojan Source" characters).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// What Python's `"{}".format(v)` prints for the value `v` that `json.loads`
/// makes of this JSON value: strings bare (through [`visible`]), `True`/`False`/`None`, integers as
/// they are, floats as `repr(float)` (`0.0`, `62.5`, `1e-05`).
pub fn python_str(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::String(s) => visible(s),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => python_float_repr(f),
            (None, None, None) => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Python's `repr(float)`: the shortest digits that read back to `x`, in
/// positional notation for exponents -4..15, else `d.ddde±XX`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Rust's `{:e}` gives the same shortest digits: "6.25e1", "1e-5", "-0e0".
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes an integer exponent");
    if (-4..16).contains(&exponent) {
        let positional = format!("{x}");
        if positional.contains('.') {
            positional
        } else {
            format!("{positional}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// The local date and time of `at` to the second, `2026-12-07 19:23:17`,
/// for lines written to a file.
pub fn local_time(at: std::time::SystemTime) -> String {
    let seconds = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = libc::time_t::try_from(seconds).unwrap_or(libc::time_t::MAX);
    // SAFETY: an all-zero tm is a valid value to be overwritten.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is thread-safe.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return format!("@{seconds}");
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// A percentage for people: one decimal.
pub fn percent(p: f64) -> String {
    format!("{p:.1} %")
}

/// A duration for people: `45s`, `12m 05s`, `3h 20m`, `2d 04h`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A rate in tasks per second for people, switching to per minute and per
/// hour for slow runs.
pub fn rate(tasks_per_second: f64) -> String {
    rate_in(tasks_per_second, RateUnit::for_rate(tasks_per_second))
}

/// The unit of a rate: tasks per second, minute or hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// `tasks/s`
    Second,
    /// `tasks/min`
    Minute,
    /// `tasks/h`
    Hour,
}

impl RateUnit {
    /// The unit that shows `tasks_per_second` as at least 1 (per hour below that).
    pub fn for_rate(tasks_per_second: f64) -> RateUnit {
        if tasks_per_second >= 1.0 {
            RateUnit::Second
        } else if tasks_per_second * 60.0 >= 1.0 {
            RateUnit::Minute
        } else {
            RateUnit::Hour
        }
    }

    /// The unit for `tasks_per_second` when `self` was used so far: kept
    /// while the number stays between 0.1 and 1000 in it, so that a rate near
    /// a boundary does not flip between two units from one line to the next.
    pub fn keep_or_change(self, tasks_per_second: f64) -> RateUnit {
        let shown = tasks_per_second * self.seconds();
        if (0.1..1000.0).contains(&shown) {
            self
        } else {
            RateUnit::for_rate(tasks_per_second)
        }
    }

    fn seconds(self) -> f64 {
        match self {
            RateUnit::Second => 1.0,
            RateUnit::Minute => 60.0,
            RateUnit::Hour => 3600.0,
        }
    }
}

/// `tasks_per_second` in `unit`: `2.0 tasks/s`, `30.0 tasks/min`, `3.60 tasks/h`.
pub fn rate_in(tasks_per_second: f64, unit: RateUnit) -> String {
    let n = tasks_per_second * unit.seconds();
    match unit {
        RateUnit::Second => format!("{n:.1} tasks/s"),
        RateUnit::Minute => format!("{n:.1} tasks/min"),
        RateUnit::Hour => format!("{n:.2} tasks/h"),
    }
}

/// Rows as left-aligned columns separated by two spaces, without trailing blanks.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths[c].saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_prints_them() {
        for (x, python) in [
            (0.0, "0.0"),
            (100.0, "100.0"),
            (62.5, "62.5"),
            (100.0 / 3.0, "33.333333333333336"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(python_float_repr(x), python, "{x}");
        }
    }

    #[test]
    fn json_values_print_as_python_prints_them() {
        let v: Value = serde_json::from_str(
            r#"{"i": 3, "f": 0.0, "g": 50.0, "s": "abc", "t": true, "n": null}"#,
        )
        .unwrap();
        let got: Vec<String> = ["i", "f", "g", "s", "t", "n"]
            .iter()
            .map(|k| python_str(&v[k]))
            .collect();
        assert_eq!(got, ["3", "0.0", "50.0", "abc", "True", "None"]);
    }

    #[test]
    fn durations_rates_and_tables_read_well() {
        assert_eq!(duration(Duration::from_secs(45)), "45s");
        assert_eq!(duration(Duration::from_secs(725)), "12m 05s");
        assert_eq!(duration(Duration::from_secs(12_000)), "3h 20m");
        assert_eq!(duration(Duration::from_secs(187_200)), "2d 04h");
        assert_eq!(rate(2.0), "2.0 tasks/s");
        assert_eq!(rate(0.5), "30.0 tasks/min");
        assert_eq!(rate(0.001), "3.60 tasks/h");
        // A rate around 1 task/s keeps the unit it started in.
        let unit = RateUnit::for_rate(1.05);
        assert_eq!(unit, RateUnit::Second);
        assert_eq!(unit.keep_or_change(0.95), RateUnit::Second);
        assert_eq!(rate_in(0.95, unit.keep_or_change(0.95)), "0.9 tasks/s");
        let unit = RateUnit::for_rate(0.95);
        assert_eq!(unit.keep_or_change(1.05), RateUnit::Minute);
        assert_eq!(rate_in(1.05, RateUnit::Minute), "63.0 tasks/min");
        // Far off, it changes.
        assert_eq!(RateUnit::Second.keep_or_change(0.05), RateUnit::Minute);
        assert_eq!(RateUnit::Minute.keep_or_change(20.0), RateUnit::Second);
        assert_eq!(
            table(&[
                vec!["ID".into(), "UUID".into()],
                vec!["10".into(), "ab".into()]
            ]),
            "ID  UUID\n10  ab\n"
        );
    }
}
