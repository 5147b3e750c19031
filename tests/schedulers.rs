//! The wall time and the reaper under PBS, Grid Engine, LSF and Flux, with
//! each scheduler's commands on `PATH` replaced by the fakes of
//! `tests/fakes/` (as HyperQueue tests its PBS and Slurm support): small
//! scripts that replay recorded answers, the same ones the parsers' unit
//! tests read, chosen per test by `TASKFARM_FAKE_PBS` and the like. The
//! server is real (PostgreSQL + gunicorn), the workers are C programs
//! (tests/stop/stop_worker.c, tests/reap/worker.c) and the reaper is the
//! real `taskfarm reap`.
//!
//! For each scheduler:
//! 1. wall time: a task is refused when the time left the scheduler gives
//!    cannot fit it (`TASKFARM_TASK_SECONDS`), taken when it can, and the
//!    scheduler is asked once per worker; garbage, a job without a limit and
//!    a command that never answers refuse nothing, with one `TASKFARM_LOG`
//!    line that says why, and the hanging command costs the time limit, not
//!    more;
//! 2. the journal of a worker started in such a job records the job
//!    (`jobs`), as the scheduler names it;
//! 3. the reaper's verdicts on that journal, seen from another host: a job
//!    the scheduler shows running is alive (its task stays), one in a final
//!    state or unknown to the scheduler is gone (its task is given back), a
//!    garbled or hanging answer is unknown (the heartbeat decides: fresh,
//!    so alive), after the time limit at most.
//!
//! The four schedulers are four tests, which run at once: every variable is
//! set on the child processes, never in this process.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::c_programs::{self, root};
use common::server::{Db, TaskfarmServer};
use serde_json::Value;
use taskfarm_worker::internal::clock::unix_now;
use taskfarm_worker::internal::scheduler::{JobId, Scheduler, STATE_LIMIT, TIME_LEFT_LIMIT};
use taskfarm_worker::internal::worker::journal::{self, Record};
use taskfarm_worker::internal::{Run, TaskState};

/// Overall deadline of any child process.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(180);

/// Every variable by which a scheduler names a job, removed from the
/// children's environment before a test sets its own.
const JOB_VARIABLES: &[&str] = &[
    "SLURM_JOB_ID",
    "SLURM_JOBID",
    "SLURM_JOB_END_TIME",
    "SLURM_STEP_ID",
    "PBS_JOBID",
    "JOB_ID",
    "SGE_TASK_ID",
    "LSB_JOBID",
    "LSB_JOBINDEX",
    "FLUX_JOB_ID",
    "FLUX_URI",
];

/// A scheduler as the fakes play it.
struct Fake {
    scheduler: Scheduler,
    /// The directory of its fake commands, under tests/fakes/.
    dir: &'static str,
    /// The variable that names the recorded answer.
    variable: &'static str,
    /// The job's environment.
    env: &'static [(&'static str, &'static str)],
    /// The job as the journal records it.
    job: &'static str,
    instance: Option<&'static str>,
    /// The command lines of one time-left question.
    time_left_calls: &'static [&'static str],
    /// The command line of one state question.
    state_call: &'static str,
    /// Answers whose time left refuses a task of the given seconds.
    refusing: &'static [(&'static str, u32)],
    /// Answers with a time left over 3000 s (60 s tasks are taken).
    fitting: &'static [&'static str],
    /// Answers that give no deadline (nothing refused), with a word of the
    /// one log line that says why.
    no_deadline: &'static [(&'static str, &'static str)],
    /// Answers of a job that has ended or that the scheduler does not know.
    gone: &'static [&'static str],
    /// Answers of a running job.
    alive: &'static [&'static str],
    /// Answers of a suspended job (alive whatever its heartbeat).
    suspended: &'static [&'static str],
    /// Answers the reaper cannot read (a hanging command for one scheduler
    /// only: the time limit is the same code for all, and costs 30 s).
    garbled: &'static [&'static str],
}

const PBS: Fake = Fake {
    scheduler: Scheduler::Pbs,
    dir: "pbs",
    variable: "TASKFARM_FAKE_PBS",
    env: &[("PBS_JOBID", "1.vbox")],
    job: "1.vbox",
    instance: None,
    time_left_calls: &["qstat -f -F json 1.vbox"],
    state_call: "qstat -x -f -F json 1.vbox",
    // running: 3000 s left; nearly-over: 30 s.
    refusing: &[("running", 4000), ("nearly-over", 60)],
    fitting: &["running"],
    no_deadline: &[
        ("garbage", "no JSON"),
        ("invalid", "not a duration"),
        ("unlimited", "no time limit"),
        ("hang", "took more than"),
    ],
    gone: &["finished", "unknown", "history"],
    alive: &["running"],
    suspended: &["suspended"],
    garbled: &["garbage", "hang"],
};

const GRID_ENGINE: Fake = Fake {
    scheduler: Scheduler::GridEngine,
    dir: "gridengine",
    variable: "TASKFARM_FAKE_GRIDENGINE",
    env: &[("JOB_ID", "7448711"), ("SGE_TASK_ID", "undefined")],
    job: "7448711",
    instance: None,
    time_left_calls: &["qstat -j 7448711", "qstat -s rs"],
    state_call: "qstat -j 7448711",
    // running: h_rt=3600, started 600 s ago (TASKFARM_FAKE_STARTED_AGO).
    refusing: &[("running", 4000)],
    fitting: &["running"],
    no_deadline: &[
        ("garbage", "job_number"),
        ("unlimited", "no time limit"),
        ("gone", "do not exist"),
        ("hang", "took more than"),
    ],
    gone: &["gone"],
    alive: &["running"],
    suspended: &[],
    garbled: &["garbage"],
};

const LSF: Fake = Fake {
    scheduler: Scheduler::Lsf,
    dir: "lsf",
    variable: "TASKFARM_FAKE_LSF",
    env: &[("LSB_JOBID", "111"), ("LSB_JOBINDEX", "0")],
    job: "111",
    instance: None,
    time_left_calls: &["bjobs -noheader -o stat time_left delimiter='|' 111"],
    state_call: "bjobs -noheader -o stat time_left delimiter='|' 111",
    // running: 50 minutes left (0:50 L).
    refusing: &[("running", 4000)],
    fitting: &["running"],
    no_deadline: &[
        ("garbage", "STAT|TIME_LEFT"),
        ("estimate", "estimate"),
        ("unlimited", "no time limit"),
        ("hang", "took more than"),
    ],
    gone: &["gone", "done"],
    alive: &["running"],
    suspended: &["suspended"],
    garbled: &["garbage"],
};

const FLUX: Fake = Fake {
    scheduler: Scheduler::Flux,
    dir: "flux",
    variable: "TASKFARM_FAKE_FLUX",
    env: &[
        ("FLUX_JOB_ID", "ƒ2Jm5fqM7"),
        ("FLUX_URI", "local:///tmp/flux-test/local-0"),
    ],
    job: "ƒ2Jm5fqM7",
    instance: Some("local:///tmp/flux-test/local-0"),
    time_left_calls: &["flux job timeleft (FLUX_URI=local:///tmp/flux-test/local-0)"],
    state_call: "flux jobs -n -o {state} ƒ2Jm5fqM7 (FLUX_URI=local:///tmp/flux-test/local-0)",
    // running: 3000 s left.
    refusing: &[("running", 4000)],
    fitting: &["running"],
    no_deadline: &[
        ("garbage", "not a number"),
        ("unlimited", "no time limit"),
        ("hang", "took more than"),
    ],
    gone: &["gone", "inactive"],
    alive: &["running"],
    suspended: &[],
    garbled: &["garbage"],
};

#[test]
fn pbs() {
    wall_time(&PBS);
    reaper(&PBS);
}

#[test]
fn grid_engine() {
    wall_time(&GRID_ENGINE);
    reaper(&GRID_ENGINE);
}

#[test]
fn lsf() {
    wall_time(&LSF);
    reaper(&LSF);
}

#[test]
fn flux() {
    wall_time(&FLUX);
    reaper(&FLUX);
}

// ---------------------------------------------------------------------------
// The wall time.

/// What one `stop_worker loop` printed, and what the fakes were asked.
struct LoopOutcome {
    /// "status TF_... tasks K".
    status: String,
    /// "last_error ...".
    last_error: String,
    /// The `TASKFARM_LOG` lines about the deadline.
    deadline_lines: Vec<String>,
    /// The fake commands' calls.
    calls: Vec<String>,
    took: Duration,
}

/// Runs `stop_worker loop` on a new run of two tasks, in `fake`'s job, its
/// fakes first on PATH answering `answer`, with `TASKFARM_TASK_SECONDS`.
fn loop_in_job(fake: &Fake, answer: &str, task_seconds: u32) -> (LoopOutcome, Arc<Run>) {
    let run = new_run(2);
    let scratch = scratch(&format!("{}-{answer}-{task_seconds}", fake.dir));
    let log = scratch.join("calls");
    let mut command = Command::new(c_programs::stop_worker());
    command.args(["loop", run.uuid()]);
    in_job(&mut command, fake, answer, &log);
    command
        .env("TASKFARM_TASK_SECONDS", task_seconds.to_string())
        .env("TASKFARM_LOG", "debug");
    let started = Instant::now();
    let (status, stdout, stderr) = run_to_end(command);
    let took = started.elapsed();
    eprintln!(
        "{} {answer}, tasks of {task_seconds} s: {took:?}",
        fake.scheduler.name()
    );
    assert!(status.success(), "{stdout}\n{stderr}");
    let mut lines = stdout.lines();
    let outcome = LoopOutcome {
        status: lines.next().unwrap_or_default().to_owned(),
        last_error: lines.next().unwrap_or_default().to_owned(),
        deadline_lines: stderr
            .lines()
            .filter(|l| {
                l.starts_with("taskfarm: deadline") || l.starts_with("taskfarm: no deadline")
            })
            .map(str::to_owned)
            .collect(),
        calls: calls(&log),
        took,
    };
    (outcome, run)
}

fn wall_time(fake: &Fake) {
    let name = fake.scheduler.name();
    for &(answer, seconds) in fake.refusing {
        let (out, run) = loop_in_job(fake, answer, seconds);
        let what = format!("{name} {answer}, tasks of {seconds} s");
        assert_eq!(out.status, "status TF_STOPPED tasks 0", "{what}");
        assert!(
            out.last_error.contains(&format!(
                "cannot fit a task of {seconds}.0 s (TASKFARM_TASK_SECONDS)"
            )),
            "{what}: {}",
            out.last_error
        );
        assert_eq!(out.calls, fake.time_left_calls, "{what}");
        assert_eq!(
            out.deadline_lines.len(),
            1,
            "{what}: {:?}",
            out.deadline_lines
        );
        assert!(
            out.deadline_lines[0].contains(&format!("{name} job {}", fake.job)),
            "{what}: {:?}",
            out.deadline_lines
        );
        // The server counts no task that was never handed out.
        assert_eq!(counts(&run), (0, 0, 0), "{what}: nothing taken");
    }
    for &answer in fake.fitting {
        let (out, run) = loop_in_job(fake, answer, 60);
        let what = format!("{name} {answer}, tasks of 60 s");
        assert_eq!(out.status, "status TF_NO_MORE_TASKS tasks 2", "{what}");
        // Three task calls, one question to the scheduler.
        assert_eq!(out.calls, fake.time_left_calls, "{what}: asked once");
        assert!(
            out.deadline_lines.len() == 1
                && out.deadline_lines[0].starts_with("taskfarm: deadline"),
            "{what}: {:?}",
            out.deadline_lines
        );
        assert_eq!(counts(&run), (0, 0, 2), "{what}");
    }
    for &(answer, why) in fake.no_deadline {
        // Tasks longer than any time left a fake gives: only no deadline
        // takes them.
        let (out, run) = loop_in_job(fake, answer, 100_000);
        let what = format!("{name} {answer}");
        assert_eq!(out.status, "status TF_NO_MORE_TASKS tasks 2", "{what}");
        assert_eq!(counts(&run), (0, 0, 2), "{what}");
        assert_eq!(
            out.deadline_lines.len(),
            1,
            "{what}: {:?}",
            out.deadline_lines
        );
        let line = &out.deadline_lines[0];
        assert!(
            line.starts_with("taskfarm: no deadline: "),
            "{what}: {line}"
        );
        assert!(line.contains(why), "{what}: {line}");
        if answer == "hang" {
            // Killed at the limit: the worker waited that long, and not
            // much longer (the first command that hangs ends the question).
            assert!(out.took >= TIME_LEFT_LIMIT, "{what}: {:?}", out.took);
            assert!(
                out.took < TIME_LEFT_LIMIT + Duration::from_secs(30),
                "{what}: {:?}",
                out.took
            );
            assert_eq!(out.calls, fake.time_left_calls[..1], "{what}");
        }
    }
}

// ---------------------------------------------------------------------------
// The journal and the reaper.

fn reaper(fake: &Fake) {
    let name = fake.scheduler.name();
    let answers: Vec<(&str, &str)> = fake
        .alive
        .iter()
        .map(|a| (*a, "alive"))
        .chain(fake.suspended.iter().map(|a| (*a, "suspended")))
        .chain(fake.gone.iter().map(|a| (*a, "gone")))
        .chain(fake.garbled.iter().map(|a| (*a, "unknown")))
        .collect();
    let run = new_run(answers.len() as i64);
    // The workers of this process that hold the cases' tasks, until the end.
    let mut holders = Vec::new();
    let dir = scratch(&format!("{}-journals", fake.dir));

    // A worker started in the job records it in its journal.
    let log = dir.join("worker-calls");
    let mut command = Command::new(c_programs::reap_worker());
    command
        .arg(run.uuid())
        .env("TASKFARM_JOURNAL", &dir)
        .env("TASKFARM_JOURNAL_HEARTBEAT", "0.2")
        .env("REAP_TEST_HOLD_AFTER", "0");
    in_job(&mut command, fake, "running", &log);
    let mut worker = HoldingWorker::start(command);
    let first_task = worker.holding();
    let record = wait_journal(&dir, run.uuid(), worker.child.id());
    let expected = JobId {
        scheduler: fake.scheduler,
        job: fake.job.into(),
        task: None,
        instance: fake.instance.map(Into::into),
    };
    assert_eq!(record.jobs, vec![expected], "{name}: the journal's jobs");
    worker.kill();
    // The killed worker's task stays computing until the reaper below: its
    // record seen from another host says nothing about its process.
    let mut record = Record {
        host: "node-elsewhere".into(),
        boot_id: None,
        ..record
    };

    for (index, (answer, verdict)) in answers.iter().enumerate() {
        let what = format!("{name} {answer}");
        // Each case holds a task of its own: the first the killed worker's,
        // then one taken here and left computing.
        let task = if index == 0 {
            first_task
        } else {
            let mut holder = taskfarm_worker::internal::Worker::register(run.clone()).unwrap();
            let task = holder.task().unwrap().expect("a task left");
            holders.push(holder);
            task
        };
        let journals = scratch(&format!("{}-reap-{answer}", fake.dir));
        record.worker = format!("case{index:02}");
        record.task = Some(task);
        record.heartbeat = unix_now();
        std::fs::write(
            journals.join(journal::file_name(run.uuid(), &record.worker)),
            serde_json::to_string_pretty(&record).unwrap(),
        )
        .unwrap();
        let log = journals.join("calls");
        let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
        command
            .args(["reap", run.uuid(), "--journal"])
            .arg(&journals)
            .args(["--stale", "600", "--json"])
            .envs(server().credentials_env());
        in_job(&mut command, fake, answer, &log);
        // The reaper runs outside the job: the job variables are removed.
        for variable in JOB_VARIABLES {
            command.env_remove(variable);
        }
        let started = Instant::now();
        let (status, stdout, stderr) = run_to_end(command);
        let took = started.elapsed();
        eprintln!("{what}: taskfarm reap: {took:?}");
        assert!(status.success(), "{what}: {stdout}\n{stderr}");
        let pass: Value = serde_json::from_str(stdout.lines().next().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{what}: {e}: {stdout}"));
        let seen = &pass["workers"][0];
        let reason = seen["reason"].as_str().unwrap_or_default();
        assert_eq!(calls(&log), [fake.state_call], "{what}");
        match *verdict {
            "alive" => {
                assert_eq!(seen["verdict"], "alive", "{what}: {seen}");
                assert!(reason.contains("is running"), "{what}: {reason}");
                assert_eq!(task_state(&run, task), TaskState::Computing, "{what}");
            }
            "suspended" => {
                // Said by the scheduler, not the heartbeat's first look.
                assert_eq!(seen["verdict"], "alive", "{what}: {seen}");
                assert!(
                    reason.contains("suspended") || reason.contains("SUSP"),
                    "{what}: {reason}"
                );
                assert!(!reason.contains("heartbeat"), "{what}: {reason}");
                assert_eq!(task_state(&run, task), TaskState::Computing, "{what}");
            }
            "gone" => {
                assert_eq!(seen["verdict"], "gone", "{what}: {seen}");
                assert!(!reason.contains("heartbeat"), "{what}: {reason}");
                assert_eq!(task_state(&run, task), TaskState::Waiting, "{what}");
            }
            _ => {
                // Unknown: the heartbeat decides (the reaper's first look
                // at it proves nothing), and the reason says why the
                // scheduler could not.
                assert_eq!(seen["verdict"], "alive", "{what}: {seen}");
                assert!(
                    reason.starts_with("first look at its heartbeat"),
                    "{what}: {reason}"
                );
                assert!(reason.contains(&format!("{name}: ")), "{what}: {reason}");
                assert_eq!(task_state(&run, task), TaskState::Computing, "{what}");
                if *answer == "hang" {
                    assert!(reason.contains("took more than"), "{what}: {reason}");
                    assert!(took >= STATE_LIMIT, "{what}: {took:?}");
                    assert!(
                        took < STATE_LIMIT + Duration::from_secs(30),
                        "{what}: {took:?}"
                    );
                }
            }
        }
    }
    drop(holders);
}

/// A worker of tests/reap/worker.c that takes a task and holds it.
struct HoldingWorker {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl HoldingWorker {
    fn start(mut command: Command) -> HoldingWorker {
        command.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = command.spawn().expect("start the C worker");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        HoldingWorker { child, stdout }
    }

    /// The task it holds, from its "holding N" line.
    fn holding(&mut self) -> i64 {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim()
            .strip_prefix("holding ")
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("the worker printed {line:?}, not holding N"))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HoldingWorker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The journal of process `pid`, once written.
fn wait_journal(dir: &Path, run: &str, pid: u32) -> Record {
    let end = Instant::now() + PROCESS_TIMEOUT;
    loop {
        let found = std::fs::read_dir(dir).unwrap().find_map(|entry| {
            let path = entry.ok()?.path();
            let record = journal::read_record(&path, run).ok()?;
            (record.pid == pid).then_some(record)
        });
        if let Some(record) = found {
            return record;
        }
        assert!(
            Instant::now() < end,
            "no journal of worker {pid} in {dir:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// What the tests share.

fn server() -> &'static TaskfarmServer {
    static SERVER: OnceLock<TaskfarmServer> = OnceLock::new();
    SERVER.get_or_init(|| TaskfarmServer::start_with(Db::Postgresql))
}

fn new_run(tasks: i64) -> Arc<Run> {
    Arc::new(Run::create(&server().settings(), tasks).unwrap())
}

/// (waiting, computing, done) of `run`.
fn counts(run: &Run) -> (i64, i64, i64) {
    let s = run.status().unwrap();
    (s.num_waiting, s.num_computing, s.num_done)
}

fn task_state(run: &Run, task: i64) -> TaskState {
    run.task(task).unwrap().status
}

/// A fresh directory for one case, under target/tmp/.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("schedulers-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Puts `command` in `fake`'s job: no other job's variables, the job's own,
/// the server's credentials, the fakes first on PATH answering `answer`,
/// their calls logged to `log`.
fn in_job(command: &mut Command, fake: &Fake, answer: &str, log: &Path) {
    for variable in JOB_VARIABLES.iter().chain(&[
        "TASKFARM_DEADLINE",
        "TASKFARM_TASK_SECONDS",
        "TASKFARM_LOG",
        "TASKFARM_STOP_SIGNALS",
    ]) {
        command.env_remove(variable);
    }
    let fakes = root().join("tests/fakes").join(fake.dir);
    let path = format!(
        "{}:{}",
        fakes.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    command
        .envs(server().credentials_env())
        .envs(fake.env.iter().copied())
        .env("PATH", path)
        .env(fake.variable, answer)
        .env("TASKFARM_FAKE_LOG", log)
        .env("TASKFARM_FAKE_STARTED_AGO", "600")
        .env("TASKFARM_RETRIES", "3")
        .env("TASKFARM_BACKOFF", "0.05");
}

/// The command lines the fakes logged.
fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs `command` to its end (killed after [`PROCESS_TIMEOUT`]): its status,
/// stdout and stderr.
fn run_to_end(mut command: Command) -> (std::process::ExitStatus, String, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let end = Instant::now() + PROCESS_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not end within {PROCESS_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, stdout.join().unwrap(), stderr.join().unwrap())
}
