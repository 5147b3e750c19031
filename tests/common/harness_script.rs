//! A script of `tests/harness/` run from a test (`server.sh`, `slurm.sh`),
//! and its failure described for a panic message. One copy for the server
//! and the Slurm cluster harnesses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A harness script: its file in `tests/harness/` and the harness it is
/// the script of, as a failure message names it.
pub struct HarnessScript {
    /// The file name in `tests/harness/` (`server.sh`).
    pub file: &'static str,
    /// What a failure message calls the harness (`taskfarm harness`).
    pub harness: &'static str,
}

impl HarnessScript {
    /// The script's path in this repository.
    pub fn path(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/harness")
            .join(self.file)
    }

    /// Runs the script with `args` and returns its output; panics when it
    /// cannot be run at all.
    pub fn run(&self, args: &[&str]) -> Output {
        let script = self.path();
        Command::new("bash")
            .arg(&script)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()))
    }

    /// What dropping a started harness does with its state directory `dir`:
    /// `SCRIPT stop DIR` (a failure panics, or is printed when the thread
    /// panics already), then `dir` removed, unless the thread panics (a
    /// failed test keeps its logs) or `TASKFARM_KEEP_STATE` is set.
    pub fn stop_and_remove(&self, dir: &Path) {
        let dir_text = dir.to_string_lossy().into_owned();
        let out = self.run(&["stop", &dir_text]);
        if !out.status.success() {
            let msg = self.describe_failure(&format!("stop {dir_text}"), &out);
            if std::thread::panicking() {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
            return;
        }
        if !std::thread::panicking() && std::env::var_os("TASKFARM_KEEP_STATE").is_none() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Renders a failed call of the script with the arguments `what`, for a
    /// panic message: its exit status, stderr and stdout.
    pub fn describe_failure(&self, what: &str, out: &Output) -> String {
        format!(
            "{}: `{} {what}` failed ({})\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.harness,
            self.file,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end(),
            String::from_utf8_lossy(&out.stdout).trim_end(),
        )
    }
}
