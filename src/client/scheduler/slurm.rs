//! Every Slurm query of the library and the command-line tool, each with
//! its parser: a job's time left (`squeue -o %L`, for a worker's deadline)
//! and a job's and a step's state (`squeue -t all`, `squeue -s`, for
//! `taskfarm reap`). Each `squeue` runs with a time limit
//! ([`run_with_time_limit`]).

use std::time::Duration;

use super::command::run_with_time_limit;

/// How long `squeue` may take before the worker carries on without a deadline.
const TIME_LEFT_LIMIT: Duration = Duration::from_secs(10);

/// How long a state query may take before Slurm counts as unknown.
const STATE_LIMIT: Duration = Duration::from_secs(30);

/// What Slurm says about a worker's job or step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlurmState {
    /// Running (or about to): no proof either way for one worker in it.
    Running,
    /// Suspended (`scontrol suspend`, preemption by suspension, gang
    /// scheduling) or stopped: its processes live but cannot run, so their
    /// heartbeat stands still; alive.
    Suspended(String),
    /// Ended, with why.
    Gone(String),
    /// Slurm cannot tell (no squeue, an error): why.
    Unknown(String),
}

/// Runs `squeue -h -j JOB -o "%A %L"`: the seconds left, `None` for no
/// time limit.
pub fn time_left(job: &str) -> std::result::Result<Option<f64>, String> {
    let args = ["-h", "-j", job, "-o", "%A %L"];
    let output = run_with_time_limit("squeue", &args, TIME_LEFT_LIMIT)?;
    if !output.success {
        return Err(format!(
            "squeue {} failed: {}",
            args.join(" "),
            output.stderr.trim()
        ));
    }
    parse_job_time_left(&output.stdout, job)
}

/// The time left of job `job` from `squeue -h -j JOB -o "%A %L"`: the line
/// whose job id (`%A`) is `job`. The element of an array that carries the
/// array's job id gets a line for every element of the array; only its own
/// counts.
pub fn parse_job_time_left(stdout: &str, job: &str) -> std::result::Result<Option<f64>, String> {
    let line = stdout.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(job)).then(|| words.next().unwrap_or_default())
    });
    match line {
        Some(left) => parse_time_left(left),
        None => Err(format!("squeue does not list job {job}")),
    }
}

/// Parses squeue's `%L`: `[[DAYS-]HOURS:]MINUTES:SECONDS`, `UNLIMITED` /
/// `NOT_SET` for a job without a time limit, and `INVALID` for a job past
/// its limit (no time left: 0).
pub fn parse_time_left(text: &str) -> std::result::Result<Option<f64>, String> {
    if matches!(text, "UNLIMITED" | "NOT_SET" | "INFINITE") {
        return Ok(None);
    }
    if text == "INVALID" {
        return Ok(Some(0.0));
    }
    let bad = || format!("squeue printed {text:?}, not a time left");
    let (days, clock) = match text.split_once('-') {
        Some((d, rest)) => (d.parse::<u64>().map_err(|_| bad())?, rest),
        None => (0, text),
    };
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse::<u64>().map_err(|_| bad()))
        .collect::<std::result::Result<_, _>>()?;
    let (hours, minutes, seconds) = match parts[..] {
        [m, s] => (0, m, s),
        [h, m, s] => (h, m, s),
        _ => return Err(bad()),
    };
    Ok(Some(
        (((days * 24 + hours) * 60 + minutes) * 60 + seconds) as f64,
    ))
}

/// The state of job `job` (its own id: an array element's, not the array's)
/// from `squeue -h -t all -j JOB -o "%A %T"`.
pub fn job_state(job: &str) -> SlurmState {
    match run_with_time_limit(
        "squeue",
        &["-h", "-t", "all", "-j", job, "-o", "%A %T"],
        STATE_LIMIT,
    ) {
        Ok(output) => parse_job_state(output.success, &output.stdout, &output.stderr, job),
        Err(why) => SlurmState::Unknown(why),
    }
}

/// The job state from `squeue -h -t all -j JOB -o "%A %T"` (lines `JOBID
/// STATE`; the lines of other jobs, the other elements of an array, are
/// not this job's).
pub fn parse_job_state(success: bool, stdout: &str, stderr: &str, job: &str) -> SlurmState {
    if !success {
        if stderr.contains("Invalid job id") {
            return SlurmState::Gone(format!("Slurm no longer knows job {job}"));
        }
        return SlurmState::Unknown(format!("squeue -j {job} failed: {}", stderr.trim()));
    }
    let state = stdout.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(job)).then(|| words.next().unwrap_or_default())
    });
    match state {
        None => SlurmState::Gone(format!("squeue no longer lists job {job}")),
        Some(
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "RESIZING" | "SIGNALING"
            | "STAGE_OUT" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD",
        ) => SlurmState::Running,
        Some(state @ ("SUSPENDED" | "STOPPED")) => {
            SlurmState::Suspended(format!("its Slurm job {job} is {state}"))
        }
        Some("") => SlurmState::Unknown(format!("squeue gave no state for job {job}")),
        Some(other) => SlurmState::Gone(format!("Slurm job {job} is {other}")),
    }
}

/// The state of step `step` of job `job` from `squeue -h -s -j JOB -o %i`;
/// `element` is `(array job id, array task id)` for an array element.
pub fn step_state(job: &str, step: &str, element: Option<(&str, &str)>) -> SlurmState {
    match run_with_time_limit("squeue", &["-h", "-s", "-j", job, "-o", "%i"], STATE_LIMIT) {
        Ok(output) if output.success => parse_step_state(&output.stdout, job, step, element),
        Ok(output) => SlurmState::Unknown(format!(
            "squeue -s -j {job} failed: {}",
            output.stderr.trim()
        )),
        Err(why) => SlurmState::Unknown(why),
    }
}

/// The step state from `squeue -h -s -j JOB -o %i`: lines `JOB.STEP`, or
/// `ARRAYJOB_TASK.STEP` for the steps of an array element.
pub fn parse_step_state(
    stdout: &str,
    job: &str,
    step: &str,
    element: Option<(&str, &str)>,
) -> SlurmState {
    let mut names = vec![format!("{job}.{step}")];
    if let Some((array, index)) = element {
        names.push(format!("{array}_{index}.{step}"));
    }
    if stdout
        .split_whitespace()
        .any(|s| names.iter().any(|n| n == s))
    {
        SlurmState::Running
    } else {
        SlurmState::Gone(format!("Slurm step {job}.{step} is no longer running"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_time_left_formats() {
        assert_eq!(parse_time_left("0:59"), Ok(Some(59.0)));
        assert_eq!(parse_time_left("1:00:05"), Ok(Some(3605.0)));
        assert_eq!(parse_time_left("2-03:04:05"), Ok(Some(183_845.0)));
        assert_eq!(parse_time_left("UNLIMITED"), Ok(None));
        assert_eq!(parse_time_left("INVALID"), Ok(Some(0.0)), "past its limit");
        assert!(parse_time_left("").is_err());
        assert!(parse_time_left("1:2:3:4").is_err());
    }

    #[test]
    fn the_time_left_is_the_jobs_own_line() {
        // squeue -j 40 -o "%A %L" for the element that carries the array's
        // id 40: a line for every element of the array.
        let array = "41 10:00\n42 20:00\n40 5:00\n";
        assert_eq!(parse_job_time_left(array, "40"), Ok(Some(300.0)));
        assert_eq!(parse_job_time_left(array, "42"), Ok(Some(1200.0)));
        assert_eq!(parse_job_time_left("7 INVALID\n", "7"), Ok(Some(0.0)));
        assert_eq!(parse_job_time_left("7 UNLIMITED\n", "7"), Ok(None));
        assert!(parse_job_time_left("8 1:00\n", "7").is_err());
    }

    #[test]
    fn a_suspended_job_is_told_apart_from_a_running_one() {
        assert!(matches!(
            parse_job_state(true, "7 SUSPENDED\n", "", "7"),
            SlurmState::Suspended(_)
        ));
        assert!(matches!(
            parse_job_state(true, "7 STOPPED\n", "", "7"),
            SlurmState::Suspended(_)
        ));
    }

    #[test]
    fn squeue_answers_are_read() {
        assert_eq!(
            parse_job_state(true, "7 RUNNING\n", "", "7"),
            SlurmState::Running
        );
        assert_eq!(
            parse_job_state(true, "7 COMPLETING\n", "", "7"),
            SlurmState::Running
        );
        assert!(matches!(
            parse_job_state(true, "7 CANCELLED\n", "", "7"),
            SlurmState::Gone(_)
        ));
        assert!(matches!(
            parse_job_state(true, "", "", "7"),
            SlurmState::Gone(_)
        ));
        assert!(matches!(
            parse_job_state(
                false,
                "",
                "slurm_load_jobs error: Invalid job id specified",
                "7"
            ),
            SlurmState::Gone(_)
        ));
        assert!(matches!(
            parse_job_state(false, "", "Unable to contact slurm controller", "7"),
            SlurmState::Unknown(_)
        ));
        assert_eq!(
            parse_step_state("7.0\n7.1\n", "7", "1", None),
            SlurmState::Running
        );
        assert!(matches!(
            parse_step_state("7.0\n", "7", "1", None),
            SlurmState::Gone(_)
        ));
        assert!(matches!(
            parse_step_state("17.1\n", "7", "1", None),
            SlurmState::Gone(_)
        ));
    }

    #[test]
    fn an_array_element_is_told_apart_from_the_rest_of_its_array() {
        // squeue -t all -j 1 of array 1 whose element 1 has job id 1 and
        // element 0 job id 2: the master id lists every element.
        let array = "2 CANCELLED\n1 RUNNING\n";
        assert_eq!(parse_job_state(true, array, "", "1"), SlurmState::Running);
        assert_eq!(
            parse_job_state(true, array, "", "2"),
            SlurmState::Gone("Slurm job 2 is CANCELLED".into())
        );
        assert_eq!(
            parse_job_state(true, "1 CANCELLED\n2 RUNNING\n", "", "1"),
            SlurmState::Gone("Slurm job 1 is CANCELLED".into())
        );
        // Another element only: this one is no longer listed.
        assert!(matches!(
            parse_job_state(true, "2 RUNNING\n", "", "1"),
            SlurmState::Gone(_)
        ));
        assert!(matches!(
            parse_job_state(true, "1\n", "", "1"),
            SlurmState::Unknown(_)
        ));
        // squeue -s names an element's steps ARRAYJOB_TASK.STEP.
        let element = Some(("1", "1"));
        let steps = "1_1.0\n1_1.batch\n1_0.0\n1_0.batch\n";
        assert_eq!(
            parse_step_state(steps, "1", "0", element),
            SlurmState::Running
        );
        assert!(matches!(
            parse_step_state("1_1.batch\n1_0.0\n", "1", "0", element),
            SlurmState::Gone(_)
        ));
    }
}
