//! Wall time: a worker does not take a task that the time left before its
//! deadline cannot fit.
//!
//! Where the deadline comes from, first found wins:
//! 1. `tf_worker_set_deadline` ([`WallTime::set`]);
//! 2. `TASKFARM_DEADLINE` (Unix time in seconds), read when the worker is made;
//! 3. the batch job the worker runs in, asked of its scheduler
//!    ([`scheduler::jobs_in_env`] names the jobs, each scheduler's module
//!    reads its answer): under Slurm `SLURM_JOB_END_TIME` when the Slurm
//!    version sets it, else the time left that `squeue -h -j $SLURM_JOB_ID -o
//!    %L` prints (Slurm 22.05 puts no end time in the job's environment; `%L`
//!    is relative, so neither the time zone nor `SLURM_TIME_FORMAT` can change
//!    what we read); under PBS, Grid Engine, LSF and Flux what `qstat`,
//!    `bjobs` or `flux job timeleft` say (docs/schedulers.md). When the
//!    environment names several jobs (Flux inside a Slurm allocation), the
//!    earliest end. Asked once per worker, at its first request for a task;
//!    each command is bounded by [`scheduler::TIME_LEFT_LIMIT`]. A command
//!    that fails, hangs or prints what cannot be read, or a job without a
//!    limit, gives no deadline; with `TASKFARM_LOG=debug` one line on stderr
//!    says what was found.
//!
//! The time a task needs: the `task_seconds` given to `tf_worker_set_deadline`
//! when not 0; else the LONGEST task this worker completed so far (measured
//! from hand-out to `done`); before any completed, `TASKFARM_TASK_SECONDS`;
//! else nothing, and only a deadline already passed stops the worker. The
//! longest rather than the mean or median: a task cut by the time limit loses
//! all its work and is handed out again, while stopping one task early loses
//! at most the time of one task; and the first tasks of a worker are the only
//! sample it has, so a statistic that ignores the slow ones is wrong half the
//! time. It also copes with tasks that grow along the run.

use std::time::Instant;

use crate::client::clock::unix_now;
use crate::client::env;
use crate::client::error::{Error, ErrorKind, Result};
use crate::client::scheduler::{self, JobId, Scheduler};

/// A worker's deadline and what it knows of its tasks' durations.
#[derive(Debug, Clone, Default)]
pub struct WallTime {
    /// The deadline, Unix time in seconds; `None` when there is none.
    deadline: Option<f64>,
    /// Whether the deadline is settled (given, or asked of the scheduler).
    settled: bool,
    /// Seconds per task given with the deadline (0: estimate).
    task_seconds: f64,
    /// `TASKFARM_TASK_SECONDS`: the estimate before any task completed.
    first_estimate: Option<f64>,
    /// The longest task this worker completed, in seconds.
    longest: Option<f64>,
    /// When the held task was handed out.
    started: Option<Instant>,
}

/// Checks a deadline given by the caller or `TASKFARM_DEADLINE`.
pub fn check_deadline(unix_time: f64, what: &str) -> Result<f64> {
    if !unix_time.is_finite() || unix_time < 0.0 {
        return Err(Error::invalid_argument(format!(
            "{what} {unix_time} is not a Unix time in seconds"
        )));
    }
    let now = unix_now();
    if unix_time <= now {
        return Err(Error::invalid_argument(format!(
            "{what} {unix_time} has already passed (it is now {now:.0})"
        )));
    }
    Ok(unix_time)
}

/// Checks a number of seconds per task (0 allowed: estimate).
pub fn check_task_seconds(seconds: f64, what: &str) -> Result<f64> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(Error::invalid_argument(format!(
            "{what} {seconds} is not a number of seconds >= 0"
        )));
    }
    Ok(seconds)
}

fn parse_number(variable: &str, value: &str) -> Result<f64> {
    value.trim().parse::<f64>().map_err(|_| {
        Error::invalid_argument(format!("{variable}={value:?} is not a number of seconds"))
    })
}

impl WallTime {
    /// The wall time of a new worker from `TASKFARM_DEADLINE` and
    /// `TASKFARM_TASK_SECONDS` (`env` reads a variable).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<WallTime> {
        let mut wall = WallTime::default();
        if let Some(value) = env(env::TASK_SECONDS) {
            let seconds = parse_number("TASKFARM_TASK_SECONDS", &value)
                .and_then(|s| check_task_seconds(s, "TASKFARM_TASK_SECONDS"))?;
            wall.first_estimate = (seconds > 0.0).then_some(seconds);
        }
        if let Some(value) = env(env::DEADLINE) {
            let unix_time = parse_number("TASKFARM_DEADLINE", &value)
                .and_then(|t| check_deadline(t, "TASKFARM_DEADLINE"))?;
            wall.deadline = Some(unix_time);
            wall.settled = true;
        }
        Ok(wall)
    }

    /// Sets the deadline (`tf_worker_set_deadline`), checked.
    pub fn set(&mut self, unix_time: f64, task_seconds: f64) -> Result<()> {
        let unix_time = check_deadline(unix_time, "deadline")?;
        let task_seconds = check_task_seconds(task_seconds, "task_seconds")?;
        self.deadline = Some(unix_time);
        self.task_seconds = task_seconds;
        self.settled = true;
        Ok(())
    }

    /// The seconds a task is expected to take, if known.
    pub fn estimate(&self) -> Option<f64> {
        if self.task_seconds > 0.0 {
            return Some(self.task_seconds);
        }
        self.longest.or(self.first_estimate)
    }

    /// Before a task is asked for: an error of kind `Stopped` when the time
    /// left cannot fit one. The first call asks the job's scheduler for the
    /// deadline (when none was given).
    pub fn check_fits(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<()> {
        if !self.settled {
            self.settled = true;
            self.deadline = scheduler_end_time(&env);
        }
        let Some(deadline) = self.deadline else {
            return Ok(());
        };
        let left = deadline - unix_now();
        let needed = self.estimate().unwrap_or(0.0);
        if left > needed {
            return Ok(());
        }
        let why = if self.task_seconds > 0.0 {
            "the seconds per task given with the deadline"
        } else if self.longest.is_some() {
            "the longest task this worker completed"
        } else if self.first_estimate.is_some() {
            "TASKFARM_TASK_SECONDS"
        } else {
            "the deadline has passed"
        };
        Err(Error::new(
            ErrorKind::Stopped,
            format!(
                "stopped: {left:.1} s left before the deadline {deadline:.0} cannot fit a task of {needed:.1} s ({why})"
            ),
        ))
    }

    /// A task was handed out.
    pub fn task_started(&mut self) {
        self.started = Some(Instant::now());
    }

    /// The held task was completed (marked done): its duration counts.
    pub fn task_completed(&mut self) {
        if let Some(started) = self.started.take() {
            let seconds = started.elapsed().as_secs_f64();
            self.longest = Some(self.longest.map_or(seconds, |l| l.max(seconds)));
        }
    }

    /// The held task was released without being completed.
    pub fn task_released(&mut self) {
        self.started = None;
    }
}

/// The earliest end (Unix time) of the jobs this process runs in, `None`
/// outside a batch job or when no scheduler gives one. With
/// `TASKFARM_LOG=debug`, one line on stderr says what each scheduler said.
fn scheduler_end_time(env: &impl Fn(&str) -> Option<String>) -> Option<f64> {
    let jobs = scheduler::jobs_in_env(env);
    if jobs.is_empty() {
        return None;
    }
    let mut earliest: Option<f64> = None;
    let mut said = Vec::new();
    for job in &jobs {
        match end_time(job, env) {
            Ok(Some(end)) => {
                said.push(format!("{} ends at {end:.0}", job.describe()));
                earliest = Some(earliest.map_or(end, |e| e.min(end)));
            }
            Ok(None) => said.push(format!("{} has no time limit", job.describe())),
            Err(why) => said.push(format!("{}: {why}", job.describe())),
        }
    }
    if env(env::LOG).is_some_and(|v| v.eq_ignore_ascii_case("debug")) {
        match earliest {
            Some(end) => eprintln!(
                "taskfarm: deadline {end:.0} ({:.0} s from now): {}",
                end - unix_now(),
                said.join("; ")
            ),
            None => eprintln!("taskfarm: no deadline: {}", said.join("; ")),
        }
    }
    earliest
}

/// The end of one job: Slurm's `SLURM_JOB_END_TIME` when set, else now plus
/// the time left its scheduler gives.
fn end_time(
    job: &JobId,
    env: &impl Fn(&str) -> Option<String>,
) -> std::result::Result<Option<f64>, String> {
    if job.scheduler == Scheduler::Slurm {
        let variable = env("SLURM_JOB_END_TIME").and_then(|e| e.trim().parse::<f64>().ok());
        if let Some(end) = variable.filter(|e| e.is_finite() && *e > 0.0) {
            return Ok(Some(end));
        }
    }
    let asked_at = unix_now();
    Ok(job.time_left()?.map(|left| asked_at + left))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn bad_deadlines_are_refused() {
        let mut wall = WallTime::default();
        for bad in [f64::NAN, -1.0, f64::INFINITY, 1.0, unix_now() - 5.0] {
            let error = wall.set(bad, 0.0).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
        assert!(wall.set(unix_now() + 60.0, f64::NAN).is_err());
        assert!(wall.set(unix_now() + 60.0, -1.0).is_err());
        assert!(wall.deadline.is_none(), "nothing set by a refused call");
        let error = WallTime::from_env(env_of(&[("TASKFARM_DEADLINE", "soon")])).unwrap_err();
        assert!(
            error.message().contains("TASKFARM_DEADLINE=\"soon\""),
            "{}",
            error.message()
        );
        let error = WallTime::from_env(env_of(&[("TASKFARM_DEADLINE", "1000")])).unwrap_err();
        assert!(
            error.message().contains("already passed"),
            "{}",
            error.message()
        );
        assert!(WallTime::from_env(env_of(&[("TASKFARM_TASK_SECONDS", "-3")])).is_err());
    }

    #[test]
    fn the_estimate_is_given_then_longest_completed_then_environment() {
        let mut wall = WallTime::from_env(env_of(&[("TASKFARM_TASK_SECONDS", "30")])).unwrap();
        assert_eq!(wall.estimate(), Some(30.0));
        wall.longest = Some(2.0);
        assert_eq!(wall.estimate(), Some(2.0));
        wall.task_started();
        wall.task_completed();
        assert_eq!(
            wall.estimate(),
            Some(2.0),
            "a shorter task keeps the longest"
        );
        wall.set(unix_now() + 100.0, 7.0).unwrap();
        assert_eq!(wall.estimate(), Some(7.0));
    }

    #[test]
    fn a_deadline_that_leaves_less_than_the_estimate_stops() {
        let no_env = env_of(&[]);
        let mut wall = WallTime::default();
        wall.set(unix_now() + 100.0, 50.0).unwrap();
        assert!(wall.check_fits(&no_env).is_ok());
        wall.set(unix_now() + 100.0, 200.0).unwrap();
        let error = wall.check_fits(&no_env).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Stopped);
        assert!(
            error.message().contains("cannot fit a task of 200.0 s"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn slurm_end_time_variable_comes_first() {
        let mut wall = WallTime::default();
        // A past end time from the variable stops at once, without squeue.
        let env = env_of(&[("SLURM_JOB_ID", "1"), ("SLURM_JOB_END_TIME", "1000")]);
        assert_eq!(
            wall.check_fits(&env).unwrap_err().kind(),
            ErrorKind::Stopped
        );
        assert_eq!(wall.deadline, Some(1000.0));
        let mut outside = WallTime::default();
        assert!(outside.check_fits(env_of(&[])).is_ok());
        assert_eq!(outside.deadline, None);
    }

    #[test]
    fn a_job_whose_scheduler_cannot_answer_does_not_hide_another_jobs_end() {
        // Flux inside a Slurm allocation whose end has passed: the Slurm end
        // counts, whatever Flux says (here: no flux command, no answer).
        let env = env_of(&[
            ("SLURM_JOB_ID", "1"),
            ("SLURM_JOB_END_TIME", "1000"),
            ("FLUX_JOB_ID", "f2Jm5fqM7"),
            ("FLUX_URI", "local:///nonexistent/taskfarm-test"),
        ]);
        assert_eq!(scheduler_end_time(&env), Some(1000.0));
    }
}
