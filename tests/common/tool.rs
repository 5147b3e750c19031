//! The `taskfarm` tool as the tests run it: a command with a test server's
//! credentials and none of the variables of the environment that would
//! change what a test checks, and a wait on an event while it runs that
//! never leaves it running.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server::TaskfarmServer;

/// `taskfarm ARGS` with `server`'s credentials (no token, journal, deadline
/// or log setting of the environment; every update sent at once), not
/// started yet.
pub fn taskfarm(server: &TaskfarmServer, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
    command
        .args(args)
        .envs(server.credentials_env())
        .env_remove("TASKFARM_TOKEN")
        .env_remove("TASKFARM_LOG")
        .env_remove("TASKFARM_JOURNAL")
        .env_remove("TASKFARM_DEADLINE")
        .env("TASKFARM_UPDATE_INTERVAL", "0")
        .stdin(Stdio::null());
    command
}

/// Waits until `check` is true while `child` (a `taskfarm` started with its
/// stderr piped) runs, at most `deadline`: then the child is killed (a test
/// never leaves it running) and the failure shows its stderr.
pub fn wait_while_running(
    child: &mut Child,
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> bool,
) {
    let until = Instant::now() + deadline;
    while !check() {
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("waited {deadline:?} for {what}; taskfarm said:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
