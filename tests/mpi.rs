//! The MPI examples (examples/mpi_worker.c and examples/mpi_worker.f90)
//! under real Open MPI (`mpirun.openmpi`) and MPICH (`mpiexec.mpich`), against the
//! real server on PostgreSQL + gunicorn: 4 ranks (more than the machine's
//! cores) on one run of 200 tasks, each language with each MPI.
//!
//! Each test checks that every task was done exactly once (the tasks rank 0
//! gathered from all ranks, and the server's numDone == numTasks), that the
//! job exited 0, and that the whole job made exactly one `GET token` (rank
//! 0's password check; the other ranks start with the broadcast token).
//!
//! The runs take turns (one lock): 4 ranks already oversubscribe the
//! machine, and the access log is counted per run.

mod common;

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::jobs::{
    assert_each_task_once, assert_run_done, examples, mpi_report, new_run, pg_server,
    run_with_deadline, scratch, token_requests,
};

const RANKS: usize = 4;
const TASKS: i64 = 200;
const DEADLINE: Duration = Duration::from_secs(600);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[derive(Clone, Copy)]
enum Mpi {
    OpenMpi,
    Mpich,
}

/// `program` (built for `mpi`) on RANKS ranks on a new run of TASKS tasks.
fn run_ranks(mpi: Mpi, program: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = pg_server();
    let (flavour, mut cmd) = match mpi {
        Mpi::OpenMpi => {
            let mut cmd = Command::new("mpirun.openmpi");
            // Root needs --allow-run-as-root; more ranks than cores need
            // --oversubscribe.
            cmd.args(["--allow-run-as-root", "--oversubscribe"]);
            ("openmpi", cmd)
        }
        Mpi::Mpich => ("mpich", Command::new("mpiexec.mpich")),
    };
    let binary = examples().join(flavour).join(program);
    let uuid = new_run(server, TASKS);
    let checks_before = token_requests(server);
    cmd.args(["-n", &RANKS.to_string()])
        .arg(&binary)
        .arg(&uuid)
        .envs(server.credentials_env())
        .env_remove("TASKFARM_TOKEN")
        .env("WORKER_STEP_MS", "0");
    let name = format!("{flavour}-{program}");
    let end = run_with_deadline(cmd, &scratch("mpi"), &name, DEADLINE);
    assert!(
        end.status.success(),
        "{name} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        end.status,
        end.stdout,
        end.stderr
    );
    let done = mpi_report(&end.stdout, RANKS);
    let token_checks = token_requests(server) - checks_before;
    assert_each_task_once(TASKS, &done);
    assert_run_done(server, &uuid, TASKS);
    assert_eq!(
        token_checks, 1,
        "password checks (GET token) of the whole {name} job: rank 0's only"
    );
    eprintln!(
        "{name}: {TASKS} tasks by {RANKS} ranks ({:?} each), one GET token",
        done.values().map(Vec::len).collect::<Vec<_>>()
    );
}

/// The exit status reports a failure of the job: rank 0 cannot open a run
/// that does not exist, no rank gets a token, every rank ends, status 1.
#[test]
fn mpi_worker_exits_1_when_rank_0_cannot_open_the_run() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = pg_server();
    let mut cmd = Command::new("mpirun.openmpi");
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-n", "2"])
        .arg(examples().join("openmpi/mpi_worker"))
        .env("TASKFARM_RUN", "0123456789abcdef0123456789abcdef")
        .envs(server.credentials_env())
        .env_remove("TASKFARM_TOKEN");
    let end = run_with_deadline(cmd, &scratch("mpi"), "no-such-run", DEADLINE);
    assert_eq!(end.status.code(), Some(1), "{}{}", end.stdout, end.stderr);
    assert!(
        end.stderr
            .contains("rank 0: opening the run failed (TF_ERR_NOT_FOUND)")
            && end.stderr.contains("at least one rank failed"),
        "{}",
        end.stderr
    );
    assert!(
        !end.stderr.contains(&server.password),
        "the password in the output"
    );
}

#[test]
fn open_mpi_c_ranks_share_one_token_and_do_every_task_once() {
    run_ranks(Mpi::OpenMpi, "mpi_worker");
}

#[test]
fn open_mpi_fortran_ranks_share_one_token_and_do_every_task_once() {
    run_ranks(Mpi::OpenMpi, "mpi_worker_f");
}

#[test]
fn mpich_c_ranks_share_one_token_and_do_every_task_once() {
    run_ranks(Mpi::Mpich, "mpi_worker");
}

#[test]
fn mpich_fortran_ranks_share_one_token_and_do_every_task_once() {
    run_ranks(Mpi::Mpich, "mpi_worker_f");
}
