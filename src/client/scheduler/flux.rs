//! Flux (`FLUX_JOB_ID`), alone or inside an allocation of another scheduler.
//!
//! - Time left: `flux job timeleft` (no job id: the job this process runs
//!   in, or the enclosing instance's expiration): whole seconds, `0` for an
//!   expired job, `UINT_MAX` (4294967295) for a job without a time limit.
//! - Verdict: `flux jobs -n -o {state} JOBID`, asked of the instance the
//!   job ran in (`FLUX_URI` as the worker's environment had it: a job id
//!   means nothing to another instance, and the instance of one node cannot
//!   be reached from another, which is then unknown): `INACTIVE` is gone,
//!   as is a job id flux reports unknown ("JobID ... unknown"); `DEPEND`,
//!   `PRIORITY`, `SCHED`, `RUN` and `CLEANUP` are alive. Without a recorded
//!   instance, unknown.

use super::command::CommandOutput;
use super::{first_line, state_from, stdout_of, JobId, JobState, TIME_LEFT_LIMIT};

/// What `flux job timeleft` prints for a job without a time limit.
const UNLIMITED: u64 = u32::MAX as u64;

/// Asks `flux job timeleft` the seconds this process's job has left;
/// `Ok(None)`: no time limit.
pub fn time_left(_id: &JobId) -> Result<Option<f64>, String> {
    parse_time_left(&stdout_of("flux", &["job", "timeleft"], TIME_LEFT_LIMIT)?)
}

/// Asks `flux jobs` whether job `id` is still there.
pub fn job_state(id: &JobId) -> JobState {
    let Some(instance) = &id.instance else {
        return JobState::Unknown(format!(
            "no Flux instance (FLUX_URI) recorded for Flux job {}",
            id.job
        ));
    };
    state_from(
        "flux",
        &["jobs", "-n", "-o", "{state}", &id.job],
        &[("FLUX_URI", instance)],
        |output| parse_job_state(output, &id.job),
    )
}

/// The seconds left from `flux job timeleft`: one line of whole seconds;
/// `UINT_MAX`, or `infinity` (its `-H` form), for no limit.
pub fn parse_time_left(text: &str) -> Result<Option<f64>, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let (Some(value), None) = (lines.next(), lines.next()) else {
        return Err(format!(
            "flux job timeleft printed {:?}, not one number",
            text.chars().take(80).collect::<String>()
        ));
    };
    if value.eq_ignore_ascii_case("infinity") || value.eq_ignore_ascii_case("inf") {
        return Ok(None);
    }
    let seconds = value
        .chars()
        .all(|c| c.is_ascii_digit())
        .then(|| value.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| format!("flux job timeleft printed {value:?}, not a number of seconds"))?;
    Ok((seconds < UNLIMITED).then_some(seconds as f64))
}

/// The reaper's verdict from `flux jobs -n -o {state} JOBID`.
pub fn parse_job_state(output: &CommandOutput, job: &str) -> JobState {
    // flux-jobs: "JobID <id> unknown" for an id it does not have (a purged
    // inactive job), exit status 1.
    if output
        .stderr
        .lines()
        .any(|l| l.contains("JobID") && l.contains("unknown"))
    {
        return JobState::Gone(format!("Flux no longer knows job {job}"));
    }
    if !output.success {
        return JobState::Unknown(format!(
            "flux jobs {job} failed: {}",
            first_line(&output.stderr)
        ));
    }
    let states: Vec<&str> = output
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match states[..] {
        [state @ ("DEPEND" | "PRIORITY" | "SCHED" | "RUN" | "CLEANUP")] => {
            JobState::Alive(format!("Flux job {job} is {state}"))
        }
        ["INACTIVE"] => JobState::Gone(format!("Flux job {job} is INACTIVE")),
        [] => JobState::Unknown(format!("flux jobs printed no state for job {job}")),
        [other] => JobState::Unknown(format!(
            "Flux job {job} is in state {:?}, which this library does not know",
            other.chars().take(20).collect::<String>()
        )),
        _ => JobState::Unknown(format!(
            "flux jobs printed {} lines for job {job}",
            states.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(success: bool, stdout: &str, stderr: &str) -> CommandOutput {
        CommandOutput {
            success,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn timeleft_prints_whole_seconds() {
        // flux-job(1), "timeleft": whole seconds left, 0 for an expired or
        // complete job, UINT_MAX without a limit (infinity with -H)
        // (https://github.com/flux-framework/flux-core/blob/master/doc/man1/flux-job.rst).
        assert_eq!(parse_time_left("3540\n"), Ok(Some(3540.0)));
        assert_eq!(parse_time_left("0\n"), Ok(Some(0.0)));
        assert_eq!(parse_time_left("4294967295\n"), Ok(None));
        assert_eq!(parse_time_left("infinity\n"), Ok(None));
    }

    #[test]
    fn answers_that_cannot_be_used_are_errors() {
        for bad in [
            "",
            "\n",
            "soon",
            "-5",
            "59m",
            "1.5",
            "60\n60\n",
            "INVALID",
            "99999999999999999999999",
        ] {
            assert!(parse_time_left(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_job_states_of_flux_decide_the_verdict() {
        // States: flux-jobs(1), "JOB STATUS" (RFC 21)
        // (https://github.com/flux-framework/flux-core/blob/master/doc/man1/flux-jobs.rst).
        for state in ["DEPEND", "PRIORITY", "SCHED", "RUN", "CLEANUP"] {
            let verdict = parse_job_state(&output(true, &format!("{state}\n"), ""), "ƒ2Jm5fqM7");
            assert!(
                matches!(verdict, JobState::Alive(_)),
                "{state}: {verdict:?}"
            );
        }
        let inactive = output(true, "INACTIVE\n", "");
        assert!(matches!(
            parse_job_state(&inactive, "ƒ2Jm5fqM7"),
            JobState::Gone(_)
        ));
    }

    #[test]
    fn an_unknown_job_id_is_gone() {
        // flux-core's t/t2800-jobs-cmd.t: "flux-jobs error on all unknown
        // IDs", exit status 1, one "unknown" line per id.
        let unknown = output(false, "", "JobID ƒ2Jm5fqM7 unknown\n");
        assert!(matches!(
            parse_job_state(&unknown, "ƒ2Jm5fqM7"),
            JobState::Gone(_)
        ));
    }

    #[test]
    fn a_failing_or_garbled_answer_is_unknown() {
        // flux-jobs: an id that is not one, or no broker to ask.
        let illegal = output(
            false,
            "",
            "flux-jobs: ERROR: invalid JobID value: IllegalID\n",
        );
        assert!(matches!(
            parse_job_state(&illegal, "IllegalID"),
            JobState::Unknown(_)
        ));
        let no_broker = output(false, "", "flux-jobs: ERROR: Unable to connect to Flux: broker socket /run/flux/local was not found\n");
        assert!(matches!(
            parse_job_state(&no_broker, "ƒ2Jm5fqM7"),
            JobState::Unknown(_)
        ));
        for stdout in ["", "RUN\nINACTIVE\n", "R\n", "INVALID\n"] {
            let verdict = parse_job_state(&output(true, stdout, ""), "ƒ2Jm5fqM7");
            assert!(
                matches!(verdict, JobState::Unknown(_)),
                "{stdout:?}: {verdict:?}"
            );
        }
    }
}
