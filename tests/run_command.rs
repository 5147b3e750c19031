//! `taskfarm run`: a worker for any command, against the real taskfarm
//! server on PostgreSQL + gunicorn, with real commands (`sh` scripts) and
//! real signals.
//!
//! 1. Every command succeeds: each task done once, exit status 0, one job
//!    log line per attempt.
//! 2. `-j 4`: four commands at once (each waits until four are running),
//!    `{}` and the `TASKFARM_*` variables, progress through
//!    `TASKFARM_PROGRESS`, `--output`, a task that fails everywhere set
//!    aside at `TASKFARM_MAX_ATTEMPTS` while the rest finish (exit 7), and
//!    every field of the job log.
//! 3. `--timeout`: a command that ignores SIGTERM is SIGKILLed
//!    `--kill-after` seconds later with everything it started; the attempt
//!    is a timeout.
//! 4. SIGTERM to `taskfarm run`: forwarded to the commands, their tasks
//!    handed back at their last reported percentage, no task started after,
//!    and `taskfarm run` ends as SIGTERM would have.
//! 5. SIGKILL to `taskfarm run`: its command dies with it, and `taskfarm
//!    reap` gives its task back as a crashed attempt.
//!
//! Waits are on events (a file a command writes, the server's answer) with
//! a generous deadline.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::jobs::{new_run, pg_server, run_counts, scratch};
use common::server::TaskfarmServer;
use common::tool::taskfarm;
use serde_json::Value;
use taskfarm_worker::internal::{Run, TaskState};

const DEADLINE: Duration = Duration::from_secs(120);

/// The tests take turns: each starts several processes on a small machine.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn dir(name: &str) -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    let dir = BASE.get_or_init(|| scratch("run-command")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn output(mut command: Command) -> Output {
    command.output().expect("run taskfarm")
}

fn joblog(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits until `check` is true, at most [`DEADLINE`].
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < until, "waited {DEADLINE:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`common::tool::wait_while_running`] with [`DEADLINE`].
fn wait_while_running(child: &mut Child, what: &str, check: impl FnMut() -> bool) {
    common::tool::wait_while_running(child, what, DEADLINE, check);
}

/// Task `task`'s state and percentage on the server. Only for a task known to
/// be handed out: the server creates a task that a `GET` names before it was
/// handed out, and a `GET` racing the `POST …/task` that hands it out leaves
/// the task twice in its database (one row `computing`, one `waiting`; either
/// may answer the next `GET`).
fn task_on_server(server: &TaskfarmServer, run: &str, task: i64) -> (TaskState, f64) {
    let run = Run::open(&server.settings(), run).unwrap();
    let record = run.task(task).unwrap();
    (record.status, record.percent_completed)
}

/// Whether process `pid` is still running (a zombie is not).
fn running(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

#[test]
fn every_command_succeeds_every_task_is_done_and_the_exit_status_is_0() {
    let _turn = one_at_a_time();
    let server = pg_server();
    let run = new_run(server, 5);
    let d = dir("success");
    let log = d.join("joblog");
    let out = output(taskfarm(
        server,
        &["run", &run, "--joblog", log.to_str().unwrap(), "--", "true"],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(run_counts(server, &run), (5, 0, 0, 5));
    let lines = joblog(&log);
    let mut tasks: Vec<i64> = lines.iter().map(|l| l["task"].as_i64().unwrap()).collect();
    tasks.sort();
    assert_eq!(tasks, [0, 1, 2, 3, 4]);
    assert!(lines
        .iter()
        .all(|l| l["outcome"] == "done" && l["exit"] == 0));
}

/// The command of the -j 4 test: checks `{}` against `TASKFARM_TASK`, says
/// its attempt, reports 50 %, and the first four tasks wait until four
/// commands run at once; task FAILING always fails.
const FOUR_AT_ONCE: &str = r#"
set -u
task=$1 dir=$2
[ "$task" = "$TASKFARM_TASK" ] || { echo "{} is $task, TASKFARM_TASK $TASKFARM_TASK" >&2; exit 4; }
echo "$TASKFARM_RUN $TASKFARM_ATTEMPT" > "$dir/env-$task-$TASKFARM_ATTEMPT"
echo 50 > "$TASKFARM_PROGRESS"
echo "stdout of $task"
if [ "$task" -lt 4 ]; then
    : > "$dir/running-$task"
    n=0
    while [ "$(ls "$dir" | grep -c '^running-')" -lt 4 ]; do
        n=$((n + 1)); [ $n -lt 1200 ] || { echo "never four at once" >&2; exit 9; }
        sleep 0.05
    done
fi
if [ "$task" = 5 ]; then
    echo "first line" >&2
    echo "boom at task 5" >&2
    exit 3
fi
exit 0
"#;

#[test]
fn four_at_once_a_task_failing_everywhere_is_set_aside_and_the_joblog_has_every_field() {
    let _turn = one_at_a_time();
    let server = pg_server();
    let run = new_run(server, 12);
    let d = dir("four");
    let (log, journal, outdir, marks) = (
        d.join("joblog"),
        d.join("journal"),
        d.join("output"),
        d.join("marks"),
    );
    std::fs::create_dir_all(&journal).unwrap();
    std::fs::create_dir_all(&marks).unwrap();
    let mut command = taskfarm(
        server,
        &[
            "run",
            &run,
            "-j",
            "4",
            "--joblog",
            log.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--output",
            outdir.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            FOUR_AT_ONCE,
            "sh",
            "{}",
            marks.to_str().unwrap(),
        ],
    );
    command.env("TASKFARM_MAX_ATTEMPTS", "2");
    let started = unix_now();
    let out = output(command);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("task 5 failed (exit status 3)"), "{stderr}");
    // Task 5 set aside (computing) after 2 attempts, the 11 others done.
    assert_eq!(run_counts(server, &run), (12, 0, 1, 11));
    let failed: Value = serde_json::from_slice(
        &output(taskfarm(
            server,
            &[
                "failed",
                &run,
                "--journal",
                journal.to_str().unwrap(),
                "--json",
            ],
        ))
        .stdout,
    )
    .unwrap();
    assert_eq!(failed["tasks"][0]["task"], 5, "{failed}");
    assert_eq!(failed["tasks"][0]["attempts"], 2, "{failed}");
    assert_eq!(failed["tasks"][0]["set_aside"], true, "{failed}");
    let message = failed["tasks"][0]["last_message"].as_str().unwrap();
    assert!(
        message.starts_with("exit status 3") && message.ends_with("first line\nboom at task 5"),
        "{message}"
    );
    // The environment of each attempt.
    assert_eq!(
        std::fs::read_to_string(marks.join("env-5-2"))
            .unwrap()
            .trim(),
        format!("{run} 2")
    );
    assert_eq!(
        std::fs::read_to_string(marks.join("env-0-1"))
            .unwrap()
            .trim(),
        format!("{run} 1")
    );
    // --output: each attempt's stdout and stderr.
    assert_eq!(
        std::fs::read_to_string(outdir.join("task-3-attempt-1.stdout")).unwrap(),
        "stdout of 3\n"
    );
    assert!(
        std::fs::read_to_string(outdir.join("task-5-attempt-2.stderr"))
            .unwrap()
            .contains("boom at task 5")
    );
    // The job log: one line per attempt, 11 done and 2 failed.
    let lines = joblog(&log);
    assert_eq!(lines.len(), 13, "{lines:#?}");
    let ended = unix_now();
    for line in &lines {
        for field in [
            "task",
            "attempt",
            "host",
            "pid",
            "start",
            "end",
            "exit",
            "signal",
            "outcome",
            "max_rss_kb",
            "user_s",
            "system_s",
        ] {
            assert!(line.get(field).is_some(), "{field} missing: {line}");
        }
        let (start, end) = (
            line["start"].as_f64().unwrap(),
            line["end"].as_f64().unwrap(),
        );
        assert!(started <= start && start <= end && end <= ended, "{line}");
        assert!(line["pid"].as_u64().unwrap() > 1, "{line}");
        assert!(line["max_rss_kb"].as_i64().unwrap() > 0, "{line}");
        assert!(line["user_s"].as_f64().unwrap() >= 0.0, "{line}");
        assert!(line["signal"].is_null(), "{line}");
        assert_eq!(
            line["host"],
            taskfarm_worker::internal::worker::identity::host_name()
        );
        if line["task"] == 5 {
            assert_eq!(
                (&line["outcome"], &line["exit"]),
                (&"failed".into(), &3.into())
            );
        } else {
            assert_eq!(
                (&line["outcome"], &line["exit"]),
                (&"done".into(), &0.into())
            );
            assert_eq!(line["attempt"], 1);
        }
    }
    let fives: Vec<_> = lines
        .iter()
        .filter(|l| l["task"] == 5)
        .map(|l| &l["attempt"])
        .collect();
    assert_eq!(fives, [&Value::from(1), &Value::from(2)]);
}

fn unix_now() -> f64 {
    taskfarm_worker::internal::clock::unix_now()
}

#[test]
fn a_command_past_its_timeout_is_killed_with_its_group() {
    let _turn = one_at_a_time();
    let server = pg_server();
    let run = new_run(server, 1);
    let d = dir("timeout");
    let (log, journal) = (d.join("joblog"), d.join("journal"));
    std::fs::create_dir_all(&journal).unwrap();
    // Ignores SIGTERM, and so does the sleep it starts.
    let script = format!(
        "trap '' TERM; sleep 600 & echo $! > {}/sleep.pid; wait",
        d.display()
    );
    let mut command = taskfarm(
        server,
        &[
            "run",
            &run,
            "--timeout",
            "1",
            "--kill-after",
            "1",
            "--joblog",
            log.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    command.env("TASKFARM_MAX_ATTEMPTS", "1");
    let out = output(command);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    let lines = joblog(&log);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert_eq!(line["outcome"], "timeout", "{line}");
    assert_eq!(line["signal"], "SIGKILL", "{line}");
    assert!(line["exit"].is_null(), "{line}");
    let took = line["end"].as_f64().unwrap() - line["start"].as_f64().unwrap();
    assert!((2.0..60.0).contains(&took), "{took} s: {line}");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .starts_with("timed out after 1 s (SIGTERM, then SIGKILL, killed by SIGKILL)"),
        "{line}"
    );
    let sleep: i64 = std::fs::read_to_string(d.join("sleep.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the sleep of the timed-out command to end", || {
        !running(sleep)
    });
    // Set aside after its one attempt (TASKFARM_MAX_ATTEMPTS=1): left computing.
    assert_eq!(run_counts(server, &run), (1, 0, 1, 0));
}

/// A command that reports 40 % and then waits; it writes its pid first.
fn reporting_then_waiting(d: &Path) -> String {
    format!(
        "echo $$ > {}/pid-$TASKFARM_TASK; echo 40 > \"$TASKFARM_PROGRESS\"; exec sleep 600",
        d.display()
    )
}

/// Waits (while `child` runs) until `count` commands of
/// [`reporting_then_waiting`] wrote their process ids, and returns them as
/// (task, pid), by task.
fn wait_for_commands(child: &mut Child, d: &Path, count: usize) -> Vec<(i64, i64)> {
    let mut commands = Vec::new();
    wait_while_running(child, &format!("{count} commands started"), || {
        commands = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|entry| {
                let entry = entry.unwrap();
                let task = entry
                    .file_name()
                    .to_str()?
                    .strip_prefix("pid-")?
                    .parse()
                    .ok()?;
                // Whole once the line ends (the shell's echo may be half-way).
                let line = std::fs::read_to_string(entry.path()).ok()?;
                Some((task, line.strip_suffix('\n')?.parse().ok()?))
            })
            .collect();
        commands.len() == count
    });
    commands.sort_unstable();
    commands
}

fn start(mut command: Command) -> Child {
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    command.spawn().expect("start taskfarm run")
}

#[test]
fn sigterm_hands_the_tasks_back_at_their_percentage_and_ends_taskfarm_run_as_sigterm() {
    let _turn = one_at_a_time();
    let server = pg_server();
    let run = new_run(server, 4);
    let d = dir("sigterm");
    let log = d.join("joblog");
    let script = reporting_then_waiting(&d);
    let mut child = start(taskfarm(
        server,
        &[
            "run",
            &run,
            "-j",
            "2",
            "--joblog",
            log.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &script,
        ],
    ));
    // Both commands started (so their tasks were handed out: the server is
    // asked about no other task), reported 40 %, and the server has it.
    let commands = wait_for_commands(&mut child, &d, 2);
    wait_while_running(&mut child, "two tasks at 40 % on the server", || {
        commands
            .iter()
            .all(|&(t, _)| task_on_server(server, &run, t) == (TaskState::Computing, 40.0))
    });
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}: {stderr}");
    assert!(stderr.contains("SIGTERM: task 0 handed back"), "{stderr}");
    for &(_, pid) in &commands {
        assert!(!running(pid), "command {pid} still runs");
    }
    // Both back at 40 %, waiting; nothing done, nothing else started.
    for &(t, _) in &commands {
        assert_eq!(task_on_server(server, &run, t), (TaskState::Waiting, 40.0));
    }
    assert_eq!(run_counts(server, &run), (4, 2, 0, 0));
    let lines = joblog(&log);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines
        .iter()
        .all(|l| l["outcome"] == "stopped" && l["signal"] == "SIGTERM"));
}

#[test]
fn sigkill_takes_the_command_along_and_reap_gives_its_task_back() {
    let _turn = one_at_a_time();
    let server = pg_server();
    let run = new_run(server, 2);
    let d = dir("sigkill");
    let journal = d.join("journal");
    std::fs::create_dir_all(&journal).unwrap();
    let script = reporting_then_waiting(&d);
    let mut child = start(taskfarm(
        server,
        &[
            "run",
            &run,
            "--journal",
            journal.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &script,
        ],
    ));
    let (task, pid) = wait_for_commands(&mut child, &d, 1)[0];
    assert_eq!(task, 0, "the first task handed out");
    wait_while_running(&mut child, "task 0 at 40 % on the server", || {
        task_on_server(server, &run, 0) == (TaskState::Computing, 40.0)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("the command to die with taskfarm run", || !running(pid));
    let out = output(taskfarm(
        server,
        &[
            "reap",
            &run,
            "--journal",
            journal.to_str().unwrap(),
            "--json",
        ],
    ));
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(report["given_back"][0]["task"], 0, "{report}");
    assert_eq!(report["given_back"][0]["attempts"], 1, "{report}");
    assert_eq!(task_on_server(server, &run, 0), (TaskState::Waiting, 40.0));
    let failed: Value = serde_json::from_slice(
        &output(taskfarm(
            server,
            &[
                "failed",
                &run,
                "--journal",
                journal.to_str().unwrap(),
                "--json",
            ],
        ))
        .stdout,
    )
    .unwrap();
    assert_eq!(failed["tasks"][0]["last_kind"], "crashed", "{failed}");
    // The next taskfarm run takes it at its second attempt and finishes.
    let out = output(taskfarm(
        server,
        &[
            "run",
            &run,
            "--journal",
            journal.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "echo $TASKFARM_TASK $TASKFARM_ATTEMPT",
        ],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("0 2\n"), "{}", text(&out.stdout));
    assert_eq!(run_counts(server, &run), (2, 0, 0, 2));
}
