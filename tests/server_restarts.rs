//! The real server going away in the middle of a run: killed with SIGKILL and
//! started again a few seconds later, or restarted with another SECRET_KEY.
//! Workers ride it out by themselves (retries, re-authentication) and nothing
//! is lost or done twice. Each test has a server of its own.

mod common;

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::ptr;
use std::time::{Duration, Instant};

use common::c_abi::{c, last_error};
use common::server::TaskfarmServer;
use taskfarm_worker::ffi::status::tf_status::{self, *};
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;

struct Handles {
    tf: *mut tf_taskfarm,
    uuid: CString,
}

fn create(server: &TaskfarmServer, tasks: i64) -> Handles {
    let mut tf = ptr::null_mut();
    let status = tf_taskfarm_create(
        c(&server.user).as_ptr(),
        c(&server.password).as_ptr(),
        c(&server.url).as_ptr(),
        tasks,
        &mut tf,
    );
    assert_eq!(status, TF_OK, "{}", last_error());
    let uuid = unsafe { CStr::from_ptr(tf_taskfarm_uuid(tf)) }.to_owned();
    Handles { tf, uuid }
}

fn new_worker(server: &TaskfarmServer, uuid: &CStr) -> *mut tf_worker {
    let mut w = ptr::null_mut();
    let status = tf_worker_new(
        c(&server.user).as_ptr(),
        c(&server.password).as_ptr(),
        c(&server.url).as_ptr(),
        uuid.as_ptr(),
        &mut w,
    );
    assert_eq!(status, TF_OK, "{}", last_error());
    w
}

fn token(tf: *const tf_taskfarm) -> String {
    unsafe { CStr::from_ptr(tf_taskfarm_token(tf)) }
        .to_str()
        .unwrap()
        .to_owned()
}

/// Works through the run like a careful C worker: a task request that failed
/// in transport (the answer was lost, the POST is not repeated by the
/// library) is simply asked again; returns the tasks it finished.
fn work_through(w: *mut tf_worker, step: Duration) -> Vec<i64> {
    let mut finished = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the worker did not finish");
        let mut task = -1;
        match tf_worker_task(w, &mut task) {
            TF_OK => {}
            TF_NO_MORE_TASKS => return finished,
            TF_ERR_CONNECTION => continue,
            other => panic!("tf_worker_task: {other:?}: {}", last_error()),
        }
        for p in [25.0, 50.0, 75.0, 100.0] {
            std::thread::sleep(step);
            let status = tf_worker_update(w, p);
            assert_eq!(status, TF_OK, "update {p}: {}", last_error());
        }
        let status: tf_status = tf_worker_done(w);
        assert_eq!(status, TF_OK, "done: {}", last_error());
        finished.push(task);
    }
}

#[test]
fn workers_reauthenticate_by_themselves_after_a_new_secret_key() {
    let server = TaskfarmServer::start();
    let run = create(&server, 4);
    let w = new_worker(&server, &run.uuid);
    let mut task = -1;
    assert_eq!(tf_worker_task(w, &mut task), TF_OK);
    assert_eq!(tf_worker_update(w, 50.0), TF_OK);
    let before = token(run.tf);

    server.restart(Some("a-completely-different-key"));

    // The old token now gets 500 from the server; the library fetches a new
    // one and repeats the call, for the worker and for the run handle alike.
    assert_eq!(tf_worker_update(w, 100.0), TF_OK, "{}", last_error());
    assert_eq!(tf_worker_done(w), TF_OK, "{}", last_error());
    let mut rest = work_through(w, Duration::ZERO);
    rest.push(task);
    rest.sort();
    assert_eq!(rest, vec![0, 1, 2, 3]);
    let mut done = -1;
    assert_eq!(
        tf_taskfarm_num_done(run.tf, &mut done),
        TF_OK,
        "{}",
        last_error()
    );
    assert_eq!(done, 4);
    assert_ne!(token(run.tf), before, "the run handle uses the new token");
    assert_eq!(token(tf_worker_taskfarm(w)), token(run.tf));
    tf_worker_free(w);
    tf_taskfarm_free(run.tf);
}

#[test]
fn workers_ride_out_a_server_killed_and_restarted_mid_run() {
    let server = TaskfarmServer::start();
    let tasks = 8;
    let run = create(&server, tasks);
    let uuid = run.uuid.clone();
    let user = server.user.clone();
    let password = server.password.clone();
    let url = server.url.clone();
    // Default retries (10) and backoff (0.3 s doubling): about 4 s of waiting
    // by the fifth retry, more than the outage below.
    let worker = std::thread::spawn(move || {
        let mut w = ptr::null_mut();
        let status = tf_worker_new(
            c(&user).as_ptr(),
            c(&password).as_ptr(),
            c(&url).as_ptr(),
            uuid.as_ptr(),
            &mut w,
        );
        assert_eq!(status, TF_OK, "{}", last_error());
        let finished = work_through(w, Duration::from_millis(60));
        tf_worker_free(w);
        finished
    });

    // Kill it mid-run: once the worker has finished a task, not at a guessed moment.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut done = -1;
        assert_eq!(
            tf_taskfarm_num_done(run.tf, &mut done),
            TF_OK,
            "{}",
            last_error()
        );
        if done >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never finished a task"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = server.current_pid();
    // SAFETY: signals the server's own process group (the harness made it a
    // group leader); no memory is involved.
    assert_eq!(unsafe { libc::kill(-pid, libc::SIGKILL) }, 0);
    let killed_at = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    server.restart(None);
    let outage = killed_at.elapsed();

    let mut finished = worker.join().expect("the worker thread");
    // A task whose hand-out answer was lost in the crash stays `computing`
    // with no worker: that is what restart(false) is for, once no worker runs.
    let mut s = tf_run_status {
        num_tasks: 0,
        num_waiting: 0,
        num_computing: 0,
        num_done: 0,
        percent_done: 0.0,
    };
    assert_eq!(
        tf_taskfarm_status(run.tf, &mut s),
        TF_OK,
        "{}",
        last_error()
    );
    if s.num_done < tasks {
        assert_eq!(
            tf_taskfarm_restart(run.tf, false),
            TF_OK,
            "{}",
            last_error()
        );
        let w = new_worker(&server, &run.uuid);
        finished.extend(work_through(w, Duration::ZERO));
        tf_worker_free(w);
    }
    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    for task in &finished {
        *count.entry(*task).or_default() += 1;
    }
    assert_eq!(
        count.keys().copied().collect::<Vec<_>>(),
        (0..tasks).collect::<Vec<_>>()
    );
    assert!(
        count.values().all(|&n| n == 1),
        "a task was done twice: {count:?}"
    );
    assert_eq!(
        tf_taskfarm_status(run.tf, &mut s),
        TF_OK,
        "{}",
        last_error()
    );
    assert_eq!((s.num_done, s.percent_done), (tasks, 100.0));
    eprintln!(
        "server down for {:.1} s; the worker finished every task once",
        outage.as_secs_f64()
    );
    tf_taskfarm_free(run.tf);
}
