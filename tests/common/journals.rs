//! The worker journals of a run in a journal directory, as the reap tests
//! read them.

use std::path::Path;

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
