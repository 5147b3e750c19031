//! `taskfarm report --joblog FILE...`: what the job logs of `taskfarm run`
//! say: per-task durations (median, p95, the slowest), the failures with
//! their messages, the attempts, and the run's projected end (from the
//! rate of the logs and the tasks left: `--tasks N`, else the server).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_derive::Serialize;
use taskfarm_worker::internal::clock::unix_now;
use taskfarm_worker::internal::Settings;

use crate::failure::Failure;
use crate::output;
use crate::run::joblog::{Entry, Outcome};

/// What `taskfarm report` was asked.
#[derive(Debug)]
pub struct Request {
    pub joblogs: Vec<PathBuf>,
    pub tasks: Option<i64>,
    pub json: bool,
}

/// A failed attempt, as the report lists it.
#[derive(Debug, Serialize)]
pub struct FailureLine {
    task: i64,
    attempt: u32,
    outcome: Outcome,
    exit: Option<i32>,
    signal: Option<String>,
    message: String,
}

/// The report.
#[derive(Debug, Serialize)]
pub struct Report {
    runs: Vec<String>,
    attempts: usize,
    tasks_done: usize,
    tasks_with_retries: usize,
    tasks_failing: Vec<i64>,
    median_s: Option<f64>,
    p95_s: Option<f64>,
    slowest: Option<(i64, f64)>,
    first_start: Option<f64>,
    last_end: Option<f64>,
    tasks_per_hour: Option<f64>,
    tasks_left: Option<i64>,
    projected_end: Option<f64>,
    cpu_s: f64,
    max_rss_kb: i64,
    failures: Vec<FailureLine>,
    unreadable_lines: usize,
}

/// The `q` quantile of sorted `values` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// Builds the report of `entries`, with `total` tasks in the run if known.
pub fn summarise(entries: &[Entry], unreadable: usize, total: Option<i64>) -> Report {
    let mut done: BTreeMap<i64, f64> = BTreeMap::new();
    let mut attempts: BTreeMap<i64, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for e in entries {
        *attempts.entry(e.task).or_default() += 1;
        match e.outcome {
            Outcome::Done => {
                done.insert(e.task, (e.end - e.start).max(0.0));
            }
            Outcome::Failed | Outcome::Timeout => failures.push(FailureLine {
                task: e.task,
                attempt: e.attempt,
                outcome: e.outcome,
                exit: e.exit,
                signal: e.signal.clone(),
                message: e.message.clone().unwrap_or_default(),
            }),
            Outcome::Stopped => {}
        }
    }
    let mut durations: Vec<f64> = done.values().copied().collect();
    durations.sort_by(f64::total_cmp);
    let slowest = done
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(&t, &d)| (t, d));
    let first_start = entries.iter().map(|e| e.start).min_by(f64::total_cmp);
    let last_end = entries.iter().map(|e| e.end).max_by(f64::total_cmp);
    let rate = match (first_start, last_end) {
        (Some(a), Some(b)) if b > a && !done.is_empty() => Some(done.len() as f64 / (b - a)),
        _ => None,
    };
    let tasks_left = total.map(|n| (n - done.len() as i64).max(0));
    let projected_end = match (rate, tasks_left) {
        (_, Some(0)) => last_end,
        (Some(rate), Some(left)) => {
            Some(unix_now().max(last_end.unwrap_or(0.0)) + left as f64 / rate)
        }
        _ => None,
    };
    let mut runs: Vec<String> = entries
        .iter()
        .map(|e| e.run.clone())
        .filter(|r| !r.is_empty())
        .collect();
    runs.sort();
    runs.dedup();
    Report {
        runs,
        attempts: entries.len(),
        tasks_done: done.len(),
        tasks_with_retries: attempts.values().filter(|&&n| n > 1).count(),
        tasks_failing: attempts
            .keys()
            .copied()
            .filter(|t| {
                !done.contains_key(t) && failures.iter().any(|f: &FailureLine| f.task == *t)
            })
            .collect(),
        median_s: quantile(&durations, 0.5),
        p95_s: quantile(&durations, 0.95),
        slowest,
        first_start,
        last_end,
        tasks_per_hour: rate.map(|r| r * 3600.0),
        tasks_left,
        projected_end,
        cpu_s: entries.iter().map(|e| e.user_s + e.system_s).sum(),
        max_rss_kb: entries.iter().map(|e| e.max_rss_kb).max().unwrap_or(0),
        failures,
        unreadable_lines: unreadable,
    }
}

/// Runs `taskfarm report`; `settings` are asked for only when the number
/// of tasks must come from the server.
pub fn report(
    request: &Request,
    settings: impl FnOnce() -> Result<Settings, Failure>,
) -> Result<(), Failure> {
    let mut entries = Vec::new();
    let mut unreadable = 0;
    for path in &request.joblogs {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::local(format!("--joblog {}: {e}", path.display())))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Entry>(line) {
                Ok(entry) => entries.push(entry),
                Err(_) => unreadable += 1,
            }
        }
    }
    let mut total = request.tasks;
    let first_run = entries
        .iter()
        .map(|e| e.run.clone())
        .find(|r| !r.is_empty());
    if let (None, Some(run)) = (total, first_run) {
        match settings().and_then(|s| crate::commands::open(&s, &run)) {
            Ok(run) => total = Some(run.num_tasks()),
            Err(failure) => eprintln!(
                "taskfarm report: no projected end: the run's size is unknown ({}); give --tasks N",
                failure.message
            ),
        }
    }
    let report = summarise(&entries, unreadable, total);
    if request.json {
        return output::json(&report);
    }
    output::print(&text(&report))
}

fn when(t: f64) -> String {
    let now = unix_now();
    if t >= now {
        format!("in {}", span(t - now))
    } else {
        format!("{} ago", span(now - t))
    }
}

fn span(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=119 => format!("{seconds:.1} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{:.1} h", seconds / 3600.0),
    }
}

fn text(r: &Report) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "runs: {}\nattempts: {}, tasks done: {}, tasks tried more than once: {}\n",
        if r.runs.is_empty() {
            "(unknown)".into()
        } else {
            r.runs.join(" ")
        },
        r.attempts,
        r.tasks_done,
        r.tasks_with_retries
    ));
    if let (Some(m), Some(p), Some((task, d))) = (r.median_s, r.p95_s, r.slowest) {
        t.push_str(&format!(
            "task durations: median {}, p95 {}, slowest task {task} ({})\n",
            span(m),
            span(p),
            span(d)
        ));
    }
    t.push_str(&format!(
        "CPU: {} in all; largest resident set {} MB\n",
        span(r.cpu_s),
        r.max_rss_kb / 1024
    ));
    if let Some(rate) = r.tasks_per_hour {
        t.push_str(&format!("rate: {rate:.1} tasks per hour\n"));
    }
    match (r.tasks_left, r.projected_end) {
        (Some(0), _) => t.push_str("no task left to do\n"),
        (Some(left), Some(end)) => t.push_str(&format!(
            "projected end: {} ({left} task(s) left at this rate)\n",
            when(end)
        )),
        _ => {}
    }
    if !r.failures.is_empty() {
        t.push_str(&format!("failures ({}):\n", r.failures.len()));
        for f in &r.failures {
            let first = f.message.lines().next().unwrap_or("");
            t.push_str(&format!(
                "  task {} attempt {}: {first}\n",
                f.task, f.attempt
            ));
            for line in f.message.lines().skip(1) {
                t.push_str(&format!("      {line}\n"));
            }
        }
    }
    if !r.tasks_failing.is_empty() {
        let tasks: Vec<String> = r.tasks_failing.iter().map(i64::to_string).collect();
        t.push_str(&format!("tasks never done: {}\n", tasks.join(" ")));
    }
    if r.unreadable_lines > 0 {
        t.push_str(&format!(
            "{} line(s) not a job log entry\n",
            r.unreadable_lines
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(task: i64, attempt: u32, start: f64, end: f64, outcome: Outcome) -> Entry {
        Entry {
            run: "r1".into(),
            task,
            attempt,
            host: "h".into(),
            pid: 10,
            start,
            end,
            exit: Some(if outcome == Outcome::Done { 0 } else { 1 }),
            signal: None,
            outcome,
            max_rss_kb: 1000 * task,
            user_s: 1.0,
            system_s: 0.5,
            message: (outcome != Outcome::Done).then(|| "exit status 1\nboom".into()),
        }
    }

    #[test]
    fn durations_failures_attempts_and_the_projected_end() {
        let mut entries: Vec<Entry> = (0..20)
            .map(|t| {
                entry(
                    t,
                    1,
                    100.0 + t as f64,
                    100.0 + t as f64 + 1.0 + t as f64,
                    Outcome::Done,
                )
            })
            .collect();
        entries.push(entry(20, 1, 100.0, 101.0, Outcome::Failed));
        entries.push(entry(20, 2, 101.0, 102.0, Outcome::Timeout));
        let r = summarise(&entries, 1, Some(40));
        assert_eq!(
            (r.attempts, r.tasks_done, r.tasks_with_retries),
            (22, 20, 1)
        );
        // Durations 1..=20 s: median 10, p95 19, slowest task 19 (20 s).
        assert_eq!((r.median_s, r.p95_s), (Some(10.0), Some(19.0)));
        assert_eq!(r.slowest, Some((19, 20.0)));
        assert_eq!(r.tasks_failing, [20]);
        assert_eq!(r.failures.len(), 2);
        assert_eq!(r.tasks_left, Some(20));
        // 20 tasks in 100..139: 20/39 per second; 20 left take 39 s more.
        let end = r.projected_end.unwrap();
        assert!((end - (unix_now() + 39.0)).abs() < 5.0, "{end}");
        assert_eq!(r.cpu_s, 33.0);
        assert_eq!(r.unreadable_lines, 1);
        assert!(text(&r).contains("task 20 attempt 1: exit status 1\n      boom"));
        assert_eq!(summarise(&entries, 0, Some(20)).projected_end, Some(139.0));
        assert_eq!(summarise(&entries, 0, None).projected_end, None);
    }
}
