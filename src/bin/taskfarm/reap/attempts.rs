//! What the reaper does with the failed-attempt records of the journal
//! directory (the library's `worker::attempts`): a crash it finds is
//! recorded there as an attempt, once per worker; a task released below
//! 100 % (`tf_worker_done`'s `TF_NOT_DONE`, a pending record) is given back
//! as a failed attempt, or set aside once its attempts reach the limit; the
//! tasks that `tf_worker_fail` set aside count as set aside.

use std::collections::BTreeSet;
use std::path::Path;

use taskfarm_worker::internal::wire::{TaskState, TaskUpdate};
use taskfarm_worker::internal::worker::attempts::{self, Attempt, Found, Kind};
use taskfarm_worker::internal::{Error, Result, Run};

use super::pass::{Report, TaskAction};
use super::state::State;

/// The attempt records of `run` in `dir` written by the reaper's user or
/// one of `owners` (`--owner`).
pub fn records(dir: &Path, run: &str, owners: &[u32]) -> Result<Vec<Found>> {
    Ok(attempts::read_all_of(dir, run, owners)?.0)
}

/// The tasks that a record set aside (`tf_worker_fail` at the limit, or a
/// pending `not_done` the reaper set aside).
pub fn set_aside(found: &[Found]) -> BTreeSet<i64> {
    found
        .iter()
        .filter(|f| f.attempt.set_aside)
        .map(|f| f.attempt.task)
        .collect()
}

/// The attempts of `task` once the crash of `worker` is counted: each
/// record once, this crash once however many passes see it.
pub fn with_crash(found: &[Found], task: i64, worker: &str) -> u32 {
    let known = found.iter().any(|f| {
        f.attempt.task == task && f.attempt.kind == Kind::Crashed && f.attempt.worker == worker
    });
    attempts::count_in(found, task) + u32::from(!known)
}

/// The attempts of `task` recorded.
pub fn count_in_records(found: &[Found], task: i64) -> u32 {
    attempts::count_in(found, task)
}

/// Records the crash of `worker` holding `task` at `percent` (unless a
/// record of it exists already).
pub fn record_crash(
    dir: &Path,
    found: &[Found],
    run: &str,
    task: i64,
    worker: &str,
    percent: f64,
    why: &str,
) -> Result<()> {
    if found.iter().any(|f| {
        f.attempt.task == task && f.attempt.kind == Kind::Crashed && f.attempt.worker == worker
    }) {
        return Ok(());
    }
    let record = Attempt::new(
        run,
        task,
        Kind::Crashed,
        worker,
        percent,
        &format!("the worker died holding it: {why}"),
    );
    attempts::record(dir, &record).map(|_| ()).map_err(|e| {
        Error::invalid_argument(format!("cannot record a crash in {}: {e}", dir.display()))
    })
}

/// Whether a pending `not_done` record of `worker` names `task`: the worker
/// recorded its release below 100 % before sending it (the library writes
/// the record first), so its task is given back as that attempt, not as a
/// crash.
pub fn released_below_100(found: &[Found], task: i64, worker: &str) -> bool {
    found.iter().any(|f| {
        f.pending
            && f.attempt.kind == Kind::NotDone
            && f.attempt.task == task
            && f.attempt.worker == worker
    })
}

/// Gives back (or sets aside) every task released below 100 % that a
/// pending record names and that the server still shows computing; the
/// record is then settled (it stays counted as an attempt). `live_held`:
/// the (worker, task) pairs that the journals of live workers name — the
/// record of such a pair is written before the release's request, which
/// may still be in flight (the task still held): left for a later pass.
#[allow(clippy::too_many_arguments)]
pub fn settle_not_done(
    run: &Run,
    dir: &Path,
    owners: &[u32],
    max_attempts: u32,
    dry: bool,
    live_held: &BTreeSet<(String, i64)>,
    state: &mut State,
    report: &mut Report,
) -> Result<()> {
    let found = records(dir, run.uuid(), owners)?;
    let would = if dry { "would " } else { "" };
    for pending in found.iter().filter(|f| f.pending) {
        let task = pending.attempt.task;
        if live_held.contains(&(pending.attempt.worker.clone(), task)) {
            report.messages.push(format!(
                "task {task}: worker {} is releasing it below 100 % and still names it: left \
                 for a later pass",
                pending.attempt.worker
            ));
            continue;
        }
        if run.check_task(task).is_err() {
            continue;
        }
        let computing = run.task(task)?.status == TaskState::Computing;
        let attempts = attempts::count_in(&found, task);
        let action = TaskAction {
            task,
            worker: pending.attempt.worker.clone(),
            attempts,
        };
        if !computing {
            report.messages.push(format!(
                "task {task}, released below 100 % by worker {}, is no longer computing: \
                 nothing to give back",
                pending.attempt.worker
            ));
        } else if attempts >= max_attempts || state.set_aside.contains(&task) {
            report.messages.push(format!(
                "{would}set task {task} aside: released below 100 % by worker {}, its \
                 {attempts} failed attempt(s) reached --max-attempts {max_attempts}",
                pending.attempt.worker
            ));
            if !dry {
                state.set_aside.insert(task);
                state.save(dir)?;
            }
            report.newly_set_aside.push(action);
        } else {
            report.messages.push(format!(
                "{would}give back task {task}, released below 100 % by worker {} (waiting, \
                 percentage kept; {attempts} failed attempt(s))",
                pending.attempt.worker
            ));
            if !dry {
                // Settled first: a task given back is never given back twice.
                attempts::settle(dir, &pending.file).map_err(|e| cannot_settle(dir, e))?;
                let given = run.update_task(
                    task,
                    &TaskUpdate {
                        percent_completed: None,
                        status: Some(TaskState::Waiting),
                    },
                );
                match given {
                    Ok(()) => {}
                    Err(error) if error.may_have_reached_server() => {
                        // It may have landed: the record stays settled, so
                        // that no later pass gives the task back again.
                        report.messages.push(format!(
                            "  the give-back of task {task} may have reached the server, \
                             unconfirmed ({error}): not given back again; if it stays \
                             computing, --restart-orphans gives it back"
                        ));
                        continue;
                    }
                    Err(error) => {
                        let _ = attempts::unsettle(dir, &pending.file);
                        return Err(error);
                    }
                }
            }
            report.given_back.push(action);
            continue;
        }
        if !dry {
            attempts::settle(dir, &pending.file).map_err(|e| cannot_settle(dir, e))?;
        }
    }
    Ok(())
}

fn cannot_settle(dir: &Path, error: std::io::Error) -> Error {
    Error::invalid_argument(format!(
        "cannot settle an attempt record in {}: {error}",
        dir.display()
    ))
}
