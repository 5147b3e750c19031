//! A worker working through a run (the Python `TaskFarmWorker`): it holds at
//! most one task, reports progress on it and marks it done. Progress is
//! coalesced ([`super::progress`]): at most one progress request per interval.

use std::sync::Arc;
use std::time::Duration;

use super::error::{Error, ErrorKind, Result};
use super::identity;
use super::progress::Progress;
use super::retry::Method;
use super::run::{check_percentage, Run};
use super::wire::{RegisterWorker, RequestTask, TaskRecord, TaskState, TaskUpdate, WorkerAnswer};

/// The task a worker holds and the last percentage known for it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HeldTask {
    task: i64,
    percent: f64,
}

/// A worker registered with the server for one run. Dropping it sends the
/// progress still pending (and ends its flusher thread).
#[derive(Debug)]
pub struct Worker {
    run: Arc<Run>,
    uuid: String,
    held: Option<HeldTask>,
    progress: Progress,
}

impl Worker {
    /// Registers a new worker for `run` (`POST worker` with a fresh UUID, the
    /// host name and the process id).
    pub fn register(run: Arc<Run>) -> Result<Worker> {
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
                answer.uuid
            )));
        }
        Ok(Worker {
            progress: Progress::new(Arc::clone(&run), run.update_interval()),
            run,
            uuid,
            held: None,
        })
    }

    /// Refuses to act in a child process after `fork()`: the held task and
    /// the connections are the parent's.
    fn check_process(&self) -> Result<()> {
        if self.progress.is_own() {
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
        self.progress.is_own()
    }

    /// The progress interval: at most one progress request per interval.
    pub fn update_interval(&self) -> Duration {
        self.progress.interval()
    }

    /// Sets the progress interval (zero: every update is sent at once).
    pub fn set_update_interval(&mut self, interval: Duration) -> Result<()> {
        self.check_process()?;
        self.progress.set_interval(interval);
        Ok(())
    }

    /// The pending progress of the held task and its sending, for the
    /// operations that end or hand back the task: [`Progress::settle`] before
    /// their request, [`Progress::restore`] when it failed.
    pub fn progress(&self) -> &Progress {
        &self.progress
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
        self.held.map(|h| h.task)
    }

    /// The held task, or a new one from the server (`POST runs/UUID/task`);
    /// `None` when no task is left. The percentage comes from the answer
    /// itself: no second request as in the Python client.
    pub fn task(&mut self) -> Result<Option<i64>> {
        self.check_process()?;
        self.progress.take_failure()?;
        if let Some(held) = self.held {
            return Ok(Some(held.task));
        }
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
                    super::transport::describe_body(&reply.body)
                ),
            ));
        }
        self.held = Some(HeldTask {
            task: record.task,
            percent: record.percent_completed,
        });
        self.progress.task_taken();
        Ok(Some(record.task))
    }

    /// Reports progress on the held task. A percentage outside 0..100 is
    /// refused; with no task held nothing is sent. Sent at once when the
    /// interval since the task was taken or progress last sent is over, else
    /// kept and sent when it is (the latest value wins).
    pub fn update(&mut self, percentage: f64) -> Result<()> {
        check_percentage(percentage)?;
        self.check_process()?;
        self.progress.take_failure()?;
        let Some(held) = self.held else {
            return Ok(());
        };
        self.progress.update(held.task, percentage)?;
        self.held = Some(HeldTask {
            percent: percentage,
            ..held
        });
        Ok(())
    }

    /// Releases the held task, marking it done when its last known percentage
    /// is 100 (within 1e-6), as the Python client. If marking it done fails,
    /// the task stays held so that the call can be repeated.
    ///
    /// A pending progress value goes in the same request: `update(100)` then
    /// `done()` within the interval is one `PUT` of percentage and state.
    pub fn done(&mut self) -> Result<()> {
        self.check_process()?;
        self.progress.take_failure()?;
        let Some(held) = self.held else {
            return Ok(());
        };
        let pending = self.progress.settle();
        let update = TaskUpdate {
            percent_completed: pending.map(|p| p.percent),
            status: ((held.percent - 100.0).abs() < 1e-6).then_some(TaskState::Done),
        };
        if update.percent_completed.is_some() || update.status.is_some() {
            if let Err(e) = self.run.put_task(held.task, &update) {
                if let Some(p) = pending {
                    self.progress.restore(p);
                }
                return Err(e);
            }
        }
        self.held = None;
        Ok(())
    }

    /// Sends the pending progress now, in the calling thread (nothing when
    /// none is pending). On failure it stays pending.
    pub fn flush(&mut self) -> Result<()> {
        self.check_process()?;
        self.progress.take_failure()?;
        self.progress.flush()
    }

    /// Gives the held task back (`waiting`, 0 %) and forgets it, for a worker
    /// that cannot finish it. If the server does not take it, the task stays held.
    /// A pending progress value is dropped: the request sets 0 %.
    pub fn requeue(&mut self) -> Result<()> {
        self.check_process()?;
        self.progress.take_failure()?;
        let Some(held) = self.held else {
            return Ok(());
        };
        let pending = self.progress.settle();
        let sent = self.run.put_task(
            held.task,
            &TaskUpdate {
                percent_completed: Some(0.0),
                status: Some(TaskState::Waiting),
            },
        );
        if let Err(e) = sent {
            if let Some(p) = pending {
                self.progress.restore(p);
            }
            return Err(e);
        }
        self.held = None;
        Ok(())
    }
}
