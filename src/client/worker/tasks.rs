//! Task guards: `for task in worker.tasks()` hands out one [`Task`] at a
//! time, and a task always ends either done or handed back: dropping its
//! guard (at the end of the loop body, on `?`, in a panic) hands it back.
//!
//! The guard and the iterator share the worker through one lock, held only
//! for the length of a call: a `for` loop cannot lend its item a borrow of
//! the iterator, and the worker must stay reachable from both.

use std::sync::{Arc, Mutex, MutexGuard};

use super::worker::{Failed, Worker};
use crate::client::error::{Error, Result};

type Shared<'w> = Arc<Mutex<&'w mut Worker>>;

fn lock<'a, 'w>(worker: &'a Shared<'w>) -> MutexGuard<'a, &'w mut Worker> {
    worker.lock().unwrap_or_else(|e| e.into_inner())
}

impl Worker {
    /// The tasks of the run, one guard at a time, until none is left; see
    /// [`Tasks`]: a task whose guard is dropped without
    /// [`Task::done`] is handed back.
    pub fn tasks(&mut self) -> Tasks<'_> {
        Tasks::new(self)
    }
}

/// The tasks of a run, for one worker: each item is the next task's guard,
/// from [`Worker::tasks`]. The iteration ends when no task is left (`None`),
/// and after the first error, which is yielded: a connection or server
/// failure after every retry, or an error of kind
/// [`Stopped`](crate::client::ErrorKind::Stopped) once a stop signal was caught or the
/// deadline leaves no time for another task.
///
/// One guard at a time: asking for the next task while the previous guard is
/// still alive (kept in a `Vec`, say) yields an error of kind
/// [`InvalidArgument`](crate::client::ErrorKind::InvalidArgument). A task whose
/// [`Task::done`] or [`Task::hand_back`] failed is still held by the worker:
/// the next item is that task again.
#[derive(Debug)]
pub struct Tasks<'w> {
    worker: Shared<'w>,
    ended: bool,
}

impl<'w> Tasks<'w> {
    fn new(worker: &'w mut Worker) -> Tasks<'w> {
        Tasks {
            worker: Arc::new(Mutex::new(worker)),
            ended: false,
        }
    }
}

impl<'w> Iterator for Tasks<'w> {
    type Item = Result<Task<'w>>;

    fn next(&mut self) -> Option<Result<Task<'w>>> {
        if self.ended {
            return None;
        }
        if Arc::strong_count(&self.worker) > 1 {
            self.ended = true;
            let held = lock(&self.worker).held_task();
            return Some(Err(Error::invalid_argument(format!(
                "the guard of task {} is still alive: end it (done, hand_back, requeue or \
                 drop) before asking for the next task",
                held.map_or_else(|| "(none)".to_owned(), |t| t.to_string())
            ))));
        }
        let taken = lock(&self.worker).task();
        match taken {
            Ok(Some(id)) => Some(Ok(Task {
                worker: Arc::clone(&self.worker),
                id,
                ended: false,
            })),
            Ok(None) => {
                self.ended = true;
                None
            }
            Err(error) => {
                self.ended = true;
                Some(Err(error))
            }
        }
    }
}

impl std::iter::FusedIterator for Tasks<'_> {}

/// A task held by a worker, from [`Worker::tasks`]. It ends in one of three
/// ways: [`Task::done`], [`Task::hand_back`] (or [`Task::requeue`]), or
/// dropped, which hands it back as [`Task::hand_back`] does (a failure of
/// that hand-back cannot be reported: the worker keeps the task, and the next
/// item of [`Tasks`] is this task again).
#[derive(Debug)]
pub struct Task<'w> {
    worker: Shared<'w>,
    id: i64,
    /// Done, handed back, or taken from the worker by a stop.
    ended: bool,
}

impl Task<'_> {
    /// The task's number, `0..num_tasks` of the run.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The task's percentage as last known: from the server when it was
    /// handed out (a task handed back by another worker starts where that
    /// one stopped), then the last [`Task::update`]; 0 once a stop took the
    /// task back. No request.
    pub fn percent(&self) -> f64 {
        let worker = lock(&self.worker);
        match worker.held_task() {
            Some(id) if id == self.id => worker.held_percent().unwrap_or(0.0),
            _ => 0.0,
        }
    }

    /// Reports progress, as [`Worker::update`]: at most one request per
    /// update interval. After a stop signal the task is handed back at this
    /// percentage and the answer is an error of kind
    /// [`Stopped`](crate::client::ErrorKind::Stopped).
    pub fn update(&mut self, percent: f64) -> Result<()> {
        let mut worker = lock(&self.worker);
        let outcome = worker.update(percent);
        if worker.held_task() != Some(self.id) {
            self.ended = true;
        }
        outcome
    }

    /// Marks the task done at 100 %, as [`Worker::complete`]: a stop signal
    /// does not change that. On failure the worker still holds the task
    /// (unless a journal kept the `done`, see [`Worker::done`]).
    pub fn done(mut self) -> Result<()> {
        self.ended = true;
        lock(&self.worker).complete()
    }

    /// Hands the task back at its latest percentage, as [`Worker::hand_back`]:
    /// another worker carries on from there. On failure the worker still
    /// holds the task.
    pub fn hand_back(mut self) -> Result<()> {
        self.ended = true;
        lock(&self.worker).hand_back()
    }

    /// The task failed here: handed back as a failed attempt with
    /// `message`, or set aside once its attempts reach
    /// `TASKFARM_MAX_ATTEMPTS`, as [`Worker::fail`] says. On failure the
    /// worker still holds the task.
    pub fn fail(mut self, message: &str) -> Result<Failed> {
        self.ended = true;
        lock(&self.worker).fail(message)
    }

    /// This task's attempt number, as [`Worker::attempt`]: 1 + its failed
    /// or crashed attempts in the journal directory (1 without a journal).
    pub fn attempt(&self) -> Result<u32> {
        Ok(lock(&self.worker).attempt()?.unwrap_or(1))
    }

    /// Gives the task back at 0 %, as [`Worker::requeue`]: another worker
    /// starts it again. On failure the worker still holds the task.
    pub fn requeue(mut self) -> Result<()> {
        self.ended = true;
        lock(&self.worker).requeue()
    }
}

impl Drop for Task<'_> {
    /// Hands the task back unless it was done or handed back already.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let mut worker = lock(&self.worker);
        if worker.is_own() && worker.held_task() == Some(self.id) {
            let _ = worker.hand_back();
        }
    }
}
