//! Stop signals and wall time against the REAL server (PostgreSQL + gunicorn,
//! the production setup) with REAL signals sent to real processes:
//!
//! - a C worker computing for 60 s without a library call gets SIGTERM
//!   (`TF_STOP_EXIT`): within 2 s both of its tasks (one held by the main
//!   thread, one by a second thread) are `waiting` at their last percentage,
//!   the process died of SIGTERM, no other task was taken;
//! - the same with the unchanged `examples/worker.c` and
//!   `TASKFARM_STOP_SIGNALS=TERM`, and a bad `TASKFARM_STOP_SIGNALS`;
//! - `TF_STOP_CONTINUE` in C, C++ and Fortran;
//! - `mpirun` (Open MPI) with one rank SIGKILLed: the SIGTERM the launcher
//!   sends to the other ranks makes them hand their tasks back;
//! - wall time: a deadline that leaves less than the estimate makes
//!   `tf_worker_task` return `TF_STOPPED` and take nothing.
//!
//! The programs are tests/stop/stop_worker.{c,cpp,f90} and examples/worker.c,
//! built here against include/ and the release library of `make build`.
//! Every wait is on an event (a line the program prints, a state polled on
//! the server, the process's end) with a generous overall deadline.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::c_programs::{self, compile, linking, root};
use common::server::{Db, TaskfarmServer};
use taskfarm_worker::internal::{Run, Settings, TaskState, Worker};

/// The hand-back must be over this long after the signal.
const HAND_BACK_LIMIT: Duration = Duration::from_secs(2);
/// Overall deadline of any wait for a line or a state (the machine is shared and slow).
const EVENT_TIMEOUT: Duration = Duration::from_secs(120);

/// Held by every test: one at a time, so that the spinning workers of one
/// test do not take the CPU that another's hand-back needs (the 2 s limit,
/// Open MPI's second between SIGTERM and SIGKILL).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn server() -> &'static TaskfarmServer {
    static SERVER: OnceLock<TaskfarmServer> = OnceLock::new();
    SERVER.get_or_init(|| TaskfarmServer::start_with(Db::Postgresql))
}

fn settings() -> Settings {
    let s = server();
    Settings::resolve(Some(&s.user), Some(&s.password), Some(&s.url)).unwrap()
}

fn new_run(num_tasks: i64) -> Arc<Run> {
    Arc::new(Run::create(&settings(), num_tasks).unwrap())
}

/// This test process's build directory.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("stop-signals-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// The C programs' command line: the shared flags, threads on.
fn linking_c(sources: &[&Path], output: &Path) -> Command {
    let mut command = linking(&c_programs::cc(), c_programs::C_FLAGS, sources, output);
    command.arg("-pthread");
    command
}

fn c_stop_worker() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = scratch().join("stop_worker");
        let source = root().join("tests/stop/stop_worker.c");
        compile("tests/stop/stop_worker.c", linking_c(&[&source], &bin));
        bin
    })
}

fn example_worker() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = scratch().join("example_worker");
        let source = root().join("examples/worker.c");
        compile("examples/worker.c", linking_c(&[&source], &bin));
        bin
    })
}

/// Spawns `program ARGS` with the server's credentials in the environment,
/// and no stop, deadline or Slurm variable from ours; `extra` adds variables.
fn spawn(program: &Path, args: &[&str], extra: &[(&str, &str)]) -> Started {
    let s = server();
    let mut command = Command::new(program);
    command
        .args(args)
        .env("TASKFARM_URL", &s.url)
        .env("TASKFARM_USER", &s.user)
        .env("TASKFARM_PASSWORD", &s.password);
    for variable in [
        "TASKFARM_STOP_SIGNALS",
        "TASKFARM_DEADLINE",
        "TASKFARM_TASK_SECONDS",
        "SLURM_JOB_ID",
        "SLURM_JOB_END_TIME",
    ] {
        command.env_remove(variable);
    }
    for (name, value) in extra {
        command.env(name, value);
    }
    Started::new(command)
}

/// A child process whose stdout lines arrive on a channel and whose stderr
/// is collected.
struct Started {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Started {
    fn new(mut command: Command) -> Started {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        Started {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line that starts with `prefix` (earlier lines are kept).
    fn wait_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no line starting with {prefix:?} within {EVENT_TIMEOUT:?}; stdout so far:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(
            unsafe { libc::kill(self.pid(), signal) },
            0,
            "kill {signal}"
        );
    }

    /// Waits for the process to end within `limit`; its status and how long it took.
    fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the process did not end within {limit:?}; stdout:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every stdout line (the rest after the process ended) and stderr.
    fn finish(mut self) -> (Vec<String>, String) {
        while let Ok(line) = self.lines.recv_timeout(EVENT_TIMEOUT) {
            self.seen.push(line);
        }
        (self.seen, self.stderr.join().unwrap())
    }
}

/// Polls `check` on the server until it holds (overall deadline [`EVENT_TIMEOUT`]).
fn poll_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {EVENT_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn task_of(line: &str, index: usize) -> i64 {
    line.split_whitespace()
        .nth(index)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no task number at word {index} of {line:?}"))
}

/// Asserts the run's counts: (waiting, computing, done).
fn assert_counts(run: &Run, expected: (i64, i64, i64), what: &str) {
    let st = run.status().unwrap();
    assert_eq!(
        (st.num_waiting, st.num_computing, st.num_done),
        expected,
        "{what}: (waiting, computing, done) of the run"
    );
}

fn assert_task(run: &Run, task: i64, state: TaskState, percent: f64) {
    let record = run.task(task).unwrap();
    assert_eq!(
        (record.status, record.percent_completed),
        (state, percent),
        "task {task}"
    );
}

fn assert_died_of(status: ExitStatus, signal: i32, stderr: &str) {
    assert_eq!(
        status.signal(),
        Some(signal),
        "the process must die of signal {signal}, not {status:?}; stderr:\n{stderr}"
    );
}

#[test]
fn sigterm_during_a_computation_hands_back_every_task_of_the_process_and_kills_it() {
    let _serial = one_at_a_time();
    let run = new_run(5);
    let mut child = spawn(c_stop_worker(), &["exit", run.uuid()], &[]);
    let line = child.wait_line("computing ");
    let held = [
        (task_of(&line, 1), 37.5),
        (task_of(&line, 2), 62.5),
        (task_of(&line, 3), 80.0),
    ];
    assert_counts(&run, (0, 3, 0), "while computing");

    child.signal(libc::SIGTERM);
    let (status, took) = child.wait_exit(EVENT_TIMEOUT);
    let (lines, stderr) = child.finish();
    eprintln!("SIGTERM to exit: {took:?}");
    assert_died_of(status, libc::SIGTERM, &stderr);
    assert!(
        took <= HAND_BACK_LIMIT,
        "handed back and ended {took:?} after SIGTERM, more than {HAND_BACK_LIMIT:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l == "finished" || l.starts_with("chatty")),
        "the library ended the process, not the program: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l == "own handler ran"),
        "the program's own handler, installed first, is still called: {lines:?}"
    );
    // The process ended after the hand-back: the server has it already.
    for (task, percent) in held {
        assert_task(&run, task, TaskState::Waiting, percent);
        assert!(
            stderr.contains(&format!(
                "SIGTERM: task {task} of run {} handed back at {percent} %",
                run.uuid()
            )),
            "stderr:\n{stderr}"
        );
    }
    assert_counts(&run, (3, 0, 0), "after SIGTERM: no other task was taken");

    // The next worker gets a handed-back task and reads where it stood.
    let mut next = Worker::register(Arc::clone(&run)).unwrap();
    let task = next.task().unwrap().unwrap();
    let (_, expected) = *held
        .iter()
        .find(|(t, _)| *t == task)
        .unwrap_or_else(|| panic!("task {task} was not handed back"));
    assert_eq!(next.held_percent(), Some(expected));
    next.requeue().unwrap();
}

#[test]
fn the_unchanged_example_worker_hands_back_with_taskfarm_stop_signals_term() {
    let _serial = one_at_a_time();
    let run = new_run(3);
    // Steps of 4 s: SIGTERM comes after the first update (25 %).
    let mut child = spawn(
        example_worker(),
        &["-s", "4000", run.uuid()],
        &[("TASKFARM_STOP_SIGNALS", "TERM")],
    );
    poll_until("the example worker holds task 0", || {
        run.status().unwrap().num_computing == 1
    });
    let mut before = 0.0;
    poll_until("task 0 reaches 25 %", || {
        before = run.task(0).unwrap().percent_completed;
        before >= 25.0
    });
    child.signal(libc::SIGTERM);
    let (status, took) = child.wait_exit(EVENT_TIMEOUT);
    let (_, stderr) = child.finish();
    eprintln!("SIGTERM to exit: {took:?}");
    assert_died_of(status, libc::SIGTERM, &stderr);
    assert!(took <= HAND_BACK_LIMIT, "{took:?} after SIGTERM");
    let record = run.task(0).unwrap();
    assert_eq!(record.status, TaskState::Waiting);
    // Its last percentage: the one seen before the signal, or the next step's
    // if that update came in between.
    assert!(
        record.percent_completed == before || record.percent_completed == before + 25.0,
        "task 0 at {} %, {before} % before SIGTERM",
        record.percent_completed
    );
    assert_counts(&run, (1, 0, 0), "after SIGTERM: no other task was taken");
}

#[test]
fn a_bad_taskfarm_stop_signals_is_a_clear_error_and_nothing_is_taken() {
    let _serial = one_at_a_time();
    let run = new_run(2);
    for (value, message) in [
        ("TERM,KILL", "SIGKILL cannot be caught"),
        ("STOP", "SIGSTOP cannot be caught"),
        ("TERM,USR9", "\"USR9\" is not a stop signal"),
    ] {
        let mut child = spawn(
            example_worker(),
            &[run.uuid()],
            &[("TASKFARM_STOP_SIGNALS", value)],
        );
        let (status, _) = child.wait_exit(EVENT_TIMEOUT);
        let (_, stderr) = child.finish();
        assert_eq!(status.code(), Some(1), "{value}: {stderr}");
        assert!(
            stderr.contains("TF_ERR_INVALID_ARGUMENT")
                && stderr.contains(&format!("TASKFARM_STOP_SIGNALS={value:?}"))
                && stderr.contains(message),
            "{value}: {stderr}"
        );
    }
    assert_counts(&run, (0, 0, 0), "no task was taken");
}

#[test]
fn continue_mode_in_c_hands_back_at_the_next_update_and_still_marks_done() {
    let _serial = one_at_a_time();
    let run = new_run(4);
    let mut child = spawn(c_stop_worker(), &["continue", run.uuid()], &[]);
    let line = child.wait_line("computing ");
    let (finished, unfinished) = (task_of(&line, 1), task_of(&line, 2));
    // TF_STOP_CONTINUE sends nothing by itself: both stay computing until the
    // program acts, and the process survives the signal.
    child.signal(libc::SIGTERM);
    let (status, _) = child.wait_exit(EVENT_TIMEOUT);
    let (lines, stderr) = child.finish();
    assert_eq!(status.code(), Some(0), "{lines:?}\n{stderr}");
    for expected in [
        "stop_requested 15",
        "update TF_STOPPED",
        "held_percent after update TF_NO_MORE_TASKS",
        "done TF_OK",
        "task a TF_STOPPED",
        "task b TF_STOPPED",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected:?} in {lines:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("last_error tf_worker_task: stopped: SIGTERM was caught")),
        "{lines:?}"
    );
    assert_task(&run, finished, TaskState::Done, 100.0);
    assert_task(&run, unfinished, TaskState::Waiting, 40.0);
    assert_counts(&run, (1, 0, 1), "no task was taken after the stop");
}

#[test]
fn continue_mode_in_cpp_ends_the_range_for_without_an_exception() {
    let _serial = one_at_a_time();
    let bin = scratch().join("stop_worker_cpp");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let source = root().join("tests/stop/stop_worker.cpp");
    compile(
        "tests/stop/stop_worker.cpp",
        linking(
            &cxx,
            &["-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-Werror"],
            &[&source],
            &bin,
        ),
    );
    let run = new_run(3);
    let mut child = spawn(&bin, &[run.uuid()], &[]);
    let line = child.wait_line("computing ");
    let task = task_of(&line, 1);
    assert!(line.ends_with("held 25"), "{line}");
    child.signal(libc::SIGTERM);
    let (status, _) = child.wait_exit(EVENT_TIMEOUT);
    let (lines, stderr) = child.finish();
    assert_eq!(status.code(), Some(0), "{lines:?}\n{stderr}");
    assert!(
        lines
            .iter()
            .any(|l| l == "stopped 15 tasks 1 update false stopped() true held none"),
        "{lines:?}"
    );
    assert_task(&run, task, TaskState::Waiting, 50.0);
    assert_counts(&run, (1, 0, 0), "no task was taken after the stop");
}

#[test]
fn continue_mode_in_fortran_ends_the_task_loop_on_tf_stopped() {
    let _serial = one_at_a_time();
    let dir = scratch().join("fortran");
    std::fs::create_dir_all(&dir).unwrap();
    let fc = std::env::var("FC").unwrap_or_else(|_| "gfortran".into());
    let module_object = dir.join("taskfarm_worker.o");
    let mut module = Command::new(&fc);
    module
        .args(["-std=f2008", "-Wall", "-Werror", "-J"])
        .arg(&dir)
        .arg("-c")
        .arg(root().join("fortran/taskfarm_worker.f90"))
        .arg("-o")
        .arg(&module_object);
    compile("fortran/taskfarm_worker.f90", module);
    let bin = dir.join("stop_worker_f90");
    let source = root().join("tests/stop/stop_worker.f90");
    let mut program = linking(
        &fc,
        &["-std=f2008", "-Wall", "-Werror"],
        &[&source, &module_object],
        &bin,
    );
    program.arg("-I").arg(&dir);
    compile("tests/stop/stop_worker.f90", program);

    let run = new_run(3);
    let mut child = spawn(&bin, &[run.uuid()], &[]);
    let line = child.wait_line("computing ");
    let task = task_of(&line, 1);
    assert!(line.ends_with("held 25.0"), "{line}");
    child.signal(libc::SIGTERM);
    let (status, _) = child.wait_exit(EVENT_TIMEOUT);
    let (lines, stderr) = child.finish();
    assert_eq!(status.code(), Some(0), "{lines:?}\n{stderr}");
    assert!(
        lines
            .iter()
            .any(|l| l.trim() == "stopped 15 tasks 1 update TF_STOPPED task TF_STOPPED"),
        "{lines:?}"
    );
    assert_task(&run, task, TaskState::Waiting, 50.0);
    assert_counts(&run, (1, 0, 0), "no task was taken after the stop");
}

#[test]
fn a_deadline_that_leaves_less_than_the_estimate_takes_nothing() {
    let _serial = one_at_a_time();
    let run = new_run(3);
    let mut child = spawn(c_stop_worker(), &["deadline", run.uuid()], &[]);
    let (status, _) = child.wait_exit(EVENT_TIMEOUT);
    let (lines, stderr) = child.finish();
    assert_eq!(status.code(), Some(0), "{}\n{stderr}", lines.join("\n"));
    assert_eq!(
        lines.last().map(String::as_str),
        Some("0 failed"),
        "{lines:?}"
    );
    // Only the one task it was given time for was ever taken.
    assert_counts(&run, (0, 0, 1), "after the deadline checks");
}

#[test]
fn mpirun_sigterm_after_one_rank_is_killed_makes_the_others_hand_back() {
    let _serial = one_at_a_time();
    let bin = scratch().join("stop_worker_mpi");
    let source = root().join("tests/stop/stop_worker.c");
    let mut build = linking(
        "mpicc.openmpi",
        &[
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O1",
            "-pthread",
            "-DSTOP_WORKER_MPI",
        ],
        &[&source],
        &bin,
    );
    build.env("OMPI_CC", c_programs::cc());
    compile("tests/stop/stop_worker.c for MPI", build);

    let run = new_run(6);
    let ranks = 3;
    let s = server();
    let mut child = spawn(
        Path::new("mpirun.openmpi"),
        &[
            "--allow-run-as-root",
            "--oversubscribe",
            "-np",
            &ranks.to_string(),
            "-x",
            "TASKFARM_URL",
            "-x",
            "TASKFARM_USER",
            "-x",
            "TASKFARM_PASSWORD",
            "-x",
            "TASKFARM_STOP_SIGNALS",
            "-x",
            "TASKFARM_UPDATE_INTERVAL",
            bin.to_str().unwrap(),
            "mpi",
            run.uuid(),
        ],
        // Every update sent at once: the SIGKILLed rank's 15 % must be on the
        // server before the kill (a coalesced update waiting in a process
        // killed by SIGKILL is lost, by design; the hand-back of a waiting
        // value by a signal is tested at the default interval elsewhere).
        &[
            ("TASKFARM_STOP_SIGNALS", "TERM"),
            ("TASKFARM_URL", &s.url),
            ("TASKFARM_UPDATE_INTERVAL", "0"),
        ],
    );
    // "rank R pid P computing TASK", one per rank.
    let mut ranks_seen = Vec::new();
    while ranks_seen.len() < ranks {
        let line = child.wait_line("rank ");
        let words: Vec<&str> = line.split_whitespace().collect();
        let rank: usize = words[1].parse().unwrap();
        let pid: i32 = words[3].parse().unwrap();
        let task = task_of(&line, 5);
        ranks_seen.push((rank, pid, task));
    }
    ranks_seen.sort();
    let (_, victim_pid, victim_task) = ranks_seen[1];
    // SAFETY: kill(2) on a rank that this test started.
    assert_eq!(unsafe { libc::kill(victim_pid, libc::SIGKILL) }, 0);
    let (status, took) = child.wait_exit(EVENT_TIMEOUT);
    let (lines, _) = child.finish();
    eprintln!("mpirun ended {took:?} after the SIGKILL of rank 1 ({status:?})");
    assert!(!status.success(), "mpirun must report the killed rank");
    assert!(!lines.iter().any(|l| l == "finished"), "{lines:?}");
    // The server is the witness: a rank's stderr line can be lost while
    // mpirun tears the job down.
    for &(rank, _, task) in &ranks_seen {
        eprintln!("rank {rank}: task {task}: {:?}", run.task(task).unwrap());
    }
    for &(rank, _, task) in &ranks_seen {
        if rank != 1 {
            assert_task(&run, task, TaskState::Waiting, 10.0 * rank as f64 + 5.0);
        }
    }
    // The killed rank could not hand its task back (the journal's job).
    assert_task(&run, victim_task, TaskState::Computing, 15.0);
    assert_counts(&run, (2, 1, 0), "after mpirun");
}

/// Runs `stop_worker loop` under a Slurm job id with a stand-in `squeue`
/// that prints the job's line `4242 LEFT` (and logs its arguments); `extra`
/// adds variables.
/// Returns the program's lines and the arguments squeue was called with.
fn loop_under_slurm(run: &Run, left: &str, extra: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let dir = scratch().join(format!("squeue-{}", CALLS.fetch_add(1, Ordering::SeqCst)));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("calls");
    let script = dir.join("squeue");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\necho '4242 {left}'\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut vars = vec![
        ("PATH", path.as_str()),
        ("SLURM_JOB_ID", "4242"),
        ("TASKFARM_TASK_SECONDS", "60"),
    ];
    vars.extend_from_slice(extra);
    let mut child = spawn(c_stop_worker(), &["loop", run.uuid()], &vars);
    let (status, _) = child.wait_exit(EVENT_TIMEOUT);
    let (lines, stderr) = child.finish();
    assert_eq!(status.code(), Some(0), "{lines:?}\n{stderr}");
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    (lines, calls.lines().map(str::to_owned).collect())
}

#[test]
fn under_slurm_the_job_end_is_asked_of_squeue_once_per_worker() {
    // squeue stands in for Slurm here (the test suite's real Slurm runs the
    // time-limit tests); what is checked is how the library asks and reads.
    let run = new_run(2);
    // 30 s left, TASKFARM_TASK_SECONDS=60: nothing is taken.
    let (lines, calls) = loop_under_slurm(&run, "0:30", &[]);
    assert_eq!(lines[0], "status TF_STOPPED tasks 0", "{lines:?}");
    assert!(
        lines[1].contains("cannot fit a task of 60.0 s (TASKFARM_TASK_SECONDS)"),
        "{lines:?}"
    );
    assert_eq!(calls, ["-h -j 4242 -o %A %L"]);
    assert_counts(&run, (0, 0, 0), "nothing taken with 30 s left");
    // A job past its limit: squeue prints INVALID, no time left.
    let (lines, _) = loop_under_slurm(&run, "INVALID", &[]);
    assert_eq!(lines[0], "status TF_STOPPED tasks 0", "{lines:?}");
    assert_counts(&run, (0, 0, 0), "nothing taken past the limit");
    // An hour left: both tasks, three task calls, one squeue.
    let (lines, calls) = loop_under_slurm(&run, "1:00:00", &[]);
    assert_eq!(lines[0], "status TF_NO_MORE_TASKS tasks 2", "{lines:?}");
    assert_eq!(calls.len(), 1, "squeue asked once per worker: {calls:?}");
}

#[test]
fn slurm_job_end_time_is_honoured_before_squeue() {
    let run = new_run(2);
    let end = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 30
    );
    let (lines, calls) = loop_under_slurm(&run, "1:00:00", &[("SLURM_JOB_END_TIME", &end)]);
    assert_eq!(lines[0], "status TF_STOPPED tasks 0", "{lines:?}");
    assert!(calls.is_empty(), "squeue not asked: {calls:?}");
    assert_counts(&run, (0, 0, 0), "nothing taken with 30 s left");
    // A job past its limit: squeue prints INVALID, no time left.
    let (lines, _) = loop_under_slurm(&run, "INVALID", &[]);
    assert_eq!(lines[0], "status TF_STOPPED tasks 0", "{lines:?}");
    assert_counts(&run, (0, 0, 0), "nothing taken past the limit");
}

#[test]
fn a_forked_child_without_the_watcher_dies_of_the_signal_as_without_stop_signals() {
    let _serial = one_at_a_time();
    let mut parent = spawn(c_stop_worker(), &["fork", "-"], &[]);
    let line = parent.wait_line("child ");
    let child: i32 = line["child ".len()..].parse().unwrap();
    // SAFETY: kill(2) on the grandchild this test's program made.
    assert_eq!(unsafe { libc::kill(child, libc::SIGTERM) }, 0);
    let (status, _) = parent.wait_exit(EVENT_TIMEOUT);
    let (lines, stderr) = parent.finish();
    assert_eq!(status.code(), Some(0), "{lines:?}\n{stderr}");
    assert!(
        lines.iter().any(|l| l == "child ended by signal 15"),
        "{lines:?}"
    );
}
