//! The reaper's own state, `DIR/reap-<run>.json`: attempts per task and
//! the tasks set aside, replaced atomically. Run one reaper per run.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_derive::{Deserialize, Serialize};
use taskfarm_worker::internal::worker::journal::write_atomic;
use taskfarm_worker::internal::{Error, Result};

/// `DIR/reap-<run>.json`: attempts per task and the tasks set aside.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Always `taskfarm-reap-state`.
    pub format: String,
    /// 1.
    pub version: u32,
    /// The run.
    pub run: String,
    /// Workers each task killed.
    pub attempts: BTreeMap<i64, u32>,
    /// Tasks not given back any more.
    pub set_aside: BTreeSet<i64>,
}

const STATE_FORMAT: &str = "taskfarm-reap-state";

/// The reaper state file of run `run` in `dir`.
pub fn state_path(dir: &Path, run: &str) -> PathBuf {
    dir.join(state_name(run))
}

fn state_name(run: &str) -> String {
    format!("reap-{run}.json")
}

impl State {
    /// Reads the state of `run` in `dir`; a missing file is a fresh state,
    /// a broken one an error (the reaper does nothing on its word).
    pub fn load(dir: &Path, run: &str) -> Result<State> {
        let path = state_path(dir, run);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    format: STATE_FORMAT.into(),
                    version: 1,
                    run: run.into(),
                    ..State::default()
                })
            }
            Err(e) => {
                return Err(Error::invalid_argument(format!(
                    "cannot read the reaper state {}: {e}",
                    path.display()
                )))
            }
        };
        let state: State = serde_json::from_str(&text).map_err(|e| {
            Error::invalid_argument(format!(
                "the reaper state {} is broken ({e}): fix or remove it",
                path.display()
            ))
        })?;
        if state.format != STATE_FORMAT || state.version != 1 || state.run != run {
            return Err(Error::invalid_argument(format!(
                "{} is not the reaper state (version 1) of run {run}",
                path.display()
            )));
        }
        Ok(state)
    }

    /// Writes the state atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::protocol(e.to_string()))?;
        write_atomic(dir, &state_name(&self.run), &bytes).map_err(|e| {
            Error::invalid_argument(format!(
                "cannot write the reaper state {}: {e}",
                state_path(dir, &self.run).display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_round_trips_and_a_broken_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("taskfarm-reap-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut state = State::load(&dir, "r1").unwrap();
        assert!(state.attempts.is_empty());
        state.attempts.insert(5, 2);
        state.set_aside.insert(5);
        state.save(&dir).unwrap();
        assert_eq!(State::load(&dir, "r1").unwrap(), state);
        fs::write(state_path(&dir, "r1"), "{garbage").unwrap();
        let err = State::load(&dir, "r1").unwrap_err();
        assert!(err.message().contains("broken"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
