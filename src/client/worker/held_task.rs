//! The held task of every live worker: a worker keeps its task in a
//! [`Slot`], listed here so that the stop watcher (`stop_signals.rs`) reaches
//! the tasks of all workers, whichever thread holds them, and hands them back
//! with the latest percentage ([`hand_back_all`]).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::journal::Releaser;
use super::progress::Progress;
use crate::client::error::{Error, Result};
use crate::client::run::Run;
use crate::client::wire::{TaskState, TaskUpdate};

/// How long the watcher waits for a worker's request in flight (a task being
/// handed out, a `done` being sent) before it hands back what it knows.
const IN_FLIGHT_WAIT: Duration = Duration::from_millis(1000);

/// A task held by a worker and its last known percentage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldTask {
    /// The task number.
    pub task: i64,
    /// Its last known percentage.
    pub percent: f64,
}

/// A worker's held task, shared with the watcher thread, and the task's
/// coalesced progress: a hand-back carries the latest percentage the program
/// gave (sent or pending) in its one request, and leaves nothing pending for
/// the flusher to send after it (the task may be another worker's by then).
#[derive(Debug)]
pub struct Slot {
    run: Arc<Run>,
    progress: Progress,
    state: Mutex<SlotState>,
    changed: Condvar,
    /// The worker's journal, told of every hand-back (`journal.rs`).
    journal: Mutex<Option<Releaser>>,
}

#[derive(Debug, Default)]
struct SlotState {
    held: Option<HeldTask>,
    /// A request that changes what is held is in flight (a task asked for, a
    /// `done` sent): the watcher waits for its outcome.
    busy: bool,
}

/// Every live worker's slot.
static LIVE: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());

impl Slot {
    /// A slot for a worker of `run` with its `progress`, listed for the
    /// watcher until dropped.
    pub fn register(run: Arc<Run>, progress: Progress) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            run,
            progress,
            state: Mutex::new(SlotState::default()),
            changed: Condvar::new(),
            journal: Mutex::new(None),
        });
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&slot));
        slot
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The progress of the held task.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// For a hand-back of `held`: nothing pending or sent for it any more
    /// (after a progress request under way), and the latest percentage the
    /// program gave, which the hand-back carries.
    fn close_progress(&self, held: HeldTask) -> HeldTask {
        match self.progress.close(held.task) {
            Some(percent) => HeldTask { percent, ..held },
            None => held,
        }
    }

    /// The journal to tell of hand-backs from now on (`None`: none).
    pub fn set_journal(&self, journal: Option<Releaser>) {
        *self.journal.lock().unwrap_or_else(|e| e.into_inner()) = journal;
    }

    /// Hands `held` back on the server, the journal saying so first (so that
    /// the reaper never gives it back a second time) and after.
    fn send_hand_back(&self, held: HeldTask) -> Result<()> {
        let journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(journal) = journal.as_ref() {
            journal.releasing();
        }
        let sent = send_hand_back(&self.run, held);
        if let Some(journal) = journal.as_ref() {
            match sent {
                Ok(()) => journal.released(),
                Err(_) => journal.not_released(),
            }
        }
        sent
    }

    /// The task held, if any.
    pub fn held(&self) -> Option<HeldTask> {
        self.lock().held
    }

    /// Records a new percentage for the held task `task` (if still held).
    pub fn set_percent(&self, task: i64, percent: f64) {
        let mut state = self.lock();
        if let Some(held) = state.held.as_mut().filter(|h| h.task == task) {
            held.percent = percent;
        }
    }

    /// Marks a request for a task as in flight. Refused with the error
    /// `stopped` gives once a stop was requested (asked under the slot's lock,
    /// so that the watcher either sees the request or the request sees the
    /// stop): no task is taken after a stop signal.
    pub fn begin_request(&self, stopped: impl FnOnce() -> Option<Error>) -> Result<()> {
        let mut state = self.lock();
        if let Some(error) = stopped() {
            return Err(error);
        }
        state.busy = true;
        Ok(())
    }

    /// Marks a `done` of the held task as in flight, stop or not: the watcher
    /// waits for its outcome rather than handing a finished task back. `None`
    /// (and nothing marked) when the watcher took the task already.
    pub fn begin_done(&self) -> Option<HeldTask> {
        let mut state = self.lock();
        state.busy = state.held.is_some();
        state.held
    }

    /// Ends what [`begin_request`](Self::begin_request) or
    /// [`begin_done`](Self::begin_done) began: `held` is what the
    /// worker holds now.
    pub fn end_change(&self, held: Option<HeldTask>) {
        let mut state = self.lock();
        state.held = held;
        state.busy = false;
        self.changed.notify_all();
    }

    /// Forgets the held task without telling the server.
    pub fn forget(&self) {
        self.lock().held = None;
    }

    /// Takes the held task, waiting until `deadline` for a change in flight.
    fn take_for_watcher(&self, deadline: Instant) -> Option<HeldTask> {
        let mut state = self.lock();
        while state.busy {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.held.take()
    }

    /// Hands the held task back (`waiting`, at `percent` or the last known
    /// percentage) and forgets it; `false` when nothing was held (the watcher
    /// may have handed it back already). If the server does not take it, the
    /// task stays held, so that the call can be repeated.
    pub fn hand_back(&self, percent: Option<f64>) -> Result<bool> {
        let Some(held) = self.lock().held.take() else {
            return Ok(false);
        };
        let held = self.close_progress(held);
        let held = HeldTask {
            percent: percent.unwrap_or(held.percent),
            ..held
        };
        if let Err(e) = self.send_hand_back(held) {
            self.lock().held.get_or_insert(held);
            return Err(e);
        }
        Ok(true)
    }
}

fn send_hand_back(run: &Run, held: HeldTask) -> Result<()> {
    // The worker's own progress is closed (`close_progress`): nothing to
    // settle before this request.
    run.put_task(
        held.task,
        &TaskUpdate {
            percent_completed: Some(held.percent),
            status: Some(TaskState::Waiting),
        },
    )
}

/// Hands back the task of every live worker of the process (the watcher,
/// after the signal `name`), telling on stderr what became of each, for the
/// job's log.
pub fn hand_back_all(name: &str) {
    let slots: Vec<Arc<Slot>> = LIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    let deadline = Instant::now() + IN_FLIGHT_WAIT;
    for slot in slots {
        let Some(held) = slot.take_for_watcher(deadline) else {
            continue;
        };
        let held = slot.close_progress(held);
        match slot.send_hand_back(held) {
            Ok(()) => eprintln!(
                "taskfarm: {name}: task {} of run {} handed back at {} %",
                held.task,
                slot.run.uuid(),
                held.percent
            ),
            Err(e) => eprintln!(
                "taskfarm: {name}: could not hand task {} of run {} back: {e}",
                held.task,
                slot.run.uuid()
            ),
        }
    }
}
