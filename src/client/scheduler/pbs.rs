//! PBS Pro / OpenPBS (`PBS_JOBID`, e.g. `1234.server`, or `1234[5].server`
//! for a subjob of an array).
//!
//! - Time left: `qstat -f -F json JOBID`: the job's `Resource_List.walltime`
//!   less its `resources_used.walltime` (no `walltime` limit: no deadline).
//!   `resources_used` is what the MoM last reported (it polls at most every
//!   two minutes), so the time left can be over by that much.
//! - Verdict: `qstat -x -f -F json JOBID` (`-x`: finished jobs too, while the
//!   server keeps their history): states `F` (finished) and `X` (subjob
//!   done) are gone, as is a job the server no longer knows; `M` (moved to
//!   another server) is unknown; every other state is alive.

use serde_json::Value;

use super::command::CommandOutput;
use super::{clock_seconds, first_line, state_from, stdout_of, JobId, JobState, TIME_LEFT_LIMIT};

/// Asks `qstat` the seconds job `id` has left; `Ok(None)`: no walltime limit.
pub fn time_left(id: &JobId) -> Result<Option<f64>, String> {
    let stdout = stdout_of("qstat", &["-f", "-F", "json", &id.job], TIME_LEFT_LIMIT)?;
    parse_time_left(&stdout, &id.job)
}

/// Asks `qstat` whether job `id` is still there.
pub fn job_state(id: &JobId) -> JobState {
    state_from(
        "qstat",
        &["-x", "-f", "-F", "json", &id.job],
        &[],
        |output| parse_job_state(output, &id.job),
    )
}

/// The seconds left from the JSON of `qstat -f -F json`: the limit
/// `Resource_List.walltime` less `resources_used.walltime` (0 before the MoM
/// first reported), at least 0. `Ok(None)` when the job has no walltime limit.
pub fn parse_time_left(json: &str, job: &str) -> Result<Option<f64>, String> {
    let document: Value = serde_json::from_str(json)
        .map_err(|e| format!("qstat printed no JSON that can be read ({e})"))?;
    let attributes =
        find_job(&document, job).ok_or_else(|| format!("qstat -F json does not list job {job}"))?;
    let Some(limit) = attributes.pointer("/Resource_List/walltime") else {
        return Ok(None);
    };
    let limit = duration(limit).ok_or_else(|| {
        format!("PBS job {job}: Resource_List.walltime {limit} is not a duration")
    })?;
    let used = match attributes.pointer("/resources_used/walltime") {
        None => 0.0,
        Some(used) => duration(used).ok_or_else(|| {
            format!("PBS job {job}: resources_used.walltime {used} is not a duration")
        })?,
    };
    Ok(Some((limit - used).max(0.0)))
}

/// The reaper's verdict from `qstat -x -f -F json JOBID`.
pub fn parse_job_state(output: &CommandOutput, job: &str) -> JobState {
    // qstat: Unknown Job Id 1234.server
    // qstat: 1234.server Job has finished, use -x or -H to obtain historical job information
    if output.stderr.contains("Unknown Job Id") {
        return JobState::Gone(format!("PBS no longer knows job {job}"));
    }
    if output.stderr.contains("Job has finished") {
        return JobState::Gone(format!("PBS job {job} has finished"));
    }
    if !output.success {
        return JobState::Unknown(format!(
            "qstat -x -f -F json {job} failed: {}",
            first_line(&output.stderr)
        ));
    }
    let document: Value = match serde_json::from_str(&output.stdout) {
        Ok(document) => document,
        Err(e) => {
            return JobState::Unknown(format!("qstat printed no JSON that can be read ({e})"))
        }
    };
    let Some(attributes) = find_job(&document, job) else {
        // A qstat document (its prolog names the server) without the job.
        if document.get("pbs_server").is_some() || document.get("Jobs").is_some() {
            return JobState::Gone(format!("qstat no longer lists job {job}"));
        }
        return JobState::Unknown(format!("qstat printed JSON without jobs for job {job}"));
    };
    match attributes.get("job_state").and_then(Value::as_str) {
        Some(state @ ("F" | "X")) => JobState::Gone(format!("PBS job {job} is {state} (ended)")),
        Some("M") => JobState::Unknown(format!("PBS job {job} moved to another server")),
        Some(state @ ("B" | "E" | "H" | "Q" | "R" | "T" | "W")) => {
            JobState::Alive(format!("PBS job {job} is {state}"))
        }
        Some(state @ ("S" | "U")) => {
            JobState::Suspended(format!("PBS job {job} is {state} (suspended)"))
        }
        Some(other) => JobState::Unknown(format!(
            "PBS job {job} is in state {:?}, which this library does not know",
            other.chars().take(20).collect::<String>()
        )),
        None => JobState::Unknown(format!("qstat gave no job_state for job {job}")),
    }
}

/// The attributes of `job` in a `qstat -F json` document: the entry of
/// `Jobs` named `job`, else the one whose id before the server name is the
/// same (`1234[5]` of `1234[5].server`): PBS may print the server's full
/// name where the job variable has its short name.
fn find_job<'a>(document: &'a Value, job: &str) -> Option<&'a Value> {
    let jobs = document.get("Jobs")?.as_object()?;
    let found = jobs.get(job).or_else(|| {
        let sequence = |id: &str| id.split('.').next().unwrap_or_default().to_owned();
        let wanted = sequence(job);
        jobs.iter()
            .find(|(id, _)| sequence(id) == wanted)
            .map(|(_, attributes)| attributes)
    })?;
    found.is_object().then_some(found)
}

/// A PBS duration: `[[hours:]minutes:]seconds` as a string, or a number of
/// seconds.
fn duration(value: &Value) -> Option<f64> {
    match value {
        Value::String(text) => clock_seconds(text),
        Value::Number(n) => n.as_f64().filter(|s| s.is_finite() && *s >= 0.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A running job as `qstat -f -F json 1.vbox` prints it. The prolog
    /// (`timestamp`, `pbs_version`, `pbs_server`), the `Jobs` map keyed by
    /// job id and the first attributes are the `-F json` example of the
    /// OpenPBS qstat(1B) manual page
    /// (https://github.com/openpbs/openpbs/blob/master/doc/man1/qstat.1B);
    /// that example stops after `job_state`, so the resources follow as
    /// `qstat -f` names them (`Resource_List.walltime`,
    /// `resources_used.walltime`: pbs_job_attributes(7B) and
    /// pbs_resources(7B), walltime as `hh:mm:ss`), one JSON object per
    /// resource list, numbers unquoted.
    ///
    /// The same answer is what the fake qstat replays (tests/fakes/pbs/).
    const RUNNING: &str = include_str!("../../../tests/fakes/pbs/answers/running.stdout");

    fn with(job: &str, state: &str, limit: &str, used: &str) -> String {
        RUNNING
            .replace("\"1.vbox\"", &format!("{job:?}"))
            .replace("\"job_state\":\"R\"", &format!("\"job_state\":{state:?}"))
            .replace("\"walltime\":\"01:00:00\"", limit)
            .replace("\"walltime\":\"00:10:00\"", used)
    }

    fn output(success: bool, stdout: &str, stderr: &str) -> CommandOutput {
        CommandOutput {
            success,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn the_time_left_is_the_walltime_limit_less_the_walltime_used() {
        assert_eq!(parse_time_left(RUNNING, "1.vbox"), Ok(Some(3000.0)));
        // The job variable may name the server otherwise than qstat does.
        assert_eq!(
            parse_time_left(RUNNING, "1.vbox.example.org"),
            Ok(Some(3000.0))
        );
        // Before the MoM's first report there is no resources_used.
        let fresh = with("1.vbox", "R", "\"walltime\":\"01:00:00\"", "\"none\":0");
        assert_eq!(parse_time_left(&fresh, "1.vbox"), Ok(Some(3600.0)));
        // Past its limit (the MoM has not killed it yet): nothing left.
        let over = with(
            "1.vbox",
            "R",
            "\"walltime\":\"00:05\"",
            "\"walltime\":\"00:10:00\"",
        );
        assert_eq!(parse_time_left(&over, "1.vbox"), Ok(Some(0.0)));
        // Hours beyond a day, and seconds as a number.
        let long = with(
            "1.vbox",
            "R",
            "\"walltime\":\"100:00:00\"",
            "\"walltime\":60",
        );
        assert_eq!(parse_time_left(&long, "1.vbox"), Ok(Some(359_940.0)));
    }

    #[test]
    fn a_subjob_of_an_array_is_found_by_its_own_id() {
        let array = with(
            "1234[5].vbox",
            "R",
            "\"walltime\":\"00:30:00\"",
            "\"walltime\":\"00:00:30\"",
        );
        assert_eq!(parse_time_left(&array, "1234[5].vbox"), Ok(Some(1770.0)));
        assert!(parse_time_left(&array, "1234[6].vbox").is_err());
        assert!(parse_time_left(&array, "1234[].vbox").is_err());
    }

    #[test]
    fn a_job_without_a_walltime_limit_has_no_deadline() {
        let unlimited = with("1.vbox", "R", "\"nolimit\":1", "\"walltime\":\"00:10:00\"");
        assert_eq!(parse_time_left(&unlimited, "1.vbox"), Ok(None));
    }

    #[test]
    fn answers_that_cannot_be_used_are_errors_not_panics() {
        let invalid = with(
            "1.vbox",
            "R",
            "\"walltime\":\"INVALID\"",
            "\"walltime\":\"00:10:00\"",
        );
        let weird_used = with(
            "1.vbox",
            "R",
            "\"walltime\":\"01:00:00\"",
            "\"walltime\":[1]",
        );
        let negative = with(
            "1.vbox",
            "R",
            "\"walltime\":-5",
            "\"walltime\":\"00:10:00\"",
        );
        for bad in [
            "",
            "garbage",
            "{}",
            "{\"Jobs\":[]}",
            "{\"Jobs\":{\"1.vbox\":\"R\"}}",
            &RUNNING[..RUNNING.len() / 2],
            &invalid,
            &weird_used,
            &negative,
            // Two documents: what a qstat that printed twice would give.
            &format!("{RUNNING}\n{RUNNING}"),
        ] {
            assert!(parse_time_left(bad, "1.vbox").is_err(), "{bad:?}");
        }
        assert!(parse_time_left(RUNNING, "2.vbox").is_err());
    }

    #[test]
    fn the_states_of_qstat_1b_decide_the_verdict() {
        // Job states: the S column of qstat(1B).
        for state in ["B", "E", "H", "Q", "R", "T", "W"] {
            let json = with(
                "1.vbox",
                state,
                "\"walltime\":\"01:00:00\"",
                "\"walltime\":\"0\"",
            );
            let verdict = parse_job_state(&output(true, &json, ""), "1.vbox");
            assert!(
                matches!(verdict, JobState::Alive(_)),
                "{state}: {verdict:?}"
            );
        }
        // S: suspended; U: suspended because its workstation became busy.
        // The first is what the fake qstat replays for a suspended job.
        const SUSPENDED: &str = include_str!("../../../tests/fakes/pbs/answers/suspended.stdout");
        assert!(matches!(
            parse_job_state(&output(true, SUSPENDED, ""), "1.vbox"),
            JobState::Suspended(_)
        ));
        for state in ["S", "U"] {
            let json = with(
                "1.vbox",
                state,
                "\"walltime\":\"01:00:00\"",
                "\"walltime\":\"0\"",
            );
            let verdict = parse_job_state(&output(true, &json, ""), "1.vbox");
            assert!(
                matches!(verdict, JobState::Suspended(_)),
                "{state}: {verdict:?}"
            );
        }
        for state in ["F", "X"] {
            let json = with(
                "1.vbox",
                state,
                "\"walltime\":\"01:00:00\"",
                "\"walltime\":\"0\"",
            );
            let verdict = parse_job_state(&output(true, &json, ""), "1.vbox");
            assert!(matches!(verdict, JobState::Gone(_)), "{state}: {verdict:?}");
        }
        for state in ["M", "Z", "", "INVALID"] {
            let json = with(
                "1.vbox",
                state,
                "\"walltime\":\"01:00:00\"",
                "\"walltime\":\"0\"",
            );
            let verdict = parse_job_state(&output(true, &json, ""), "1.vbox");
            assert!(
                matches!(verdict, JobState::Unknown(_)),
                "{state}: {verdict:?}"
            );
        }
    }

    #[test]
    fn a_job_the_server_no_longer_knows_is_gone() {
        // The messages of qstat for a job the server does not know and for a
        // finished one (asked without -x): OpenPBS's msg_unkjobid and
        // msg_historyjobid, as src/cmds/qstat.c prints them
        // (https://github.com/openpbs/openpbs/blob/master/src/lib/Liblog/pbs_messages.c).
        let unknown = output(false, "", "qstat: Unknown Job Id 1.vbox\n");
        assert!(matches!(
            parse_job_state(&unknown, "1.vbox"),
            JobState::Gone(_)
        ));
        let finished = output(
            false,
            "",
            "qstat: 1.vbox Job has finished, use -x or -H to obtain historical job information\n",
        );
        assert!(matches!(
            parse_job_state(&finished, "1.vbox"),
            JobState::Gone(_)
        ));
        let listed_without = output(true, r#"{"timestamp":1,"pbs_server":"vbox","Jobs":{}}"#, "");
        assert!(matches!(
            parse_job_state(&listed_without, "1.vbox"),
            JobState::Gone(_)
        ));
    }

    #[test]
    fn a_failing_or_garbled_qstat_is_unknown() {
        let down = output(
            false,
            "",
            "Connection refused\nqstat: cannot connect to server vbox (errno=111)\n",
        );
        match parse_job_state(&down, "1.vbox") {
            JobState::Unknown(why) => assert!(why.contains("Connection refused"), "{why}"),
            v => panic!("{v:?}"),
        }
        for stdout in ["", "garbage", "{\"Jobs\":", "[]"] {
            let verdict = parse_job_state(&output(true, stdout, ""), "1.vbox");
            assert!(
                matches!(verdict, JobState::Unknown(_)),
                "{stdout:?}: {verdict:?}"
            );
        }
        let no_state = RUNNING.replace("\"job_state\":\"R\",", "");
        assert!(matches!(
            parse_job_state(&output(true, &no_state, ""), "1.vbox"),
            JobState::Unknown(_)
        ));
    }
}
