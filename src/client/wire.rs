//! The JSON messages of the protocol (docs/PROTOCOL.md), as typed structs. Field
//! names are the server's; unknown fields are ignored, missing ones are a
//! protocol error.

use serde_derive::{Deserialize, Serialize};

/// `GET token` → `{"token": "<JWT>"}`.
#[derive(Deserialize)]
pub struct TokenAnswer {
    /// The JWT to send as Basic user name.
    pub token: String,
}

/// `POST run` body.
#[derive(Serialize)]
pub struct CreateRun {
    /// Number of tasks of the new run.
    #[serde(rename = "numTasks")]
    pub num_tasks: i64,
}

/// A run as `POST run` and `GET runs` give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Database id.
    pub id: i64,
    /// The run's UUID.
    pub uuid: String,
    /// Number of tasks.
    #[serde(rename = "numTasks")]
    pub num_tasks: i64,
}

/// `GET runs` → `{"data": [...]}`.
#[derive(Deserialize)]
pub struct RunList {
    /// Every run on the server.
    pub data: Vec<RunSummary>,
}

/// `GET runs/UUID` → the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
pub struct RunStatus {
    /// Number of tasks of the run.
    #[serde(rename = "numTasks")]
    pub num_tasks: i64,
    /// Tasks waiting to be handed out (created ones only).
    #[serde(rename = "numWaiting")]
    pub num_waiting: i64,
    /// Tasks being computed.
    #[serde(rename = "numComputing")]
    pub num_computing: i64,
    /// Tasks done.
    #[serde(rename = "numDone")]
    pub num_done: i64,
    /// Percentage of the whole run completed, 0..100.
    #[serde(rename = "percentDone")]
    pub percent_done: f64,
}

impl RunStatus {
    /// The tasks never handed out yet: the server counts a task as waiting,
    /// computing or done only once it was handed out (docs/PROTOCOL.md), so a
    /// fresh run shows 0 everywhere. At least 0: the server reads its three
    /// counts one after another, so a task handed out meanwhile can be
    /// counted both waiting and computing.
    pub fn num_not_started(&self) -> i64 {
        (self.num_tasks - self.num_waiting - self.num_computing - self.num_done).max(0)
    }

    /// Checks that these can be the counts of a run: none negative, none
    /// more than `numTasks`, `percentDone` within 0..100. The error says
    /// what is wrong. Their sum may exceed `numTasks`: the server reads
    /// them one after another, and a task that moves between two reads is
    /// counted twice (docs/PROTOCOL.md).
    pub fn check(&self) -> Result<(), String> {
        let counts = [
            ("numTasks", self.num_tasks),
            ("numWaiting", self.num_waiting),
            ("numComputing", self.num_computing),
            ("numDone", self.num_done),
        ];
        if let Some((name, value)) = counts.iter().find(|(_, v)| *v < 0) {
            return Err(format!("{name} is {value}, a negative count"));
        }
        if let Some((name, value)) = counts[1..].iter().find(|(_, v)| *v > self.num_tasks) {
            return Err(format!(
                "{name} is {value}, more than numTasks {}",
                self.num_tasks
            ));
        }
        if !(0.0..=100.0).contains(&self.percent_done) {
            return Err(format!(
                "percentDone is {}, outside 0..100",
                self.percent_done
            ));
        }
        Ok(())
    }
}

/// `POST worker` body.
#[derive(Serialize)]
pub struct RegisterWorker<'a> {
    /// 32 lowercase hex digits.
    pub uuid: &'a str,
    /// The machine's host name.
    pub hostname: &'a str,
    /// The process id.
    pub pid: u32,
}

/// `POST worker` → `{"uuid", "id"}`.
#[derive(Deserialize)]
pub struct WorkerAnswer {
    /// The worker's UUID, as sent.
    pub uuid: String,
}

/// `POST runs/UUID/task` body.
#[derive(Serialize)]
pub struct RequestTask<'a> {
    /// The UUID of the asking worker.
    pub worker_uuid: &'a str,
}

/// A task as `POST runs/UUID/task` (201) and `GET runs/UUID/tasks/ID` give it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct TaskRecord {
    /// The task number, 0-based.
    pub task: i64,
    /// Percentage completed, 0..100.
    #[serde(rename = "percentCompleted")]
    pub percent_completed: f64,
    /// The task's state.
    pub status: TaskState,
}

/// The state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting to be handed out.
    Waiting,
    /// Handed out to a worker.
    Computing,
    /// Finished.
    Done,
}

impl TaskState {
    /// The state as the server spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Waiting => "waiting",
            TaskState::Computing => "computing",
            TaskState::Done => "done",
        }
    }
}

/// `PUT runs/UUID/tasks/ID` body: either field or both.
#[derive(Debug, Default, Serialize)]
pub struct TaskUpdate {
    /// New percentage completed.
    #[serde(rename = "percentCompleted", skip_serializing_if = "Option::is_none")]
    pub percent_completed: Option<f64>,
    /// New state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_update_sends_only_what_is_set() {
        let both = TaskUpdate {
            percent_completed: Some(0.0),
            status: Some(TaskState::Waiting),
        };
        assert_eq!(
            serde_json::to_string(&both).unwrap(),
            r#"{"percentCompleted":0.0,"status":"waiting"}"#
        );
        let one = TaskUpdate {
            status: Some(TaskState::Done),
            ..TaskUpdate::default()
        };
        assert_eq!(serde_json::to_string(&one).unwrap(), r#"{"status":"done"}"#);
    }

    #[test]
    fn counts_read_while_a_task_moves_are_a_run_and_others_are_not() {
        let counts = |waiting, computing, done, percent| RunStatus {
            num_tasks: 40,
            num_waiting: waiting,
            num_computing: computing,
            num_done: done,
            percent_done: percent,
        };
        // Seen on the real server under load: a task handed out between
        // its reads of numWaiting and numComputing, counted twice.
        let moving = counts(1, 1, 39, 97.5);
        assert_eq!(moving.check(), Ok(()));
        assert_eq!(moving.num_not_started(), 0);
        assert_eq!(counts(0, 2, 3, 10.0).num_not_started(), 35);
        for (bad, why) in [
            (counts(-1, 0, 0, 0.0), "numWaiting is -1, a negative count"),
            (
                counts(0, 41, 0, 0.0),
                "numComputing is 41, more than numTasks 40",
            ),
            (
                counts(0, 0, 0, 100.5),
                "percentDone is 100.5, outside 0..100",
            ),
        ] {
            assert_eq!(bad.check(), Err(why.to_owned()));
        }
    }

    #[test]
    fn answers_parse_and_missing_fields_are_errors() {
        let t: TaskRecord = serde_json::from_str(
            r#"{"id": 7, "task": 3, "percentCompleted": 0.0, "status": "computing"}"#,
        )
        .unwrap();
        assert_eq!(t.task, 3);
        assert_eq!(t.status, TaskState::Computing);
        assert!(serde_json::from_str::<TaskRecord>(r#"{"id": 7, "status": "computing"}"#).is_err());
        assert!(serde_json::from_str::<TaskRecord>(
            r#"{"task": 1, "percentCompleted": 0, "status": "lost"}"#
        )
        .is_err());
    }
}
