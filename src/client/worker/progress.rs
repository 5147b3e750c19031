//! Coalesced progress: at most one progress request per worker per interval.
//!
//! A worker's `update(p)` inside the interval (counted from when the worker
//! took its task or last sent progress) is kept here instead of being sent;
//! a later one replaces it (the latest value wins). A flusher thread of the
//! worker sends it when the interval ends, so the server has it within the
//! interval plus one request's time even when the program makes no further
//! call. `done` and `requeue` [`settle`](Progress::settle) first and carry the
//! pending value in their own request (`update(100)` then `done()` is one
//! `PUT {"percentCompleted": 100, "status": "done"}`); dropping the
//! [`Progress`] (freeing the worker) sends it; a read through the library
//! of the same run sends it first ([`settle_run`]).
//!
//! Threads and locks. One flusher thread per worker, started at the first
//! update that has to wait (a worker that never coalesces, e.g. with the
//! interval 0, never has one), ended when the worker is dropped. One thread
//! per worker rather than one per process: a worker whose server hangs or
//! is being retried holds up its own progress only, never that of the other
//! workers of the process (a code with one worker per OpenMP thread), and the
//! thread sleeps on a condition variable between sends (no polling).
//! Everything sits behind one mutex that is never held across a request; a
//! request on the held task (by the flusher, by a reader or by the owner) is
//! marked `in_flight`, and the others wait for its end, so requests on one
//! task never overtake each other. The flusher never takes the worker's own
//! lock (the C handle's mutex), so the two cannot deadlock: the lock order is
//! worker, then this state.
//!
//! Failures. A background send that fails (after the transport's retries)
//! keeps the value pending unless a newer one came, and the error is handed
//! to the owner's next call ([`take_failure`](Progress::take_failure)). The
//! flusher does not try again until that call has been made: nothing is lost
//! and nothing is retried for ever.
//!
//! `fork()`. Threads do not survive `fork()`, and a child must not act on
//! the parent's task: a [`Progress`] made by another process sends nothing
//! and touches none of its locks (a thread of the parent may have held them).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::error::{Error, ErrorKind, Result};
use crate::client::wire::TaskUpdate;

/// Where a worker's progress goes: the run it works on ([`crate::client::Run`]
/// implements it). A trait, so that this file does not depend on the run,
/// which settles pending progress ([`settle_run`]) before its reads.
pub trait ProgressTarget: std::fmt::Debug + Send + Sync {
    /// Sends a task's progress: one `PUT` of `update` on `task`.
    fn put_progress(&self, task: i64, update: &TaskUpdate) -> Result<()>;
    /// The run's uuid.
    fn run_uuid(&self) -> &str;
    /// The server's base URL.
    fn base_url(&self) -> &str;
}

/// A progress value not sent yet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pending {
    /// The task it is about.
    pub task: i64,
    /// The percentage.
    pub percent: f64,
}

#[derive(Debug)]
struct State {
    interval: Duration,
    /// Start of the current interval: the task was taken or progress sent.
    since: Instant,
    pending: Option<Pending>,
    /// The latest value the owner gave, pending or sent.
    latest: Option<Pending>,
    /// The task was handed back ([`Progress::close`]): its updates are
    /// dropped until a task is taken.
    closed: Option<i64>,
    /// A request on the task is under way.
    in_flight: bool,
    /// A background send failed: for the owner's next call.
    failure: Option<Error>,
    /// The owner is going away: the flusher ends.
    closing: bool,
    flusher: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    run: Arc<dyn ProgressTarget>,
    /// The process that made it.
    pid: u32,
    state: Mutex<State>,
    changed: Condvar,
}

/// Every live [`Shared`] of the process, for [`settle_run`].
static REGISTRY: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// The progress of one worker's held task. Safe to share between threads.
#[derive(Debug)]
pub struct Progress {
    shared: Arc<Shared>,
}

impl Progress {
    /// The progress of a worker of `run`, sending at most once per `interval`.
    pub fn new(run: Arc<dyn ProgressTarget>, interval: Duration) -> Progress {
        let shared = Arc::new(Shared {
            run,
            pid: std::process::id(),
            state: Mutex::new(State {
                interval,
                since: Instant::now(),
                pending: None,
                latest: None,
                closed: None,
                in_flight: false,
                failure: None,
                closing: false,
                flusher: None,
            }),
            changed: Condvar::new(),
        });
        let mut registry = lock_registry();
        registry.retain(|w| w.strong_count() > 0);
        registry.push(Arc::downgrade(&shared));
        drop(registry);
        Progress { shared }
    }

    /// Whether this process made it (false in a child after `fork()`).
    pub fn is_own(&self) -> bool {
        self.shared.pid == std::process::id()
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.shared.lock().interval
    }

    /// Sets the interval; a value pending is sent when the new one says so.
    pub fn set_interval(&self, interval: Duration) {
        self.shared.lock().interval = interval;
        self.shared.changed.notify_all();
    }

    /// A task was taken: its interval starts now.
    pub fn task_taken(&self) {
        let mut state = self.shared.lock();
        state.since = Instant::now();
        state.pending = None;
        state.latest = None;
        state.closed = None;
    }

    /// For a hand-back of `task`: waits for a request under way, drops what
    /// is pending and every later update of `task` until a task is taken or
    /// [`reopen`](Progress::reopen): nothing about the task is sent after
    /// the hand-back. Returns what was pending, for `reopen`.
    pub fn close(&self, task: i64) -> Option<Pending> {
        let mut state = self.shared.wait_idle(self.shared.lock());
        state.closed = Some(task);
        state.pending.take()
    }

    /// The hand-back of `task` failed and the task is still held: its
    /// updates are taken again, and `pending` (what [`close`](Progress::close)
    /// dropped) is pending again unless a newer value is.
    pub fn reopen(&self, task: i64, pending: Option<Pending>) {
        let mut state = self.shared.lock();
        if state.closed == Some(task) {
            state.closed = None;
        }
        if state.pending.is_none() {
            state.pending = pending;
        }
        drop(state);
        self.shared.changed.notify_all();
    }

    /// The failure of a background send, once, for the owner's next call.
    pub fn take_failure(&self) -> Result<()> {
        match self.shared.lock().failure.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Progress on `task`: sent now (in the calling thread) when the interval
    /// is over and no request is under way, else kept for the flusher.
    pub fn update(&self, task: i64, percent: f64) -> Result<()> {
        let value = Pending { task, percent };
        let mut state = self.shared.lock();
        if state.closed == Some(task) {
            // Handed back (a stop): the task may be another worker's now.
            return Ok(());
        }
        state.latest = Some(value);
        if !state.in_flight && state.since.elapsed() >= state.interval {
            state.pending = None;
            return self.shared.send(state, value).1;
        }
        let was_empty = state.pending.replace(value).is_none();
        if state.flusher.is_none() {
            match self.start_flusher() {
                Some(handle) => state.flusher = Some(handle),
                None => {
                    // No thread to be had: send now, as with the interval 0.
                    let mut state = self.shared.wait_idle(state);
                    let Some(value) = state.pending.take() else {
                        return Ok(());
                    };
                    return self.shared.send(state, value).1;
                }
            }
        }
        drop(state);
        if was_empty {
            self.shared.changed.notify_all();
        }
        Ok(())
    }

    /// Waits for a request under way, then takes what is pending, for the
    /// caller to carry in its own request (done, requeue, hand back). If that
    /// request fails, [`restore`](Progress::restore) puts the value back.
    pub fn settle(&self) -> Option<Pending> {
        self.shared.wait_idle(self.shared.lock()).pending.take()
    }

    /// Puts back a value taken by [`settle`](Progress::settle) whose request
    /// failed, unless a newer one is pending.
    pub fn restore(&self, value: Pending) {
        let mut state = self.shared.lock();
        if state.pending.is_none() && state.closed != Some(value.task) {
            state.pending = Some(value);
        }
        drop(state);
        self.shared.changed.notify_all();
    }

    /// Sends what is pending now, in the calling thread (after a request
    /// under way). On failure the value stays pending.
    pub fn flush(&self) -> Result<()> {
        let mut state = self.shared.wait_idle(self.shared.lock());
        let Some(value) = state.pending.take() else {
            return Ok(());
        };
        let (mut state, result) = self.shared.send(state, value);
        if result.is_err() && state.pending.is_none() {
            state.pending = Some(value);
        }
        result
    }

    fn start_flusher(&self) -> Option<JoinHandle<()>> {
        let shared = Arc::clone(&self.shared);
        std::thread::Builder::new()
            .name("taskfarm-progress".to_owned())
            .spawn(move || shared.run_flusher())
            .ok()
    }
}

impl Drop for Progress {
    /// Ends the flusher and sends what is pending (a failure cannot be
    /// reported from here). In a child after `fork()`: nothing at all.
    fn drop(&mut self) {
        if !self.is_own() {
            // The flusher is the parent's; its handle is not valid here.
            if let Ok(mut state) = self.shared.state.try_lock() {
                std::mem::forget(state.flusher.take());
            }
            return;
        }
        let mut state = self.shared.lock();
        state.closing = true;
        self.shared.changed.notify_all();
        let mut state = self.shared.wait_idle(state);
        let flusher = state.flusher.take();
        match state.pending.take() {
            Some(value) => drop(self.shared.send(state, value)),
            None => drop(state),
        }
        if let Some(flusher) = flusher {
            let _ = flusher.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until no request is under way.
    fn wait_idle<'a>(&self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        while state.in_flight {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state
    }

    /// Sends `value` as a request of its own, marked in flight, the lock
    /// released meanwhile; gives the lock back with the outcome.
    fn send<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        value: Pending,
    ) -> (MutexGuard<'a, State>, Result<()>) {
        state.in_flight = true;
        state.since = Instant::now();
        drop(state);
        let update = TaskUpdate {
            percent_completed: Some(value.percent),
            status: None,
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.run.put_progress(value.task, &update)
        }))
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Protocol,
                "a progress update panicked (a bug in taskfarm_worker)",
            ))
        });
        let mut state = self.lock();
        state.in_flight = false;
        self.changed.notify_all();
        (state, result)
    }

    /// Sends what is pending for the owner, keeping a failure for its next
    /// call (the flusher's and a reader's way).
    fn send_for_owner<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let Some(value) = state.pending.take() else {
            return state;
        };
        let (mut state, result) = self.send(state, value);
        if let Err(e) = result {
            if state.pending.is_none() {
                state.pending = Some(value);
            }
            state.failure = Some(Error::with_http_status(
                e.kind(),
                e.http_status().unwrap_or(0),
                format!(
                    "the progress update of task {} to {} % failed in the background: {}; \
                     it is kept and sent with the next update, flush, done or free",
                    value.task,
                    value.percent,
                    e.message()
                ),
            ));
        }
        state
    }

    /// The flusher thread: sends what is pending when its interval ends.
    fn run_flusher(&self) {
        let mut state = self.lock();
        loop {
            if state.closing {
                return;
            }
            if state.in_flight || state.failure.is_some() || state.pending.is_none() {
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let due = state.since + state.interval;
            let now = Instant::now();
            if now < due {
                state = self
                    .changed
                    .wait_timeout(state, due - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            state = self.send_for_owner(state);
        }
    }

    /// For a read: waits for a request under way, then sends what is pending
    /// (for `task` only, when given).
    fn settle_for_reader(&self, task: Option<i64>) {
        let state = self.lock();
        if state.closing {
            return;
        }
        let state = self.wait_idle(state);
        if state
            .pending
            .is_some_and(|p| task.is_none_or(|t| t == p.task))
        {
            drop(self.send_for_owner(state));
        }
    }
}

fn lock_registry() -> MutexGuard<'static, Vec<Weak<Shared>>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends the pending progress of every worker of this process on the same
/// run as `run` (same server, same uuid), of `task` only when given, so that
/// a read through the library after an update sees it, and a write does not
/// get overtaken by it. A failure goes to the worker's next call, as for a
/// background send.
pub fn settle_run(run: &dyn ProgressTarget, task: Option<i64>) {
    let pid = std::process::id();
    let same: Vec<Arc<Shared>> = lock_registry()
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|s| {
            s.pid == pid && s.run.run_uuid() == run.run_uuid() && s.run.base_url() == run.base_url()
        })
        .collect();
    for shared in same {
        shared.settle_for_reader(task);
    }
}
