//! Many workers at once (docs/scale.md), against the real server: 1 and 2
//! on one PostgreSQL + gunicorn server (4 sync workers), started in that mode
//! whatever `TASKFARM_TEST_DB` says; 3 and 4 on the server `TASKFARM_TEST_DB`
//! names, behind a recording proxy.
//!
//! 1. N worker PROCESSES (tests/concurrency/worker.c, built here with `cc`
//!    against include/ and the release library of `make build`) started at
//!    once on a run of N tasks with one shared token (`TASKFARM_TOKEN`), as
//!    the elements of a Slurm array of N say they are
//!    (`SLURM_ARRAY_TASK_COUNT`, `SLURM_ARRAY_TASK_ID`: the default start
//!    spread): every task done exactly once, every worker exits 0, no 5xx or
//!    traceback in the server's log.
//! 2. The same with the server SIGKILLed mid-run and started again: the
//!    first tenth of the array holds its first task half-way (`--hold`)
//!    until the server is dead, so the kill comes while they are at work,
//!    whatever the machine's speed; the others work freely, and the server
//!    is killed once a third of the tasks are done. The held workers are
//!    then let go, and the server is started again only once each of them
//!    has said on stderr that it is retrying (it met the dead server): the
//!    workers ride the outage out with their (jittered) retries. A task
//!    whose hand-out answer died with the server stays `computing`
//!    (docs/reliability.md): once the workers are done, the test restarts
//!    the unfinished tasks and one more worker does them.
//! 3. The spread happens: 40 processes of an array of 40 with
//!    `TASKFARM_START_SPREAD=4`, each opening a run of its own (unknown to
//!    the server: 404) through a recording proxy: each first request arrives
//!    no sooner than its share of the window (`4·i/40` s) after its process
//!    started.
//! 4. The jitter happens: 48 processes whose every request the proxy answers
//!    503, each with 5 retries at backoff 0.5 s (steps 1, 2, 4, 8 s after
//!    the first, immediate, retry), and 48 more without jitter
//!    (`TASKFARM_RETRY_JITTER=none`, the control) beside them. Without
//!    jitter no gap between two attempts is shorter than its step; with
//!    it, about a quarter of the gaps are shorter than half their step (a
//!    sleep can be made longer by a loaded machine, never shorter), and the
//!    gaps average about the step.
//!
//! Sizes: `TASKFARM_SCALE_WORKERS` processes (default 300, the issue's
//! size), one task each: a task per process is what "every task done once"
//! needs (300 processes asking at once for 300 tasks; a task handed out
//! twice shows as one done twice and another never), and more tasks would
//! only measure the server's throughput. The large figures (1,000 processes,
//! the server's errors, the retry wave) are the benchmark's section f
//! (BENCHMARKS.md). Worker logs stay in target/tmp/scale-<pid>/ until a
//! later run of this test binary.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::c_abi::{borrowed, create_run, last_error, run_status, run_uuid};
use common::c_programs;
use common::jobs::{self, assert_each_task_once};
use common::recording_proxy::{Mode, RecordingProxy};
use common::server::TaskfarmServer;
use taskfarm_worker::ffi::status::tf_status::TF_OK;
use taskfarm_worker::ffi::taskfarm::*;

/// How long the workers of one test may take in all.
const DEADLINE: Duration = Duration::from_secs(300);
/// A worker that writes this on stderr met a failed request and retries (the
/// library's line at the start of a retry series).
const RETRYING: &str = "; retrying up to ";

fn workers() -> usize {
    match std::env::var("TASKFARM_SCALE_WORKERS") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse() {
            Ok(n) if n >= 10 => n,
            _ => panic!("TASKFARM_SCALE_WORKERS={v:?} is not a number of at least 10"),
        },
        _ => 300,
    }
}

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| jobs::scratch("scale"))
}

/// tests/concurrency/worker.c, built once per test process.
fn c_worker() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = scratch().join("worker");
        c_programs::build("tests/concurrency/worker.c", &bin);
        bin
    })
}

/// The environment every process of these tests starts from: no proxy, no
/// credentials, no settings of the caller's.
fn clean(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("TASKFARM_")
            || name.starts_with("SLURM_")
            || name.starts_with("OMPI_")
            || name.starts_with("PMI")
            || name.to_ascii_lowercase().ends_with("_proxy")
        {
            command.env_remove(name);
        }
    }
    command
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
}

/// One farm of hundreds of processes at a time in this test binary (its
/// tests run in parallel threads): two at once would only measure the
/// machine. Tests 1 and 2 share this binary's PostgreSQL server
/// (`jobs::pg_server`), one after the other.
static ONE_FARM: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_farm() -> std::sync::MutexGuard<'static, ()> {
    ONE_FARM.lock().unwrap_or_else(|e| e.into_inner())
}

/// The worker processes of a run: elements `from..to` of an array of `n`.
struct Farm {
    children: Vec<(usize, Child)>,
    tag: &'static str,
}

/// How the workers of a [`Farm`] are started.
#[derive(Clone, Copy)]
struct FarmSpec<'a> {
    url: &'a str,
    token: &'a str,
    run: &'a str,
    /// The log files' prefix.
    tag: &'static str,
    /// The size of the array.
    n: usize,
    /// Extra arguments of worker.c.
    args: &'a [&'a str],
}

impl Farm {
    fn start(spec: &FarmSpec, elements: std::ops::Range<usize>) -> Farm {
        let children = elements
            .map(|i| {
                let out = File::create(log(spec.tag, i, "out")).unwrap();
                let err = File::create(log(spec.tag, i, "err")).unwrap();
                let child = clean(&mut Command::new(c_worker()))
                    .args(spec.args)
                    .args(["--again", "20", spec.run])
                    .env("TASKFARM_URL", spec.url)
                    .env("TASKFARM_TOKEN", spec.token)
                    .env("SLURM_ARRAY_TASK_COUNT", spec.n.to_string())
                    .env("SLURM_ARRAY_TASK_MIN", "0")
                    .env("SLURM_ARRAY_TASK_ID", i.to_string())
                    .stdout(out)
                    .stderr(err)
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start worker {i}: {e}"));
                (i, child)
            })
            .collect();
        Farm {
            children,
            tag: spec.tag,
        }
    }

    /// The length of each worker's log `ext` now, for [`wait_for_line`](Self::wait_for_line).
    fn log_lengths(&self, ext: &str) -> Vec<usize> {
        let length = |i: usize| read(&log(self.tag, i, ext)).len();
        self.children.iter().map(|(i, _)| length(*i)).collect()
    }

    /// Waits until every worker has written a line containing `what` to its
    /// log `ext` (`out` or `err`) after the first `since` bytes (one length
    /// per worker, [`log_lengths`](Self::log_lengths)), failing if one exits
    /// first or the deadline passes.
    fn wait_for_line(&mut self, ext: &str, what: &str, since: &[usize], server: &TaskfarmServer) {
        let deadline = Instant::now() + DEADLINE;
        for ((i, child), &from) in self.children.iter_mut().zip(since) {
            let path = log(self.tag, *i, ext);
            while !read(&path)
                .get(from..)
                .is_some_and(|new| new.contains(what))
            {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!(
                        "worker {i} ended with {status} before it wrote {what:?}:\n{}\n{}",
                        read(&log(self.tag, *i, "err")),
                        server.log_tail(20)
                    );
                }
                assert!(Instant::now() < deadline, "worker {i} never wrote {what:?}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Waits for every worker; asserts that each exited 0 and wrote nothing
    /// on stderr but the library's retry-series lines; returns the tasks each one did.
    fn finish(mut self, server: &TaskfarmServer) -> BTreeMap<String, Vec<i64>> {
        let deadline = Instant::now() + DEADLINE;
        let mut done = BTreeMap::new();
        for (i, child) in self.children.iter_mut() {
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                assert!(Instant::now() < deadline, "worker {i} still runs");
                std::thread::sleep(Duration::from_millis(20));
            };
            let out = read(&log(self.tag, *i, "out"));
            let err = read(&log(self.tag, *i, "err"));
            assert!(
                status.success() && c_programs::unexpected_stderr(&err).is_empty(),
                "worker {i} ended with {status}:\n{err}\n{}",
                server.log_tail(20)
            );
            done.insert(format!("{}-{i:03}", self.tag), tasks_of(&out));
        }
        self.children.clear();
        done
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The log `ext` (`out` or `err`) of worker `i` of the farm `tag`.
fn log(tag: &str, i: usize, ext: &str) -> PathBuf {
    scratch().join(format!("{tag}-{i:03}.{ext}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The "task N" lines of a worker, checked against its "finished K" line.
fn tasks_of(stdout: &str) -> Vec<i64> {
    let tasks: Vec<i64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("task ")?.trim().parse().ok())
        .collect();
    let finished = stdout.lines().find_map(|l| l.strip_prefix("finished "));
    assert_eq!(
        finished.and_then(|k| k.trim().parse::<usize>().ok()),
        Some(tasks.len()),
        "a worker's count disagrees with its log:\n{stdout}"
    );
    tasks
}

/// A run of `n` tasks and the token of the handle that made it.
fn run_and_token(server: &TaskfarmServer, n: usize) -> (*mut tf_taskfarm, String, String) {
    let tf = create_run(server, n as i64);
    let token = borrowed(tf_taskfarm_token(tf));
    (tf, run_uuid(tf), token)
}

fn status(tf: *mut tf_taskfarm) -> tf_run_status {
    run_status(tf).unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts that every task of the run was done once and that the server
/// counts them all done.
fn assert_run_done(tf: *mut tf_taskfarm, tasks: usize, done: &BTreeMap<String, Vec<i64>>) {
    assert_each_task_once(tasks as i64, done);
    let s = status(tf);
    assert_eq!(
        (s.num_done, s.num_waiting, s.num_computing),
        (tasks as i64, 0, 0)
    );
}

#[test]
fn many_workers_with_a_shared_token_do_every_task_once() {
    let _one = one_farm();
    let test = Instant::now();
    let n = workers();
    c_worker();
    let server = jobs::pg_server();
    let (tf, run, token) = run_and_token(server, n);
    let spec = FarmSpec {
        url: &server.url,
        token: &token,
        run: &run,
        tag: "storm",
        n,
        args: &[],
    };
    let started = Instant::now();
    let done = Farm::start(&spec, 0..n).finish(server);
    let took = started.elapsed();
    assert_run_done(tf, n, &done);
    server.assert_no_server_errors();
    eprintln!(
        "scale: {n} worker processes did {n} tasks in {:.1} s (the test: {:.1} s)",
        took.as_secs_f64(),
        test.elapsed().as_secs_f64()
    );
    tf_taskfarm_free(tf);
}

#[test]
fn many_workers_ride_out_a_server_killed_and_restarted_mid_run() {
    let _one = one_farm();
    let test = Instant::now();
    let n = workers();
    let held = n / 10;
    c_worker();
    let server = jobs::pg_server();
    let (tf, run, token) = run_and_token(server, n);
    let gate = scratch().join("restart-gate");
    let _ = std::fs::remove_file(&gate);
    let hold = ["--hold", gate.to_str().unwrap()];
    let spec = FarmSpec {
        url: &server.url,
        token: &token,
        run: &run,
        tag: "restart",
        n,
        args: &[],
    };
    let held_spec = FarmSpec {
        tag: "restart-held",
        args: &hold,
        ..spec
    };
    // The first tenth of the array takes a task each and holds it half-way;
    // then the rest start at once.
    let mut holding = Farm::start(&held_spec, 0..held);
    holding.wait_for_line("out", "holding task", &vec![0; held], server);
    let free = Farm::start(&spec, held..n);

    // Killed once a third of the tasks are done: an event, not a guessed
    // moment; the held tasks are not done yet.
    let deadline = Instant::now() + DEADLINE;
    while status(tf).num_done < n as i64 / 3 {
        assert!(
            Instant::now() < deadline,
            "a third of the tasks never got done"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = server.current_pid();
    // SAFETY: signals the server's own process group (the harness made it a
    // group leader); no memory is involved.
    assert_eq!(unsafe { libc::kill(-pid, libc::SIGKILL) }, 0);
    let killed = Instant::now();
    let before = holding.log_lengths("err");
    File::create(&gate).unwrap();
    holding.wait_for_line("err", RETRYING, &before, server);
    server.restart(None);
    let outage = killed.elapsed();

    let mut done = holding.finish(server);
    done.extend(free.finish(server));
    let back = killed.elapsed();
    // Hand-outs whose answer died with the server: restarted, then done by
    // one more worker.
    let s = status(tf);
    let lost = n as i64 - s.num_done;
    if lost > 0 {
        assert_eq!(s.num_computing, lost, "{s:?}");
        assert_eq!(tf_taskfarm_restart(tf, false), TF_OK, "{}", last_error());
        let last = FarmSpec {
            tag: "restart-last",
            n: 1,
            ..spec
        };
        done.extend(Farm::start(&last, 0..1).finish(server));
    }
    assert_run_done(tf, n, &done);
    server.assert_no_server_errors();
    eprintln!(
        "scale: {n} workers rode out a server outage of {:.1} s ({held} of them held a task \
         through it); all done {:.1} s after the kill; {lost} hand-out(s) lost (the test: {:.1} s)",
        outage.as_secs_f64(),
        back.as_secs_f64(),
        test.elapsed().as_secs_f64()
    );
    tf_taskfarm_free(tf);
}

/// `taskfarm info UUID` through `url` with `token`, as element `i` of an
/// array of `n`, with `env` besides.
fn status_command(url: &str, token: &str, run: &str, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
    clean(&mut command)
        .args(["-b", url, "info", run])
        .env("TASKFARM_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

#[test]
fn each_process_of_an_array_sends_its_first_request_after_its_share_of_the_spread() {
    const N: usize = 40;
    const WINDOW: f64 = 4.0;
    let test = Instant::now();
    let server = TaskfarmServer::start();
    let proxy = RecordingProxy::start(&server);
    let (tf, _, token) = run_and_token(&server, 1);
    // A run of its own per process, which the server does not know: each
    // process's first request (its GET of the run) is told apart at the
    // proxy by the path, and answered 404 at once (nothing to create).
    let runs: Vec<String> = (0..N).map(|_| uuid_hex()).collect();
    let mut children = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let env = [
            ("TASKFARM_START_SPREAD", WINDOW.to_string()),
            ("SLURM_ARRAY_TASK_COUNT", N.to_string()),
            ("SLURM_ARRAY_TASK_ID", i.to_string()),
        ];
        let spawned = Instant::now();
        let child = status_command(&proxy.url, &token, run, &env)
            .spawn()
            .unwrap();
        children.push((spawned, child));
    }
    for (i, (_, child)) in children.iter_mut().enumerate() {
        let (status, err) = wait_output(child);
        assert!(
            !status.success() && err.contains("404"),
            "process {i}: {status}: {err}"
        );
    }
    let mut late = Vec::new();
    let mut delays = Vec::new();
    for (i, (run, (spawned, _))) in runs.iter().zip(&children).enumerate() {
        let first = proxy
            .records_of(run)
            .first()
            .unwrap_or_else(|| panic!("process {i} sent nothing"))
            .at;
        let delay = first.duration_since(*spawned).as_secs_f64();
        let share = WINDOW * i as f64 / N as f64;
        if delay < share {
            late.push(format!(
                "process {i}: first request {delay:.2} s after its start, share {share:.2} s"
            ));
        }
        delays.push(delay);
    }
    assert!(
        late.is_empty(),
        "first requests before their share:\n{}",
        late.join("\n")
    );
    eprintln!(
        "spread: the first requests of {N} processes arrived {:.2} s to {:.2} s after their start \
         (shares 0 to {:.2} s; the test: {:.1} s)",
        delays.iter().copied().fold(f64::INFINITY, f64::min),
        delays.iter().copied().fold(0.0, f64::max),
        WINDOW * (N - 1) as f64 / N as f64,
        test.elapsed().as_secs_f64()
    );
    tf_taskfarm_free(tf);
}

/// Waits for a child with its stderr piped; (status, stderr).
fn wait_output(child: &mut Child) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut err);
    }
    (child.wait().unwrap(), err)
}

/// The backoff factor of the jitter test: steps of 1, 2, 4 and 8 s after
/// the first, immediate, retry, long beside a loaded machine's delays (a
/// quarter of a second at load 46 on 2 cores), which lengthen the short
/// gaps and so lower the share of them below half their step.
const JITTER_BACKOFF: f64 = 0.5;

/// `n` processes whose requests all get 503, started with `env`: (the run
/// each one asks for, the process).
fn failing_processes(
    proxy: &RecordingProxy,
    n: usize,
    env: &[(&str, String)],
) -> Vec<(String, Child)> {
    (0..n)
        .map(|_| {
            let run = uuid_hex();
            let child = status_command(&proxy.url, "not-a-real-token", &run, env)
                .spawn()
                .unwrap();
            (run, child)
        })
        .collect()
}

/// The gaps between the attempts of each of these processes, as multiples
/// of their backoff step (steps 2 to 5; the first retry has none).
fn retry_gaps(proxy: &RecordingProxy, processes: Vec<(String, Child)>) -> Vec<f64> {
    let mut gaps = Vec::new();
    for (i, (run, mut child)) in processes.into_iter().enumerate() {
        let (status, err) = wait_output(&mut child);
        assert!(
            !status.success() && err.contains("503"),
            "process {i}: {status}: {err}"
        );
        let at: Vec<Instant> = proxy.records_of(&run).iter().map(|r| r.at).collect();
        assert_eq!(at.len(), 6, "1 attempt and 5 retries");
        for retry in 2..=5 {
            let step = JITTER_BACKOFF * 2f64.powi(retry - 1);
            let gap = at[retry as usize].duration_since(at[retry as usize - 1]);
            gaps.push(gap.as_secs_f64() / step);
        }
    }
    gaps
}

fn uuid_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[test]
fn retry_waits_are_jittered_and_without_jitter_never_shorter_than_the_step() {
    const N: usize = 48;
    let test = Instant::now();
    let server = TaskfarmServer::start();
    let proxy = RecordingProxy::start(&server);
    proxy.set_mode(Mode::Unavailable);
    let base = vec![
        ("TASKFARM_RETRIES", "5".to_owned()),
        ("TASKFARM_BACKOFF", JITTER_BACKOFF.to_string()),
    ];
    let mut fixed_env = base.clone();
    fixed_env.push(("TASKFARM_RETRY_JITTER", "none".to_owned()));
    // Both kinds at once, each process on a run of its own.
    let fixed = failing_processes(&proxy, N, &fixed_env);
    let jittered = failing_processes(&proxy, N, &base);

    let fixed = retry_gaps(&proxy, fixed);
    let short: Vec<&f64> = fixed.iter().filter(|&&g| g < 0.99).collect();
    assert!(
        short.is_empty(),
        "waits shorter than the step without jitter: {short:?}"
    );

    let jittered = retry_gaps(&proxy, jittered);
    let below_half = jittered.iter().filter(|&&g| g < 0.5).count();
    let mean = jittered.iter().sum::<f64>() / jittered.len() as f64;
    // Expected: a quarter below half the step (48 of 192; fewer on a loaded
    // machine, whose delays lengthen the gaps: about 25 with delays of half a
    // second); 11 or fewer has a probability below 1e-9 for uniform waits.
    assert!(
        below_half >= 12,
        "only {below_half} of {} jittered gaps below half their step: {jittered:?}",
        jittered.len()
    );
    // Expected about 1 (plus the machine's delays); far from it, the waits
    // are not those of the step.
    assert!(
        (0.6..1.8).contains(&mean),
        "mean gap {mean:.2} steps: {jittered:?}"
    );
    eprintln!(
        "jitter: {below_half} of {} gaps below half their step, mean {mean:.2} steps \
         (without jitter: shortest {:.2} steps; the test: {:.1} s)",
        jittered.len(),
        fixed.iter().copied().fold(f64::INFINITY, f64::min),
        test.elapsed().as_secs_f64()
    );
}
