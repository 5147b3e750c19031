//! The one-shot commands: list, info, reset, delete, create, task. Each opens
//! what it needs through the library's protocol client and prints in one of
//! three styles.

use serde_json::{json, Value};
use taskfarm_worker::internal::http::transport::NOT_AN_API;
use taskfarm_worker::internal::wire::TaskRecord;
use taskfarm_worker::internal::{list_runs, new_token, Error, ErrorKind, Run, RunStatus, Settings};

use crate::failure::{Failure, EXIT_NOT_FOUND, EXIT_SERVER};
use crate::format::{percent, python_str, table, visible};
use crate::output;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Text for people (the subcommands).
    Human,
    /// Exactly what the Python `manageTF` prints (its flags).
    ManageTf,
    /// Compact JSON (`--json`).
    Json,
}

/// Opens run `uuid`, turning a 404 into a clear "no such run".
pub fn open(settings: &Settings, uuid: &str) -> Result<Run, Failure> {
    Run::open(settings, uuid).map_err(|e| explain(e, settings, Some(uuid)))
}

/// The failure for an error of the client, with a clearer message for the
/// 404s that mean "no such run" or "this URL is not a taskfarm API".
pub fn explain(error: Error, settings: &Settings, uuid: Option<&str>) -> Failure {
    if error.kind() == ErrorKind::NotFound {
        if error.message().starts_with("no run ") {
            // The library said it already.
            return Failure::from(error);
        }
        if error.message().contains(NOT_AN_API) {
            // The library said it: a server error for the tool.
            return Failure::new(EXIT_SERVER, error.message());
        }
        if let Some(uuid) = uuid {
            return Failure::new(
                EXIT_NOT_FOUND,
                format!(
                    "no run {uuid} on {} (HTTP 404 for {})",
                    settings.base_url,
                    error.message().split(" answered").next().unwrap_or("")
                ),
            );
        }
    }
    Failure::from(error)
}

/// `taskfarm list`, `-l`.
pub fn list(settings: &Settings, style: Style) -> Result<(), Failure> {
    let runs = list_runs(settings).map_err(|e| explain(e, settings, None))?;
    match style {
        Style::Json => output::json(&runs),
        Style::ManageTf => {
            let text: String = runs
                .iter()
                .map(|r| format!("{} {} {}\n", r.id, visible(&r.uuid), r.num_tasks))
                .collect();
            output::print(&text)
        }
        Style::Human => {
            let mut rows = vec![vec!["ID".into(), "UUID".into(), "TASKS".into()]];
            rows.extend(
                runs.iter()
                    .map(|r| vec![r.id.to_string(), visible(&r.uuid), r.num_tasks.to_string()]),
            );
            output::print(&table(&rows))
        }
    }
}

/// `taskfarm info UUID`, `UUID -i`.
pub fn info(settings: &Settings, uuid: &str, style: Style) -> Result<(), Failure> {
    let run = open(settings, uuid)?;
    let info = run
        .info(None)
        .map_err(|e| explain(e, settings, Some(uuid)))?;
    const KEYS: [&str; 7] = [
        "id",
        "uuid",
        "numTasks",
        "numWaiting",
        "numComputing",
        "numDone",
        "percentDone",
    ];
    let mut values = Vec::with_capacity(KEYS.len());
    for key in KEYS {
        values.push(info.get(key).ok_or_else(|| {
            Failure::new(
                EXIT_SERVER,
                format!("GET runs/{uuid} answered a run without {key:?}: {info}"),
            )
        })?);
    }
    let status = checked_status(&info, uuid)?;
    match style {
        Style::Json => output::json(&with_not_started(info, &status)),
        Style::ManageTf => {
            let [id, uuid, tasks, waiting, computing, done, percent_done] = values.as_slice()
            else {
                unreachable!("seven keys")
            };
            output::line(&format!(
                "{} {} {} ({},{},{}) {}",
                python_str(id),
                python_str(uuid),
                python_str(tasks),
                python_str(waiting),
                python_str(computing),
                python_str(done),
                python_str(percent_done)
            ))
        }
        Style::Human => {
            let labels = [
                "id",
                "uuid",
                "tasks",
                "waiting",
                "computing",
                "done",
                "percent done",
            ];
            let mut rows: Vec<Vec<String>> = labels
                .iter()
                .zip(&values)
                .map(|(label, value)| {
                    let text = match (*label, value.as_f64()) {
                        ("percent done", Some(p)) => percent(p),
                        _ => python_str(value),
                    };
                    vec![label.to_string(), text]
                })
                .collect();
            rows.insert(
                3,
                vec![
                    "not started".to_owned(),
                    status.num_not_started().to_string(),
                ],
            );
            output::print(&table(&rows))
        }
    }
}

/// The counts of a run answer, checked as the library checks its other
/// answers: a confused server's counts (negative, more than the tasks, over
/// 100 %) are a protocol error, never printed as if true.
pub fn checked_status(info: &Value, uuid: &str) -> Result<RunStatus, Failure> {
    let status: RunStatus = serde_json::from_value(info.clone()).map_err(|e| {
        Failure::new(
            EXIT_SERVER,
            format!("GET runs/{uuid} answered a run that breaks the protocol ({e}): {info}"),
        )
    })?;
    status.check().map_err(|why| {
        Failure::new(
            EXIT_SERVER,
            format!("GET runs/{uuid} answered counts that no run can have ({why}): {info}"),
        )
    })?;
    Ok(status)
}

/// The run's JSON with `numNotStarted`: the tasks the server does not count
/// yet because it never handed them out.
pub fn with_not_started(mut info: Value, status: &RunStatus) -> Value {
    if let Some(object) = info.as_object_mut() {
        object.insert("numNotStarted".to_owned(), status.num_not_started().into());
    }
    info
}

/// `taskfarm reset UUID [--all]`, `UUID -r`, `UUID -R`.
pub fn reset(settings: &Settings, uuid: &str, all: bool, style: Style) -> Result<(), Failure> {
    let run = open(settings, uuid)?;
    if style != Style::Human {
        // manageTF prints nothing, nor does --json.
        return run
            .restart(all)
            .map_err(|e| explain(e, settings, Some(uuid)));
    }
    // The server does not say how many it reset: the counts before tell it
    // (the tasks computing, and done for --all), those after what is now.
    let before = run.status().map_err(|e| explain(e, settings, Some(uuid)))?;
    run.restart(all)
        .map_err(|e| explain(e, settings, Some(uuid)))?;
    let after = run.status().map_err(|e| explain(e, settings, Some(uuid)))?;
    let tasks = |n: i64| format!("{n} task{}", if n == 1 { "" } else { "s" });
    let now = format!(
        "now {} not started, {} waiting, {} computing, {} done of {}",
        after.num_not_started(),
        after.num_waiting,
        after.num_computing,
        after.num_done,
        after.num_tasks
    );
    output::line(&if all {
        format!(
            "run {uuid}: every task set back to waiting at 0 % ({} computing or done before); {now}",
            tasks(before.num_computing + before.num_done)
        )
    } else {
        format!(
            "run {uuid}: {} computing set back to waiting; {now}",
            tasks(before.num_computing)
        )
    })
}

/// `taskfarm delete UUID`, `UUID -d`.
pub fn delete(settings: &Settings, uuid: &str, style: Style) -> Result<(), Failure> {
    let run = open(settings, uuid)?;
    run.delete().map_err(|e| explain(e, settings, Some(uuid)))?;
    match style {
        Style::Human => output::line(&format!("run {uuid} deleted")),
        Style::ManageTf | Style::Json => Ok(()),
    }
}

/// `taskfarm create N`: prints the new run's UUID.
pub fn create(settings: &Settings, num_tasks: i64, style: Style) -> Result<(), Failure> {
    let run = Run::create(settings, num_tasks).map_err(|e| explain(e, settings, None))?;
    match style {
        Style::Json => output::json(&json!({"uuid": run.uuid(), "numTasks": run.num_tasks()})),
        Style::Human | Style::ManageTf => output::line(&visible(run.uuid())),
    }
}

/// `taskfarm token`: a new token from the server (one password check),
/// alone on stdout, for `export TASKFARM_TOKEN=$(taskfarm token)`.
pub fn token(settings: &Settings, style: Style) -> Result<(), Failure> {
    let token = new_token(settings).map_err(|e| explain(e, settings, None))?;
    match style {
        Style::Json => output::json(&json!({"token": token.expose()})),
        Style::Human | Style::ManageTf => output::line(token.expose()),
    }
}

/// `taskfarm task UUID ID`: one task's status and percentage.
///
/// The server creates a task that is read before it was ever handed out,
/// which can break the run (docs/PROTOCOL.md); so a task past the ones handed out
/// so far is reported as waiting at 0 % without asking the server for it.
pub fn task(settings: &Settings, uuid: &str, id: i64, style: Style) -> Result<(), Failure> {
    let run = open(settings, uuid)?;
    if id >= run.num_tasks() {
        return Err(Failure::new(
            EXIT_NOT_FOUND,
            format!(
                "run {uuid} has no task {id}: its tasks are 0..{}",
                run.num_tasks() - 1
            ),
        ));
    }
    let status: RunStatus = run.status().map_err(|e| explain(e, settings, Some(uuid)))?;
    let handed_out = status.num_waiting + status.num_computing + status.num_done;
    let (task, note) = if id < handed_out {
        let task = run
            .task_info(id, None)
            .map_err(|e| explain(e, settings, Some(uuid)))?;
        (task, "")
    } else {
        (
            json!({"id": null, "task": id, "percentCompleted": 0.0, "status": "waiting"}),
            " (not handed out yet)",
        )
    };
    match style {
        Style::Json => output::json(&task),
        Style::Human | Style::ManageTf => {
            let record: TaskRecord = serde_json::from_value(task.clone()).map_err(|e| {
                Failure::new(
                    EXIT_SERVER,
                    format!("GET runs/{uuid}/tasks/{id} answered a task that breaks the protocol ({e}): {task}"),
                )
            })?;
            output::line(&format!(
                "task {id}: {}, {}{note}",
                record.status.as_str(),
                percent(record.percent_completed)
            ))
        }
    }
}
