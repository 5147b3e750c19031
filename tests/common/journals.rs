//! The worker journals of a run in a journal directory, as the reap tests
//! read them, and what a `taskfarm reap --json` pass says of their workers.

use std::path::Path;

use serde_json::Value;

use taskfarm_worker::internal::worker::journal;

/// The names of the journal files of `run` in `dir`, sorted (other files,
/// such as the reaper's state, are left out).
pub fn journal_files(dir: &Path, run: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&journal::file_prefix(run)))
        .collect();
    names.sort();
    names
}

/// The verdict and reason of the worker holding `task` in `pass` (one line
/// of `taskfarm reap --json`).
pub fn verdict(pass: &Value, task: i64) -> (String, String) {
    let worker = pass["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["task"].as_i64() == Some(task))
        .unwrap_or_else(|| panic!("no worker holding task {task} in {pass}"));
    (
        worker["verdict"].as_str().unwrap().to_owned(),
        worker["reason"].as_str().unwrap().to_owned(),
    )
}

/// The tasks `pass` gave back, sorted.
pub fn given_back(pass: &Value) -> Vec<i64> {
    let mut tasks: Vec<i64> = pass["given_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["task"].as_i64().unwrap())
        .collect();
    tasks.sort();
    tasks
}
