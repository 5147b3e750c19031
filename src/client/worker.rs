//! A worker working through a run (the Python `TaskFarmWorker`): it holds at
//! most one task, reports progress on it and marks it done.

use std::sync::Arc;

use super::error::{Error, ErrorKind, Result};
use super::identity;
use super::retry::Method;
use super::run::{check_percentage, Run};
use super::wire::{RegisterWorker, RequestTask, TaskRecord, TaskState, TaskUpdate, WorkerAnswer};

/// The task a worker holds and the last percentage known for it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HeldTask {
    task: i64,
    percent: f64,
}

/// A worker registered with the server for one run.
#[derive(Debug)]
pub struct Worker {
    run: Arc<Run>,
    uuid: String,
    held: Option<HeldTask>,
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
            run,
            uuid,
            held: None,
        })
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
        Ok(Some(record.task))
    }

    /// Reports progress on the held task. A percentage outside 0..100 is
    /// refused; with no task held nothing is sent.
    pub fn update(&mut self, percentage: f64) -> Result<()> {
        check_percentage(percentage)?;
        let Some(held) = self.held else {
            return Ok(());
        };
        self.run.update_task(
            held.task,
            &TaskUpdate {
                percent_completed: Some(percentage),
                status: None,
            },
        )?;
        self.held = Some(HeldTask {
            percent: percentage,
            ..held
        });
        Ok(())
    }

    /// Releases the held task, marking it done when its last known percentage
    /// is 100 (within 1e-6), as the Python client. If marking it done fails,
    /// the task stays held so that the call can be repeated.
    pub fn done(&mut self) -> Result<()> {
        let Some(held) = self.held else {
            return Ok(());
        };
        if (held.percent - 100.0).abs() < 1e-6 {
            self.run.set_task_state(held.task, TaskState::Done)?;
        }
        self.held = None;
        Ok(())
    }

    /// Gives the held task back (`waiting`, 0 %) and forgets it, for a worker
    /// that cannot finish it. If the server does not take it, the task stays held.
    pub fn requeue(&mut self) -> Result<()> {
        let Some(held) = self.held else {
            return Ok(());
        };
        self.run.update_task(
            held.task,
            &TaskUpdate {
                percent_completed: Some(0.0),
                status: Some(TaskState::Waiting),
            },
        )?;
        self.held = None;
        Ok(())
    }
}
