//! `taskfarm failed UUID --journal DIR`: every task of the run with failed
//! or crashed attempts, from the records in the journal directory (the
//! library's `worker::attempts`) and the reaper's state: attempts, the last
//! message, set aside or not. Reads files only: no request to the server.

use std::path::Path;

use serde_json::json;
use taskfarm_worker::internal::worker::attempts;

use crate::failure::Failure;
use crate::output;
use crate::reap;

/// Runs `taskfarm failed`.
pub fn failed(uuid: &str, journal: &Path, json: bool) -> Result<(), Failure> {
    if !journal.is_dir() {
        return Err(Failure::usage(format!(
            "journal directory {} is not a directory",
            journal.display()
        )));
    }
    let (found, invalid) =
        attempts::read_all(journal, uuid).map_err(|e| Failure::local(e.message().to_owned()))?;
    let by_reaper = reap::set_aside_tasks(journal, uuid).map_err(Failure::from)?;
    let mut tasks = attempts::summarise(&found);
    for task in &mut tasks {
        task.set_aside |= by_reaper.contains(&task.task);
    }
    if json {
        let invalid: Vec<_> = invalid
            .iter()
            .map(|(file, reason)| json!({"file": file, "reason": reason}))
            .collect();
        return output::json(&json!({"run": uuid, "tasks": tasks, "invalid": invalid}));
    }
    let mut text = String::new();
    for (file, reason) in &invalid {
        text.push_str(&format!("left alone: {file} {reason}\n"));
    }
    for t in &tasks {
        text.push_str(&format!(
            "task {}: {} failed attempt(s){}; last ({}): {}\n",
            t.task,
            t.attempts,
            if t.set_aside { ", set aside" } else { "" },
            t.last_kind,
            one_line(&t.last_message)
        ));
    }
    let aside = tasks.iter().filter(|t| t.set_aside).count();
    text.push_str(&format!(
        "run {uuid}: {} task(s) with failed attempts, {aside} set aside\n",
        tasks.len()
    ));
    output::print(&text)
}

/// A message on one line: its lines joined with " | ".
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}
