//! `tf_run_list`: the runs on the server (the Python `tfRuns`).

use std::ffi::{c_char, CString};
use std::ptr;

use super::args::out;
use super::boundary::{status_call, value_call};
use super::handle::{borrow, free, hand_out, Boxed, Handle};
use super::status::tf_status;
use super::strings::{into_c_string, owned_c_string};
use super::taskfarm::settings_from_c;
use crate::client::{list_runs, Error, Result, RunSummary};

/// The list of runs on the server at the time of `tf_runs`. Freed with
/// `tf_run_list_free`.
pub struct tf_run_list {
    runs: Vec<(RunSummary, CString)>,
}

impl Handle for tf_run_list {
    type Held = Boxed;
}

impl tf_run_list {
    fn get(&self, index: usize) -> Result<&(RunSummary, CString)> {
        self.runs.get(index).ok_or_else(|| {
            Error::invalid_argument(format!(
                "index {index} is past the end of a list of {} runs",
                self.runs.len()
            ))
        })
    }
}

/// Lists the runs on the server (the Python `tfRuns`). Credentials and URL as
/// for `tf_taskfarm_create`. On `TF_OK`, `*out_list` is the list, to be freed
/// with `tf_run_list_free`.
#[no_mangle]
pub extern "C" fn tf_runs(
    username: *const c_char,
    password: *const c_char,
    url_base: *const c_char,
    out_list: *mut *mut tf_run_list,
) -> tf_status {
    status_call("tf_runs", || {
        let out_list = out(out_list, "out_list")?;
        let settings = settings_from_c(username, password, url_base)?;
        let runs = list_runs(&settings)?
            .into_iter()
            .map(|run| {
                let uuid = owned_c_string(&run.uuid, "a run's uuid")?;
                Ok((run, uuid))
            })
            .collect::<Result<Vec<_>>>()?;
        hand_out(out_list, tf_run_list { runs });
        Ok(tf_status::TF_OK)
    })
}

/// Lists the runs on the server as JSON text: an array of
/// `{"id": .., "uuid": "..", "numTasks": ..}` (what the Python `tfRuns`
/// returns). Free `*out_json` with `tf_string_free`.
#[no_mangle]
pub extern "C" fn tf_runs_json(
    username: *const c_char,
    password: *const c_char,
    url_base: *const c_char,
    out_json: *mut *mut c_char,
) -> tf_status {
    status_call("tf_runs_json", || {
        let out_json = out(out_json, "out_json")?;
        let settings = settings_from_c(username, password, url_base)?;
        let runs = list_runs(&settings)?;
        let text = serde_json::to_string(&runs)
            .map_err(|e| Error::protocol(format!("cannot encode the runs ({e})")))?;
        out_json.write(into_c_string(text, "the runs")?);
        Ok(tf_status::TF_OK)
    })
}

/// The number of runs in the list; 0 when `list` is NULL.
#[no_mangle]
pub extern "C" fn tf_run_list_len(list: *const tf_run_list) -> usize {
    value_call("tf_run_list_len", 0, || {
        Ok(borrow(list, "list")?.runs.len())
    })
}

/// The database id of run `index`; -1 when `list` is NULL or `index` is past the end.
#[no_mangle]
pub extern "C" fn tf_run_list_id(list: *const tf_run_list, index: usize) -> i64 {
    value_call("tf_run_list_id", -1, || {
        Ok(borrow(list, "list")?.get(index)?.0.id)
    })
}

/// The UUID of run `index`, owned by the list (valid until it is freed);
/// NULL when `list` is NULL or `index` is past the end.
#[no_mangle]
pub extern "C" fn tf_run_list_uuid(list: *const tf_run_list, index: usize) -> *const c_char {
    value_call("tf_run_list_uuid", ptr::null(), || {
        Ok(borrow(list, "list")?.get(index)?.1.as_ptr())
    })
}

/// The number of tasks of run `index`; -1 when `list` is NULL or `index` is
/// past the end.
#[no_mangle]
pub extern "C" fn tf_run_list_num_tasks(list: *const tf_run_list, index: usize) -> i64 {
    value_call("tf_run_list_num_tasks", -1, || {
        Ok(borrow(list, "list")?.get(index)?.0.num_tasks)
    })
}

/// Frees a list from `tf_runs`. NULL does nothing.
#[no_mangle]
pub extern "C" fn tf_run_list_free(list: *mut tf_run_list) {
    free("tf_run_list_free", list);
}
