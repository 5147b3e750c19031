//! The batch schedulers a worker may run under: which ones the environment
//! names, and for each the commands that tell the time its job has left (for
//! the wall time) and whether a job still exists (for `taskfarm reap`).
//!
//! - `mod.rs` (here): [`jobs_in_env`], the one place where the library
//!   recognises the jobs it runs in; [`JobId`], a job as its scheduler names
//!   it (recorded in the worker journal); [`JobState`], the one verdict every
//!   scheduler answers; the time limits of their commands, and the shape the
//!   modules share: a command's output or why it cannot be used
//!   ([`stdout_of`]), a verdict from a command ([`state_from`]).
//! - `command.rs`: a scheduler's command run with a time limit.
//! - `slurm.rs`: Slurm (`SLURM_JOB_ID`), every `squeue` query.
//! - `pbs.rs`: PBS Pro / OpenPBS (`PBS_JOBID`), `qstat -f -F json`.
//! - `gridengine.rs`: Son of Grid Engine / Altair (Univa) Grid Engine
//!   (`JOB_ID` with `SGE_TASK_ID`), `qstat -j` and the `qstat` job list.
//! - `lsf.rs`: IBM Spectrum LSF (`LSB_JOBID`, `LSB_JOBINDEX`), `bjobs -o`.
//! - `flux.rs`: Flux (`FLUX_JOB_ID`, `FLUX_URI`), `flux job timeleft` and
//!   `flux jobs`.
//!
//! Each scheduler module has the same two entry points, which run its
//! commands (bounded by [`TIME_LEFT_LIMIT`] or [`STATE_LIMIT`]) and never
//! fail loudly; [`JobId::time_left`] and [`JobId::state`] pick the module:
//! - `time_left(&JobId) -> Result<Option<f64>, String>`: the seconds the
//!   job has left, `Ok(None)` for a job without a time limit, `Err(why)`
//!   (one line) when the answer cannot be used: no deadline then;
//! - `job_state(&JobId) -> JobState`: the reaper's verdict.
//!
//! and pure parsers of each command's output, tested on the outputs the
//! schedulers' manuals document.
//!
//! Which files import which: `cargo test --test import_graph` fails on any
//! circle in `src/client` and `src/ffi`.

pub mod command;
pub mod flux;
pub mod gridengine;
pub mod lsf;
pub mod pbs;
pub mod slurm;

use std::time::Duration;

use serde_derive::{Deserialize, Serialize};

/// How long a command asked for the time left may take: the worker carries
/// on without a deadline after that.
pub const TIME_LEFT_LIMIT: Duration = Duration::from_secs(10);

/// How long a command asked whether a job exists may take: the job counts
/// as unknown after that.
pub const STATE_LIMIT: Duration = Duration::from_secs(30);

/// A batch scheduler, named by the variables it sets in a job's environment.
/// Its journal spelling is the lowercase name (`"gridengine"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Slurm: `SLURM_JOB_ID` (or the older `SLURM_JOBID`).
    Slurm,
    /// PBS Pro / OpenPBS: `PBS_JOBID`.
    Pbs,
    /// Grid Engine: `JOB_ID` with `SGE_TASK_ID` (which Grid Engine sets in
    /// every job, `undefined` outside an array: `JOB_ID` alone is too common
    /// a name to be taken for Grid Engine's).
    GridEngine,
    /// LSF: `LSB_JOBID` (and `LSB_JOBINDEX` for an array element).
    Lsf,
    /// Flux: `FLUX_JOB_ID` (and `FLUX_URI`, the instance it runs in).
    Flux,
}

/// The schedulers in the order their jobs are listed: Slurm first, as
/// before other schedulers were known; Flux last, as it runs inside the
/// allocations of the others.
const ORDER: [Scheduler; 5] = [
    Scheduler::Slurm,
    Scheduler::Pbs,
    Scheduler::GridEngine,
    Scheduler::Lsf,
    Scheduler::Flux,
];

impl Scheduler {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Slurm => "Slurm",
            Scheduler::Pbs => "PBS",
            Scheduler::GridEngine => "Grid Engine",
            Scheduler::Lsf => "LSF",
            Scheduler::Flux => "Flux",
        }
    }

    /// The variables that hold the job's id, the first set wins.
    fn job_variables(self) -> &'static [&'static str] {
        match self {
            Scheduler::Slurm => &["SLURM_JOB_ID", "SLURM_JOBID"],
            Scheduler::Pbs => &["PBS_JOBID"],
            Scheduler::GridEngine => &["JOB_ID"],
            Scheduler::Lsf => &["LSB_JOBID"],
            Scheduler::Flux => &["FLUX_JOB_ID"],
        }
    }

    /// The variable that holds the array element's index, if it has one.
    fn task_variable(self) -> Option<&'static str> {
        match self {
            Scheduler::GridEngine => Some("SGE_TASK_ID"),
            Scheduler::Lsf => Some("LSB_JOBINDEX"),
            _ => None,
        }
    }

    /// The variable that names the instance whose commands know the job,
    /// if the scheduler has one.
    fn instance_variable(self) -> Option<&'static str> {
        match self {
            Scheduler::Flux => Some("FLUX_URI"),
            _ => None,
        }
    }
}

/// A job as its scheduler names it. The worker journal records it
/// (`"jobs"`), so its fields are part of the journal's format.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId {
    /// The scheduler.
    pub scheduler: Scheduler,
    /// The job's id, as the job variable holds it (`1234.server` and
    /// `1234[5].server` under PBS, `ƒ2Jm...` under Flux).
    pub job: String,
    /// The array task (Grid Engine) or element (LSF) index; `None` for a
    /// job that is not in an array (`SGE_TASK_ID=undefined`,
    /// `LSB_JOBINDEX=0`).
    #[serde(default)]
    pub task: Option<String>,
    /// The instance whose commands know the job: Flux's `FLUX_URI` (a job
    /// id means nothing to another Flux instance). `None` otherwise.
    #[serde(default)]
    pub instance: Option<String>,
}

impl JobId {
    /// The seconds the job has left, from its scheduler's command:
    /// `Ok(None)` without a time limit, `Err(why)` (one line) when the
    /// command fails, hangs past [`TIME_LEFT_LIMIT`] or prints what cannot
    /// be used.
    pub fn time_left(&self) -> Result<Option<f64>, String> {
        match self.scheduler {
            Scheduler::Slurm => slurm::time_left(self),
            Scheduler::Pbs => pbs::time_left(self),
            Scheduler::GridEngine => gridengine::time_left(self),
            Scheduler::Lsf => lsf::time_left(self),
            Scheduler::Flux => flux::time_left(self),
        }
    }

    /// Whether the job is still there, from its scheduler's command.
    pub fn state(&self) -> JobState {
        match self.scheduler {
            Scheduler::Slurm => slurm::job_state(self),
            Scheduler::Pbs => pbs::job_state(self),
            Scheduler::GridEngine => gridengine::job_state(self),
            Scheduler::Lsf => lsf::job_state(self),
            Scheduler::Flux => flux::job_state(self),
        }
    }

    /// The job in messages: `PBS job 1234.server`, `LSF job 88[4]`.
    pub fn describe(&self) -> String {
        match &self.task {
            Some(task) => format!("{} job {}[{task}]", self.scheduler.name(), self.job),
            None => format!("{} job {}", self.scheduler.name(), self.job),
        }
    }
}

/// What a scheduler says of a worker's job (or Slurm step): the one verdict
/// type of every scheduler module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Running, held or queued, with what the scheduler said: no proof
    /// either way for one worker in it.
    Alive(String),
    /// Suspended (Slurm's `scontrol suspend`, preemption or gang scheduling,
    /// PBS's `qsig -s suspend`, LSF's `bstop` or a load threshold): its
    /// processes live but cannot run, so their heartbeat stands still;
    /// alive, with what the scheduler said.
    Suspended(String),
    /// In a final state, or unknown to the scheduler: why.
    Gone(String),
    /// The scheduler could not tell (no command, the command failed, hung
    /// or printed what cannot be read): why.
    Unknown(String),
}

/// Every job this process runs in, one per scheduler whose job variable
/// `env` holds, in the order Slurm, PBS, Grid Engine, LSF, Flux (Flux runs
/// inside an allocation of another, whose variables its jobs inherit). A
/// variable that is empty, or holds what cannot be a job id (white space, a
/// leading `-`), names no job. The one place the library recognises the
/// jobs it runs in: the wall time asks each, the journal records them.
pub fn jobs_in_env(env: impl Fn(&str) -> Option<String>) -> Vec<JobId> {
    ORDER
        .into_iter()
        .filter_map(|scheduler| {
            let job = scheduler
                .job_variables()
                .iter()
                .find_map(|v| env(v).filter(|j| plausible_id(j)))?;
            if scheduler == Scheduler::GridEngine && env("SGE_TASK_ID").is_none() {
                return None;
            }
            let task = scheduler
                .task_variable()
                .and_then(&env)
                .map(|t| t.trim().to_owned())
                .filter(|t| plausible_id(t) && t != "undefined" && t != "0");
            let instance = scheduler
                .instance_variable()
                .and_then(&env)
                .filter(|uri| !uri.is_empty() && !uri.chars().any(char::is_control));
            Some(JobId {
                scheduler,
                job,
                task,
                instance,
            })
        })
        .collect()
}

/// Whether `id` can be passed to a scheduler's command as a job id: not
/// empty, at most 200 bytes, no white space or control characters, and not
/// taken for an option.
pub fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('-')
        && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Seconds from a duration `[[HOURS:]MINUTES:]SECONDS` (each part digits,
/// hours without bound, seconds possibly with a fraction), as PBS and Grid
/// Engine print them. Grid Engine allows empty parts (`1::1`: one hour and
/// one second).
pub fn clock_seconds(text: &str) -> Option<f64> {
    let text = text.trim();
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 || parts.iter().all(|p| p.is_empty()) {
        return None;
    }
    let mut total = 0.0;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let digits = part.chars().all(|c| c.is_ascii_digit());
        let value = if part.is_empty() && parts.len() > 1 {
            0.0
        } else if digits || (last && is_decimal(part)) {
            part.parse::<f64>().ok()?
        } else {
            return None;
        };
        total = total * 60.0 + value;
    }
    total.is_finite().then_some(total)
}

fn is_decimal(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next().unwrap_or_default();
    !whole.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && fraction.chars().all(|c| c.is_ascii_digit())
}

/// Runs `program ARGS` under `limit` and gives what it printed on its
/// standard output; `Err` (one line) when it cannot be run, takes more than
/// `limit`, or fails: "`PROGRAM ARGS` failed: " and the first line of its
/// standard error.
pub fn stdout_of(program: &str, args: &[&str], limit: Duration) -> Result<String, String> {
    let output = command::run_with_time_limit(program, args, limit)?;
    if !output.success {
        return Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            first_line(&output.stderr)
        ));
    }
    Ok(output.stdout)
}

/// The reaper's verdict from `program ARGS` (with the variables `env`) run
/// under [`STATE_LIMIT`]: `parse` reads its output, whatever its exit
/// status; a command that cannot be run or takes longer is unknown.
pub fn state_from(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    parse: impl FnOnce(&command::CommandOutput) -> JobState,
) -> JobState {
    match command::run_with_env(program, args, env, STATE_LIMIT) {
        Ok(output) => parse(&output),
        Err(why) => JobState::Unknown(why),
    }
}

/// The first line of `text`, trimmed and cut to 200 characters, for a
/// one-line message.
pub fn first_line(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    line.unwrap_or_default().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn first(vars: &[(&str, &str)]) -> Option<JobId> {
        jobs_in_env(env_of(vars)).into_iter().next()
    }

    #[test]
    fn the_scheduler_is_recognised_by_its_job_variable() {
        assert_eq!(jobs_in_env(env_of(&[])), vec![]);
        let slurm = first(&[("SLURM_JOB_ID", "9")]).unwrap();
        assert_eq!(
            (slurm.scheduler, slurm.job.as_str()),
            (Scheduler::Slurm, "9")
        );
        let old = first(&[("SLURM_JOBID", "9")]).unwrap();
        assert_eq!(old.scheduler, Scheduler::Slurm);
        let pbs = first(&[("PBS_JOBID", "1234[5].pbs01")]).unwrap();
        assert_eq!(pbs.scheduler, Scheduler::Pbs);
        assert_eq!(pbs.job, "1234[5].pbs01");
        assert_eq!(pbs.task, None);
        let sge = first(&[("JOB_ID", "77"), ("SGE_TASK_ID", "undefined")]).unwrap();
        assert_eq!((sge.scheduler, sge.task), (Scheduler::GridEngine, None));
        let task = first(&[("JOB_ID", "77"), ("SGE_TASK_ID", "3")]).unwrap();
        assert_eq!(task.task.as_deref(), Some("3"));
        // JOB_ID alone is anybody's variable, not Grid Engine's.
        assert_eq!(first(&[("JOB_ID", "77")]), None);
        let lsf = first(&[("LSB_JOBID", "88"), ("LSB_JOBINDEX", "0")]).unwrap();
        assert_eq!((lsf.scheduler, lsf.task), (Scheduler::Lsf, None));
        let element = first(&[("LSB_JOBID", "88"), ("LSB_JOBINDEX", "4")]).unwrap();
        assert_eq!(element.task.as_deref(), Some("4"));
        assert_eq!(element.describe(), "LSF job 88[4]");
        let flux = first(&[
            ("FLUX_JOB_ID", "ƒ2Jm5fqM7"),
            ("FLUX_URI", "local:///run/flux/local"),
        ])
        .unwrap();
        assert_eq!(flux.scheduler, Scheduler::Flux);
        assert_eq!(flux.instance.as_deref(), Some("local:///run/flux/local"));
    }

    #[test]
    fn every_job_named_is_listed_slurm_first_and_flux_last() {
        let all = [
            ("FLUX_JOB_ID", "ƒ2Jm5fqM7"),
            ("LSB_JOBID", "88"),
            ("JOB_ID", "77"),
            ("SGE_TASK_ID", "undefined"),
            ("PBS_JOBID", "12.pbs"),
            ("SLURM_JOB_ID", "9"),
        ];
        let schedulers = |vars: &[(&str, &str)]| -> Vec<Scheduler> {
            jobs_in_env(env_of(vars))
                .iter()
                .map(|j| j.scheduler)
                .collect()
        };
        assert_eq!(schedulers(&all), ORDER);
        // Flux inside a Slurm allocation: both, the Flux job's own limit and
        // the allocation's.
        assert_eq!(
            schedulers(&[all[0], all[5]]),
            [Scheduler::Slurm, Scheduler::Flux]
        );
    }

    #[test]
    fn what_cannot_be_a_job_id_names_no_job() {
        let long = "9".repeat(201);
        for bad in ["", "-x", "12 34", "12\n", "1\u{7f}", &long] {
            assert_eq!(first(&[("PBS_JOBID", bad)]), None, "{bad:?}");
        }
        // A bad task index is dropped, the job is kept.
        let job = first(&[("JOB_ID", "7"), ("SGE_TASK_ID", "-1")]).unwrap();
        assert_eq!(job.task, None);
    }

    #[test]
    fn a_job_id_reads_back_as_the_journal_writes_it() {
        let job = first(&[("LSB_JOBID", "88"), ("LSB_JOBINDEX", "4")]).unwrap();
        let json = serde_json::to_string(&job).unwrap();
        assert_eq!(
            json,
            r#"{"scheduler":"lsf","job":"88","task":"4","instance":null}"#
        );
        assert_eq!(serde_json::from_str::<JobId>(&json).unwrap(), job);
        let sge: JobId = serde_json::from_str(r#"{"scheduler":"gridengine","job":"7"}"#).unwrap();
        assert_eq!((sge.scheduler, sge.task), (Scheduler::GridEngine, None));
    }

    #[test]
    fn durations_are_read_as_pbs_and_grid_engine_print_them() {
        assert_eq!(clock_seconds("01:00:00"), Some(3600.0));
        assert_eq!(clock_seconds("100:00:05"), Some(360_005.0));
        assert_eq!(clock_seconds("5:30"), Some(330.0));
        assert_eq!(clock_seconds("3600"), Some(3600.0));
        assert_eq!(clock_seconds("1::1"), Some(3601.0));
        assert_eq!(clock_seconds("00:00:10.5"), Some(10.5));
        assert_eq!(clock_seconds(" 01:00:00\n"), Some(3600.0));
        for bad in [
            "", ":", "::", "1:2:3:4", "-1", "1h", "1.5:00", "INFINITY", "1e3",
        ] {
            assert_eq!(clock_seconds(bad), None, "{bad:?}");
        }
    }
}
