//! Grid Engine: Son of Grid Engine (Debian's `gridengine-*` packages) and
//! Altair (formerly Univa) Grid Engine (`JOB_ID`, and `SGE_TASK_ID` for a
//! task of an array job; `undefined` otherwise).
//!
//! - Time left: the job's hard `h_rt` limit from `qstat -j JOBID` ("hard
//!   resource_list"; none, or `INFINITY`: no deadline), less the time since
//!   its task started, from the `qstat -s rs` job list ("submit/start at",
//!   which qstat prints in the local time of the machine that runs it: this
//!   one). `qstat -j` has no start time or wall-clock usage in Son of Grid
//!   Engine. A limit set by the queue and not asked for by the job is not
//!   in `qstat -j`: no deadline then.
//! - Verdict: `qstat -j JOBID`: "Following jobs do not exist" is gone; a job
//!   that qstat shows is alive (queued, held, running or suspended). For an
//!   array task, only a task that runs has a `usage` line: without one the
//!   task was queued again or has ended while others of its array remain,
//!   which qstat -j does not tell apart: unknown.

use super::command::{run_with_time_limit, CommandOutput};
use super::{clock_seconds, first_line, state_from, stdout_of, JobId, JobState, TIME_LEFT_LIMIT};

/// What qstat prints for a job it does not have (on stdout or stderr; Son
/// of Grid Engine adds "or permissions are not sufficient").
const NO_SUCH_JOB: &str = "Following jobs do not exist";

/// Asks qstat the seconds job `id` has left; `Ok(None)`: no `h_rt` limit.
pub fn time_left(id: &JobId) -> Result<Option<f64>, String> {
    let details = run_with_time_limit("qstat", &["-j", &id.job], TIME_LEFT_LIMIT)?;
    if !details.success || details.stdout.contains(NO_SUCH_JOB) {
        return Err(format!(
            "qstat -j {} failed: {}",
            id.job,
            first_line(&format!("{}\n{}", details.stderr, details.stdout))
        ));
    }
    let Some(limit) = parse_hard_runtime(&details.stdout, &id.job)? else {
        return Ok(None);
    };
    let list = stdout_of("qstat", &["-s", "rs"], TIME_LEFT_LIMIT)?;
    let start = parse_start_time(&list, &id.job, id.task.as_deref())?;
    let start = start.to_unix().ok_or_else(|| {
        format!(
            "Grid Engine job {}: start time {start:?} is not a local time",
            id.job
        )
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    Ok(Some((start + limit - now).max(0.0)))
}

/// Asks qstat whether job `id` (its task, for an array task) is still there.
pub fn job_state(id: &JobId) -> JobState {
    state_from("qstat", &["-j", &id.job], &[], |output| {
        parse_job_state(output, &id.job, id.task.as_deref())
    })
}

/// The job's hard wall-clock limit `h_rt` in seconds from `qstat -j JOBID`:
/// `Ok(None)` when it has none (or `INFINITY`); the smallest when several
/// lines give one. `Err` when qstat -j shows another job, or a value that
/// is not a time.
pub fn parse_hard_runtime(details: &str, job: &str) -> Result<Option<f64>, String> {
    check_job_number(details, job)?;
    let mut limit: Option<f64> = None;
    for line in details.lines() {
        let Some(list) = line
            .strip_prefix("hard resource_list:")
            .or_else(|| line.strip_prefix("hard_resource_list:"))
        else {
            continue;
        };
        for request in list.trim().split(',') {
            let Some((name, value)) = request.split_once('=') else {
                continue;
            };
            if name.trim() != "h_rt" {
                continue;
            }
            let value = value.trim();
            if value.eq_ignore_ascii_case("INFINITY") {
                continue;
            }
            let seconds = clock_seconds(value)
                .ok_or_else(|| format!("Grid Engine job {job}: h_rt={value:?} is not a time"))?;
            limit = Some(limit.map_or(seconds, |l| l.min(seconds)));
        }
    }
    Ok(limit)
}

/// A date and time as qstat prints it (`MM/DD/YYYY HH:MM:SS`, local time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Year, e.g. 2024.
    pub year: i32,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of the month, 1 to 31.
    pub day: u32,
    /// Hour, 0 to 23.
    pub hour: u32,
    /// Minute, 0 to 59.
    pub minute: u32,
    /// Second, 0 to 60.
    pub second: u32,
}

impl LocalTime {
    /// Reads `MM/DD/YYYY` and `HH:MM:SS` (a fraction of a second, as newer
    /// versions print, is dropped).
    pub fn parse(date: &str, time: &str) -> Option<LocalTime> {
        let number = |s: &str| s.parse::<u32>().ok();
        let mut d = date.split('/');
        let (month, day, year) = (number(d.next()?)?, number(d.next()?)?, number(d.next()?)?);
        let time = time.split('.').next()?;
        let mut t = time.split(':');
        let (hour, minute, second) = (number(t.next()?)?, number(t.next()?)?, number(t.next()?)?);
        if d.next().is_some() || t.next().is_some() {
            return None;
        }
        let valid = (1..=12).contains(&month)
            && (1..=31).contains(&day)
            && (1970..=9999).contains(&year)
            && hour < 24
            && minute < 60
            && second <= 60;
        valid.then_some(LocalTime {
            year: year as i32,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// The Unix time of this local time in this process's time zone.
    pub fn to_unix(self) -> Option<f64> {
        // SAFETY: tm is a plain struct, zeroed then filled; mktime reads and
        // normalises it and returns -1 when it cannot be represented.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        tm.tm_year = self.year - 1900;
        tm.tm_mon = self.month as i32 - 1;
        tm.tm_mday = self.day as i32;
        tm.tm_hour = self.hour as i32;
        tm.tm_min = self.minute as i32;
        tm.tm_sec = self.second as i32;
        tm.tm_isdst = -1;
        let time = unsafe { libc::mktime(&mut tm) };
        (time != -1).then_some(time as f64)
    }
}

/// The start time of job `job` (of its task `task` in an array) from the
/// job list `qstat -s rs` prints: columns job-ID, prior, name, user, state,
/// submit/start at (date and time), queue, slots, ja-task-ID (empty for a
/// job that is not an array). Only a running or suspended line has a start
/// time (states with `r`, `t`, `s`, `S` or `T`).
pub fn parse_start_time(list: &str, job: &str, task: Option<&str>) -> Result<LocalTime, String> {
    let mut found = None;
    for line in list.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 || fields[0] != job {
            continue;
        }
        if let Some(task) = task {
            if fields.len() < 10 || fields[fields.len() - 1] != task {
                continue;
            }
        }
        let state = fields[4];
        if !state
            .chars()
            .any(|c| matches!(c, 'r' | 't' | 's' | 'S' | 'T'))
        {
            continue;
        }
        let start = LocalTime::parse(fields[5], fields[6]).ok_or_else(|| {
            format!(
                "Grid Engine job {job}: {:?} is not a start time",
                format!("{} {}", fields[5], fields[6])
            )
        })?;
        if found.is_some_and(|f| f != start) {
            return Err(format!("qstat lists job {job} as running twice"));
        }
        found = Some(start);
    }
    found.ok_or_else(|| match task {
        Some(task) => format!("qstat does not list task {task} of job {job} as running"),
        None => format!("qstat does not list job {job} as running"),
    })
}

/// The reaper's verdict from `qstat -j JOBID`.
pub fn parse_job_state(output: &CommandOutput, job: &str, task: Option<&str>) -> JobState {
    if output.stdout.contains(NO_SUCH_JOB) || output.stderr.contains(NO_SUCH_JOB) {
        return JobState::Gone(format!("Grid Engine no longer knows job {job}"));
    }
    if !output.success {
        return JobState::Unknown(format!(
            "qstat -j {job} failed: {}",
            first_line(&output.stderr)
        ));
    }
    if let Err(why) = check_job_number(&output.stdout, job) {
        return JobState::Unknown(why);
    }
    let Some(task) = task else {
        return JobState::Alive(format!("Grid Engine job {job} is in the queue"));
    };
    let running = output.stdout.lines().any(|line| {
        line.strip_prefix("usage")
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(number, _)| number.trim() == task)
    });
    if running {
        JobState::Alive(format!("task {task} of Grid Engine job {job} is running"))
    } else {
        JobState::Unknown(format!(
            "task {task} of Grid Engine job {job} is not running (queued again, or ended while its array goes on)"
        ))
    }
}

/// `Ok` when the `job_number:` of `qstat -j` output is `job`.
fn check_job_number(details: &str, job: &str) -> Result<(), String> {
    let numbers: Vec<&str> = details
        .lines()
        .filter_map(|l| l.strip_prefix("job_number:"))
        .map(str::trim)
        .collect();
    match numbers[..] {
        [number] if number == job => Ok(()),
        [] => Err(format!("qstat -j {job} printed no job_number")),
        _ => Err(format!(
            "qstat -j {job} printed job number(s) {:?}",
            numbers.iter().take(3).collect::<Vec<_>>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `qstat -j 7448711` of a running job, laid out as Son of Grid Engine's
    /// qstat prints it (https://github.com/son-of-gridengine/sge/blob/master/source/clients/common/show_job.c:
    /// `job_number:`, `hard resource_list:` with the `h_rt` request as
    /// given to qsub, one `usage <task>:` line per running task), with
    /// `h_rt` in one of the two forms of a time_specifier in sge_types(5)
    /// (seconds, or `hours:minutes:seconds`).
    /// The fake qstat replays the same answer (tests/fakes/gridengine/).
    const DETAILS: &str = include_str!("../../../tests/fakes/gridengine/answers/running.j.stdout");

    /// The job list of `qstat -s rs`: its columns are those of qstat(1)
    /// ("OUTPUT FORMATS", the reduced format), the header as Son of Grid
    /// Engine's qstat.c prints it, the date as sge_ctime() formats a local
    /// time (`%02d/%02d/%04d %02d:%02d:%02d`, source/libs/uti/sge_time.c).
    /// The fake qstat replays the same list, with the start of job 7448711
    /// (`@START@`) made some minutes ago.
    fn list() -> String {
        include_str!("../../../tests/fakes/gridengine/answers/running.list.stdout")
            .replace("@START@", "02/26/2021 19:57:10")
    }

    fn output(success: bool, stdout: &str, stderr: &str) -> CommandOutput {
        CommandOutput {
            success,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn h_rt_is_read_in_both_time_forms() {
        assert_eq!(parse_hard_runtime(DETAILS, "7448711"), Ok(Some(3600.0)));
        let clock = DETAILS.replace("h_rt=3600", "h_rt=01:30:00");
        assert_eq!(parse_hard_runtime(&clock, "7448711"), Ok(Some(5400.0)));
        let short = DETAILS.replace("h_rt=3600", "h_rt=1::1");
        assert_eq!(parse_hard_runtime(&short, "7448711"), Ok(Some(3601.0)));
        // Two lines (a soft and hard list, or a version that splits them):
        // the smallest hard limit counts; the soft one does not.
        let two = format!(
            "{DETAILS}hard resource_list:         h_rt=600\nsoft resource_list:         h_rt=60\n"
        );
        assert_eq!(parse_hard_runtime(&two, "7448711"), Ok(Some(600.0)));
    }

    #[test]
    fn a_job_without_h_rt_has_no_deadline() {
        let none = DETAILS.replace("h_vmem=3994M,h_rt=3600", "h_vmem=3994M");
        assert_eq!(parse_hard_runtime(&none, "7448711"), Ok(None));
        let infinity = DETAILS.replace("h_rt=3600", "h_rt=INFINITY");
        assert_eq!(parse_hard_runtime(&infinity, "7448711"), Ok(None));
        let no_list = DETAILS.replace("hard resource_list:         h_vmem=3994M,h_rt=3600\n", "");
        assert_eq!(parse_hard_runtime(&no_list, "7448711"), Ok(None));
    }

    #[test]
    fn answers_that_cannot_be_used_are_errors() {
        for bad in ["h_rt=INVALID", "h_rt=-5", "h_rt=1:2:3:4", "h_rt="] {
            let details = DETAILS.replace("h_rt=3600", bad);
            assert!(parse_hard_runtime(&details, "7448711").is_err(), "{bad}");
        }
        assert!(
            parse_hard_runtime(DETAILS, "7448712").is_err(),
            "another job"
        );
        assert!(parse_hard_runtime("", "7448711").is_err());
        assert!(parse_hard_runtime("garbage\n\u{0}\n", "7448711").is_err());
        let twice = format!("{DETAILS}{DETAILS}").replacen("7448711", "7448713", 1);
        assert!(
            parse_hard_runtime(&twice, "7448711").is_err(),
            "several jobs"
        );
    }

    #[test]
    fn the_start_time_of_the_job_or_its_task_is_read_from_the_list() {
        let at = |month, day, hour, minute, second| LocalTime {
            year: 2021,
            month,
            day,
            hour,
            minute,
            second,
        };
        assert_eq!(
            parse_start_time(&list(), "7448711", None),
            Ok(at(2, 26, 19, 57, 10))
        );
        assert_eq!(
            parse_start_time(&list(), "7448712", Some("1")),
            Ok(at(2, 26, 20, 0, 0))
        );
        assert_eq!(
            parse_start_time(&list(), "7448712", Some("2")),
            Ok(at(2, 26, 20, 5, 30))
        );
        assert!(parse_start_time(&list(), "7448712", Some("3")).is_err());
        assert!(
            parse_start_time(&list(), "7448712", None).is_err(),
            "two tasks, two starts"
        );
        assert!(parse_start_time(&list(), "1", None).is_err());
        let pending = "      9 0.00000 worker     alice        qw    02/26/2021 19:56:58                                    1        \n";
        assert!(parse_start_time(pending, "9", None).is_err(), "not running");
        for bad in [
            "",
            "garbage",
            "7448711 0.5 w a r 26/02/2021 19:57:10 q 1",
            "7448711 0.5 w a r 02/26/2021 25:00:00 q 1",
            "7448711 0.5 w a r INVALID INVALID q 1",
        ] {
            assert!(parse_start_time(bad, "7448711", None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_local_time_converts_back_to_the_unix_time_it_came_from() {
        // Whatever the time zone of the test: localtime_r then mktime.
        let unix: libc::time_t = 1_614_369_430; // 2021-02-26T19:57:10Z
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        assert!(!unsafe { libc::localtime_r(&unix, &mut tm) }.is_null());
        let local = LocalTime {
            year: tm.tm_year + 1900,
            month: tm.tm_mon as u32 + 1,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
        };
        assert_eq!(local.to_unix(), Some(unix as f64));
        assert_eq!(
            LocalTime::parse("02/26/2021", "19:57:10.123").map(|t| t.second),
            Some(10)
        );
        assert_eq!(LocalTime::parse("13/26/2021", "19:57:10"), None);
        assert_eq!(LocalTime::parse("02/26/2021/1", "19:57:10"), None);
    }

    #[test]
    fn a_job_qstat_does_not_have_is_gone() {
        // Son of Grid Engine's wording; Sun Grid Engine's stops after "exist".
        for text in [
            "Following jobs do not exist or permissions are not sufficient: \n7448711\n",
            "Following jobs do not exist: \n7448711\n",
        ] {
            assert!(matches!(
                parse_job_state(&output(false, "", text), "7448711", None),
                JobState::Gone(_)
            ));
            assert!(matches!(
                parse_job_state(&output(true, text, ""), "7448711", Some("1")),
                JobState::Gone(_)
            ));
        }
    }

    #[test]
    fn a_job_qstat_shows_is_alive_and_a_task_only_while_it_runs() {
        let shown = output(true, DETAILS, "");
        assert!(matches!(
            parse_job_state(&shown, "7448711", None),
            JobState::Alive(_)
        ));
        assert!(matches!(
            parse_job_state(&shown, "7448711", Some("1")),
            JobState::Alive(_)
        ));
        assert!(matches!(
            parse_job_state(&shown, "7448711", Some("2")),
            JobState::Unknown(_)
        ));
        assert!(matches!(
            parse_job_state(&shown, "7448711", Some("11")),
            JobState::Unknown(_)
        ));
    }

    #[test]
    fn a_failing_or_garbled_qstat_is_unknown() {
        let down = output(
            false,
            "",
            "error: commlib error: got select error (Connection refused)\n",
        );
        match parse_job_state(&down, "7448711", None) {
            JobState::Unknown(why) => assert!(why.contains("commlib error"), "{why}"),
            v => panic!("{v:?}"),
        }
        for stdout in ["", "garbage", "job_number:  7448799\n", "job_number: \n"] {
            let verdict = parse_job_state(&output(true, stdout, ""), "7448711", None);
            assert!(
                matches!(verdict, JobState::Unknown(_)),
                "{stdout:?}: {verdict:?}"
            );
        }
    }

    /// Outputs of a real Grid Engine, Debian's 8.1.9 (gridengine-master,
    /// gridengine-exec, gridengine-client on bookworm), one node, recorded
    /// verbatim into tests/fakes/gridengine/recorded/: job 1 submitted with
    /// `qsub -l h_rt=01:00:00` (qstat prints the limit in seconds), then
    /// suspended; array job 2 (`-t 1-2 -l h_rt=600`) whose task 1 was
    /// deleted (`qdel 2 -t 1`) while task 2 runs; job 3 submitted on hold
    /// (`qsub -h`); `qstat -s rs`; `qstat -j 99` of a job that never was.
    mod recorded {
        use super::*;

        const RUNNING: &str =
            include_str!("../../../tests/fakes/gridengine/recorded/running.j.stdout");
        const ARRAY: &str = include_str!("../../../tests/fakes/gridengine/recorded/array.j.stdout");
        const HELD: &str = include_str!("../../../tests/fakes/gridengine/recorded/held.j.stdout");
        const LIST: &str = include_str!("../../../tests/fakes/gridengine/recorded/list.stdout");
        const GONE: &str = include_str!("../../../tests/fakes/gridengine/recorded/gone.j.stderr");

        #[test]
        fn real_limits_and_start_times_are_read() {
            assert_eq!(parse_hard_runtime(RUNNING, "1"), Ok(Some(3600.0)));
            assert_eq!(parse_hard_runtime(ARRAY, "2"), Ok(Some(600.0)));
            assert_eq!(parse_hard_runtime(HELD, "3"), Ok(None));
            let start = |job, task| parse_start_time(LIST, job, task);
            let at = LocalTime::parse("12/07/2026", "18:51:10").unwrap();
            assert_eq!(start("1", None), Ok(at), "a suspended job has its start");
            assert_eq!(start("2", Some("2")), Ok(at));
            assert!(start("2", Some("1")).is_err(), "task 1 was deleted");
            assert!(start("3", None).is_err(), "held, never started");
        }

        #[test]
        fn real_verdicts() {
            let ok = |stdout: &str| output(true, stdout, "");
            let alive = |s: JobState| matches!(s, JobState::Alive(_));
            assert!(alive(parse_job_state(&ok(RUNNING), "1", None)));
            assert!(alive(parse_job_state(&ok(HELD), "3", None)));
            assert!(alive(parse_job_state(&ok(ARRAY), "2", Some("2"))));
            assert!(matches!(
                parse_job_state(&ok(ARRAY), "2", Some("1")),
                JobState::Unknown(_)
            ));
            assert!(matches!(
                parse_job_state(&output(false, "", GONE), "99", None),
                JobState::Gone(_)
            ));
        }
    }
}
