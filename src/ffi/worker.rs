//! `tf_worker`: a worker working through a run (the Python `TaskFarmWorker`):
//! every `tf_worker_*` function (making and freeing one, its tasks and
//! progress, its journal, its wall time).

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard};

use super::args::{number, optional_string, out, string};
use super::boundary::{status_call, value_call};
use super::handle::{borrow, free, hand_out, lend, Boxed, Handle};
use super::status::tf_status;
use super::strings::owned_c_string;
use super::taskfarm::{settings_from_c, settings_with_token_from_c, tf_taskfarm};
use crate::client::settings::interval_from_secs;
use crate::client::{Error, Result, Run, Settings, Worker};

/// A worker registered with the server for one run. It holds at most one
/// task at a time. Calls on one `tf_worker` are serialised inside the
/// library; give each thread its own worker for parallel work. Freed with
/// `tf_worker_free`.
///
/// Progress is coalesced: at most one progress request per update interval
/// (`TASKFARM_UPDATE_INTERVAL`, default 1 s; `tf_worker_set_update_interval`).
/// The worker's own thread sends a waiting update when its interval ends.
///
/// After `fork()`, a worker belongs to the parent: in the child every call on
/// it gives `TF_ERR_INVALID_ARGUMENT` and `tf_worker_free` releases nothing
/// (the child makes its own worker).
pub struct tf_worker {
    taskfarm: tf_taskfarm,
    worker: Mutex<Worker>,
    uuid: CString,
    /// The process that made it.
    pid: u32,
}

impl Handle for tf_worker {
    type Held = Boxed;

    /// Only in the process that made it: in a child after `fork()` its
    /// connections, task and flusher are the parent's, and nothing of it is
    /// dropped or freed.
    fn releasable(&self) -> bool {
        self.pid == std::process::id()
    }
}

impl tf_worker {
    /// The worker, for one call; refused in a child after `fork()` before
    /// any lock is taken (a thread of the parent may have held it).
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Worker>> {
        if self.pid != std::process::id() {
            return Err(Error::invalid_argument(format!(
                "worker {} belongs to process {}, not to this one (after fork()): \
                 a child process makes its own worker with tf_worker_new",
                self.uuid.to_string_lossy(),
                self.pid
            )));
        }
        Ok(self.worker.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Opens the run `uuid` and registers a new worker for it (the Python
/// `TaskFarmWorker(username, password, uuid, url_base)`: `GET token`,
/// `GET runs/UUID`, `POST worker`). With `TASKFARM_JOURNAL` set, the worker
/// keeps its journal there (`tf_worker_set_journal`). Credentials and URL as for
/// `tf_taskfarm_create` (NULL: from the environment). On `TF_OK`, `*out_worker`
/// is the new worker, to be freed with `tf_worker_free`.
#[no_mangle]
pub extern "C" fn tf_worker_new(
    username: *const c_char,
    password: *const c_char,
    url_base: *const c_char,
    uuid: *const c_char,
    out_worker: *mut *mut tf_worker,
) -> tf_status {
    status_call("tf_worker_new", || {
        let out_worker = out(out_worker, "out_worker")?;
        let uuid = string(uuid, "uuid")?;
        let settings = settings_from_c(username, password, url_base)?;
        hand_out(out_worker, new_worker(&settings, uuid)?);
        Ok(tf_status::TF_OK)
    })
}

/// Opens the run `uuid` and registers a new worker for it with a token
/// instead of a password (`GET runs/UUID`, `POST worker`; no `GET token`, so
/// the server checks no password). For MPI: rank 0 gets the token
/// (`tf_taskfarm_token`), broadcasts it, and every rank calls this with it.
/// `token`, `url_base`, the credentials kept for a refused token and the
/// errors as for `tf_taskfarm_open_with_token` (`token` NULL:
/// `TASKFARM_TOKEN`). On `TF_OK`, `*out_worker` is the new worker, to be
/// freed with `tf_worker_free`.
#[no_mangle]
pub extern "C" fn tf_worker_new_with_token(
    token: *const c_char,
    url_base: *const c_char,
    uuid: *const c_char,
    out_worker: *mut *mut tf_worker,
) -> tf_status {
    status_call("tf_worker_new_with_token", || {
        let out_worker = out(out_worker, "out_worker")?;
        let uuid = string(uuid, "uuid")?;
        let settings = settings_with_token_from_c(token, url_base)?;
        hand_out(out_worker, new_worker(&settings, uuid)?);
        Ok(tf_status::TF_OK)
    })
}

/// Opens run `uuid` and registers a worker for it.
fn new_worker(settings: &Settings, uuid: &str) -> Result<tf_worker> {
    let run = Arc::new(Run::open(settings, uuid)?);
    let worker = Worker::register(Arc::clone(&run))?;
    let uuid = owned_c_string(worker.uuid(), "the worker's uuid")?;
    Ok(tf_worker {
        taskfarm: tf_taskfarm::new(run)?,
        worker: Mutex::new(worker),
        uuid,
        pid: std::process::id(),
    })
}

/// Frees a worker. A progress update still waiting for its interval is sent
/// first (a failure of that request cannot be reported: call
/// `tf_worker_flush` before to know), after a request under way in the
/// background. A task it holds is not marked done (nor given back: use
/// `tf_worker_requeue` first for that). Its journal file, if any, is removed
/// — or kept, marked freed, while it holds a task or a kept `done`, for
/// `taskfarm reap` to give back or deliver. NULL does nothing. In a child
/// after `fork()`, sends nothing and releases nothing (the parent's worker).
#[no_mangle]
pub extern "C" fn tf_worker_free(worker: *mut tf_worker) {
    free("tf_worker_free", worker);
}

/// The worker's UUID, 32 lowercase hex digits (no request). Owned by the
/// worker, valid while it lives; NULL when `worker` is NULL.
#[no_mangle]
pub extern "C" fn tf_worker_uuid(worker: *const tf_worker) -> *const c_char {
    value_call("tf_worker_uuid", ptr::null(), || {
        Ok(borrow(worker, "worker")?.uuid.as_ptr())
    })
}

/// The worker's run, for every `tf_taskfarm_*` function (uuid, counts, task
/// information, restart, ...). Borrowed: valid while `worker` lives, never
/// freed by the caller. NULL when `worker` is NULL.
#[no_mangle]
pub extern "C" fn tf_worker_taskfarm(worker: *const tf_worker) -> *mut tf_taskfarm {
    value_call("tf_worker_taskfarm", ptr::null_mut(), || {
        Ok(lend(&borrow(worker, "worker")?.taskfarm))
    })
}

/// The task the worker holds, or a new one from the server (the Python
/// `task`). On `TF_OK`, `*out_task` is the task number in 0..numTasks-1; it
/// stays the same until `tf_worker_done` or `tf_worker_requeue`.
/// `TF_NO_MORE_TASKS` when the run has no task left to hand out (a later call
/// asks the server again). `TF_STOPPED` after a stop signal
/// (`tf_stop_on_signals`; a task still held is handed back) or when the
/// worker's deadline leaves no time for another task (`tf_worker_set_deadline`):
/// no task is taken. The loop, which ends on either:
/// `while (tf_worker_task(w, &t) == TF_OK) { ...; tf_worker_done(w); }`.
#[no_mangle]
pub extern "C" fn tf_worker_task(worker: *mut tf_worker, out_task: *mut i64) -> tf_status {
    status_call("tf_worker_task", || {
        let worker = borrow(worker, "worker")?;
        let out_task = out(out_task, "out_task")?;
        match worker.lock()?.task()? {
            Some(task) => {
                out_task.write(task);
                Ok(tf_status::TF_OK)
            }
            None => Ok(tf_status::TF_NO_MORE_TASKS),
        }
    })
}

/// Reports progress on the held task, a percentage in 0..100 (the Python
/// `update(percentage)`). A value above 100 by at most 1e-6 is taken as 100
/// (so that adding `100.0 / 7` seven times finishes a task); NaN or any other
/// number outside 0..100 gives `TF_ERR_INVALID_ARGUMENT`; with no task held nothing is sent and the
/// result is `TF_OK`.
///
/// At most one progress request per update interval: when the interval since
/// the task was taken or progress was last sent is over, the update is sent
/// at once (one request, its failure is this call's); otherwise it waits, a
/// later update replaces it, and the worker's own thread sends it when the
/// interval ends (no further call needed). `tf_worker_done`,
/// `tf_worker_requeue`, `tf_worker_flush`, `tf_worker_free` and a read of the
/// run through the library (`tf_taskfarm_percent_done`, `..._status`,
/// `..._info`, `..._get_task_info`, ...) in this process send it first. If a
/// background send fails, the value stays pending and the next
/// `tf_worker_update`, `tf_worker_task` or `tf_worker_flush` on this worker
/// returns that error (and does nothing else); `tf_worker_done` and
/// `tf_worker_requeue` instead send the value in (or replace it by) their own
/// request and return its outcome (with a journal, a `done` the server
/// cannot take is kept as usual). After a stop signal in
/// `TF_STOP_CONTINUE` mode the held task is handed back at `percentage`
/// instead (state `waiting`; nothing of it is left waiting to be sent) and
/// the result is `TF_STOPPED`.
#[no_mangle]
pub extern "C" fn tf_worker_update(worker: *mut tf_worker, percentage: f64) -> tf_status {
    status_call("tf_worker_update", || {
        let worker = borrow(worker, "worker")?;
        let percentage = number(percentage, "percentage")?;
        worker.lock()?.update(percentage)?;
        Ok(tf_status::TF_OK)
    })
}

/// Sets the update interval of this worker, in seconds (a number in
/// [0, 86400]): at most one progress request per interval. 0 sends every
/// update at once, as the Python client does. The default is
/// `TASKFARM_UPDATE_INTERVAL`, else 1. NaN, a negative, infinite or larger
/// number gives `TF_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn tf_worker_set_update_interval(worker: *mut tf_worker, seconds: f64) -> tf_status {
    status_call("tf_worker_set_update_interval", || {
        let worker = borrow(worker, "worker")?;
        let interval = interval_from_secs(seconds)?;
        worker.lock()?.set_update_interval(interval)?;
        Ok(tf_status::TF_OK)
    })
}

/// Sends the progress update that waits for its interval now (one request;
/// nothing when none waits), after a request under way in the background.
/// On failure the update stays pending. Use it before `tf_worker_free` to
/// know that the last update reached the server.
#[no_mangle]
pub extern "C" fn tf_worker_flush(worker: *mut tf_worker) -> tf_status {
    status_call("tf_worker_flush", || {
        borrow(worker, "worker")?.lock()?.flush()?;
        Ok(tf_status::TF_OK)
    })
}

/// Releases the held task (the Python `done()`): it is marked done on the
/// server only when its last reported percentage is 100 (within 1e-6);
/// either way the worker forgets it and the next `tf_worker_task` asks for a
/// new one. Below 100 the result is `TF_NOT_DONE`: the task stays
/// `computing` on the server at its percentage, as with the Python client
/// (with a journal the release is recorded in the journal directory and
/// `taskfarm reap` gives the task back as a failed attempt; `tf_last_error`
/// says which task at what percentage); a task that failed is better ended
/// with `tf_worker_fail`. If
/// marking it done fails, the task stays held and the call can be repeated —
/// except with a journal (`tf_worker_set_journal`) when the server stayed
/// away after every retry: then the `done` is kept in the journal for later
/// delivery, the task is forgotten and the error returned. With no task
/// held, does nothing (with a journal: delivers the kept `done`s). A stop
/// signal does not change this: a finished task is still marked done (an
/// unfinished one is handed back instead, as by `tf_worker_update`, and the
/// result is `TF_STOPPED`). A
/// progress update still waiting goes in the same request:
/// `tf_worker_update(w, 100)` then `tf_worker_done(w)` within the interval
/// is one request.
#[no_mangle]
pub extern "C" fn tf_worker_done(worker: *mut tf_worker) -> tf_status {
    status_call("tf_worker_done", || {
        let mut worker = borrow(worker, "worker")?.lock()?;
        let held = worker.held_task().zip(worker.held_percent());
        if worker.done_marked()? {
            return Ok(tf_status::TF_OK);
        }
        if let Some((task, percent)) = held {
            super::last_error::record(
                "tf_worker_done",
                &format!(
                    "task {task} was released at {percent} %, below 100: not marked done, it \
                     stays computing (tf_worker_fail hands a failed task back)"
                ),
                0,
            );
        }
        Ok(tf_status::TF_NOT_DONE)
    })
}

/// The held task failed here: `message` (UTF-8, kept up to 2 KiB) says why.
/// The task is handed back (`waiting`, its latest percentage, sent or
/// pending, kept) as a failed attempt, and the worker takes the next one. With a journal (`TASKFARM_JOURNAL`, `tf_worker_set_journal`)
/// the attempt is recorded in the journal directory, where the attempts of
/// every worker of the run are counted (failures, and deaths found by
/// `taskfarm reap`); a task whose attempts reach `TASKFARM_MAX_ATTEMPTS`
/// (default 3) is set aside instead: left `computing`, so that no worker
/// takes it, and listed by `taskfarm failed`. Without a journal the task is
/// handed back and nothing is counted. If the server does not take it back,
/// the task stays held and nothing is recorded (the call can be repeated);
/// but when the hand-back may have reached the server unconfirmed (no
/// answer, or a 5xx), the attempt stays recorded and the task is held no
/// more, as for `tf_worker_requeue`.
/// With no task held, does nothing. A stop signal caught while the fail
/// is in flight waits for its outcome (see `tf_stop_on_signals`): the task
/// is never handed back twice, and a task set aside is never handed back.
/// `message` NULL or invalid UTF-8 gives `TF_ERR_INVALID_ARGUMENT`; a bad
/// `TASKFARM_MAX_ATTEMPTS` too.
#[no_mangle]
pub extern "C" fn tf_worker_fail(worker: *mut tf_worker, message: *const c_char) -> tf_status {
    status_call("tf_worker_fail", || {
        let worker = borrow(worker, "worker")?;
        let message = string(message, "message")?;
        worker.lock()?.fail(message)?;
        Ok(tf_status::TF_OK)
    })
}

/// The held task's attempt number, without a request: 1 + its failed or
/// crashed attempts recorded in the journal directory by any worker of the
/// run (1 without a journal). A code can change its approach on a later
/// attempt (a smaller time step, say). `TF_NO_MORE_TASKS` when no task is
/// held (`*out_attempt` untouched).
#[no_mangle]
pub extern "C" fn tf_worker_attempt(worker: *const tf_worker, out_attempt: *mut i64) -> tf_status {
    status_call("tf_worker_attempt", || {
        let worker = borrow(worker, "worker")?;
        let out_attempt = out(out_attempt, "out_attempt")?;
        match worker.lock()?.attempt()? {
            Some(attempt) => {
                out_attempt.write(i64::from(attempt));
                Ok(tf_status::TF_OK)
            }
            None => Ok(tf_status::TF_NO_MORE_TASKS),
        }
    })
}

/// Gives the held task back (state `waiting`, 0 %) and forgets it, for a
/// worker that cannot finish it; another worker gets it next. If the server
/// does not take it back, the task stays held (the call can be repeated).
/// If the request may have reached the server unconfirmed (the connection
/// closed before the answer, or a 5xx answer), the task may be `waiting` or
/// already another worker's: it is held no more and never handed back
/// again, the error says so, and if it stays `computing` it is an orphan for
/// `taskfarm reap --restart-orphans`. With no task held, does nothing.
/// A progress update still waiting is dropped (the task goes back at 0 %).
/// With a journal that cannot record the release (a full disk) while it
/// names the task as held, nothing is sent: `TF_ERR_INVALID_ARGUMENT`, the
/// task still held (else `taskfarm reap` could give it back a second time
/// after this process ends); the same holds for `tf_worker_fail`.
#[no_mangle]
pub extern "C" fn tf_worker_requeue(worker: *mut tf_worker) -> tf_status {
    status_call("tf_worker_requeue", || {
        borrow(worker, "worker")?.lock()?.requeue()?;
        Ok(tf_status::TF_OK)
    })
}

/// Keeps the worker's journal in directory `dir` from now on (as
/// `TASKFARM_JOURNAL=DIR` does for every new worker): the file
/// `DIR/worker-<run>-<worker uuid>.json`, replaced atomically, holds the
/// worker's identity (host, pid, process start time, Slurm ids, MPI rank),
/// the held task and its percentage, a heartbeat refreshed every 30 s
/// (`TASKFARM_JOURNAL_HEARTBEAT` seconds) by a background thread of the
/// library, and the `done`s that could not be delivered. Nothing secret;
/// nothing is sent to the server. `taskfarm reap` reads it to give back the
/// task of a worker that died. With a journal, a `tf_worker_done` that fails
/// because the server stays away after every retry keeps the `done` in the
/// journal, forgets the task and returns the error; the next successful
/// request of the worker (or `taskfarm reap`) delivers it. The file is
/// removed by `tf_worker_free` (kept, marked freed, while it still holds a
/// task or a kept `done`). `dir` NULL or "" stops the journal. A directory
/// that does not exist or cannot be written gives `TF_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn tf_worker_set_journal(worker: *mut tf_worker, dir: *const c_char) -> tf_status {
    status_call("tf_worker_set_journal", || {
        let worker = borrow(worker, "worker")?;
        let dir = optional_string(dir, "dir")?.filter(|d| !d.is_empty());
        worker.lock()?.set_journal(dir.map(std::path::Path::new))?;
        Ok(tf_status::TF_OK)
    })
}

/// Sets the worker's deadline, `unix_time` in seconds since 1970 (e.g. the
/// job's end time), and the seconds one task takes: `task_seconds` 0 means
/// "estimate": the longest task this worker completed so far (from hand-out
/// to `tf_worker_done`; the longest because a task cut by the deadline loses
/// all its work, while stopping early loses at most one task's time), and
/// before any completed, `TASKFARM_TASK_SECONDS`. `tf_worker_task` then
/// returns `TF_STOPPED` instead of taking a task that the time left cannot
/// fit. Without this call, `TASKFARM_DEADLINE`, then under Slurm the job's
/// end time (`SLURM_JOB_END_TIME`, else `squeue`, asked once per worker) set
/// the deadline. A deadline that is NaN, negative or already past, or a
/// negative or NaN `task_seconds`, gives `TF_ERR_INVALID_ARGUMENT` and
/// changes nothing. No request.
#[no_mangle]
pub extern "C" fn tf_worker_set_deadline(
    worker: *mut tf_worker,
    unix_time: f64,
    task_seconds: f64,
) -> tf_status {
    status_call("tf_worker_set_deadline", || {
        borrow(worker, "worker")?
            .lock()?
            .set_deadline(unix_time, task_seconds)?;
        Ok(tf_status::TF_OK)
    })
}

/// The held task's percentage as last known (from the hand-out answer, which
/// for a handed-back task is where it stood, or from the last
/// `tf_worker_update`), without a request: a checkpointing code resumes from
/// it. `TF_NO_MORE_TASKS` when no task is held (`*out` untouched).
#[no_mangle]
pub extern "C" fn tf_worker_held_percent(
    worker: *const tf_worker,
    out_percent: *mut f64,
) -> tf_status {
    status_call("tf_worker_held_percent", || {
        let worker = borrow(worker, "worker")?;
        let out_percent = out(out_percent, "out_percent")?;
        match worker.lock()?.held_percent() {
            Some(percent) => {
                out_percent.write(percent);
                Ok(tf_status::TF_OK)
            }
            None => Ok(tf_status::TF_NO_MORE_TASKS),
        }
    })
}
