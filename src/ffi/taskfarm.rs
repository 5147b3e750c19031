//! `tf_taskfarm`: a run of tasks (the Python `TaskFarm`).

use std::ffi::{c_char, c_int, CString};
use std::ptr;
use std::sync::{Arc, Mutex};

use super::args::{number, optional_string, out, string};
use super::boundary::{status_call, value_call};
use super::handle::{borrow, free, hand_out, Boxed, Handle};
use super::status::{task_state_from_c, tf_status, tf_task_state};
use super::strings::{into_c_string, owned_c_string};
use crate::client::run::MAX_TASKS;
use crate::client::settings::{check_retries, timeout_from_secs};
use crate::client::worker::stop_signals;
use crate::client::{Error, Result, Run, RunInfoKey, Settings, TaskInfoKey};

/// A run of tasks on the server, opened or created by this process. Calls on
/// one `tf_taskfarm` may come from several threads at once. Freed with
/// `tf_taskfarm_free` (except the one borrowed from a worker).
///
/// After `fork()`, a `tf_taskfarm` belongs to the parent (its keep-alive
/// connections are shared with it, and answers could cross): in the child
/// every call that sends a request gives `TF_ERR_INVALID_ARGUMENT` before
/// anything is sent, also on the one `tf_worker_taskfarm` lends, and
/// `tf_taskfarm_free` releases nothing. A child opens its own handles.
pub struct tf_taskfarm {
    run: Arc<Run>,
    uuid: CString,
    token: Mutex<CString>,
}

impl Handle for tf_taskfarm {
    type Held = Boxed;

    /// Not in a child after `fork()`: the parent's connections (their
    /// pool's lock may be held by a thread that did not survive the fork).
    fn releasable(&self) -> bool {
        self.run.connection().is_own()
    }
}

impl tf_taskfarm {
    /// Wraps a run for C.
    pub(crate) fn new(run: Arc<Run>) -> Result<tf_taskfarm> {
        Ok(tf_taskfarm {
            uuid: owned_c_string(run.uuid(), "the run's uuid")?,
            token: Mutex::new(CString::default()),
            run,
        })
    }
}

/// All counts of a run and its percentage done, from one request
/// (`tf_taskfarm_status`). Tasks never handed out are counted in none of
/// `num_waiting`, `num_computing` and `num_done`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct tf_run_status {
    /// Number of tasks of the run.
    pub num_tasks: i64,
    /// Tasks waiting to be handed out again.
    pub num_waiting: i64,
    /// Tasks being computed.
    pub num_computing: i64,
    /// Tasks done.
    pub num_done: i64,
    /// Percentage of the whole run completed, 0..100.
    pub percent_done: f64,
}

/// Resolves the connection settings of a new handle from the arguments and
/// the environment (used by the worker and run-list functions too).
pub(crate) fn settings_from_c(
    username: *const c_char,
    password: *const c_char,
    url_base: *const c_char,
) -> Result<Settings> {
    // Every handle is made from settings: the first one sets up
    // TASKFARM_STOP_SIGNALS, before anything is sent.
    stop_signals::from_environment()?;
    Settings::resolve(
        optional_string(username, "username")?,
        optional_string(password, "password")?,
        optional_string(url_base, "url_base")?,
    )
}

/// Resolves the settings of a handle that starts with a token (NULL:
/// `TASKFARM_TOKEN`), used by the worker too.
pub(crate) fn settings_with_token_from_c(
    token: *const c_char,
    url_base: *const c_char,
) -> Result<Settings> {
    stop_signals::from_environment()?;
    Settings::resolve_with_token(
        optional_string(token, "token")?,
        optional_string(url_base, "url_base")?,
    )
}

/// Creates a new run of `num_tasks` tasks on the server and a handle to it
/// (the Python `TaskFarm(username, password, numTasks=N, url_base)`).
///
/// `username`, `password` and `url_base` may be NULL: then `TASKFARM_USER`,
/// `TASKFARM_PASSWORD` and `TASKFARM_URL` are used, and for the URL then
/// `http://localhost:5000/api/`. The URL is `http://` or `https://`, a host
/// (a name, or an IPv4 or bracketed IPv6 address as written) and an optional
/// port in 1..65535; any other URL, one holding credentials, or a user name
/// holding `:` gives `TF_ERR_INVALID_ARGUMENT` before anything is sent.
/// `num_tasks` must be in 1..2147483647.
/// When `TASKFARM_TOKEN` is set, the handle starts with that token and sends
/// no `GET token` (as `tf_taskfarm_open_with_token` does); the credentials,
/// then optional, are used only if the server refuses the token. This holds
/// for every function that takes credentials.
/// On `TF_OK`, `*out` is the new handle, to be freed with `tf_taskfarm_free`.
#[no_mangle]
pub extern "C" fn tf_taskfarm_create(
    username: *const c_char,
    password: *const c_char,
    url_base: *const c_char,
    num_tasks: i64,
    out_taskfarm: *mut *mut tf_taskfarm,
) -> tf_status {
    status_call("tf_taskfarm_create", || {
        let out_taskfarm = out(out_taskfarm, "out_taskfarm")?;
        if !(1..=MAX_TASKS).contains(&num_tasks) {
            return Err(Error::invalid_argument(format!(
                "num_tasks {num_tasks} is outside 1..{MAX_TASKS}"
            )));
        }
        let settings = settings_from_c(username, password, url_base)?;
        let run = Run::create(&settings, num_tasks)?;
        hand_out(out_taskfarm, tf_taskfarm::new(Arc::new(run))?);
        Ok(tf_status::TF_OK)
    })
}

/// Opens the existing run `uuid` (the Python `TaskFarm(username, password,
/// uuid=U, url_base)`); `TF_ERR_NOT_FOUND` when the server has no such run.
/// Credentials and URL as for `tf_taskfarm_create`. On `TF_OK`, `*out` is the
/// new handle, to be freed with `tf_taskfarm_free`.
#[no_mangle]
pub extern "C" fn tf_taskfarm_open(
    username: *const c_char,
    password: *const c_char,
    url_base: *const c_char,
    uuid: *const c_char,
    out_taskfarm: *mut *mut tf_taskfarm,
) -> tf_status {
    status_call("tf_taskfarm_open", || {
        let out_taskfarm = out(out_taskfarm, "out_taskfarm")?;
        let uuid = string(uuid, "uuid")?;
        let settings = settings_from_c(username, password, url_base)?;
        let run = Run::open(&settings, uuid)?;
        hand_out(out_taskfarm, tf_taskfarm::new(Arc::new(run))?);
        Ok(tf_status::TF_OK)
    })
}

/// Opens the existing run `uuid` with a token instead of a password: no
/// `GET token` is sent, so the server checks no password (each check costs
/// it about a quarter of a second of CPU). For many workers on one run: get
/// the token once (`tf_taskfarm_token` of any handle, or `taskfarm token`),
/// hand it to every worker (an MPI broadcast, `TASKFARM_TOKEN` in a job
/// script).
///
/// `token` NULL: `TASKFARM_TOKEN`; when that is not set either, or the token
/// is empty, longer than 4096 bytes, or holds white space, a control
/// character, a non-ASCII character or `:` (the server's tokens never do),
/// `TF_ERR_INVALID_ARGUMENT` and nothing is sent. `url_base` NULL:
/// `TASKFARM_URL`, then `http://localhost:5000/api/`. When `TASKFARM_USER`
/// and `TASKFARM_PASSWORD` are both set, they are used only if the server
/// refuses the token (its `SECRET_KEY` changed): a new token is fetched and
/// the call repeated. Without them a refused token is `TF_ERR_AUTH`, with a
/// message that says so. The token never appears in a message or a log line.
/// `TF_ERR_NOT_FOUND` when the server has no such run. On `TF_OK`, `*out` is
/// the new handle, to be freed with `tf_taskfarm_free`.
#[no_mangle]
pub extern "C" fn tf_taskfarm_open_with_token(
    token: *const c_char,
    url_base: *const c_char,
    uuid: *const c_char,
    out_taskfarm: *mut *mut tf_taskfarm,
) -> tf_status {
    status_call("tf_taskfarm_open_with_token", || {
        let out_taskfarm = out(out_taskfarm, "out_taskfarm")?;
        let uuid = string(uuid, "uuid")?;
        let settings = settings_with_token_from_c(token, url_base)?;
        let run = Run::open(&settings, uuid)?;
        hand_out(out_taskfarm, tf_taskfarm::new(Arc::new(run))?);
        Ok(tf_status::TF_OK)
    })
}

/// Frees a handle from `tf_taskfarm_create` or `tf_taskfarm_open` (the run
/// stays on the server). NULL does nothing. Never free the handle that
/// `tf_worker_taskfarm` lends. In a child after `fork()`, releases nothing
/// (the parent's connections).
#[no_mangle]
pub extern "C" fn tf_taskfarm_free(taskfarm: *mut tf_taskfarm) {
    free("tf_taskfarm_free", taskfarm);
}

/// The run's UUID (no request). Owned by the handle, valid while it lives;
/// NULL when `taskfarm` is NULL.
#[no_mangle]
pub extern "C" fn tf_taskfarm_uuid(taskfarm: *const tf_taskfarm) -> *const c_char {
    value_call("tf_taskfarm_uuid", ptr::null(), || {
        Ok(borrow(taskfarm, "taskfarm")?.uuid.as_ptr())
    })
}

/// The run's number of tasks (no request); -1 when `taskfarm` is NULL.
#[no_mangle]
pub extern "C" fn tf_taskfarm_num_tasks(taskfarm: *const tf_taskfarm) -> i64 {
    value_call("tf_taskfarm_num_tasks", -1, || {
        Ok(borrow(taskfarm, "taskfarm")?.run.num_tasks())
    })
}

/// The percentage of the run completed, 0..100 (the Python `percentDone`;
/// one request).
#[no_mangle]
pub extern "C" fn tf_taskfarm_percent_done(
    taskfarm: *const tf_taskfarm,
    out_percent: *mut f64,
) -> tf_status {
    status_call("tf_taskfarm_percent_done", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let out_percent = out(out_percent, "out_percent")?;
        out_percent.write(taskfarm.run.percent_done()?);
        Ok(tf_status::TF_OK)
    })
}

fn count(
    function: &str,
    key: RunInfoKey,
    taskfarm: *const tf_taskfarm,
    out_count: *mut i64,
) -> tf_status {
    status_call(function, || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let out_count = out(out_count, "out_count")?;
        out_count.write(taskfarm.run.count(key)?);
        Ok(tf_status::TF_OK)
    })
}

/// The number of tasks done (the Python `numDone`; one request).
#[no_mangle]
pub extern "C" fn tf_taskfarm_num_done(
    taskfarm: *const tf_taskfarm,
    out_count: *mut i64,
) -> tf_status {
    count(
        "tf_taskfarm_num_done",
        RunInfoKey::NumDone,
        taskfarm,
        out_count,
    )
}

/// The number of tasks waiting to be handed out again (the Python
/// `numWaiting`; one request). Tasks never handed out are not counted.
#[no_mangle]
pub extern "C" fn tf_taskfarm_num_waiting(
    taskfarm: *const tf_taskfarm,
    out_count: *mut i64,
) -> tf_status {
    count(
        "tf_taskfarm_num_waiting",
        RunInfoKey::NumWaiting,
        taskfarm,
        out_count,
    )
}

/// The number of tasks being computed (the Python `numComputing`; one request).
#[no_mangle]
pub extern "C" fn tf_taskfarm_num_computing(
    taskfarm: *const tf_taskfarm,
    out_count: *mut i64,
) -> tf_status {
    count(
        "tf_taskfarm_num_computing",
        RunInfoKey::NumComputing,
        taskfarm,
        out_count,
    )
}

/// Every count of the run and its percentage done, from one request.
#[no_mangle]
pub extern "C" fn tf_taskfarm_status(
    taskfarm: *const tf_taskfarm,
    out_status: *mut tf_run_status,
) -> tf_status {
    status_call("tf_taskfarm_status", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let out_status = out(out_status, "out_status")?;
        let s = taskfarm.run.status()?;
        out_status.write(tf_run_status {
            num_tasks: s.num_tasks,
            num_waiting: s.num_waiting,
            num_computing: s.num_computing,
            num_done: s.num_done,
            percent_done: s.percent_done,
        });
        Ok(tf_status::TF_OK)
    })
}

/// Run information as JSON text (the Python `info(info)`): for `info` one of
/// `"percentDone"`, `"numWaiting"`, `"numDone"`, `"numComputing"` the bare
/// value (`5`); for `""` or NULL the whole object (`{"id":..,"uuid":..,
/// "numTasks":..,"percentDone":..,"numWaiting":..,"numDone":..,
/// "numComputing":..}`). Another key gives `TF_ERR_INVALID_ARGUMENT`.
/// Free `*out_json` with `tf_string_free`.
#[no_mangle]
pub extern "C" fn tf_taskfarm_info(
    taskfarm: *const tf_taskfarm,
    info: *const c_char,
    out_json: *mut *mut c_char,
) -> tf_status {
    status_call("tf_taskfarm_info", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let out_json = out(out_json, "out_json")?;
        let key = match optional_string(info, "info")? {
            None | Some("") => None,
            Some(name) => Some(RunInfoKey::parse(name)?),
        };
        let value = taskfarm.run.info(key)?;
        out_json.write(into_c_string(value.to_string(), "the answer")?);
        Ok(tf_status::TF_OK)
    })
}

/// Task information as JSON text (the Python `getTaskInfo(task, info)`):
/// for `info` `"status"` or `"percentCompleted"` the bare value
/// (`"computing"` with its quotes, `50.0`); for `""` or NULL the whole task
/// (`{"id":..,"task":..,"percentCompleted":..,"status":..}`). `task` must be
/// in 0..numTasks-1. Free `*out_json` with `tf_string_free`.
///
/// Note: the server creates a task that was never handed out when it is read
/// (as `waiting`); read while a worker is being handed that task, the server
/// can create it twice (one row `computing`, one `waiting`, either answering
/// later reads). Read only tasks known to be handed out.
#[no_mangle]
pub extern "C" fn tf_taskfarm_get_task_info(
    taskfarm: *const tf_taskfarm,
    task: i64,
    info: *const c_char,
    out_json: *mut *mut c_char,
) -> tf_status {
    status_call("tf_taskfarm_get_task_info", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let out_json = out(out_json, "out_json")?;
        let key = match optional_string(info, "info")? {
            None | Some("") => None,
            Some(name) => Some(TaskInfoKey::parse(name)?),
        };
        let value = taskfarm.run.task_info(task, key)?;
        out_json.write(into_c_string(value.to_string(), "the answer")?);
        Ok(tf_status::TF_OK)
    })
}

/// Sets task information (the Python `setTaskInfo(task, info, value)`), the
/// value as JSON text: `info` `"percentCompleted"` with a number in 0..100
/// (`"100"`), or `"status"` with `"\"waiting\""`, `"\"computing\""` or
/// `"\"done\""`. `task` must be in 0..numTasks-1.
#[no_mangle]
pub extern "C" fn tf_taskfarm_set_task_info(
    taskfarm: *const tf_taskfarm,
    task: i64,
    info: *const c_char,
    json_value: *const c_char,
) -> tf_status {
    status_call("tf_taskfarm_set_task_info", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let key = TaskInfoKey::parse(string(info, "info")?)?;
        let text = string(json_value, "json_value")?;
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid_argument(format!("json_value is not JSON text ({e})")))?;
        taskfarm.run.set_task_info(task, key, &value)?;
        Ok(tf_status::TF_OK)
    })
}

/// A task's percentage completed, 0..100 (one request). `task` must be in
/// 0..numTasks-1.
#[no_mangle]
pub extern "C" fn tf_taskfarm_task_percent_completed(
    taskfarm: *const tf_taskfarm,
    task: i64,
    out_percent: *mut f64,
) -> tf_status {
    status_call("tf_taskfarm_task_percent_completed", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let out_percent = out(out_percent, "out_percent")?;
        out_percent.write(taskfarm.run.task(task)?.percent_completed);
        Ok(tf_status::TF_OK)
    })
}

/// A task's state (one request). `task` must be in 0..numTasks-1.
#[no_mangle]
pub extern "C" fn tf_taskfarm_task_state(
    taskfarm: *const tf_taskfarm,
    task: i64,
    out_state: *mut tf_task_state,
) -> tf_status {
    status_call("tf_taskfarm_task_state", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let out_state = out(out_state, "out_state")?;
        out_state.write(taskfarm.run.task(task)?.status.into());
        Ok(tf_status::TF_OK)
    })
}

/// Sets a task's percentage completed, a number in 0..100 (one request).
#[no_mangle]
pub extern "C" fn tf_taskfarm_set_task_percent_completed(
    taskfarm: *const tf_taskfarm,
    task: i64,
    percent: f64,
) -> tf_status {
    status_call("tf_taskfarm_set_task_percent_completed", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        taskfarm
            .run
            .set_task_percent(task, number(percent, "percent")?)?;
        Ok(tf_status::TF_OK)
    })
}

/// Sets a task's state, a `tf_task_state` (one request). Takes an `int` so
/// that any number is safe to pass: one that is not a state gives
/// `TF_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn tf_taskfarm_set_task_state(
    taskfarm: *const tf_taskfarm,
    task: i64,
    state: c_int,
) -> tf_status {
    status_call("tf_taskfarm_set_task_state", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let state = task_state_from_c(state).ok_or_else(|| {
            Error::invalid_argument(format!("state {state} is not a tf_task_state"))
        })?;
        taskfarm.run.set_task_state(task, state)?;
        Ok(tf_status::TF_OK)
    })
}

/// Restarts the run (the Python `restart(everything)`): every task not yet
/// at 100 % goes back to waiting (keeping its percentage); with `everything`
/// true every task goes back to waiting at 0 %. Call it only when no worker
/// is computing: tasks of crashed workers stay `computing` until then.
#[no_mangle]
pub extern "C" fn tf_taskfarm_restart(taskfarm: *const tf_taskfarm, everything: bool) -> tf_status {
    status_call("tf_taskfarm_restart", || {
        borrow(taskfarm, "taskfarm")?.run.restart(everything)?;
        Ok(tf_status::TF_OK)
    })
}

/// Deletes the run and its tasks on the server (the Python `delete()`). The
/// handle stays valid (and must still be freed); later requests on it give
/// `TF_ERR_NOT_FOUND`.
#[no_mangle]
pub extern "C" fn tf_taskfarm_delete(taskfarm: *const tf_taskfarm) -> tf_status {
    status_call("tf_taskfarm_delete", || {
        borrow(taskfarm, "taskfarm")?.run.delete()?;
        Ok(tf_status::TF_OK)
    })
}

/// The full URL of `endpoint` (the Python `url(url)`): the base URL followed
/// by `endpoint`. Free `*out_url` with `tf_string_free`.
#[no_mangle]
pub extern "C" fn tf_taskfarm_url(
    taskfarm: *const tf_taskfarm,
    endpoint: *const c_char,
    out_url: *mut *mut c_char,
) -> tf_status {
    status_call("tf_taskfarm_url", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let endpoint = string(endpoint, "endpoint")?;
        let out_url = out(out_url, "out_url")?;
        out_url.write(into_c_string(
            taskfarm.run.connection().url(endpoint),
            "the URL",
        )?);
        Ok(tf_status::TF_OK)
    })
}

/// The authentication token in use (the Python `token_auth`): a secret, to be
/// shown to nobody. Give it to other workers of the same server
/// (`tf_worker_new_with_token`, `TASKFARM_TOKEN`) to spare the server their
/// password checks. Owned by the handle, valid until the next call on it;
/// NULL when `taskfarm` is NULL.
#[no_mangle]
pub extern "C" fn tf_taskfarm_token(taskfarm: *const tf_taskfarm) -> *const c_char {
    value_call("tf_taskfarm_token", ptr::null(), || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let current = taskfarm.run.connection().token();
        let mut cached = taskfarm.token.lock().unwrap_or_else(|e| e.into_inner());
        if cached.as_bytes() != current.expose().as_bytes() {
            *cached = CString::new(current.expose())
                .map_err(|_| Error::protocol("the token holds a NUL character"))?;
        }
        Ok(cached.as_ptr())
    })
}

/// Sets the timeout of one attempt of every later request on this handle, in
/// seconds: a number in [0.001, 1e6]. The default is `TASKFARM_TIMEOUT`, else 60.
#[no_mangle]
pub extern "C" fn tf_taskfarm_set_timeout(taskfarm: *const tf_taskfarm, seconds: f64) -> tf_status {
    status_call("tf_taskfarm_set_timeout", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        let timeout = timeout_from_secs(number(seconds, "seconds")?)?;
        taskfarm.run.connection().set_timeout(timeout);
        Ok(tf_status::TF_OK)
    })
}

/// Sets how many times a failed request on this handle is retried (0..1000).
/// The default is `TASKFARM_RETRIES`, else 10.
#[no_mangle]
pub extern "C" fn tf_taskfarm_set_retries(taskfarm: *const tf_taskfarm, retries: u32) -> tf_status {
    status_call("tf_taskfarm_set_retries", || {
        let taskfarm = borrow(taskfarm, "taskfarm")?;
        taskfarm
            .run
            .connection()
            .set_retries(check_retries(retries)?);
        Ok(tf_status::TF_OK)
    })
}
