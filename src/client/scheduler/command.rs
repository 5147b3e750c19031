//! A scheduler's client command run with a time limit: a command that hangs
//! (a scheduler that does not answer) is killed at the limit, so that the
//! worker and the reaper carry on without its answer instead of waiting.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a command that ran printed, and whether it exited with status 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exited with status 0.
    pub success: bool,
    /// Its standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// Its standard error (invalid UTF-8 replaced).
    pub stderr: String,
}

/// Runs `program ARGS` (looked up on `PATH`, stdin from /dev/null) and
/// waits at most `limit` for it. `Err` is one line: it could not be run, or
/// it was killed at the limit.
pub fn run_with_time_limit(
    program: &str,
    args: &[&str],
    limit: Duration,
) -> std::result::Result<CommandOutput, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    // Both pipes are read while the command runs: one that fills a pipe
    // would otherwise block before it exits.
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let end = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} {} did not answer within {limit:?}",
                    args.join(" ")
                ));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("waiting for {program}: {e}"));
            }
        }
    };
    Ok(CommandOutput {
        success: status.success(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_status_and_both_streams_are_returned() {
        let out = run_with_time_limit(
            "sh",
            &["-c", "echo out; echo err >&2; exit 3"],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(
            out,
            CommandOutput {
                success: false,
                stdout: "out\n".into(),
                stderr: "err\n".into()
            }
        );
    }

    #[test]
    fn a_hanging_command_is_killed_at_the_limit() {
        let started = Instant::now();
        let err = run_with_time_limit("sleep", &["30"], Duration::from_millis(200)).unwrap_err();
        assert!(err.contains("did not answer within"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_command_is_one_line() {
        let err = run_with_time_limit("taskfarm-no-such-command", &[], Duration::from_secs(1))
            .unwrap_err();
        assert!(
            err.starts_with("cannot run taskfarm-no-such-command"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }
}
