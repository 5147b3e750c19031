//! A held task's life, as one state machine behind one lock: the worker's
//! calls (main thread), the stop watcher, the progress flusher and the
//! journal all go through it, so that none acts on a task another has in
//! flight.
//!
//! Map:
//! - [`HeldState`], [`Event`], [`step`]: the machine itself, a pure function
//!   of a state and an event (the table test below runs every pair);
//! - [`Note`], [`Notes`]: what the worker journal is told, written under the
//!   lock *before* the new state can be seen (`journal.rs` implements it);
//! - [`Slot`]: one worker's machine, lock and condition variable, with the
//!   task's coalesced progress; every live slot is listed for the watcher;
//! - [`hand_back_all`]: the stop watcher's work, every slot in parallel,
//!   within the stop's budget;
//! - [`Slot::fail`]: a failed attempt (`tf_worker_fail`): recorded and
//!   handed back, or set aside, in the `Failing` state the watcher waits on.
//!
//! The guarantees (README "Stopping" and the header say them to users):
//! a task is executed at least once (a task handed out is held until it is
//! done or handed back, and a request in flight is waited for); a task is
//! marked done at most once by its worker, and never set `waiting` after its
//! `done` (nobody hands back a task in `Finishing`); nothing about a task is
//! sent after its hand-back (the flusher is fenced by `Progress::close`
//! before the hand-back's request). With a journal, the journal names a
//! task before anyone else can see it held, and a `done` is recorded as a
//! kept `done` before it is sent.
//!
//! Lock order: the slot's state, then the journal's record, then the
//! progress state; no lock is held across a request. `fork()` is no event of
//! the machine: a worker's calls in a child are refused before any lock is
//! taken (a thread of the parent may have held it at the fork), and the
//! watcher of a child never touches the parent's slots.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Instant;

use super::progress::{Progress, ProgressTarget};
use crate::client::error::{Error, Result};
use crate::client::wire::{TaskState, TaskUpdate};

/// A task held by a worker and the latest percentage the program gave it
/// (sent or pending).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldTask {
    /// The task number.
    pub task: i64,
    /// Its latest percentage.
    pub percent: f64,
}

/// Who sends a hand-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The program: `hand_back`, `requeue`, a dropped guard, a stop in
    /// `TF_STOP_CONTINUE` mode.
    Program,
    /// The stop watcher (`TF_STOP_EXIT`).
    Watcher,
}

/// Where a worker's task stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeldState {
    /// No task held.
    Idle,
    /// A task is being asked for (`POST runs/UUID/task` in flight).
    Requesting,
    /// A task is held.
    Held(HeldTask),
    /// The task's `done` (or the release of an unfinished task) is in flight.
    Finishing(HeldTask),
    /// The task's hand-back (`waiting`) is in flight.
    HandingBack(HeldTask, By),
    /// The program's fail is in flight: its attempt being recorded, then
    /// the task handed back (`waiting`) or set aside (left `computing`).
    Failing(HeldTask),
    /// The stop watcher has finished with this worker: the process is
    /// ending, the program's calls wait for that.
    Ended,
}

/// What happens to a held task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// The program asks for a task.
    RequestSent,
    /// The answer: a task, or none left.
    RequestAnswered(Option<HeldTask>),
    /// The request failed.
    RequestFailed,
    /// The program reports a percentage.
    Update(f64),
    /// The program releases the task: `finished`, it is marked done.
    DoneSent {
        /// Marked done (at 100 %), not only released.
        finished: bool,
    },
    /// The release's answer came.
    DoneAnswered,
    /// The release failed; `kept`: its `done` is kept in the journal.
    DoneFailed {
        /// Kept in the journal for later delivery.
        kept: bool,
    },
    /// The program hands the task back.
    HandBackSent,
    /// The hand-back's answer came (program's or watcher's).
    HandBackAnswered,
    /// The hand-back failed (program's or watcher's). `may_have_landed`:
    /// its request may have reached the server (no answer, or a 5xx): the
    /// task may be waiting, or already another worker's, so it is held no
    /// more and never handed back again (if it did not land it stays
    /// `computing`, an orphan for `taskfarm reap --restart-orphans`).
    HandBackFailed {
        /// The request may have reached the server.
        may_have_landed: bool,
    },
    /// The program says the task failed here (`tf_worker_fail`).
    FailSent,
    /// The fail's hand-back or set-aside was answered.
    FailAnswered,
    /// The fail's record or request failed: the task is still held, unless
    /// its hand-back may have reached the server (`may_have_landed`, as for
    /// [`Event::HandBackFailed`]).
    FailFailed {
        /// The hand-back may have reached the server.
        may_have_landed: bool,
    },
    /// The stop watcher looks at this worker (`TF_STOP_EXIT`).
    StopCaught,
}

/// What the actor of an event does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The new state holds; go on (send the request, or nothing more).
    Go,
    /// Nothing to act on (no task for a done or hand-back; for the
    /// watcher, nothing to hand back).
    Nothing,
    /// The watcher: a request of the program is in flight and decides;
    /// wait for the state to change (within the stop's budget).
    Wait,
    /// The program: the stop watcher has the task or has finished; the call
    /// waits for the process to end.
    AwaitExit,
    /// A task request after a stop was caught: refused.
    Stopped,
    /// Not possible in this state (a call out of order): refused.
    OutOfOrder,
    /// Not from [`step`]: the journal could not record that the task is
    /// being released and, as last written, names it as held (a full disk,
    /// a lost mount). Released now, the task would be given back a second
    /// time by `taskfarm reap` once this process ends, maybe after another
    /// worker took it; so nothing changes: the task stays held, named in
    /// the journal, for the program to try again or for the reaper.
    NotRecorded,
}

/// What the journal is told of a transition, before it can be seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Note {
    /// The task is held.
    Held(HeldTask),
    /// The held task's latest percentage.
    Percent(f64),
    /// The task's `done` is about to be sent: kept, so that the reaper
    /// delivers it if the process dies first.
    DoneIntent(i64),
    /// The release was answered: nothing held, the kept `done` (if any) delivered.
    Delivered(i64),
    /// The release failed and the task is still held: held again, no kept `done`.
    DoneNotSent(HeldTask),
    /// The task is being handed back (the reaper must not do it too).
    Releasing,
    /// It was handed back.
    Released,
    /// The hand-back failed.
    NotReleased,
}

/// Where the notes go: the worker journal's writer (`journal.rs`).
pub trait Notes: std::fmt::Debug + Send + Sync {
    /// Records `note` (called under the slot's lock). `false` only for a
    /// [`Note::Releasing`] that could not be recorded while the journal,
    /// as last written, names the task as held ([`Verdict::NotRecorded`]);
    /// the failures of the other notes are the journal's to report.
    fn note(&self, note: Note) -> bool;
}

/// One transition: the state after `event` in `state`, what the actor does,
/// and what the journal is told first. `stopped`: a stop signal was caught
/// (no task is taken after it). Unchanged state unless the verdict is `Go`.
pub fn step(state: HeldState, event: Event, stopped: bool) -> (HeldState, Verdict, Option<Note>) {
    use Event as E;
    use HeldState as S;
    use Verdict as V;
    let same = |verdict| (state, verdict, None);
    // The watcher has the task or has finished: the program waits for the end.
    let watcher_has_it = matches!(state, S::Ended | S::HandingBack(_, By::Watcher));
    match (state, event) {
        (S::Idle, E::RequestSent) if stopped => same(V::Stopped),
        (S::Idle, E::RequestSent) => (S::Requesting, V::Go, None),
        (S::Requesting, E::RequestAnswered(Some(held))) => {
            (S::Held(held), V::Go, Some(Note::Held(held)))
        }
        (S::Requesting, E::RequestAnswered(None) | E::RequestFailed) => (S::Idle, V::Go, None),
        (S::Held(held), E::Update(percent)) => (
            S::Held(HeldTask { percent, ..held }),
            V::Go,
            Some(Note::Percent(percent)),
        ),
        // After a stop an unfinished task is handed back, never released
        // to stay `computing` with nobody on it.
        (S::Held(_), E::DoneSent { finished: false }) if stopped => same(V::Stopped),
        (S::Held(held), E::DoneSent { finished }) => (
            S::Finishing(held),
            V::Go,
            finished.then_some(Note::DoneIntent(held.task)),
        ),
        (S::Finishing(held), E::DoneAnswered) => (S::Idle, V::Go, Some(Note::Delivered(held.task))),
        (S::Finishing(_), E::DoneFailed { kept: true }) => (S::Idle, V::Go, None),
        (S::Finishing(held), E::DoneFailed { kept: false }) => {
            (S::Held(held), V::Go, Some(Note::DoneNotSent(held)))
        }
        (S::Held(held), E::HandBackSent) => (
            S::HandingBack(held, By::Program),
            V::Go,
            Some(Note::Releasing),
        ),
        (S::HandingBack(_, by), E::HandBackAnswered) => (
            if by == By::Program { S::Idle } else { S::Ended },
            V::Go,
            Some(Note::Released),
        ),
        // It may be another worker's already: held no more, named no more.
        (
            S::HandingBack(_, by),
            E::HandBackFailed {
                may_have_landed: true,
            },
        ) => (
            if by == By::Program { S::Idle } else { S::Ended },
            V::Go,
            Some(Note::Released),
        ),
        (
            S::HandingBack(held, by),
            E::HandBackFailed {
                may_have_landed: false,
            },
        ) => (
            if by == By::Program {
                S::Held(held)
            } else {
                S::Ended
            },
            V::Go,
            Some(Note::NotReleased),
        ),
        // A fail is the program's, stop or not: a task handed back after
        // a stop either way, and a set-aside one is left by choice.
        (S::Held(held), E::FailSent) => (S::Failing(held), V::Go, Some(Note::Releasing)),
        (S::Failing(_), E::FailAnswered) => (S::Idle, V::Go, Some(Note::Released)),
        (
            S::Failing(_),
            E::FailFailed {
                may_have_landed: true,
            },
        ) => (S::Idle, V::Go, Some(Note::Released)),
        (
            S::Failing(held),
            E::FailFailed {
                may_have_landed: false,
            },
        ) => (S::Held(held), V::Go, Some(Note::NotReleased)),
        (S::Idle, E::StopCaught) => (S::Ended, V::Go, None),
        (S::Held(held), E::StopCaught) => (
            S::HandingBack(held, By::Watcher),
            V::Go,
            Some(Note::Releasing),
        ),
        (
            S::Requesting | S::Finishing(_) | S::HandingBack(_, By::Program) | S::Failing(_),
            E::StopCaught,
        ) => same(V::Wait),
        (S::HandingBack(_, By::Watcher) | S::Ended, E::StopCaught) => same(V::Nothing),
        // The program's calls once the watcher has the task.
        (_, E::RequestSent | E::Update(_) | E::DoneSent { .. } | E::HandBackSent | E::FailSent)
            if watcher_has_it =>
        {
            same(V::AwaitExit)
        }
        // Nothing held: nothing to update, release or hand back.
        (S::Idle, E::Update(_) | E::DoneSent { .. } | E::HandBackSent | E::FailSent) => {
            same(V::Nothing)
        }
        _ => same(V::OutOfOrder),
    }
}

/// A worker's held task, its state machine, and the task's coalesced
/// progress. Listed for the stop watcher while it lives.
#[derive(Debug)]
pub struct Slot {
    /// The run (its requests; a fake one in the unit tests).
    run: Arc<dyn ProgressTarget>,
    progress: Progress,
    /// The process that made it: the watcher of another (a fork()ed child)
    /// never touches it.
    pid: u32,
    state: Mutex<HeldState>,
    changed: Condvar,
    /// Threads waiting on `changed` (the watcher), counted under `state`:
    /// a transition wakes them only when there are some (std's
    /// `notify_all` makes a system call even for no waiter, and a task
    /// costs several transitions).
    waiting: AtomicUsize,
    /// The worker's journal, if any. Locked only under `state`.
    journal: Mutex<Option<Box<dyn Notes>>>,
}

/// Every live worker's slot.
static LIVE: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());

/// How a release (`done`) ended, for [`Slot::end_done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneOutcome {
    /// The server took it.
    Answered,
    /// It failed and its `done` stays kept in the journal.
    Kept,
    /// It failed; the task is still held.
    Failed,
}

impl Slot {
    /// A slot for a worker of `run` with its `progress`, listed for the
    /// watcher until dropped.
    pub fn register(run: Arc<dyn ProgressTarget>, progress: Progress) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            run,
            progress,
            pid: std::process::id(),
            state: Mutex::new(HeldState::Idle),
            changed: Condvar::new(),
            waiting: AtomicUsize::new(0),
            journal: Mutex::new(None),
        });
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&slot));
        slot
    }

    fn lock(&self) -> MutexGuard<'_, HeldState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `event` under the lock: on `Go`, the journal is told first,
    /// then the new state is stored and every waiter woken. Returns the
    /// verdict and the state now.
    fn apply_locked(
        &self,
        state: &mut MutexGuard<'_, HeldState>,
        event: Event,
        stopped: bool,
    ) -> (Verdict, HeldState) {
        let (next, verdict, note) = step(**state, event, stopped);
        if verdict == Verdict::Go {
            if let Some(note) = note {
                if let Some(journal) = self
                    .journal
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                {
                    if !journal.note(note) {
                        return (Verdict::NotRecorded, **state);
                    }
                }
            }
            **state = next;
            if self.waiting.load(Ordering::Relaxed) > 0 {
                self.changed.notify_all();
            }
        }
        (verdict, **state)
    }

    /// [`apply_locked`](Self::apply_locked) for the program's calls: an
    /// `AwaitExit` verdict does not return.
    fn apply(&self, event: Event) -> (Verdict, HeldState) {
        let mut state = self.lock();
        let outcome = self.apply_locked(&mut state, event, false);
        if outcome.0 == Verdict::AwaitExit {
            drop(state);
            self.await_process_end();
        }
        outcome
    }

    /// The program's call found the watcher holding or done with this
    /// worker's task: it waits for the process to end (which the watcher
    /// brings within the stop's budget) rather than answer for a task it no
    /// longer has.
    fn await_process_end(&self) -> ! {
        let what = match *self.lock() {
            HeldState::HandingBack(held, _) => format!(
                "task {} of run {} is being handed back by the stop watcher",
                held.task,
                self.run.run_uuid()
            ),
            _ => format!(
                "the stop watcher has handed back the task of this worker of run {}",
                self.run.run_uuid()
            ),
        };
        eprintln!("taskfarm: {what}: this call waits for the process to end");
        loop {
            std::thread::park();
        }
    }

    /// The progress of the held task.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The journal to tell from now on (`None`: none); a task held now is
    /// named in it at once.
    pub fn set_journal(&self, journal: Option<Box<dyn Notes>>) {
        let state = self.lock();
        if let (Some(journal), HeldState::Held(held)) = (&journal, *state) {
            let _ = journal.note(Note::Held(held));
        }
        *self.journal.lock().unwrap_or_else(|e| e.into_inner()) = journal;
    }

    /// The task held, if any (`None` too while the watcher hands it back).
    pub fn held(&self) -> Option<HeldTask> {
        match *self.lock() {
            HeldState::Held(held) => Some(held),
            _ => None,
        }
    }

    /// Before asking for a task: refused with the error `stopped` gives once
    /// a stop was caught (asked under the lock, so that the watcher either
    /// sees the request or the request sees the stop).
    pub fn begin_request(&self, stopped: impl FnOnce() -> Option<Error>) -> Result<()> {
        let mut state = self.lock();
        let stop = stopped();
        match self
            .apply_locked(&mut state, Event::RequestSent, stop.is_some())
            .0
        {
            Verdict::Go => Ok(()),
            Verdict::Stopped => Err(stop.expect("a stop was caught")),
            Verdict::AwaitExit => {
                drop(state);
                self.await_process_end()
            }
            verdict => Err(out_of_order(verdict, "ask for a task")),
        }
    }

    /// The task request's outcome: a task is held (named in the journal
    /// before anyone can see it), none, or the request failed.
    pub fn end_request(&self, outcome: Option<HeldTask>, failed: bool) {
        let event = match (outcome, failed) {
            (_, true) => Event::RequestFailed,
            (held, false) => Event::RequestAnswered(held),
        };
        self.apply(event);
    }

    /// The program's latest percentage for the held task; `None` (nothing
    /// to send) when no task is held.
    pub fn update(&self, percent: f64) -> Option<HeldTask> {
        match self.apply(Event::Update(percent)) {
            (Verdict::Go, HeldState::Held(held)) => Some(held),
            _ => None,
        }
    }

    /// Marks the release of the held task as in flight, `finished` (then its
    /// `done` goes to the journal first) when `complete` or the latest
    /// percentage is 100 (within 1e-6). `None`: no task held.
    ///
    /// `Err(())` when the task is unfinished and `stopped()` says a stop was
    /// caught (asked under the lock): the caller hands it back instead.
    pub fn begin_done(
        &self,
        complete: bool,
        stopped: impl FnOnce() -> bool,
    ) -> std::result::Result<Option<(HeldTask, bool)>, ()> {
        let mut state = self.lock();
        let HeldState::Held(held) = *state else {
            // Nothing held (`Nothing`), or the watcher has it (does not return).
            drop(state);
            self.apply(Event::DoneSent { finished: false });
            return Ok(None);
        };
        let finished = complete || (held.percent - 100.0).abs() < 1e-6;
        match self
            .apply_locked(&mut state, Event::DoneSent { finished }, stopped())
            .0
        {
            Verdict::Stopped => Err(()),
            _ => Ok(Some((held, finished))),
        }
    }

    /// The release's outcome.
    pub fn end_done(&self, outcome: DoneOutcome) {
        self.apply(match outcome {
            DoneOutcome::Answered => Event::DoneAnswered,
            DoneOutcome::Kept => Event::DoneFailed { kept: true },
            DoneOutcome::Failed => Event::DoneFailed { kept: false },
        });
    }

    /// The program hands the held task back (`waiting`) at `percent`, or at
    /// its latest percentage, and forgets it; `false` when nothing was held.
    /// Nothing of its progress is sent after it. If the server does not take
    /// it, the task stays held with its progress open again (what was
    /// pending is pending again), so that the call can be repeated; unless
    /// the request may have reached the server (no answer, or a 5xx): then
    /// the task is held no more (it may be another worker's already) and the
    /// error says so.
    pub fn hand_back(&self, percent: Option<f64>) -> Result<bool> {
        let held = match self.apply(Event::HandBackSent) {
            (Verdict::Go, HeldState::HandingBack(held, By::Program)) => held,
            (Verdict::Nothing, _) => return Ok(false),
            (Verdict::NotRecorded, HeldState::Held(held)) => {
                return Err(not_recorded(held.task, "handed back"))
            }
            (verdict, _) => return Err(out_of_order(verdict, "hand the task back")),
        };
        let closed = self.progress.close(held.task);
        let percent = percent.unwrap_or(held.percent);
        match send_hand_back(&self.run, held.task, percent) {
            Ok(()) => {
                self.apply(Event::HandBackAnswered);
                Ok(true)
            }
            Err(error) if error.may_have_reached_server() => {
                self.apply(Event::HandBackFailed {
                    may_have_landed: true,
                });
                Err(no_longer_held(error, held.task))
            }
            Err(error) => {
                self.progress.reopen(held.task, closed);
                self.apply(Event::HandBackFailed {
                    may_have_landed: false,
                });
                Err(error)
            }
        }
    }

    /// The program's fail of the held task. Once the task is `Failing` (the
    /// stop watcher waits for it, the journal says it is being released),
    /// `record` is called with it: it records the attempt and answers
    /// whether the task is set aside, with what `undo` needs. Then one
    /// request: `waiting` at the task's latest percentage (handed back), or
    /// that percentage alone (set aside: left `computing`, so that no worker
    /// takes it). Nothing of its progress is sent after it. If the record or
    /// the request fails, the task is held again with its progress open
    /// (after a failed request `undo` removes the record first).
    /// `Ok(None)`: nothing held.
    pub fn fail<R>(
        &self,
        record: impl FnOnce(HeldTask) -> Result<(bool, R)>,
        undo: impl FnOnce(R),
    ) -> Result<Option<(HeldTask, bool)>> {
        let held = match self.apply(Event::FailSent) {
            (Verdict::Go, HeldState::Failing(held)) => held,
            (Verdict::Nothing, _) => return Ok(None),
            (Verdict::NotRecorded, HeldState::Held(held)) => {
                return Err(not_recorded(held.task, "failed"))
            }
            (verdict, _) => return Err(out_of_order(verdict, "fail the task")),
        };
        let closed = self.progress.close(held.task);
        let (set_aside, recorded) = match record(held) {
            Ok(done) => done,
            Err(error) => {
                self.progress.reopen(held.task, closed);
                self.apply(Event::FailFailed {
                    may_have_landed: false,
                });
                return Err(error);
            }
        };
        let sent = if set_aside {
            self.run.put_progress(
                held.task,
                &TaskUpdate {
                    percent_completed: Some(held.percent),
                    status: None,
                },
            )
        } else {
            send_hand_back(&self.run, held.task, held.percent)
        };
        match sent {
            Ok(()) => {
                self.apply(Event::FailAnswered);
                Ok(Some((held, set_aside)))
            }
            // A hand-back that may have landed: the attempt stays recorded
            // and the task is held no more (it may be another worker's).
            Err(error) if !set_aside && error.may_have_reached_server() => {
                self.apply(Event::FailFailed {
                    may_have_landed: true,
                });
                Err(no_longer_held(error, held.task))
            }
            Err(error) => {
                undo(recorded);
                self.progress.reopen(held.task, closed);
                self.apply(Event::FailFailed {
                    may_have_landed: false,
                });
                Err(error)
            }
        }
    }

    /// The stop watcher's turn on this worker: the task to hand back, if
    /// any, once no request of the program is in flight, waiting for that
    /// until `deadline` (telling stderr once what it waits for). After the
    /// deadline, `None`: the process ends with the request in flight.
    fn take_for_watcher(&self, deadline: Instant, signal: &str) -> Option<HeldTask> {
        let mut state = self.lock();
        let mut told = false;
        loop {
            match self.apply_locked(&mut state, Event::StopCaught, true) {
                (Verdict::Go, HeldState::HandingBack(held, By::Watcher)) => return Some(held),
                (Verdict::NotRecorded, HeldState::Held(held)) => {
                    eprintln!(
                        "taskfarm: {signal}: task {} of run {} not handed back: the worker \
                         journal cannot be written and names it as held; `taskfarm reap` \
                         gives it back once this process has ended",
                        held.task,
                        self.run.run_uuid()
                    );
                    return None;
                }
                (Verdict::Wait, waiting) => {
                    if !told {
                        told = true;
                        let left = deadline.saturating_duration_since(Instant::now());
                        eprintln!(
                            "taskfarm: {signal}: {}, waiting for its answer (at most {:.0} s)",
                            in_flight(waiting, self.run.run_uuid()),
                            left.as_secs_f64().ceil()
                        );
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    self.waiting.fetch_add(1, Ordering::Relaxed);
                    state = self
                        .changed
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                }
                _ => return None,
            }
        }
    }

    /// The watcher's whole turn on this worker.
    fn watcher_turn(&self, deadline: Instant, signal: &str) {
        if let Some(held) = self.take_for_watcher(deadline, signal) {
            self.watcher_hand_back(held, signal);
        }
    }

    /// The watcher hands `held` back (fencing the flusher first) and tells
    /// stderr, for the job's log, what became of it.
    fn watcher_hand_back(&self, held: HeldTask, signal: &str) {
        self.progress.close(held.task);
        let sent = send_hand_back(&self.run, held.task, held.percent);
        self.apply_locked(
            &mut self.lock(),
            match &sent {
                Ok(()) => Event::HandBackAnswered,
                Err(e) => Event::HandBackFailed {
                    may_have_landed: e.may_have_reached_server(),
                },
            },
            true,
        );
        match sent {
            Ok(()) => eprintln!(
                "taskfarm: {signal}: task {} of run {} handed back at {} %",
                held.task,
                self.run.run_uuid(),
                held.percent
            ),
            Err(e) => eprintln!(
                "taskfarm: {signal}: could not hand task {} of run {} back: {e}",
                held.task,
                self.run.run_uuid()
            ),
        }
    }
}

/// What the watcher waits for, for its line on stderr.
fn in_flight(state: HeldState, run: &str) -> String {
    match state {
        HeldState::Requesting => format!("a task is being requested for a worker of run {run}"),
        HeldState::Finishing(held) => {
            format!("task {} of run {run}: its done is in flight", held.task)
        }
        HeldState::HandingBack(held, _) => {
            format!(
                "task {} of run {run}: its hand-back is in flight",
                held.task
            )
        }
        HeldState::Failing(held) => {
            format!("task {} of run {run}: its fail is in flight", held.task)
        }
        _ => format!("a request of a worker of run {run} is in flight"),
    }
}

/// The error of a release refused with [`Verdict::NotRecorded`].
fn not_recorded(task: i64, what: &str) -> Error {
    Error::invalid_argument(format!(
        "task {task} was not {what}: the worker journal cannot be written (see stderr) and \
         names it as held, so `taskfarm reap` would give it back a second time after this \
         process ends; the task is still held (make room in the journal directory, then \
         call again)"
    ))
}

fn out_of_order(verdict: Verdict, what: &str) -> Error {
    Error::invalid_argument(format!(
        "cannot {what} now ({verdict:?}): the worker's calls came out of order"
    ))
}

/// The hand-back: `waiting` at `percent`, in one request.
/// `error` of a hand-back of `task` that may have reached the server, with
/// what became of the task.
fn no_longer_held(error: Error, task: i64) -> Error {
    error.context_after(&format!(
        "; task {task} may have been handed back, so it is held no more (if it \
         stays computing, `taskfarm reap --restart-orphans` gives it back)"
    ))
}

fn send_hand_back(run: &Arc<dyn ProgressTarget>, task: i64, percent: f64) -> Result<()> {
    run.put_progress(
        task,
        &TaskUpdate {
            percent_completed: Some(percent),
            status: Some(TaskState::Waiting),
        },
    )
}

/// The stop watcher's work after the signal `signal` (its name): every live
/// worker of this process hands its task back, all at once, each after the
/// request of the program it waits for; returns when all are done or at
/// `deadline`, whichever comes first (the caller then ends the process, with
/// whatever is still in flight).
pub fn hand_back_all(signal: &str, deadline: Instant) {
    let pid = std::process::id();
    let slots: Vec<Arc<Slot>> = LIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|s| s.pid == pid)
        .collect();
    let (finished, each_done) = mpsc::channel::<()>();
    let mut started = 0;
    for slot in slots {
        // One thread per worker: a hung request holds up no other worker.
        let (own, to_tell, name) = (Arc::clone(&slot), finished.clone(), signal.to_owned());
        let spawned = std::thread::Builder::new()
            .name("taskfarm-hand-back".into())
            .spawn(move || {
                own.watcher_turn(deadline, &name);
                let _ = to_tell.send(());
            });
        if spawned.is_err() {
            // No thread to be had: the watcher does it itself.
            slot.watcher_turn(deadline, signal);
            let _ = finished.send(());
        }
        started += 1;
    }
    drop(finished);
    for _ in 0..started {
        let left = deadline.saturating_duration_since(Instant::now());
        if each_done.recv_timeout(left).is_err() {
            eprintln!("taskfarm: {signal}: the stop's time is up; ending with requests in flight");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Event as E;
    use HeldState as S;
    use Verdict as V;

    const T: HeldTask = HeldTask {
        task: 7,
        percent: 40.0,
    };

    fn states() -> Vec<(&'static str, HeldState)> {
        vec![
            ("Idle", S::Idle),
            ("Requesting", S::Requesting),
            ("Held", S::Held(T)),
            ("Finishing", S::Finishing(T)),
            ("HandingBack(Program)", S::HandingBack(T, By::Program)),
            ("HandingBack(Watcher)", S::HandingBack(T, By::Watcher)),
            ("Failing", S::Failing(T)),
            ("Ended", S::Ended),
        ]
    }

    fn events() -> Vec<(&'static str, Event)> {
        let u = HeldTask {
            task: 9,
            percent: 12.5,
        };
        vec![
            ("RequestSent", E::RequestSent),
            ("RequestAnswered(task)", E::RequestAnswered(Some(u))),
            ("RequestAnswered(none)", E::RequestAnswered(None)),
            ("RequestFailed", E::RequestFailed),
            ("Update", E::Update(55.0)),
            ("DoneSent(finished)", E::DoneSent { finished: true }),
            ("DoneSent(unfinished)", E::DoneSent { finished: false }),
            ("DoneAnswered", E::DoneAnswered),
            ("DoneFailed(kept)", E::DoneFailed { kept: true }),
            ("DoneFailed", E::DoneFailed { kept: false }),
            ("HandBackSent", E::HandBackSent),
            ("HandBackAnswered", E::HandBackAnswered),
            (
                "HandBackFailed",
                E::HandBackFailed {
                    may_have_landed: false,
                },
            ),
            (
                "HandBackFailed(maybe landed)",
                E::HandBackFailed {
                    may_have_landed: true,
                },
            ),
            ("FailSent", E::FailSent),
            ("FailAnswered", E::FailAnswered),
            (
                "FailFailed",
                E::FailFailed {
                    may_have_landed: false,
                },
            ),
            (
                "FailFailed(maybe landed)",
                E::FailFailed {
                    may_have_landed: true,
                },
            ),
            ("StopCaught", E::StopCaught),
        ]
    }

    /// The expected outcome of every state and event (no stop caught, except
    /// for `StopCaught`), written out in full: a changed transition must
    /// change this table.
    fn expected(state: &str, event: &str) -> (HeldState, Verdict, Option<Note>) {
        let u = HeldTask {
            task: 9,
            percent: 12.5,
        };
        let here = states().into_iter().find(|(n, _)| *n == state).unwrap().1;
        let same = |v| (here, v, None);
        let watcher_has_it = matches!(state, "HandingBack(Watcher)" | "Ended");
        match (state, event) {
            ("Idle", "RequestSent") => (S::Requesting, V::Go, None),
            ("Requesting", "RequestAnswered(task)") => (S::Held(u), V::Go, Some(Note::Held(u))),
            ("Requesting", "RequestAnswered(none)" | "RequestFailed") => (S::Idle, V::Go, None),
            ("Held", "Update") => (
                S::Held(HeldTask { percent: 55.0, ..T }),
                V::Go,
                Some(Note::Percent(55.0)),
            ),
            ("Held", "DoneSent(finished)") => (S::Finishing(T), V::Go, Some(Note::DoneIntent(7))),
            ("Held", "DoneSent(unfinished)") => (S::Finishing(T), V::Go, None),
            ("Finishing", "DoneAnswered") => (S::Idle, V::Go, Some(Note::Delivered(7))),
            ("Finishing", "DoneFailed(kept)") => (S::Idle, V::Go, None),
            ("Finishing", "DoneFailed") => (S::Held(T), V::Go, Some(Note::DoneNotSent(T))),
            ("Held", "HandBackSent") => {
                (S::HandingBack(T, By::Program), V::Go, Some(Note::Releasing))
            }
            ("HandingBack(Program)", "HandBackAnswered") => (S::Idle, V::Go, Some(Note::Released)),
            ("HandingBack(Watcher)", "HandBackAnswered") => (S::Ended, V::Go, Some(Note::Released)),
            ("HandingBack(Program)", "HandBackFailed") => {
                (S::Held(T), V::Go, Some(Note::NotReleased))
            }
            ("HandingBack(Watcher)", "HandBackFailed") => {
                (S::Ended, V::Go, Some(Note::NotReleased))
            }
            ("HandingBack(Program)", "HandBackFailed(maybe landed)") => {
                (S::Idle, V::Go, Some(Note::Released))
            }
            ("HandingBack(Watcher)", "HandBackFailed(maybe landed)") => {
                (S::Ended, V::Go, Some(Note::Released))
            }
            ("Held", "FailSent") => (S::Failing(T), V::Go, Some(Note::Releasing)),
            ("Failing", "FailAnswered") => (S::Idle, V::Go, Some(Note::Released)),
            ("Failing", "FailFailed") => (S::Held(T), V::Go, Some(Note::NotReleased)),
            ("Failing", "FailFailed(maybe landed)") => (S::Idle, V::Go, Some(Note::Released)),
            ("Idle", "StopCaught") => (S::Ended, V::Go, None),
            ("Held", "StopCaught") => {
                (S::HandingBack(T, By::Watcher), V::Go, Some(Note::Releasing))
            }
            ("Requesting" | "Finishing" | "HandingBack(Program)" | "Failing", "StopCaught") => {
                same(V::Wait)
            }
            ("HandingBack(Watcher)" | "Ended", "StopCaught") => same(V::Nothing),
            (
                _,
                "RequestSent"
                | "Update"
                | "DoneSent(finished)"
                | "DoneSent(unfinished)"
                | "HandBackSent"
                | "FailSent",
            ) if watcher_has_it => same(V::AwaitExit),
            (
                "Idle",
                "Update"
                | "DoneSent(finished)"
                | "DoneSent(unfinished)"
                | "HandBackSent"
                | "FailSent",
            ) => same(V::Nothing),
            _ => same(V::OutOfOrder),
        }
    }

    #[test]
    fn every_state_against_every_event() {
        let mut rows = 0;
        for (state_name, state) in states() {
            for (event_name, event) in events() {
                let got = step(state, event, event == E::StopCaught);
                assert_eq!(
                    got,
                    expected(state_name, event_name),
                    "{state_name} + {event_name}"
                );
                rows += 1;
            }
        }
        assert_eq!(rows, 8 * 19);
    }

    #[test]
    fn no_task_is_taken_after_a_stop_and_the_guarantees_hold_on_every_path() {
        assert_eq!(
            step(S::Idle, E::RequestSent, true),
            (S::Idle, V::Stopped, None)
        );
        // An unfinished task is not released after a stop (it would stay
        // computing with nobody on it); a finished one is still marked done.
        let unfinished = E::DoneSent { finished: false };
        assert_eq!(
            step(S::Held(T), unfinished, true),
            (S::Held(T), V::Stopped, None)
        );
        let done = E::DoneSent { finished: true };
        assert_eq!(step(S::Held(T), done, true).0, S::Finishing(T));
        for (name, state) in states() {
            for (event_name, event) in events() {
                for stopped in [false, true] {
                    let (next, verdict, note) = step(state, event, stopped);
                    // A hand-back that may have landed leaves no task held
                    // nor named in the journal: it is never sent twice.
                    if verdict == V::Go
                        && matches!(
                            event,
                            E::HandBackFailed {
                                may_have_landed: true
                            } | E::FailFailed {
                                may_have_landed: true
                            }
                        )
                    {
                        assert!(!matches!(next, S::Held(_)), "{name} + {event_name}");
                        assert_eq!(note, Some(Note::Released), "{name} + {event_name}");
                    }
                    // Never `waiting` after `done`: a done in flight is never
                    // handed back, and nothing but its outcome leaves Finishing.
                    if let S::Finishing(_) = state {
                        assert!(!matches!(next, S::HandingBack(..)), "{name} + {event_name}");
                    }
                    // A fail in flight is never handed back by the watcher
                    // (a set-aside task would go back to `waiting`), nor
                    // left but by its own outcome.
                    if let S::Failing(_) = state {
                        assert!(
                            matches!(next, S::Failing(_))
                                || matches!(event, E::FailAnswered | E::FailFailed { .. }),
                            "{name} + {event_name}"
                        );
                    }
                    // A fail is the program's own: a stop does not refuse it.
                    if state == S::Held(T) && event == E::FailSent {
                        assert_eq!(next, S::Failing(T), "stopped {stopped}");
                    }
                    // The watcher never takes a task whose request is in flight.
                    if event == E::StopCaught
                        && matches!(
                            state,
                            S::Requesting
                                | S::Finishing(_)
                                | S::HandingBack(_, By::Program)
                                | S::Failing(_)
                        )
                    {
                        assert_eq!(verdict, V::Wait, "{name}");
                    }
                    // Only a Go changes the state.
                    if verdict != V::Go {
                        assert_eq!(next, state, "{name} + {event_name}");
                    }
                }
            }
        }
    }

    /// A `PUT` the fake run got: task, percentage, state.
    type Put = (i64, Option<f64>, Option<TaskState>);

    /// A run that records its `PUT`s and answers them (or fails them).
    #[derive(Debug, Default)]
    struct FakeRun {
        puts: Mutex<Vec<Put>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl ProgressTarget for FakeRun {
        fn put_progress(&self, task: i64, update: &TaskUpdate) -> Result<()> {
            self.puts
                .lock()
                .unwrap()
                .push((task, update.percent_completed, update.status));
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Error::invalid_argument("refused by the test"));
            }
            Ok(())
        }
        fn run_uuid(&self) -> &str {
            "fake"
        }
        fn base_url(&self) -> &str {
            "http://fake/"
        }
    }

    fn slot() -> (Arc<FakeRun>, Arc<Slot>) {
        let run = Arc::new(FakeRun::default());
        let target: Arc<dyn ProgressTarget> = run.clone();
        let progress = Progress::new(Arc::clone(&target), std::time::Duration::ZERO);
        (run, Slot::register(target, progress))
    }

    /// A journal whose `Held` note waits until the test lets it go, telling
    /// the test that it is inside.
    #[derive(Debug)]
    struct SlowJournal {
        inside: Mutex<mpsc::Sender<()>>,
        go_on: Mutex<mpsc::Receiver<()>>,
    }

    impl Notes for SlowJournal {
        fn note(&self, note: Note) -> bool {
            if let Note::Held(_) = note {
                self.inside.lock().unwrap().send(()).unwrap();
                self.go_on.lock().unwrap().recv().unwrap();
            }
            true
        }
    }

    #[test]
    fn the_journal_names_a_task_before_the_watcher_can_see_it() {
        let (_, slot) = slot();
        let (inside, is_inside) = mpsc::channel();
        let (go_on, wait) = mpsc::channel();
        slot.set_journal(Some(Box::new(SlowJournal {
            inside: Mutex::new(inside),
            go_on: Mutex::new(wait),
        })));
        slot.begin_request(|| None).unwrap();
        let taker = Arc::clone(&slot);
        let answered = std::thread::spawn(move || taker.end_request(Some(T), false));
        is_inside.recv().unwrap();
        // While the journal is being told, nobody sees the task held.
        // Locked (the transition is under way) is right too.
        if let Ok(state) = slot.state.try_lock() {
            assert_ne!(*state, S::Held(T), "published before the journal named it");
        }
        go_on.send(()).unwrap();
        answered.join().unwrap();
        assert_eq!(slot.held(), Some(T));
    }

    /// The worker's real journal behind a hook on its `Held` note: just
    /// before the note is written, a second thread plays the stop watcher,
    /// which acts only if it can see the task held at that moment. It can
    /// when the task is published before the journal names it (as at
    /// bfdd2f0, where `journal.held` came after the slot was published); the
    /// watcher then hands the task back, and the late note names a task the
    /// watcher already gave back (issue 25, finding 10).
    #[derive(Debug)]
    struct WatcherAtTheHeldNote {
        journal: crate::client::worker::journal::Releaser,
        slot: Weak<Slot>,
        watcher_acted: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Notes for WatcherAtTheHeldNote {
        fn note(&self, note: Note) -> bool {
            if let Note::Held(_) = note {
                let slot = self.slot.upgrade().unwrap();
                std::thread::scope(|s| {
                    s.spawn(|| {
                        // `Err`: the transition holds the lock, nobody sees it yet.
                        let visible = matches!(slot.state.try_lock().as_deref(), Ok(S::Held(_)));
                        if visible {
                            slot.watcher_turn(
                                Instant::now() + std::time::Duration::from_secs(600),
                                "SIGTERM",
                            );
                            self.watcher_acted
                                .store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                    });
                });
            }
            self.journal.note(note)
        }
    }

    #[test]
    fn the_journal_never_names_a_task_the_watcher_gave_back() {
        use crate::client::worker::journal::{read_record, Journal};
        let dir = std::env::temp_dir().join(format!(
            "taskfarm-held-unit-{}-finding10",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let journal = Journal::start(&dir, "run10", "worker10").unwrap();
        let (run, slot) = slot();
        let watcher_acted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        slot.set_journal(Some(Box::new(WatcherAtTheHeldNote {
            journal: journal.releaser(),
            slot: Arc::downgrade(&slot),
            watcher_acted: Arc::clone(&watcher_acted),
        })));
        slot.begin_request(|| None).unwrap();
        slot.end_request(Some(T), false);
        if !watcher_acted.load(std::sync::atomic::Ordering::SeqCst) {
            // The signal comes right after the task was taken.
            slot.watcher_turn(
                Instant::now() + std::time::Duration::from_secs(600),
                "SIGTERM",
            );
        }
        assert_eq!(
            run.puts.lock().unwrap().clone(),
            vec![(7, Some(40.0), Some(TaskState::Waiting))],
            "the watcher handed the task back once"
        );
        let record = read_record(&journal.path(), "run10").unwrap();
        assert_eq!(
            (record.task, record.releasing),
            (None, false),
            "the journal names task {:?}, which the watcher gave back",
            record.task
        );
        journal.finish();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_watcher_waits_for_a_done_in_flight_and_hands_back_nothing() {
        let (run, slot) = slot();
        slot.begin_request(|| None).unwrap();
        slot.end_request(Some(T), false);
        slot.update(100.0);
        let (held, finished) = slot.begin_done(false, || false).unwrap().unwrap();
        assert!(finished);
        let watcher = Arc::clone(&slot);
        let turn = std::thread::spawn(move || {
            watcher.watcher_turn(
                Instant::now() + std::time::Duration::from_secs(600),
                "SIGTERM",
            )
        });
        // The watcher either waits (Finishing) or has not looked yet; either
        // way the done's outcome decides.
        assert_eq!(held.task, T.task);
        slot.end_done(DoneOutcome::Answered);
        turn.join().unwrap();
        assert!(
            run.puts.lock().unwrap().is_empty(),
            "nothing sent by the watcher"
        );
        assert_eq!(*slot.lock(), S::Ended);
    }

    #[test]
    fn the_watcher_waits_for_a_fail_in_flight_and_never_hands_a_set_aside_task_back() {
        let (run, slot) = slot();
        slot.begin_request(|| None).unwrap();
        slot.end_request(Some(T), false);
        let (inside, is_inside) = mpsc::channel();
        let (go_on, wait) = mpsc::channel::<()>();
        let failer = Arc::clone(&slot);
        let failing = std::thread::spawn(move || {
            failer.fail(
                |_| {
                    inside.send(()).unwrap();
                    wait.recv().unwrap();
                    Ok((true, ()))
                },
                |()| {},
            )
        });
        // The attempt is being recorded: the task is no longer held.
        is_inside.recv().unwrap();
        assert_eq!(slot.held(), None);
        let watcher = Arc::clone(&slot);
        let turn = std::thread::spawn(move || {
            watcher.watcher_turn(
                Instant::now() + std::time::Duration::from_secs(600),
                "SIGTERM",
            )
        });
        go_on.send(()).unwrap();
        assert_eq!(failing.join().unwrap().unwrap(), Some((T, true)));
        turn.join().unwrap();
        // One request, the set-aside's percentage; no `waiting` from anyone.
        assert_eq!(*run.puts.lock().unwrap(), vec![(7, Some(40.0), None)]);
        assert_eq!(*slot.lock(), S::Ended);
    }

    #[test]
    fn a_fail_whose_request_fails_undoes_its_record_and_keeps_the_task() {
        let (run, slot) = slot();
        slot.begin_request(|| None).unwrap();
        slot.end_request(Some(T), false);
        run.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let undone = Mutex::new(None);
        let failed = slot.fail(
            |held| Ok((false, held.task)),
            |task| *undone.lock().unwrap() = Some(task),
        );
        assert!(failed.is_err());
        assert_eq!(*undone.lock().unwrap(), Some(7));
        assert_eq!(slot.held(), Some(T));
        assert_eq!(
            run.puts.lock().unwrap().last(),
            Some(&(7, Some(40.0), Some(TaskState::Waiting)))
        );
    }

    #[test]
    fn a_failed_hand_back_keeps_the_task_and_its_progress_open() {
        let (run, slot) = slot();
        slot.begin_request(|| None).unwrap();
        slot.progress().task_taken();
        slot.end_request(Some(T), false);
        run.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(slot.hand_back(None).is_err());
        run.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(slot.held(), Some(T));
        let held = slot.update(55.0).unwrap();
        slot.progress().update(held.task, held.percent).unwrap();
        let puts = run.puts.lock().unwrap().clone();
        assert_eq!(puts.last(), Some(&(7, Some(55.0), None)));
    }

    /// A journal that cannot record a release and, as last written, names
    /// the task as held (a full disk): what [`Notes::note`] answers then.
    #[derive(Debug)]
    struct FullDisk;

    impl Notes for FullDisk {
        fn note(&self, note: Note) -> bool {
            note != Note::Releasing
        }
    }

    #[test]
    fn a_release_the_journal_cannot_record_is_never_sent() {
        let (run, slot) = slot();
        slot.set_journal(Some(Box::new(FullDisk)));
        slot.begin_request(|| None).unwrap();
        slot.progress().task_taken();
        slot.end_request(Some(T), false);
        // The program's hand-back and fail: an error, nothing sent, the
        // task still held (the journal names it: the reaper gives it back
        // once, after the process).
        let e = slot.hand_back(None).unwrap_err();
        assert!(e.message().contains("task 7 was not handed back"), "{e}");
        assert!(e.message().contains("is still held"), "{e}");
        let e = slot
            .fail(
                |_| -> Result<(bool, ())> { panic!("nothing recorded") },
                |_| {},
            )
            .unwrap_err();
        assert!(e.message().contains("task 7 was not failed"), "{e}");
        assert_eq!(slot.held(), Some(T));
        // The stop watcher's turn: nothing handed back either.
        slot.watcher_turn(
            Instant::now() + std::time::Duration::from_secs(60),
            "SIGTERM",
        );
        assert_eq!(*slot.lock(), S::Held(T));
        assert_eq!(run.puts.lock().unwrap().clone(), Vec::<Put>::new());
        // Once the journal can record it, the hand-back goes.
        slot.set_journal(None);
        assert!(slot.hand_back(None).unwrap());
        let puts = run.puts.lock().unwrap().clone();
        assert_eq!(puts, vec![(7, Some(40.0), Some(TaskState::Waiting))]);
    }
}
