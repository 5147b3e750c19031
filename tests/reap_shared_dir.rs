//! The journal and `taskfarm reap` on a shared file system (issue 26): no
//! one else's file written, no live worker reaped. Against the real server
//! (PostgreSQL + gunicorn) and the real `taskfarm reap`; a second user is
//! simulated with `setpriv --reuid 2001 --regid 3000 --groups 3000` in a
//! setgid group directory (mode 2770), containers with `unshare`, Slurm
//! with a fake `squeue` on the reaper's `PATH` (printing a recorded answer,
//! or waiting for the test to release it: how a pass is held at a chosen
//! point), and a failing server with the scripted fault server.
//!
//! 1. A journal forged by another user is left alone (acted on only with
//!    `--owner`); a kept `done` of a task never handed out is refused;
//!    `--release` of such a task touches nothing; the group-writable
//!    directory without the sticky bit is warned about.
//! 2. The reaper's state file as a symlink to /dev/zero or a FIFO is refused
//!    at once (no memory growth, no hang).
//! 3. A worker in its own PID namespace is not judged by its pid; nor is one
//!    whose pid `/proc` hides (`hidepid=2`) from a reaper of another user.
//! 4. Journals of other machines: a suspended Slurm job is alive, a running
//!    one is judged by its heartbeat; a worker with a 600 s heartbeat
//!    interval, a node whose clock is 6 minutes behind, and a machine of the
//!    same host name with another boot id are all alive.
//! 5. One reaper per run (the lock); a worker that starts while a pass runs
//!    keeps its task under `--restart-orphans`.
//!    A worker that takes a task after a pass's look at the run (the pass
//!    held by the recording proxy) keeps it: the last check sees it.
//!    A task a live worker's journal explains is never called an orphan.
//! 6. A give-back whose PUT fails three passes in a row counts one crash.
//! 7. A `done` whose journal write fails is an error that keeps the task
//!    held, never "kept in the journal".
//! 8. Symlinks planted by another user at the final and at the old
//!    predictable temporary names of a worker's journal and of the
//!    reaper's state file write nothing through them.
//! 9. A journal write that fails is said on stderr once per streak of
//!    failures (whatever `TASKFARM_LOG` says), and so is its recovery.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::fault_server::{token_ok, Action, FaultServer};
use common::journals::journal_files;
use common::recording_proxy::{Mode, RecordingProxy};
use common::server::{Db, TaskfarmServer};
use serde_json::Value;
use taskfarm_worker::internal::clock::unix_now;
use taskfarm_worker::internal::worker::identity::host_name;
use taskfarm_worker::internal::worker::journal::{self, Journal, Record, SlurmIds};
use taskfarm_worker::internal::{Run, Settings, TaskState, Worker};

const DEADLINE: Duration = Duration::from_secs(120);

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("reap-shared-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A project directory of group 3000, mode 2770 (setgid, no sticky bit).
fn group_dir(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::os::unix::fs::chown(&dir, Some(0), Some(3000)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2770)).unwrap();
    dir
}

fn shared_pg() -> &'static TaskfarmServer {
    static PG: OnceLock<TaskfarmServer> = OnceLock::new();
    PG.get_or_init(|| TaskfarmServer::start_with(Db::Postgresql))
}

fn settings(server: &TaskfarmServer) -> Settings {
    let mut s = server.settings();
    s.retries = 2;
    s.backoff = Duration::from_millis(20);
    s
}

/// `taskfarm -b URL -u USER -p PASSWORD reap UUID --journal DIR ARGS`.
fn reap(server: &TaskfarmServer, run: &str, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
    command
        .args([
            "-b",
            &server.url,
            "-u",
            &server.user,
            "-p",
            &server.password,
        ])
        .args(["reap", run, "--journal"])
        .arg(dir)
        .args(args)
        .env("TASKFARM_RETRIES", "2")
        .env("TASKFARM_BACKOFF", "0.02")
        .env_remove("TASKFARM_TOKEN");
    command
}

fn output(command: &mut Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run taskfarm");
    wait_output(child)
}

/// Waits for `child` with the deadline (killed past it: a hang fails).
fn wait_output(mut child: std::process::Child) -> Output {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > end {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after 30 s, killed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ok_json(command: &mut Command) -> Value {
    let out = output(command);
    first_json_line(&out, &format!("{command:?}"))
}

/// The first line of `out`'s stdout as JSON (a `--json` pass), once `what`
/// succeeded.
fn first_json_line(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A valid journal record of this process for `run`, to forge others from.
fn template(dir: &Path, run: &str) -> Record {
    let journal = Journal::start(dir, run, "feedface").unwrap();
    let record = journal.record();
    journal.finish();
    record
}

/// Writes `record` as the journal of `worker`; returns its path.
fn write_journal(dir: &Path, worker: &str, record: &Record) -> PathBuf {
    let record = Record {
        worker: worker.into(),
        ..record.clone()
    };
    let path = dir.join(journal::file_name(&record.run, worker));
    std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    path
}

fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Workers of `run` holding tasks 0..n (registered here, without journals).
fn holders(run: &Arc<Run>, n: i64) -> Vec<Worker> {
    (0..n)
        .map(|i| {
            let mut w = Worker::register(run.clone()).unwrap();
            assert_eq!(w.task().unwrap(), Some(i));
            w
        })
        .collect()
}

fn state(run: &Run, task: i64) -> TaskState {
    run.task(task).unwrap().status
}

fn verdict<'a>(pass: &'a Value, worker: &str) -> (&'a str, &'a str) {
    let w = pass["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["worker"] == worker)
        .unwrap_or_else(|| panic!("no worker {worker}: {pass}"));
    (
        w["verdict"].as_str().unwrap(),
        w["reason"].as_str().unwrap(),
    )
}

/// A directory holding a fake `squeue` with `script` as its body.
fn fake_squeue(name: &str, script: &str) -> PathBuf {
    let bin = scratch(name);
    let path = bin.join("squeue");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

// ---------------------------------------------------------------------------

#[test]
fn another_users_journals_are_left_alone_and_no_task_never_handed_out_is_touched() {
    let server = shared_pg();
    let run = Arc::new(Run::create(&settings(server), 4).unwrap());
    let _held = holders(&run, 2);
    let dir = group_dir("forged");
    let forged = Record {
        pid: dead_pid(),
        task: Some(0),
        kept_done: vec![1],
        ..template(&dir, run.uuid())
    };
    // User 2001, a member of the directory's group, writes a journal that
    // says a dead process held task 0 and finished task 1.
    let name = journal::file_name(run.uuid(), "f0");
    let status = Command::new("setpriv")
        .args(["--reuid", "2001", "--regid", "3000", "--groups", "3000"])
        .args(["sh", "-c", "cat > \"$0\""])
        .arg(dir.join(&name))
        .stdin(std::fs::File::open(write_journal(&scratch("forged-src"), "f0", &forged)).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let out = output(&mut reap(server, run.uuid(), &dir, &[]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("owned by uid 2001"), "{text}");
    assert!(text.contains("without the sticky"), "{text}");
    assert_eq!(state(&run, 0), TaskState::Computing, "a live worker's task");
    assert_eq!(state(&run, 1), TaskState::Computing, "never marked done");

    // Asked for, the reaper acts on user 2001's journals too.
    let pass = ok_json(&mut reap(
        server,
        run.uuid(),
        &dir,
        &["--owner", "2001", "--json"],
    ));
    assert_eq!(pass["given_back"][0]["task"], 0, "{pass}");
    assert_eq!(pass["delivered"][0]["task"], 1, "{pass}");

    // A journal of our own user with a kept done of task 3, never handed out.
    write_journal(
        &dir,
        "f1",
        &Record {
            task: None,
            kept_done: vec![3],
            ..forged.clone()
        },
    );
    let pass = ok_json(&mut reap(server, run.uuid(), &dir, &["--json"]));
    assert!(
        pass["invalid"][0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("never handed out")),
        "{pass}"
    );
    // --release of a task never handed out: refused, and the task not
    // created (a GET or PUT would create it and break every later request).
    let out = output(&mut reap(server, run.uuid(), &dir, &["--release", "3"]));
    assert!(
        !out.status.success(),
        "--release 3: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("never handed out"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = run.status().unwrap();
    assert_eq!(
        status.num_done + status.num_computing + status.num_waiting,
        2,
        "{status:?}"
    );
    // The run still hands out its tasks in order, to the end.
    let mut w = Worker::register(run.clone()).unwrap();
    for expected in [Some(0), Some(2), Some(3), None] {
        assert_eq!(w.task().unwrap(), expected);
        if expected.is_some() {
            w.complete().unwrap();
        }
    }
}

/// Runs `ln -s TARGET LINK` for each pair as user 2001 (a member of the
/// group directory's group, who cannot write the targets).
fn plant_symlinks_as_another_user(links: &[(&Path, PathBuf)]) {
    for (target, link) in links {
        let status = Command::new("setpriv")
            .args(["--reuid", "2001", "--regid", "3000", "--groups", "3000"])
            .args(["ln", "-s"])
            .arg(target)
            .arg(link)
            .status()
            .unwrap();
        assert!(status.success(), "user 2001 could not plant {link:?}");
    }
}

#[test]
fn another_users_symlinks_at_the_journals_and_the_reapers_names_write_nothing_of_ours() {
    let server = shared_pg();
    let run = Arc::new(Run::create(&settings(server), 2).unwrap());
    let dir = group_dir("symlinks");
    // Files of the user who runs workers and the reaper, out of user 2001's
    // reach (mode 0644 in a directory of mode 0755).
    let private = scratch("symlinks-victim");
    let victims: Vec<PathBuf> = ["results.dat", "notes.txt", "authorized_keys", "data.csv"]
        .iter()
        .map(|name| {
            let path = private.join(name);
            std::fs::write(&path, format!("precious {name}")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            path
        })
        .collect();
    let unchanged = || {
        for path in &victims {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(
                std::fs::read_to_string(path).unwrap(),
                format!("precious {name}"),
                "{path:?} was written through a planted symlink"
            );
        }
    };
    let regular = |path: &Path| {
        let meta = std::fs::symlink_metadata(path).unwrap();
        assert!(meta.file_type().is_file(), "{path:?}: {meta:?}");
        std::os::unix::fs::MetadataExt::uid(&meta)
    };

    // A worker's journal: links at its final name and at the temporary name
    // bfdd2f0 used, `.{name}.{pid}.tmp` (pid: this process, the worker).
    let mut worker = Worker::register(run.clone()).unwrap();
    let journal_name = journal::file_name(run.uuid(), worker.uuid());
    plant_symlinks_as_another_user(&[
        (&victims[0], dir.join(&journal_name)),
        (
            &victims[1],
            dir.join(format!(".{journal_name}.{}.tmp", std::process::id())),
        ),
    ]);
    let started = worker.set_journal(Some(&dir));
    unchanged();
    started.unwrap();
    let task = worker.task().unwrap().unwrap();
    worker.update(50.0).unwrap();
    unchanged();
    assert_eq!(regular(&dir.join(&journal_name)), 0);
    let record = journal::read_record(&dir.join(&journal_name), run.uuid()).unwrap();
    assert_eq!(record.task, Some(task));

    // The reaper's state file `reap-<run>.json`: a link at its old temporary
    // name; the reaper runs as pid 1 of a PID namespace of its own, so that
    // name is known beforehand.
    let state_name = format!("reap-{}.json", run.uuid());
    plant_symlinks_as_another_user(&[(&victims[2], dir.join(format!(".{state_name}.1.tmp")))]);
    let inner = reap(server, run.uuid(), &dir, &["--json"]);
    let mut in_own_namespace = Command::new("unshare");
    in_own_namespace
        .args(["--pid", "--fork", "--kill-child"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env_remove("TASKFARM_TOKEN");
    let out = output(&mut in_own_namespace);
    unchanged();
    let pass = first_json_line(&out, "the reaper in its own PID namespace");
    assert_eq!(verdict(&pass, worker.uuid()).0, "alive", "{pass}");
    assert_eq!(regular(&dir.join(&state_name)), 0);

    // A link at the state file's own name: refused, nothing written.
    std::fs::remove_file(dir.join(&state_name)).unwrap();
    plant_symlinks_as_another_user(&[(&victims[3], dir.join(&state_name))]);
    let out = output(&mut reap(server, run.uuid(), &dir, &[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    unchanged();

    worker.complete().unwrap();
    assert_eq!(state(&run, task), TaskState::Done);
    unchanged();
}

#[test]
fn a_state_file_that_is_a_device_or_a_fifo_is_refused_at_once() {
    let server = shared_pg();
    let run = Run::create(&settings(server), 1).unwrap();
    let dir = scratch("state");
    let state_file = dir.join(format!("reap-{}.json", run.uuid()));
    std::os::unix::fs::symlink("/dev/zero", &state_file).unwrap();
    // A memory limit: reading /dev/zero whole would grow without bound.
    let limited = |args: &[&str]| {
        let command = reap(server, run.uuid(), &dir, args);
        let program = command.get_program().to_owned();
        let mut prlimit = Command::new("prlimit");
        prlimit
            .arg("--as=4000000000")
            .arg(program)
            .args(command.get_args())
            .envs(command.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .env_remove("TASKFARM_TOKEN");
        output(&mut prlimit)
    };
    let out = limited(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_file(&state_file).unwrap();
    let c = std::ffi::CString::new(state_file.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let out = limited(&[]); // a plain read of a FIFO blocks for ever
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a regular file"), "{err}");
}

/// The C worker under `wrapper` (e.g. `unshare --pid --kill-child
/// --mount-proc`: killing unshare kills the worker, pid 1 of its namespace),
/// holding its first task; its stdout read until "holding N".
fn held_worker(
    server: &TaskfarmServer,
    run: &str,
    dir: &Path,
    wrapper: &[&str],
) -> (KillOnDrop, i64) {
    let (program, rest) = wrapper.split_first().unwrap();
    let mut child = Command::new(program)
        .args(rest)
        .arg(common::c_programs::reap_worker())
        .arg(run)
        .envs(server.credentials_env())
        .env("TASKFARM_JOURNAL", dir)
        .env("TASKFARM_JOURNAL_HEARTBEAT", "0.1")
        .env("REAP_TEST_HOLD_AFTER", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let task = loop {
        let line = lines.next().expect("the worker ended").unwrap();
        if let Some(t) = line.strip_prefix("holding ") {
            break t.trim().parse().unwrap();
        }
    };
    (KillOnDrop(child), task)
}

#[test]
fn a_worker_in_its_own_pid_namespace_or_hidden_by_hidepid_is_not_reaped() {
    let server = shared_pg();
    let run = Run::create(&settings(server), 2).unwrap();
    let dir = group_dir("pidns");
    let (child, task) = held_worker(
        server,
        run.uuid(),
        &dir,
        &["unshare", "--pid", "--kill-child", "--mount-proc"],
    );
    wait_until("its journal", || {
        journal_files(&dir, run.uuid()).first().cloned()
    });
    let worker = journal_files(&dir, run.uuid())[0]
        .trim_end_matches(".json")
        .rsplit('-')
        .next()
        .unwrap()
        .to_owned();
    // The worker is pid 1 of its namespace; pid 1 here is another process.
    for _ in 0..2 {
        let pass = ok_json(&mut reap(server, run.uuid(), &dir, &["--json"]));
        let (word, reason) = verdict(&pass, &worker);
        assert_eq!(word, "alive", "{reason}");
        assert!(reason.contains("another PID namespace"), "{reason}");
    }
    assert_eq!(state(&run, task), TaskState::Computing);

    // A reaper of user 2001 with /proc mounted hidepid=2: kill(pid, 0) still
    // tells that the pid exists; the start time is hidden.
    let (root_worker, root_task) = held_worker(server, run.uuid(), &dir, &["env"]);
    let root_worker_id = wait_until("the second journal", || {
        let names = journal_files(&dir, run.uuid());
        (names.len() == 2).then_some(())?;
        names.iter().find_map(|n| {
            let r = journal::read_record(&dir.join(n), run.uuid()).ok()?;
            (r.pid == root_worker.0.id()).then_some(r.worker)
        })
    });
    // The reaper state and lock must be user 2001's in that directory.
    let _ = std::fs::remove_file(dir.join(format!("reap-{}.json", run.uuid())));
    let inner = reap(server, run.uuid(), &dir, &["--owner", "0", "--json"]);
    let mut command = Command::new("unshare");
    command
        .args(["-m", "sh", "-c"])
        .arg(
            "mount -t proc -o hidepid=2 proc /proc && \
             exec setpriv --reuid 2001 --regid 3000 --groups 3000 \"$@\"",
        )
        .arg("sh")
        .arg(inner.get_program())
        .args(inner.get_args())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env_remove("TASKFARM_TOKEN");
    let pass = ok_json(&mut command);
    let (word, reason) = verdict(&pass, &root_worker_id);
    assert_eq!(word, "alive", "{reason}");
    assert!(reason.contains("hidepid"), "{reason}");
    assert_eq!(state(&run, root_task), TaskState::Computing);
    drop((child, root_worker));
}

#[test]
fn journals_of_other_machines_are_judged_by_slurm_and_by_changes_of_their_heartbeat() {
    let server = shared_pg();
    let run = Arc::new(Run::create(&settings(server), 5).unwrap());
    let _held = holders(&run, 5);
    let dir = scratch("elsewhere");
    let node = |task: i64, job: Option<&str>| Record {
        host: "node7".into(),
        boot_id: Some("boot-of-node7".into()),
        pid: 4242,
        heartbeat: unix_now() - 1000.0,
        heartbeat_interval: 0.05,
        task: Some(task),
        slurm: job.map(|j| SlurmIds {
            job_id: Some(j.into()),
            ..SlurmIds::default()
        }),
        ..template(&dir, run.uuid())
    };
    write_journal(&dir, "suspended", &node(0, Some("11")));
    write_journal(&dir, "running", &node(1, Some("12")));
    // TASKFARM_JOURNAL_HEARTBEAT=600: 400 s since its last beat is normal.
    write_journal(
        &dir,
        "slow",
        &Record {
            heartbeat: unix_now() - 400.0,
            heartbeat_interval: 600.0,
            ..node(2, None)
        },
    );
    // The same host name as here, another boot id (a cloned VM), a fresh
    // heartbeat (every 600 s: it stands still during the test).
    write_journal(
        &dir,
        "clone",
        &Record {
            host: host_name(),
            heartbeat: unix_now(),
            heartbeat_interval: 600.0,
            ..node(3, None)
        },
    );
    let squeue = fake_squeue(
        "squeue-states",
        // $5: the comma-separated jobs of the pass (one squeue for all).
        r#"for j in $(echo "$5" | tr , ' '); do case "$j" in 11) echo "11 SUSPENDED";; 12) echo "12 RUNNING";; esac; done"#,
    );
    let path = path_with(&squeue);
    // A live worker on a node whose clock is 6 minutes behind: its heartbeat
    // changes at every beat.
    let behind = |beat: f64| {
        write_journal(
            &dir,
            "behind",
            &Record {
                heartbeat: unix_now() - 360.0 + beat,
                ..node(4, None)
            },
        )
    };
    let mut beat = 0.0;
    let mut passes = Vec::new();
    wait_until("the running job's still heartbeat to be stale", || {
        beat += 0.05;
        behind(beat);
        let pass = ok_json(
            reap(server, run.uuid(), &dir, &["--stale", "0.3", "--json"]).env("PATH", &path),
        );
        passes.push(pass.clone());
        (verdict(&pass, "running").0 == "gone" || !pass["given_back"].as_array()?.is_empty())
            .then_some(pass)
    });
    let last = passes.last().unwrap();
    let given: Vec<i64> = passes
        .iter()
        .flat_map(|p| p["given_back"].as_array().unwrap().clone())
        .map(|a| a["task"].as_i64().unwrap())
        .collect();
    assert_eq!(
        given,
        vec![1],
        "only the running job's still heartbeat: {passes:?}"
    );
    for (worker, why) in [
        ("suspended", "SUSPENDED"),
        ("slow", "heartbeat"),
        ("clone", "another boot id"),
        ("behind", "heartbeat"),
    ] {
        let (word, reason) = verdict(last, worker);
        assert_eq!(word, "alive", "{worker}: {reason}");
        assert!(reason.contains(why), "{worker}: {reason}");
        assert!(!reason.contains("running"), "{worker}: {reason}");
    }
    for task in [0, 2, 3, 4] {
        assert_eq!(state(&run, task), TaskState::Computing, "task {task}");
    }
    // The default --stale 300 and a 600 s interval: alive however long it stood still here.
    let pass = ok_json(reap(server, run.uuid(), &dir, &["--json"]).env("PATH", &path));
    assert_eq!(verdict(&pass, "slow").0, "alive");
}

/// A child process killed when the test ends, failed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn one_reaper_per_run_and_a_worker_starting_during_a_pass_keeps_its_task() {
    let server = shared_pg();
    let run = Arc::new(Run::create(&settings(server), 3).unwrap());
    let dir = scratch("lock");
    // A reaper watching the run holds its lock; a second one is refused.
    let mut first = KillOnDrop(
        reap(server, run.uuid(), &dir, &["--watch", "0.2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lock = dir.join(format!("reap-{}.lock", run.uuid()));
    wait_until("the first reaper's lock", || lock.exists().then_some(()));
    let out = output(&mut reap(server, run.uuid(), &dir, &[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("pid {}", first.0.id())) && err.contains("one reaper per run"),
        "{err}"
    );
    // Killed, it leaves the lock; its death is proved here: taken over.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    assert!(lock.exists());
    let pass = ok_json(&mut reap(server, run.uuid(), &dir, &["--json"]));
    assert!(
        pass["warnings"][0].as_str().unwrap().contains("took over"),
        "{pass}"
    );
    assert!(!lock.exists(), "released at the end");

    // Task 0: held by a worker without a journal (an orphan). A journal of
    // another machine's Slurm job claims it too; while the reaper asks
    // squeue about that job (held by the fake squeue until the test says),
    // a new worker takes a task.
    let _w0 = holders(&run, 1);
    let mut record = template(&dir, run.uuid());
    record.boot_id = Some("boot-of-node7".into());
    record.task = Some(0);
    record.slurm = Some(SlurmIds {
        job_id: Some("13".into()),
        ..SlurmIds::default()
    });
    let asked = dir.join("asked");
    let go = dir.join("go");
    let squeue = fake_squeue(
        "squeue-held",
        &format!(
            "touch '{}'; while [ ! -e '{}' ]; do sleep 0.01; done; exit 0",
            asked.display(),
            go.display()
        ),
    );
    // First pass: the orphan is seen (not restarted on one look).
    let pass = ok_json(&mut reap(
        server,
        run.uuid(),
        &dir,
        &["--restart-orphans", "--json"],
    ));
    assert_eq!(pass["restarted"], false, "{pass}");
    assert_eq!(state(&run, 0), TaskState::Computing);
    write_journal(&dir, "job13", &record);
    let second = reap(server, run.uuid(), &dir, &["--restart-orphans", "--json"])
        .env("PATH", path_with(&squeue))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the reaper to ask squeue", || asked.exists().then_some(()));
    let mut late = Worker::register(run.clone()).unwrap();
    let late_task = late.task().unwrap().unwrap();
    std::fs::write(&go, "").unwrap();
    let out = wait_output(second);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pass: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pass["restarted"], false, "{pass}");
    assert_eq!(
        state(&run, late_task),
        TaskState::Computing,
        "the late worker's task was restarted"
    );
}

#[test]
fn a_worker_that_takes_a_task_after_a_passs_look_keeps_it_under_restart_orphans() {
    // Task 0 is held by a worker without a journal: an orphan, restarted
    // when two passes in a row see the same run. The second pass is held
    // (by the proxy) between its look at the run and the restart; a worker
    // takes a task meanwhile: the last check before the restart sees it.
    let server = shared_pg();
    let proxy = RecordingProxy::start(server);
    let run = Arc::new(Run::create(&settings(server), 3).unwrap());
    let dir = scratch("latestart");
    let _w0 = holders(&run, 1);
    let first = ok_json(&mut reap(
        server,
        run.uuid(),
        &dir,
        &["--restart-orphans", "--json"],
    ));
    assert_eq!(first["restarted"], false, "{first}");
    // The pass reads the run's counts three times: at its start, for its
    // look at the orphans, and just before a restart. The second answer is
    // held.
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count_path = format!("/runs/{}?info=", run.uuid());
    let gate = proxy.hold(Arc::new(move |r: &common::recording_proxy::Record| {
        r.method == "GET"
            && r.path.ends_with(&count_path)
            && reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1
    }));
    let direct = reap(server, run.uuid(), &dir, &["--restart-orphans", "--json"]);
    let mut second = Command::new(direct.get_program());
    second
        .args(direct.get_args().map(|arg| {
            if arg == std::ffi::OsStr::new(&server.url) {
                std::ffi::OsStr::new(&proxy.url)
            } else {
                arg
            }
        }))
        .envs(direct.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env_remove("TASKFARM_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let second = second.spawn().unwrap();
    gate.wait_held(1, DEADLINE);
    let mut late = Worker::register(run.clone()).unwrap();
    let late_task = late.task().unwrap().unwrap();
    gate.release();
    let out = wait_output(second);
    let pass = first_json_line(&out, "the held reaper pass");
    assert_eq!(pass["restarted"], false, "{pass}");
    assert!(
        pass["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains("changed during this pass")),
        "{pass}"
    );
    assert_eq!(
        state(&run, late_task),
        TaskState::Computing,
        "the late worker's task was restarted"
    );
    late.complete().unwrap();
}

#[test]
fn a_task_a_live_journal_explains_is_never_called_an_orphan() {
    let server = shared_pg();
    let run = Arc::new(Run::create(&settings(server), 2).unwrap());
    let dir = scratch("explained");
    let orphan_line = "computing that no live journaled worker holds";
    let says_orphans = |pass: &Value| {
        pass["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains(orphan_line))
    };
    // A worker of this process with a journal holds task 0: its journal
    // explains the one task computing.
    let mut journaled = Worker::register(run.clone()).unwrap();
    journaled.set_journal(Some(&dir)).unwrap();
    assert_eq!(journaled.task().unwrap(), Some(0));
    for args in [&["--json"][..], &["--restart-orphans", "--json"][..]] {
        let pass = ok_json(&mut reap(server, run.uuid(), &dir, args));
        assert_eq!(verdict(&pass, journaled.uuid()).0, "alive", "{pass}");
        assert!(!says_orphans(&pass), "{pass}");
        assert_eq!(pass["orphans"], 0, "{pass}");
        assert_eq!(pass["restarted"], false, "{pass}");
    }
    assert_eq!(state(&run, 0), TaskState::Computing);
    // It ends; a worker without a journal takes task 1: that one is said.
    journaled.complete().unwrap();
    drop(journaled);
    let mut unjournaled = Worker::register(run.clone()).unwrap();
    assert_eq!(unjournaled.task().unwrap(), Some(1));
    let pass = ok_json(&mut reap(server, run.uuid(), &dir, &["--json"]));
    assert!(says_orphans(&pass), "{pass}");
    assert_eq!(pass["orphans"], 1, "{pass}");
    unjournaled.complete().unwrap();
}

#[test]
fn a_give_back_that_fails_counts_the_crash_once() {
    // The server answers the reaper's reads; every PUT is refused before it
    // reaches the server (429 from a front proxy), so the give-back certainly
    // did not land and is tried again on the next pass. (A 5xx may have
    // landed: never repeated, reap.rs tests it.)
    let uuid = "0123456789abcdef0123456789abcdef";
    let server = FaultServer::start(move |request, _| {
        let run = serde_json::json!({"id": 1, "uuid": uuid, "numTasks": 2, "percentDone": 0.0,
            "numWaiting": 0, "numDone": 0, "numComputing": 2});
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/api/token") => token_ok("tok"),
            ("GET", p) if p.ends_with("/tasks/0") => Action::json(
                200,
                &serde_json::json!({"id": 1, "task": 0, "percentCompleted": 50.0,
                    "status": "computing"}),
            ),
            ("GET", p) if p == format!("/api/runs/{uuid}") => Action::json(200, &run),
            _ => Action::text(429, "slow down"),
        }
    });
    let dir = scratch("putfails");
    let record = Record {
        run: uuid.into(),
        pid: dead_pid(),
        task: Some(0),
        ..template(&dir, uuid)
    };
    write_journal(&dir, "dies", &record);
    for _ in 0..3 {
        let out = output(
            Command::new(env!("CARGO_BIN_EXE_taskfarm"))
                .args(["-b", &server.url(), "-u", "u", "-p", "p"])
                .args(["reap", uuid, "--journal"])
                .arg(&dir)
                .args(["--max-attempts", "3", "--json"])
                .env("TASKFARM_RETRIES", "0")
                .env_remove("TASKFARM_TOKEN"),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("could not settle"), "{text}");
    }
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("reap-{uuid}.json"))).unwrap())
            .unwrap();
    assert_eq!(state["attempts"]["0"], 1, "{state}");
    assert_eq!(state["set_aside"], serde_json::json!([]), "{state}");
}

#[test]
fn a_done_whose_journal_write_fails_is_an_error_not_kept() {
    let server = shared_pg();
    let proxy = RecordingProxy::start(server);
    let mut s = settings(server);
    s.base_url = proxy.url.clone();
    let run = Arc::new(Run::create(&s, 1).unwrap());
    let dir = scratch("unwritable");
    let mut worker = Worker::register(run.clone()).unwrap();
    worker.set_journal(Some(&dir)).unwrap();
    let task = worker.task().unwrap().unwrap();
    worker.update(100.0).unwrap();
    // The journal's directory goes (a full disk, a lost mount) and the
    // server cannot be reached: the done can be kept nowhere.
    std::fs::remove_dir_all(&dir).unwrap();
    proxy.set_mode(Mode::Refuse);
    let err = worker.done().unwrap_err();
    assert!(!err.message().contains("is kept in the journal"), "{err}");
    assert!(err.message().contains("could not be kept"), "{err}");
    // Still held: done again once things are back.
    std::fs::create_dir_all(&dir).unwrap();
    proxy.set_mode(Mode::Forward);
    worker.done().unwrap();
    assert_eq!(state(&run, task), TaskState::Done);
}

/// The names of files created in a directory (inotify `IN_CREATE`): how a
/// test knows that a worker tried to write its journal there.
struct Creations(libc::c_int);

impl Creations {
    fn watch(dir: &Path) -> Creations {
        // SAFETY: no preconditions.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        let path = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
        // SAFETY: fd is an inotify descriptor, path a NUL-terminated path.
        let watch = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_CREATE) };
        assert!(
            watch >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        Creations(fd)
    }

    /// The names created since the last call.
    fn names(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return names;
            }
            // struct inotify_event: wd, mask, cookie, len (4 bytes each),
            // then len bytes of NUL-padded name.
            let mut at = 0;
            while at + 16 <= n as usize {
                let len = u32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
                let name = &buf[at + 16..at + 16 + len];
                let end = name.iter().position(|&b| b == 0).unwrap_or(len);
                names.push(String::from_utf8_lossy(&name[..end]).into_owned());
                at += 16 + len;
            }
        }
    }
}

impl Drop for Creations {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours, closed once.
        unsafe { libc::close(self.0) };
    }
}

#[test]
fn a_failing_journal_write_is_said_once_per_streak_and_its_recovery_too() {
    let server = shared_pg();
    let run = Run::create(&settings(server), 1).unwrap();
    let dir = scratch("saidonce");
    let mut creations = Creations::watch(&dir);
    // A Rust worker: this binary re-run (`journal_child`).
    let mut worker = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "journal_child", "--ignored", "--nocapture", "-q"])
            .env(JOURNAL_CHILD_RUN, run.uuid())
            .envs(server.credentials_env())
            .env("TASKFARM_JOURNAL", &dir)
            .env("TASKFARM_JOURNAL_HEARTBEAT", "0.1")
            .env_remove("TASKFARM_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = worker.0.stderr.take().unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let name = wait_until("its journal naming its task", || {
        let name = journal_files(&dir, run.uuid()).first().cloned()?;
        let record = journal::read_record(&dir.join(&name), run.uuid()).ok()?;
        record.task.is_some().then_some(name)
    });
    let said = |wanted: &str| {
        let line = lines.recv_timeout(DEADLINE).unwrap_or_else(|e| {
            panic!("no line on the worker's stderr ({e}), {wanted:?} expected")
        });
        assert!(line.contains(wanted), "{line:?}: {wanted:?} expected");
    };
    for _streak in 0..2 {
        // A directory at the journal's name: every write fails (rename(2)
        // of a file over a directory, EISDIR) until it goes.
        std::fs::remove_file(dir.join(&name)).unwrap();
        std::fs::create_dir(dir.join(&name)).unwrap();
        creations.names();
        // Five heartbeats tried and failed: each made a temporary file.
        let mut tried = 0;
        wait_until("five failed writes", || {
            tried += creations
                .names()
                .iter()
                .filter(|n| n.ends_with(".tmp"))
                .count();
            (tried >= 5).then_some(())
        });
        std::fs::remove_dir(dir.join(&name)).unwrap();
        wait_until("the journal written again", || {
            std::fs::symlink_metadata(dir.join(&name))
                .is_ok_and(|m| m.is_file())
                .then_some(())
        });
        // In the order written: one line for the whole streak, then one
        // for the recovery.
        said("cannot write the journal");
        said("is written again");
    }
    drop(worker);
    assert!(
        lines.recv_timeout(Duration::from_secs(10)).is_err(),
        "more lines on the worker's stderr"
    );
}

/// The environment variable naming the run of [`journal_child`].
const JOURNAL_CHILD_RUN: &str = "REAP_SHARED_DIR_CHILD_RUN";

/// A worker process of [`a_failing_journal_write_is_said_once_per_streak_and_its_recovery_too`]
/// (ignored in a normal run): the server and journal from the environment
/// (`TASKFARM_LOG` unset), holds the first task for ever.
#[test]
#[ignore = "a worker process of another test of this file, which runs it"]
fn journal_child() {
    let uuid = std::env::var(JOURNAL_CHILD_RUN).expect("run by another test only");
    let run = Arc::new(Run::open(&Settings::from_env().unwrap(), &uuid).unwrap());
    let mut worker = Worker::register(run).unwrap();
    worker.task().unwrap().unwrap();
    loop {
        std::thread::park();
    }
}
