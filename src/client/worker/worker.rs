//! A worker working through a run (the Python `TaskFarmWorker`): it holds at
//! most one task, reports progress on it and marks it done. Progress is
//! coalesced (`progress.rs`): at most one progress request per interval.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::attempts::{self, Attempt, Kind};
use super::deadline::WallTime;
use super::held_task::{DoneOutcome, HeldTask, Notes, Slot};
use super::identity;
use super::journal::{self, Journal};
use super::progress::Progress;
use super::stop_signals;
use crate::client::env;
use crate::client::error::{Error, ErrorKind, Result};
use crate::client::http::reply::describe_body;
use crate::client::http::retry::{is_retryable_status, Method};
use crate::client::run::{check_percentage, Run};
use crate::client::wire::{
    RegisterWorker, RequestTask, TaskRecord, TaskState, TaskUpdate, WorkerAnswer,
};

/// A worker registered with the server for one run: it holds at most one
/// task at a time. [`Worker::tasks`] is the loop over the run's tasks; the
/// methods below are the calls of the C ABI, one by one. Progress is sent at
/// most once per update interval; dropping the worker sends what is still
/// pending.
///
/// Inside, the held task lives in a `Slot` that the stop watcher can reach
/// (`held_task.rs`), with the task's coalesced `Progress`; dropping the worker
/// also ends the progress flusher thread.
#[derive(Debug)]
pub struct Worker {
    run: Arc<Run>,
    uuid: String,
    slot: Arc<Slot>,
    wall: WallTime,
    /// The journal (`TASKFARM_JOURNAL`, [`Worker::set_journal`]), if any.
    journal: Option<Journal>,
}

impl Worker {
    /// Registers a new worker for `run` (`POST worker` with a fresh UUID, the
    /// host name and the process id). `TASKFARM_DEADLINE` and
    /// `TASKFARM_TASK_SECONDS` are read first.
    pub fn register(run: Arc<Run>) -> Result<Worker> {
        let wall = WallTime::from_env(env::var)?;
        let uuid = identity::new_worker_uuid();
        let hostname = identity::host_name();
        let answer: WorkerAnswer = run
            .connection()
            .call(
                Method::Post,
                "worker",
                Some(&RegisterWorker {
                    uuid: &uuid,
                    hostname: &hostname,
                    pid: std::process::id(),
                }),
            )?
            .expect(&[201])?
            .json()?;
        if answer.uuid != uuid {
            return Err(Error::protocol(format!(
                "POST worker registered uuid {:?}, not the {uuid:?} that was sent",
                crate::client::http::scrub::clean(&answer.uuid)
            )));
        }
        let journal = Journal::from_env(run.uuid(), &uuid)?;
        let slot = Slot::register(
            Arc::clone(&run) as _,
            Progress::new(Arc::clone(&run) as _, run.update_interval()),
        );
        slot.set_journal(notes_of(journal.as_ref()));
        Ok(Worker {
            slot,
            run,
            uuid,
            wall,
            journal,
        })
    }

    /// Keeps this worker's journal in `dir` from now on (`None`: no journal).
    /// The previous journal file, if any, is removed.
    pub fn set_journal(&mut self, dir: Option<&Path>) -> Result<()> {
        let name = journal::file_name(self.run.uuid(), &self.uuid);
        if let (Some(dir), Some(old)) = (dir, &self.journal) {
            if old.path() == dir.join(&name) {
                return Ok(());
            }
        }
        let new = match dir {
            Some(dir) => Some(Journal::start(dir, self.run.uuid(), &self.uuid)?),
            None => None,
        };
        if let Some(old) = self.journal.take() {
            self.slot.set_journal(None);
            // A held task moves to the new file (below), never left to the
            // reaper in the old one; kept `done`s move too, or stay in the
            // old file (marked freed) for the reaper when there is no new one.
            old.released();
            if let Some(new) = &new {
                for task in old.kept_done() {
                    new.keep_done(task);
                    // Moved only once the new file holds it.
                    if new.done_is_kept(task) {
                        old.delivered(task);
                    }
                }
            }
            old.finish();
        }
        // Names the held task in the new journal, under the slot's lock.
        self.slot.set_journal(notes_of(new.as_ref()));
        self.journal = new;
        Ok(())
    }

    #[doc(hidden)]
    /// The journal, if any.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// After a successful request: delivers the kept `done`s, if any. One
    /// that fails stays kept for the next time.
    fn deliver_kept(&mut self) -> Result<()> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        for task in journal.kept_done() {
            self.run.update_task(task, &KEPT_DONE)?;
            journal.delivered(task);
        }
        Ok(())
    }

    /// Refuses to act in a child process after `fork()`: the held task and
    /// the connections are the parent's.
    fn check_process(&self) -> Result<()> {
        if self.progress().is_own() {
            return Ok(());
        }
        Err(Error::invalid_argument(format!(
            "worker {} belongs to the process that made it, not to this one (after fork()): \
             a child process makes its own worker",
            self.uuid
        )))
    }

    /// Whether this process made the worker (false in a child after `fork()`).
    pub fn is_own(&self) -> bool {
        self.progress().is_own()
    }

    /// The progress interval: at most one progress request per interval.
    pub fn update_interval(&self) -> Duration {
        self.progress().interval()
    }

    /// Sets the progress interval (zero: every update is sent at once).
    pub fn set_update_interval(&mut self, interval: Duration) -> Result<()> {
        self.check_process()?;
        self.progress().set_interval(interval);
        Ok(())
    }

    #[doc(hidden)]
    /// The pending progress of the held task and its sending, for the
    /// operations that end or hand back the task: [`Progress::settle`] before
    /// their request, [`Progress::restore`] when it failed.
    pub fn progress(&self) -> &Progress {
        self.slot.progress()
    }

    /// The run worked on.
    pub fn run(&self) -> &Arc<Run> {
        &self.run
    }

    /// The worker's UUID (32 lowercase hex digits).
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The task held, if any (no request).
    pub fn held_task(&self) -> Option<i64> {
        self.slot.held().map(|h| h.task)
    }

    /// The held task's percentage as last known (from the hand-out answer or
    /// the last update), if a task is held (no request).
    pub fn held_percent(&self) -> Option<f64> {
        self.slot.held().map(|h| h.percent)
    }

    /// Sets the deadline (Unix time, seconds) and the seconds a task takes (0:
    /// estimate from this worker's completed tasks); see `deadline.rs`.
    pub fn set_deadline(&mut self, unix_time: f64, task_seconds: f64) -> Result<()> {
        self.wall.set(unix_time, task_seconds)
    }

    /// Once a stop was requested: hands the held task back (at `percent`, or
    /// its last known percentage) unless the stop watcher did, and answers the
    /// `Stopped` error. `Ok` while no stop was requested. In `TF_STOP_EXIT`
    /// mode the watcher hands back and ends the process: this call waits for
    /// that, so that the program cannot end otherwise first.
    fn check_stop(&mut self, percent: Option<f64>) -> Result<()> {
        if stop_signals::stop_requested() == 0 {
            return Ok(());
        }
        stop_signals::await_exit();
        if self.slot.hand_back(percent)? {
            self.wall.task_released();
        }
        Err(stop_signals::stopped_error())
    }

    /// The held task, or a new one from the server (`POST runs/UUID/task`);
    /// `None` when no task is left. The percentage comes from the answer
    /// itself: no second request as in the Python client. After a stop
    /// signal, or when the deadline leaves no time for a task, an error of
    /// kind `Stopped` and no task is taken.
    pub fn task(&mut self) -> Result<Option<i64>> {
        self.check_process()?;
        self.check_stop(None)?;
        self.progress().take_failure()?;
        if let Some(held) = self.slot.held() {
            return Ok(Some(held.task));
        }
        self.wall.check_fits(env::var)?;
        if let Err(stopped) = self.slot.begin_request(stop_signals::stopped) {
            // A stop caught just now: in TF_STOP_EXIT the process is ending.
            stop_signals::await_exit();
            return Err(stopped);
        }
        let outcome = self.request_task();
        if let Ok(Some(_)) = outcome {
            self.progress().task_taken();
        }
        // The journal names the task before the stop watcher can see it.
        self.slot
            .end_request(outcome.as_ref().ok().copied().flatten(), outcome.is_err());
        let held = outcome?;
        if held.is_some() {
            self.wall.task_started();
        }
        // A "no task left" answer is a successful request too: at the end
        // of a run it is the last one a worker makes.
        let _ = self.deliver_kept();
        // A stop caught while the task was asked for: it goes straight back.
        self.check_stop(None)?;
        Ok(held.map(|h| h.task))
    }

    fn request_task(&self) -> Result<Option<HeldTask>> {
        let reply = self
            .run
            .connection()
            .call(
                Method::Post,
                &format!("runs/{}/task", self.run.uuid()),
                Some(&RequestTask {
                    worker_uuid: &self.uuid,
                }),
            )?
            .expect(&[201, 204])?;
        if reply.status == 204 {
            return Ok(None);
        }
        let record: TaskRecord = reply.json()?;
        if self.run.check_task(record.task).is_err()
            || !(0.0..=100.0).contains(&record.percent_completed)
        {
            return Err(Error::with_http_status(
                ErrorKind::Protocol,
                reply.status,
                format!(
                    "{} answered HTTP {} handing out task {} at {} %, outside run {} of {} tasks: {}",
                    reply.what,
                    reply.status,
                    record.task,
                    record.percent_completed,
                    self.run.uuid(),
                    self.run.num_tasks(),
                    describe_body(&reply.body)
                ),
            ));
        }
        Ok(Some(HeldTask {
            task: record.task,
            percent: record.percent_completed,
        }))
    }

    /// Reports progress on the held task. A percentage above 100 by at most
    /// 1e-6 (a sum of steps such as `100.0 / 7` seven times) is taken as 100;
    /// any other outside 0..100 is refused; with no task held nothing is sent. Sent at once when the
    /// interval since the task was taken or progress last sent is over, else
    /// kept and sent when it is (the latest value wins). After a stop signal
    /// the held task is handed back at this percentage instead, and the
    /// answer is an error of kind `Stopped`.
    pub fn update(&mut self, percentage: f64) -> Result<()> {
        let percentage = check_percentage(finished_within_tolerance(percentage))?;
        self.check_process()?;
        self.check_stop(Some(percentage))?;
        self.progress().take_failure()?;
        // The slot and the journal know the latest value at once, sent or
        // pending: a hand-back after a stop, `done` and the reaper use it.
        let Some(held) = self.slot.update(percentage) else {
            return Ok(());
        };
        self.progress().update(held.task, percentage)?;
        let _ = self.deliver_kept();
        Ok(())
    }

    /// Releases the held task, marking it done when its last known percentage
    /// is 100 (within 1e-6), as the Python client. If marking it done fails,
    /// the task stays held so that the call can be repeated — except with a
    /// journal when the server could not be reached after every retry: then
    /// the `done` is kept in the journal, the task is forgotten, the error is
    /// returned, and the next successful request (or `taskfarm reap`)
    /// delivers it. With no task held, delivers the kept `done`s, if any. A
    /// stop signal does not change this: a finished task is still marked done.
    ///
    /// A pending progress value goes in the same request: `update(100)` then
    /// `done()` within the interval is one `PUT` of percentage and state.
    pub fn done(&mut self) -> Result<()> {
        self.release(false, false).map(|_| ())
    }

    /// [`Worker::done`], answering whether the task was marked done:
    /// `Ok(false)` when it was released below 100 % (it stays `computing`
    /// on the server, as with the Python client; with a journal the release
    /// is recorded, and `taskfarm reap` gives the task back as a failed
    /// attempt). `Ok(true)` also when no task was held.
    ///
    /// With a journal the `not_done` record is written *before* the
    /// release's request (removed again when the request fails and the task
    /// stays held): a process that dies with the request in flight, or just
    /// after its answer, leaves the record, and the reaper gives the task
    /// back as that one attempt (a record written after the answer left a
    /// window where the journal no longer named the task and no record did
    /// yet: the task stayed computing with nobody on it). If the record
    /// cannot be written, nothing is sent and the task stays held.
    pub fn done_marked(&mut self) -> Result<bool> {
        self.release(false, true)
    }

    /// Writes the pending `not_done` record of `held`, to be released below
    /// 100 %, in the journal directory if there is one: its directory and
    /// file name.
    fn record_not_done(&self, held: HeldTask) -> Result<Option<(std::path::PathBuf, String)>> {
        let Some(dir) = self.journal_dir() else {
            return Ok(None);
        };
        let record = Attempt::new(
            self.run.uuid(),
            held.task,
            Kind::NotDone,
            &self.uuid,
            held.percent,
            &format!(
                "released by done at {} % (below 100): the task stayed computing",
                held.percent
            ),
        );
        match attempts::record(&dir, &record) {
            Ok(file) => Ok(Some((dir, file))),
            Err(e) => Err(Error::invalid_argument(format!(
                "task {} is to be released below 100 %, but the journal directory {} cannot \
                 record it: {e}; nothing was sent, the task is still held",
                held.task,
                dir.display()
            ))),
        }
    }

    /// The journal directory, if the worker keeps a journal.
    fn journal_dir(&self) -> Option<std::path::PathBuf> {
        let path = self.journal.as_ref()?.path();
        path.parent().map(Path::to_path_buf)
    }

    /// The held task's attempt number: 1 + its failed or crashed attempts
    /// recorded in the journal directory (1 without a journal); `None` when
    /// no task is held.
    pub fn attempt(&self) -> Result<Option<u32>> {
        let Some(held) = self.slot.held() else {
            return Ok(None);
        };
        let Some(dir) = self.journal_dir() else {
            return Ok(Some(1));
        };
        let failed = attempts::count(&dir, self.run.uuid(), held.task)?;
        Ok(Some(failed.saturating_add(1)))
    }

    /// The held task failed here, for the reason `message` (kept up to 2
    /// KiB). It is handed back (`waiting`, percentage kept) as a failed
    /// attempt. With a journal the attempt is recorded in its directory,
    /// where every worker of the run counts it; a task whose attempts reach
    /// `TASKFARM_MAX_ATTEMPTS` (default 3) is set aside instead: left
    /// `computing`, so that no worker takes it, and listed by `taskfarm
    /// failed`. Without a journal it is handed back and nothing is counted.
    /// If the server does not take it back, the task stays held and nothing
    /// is recorded; if the hand-back may have reached the server unconfirmed,
    /// the attempt stays recorded and the task is held no more (see
    /// [`Worker::hand_back`]). With no task held, nothing is done.
    ///
    /// Through the held task's state machine: a stop watcher waits for the
    /// fail's outcome and never hands back a task being failed or set aside.
    pub fn fail(&mut self, message: &str) -> Result<Failed> {
        self.check_process()?;
        // A failed background send is superseded: its value goes in the
        // hand-back.
        let _ = self.progress().take_failure();
        let dir = self.journal_dir();
        let max = match dir {
            Some(_) => attempts::max_attempts()?,
            None => u32::MAX,
        };
        let (run, worker) = (self.run.uuid().to_owned(), self.uuid.clone());
        let mut attempt = 1;
        let record = |held: HeldTask| -> Result<(bool, Option<String>)> {
            let Some(dir) = &dir else {
                return Ok((false, None));
            };
            attempt = attempts::count(dir, &run, held.task)?.saturating_add(1);
            let mut record = Attempt::new(
                &run,
                held.task,
                Kind::Failed,
                &worker,
                held.percent,
                message,
            );
            record.set_aside = attempt >= max;
            let file = attempts::record(dir, &record).map_err(|e| {
                Error::invalid_argument(format!(
                    "cannot record the failed attempt of task {} in {}: {e}",
                    held.task,
                    dir.display()
                ))
            })?;
            Ok((record.set_aside, Some(file)))
        };
        let undo = |file: Option<String>| {
            if let (Some(dir), Some(file)) = (&dir, file) {
                let _ = attempts::remove(dir, &file);
            }
        };
        let Some((_, set_aside)) = self.slot.fail(record, undo)? else {
            return Ok(Failed::NothingHeld);
        };
        self.wall.task_released();
        let _ = self.deliver_kept();
        Ok(if set_aside {
            Failed::SetAside { attempt }
        } else {
            Failed::HandedBack { attempt }
        })
    }

    /// Marks the held task done at 100 %, whatever percentage it was last
    /// given; otherwise as [`Worker::done`] (a failure, the journal, a stop).
    pub fn complete(&mut self) -> Result<()> {
        self.release(true, false).map(|_| ())
    }

    /// [`Worker::done`], or [`Worker::complete`] when `complete`; true when
    /// the task was marked done (or none was held).
    /// `record_not_done`: a release below 100 % is recorded in the journal
    /// directory first ([`Worker::done_marked`]).
    fn release(&mut self, complete: bool, record_not_done: bool) -> Result<bool> {
        self.check_process()?;
        // A failed background send is superseded: its value is still
        // pending and goes in this call's own request, whose outcome is the
        // answer (with a journal and the server away, the done is kept).
        let _ = self.progress().take_failure();
        // Marked in flight (and, when it marks the task done, kept in the
        // journal first): the stop watcher waits for its outcome rather than
        // hand back a task being released. `None`: no task held.
        let begun = self
            .slot
            .begin_done(complete, || stop_signals::stop_requested() != 0);
        let Ok(begun) = begun else {
            // An unfinished task after a stop: handed back, not left
            // `computing` (TF_STOP_EXIT: the watcher does it and this call
            // waits for the process to end).
            return self.check_stop(None).map(|()| false);
        };
        let Some((held, finished)) = begun else {
            return self.deliver_kept().map(|()| true);
        };
        // The intent before the request: see `done_marked`.
        let not_done = if record_not_done && !finished {
            match self.record_not_done(held) {
                Ok(file) => file,
                Err(error) => {
                    self.slot.end_done(DoneOutcome::Failed);
                    return Err(error);
                }
            }
        } else {
            None
        };
        let pending = self.progress().settle();
        // A finished task is recorded at 100 %, whatever became of the
        // updates before (one may have failed and been dropped).
        let update = TaskUpdate {
            percent_completed: if finished {
                Some(100.0)
            } else {
                pending.map(|p| p.percent)
            },
            status: finished.then_some(TaskState::Done),
        };
        if update.percent_completed.is_some() || update.status.is_some() {
            if let Err(error) = self.run.put_task(held.task, &update) {
                match &self.journal {
                    Some(journal) if finished && server_away(&error) => {
                        // The kept done sets 100 % too: nothing pending is lost.
                        if !journal.done_is_kept(held.task) {
                            // Its write failed (a full disk, a lost mount):
                            // nothing is kept, the task stays held.
                            if let Some(p) = pending {
                                self.progress().restore(p);
                            }
                            self.slot.end_done(DoneOutcome::Failed);
                            return Err(error.context_after(&format!(
                                " (the done of task {} could not be kept either: the journal \
                                 {} cannot be written; the task is still held, call done again)",
                                held.task,
                                journal.path().display()
                            )));
                        }
                        self.slot.end_done(DoneOutcome::Kept);
                        self.wall.task_released();
                        return Err(error.context_after(&format!(
                            " (the done of task {} is kept in the journal {} and is \
                             delivered by the next successful request or by taskfarm reap)",
                            held.task,
                            journal.path().display()
                        )));
                    }
                    _ => {
                        if let Some(p) = pending {
                            self.progress().restore(p);
                        }
                        // Still held: the release did not happen.
                        if let Some((dir, file)) = &not_done {
                            let _ = attempts::remove(dir, file);
                        }
                        self.slot.end_done(DoneOutcome::Failed);
                        return Err(error);
                    }
                }
            }
        }
        self.slot.end_done(DoneOutcome::Answered);
        if finished {
            self.wall.task_completed();
        } else {
            self.wall.task_released();
        }
        let _ = self.deliver_kept();
        Ok(finished)
    }

    /// Sends the pending progress now, in the calling thread (nothing when
    /// none is pending). On failure it stays pending.
    pub fn flush(&mut self) -> Result<()> {
        self.check_process()?;
        self.progress().take_failure()?;
        self.progress().flush()
    }

    /// Hands the held task back (`waiting`) at its latest percentage, sent or
    /// pending, and forgets it, as the stop watcher does: another worker
    /// carries on from there. If the server does not take it, the task stays
    /// held, so that the call can be repeated; if the request may have
    /// reached the server unconfirmed (no answer, or a 5xx), the task may be
    /// another worker's already: it is held no more, never handed back again,
    /// and the error says so (left `computing`, it is an orphan for `taskfarm
    /// reap --restart-orphans`). With no task held, nothing is sent.
    pub fn hand_back(&mut self) -> Result<()> {
        self.check_process()?;
        // A failed background send is superseded: its value is still pending
        // and goes in the hand-back.
        let _ = self.progress().take_failure();
        if self.slot.hand_back(None)? {
            self.wall.task_released();
            let _ = self.deliver_kept();
        }
        Ok(())
    }

    /// Gives the held task back (`waiting`, 0 %) and forgets it, for a worker
    /// that cannot finish it. If the server does not take it, the task stays
    /// held (unless the request may have reached it: see [`Worker::hand_back`]).
    /// A pending progress value is dropped: the request sets 0 %.
    pub fn requeue(&mut self) -> Result<()> {
        self.check_process()?;
        // A failed background send is superseded: this request sets 0 %.
        let _ = self.progress().take_failure();
        // Through the held task's state machine, as every hand-back: the
        // stop watcher waits for it, never sends a second `waiting`.
        if self.slot.hand_back(Some(0.0))? {
            self.wall.task_released();
            let _ = self.deliver_kept();
        }
        Ok(())
    }
}

impl Drop for Worker {
    /// A clean end: the pending progress is sent, the journal file is removed (kept, marked freed, when a
    /// task or kept `done`s are left).
    fn drop(&mut self) {
        if self.is_own() {
            // The pending progress first (a failure cannot be reported here);
            // the flusher thread ends when the slot goes.
            let _ = self.progress().flush();
        }
        if let Some(journal) = self.journal.take() {
            journal.finish();
        }
    }
}

/// What [`Worker::fail`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// No task was held: nothing done.
    NothingHeld,
    /// The task was handed back; this was its attempt number `attempt`.
    HandedBack {
        /// The attempt that failed (1 without a journal).
        attempt: u32,
    },
    /// The task reached `TASKFARM_MAX_ATTEMPTS` and was set aside.
    SetAside {
        /// The attempt that failed.
        attempt: u32,
    },
}

/// The `PUT` that delivers a kept `done`: the task at 100 % and done.
const KEPT_DONE: TaskUpdate = TaskUpdate {
    percent_completed: Some(100.0),
    status: Some(TaskState::Done),
};

/// `percentage`, or 100 when it is above 100 by at most 1e-6 (the tolerance
/// `done` uses): rounding in a sum of steps does not keep a task from
/// finishing.
pub fn finished_within_tolerance(percentage: f64) -> f64 {
    if percentage > 100.0 && percentage - 100.0 <= 1e-6 {
        100.0
    } else {
        percentage
    }
}

/// True for a failure that means the server was away: unreachable or timed
/// out after every retry, or still answering 500/502/503/504.
pub fn server_away(error: &Error) -> bool {
    error.kind() == ErrorKind::Connection
        || (error.kind() == ErrorKind::Http && error.http_status().is_some_and(is_retryable_status))
}

/// The journal's writer for the held task's state machine, if there is a journal.
fn notes_of(journal: Option<&Journal>) -> Option<Box<dyn Notes>> {
    journal.map(|j| Box::new(j.releaser()) as Box<dyn Notes>)
}
