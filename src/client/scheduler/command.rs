//! A scheduler's command (`squeue`, `scontrol`, ...) run with a time limit:
//! its output read whole (both pipes drained while it runs, so that a long
//! answer cannot block it), the command killed when the limit is reached.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a command that ran to its end printed, and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// It exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs `program ARGS` (no input), killed after `limit`. `Err` is one line:
/// the command could not be run, or it took more than `limit`.
pub fn run_with_time_limit(
    program: &str,
    args: &[&str],
    limit: Duration,
) -> std::result::Result<CommandOutput, String> {
    run_with_env(program, args, &[], limit)
}

/// [`run_with_time_limit`] with the variables `env` added to the command's
/// environment (Flux's `FLUX_URI`: which instance is asked).
pub fn run_with_env(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> std::result::Result<CommandOutput, String> {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let out = read(child.stdout.take().map(|p| Box::new(p) as _));
    let err = read(child.stderr.take().map(|p| Box::new(p) as _));
    let end = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} {} took more than {limit:?}",
                    args.join(" ")
                ));
            }
        }
    };
    Ok(CommandOutput {
        success: status.success(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_status_and_time_limit() {
        let ok = run_with_time_limit(
            "sh",
            &["-c", "echo out; echo err >&2"],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(
            ok,
            CommandOutput {
                success: true,
                stdout: "out\n".into(),
                stderr: "err\n".into()
            }
        );
        assert!(
            !run_with_time_limit("sh", &["-c", "exit 3"], Duration::from_secs(10))
                .unwrap()
                .success
        );
        let slow = run_with_time_limit("sleep", &["5"], Duration::from_millis(100)).unwrap_err();
        assert_eq!(slow, "sleep 5 took more than 100ms");
        let with_env = run_with_env(
            "sh",
            &["-c", "echo $TASKFARM_TEST_VALUE"],
            &[("TASKFARM_TEST_VALUE", "seen")],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(with_env.stdout, "seen\n");
        let missing = run_with_time_limit("taskfarm-no-such-command", &[], Duration::from_secs(1))
            .unwrap_err();
        assert!(
            missing.starts_with("cannot run taskfarm-no-such-command: "),
            "{missing}"
        );
    }
}
