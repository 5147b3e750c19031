//! IBM Spectrum LSF (`LSB_JOBID`, and `LSB_JOBINDEX` for an element of a job
//! array: the element is `JOBID[INDEX]`; `0` for a job outside an array).
//!
//! - Time left: `bjobs -noheader -o "stat time_left delimiter='|'" JOB`:
//!   `time_left` is `hours:minutes` and a letter, as `bjobs -WL` prints it:
//!   `L`, a run limit and no estimate: the time left before the limit;
//!   `E` or `X`, it counts down the run time estimate (`bsub -We`, which LSF
//!   does not enforce), not the limit: no deadline. No `time_left` (`-`): no
//!   limit. The minute granularity makes the time left up to a minute long.
//! - Verdict: the `stat` of the same line: `DONE`, `EXIT`, `POST_DONE` and
//!   `POST_ERR` are gone, as is `Job <JOB> is not found` and "No unfinished
//!   job found"; `UNKWN` (mbatchd lost the host) and `ZOMBI` (killed while
//!   unknown) are unknown; `PEND`, `PROV`, `PSUSP`, `RUN`, `USUSP`, `SSUSP`
//!   and `WAIT` are alive.

use super::command::{run_with_time_limit, CommandOutput};
use super::{first_line, state_from, JobId, JobState, TIME_LEFT_LIMIT};

/// The `bjobs -o` fields asked, `|` between them.
const FORMAT: &str = "stat time_left delimiter='|'";

/// The job as bjobs names it: `JOBID`, or `JOBID[INDEX]` for an element.
pub fn job_ref(id: &JobId) -> String {
    match &id.task {
        Some(index) => format!("{}[{index}]", id.job),
        None => id.job.clone(),
    }
}

/// The arguments of bjobs asking about `job` (a [`job_ref`]).
fn bjobs_args(job: &str) -> [&str; 4] {
    ["-noheader", "-o", FORMAT, job]
}

/// Asks bjobs the seconds job `id` has left; `Ok(None)`: no run limit.
pub fn time_left(id: &JobId) -> Result<Option<f64>, String> {
    let job = job_ref(id);
    let output = run_with_time_limit("bjobs", &bjobs_args(&job), TIME_LEFT_LIMIT)?;
    parse_time_left(&output, &job)
}

/// Asks bjobs whether job `id` is still there.
pub fn job_state(id: &JobId) -> JobState {
    let job = job_ref(id);
    state_from("bjobs", &bjobs_args(&job), &[], |output| {
        parse_job_state(output, &job)
    })
}

/// The `STAT|TIME_LEFT` lines of the answer. bjobs may exit with 0 or 255
/// whatever it found (LSB_BJOBS_CONSISTENT_EXIT_CODE), so the messages are
/// read whatever the status.
fn answer_lines(output: &CommandOutput, job: &str) -> Result<Vec<(String, String)>, JobState> {
    let text = format!("{}\n{}", output.stdout, output.stderr);
    if text.contains(&format!("Job <{job}> is not found")) {
        return Err(JobState::Gone(format!("LSF no longer knows job {job}")));
    }
    if text.contains("No unfinished job found") {
        return Err(JobState::Gone(format!("LSF job {job} has finished")));
    }
    let lines: Vec<(String, String)> = output
        .stdout
        .lines()
        .filter_map(|line| {
            let (stat, left) = line.split_once('|')?;
            Some((stat.trim().to_owned(), left.trim().to_owned()))
        })
        .collect();
    if lines.is_empty() {
        let why = if output.success {
            format!("bjobs printed no STAT|TIME_LEFT line for job {job}")
        } else {
            format!("bjobs {job} failed: {}", first_line(&output.stderr))
        };
        return Err(JobState::Unknown(why));
    }
    Ok(lines)
}

/// The seconds left from `bjobs -noheader -o "stat time_left
/// delimiter='|'"`. Several lines (which one job does not give): the
/// smallest time left.
pub fn parse_time_left(output: &CommandOutput, job: &str) -> Result<Option<f64>, String> {
    let lines = answer_lines(output, job).map_err(|state| match state {
        JobState::Gone(why)
        | JobState::Unknown(why)
        | JobState::Alive(why)
        | JobState::Suspended(why) => why,
    })?;
    let mut least: Option<Option<f64>> = None;
    for (_, left) in &lines {
        let this = parse_time_left_field(left).map_err(|why| format!("LSF job {job}: {why}"))?;
        least = Some(match (least, this) {
            (None, this) => this,
            (Some(None), this) => this,
            (Some(Some(a)), Some(b)) => Some(a.min(b)),
            (Some(Some(a)), None) => Some(a),
        });
    }
    Ok(least.flatten())
}

/// One `time_left` value: `H:MM L` (or `H:MM:SS L` with `-hms`), `-` or
/// empty for no run limit.
pub fn parse_time_left_field(text: &str) -> Result<Option<f64>, String> {
    let text = text.trim();
    if text.is_empty() || text == "-" {
        return Ok(None);
    }
    let (clock, status) = match text.split_once(char::is_whitespace) {
        Some((clock, status)) => (clock, status.trim()),
        None => (text, ""),
    };
    match status {
        "" | "L" => {}
        "E" | "X" => {
            return Err(format!(
                "time_left {text:?} counts down the run time estimate, not a run limit"
            ))
        }
        _ => {
            return Err(format!(
                "time_left {text:?} is not hours:minutes and L, E or X"
            ))
        }
    }
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| {
            (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                .then(|| p.parse::<u64>().ok())
                .flatten()
        })
        .collect::<Option<_>>()
        .ok_or_else(|| format!("time_left {text:?} is not hours:minutes"))?;
    let seconds = match parts[..] {
        [hours, minutes] if minutes < 60 => (hours * 60 + minutes) * 60,
        [hours, minutes, seconds] if minutes < 60 && seconds < 60 => {
            (hours * 60 + minutes) * 60 + seconds
        }
        _ => return Err(format!("time_left {text:?} is not hours:minutes")),
    };
    Ok(Some(seconds as f64))
}

/// The reaper's verdict from the same answer.
pub fn parse_job_state(output: &CommandOutput, job: &str) -> JobState {
    let lines = match answer_lines(output, job) {
        Ok(lines) => lines,
        Err(state) => return state,
    };
    let verdicts: Vec<JobState> = lines
        .iter()
        .map(|(stat, _)| match stat.as_str() {
            "PEND" | "PROV" | "PSUSP" | "RUN" | "WAIT" => {
                JobState::Alive(format!("LSF job {job} is {stat}"))
            }
            "USUSP" | "SSUSP" => JobState::Suspended(format!("LSF job {job} is {stat}")),
            "DONE" | "EXIT" | "POST_DONE" | "POST_ERR" => {
                JobState::Gone(format!("LSF job {job} is {stat}"))
            }
            "UNKWN" => JobState::Unknown(format!("LSF lost the host of job {job} (UNKWN)")),
            "ZOMBI" => {
                JobState::Unknown(format!("LSF job {job} is ZOMBI (its host is unreachable)"))
            }
            other => JobState::Unknown(format!(
                "LSF job {job} is in state {:?}, which this library does not know",
                other.chars().take(20).collect::<String>()
            )),
        })
        .collect();
    match &verdicts[..] {
        [one] => one.clone(),
        [first, rest @ ..] if rest.iter().all(|v| v == first) => first.clone(),
        _ => JobState::Unknown(format!(
            "bjobs gave {} different states for job {job}",
            verdicts.len()
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

    fn left(stdout: &str) -> Result<Option<f64>, String> {
        parse_time_left(&output(true, stdout, ""), "111")
    }

    #[test]
    fn an_element_of_an_array_is_named_with_its_index() {
        let id = |task: Option<&str>| JobId {
            scheduler: super::super::Scheduler::Lsf,
            job: "123".into(),
            task: task.map(Into::into),
            instance: None,
        };
        assert_eq!(job_ref(&id(None)), "123");
        assert_eq!(job_ref(&id(Some("4"))), "123[4]");
    }

    #[test]
    fn time_left_is_hours_minutes_and_the_run_limit_letter() {
        // "hours:minutes status", status L: a run limit and no estimate
        // (bjobs -WL, https://www.ibm.com/support/knowledgecenter/SSWRJV_10.1.0/lsf_command_ref/bjobs.__w__l.1.html);
        // the fields as bjobs -o "... delimiter='|'" separates them
        // (https://www.ibm.com/docs/en/SSWRJV_10.1.0/lsf_command_ref/bjobs.o.1.html).
        assert_eq!(left("RUN|0:59 L\n"), Ok(Some(3540.0)));
        assert_eq!(left("RUN|26:05 L\n"), Ok(Some(93_900.0)));
        // With -hms (or LSB_HMS_TIME_FORMAT=Y): hh:mm:ss
        // (https://www.ibm.com/support/knowledgecenter/SSWRJV_10.1.0/lsf_command_ref/bjobs.hms.1.html).
        assert_eq!(left("RUN|00:59:30 L\n"), Ok(Some(3570.0)));
        // Several lines: the least time left.
        assert_eq!(left("RUN|1:00 L\nRUN|0:10 L\n"), Ok(Some(600.0)));
    }

    #[test]
    fn no_run_limit_is_no_deadline_and_an_estimate_is_not_a_limit() {
        assert_eq!(left("RUN|-\n"), Ok(None));
        assert_eq!(left("RUN|\n"), Ok(None));
        // E: an estimated run time (bsub -We) counts down; X: exceeded.
        assert!(left("RUN|0:30 E\n").is_err());
        assert!(left("RUN|0:00 X\n").is_err());
    }

    #[test]
    fn answers_that_cannot_be_used_are_errors() {
        for bad in [
            "",
            "garbage",
            "RUN 0:59 L",
            "RUN|INVALID\n",
            "RUN|0:99 L\n",
            "RUN|1:2:3:4 L\n",
            "RUN|0:59 Q\n",
            "RUN|-1:00 L\n",
            "RUN|0:59 L\nRUN|soon\n",
        ] {
            assert!(left(bad).is_err(), "{bad:?}");
        }
        assert!(parse_time_left(&output(false, "", "LSF is down; try later\n"), "111").is_err());
    }

    #[test]
    fn a_job_lsf_does_not_have_is_gone_whatever_the_exit_status() {
        // "Job <123> is not found" and "No unfinished job found", with exit
        // status 255 or 0 (LSB_BJOBS_CONSISTENT_EXIT_CODE,
        // https://www.ibm.com/support/knowledgecenter/SSWRJV_10.1.0/lsf_config_ref/lsf.conf.lsb_bjobs_consistent_exit_code.5.html).
        for success in [true, false] {
            let missing = output(success, "", "Job <123> is not found\n");
            assert!(matches!(
                parse_job_state(&missing, "123"),
                JobState::Gone(_)
            ));
            let finished = output(success, "No unfinished job found\n", "");
            assert!(matches!(
                parse_job_state(&finished, "123"),
                JobState::Gone(_)
            ));
        }
        // Another job's message is not this job's.
        let other = output(true, "", "Job <1234> is not found\n");
        assert!(matches!(
            parse_job_state(&other, "123"),
            JobState::Unknown(_)
        ));
        let element = output(false, "", "Job <123[4]> is not found\n");
        assert!(matches!(
            parse_job_state(&element, "123[4]"),
            JobState::Gone(_)
        ));
    }

    #[test]
    fn the_job_states_of_lsf_decide_the_verdict() {
        // Job states: "LSF terms and concepts"
        // (https://www.ibm.com/docs/vi/SSWRJV_10.1.0/lsf_admin/terms.html).
        for stat in ["PEND", "PROV", "PSUSP", "RUN", "WAIT"] {
            let verdict = parse_job_state(&output(true, &format!("{stat}|0:59 L\n"), ""), "111");
            assert!(matches!(verdict, JobState::Alive(_)), "{stat}: {verdict:?}");
        }
        // Suspended by its user (bstop) or by LSF: alive, its heartbeat
        // standing still. PSUSP never ran: no worker's heartbeat to stand.
        // The fake bjobs replays the first for a suspended job.
        const SUSPENDED: &str = include_str!("../../../tests/fakes/lsf/answers/suspended.stdout");
        assert!(matches!(
            parse_job_state(&output(true, SUSPENDED, ""), "111"),
            JobState::Suspended(_)
        ));
        for stat in ["USUSP", "SSUSP"] {
            let verdict = parse_job_state(&output(true, &format!("{stat}|0:59 L\n"), ""), "111");
            assert!(
                matches!(verdict, JobState::Suspended(_)),
                "{stat}: {verdict:?}"
            );
        }
        for stat in ["DONE", "EXIT", "POST_DONE", "POST_ERR"] {
            let verdict = parse_job_state(&output(true, &format!("{stat}|-\n"), ""), "111");
            assert!(matches!(verdict, JobState::Gone(_)), "{stat}: {verdict:?}");
        }
        for stat in ["UNKWN", "ZOMBI", "INVALID", ""] {
            let verdict = parse_job_state(&output(true, &format!("{stat}|-\n"), ""), "111");
            assert!(
                matches!(verdict, JobState::Unknown(_)),
                "{stat}: {verdict:?}"
            );
        }
    }

    #[test]
    fn several_lines_that_disagree_or_garbage_are_unknown() {
        let agree = output(true, "RUN|0:59 L\nRUN|0:58 L\n", "");
        assert!(matches!(parse_job_state(&agree, "111"), JobState::Alive(_)));
        let disagree = output(true, "RUN|0:59 L\nDONE|-\n", "");
        assert!(matches!(
            parse_job_state(&disagree, "111"),
            JobState::Unknown(_)
        ));
        for stdout in ["", "garbage\n", "\u{0}\n"] {
            let verdict = parse_job_state(&output(true, stdout, ""), "111");
            assert!(
                matches!(verdict, JobState::Unknown(_)),
                "{stdout:?}: {verdict:?}"
            );
        }
        let down = output(false, "", "LSF is down; try later\n");
        match parse_job_state(&down, "111") {
            JobState::Unknown(why) => assert!(why.contains("LSF is down"), "{why}"),
            v => panic!("{v:?}"),
        }
    }
}
