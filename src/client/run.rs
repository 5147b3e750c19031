//! A run of tasks on the server (the Python `TaskFarm`), and the list of runs
//! (the Python `tfRuns`).

use std::time::Duration;

use serde_json::Value;

use super::error::{Error, ErrorKind, Result};
use super::http::credentials::Secret;
use super::http::reply::{describe_body, Reply};
use super::http::retry::{Method, Repeat};
use super::http::transport::{api_hint, Connection};
use super::settings::Settings;
use super::wire::{CreateRun, RunList, RunStatus, RunSummary, TaskRecord, TaskState, TaskUpdate};
use super::worker::progress::{self, ProgressTarget};
use super::worker::start_spread;

/// The largest number of tasks a run may have: the server keeps task numbers
/// in a 32-bit integer column.
pub const MAX_TASKS: i64 = i32::MAX as i64;

/// What `GET runs/UUID?info=X` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunInfoKey {
    /// `percentDone`
    PercentDone,
    /// `numWaiting`
    NumWaiting,
    /// `numDone`
    NumDone,
    /// `numComputing`
    NumComputing,
}

impl RunInfoKey {
    /// Every key, as the server spells them.
    pub const NAMES: [&'static str; 4] = ["percentDone", "numWaiting", "numDone", "numComputing"];

    /// The key named `name`, or an invalid-argument error listing the keys.
    pub fn parse(name: &str) -> Result<RunInfoKey> {
        Ok(match name {
            "percentDone" => RunInfoKey::PercentDone,
            "numWaiting" => RunInfoKey::NumWaiting,
            "numDone" => RunInfoKey::NumDone,
            "numComputing" => RunInfoKey::NumComputing,
            _ => return Err(unknown_key("run", name, &RunInfoKey::NAMES)),
        })
    }

    /// The key as the server spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunInfoKey::PercentDone => "percentDone",
            RunInfoKey::NumWaiting => "numWaiting",
            RunInfoKey::NumDone => "numDone",
            RunInfoKey::NumComputing => "numComputing",
        }
    }
}

/// What `GET/PUT runs/UUID/tasks/ID` can read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskInfoKey {
    /// `status`: `waiting`, `computing` or `done`.
    Status,
    /// `percentCompleted`: 0..100.
    PercentCompleted,
}

impl TaskInfoKey {
    /// Every key, as the server spells them.
    pub const NAMES: [&'static str; 2] = ["status", "percentCompleted"];

    /// The key named `name`, or an invalid-argument error listing the keys.
    pub fn parse(name: &str) -> Result<TaskInfoKey> {
        match name {
            "status" => Ok(TaskInfoKey::Status),
            "percentCompleted" => Ok(TaskInfoKey::PercentCompleted),
            _ => Err(unknown_key("task", name, &TaskInfoKey::NAMES)),
        }
    }

    /// The key as the server spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskInfoKey::Status => "status",
            TaskInfoKey::PercentCompleted => "percentCompleted",
        }
    }
}

fn unknown_key(what: &str, name: &str, known: &[&str]) -> Error {
    Error::invalid_argument(format!(
        "unknown {what} info {name:?}: expected \"\" or one of {}",
        known.join(", ")
    ))
}

/// Checks a percentage: a number in 0..=100.
pub fn check_percentage(percentage: f64) -> Result<f64> {
    if percentage.is_nan() || !(0.0..=100.0).contains(&percentage) {
        return Err(Error::invalid_argument(format!(
            "percentage {percentage:?} is outside 0..100"
        )));
    }
    Ok(percentage)
}

/// Checks a run UUID before it goes into a URL path.
pub fn check_run_uuid(uuid: &str) -> Result<&str> {
    let ok = !uuid.is_empty()
        && uuid.len() <= 64
        && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !ok {
        return Err(Error::invalid_argument(format!(
            "run UUID {:?} is not a UUID (hex digits and dashes)",
            uuid.chars().take(80).collect::<String>()
        )));
    }
    Ok(uuid)
}

/// A run on the server. Safe to share between threads.
///
/// Reads and writes that a worker's pending progress would change (the run's
/// `percentDone`, a task's percentage or state, restart) first send the
/// pending progress of every worker of this process on the run
/// (`progress::settle_run`), so that they see it and are not overtaken by
/// it. The counts of waiting, computing and done tasks do not depend on
/// progress and are read at once.
#[derive(Debug)]
pub struct Run {
    connection: Connection,
    uuid: String,
    num_tasks: i64,
    update_interval: Duration,
}

impl Run {
    /// Creates a run of `num_tasks` tasks (`GET token`, `POST run`).
    pub fn create(settings: &Settings, num_tasks: i64) -> Result<Run> {
        if !(1..=MAX_TASKS).contains(&num_tasks) {
            return Err(Error::invalid_argument(format!(
                "number of tasks {num_tasks} is outside 1..{MAX_TASKS}"
            )));
        }
        let connection = Connection::open(settings)?;
        let created: RunSummary = connection
            .call(Method::Post, "run", Some(&CreateRun { num_tasks }))?
            .expect(&[201])?
            .json()?;
        check_run_uuid(&created.uuid).map_err(|_| {
            Error::protocol(format!(
                "POST run answered a run whose uuid {:?} is not a UUID",
                crate::client::http::scrub::clean(&created.uuid)
            ))
        })?;
        Ok(Run {
            connection,
            uuid: created.uuid,
            num_tasks: created.num_tasks,
            update_interval: settings.update_interval,
        })
    }

    /// Opens the existing run `uuid` (`GET token`, `GET runs/UUID`). The
    /// first run a process opens waits for the process's start spread first
    /// (`worker/start_spread.rs`: in a big job, each process its own share of
    /// a window).
    pub fn open(settings: &Settings, uuid: &str) -> Result<Run> {
        check_run_uuid(uuid)?;
        start_spread::wait_before_first_request()?;
        let connection = Connection::open(settings)?;
        let found: RunSummary = connection
            .call(Method::Get, &format!("runs/{uuid}"), None::<&()>)?
            .expect(&[200])
            .map_err(|e| no_such_run(e, uuid, connection.base_url()))?
            .json()?;
        Ok(Run {
            connection,
            uuid: uuid.to_owned(),
            num_tasks: found.num_tasks,
            update_interval: settings.update_interval,
        })
    }

    /// The run's UUID.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The number of tasks (known since the run was opened: no request).
    pub fn num_tasks(&self) -> i64 {
        self.num_tasks
    }

    #[doc(hidden)]
    /// The connection to the server.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The progress interval of the workers made on this run (from the
    /// settings it was opened with).
    pub fn update_interval(&self) -> Duration {
        self.update_interval
    }

    /// `info(key)` of the Python client: the bare value for a key, the whole
    /// object for `None`.
    pub fn info(&self, key: Option<RunInfoKey>) -> Result<Value> {
        if matches!(key, None | Some(RunInfoKey::PercentDone)) {
            progress::settle_run(self, None);
        }
        let query = key.map_or("", RunInfoKey::as_str);
        let reply = self.get(&format!("runs/{}?info={query}", self.uuid))?;
        match key {
            None => reply.json(),
            Some(key) => field(&reply, key.as_str()),
        }
    }

    /// A count of tasks: waiting, computing or done.
    pub fn count(&self, key: RunInfoKey) -> Result<i64> {
        let reply = self.get(&format!("runs/{}?info={}", self.uuid, key.as_str()))?;
        let value = field(&reply, key.as_str())?;
        value
            .as_i64()
            .ok_or_else(|| bad_field(&reply, key.as_str(), "a whole number"))
    }

    /// The percentage of the run done, 0..100.
    pub fn percent_done(&self) -> Result<f64> {
        progress::settle_run(self, None);
        let key = RunInfoKey::PercentDone.as_str();
        let reply = self.get(&format!("runs/{}?info={key}", self.uuid))?;
        field(&reply, key)?
            .as_f64()
            .ok_or_else(|| bad_field(&reply, key, "a number"))
    }

    /// Every count and the percentage, in one request; counts that cannot
    /// be those of a run are a protocol error.
    pub fn status(&self) -> Result<RunStatus> {
        progress::settle_run(self, None);
        let reply = self.get(&format!("runs/{}?info=", self.uuid))?;
        let status: RunStatus = reply.json()?;
        status.check().map_err(|why| {
            Error::with_http_status(
                ErrorKind::Protocol,
                reply.status,
                format!(
                    "{} answered counts that no run can have ({why}): {}",
                    reply.what,
                    describe_body(&reply.body)
                ),
            )
        })?;
        Ok(status)
    }

    /// `getTaskInfo(task, key)`: the bare value for a key, the whole task for `None`.
    pub fn task_info(&self, task: i64, key: Option<TaskInfoKey>) -> Result<Value> {
        self.check_task(task)?;
        progress::settle_run(self, Some(task));
        let query = key.map_or("", TaskInfoKey::as_str);
        let reply = self.get(&format!("runs/{}/tasks/{task}?info={query}", self.uuid))?;
        match key {
            None => reply.json(),
            Some(key) => field(&reply, key.as_str()),
        }
    }

    /// The whole task, typed.
    pub fn task(&self, task: i64) -> Result<TaskRecord> {
        self.check_task(task)?;
        progress::settle_run(self, Some(task));
        self.get(&format!("runs/{}/tasks/{task}?info=", self.uuid))?
            .json()
    }

    /// `setTaskInfo(task, key, value)` with the value as JSON: a number in
    /// 0..100 for `percentCompleted`, `"waiting"`, `"computing"` or `"done"`
    /// for `status`.
    pub fn set_task_info(&self, task: i64, key: TaskInfoKey, value: &Value) -> Result<()> {
        match key {
            TaskInfoKey::PercentCompleted => {
                let percent = value.as_f64().ok_or_else(|| {
                    Error::invalid_argument(format!(
                        "percentCompleted must be a number, not {value}"
                    ))
                })?;
                self.set_task_percent(task, percent)
            }
            TaskInfoKey::Status => {
                let status = serde_json::from_value(value.clone()).map_err(|_| {
                    Error::invalid_argument(format!(
                        "status must be \"waiting\", \"computing\" or \"done\", not {value}"
                    ))
                })?;
                self.update_task(
                    task,
                    &TaskUpdate {
                        percent_completed: None,
                        status: Some(status),
                    },
                )
            }
        }
    }

    /// Sets a task's percentage completed, a number in 0..100 (one `PUT`),
    /// after the pending progress of this process's workers on that task.
    pub fn set_task_percent(&self, task: i64, percent: f64) -> Result<()> {
        check_percentage(percent)?;
        self.check_task(task)?;
        self.settle_and_put(
            task,
            &TaskUpdate {
                percent_completed: Some(percent),
                status: None,
            },
        )
    }

    /// Sets a task's percentage and/or state (one `PUT`), after the pending
    /// progress of this process's workers on that task.
    pub fn update_task(&self, task: i64, update: &TaskUpdate) -> Result<()> {
        self.check_task(task)?;
        if let Some(p) = update.percent_completed {
            check_percentage(p)?;
        }
        self.settle_and_put(task, update)
    }

    /// The pending progress of this process's workers on `task` sent, then
    /// `update` (checked by the caller).
    fn settle_and_put(&self, task: i64, update: &TaskUpdate) -> Result<()> {
        progress::settle_run(self, Some(task));
        self.put_task(task, update)
    }

    /// The `PUT` of [`Run::update_task`] alone, for a worker on its own
    /// task (it has settled its own progress). The percentage was checked
    /// where it came in ([`Run::update_task`], `Worker::update`): a worker's
    /// hand-back and `done` carry the latest percentage it was given.
    pub(crate) fn put_task(&self, task: i64, update: &TaskUpdate) -> Result<()> {
        self.check_task(task)?;
        // A task set `waiting` (a hand-back, a give-back) may go to another
        // worker the moment it lands: that PUT is not repeated once it may
        // have reached the server (see `Repeat::OnlyIfNothingSent`).
        let repeat = if update.status == Some(TaskState::Waiting) {
            Repeat::OnlyIfNothingSent
        } else {
            Repeat::AsMethod
        };
        self.connection
            .call_as(
                Method::Put,
                repeat,
                &format!("runs/{}/tasks/{task}", self.uuid),
                Some(update),
            )?
            .expect(&[204])?;
        Ok(())
    }

    /// Sets a task's state.
    pub fn set_task_state(&self, task: i64, state: TaskState) -> Result<()> {
        self.update_task(
            task,
            &TaskUpdate {
                percent_completed: None,
                status: Some(state),
            },
        )
    }

    /// `restart(everything)`: unfinished tasks back to waiting, or every
    /// task back to waiting at 0 % when `everything`.
    pub fn restart(&self, everything: bool) -> Result<()> {
        progress::settle_run(self, None);
        let all = if everything { "True" } else { "False" };
        self.connection
            .call(
                Method::Post,
                &format!("runs/{}/restart?all={all}", self.uuid),
                None::<&()>,
            )?
            .expect(&[204])?;
        Ok(())
    }

    /// Deletes the run and its tasks.
    pub fn delete(&self) -> Result<()> {
        self.connection
            .call(Method::Delete, &format!("runs/{}", self.uuid), None::<&()>)?
            .expect(&[204])?;
        Ok(())
    }

    /// Checks `0 <= task < numTasks`, as the Python client does.
    pub fn check_task(&self, task: i64) -> Result<i64> {
        if !(0..self.num_tasks).contains(&task) {
            return Err(Error::invalid_argument(format!(
                "task {task} is outside 0..{} of run {}",
                self.num_tasks - 1,
                self.uuid
            )));
        }
        Ok(task)
    }

    fn get(&self, endpoint: &str) -> Result<Reply> {
        self.connection
            .call(Method::Get, endpoint, None::<&()>)?
            .expect(&[200])
            .map_err(|e| no_such_run(e, &self.uuid, self.connection.base_url()))
    }
}

/// A 404 for one of a run's URLs means that the run is not there (a typo in
/// its UUID, a deleted run): say that, rather than quote Flask's error page.
fn no_such_run(error: Error, uuid: &str, base_url: &str) -> Error {
    if error.kind() != ErrorKind::NotFound || error.http_status() != Some(404) {
        return error;
    }
    let request = error.message().split(" answered").next().unwrap_or("");
    Error::with_http_status(
        ErrorKind::NotFound,
        404,
        format!(
            "no run {uuid} on {base_url} ({request} answered HTTP 404 Not Found){}",
            api_hint(base_url)
        ),
    )
}

impl ProgressTarget for Run {
    fn put_progress(&self, task: i64, update: &TaskUpdate) -> Result<()> {
        self.put_task(task, update)
    }

    fn run_uuid(&self) -> &str {
        &self.uuid
    }

    fn base_url(&self) -> &str {
        self.connection.base_url()
    }
}

/// The list of runs on the server (the Python `tfRuns`): `GET token`, then
/// `GET runs` with the token.
pub fn list_runs(settings: &Settings) -> Result<Vec<RunSummary>> {
    let connection = Connection::open(settings)?;
    let list: RunList = connection
        .call(Method::Get, "runs", None::<&()>)?
        .expect(&[200])?
        .json()?;
    Ok(list.data)
}

/// A new token from the server: `GET token` with the settings' credentials
/// (a token the settings hold is not used), for `TASKFARM_TOKEN` and the
/// `*_with_token` functions of other workers.
pub fn new_token(settings: &Settings) -> Result<Secret> {
    if settings.credentials.is_none() {
        return Err(Error::invalid_argument(
            "no credentials to get a token with: give the user name and password",
        ));
    }
    let settings = Settings {
        token: None,
        ..settings.clone()
    };
    Ok(Connection::open(&settings)?.token())
}

/// The field `key` of a JSON object answer.
fn field(reply: &Reply, key: &str) -> Result<Value> {
    let mut object: serde_json::Map<String, Value> = reply.json()?;
    object
        .remove(key)
        .ok_or_else(|| bad_field(reply, key, "present"))
}

fn bad_field(reply: &Reply, key: &str, expected: &str) -> Error {
    Error::with_http_status(
        ErrorKind::Protocol,
        reply.status,
        format!(
            "{} answered HTTP {} without {key:?} being {expected}: {}",
            reply.what,
            reply.status,
            describe_body(&reply.body)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_keys_are_the_servers() {
        for name in RunInfoKey::NAMES {
            assert_eq!(RunInfoKey::parse(name).unwrap().as_str(), name);
        }
        for name in TaskInfoKey::NAMES {
            assert_eq!(TaskInfoKey::parse(name).unwrap().as_str(), name);
        }
        let err = RunInfoKey::parse("numTasks").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("percentDone"), "{err}");
        assert!(TaskInfoKey::parse("task").is_err());
    }

    #[test]
    fn percentages_and_uuids_are_checked() {
        for ok in [0.0, 50.5, 100.0] {
            assert_eq!(check_percentage(ok).unwrap(), ok);
        }
        for bad in [-0.1, 100.01, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(check_percentage(bad).is_err());
        }
        assert!(check_run_uuid("0123456789abcdef0123456789ABCDEF").is_ok());
        for bad in ["", "../runs", "abc?x=1", "a b", &"a".repeat(65)] {
            assert!(check_run_uuid(bad).is_err(), "{bad}");
        }
    }
}
