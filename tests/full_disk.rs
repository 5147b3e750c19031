//! The worker journal on a full file system: a task whose release the
//! journal cannot record is not released. Against the real server
//! (PostgreSQL + gunicorn) with the real `taskfarm run` and `taskfarm reap`;
//! the journal directory is a small tmpfs that the test mounts, fills and
//! unmounts (root, as the Slurm and shared-directory tests are).
//!
//! Why: the journal says "releasing" before a worker hands a task back, so
//! that a reaper never gives it back a second time. When that cannot be
//! written, the journal on disk still names the task as held; a hand-back
//! then would be repeated by the reaper once the worker has ended, maybe
//! after another worker took the task (computed twice). So the task stays
//! held, and the reaper gives it back once.
//!
//! 1. `taskfarm run` stopped with SIGTERM while its journal's file system is
//!    full: its task stays `computing` at its percentage (the refusal on
//!    stderr), the next worker gets the next task, and after the runner
//!    ended `taskfarm reap` gives the task back once, at its percentage,
//!    leaving the other worker's task alone.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::jobs::{pg_server, scratch};
use common::tool::{taskfarm, wait_while_running};
use serde_json::Value;
use taskfarm_worker::internal::{Run, TaskState, Worker};

const DEADLINE: Duration = Duration::from_secs(120);

/// A tmpfs of `KIB` KiB mounted on a directory of the test's scratch area,
/// unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
    filler: PathBuf,
}

impl Tmpfs {
    fn mount(dir: PathBuf, kib: u32) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "mounting a tmpfs on {} failed (this test needs root): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let filler = dir.join("filler");
        Tmpfs { dir, filler }
    }

    /// Fills the file system: every later write of a new file fails (ENOSPC).
    fn fill(&self) {
        let mut file = std::fs::File::create(&self.filler).unwrap();
        let block = [0u8; 4096];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", self.dir.display()),
            }
        }
        let probe = self.dir.join("probe");
        assert!(
            std::fs::write(&probe, b"x").is_err(),
            "{} is not full",
            self.dir.display()
        );
    }

    fn free(&self) {
        std::fs::remove_file(&self.filler).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn task_on_server(run: &Run, task: i64) -> (TaskState, f64) {
    let record = run.task(task).unwrap();
    (record.status, record.percent_completed)
}

/// The process id a command wrote to `path`, once the line is whole.
fn pid_in(path: &Path) -> Option<i32> {
    let line = std::fs::read_to_string(path).ok()?;
    line.strip_suffix('\n')?.parse().ok()
}

#[test]
fn a_stopped_runner_whose_journal_is_full_leaves_its_task_for_the_reaper_to_give_back_once() {
    let server = pg_server();
    let run = Arc::new(Run::create(&server.settings(), 3).unwrap());
    let d = scratch("full-disk").join("runner");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let journal = Tmpfs::mount(d.join("journal"), 64);
    let pid_file = d.join("pid");
    let script = format!(
        "echo $$ > {}; echo 40 > \"$TASKFARM_PROGRESS\"; exec sleep 600",
        pid_file.display()
    );
    let journal_dir = journal.dir.to_str().unwrap().to_owned();
    let mut runner = taskfarm(
        server,
        &[
            "run",
            run.uuid(),
            "--journal",
            &journal_dir,
            "--",
            "sh",
            "-c",
            &script,
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start taskfarm run");
    // The command runs (so task 0 was handed out) and its 40 % reached the
    // server (and the journal, written with the task held).
    wait_while_running(&mut runner, "the command to start", DEADLINE, || {
        pid_in(&pid_file).is_some()
    });
    wait_while_running(
        &mut runner,
        "task 0 at 40 % on the server",
        DEADLINE,
        || task_on_server(&run, 0) == (TaskState::Computing, 40.0),
    );

    journal.fill();
    // SAFETY: signals our own child.
    unsafe { libc::kill(runner.id() as i32, libc::SIGTERM) };
    let status = runner.wait().unwrap();
    let mut stderr = String::new();
    runner
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}: {stderr}");

    // Another worker gets the next task: task 0 is nobody's to take (handed
    // back, the reaper would give it back again under this worker's feet).
    let mut other = Worker::register(Arc::clone(&run)).unwrap();
    assert_eq!(
        other.task().unwrap(),
        Some(1),
        "task 0 was handed back while its journal names it: {stderr}"
    );
    assert_eq!(task_on_server(&run, 0), (TaskState::Computing, 40.0));
    assert!(
        stderr.contains("task 0 was not handed back: the worker journal cannot be written"),
        "{stderr}"
    );

    // The reaper, once the runner has ended: the journal names task 0, its
    // worker is gone: given back once, at its percentage; task 1 untouched.
    journal.free();
    let reap = || -> Value {
        let out = taskfarm(
            server,
            &["reap", run.uuid(), "--journal", &journal_dir, "--json"],
        )
        .output()
        .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    let pass = reap();
    assert_eq!(common::journals::given_back(&pass), vec![0], "{pass}");
    assert_eq!(task_on_server(&run, 0), (TaskState::Waiting, 40.0));
    assert_eq!(task_on_server(&run, 1), (TaskState::Computing, 0.0));
    let again = reap();
    assert!(common::journals::given_back(&again).is_empty(), "{again}");
    other.update(100.0).unwrap();
    other.done().unwrap();
    assert_eq!(task_on_server(&run, 1), (TaskState::Done, 100.0));
}
