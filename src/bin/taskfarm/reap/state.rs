//! The reaper's own state, `DIR/reap-<run>.json`: attempts per task (and
//! which workers' deaths were counted, so that a give-back that fails and is
//! tried again counts nothing twice), the tasks set aside, and the reaper's
//! looks at each heartbeat, timed by its own monotonic clock. Written
//! atomically through `shared_dir.rs`, read with `O_NOFOLLOW`, a size limit
//! and a regular-file check, and only when the reaper's own user owns it.
//! Only the holder of the run's lock (`lock.rs`) writes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_derive::{Deserialize, Serialize};
use taskfarm_worker::internal::worker::machine::boot_id;
use taskfarm_worker::internal::worker::shared_dir::{
    own_uid, read_limited, write_atomic, ReadRefused,
};
use taskfarm_worker::internal::{Error, Result};

/// A state file larger than this is not the reaper's (it is not read).
pub const MAX_STATE_BYTES: u64 = 64 << 20;

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
    /// The workers whose death was counted in `attempts`, per task.
    #[serde(default)]
    pub counted: BTreeMap<i64, BTreeSet<String>>,
    /// The machine (boot id) whose monotonic clock timed `looks`: looks
    /// timed by another machine's clock are dropped.
    #[serde(default)]
    pub clock: Option<String>,
    /// The reaper's last look at each worker's heartbeat.
    #[serde(default)]
    pub looks: BTreeMap<String, Look>,
    /// What the last pass saw when no live worker explained the tasks
    /// computing: orphans are restarted only when two passes saw the same.
    #[serde(default)]
    pub orphan_look: Option<OrphanLook>,
    /// Give-backs whose outcome is unknown (the PUT may have reached the
    /// server, no answer came), per task the workers whose journal named
    /// it: never given back again on those journals' word, as the journal's
    /// own `releasing` says of a worker's hand-back (the task may already be
    /// another worker's). A task left computing is `--restart-orphans`'.
    #[serde(default)]
    pub releasing: BTreeMap<i64, BTreeSet<String>>,
}

/// The reaper's look at one worker's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Look {
    /// The heartbeat value the journal held (the worker's clock: compared
    /// only with itself).
    pub heartbeat: f64,
    /// The reaper's monotonic time (seconds) when it first saw that value.
    pub since: f64,
}

/// What a pass saw when it found tasks computing that no live worker holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanLook {
    /// Tasks done, computing, waiting on the server.
    pub counts: (i64, i64, i64),
    /// The journal files of the run.
    pub journals: Vec<String>,
}

const STATE_FORMAT: &str = "taskfarm-reap-state";

/// The reaper state file of run `run` in `dir`.
pub fn state_path(dir: &Path, run: &str) -> PathBuf {
    dir.join(state_name(run))
}

fn state_name(run: &str) -> String {
    format!("reap-{run}.json")
}

/// The reaper's monotonic clock, in seconds: `CLOCK_BOOTTIME` (it counts
/// time suspended too, and never jumps when the wall clock is set).
pub fn monotonic_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

impl State {
    /// Reads the state of `run` in `dir`; a missing file is a fresh state,
    /// anything else that is not this reaper's state an error (the reaper
    /// does nothing on its word): a symlink, FIFO or device, a file over
    /// [`MAX_STATE_BYTES`], one owned by another user, broken JSON.
    pub fn load(dir: &Path, run: &str) -> Result<State> {
        let path = state_path(dir, run);
        let refuse = |why: String| {
            Error::invalid_argument(format!(
                "the reaper state {} {why}: fix or remove it",
                path.display()
            ))
        };
        let read = match read_limited(&path, MAX_STATE_BYTES) {
            Ok(read) => read,
            Err(ReadRefused::Missing) => {
                return Ok(State {
                    format: STATE_FORMAT.into(),
                    version: 1,
                    run: run.into(),
                    ..State::default()
                })
            }
            Err(ReadRefused::TooLarge(n)) => {
                return Err(refuse(format!(
                    "is {n} bytes long, more than a reaper state ({MAX_STATE_BYTES} at most)"
                )))
            }
            Err(e) => return Err(refuse(e.to_string())),
        };
        if read.owner != own_uid() {
            return Err(refuse(format!(
                "belongs to uid {}, not to this reaper's user (uid {})",
                read.owner,
                own_uid()
            )));
        }
        let state: State =
            serde_json::from_slice(&read.bytes).map_err(|e| refuse(format!("is broken ({e})")))?;
        if state.format != STATE_FORMAT || state.version != 1 || state.run != run {
            return Err(refuse(format!(
                "is not the reaper state (version 1) of run {run}"
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

    /// Counts the death of `worker` holding `task`, once per worker however
    /// often it is called. Returns the attempts of `task`.
    pub fn count_crash(&mut self, task: i64, worker: &str) -> u32 {
        let counted = self.counted.entry(task).or_default();
        let attempts = self.attempts.entry(task).or_insert(0);
        if counted.insert(worker.to_owned()) {
            *attempts += 1;
        }
        *attempts
    }

    /// The attempts `task` would have with the death of `worker` counted.
    pub fn attempts_with(&self, task: i64, worker: &str) -> u32 {
        let known = self.attempts.get(&task).copied().unwrap_or(0);
        let counted = self.counted.get(&task).is_some_and(|c| c.contains(worker));
        known + u32::from(!counted)
    }

    /// Records that the give-back of `task`, held by `worker`, may have
    /// reached the server unconfirmed (no answer, or a 5xx).
    pub fn mark_releasing(&mut self, task: i64, worker: &str) {
        self.releasing
            .entry(task)
            .or_default()
            .insert(worker.to_owned());
    }

    /// Whether a give-back of `task` on the word of `worker`'s journal may
    /// already have reached the server ([`State::mark_releasing`]).
    pub fn is_releasing(&self, task: i64, worker: &str) -> bool {
        self.releasing
            .get(&task)
            .is_some_and(|w| w.contains(worker))
    }

    /// Forgets the attempts of `task` (released). Its uncertain give-backs
    /// stay recorded: a journal that named it must not give it back later.
    pub fn forget(&mut self, task: i64) {
        self.attempts.remove(&task);
        self.counted.remove(&task);
        self.set_aside.remove(&task);
    }

    /// Looks at the heartbeat of `worker` now (`now` on the reaper's
    /// monotonic clock of machine `clock`): how long the reaper has seen it
    /// stand still, `None` at a first look or when it changed.
    pub fn look(
        &mut self,
        worker: &str,
        heartbeat: f64,
        clock: Option<&str>,
        now: f64,
    ) -> Option<f64> {
        if clock.is_none() || self.clock.as_deref() != clock {
            // Another machine's clock (or none): earlier looks cannot be timed.
            self.looks.clear();
            self.clock = clock.map(str::to_owned);
        }
        let still = match self.looks.get(worker) {
            Some(look) if look.heartbeat.to_bits() == heartbeat.to_bits() && clock.is_some() => {
                Some((now - look.since).max(0.0))
            }
            _ => None,
        };
        if still.is_none() {
            self.looks.insert(
                worker.to_owned(),
                Look {
                    heartbeat,
                    since: now,
                },
            );
        }
        still
    }

    /// Starts the heartbeat's count again from now (its Slurm job is
    /// suspended: it cannot beat).
    pub fn look_again(&mut self, worker: &str, now: f64) {
        if let Some(look) = self.looks.get_mut(worker) {
            look.since = now;
        }
    }

    /// Drops the looks at workers whose journal is gone.
    pub fn keep_looks_of(&mut self, workers: &BTreeSet<String>) {
        self.looks.retain(|w, _| workers.contains(w));
    }
}

/// This machine's boot id, which names the reaper's monotonic clock.
pub fn clock_name() -> Option<String> {
    boot_id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("taskfarm-reap-unit-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_state_file_round_trips_and_a_broken_one_is_refused() {
        let dir = scratch("roundtrip");
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

    #[test]
    fn a_crash_counts_once_per_worker_however_often_it_is_settled() {
        let mut state = State::default();
        assert_eq!(state.attempts_with(3, "w1"), 1);
        assert_eq!(state.count_crash(3, "w1"), 1);
        assert_eq!(state.count_crash(3, "w1"), 1, "the same death again");
        assert_eq!(state.attempts_with(3, "w1"), 1);
        assert_eq!(state.attempts_with(3, "w2"), 2);
        assert_eq!(state.count_crash(3, "w2"), 2);
    }

    #[test]
    fn an_uncertain_give_back_is_remembered_per_journal_and_survives_a_release() {
        let dir = scratch("releasing");
        let mut state = State::load(&dir, "r1").unwrap();
        state.mark_releasing(4, "w1");
        state.forget(4);
        state.save(&dir).unwrap();
        let state = State::load(&dir, "r1").unwrap();
        assert!(state.is_releasing(4, "w1"));
        assert!(!state.is_releasing(4, "w2"), "another worker's journal");
        assert!(!state.is_releasing(5, "w1"), "another task");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_heartbeat_is_timed_from_the_first_look_at_its_value() {
        let mut state = State::default();
        assert_eq!(state.look("w", 100.0, Some("boot"), 10.0), None);
        assert_eq!(state.look("w", 100.0, Some("boot"), 15.0), Some(5.0));
        // It changed: alive, counted again from here.
        assert_eq!(state.look("w", 130.0, Some("boot"), 20.0), None);
        assert_eq!(state.look("w", 130.0, Some("boot"), 50.0), Some(30.0));
        // Suspended: counted from the next look.
        state.look_again("w", 60.0);
        assert_eq!(state.look("w", 130.0, Some("boot"), 61.0), Some(1.0));
        // Another reaper machine's clock: the looks start over.
        assert_eq!(state.look("w", 130.0, Some("other"), 5.0), None);
        assert_eq!(state.look("w", 130.0, None, 5.0), None);
        assert_eq!(state.look("w", 130.0, None, 9.0), None);
    }
}
