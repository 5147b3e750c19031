//! What `taskfarm run`'s exit status says, and how a command's end is told
//! in the message of a failed attempt.

use taskfarm_worker::internal::worker::stop_signals::signal_name;

use super::child::Ended;

/// Some attempts failed or timed out (the run went on: no task was left).
pub const EXIT_FAILED_ATTEMPTS: i32 = 7;
/// The wall time left no time for another task (`TASKFARM_DEADLINE`, the
/// Slurm job's end): the tasks not started are left for another job.
pub const EXIT_WALL_TIME: i32 = 8;

/// The exit statuses, for `taskfarm run --help`.
pub const HELP: &str = "\
Exit status:
  0    no task was left, and every command it ran exited with status 0
  1    local failure (a command that cannot be started, --output or
       --joblog that cannot be written); the task held is handed back
  2    usage error
  3-6  the server: unreachable after retries (3), refused credentials (4),
       no such run (5), another server or protocol error (6)
  7    some attempts failed (non-zero exit, a signal, --timeout); the run
       went on until no task was left; `taskfarm failed` lists them
  8    stopped at the wall time: the time left could not fit another task
       (TASKFARM_DEADLINE, the Slurm job's end); no task is lost
  128+N  a stop signal N (TERM, INT, HUP, XCPU, and TASKFARM_STOP_SIGNALS):
       forwarded to the commands as SIGTERM (SIGKILL --kill-after seconds
       later), their tasks handed back at their last reported percentage,
       then taskfarm run ends as the signal would have ended it";

/// How a command ended, in words: `exit status 3`, `killed by SIGSEGV`.
pub fn describe(ended: &Ended) -> String {
    match (ended.exit, ended.signal) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by {}", signal_name(signal)),
        (None, None) => format!("wait status {:#x}", ended.status),
    }
}

/// The message of a failed attempt: `what` happened, then the last lines of
/// the command's stderr, when it wrote any.
pub fn failure_message(what: &str, stderr_tail: &str) -> String {
    if stderr_tail.trim().is_empty() {
        what.to_owned()
    } else {
        format!("{what}; the end of its stderr:\n{stderr_tail}")
    }
}
