//! The batch schedulers a worker may run under: which one the environment
//! names, and for each the commands that tell the time its job has left (for
//! the wall time) and whether a job still exists (for the reaper).
//!
//! - `command`: a scheduler command run with a time limit.
//! - `pbs`: PBS Pro / OpenPBS (`PBS_JOBID`), `qstat -f -F json`.
//! - `gridengine`: Son of Grid Engine / Altair (Univa) Grid Engine
//!   (`JOB_ID`, `SGE_TASK_ID`), `qstat -j` and the `qstat` job list.
//! - `lsf`: IBM Spectrum LSF (`LSB_JOBID`, `LSB_JOBINDEX`), `bjobs -o`.
//! - `flux`: Flux (`FLUX_JOB_ID`), `flux job timeleft` and `flux jobs`.
//!
//! Each scheduler module has the same two entry points, which run its
//! commands (bounded by [`TIME_LEFT_LIMIT`] or [`STATE_LIMIT`]) and never
//! fail loudly:
//! - `time_left(&JobId) -> Result<Option<f64>, String>`: the seconds the
//!   job has left, `Ok(None)` for a job without a time limit, `Err(why)`
//!   (one line) when the answer cannot be used: no deadline then;
//! - `job_state(&JobId) -> JobState`: the reaper's verdict.
//!
//! and pure parsers of each command's output, tested on the outputs the
//! schedulers' manuals document.

pub mod command;
pub mod flux;
pub mod gridengine;
pub mod lsf;
pub mod pbs;

use std::time::Duration;

/// How long a command asked for the time left may take: the worker carries
/// on without a deadline after that.
pub const TIME_LEFT_LIMIT: Duration = Duration::from_secs(10);

/// How long a command asked whether a job exists may take: the job counts
/// as unknown after that.
pub const STATE_LIMIT: Duration = Duration::from_secs(30);

/// A batch scheduler, named by the variables it sets in a job's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// Slurm: `SLURM_JOB_ID`.
    Slurm,
    /// PBS Pro / OpenPBS: `PBS_JOBID`.
    Pbs,
    /// Grid Engine: `JOB_ID` (and `SGE_TASK_ID` for an array task).
    GridEngine,
    /// LSF: `LSB_JOBID` (and `LSB_JOBINDEX` for an array element).
    Lsf,
    /// Flux: `FLUX_JOB_ID`.
    Flux,
}

/// Which scheduler is asked first when several are named: Slurm first, as
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

    /// The variable that holds the job's id.
    pub fn job_variable(self) -> &'static str {
        match self {
            Scheduler::Slurm => "SLURM_JOB_ID",
            Scheduler::Pbs => "PBS_JOBID",
            Scheduler::GridEngine => "JOB_ID",
            Scheduler::Lsf => "LSB_JOBID",
            Scheduler::Flux => "FLUX_JOB_ID",
        }
    }

    /// The variable that holds the array element's index, if it has one.
    pub fn task_variable(self) -> Option<&'static str> {
        match self {
            Scheduler::GridEngine => Some("SGE_TASK_ID"),
            Scheduler::Lsf => Some("LSB_JOBINDEX"),
            _ => None,
        }
    }
}

/// A job as its scheduler names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobId {
    /// The scheduler.
    pub scheduler: Scheduler,
    /// The job's id, as the job variable holds it (`1234.server` and
    /// `1234[5].server` under PBS, `ƒ2Jm...` under Flux).
    pub job: String,
    /// The array task (Grid Engine) or element (LSF) index; `None` for a
    /// job that is not in an array (`SGE_TASK_ID=undefined`,
    /// `LSB_JOBINDEX=0`).
    pub task: Option<String>,
}

/// The reaper's verdict on a job, from its scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Running, suspended, held or queued, with what the scheduler said.
    Alive(String),
    /// In a final state, or unknown to the scheduler: why.
    Gone(String),
    /// The scheduler could not tell (the command failed, hung or printed
    /// what cannot be read): why.
    Unknown(String),
}

/// The job this process runs in, from the first scheduler (in the order
/// above) whose job variable `env` holds. A variable that is empty, or
/// holds what cannot be a job id (white space, a leading `-`), names no job.
pub fn job_in_env(env: impl Fn(&str) -> Option<String>) -> Option<JobId> {
    ORDER.into_iter().find_map(|scheduler| {
        let job = env(scheduler.job_variable()).filter(|j| plausible_id(j))?;
        let task = scheduler
            .task_variable()
            .and_then(&env)
            .map(|t| t.trim().to_owned())
            .filter(|t| plausible_id(t) && t != "undefined" && t != "0");
        Some(JobId {
            scheduler,
            job,
            task,
        })
    })
}

/// Whether `id` can be passed to a scheduler's command as a job id: not
/// empty, no white space or control characters, and not taken for an option.
pub fn plausible_id(id: &str) -> bool {
    !id.is_empty()
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

    #[test]
    fn the_scheduler_is_recognised_by_its_job_variable() {
        assert_eq!(job_in_env(env_of(&[])), None);
        let pbs = job_in_env(env_of(&[("PBS_JOBID", "1234[5].pbs01")])).unwrap();
        assert_eq!(pbs.scheduler, Scheduler::Pbs);
        assert_eq!(pbs.job, "1234[5].pbs01");
        assert_eq!(pbs.task, None);
        let sge = job_in_env(env_of(&[("JOB_ID", "77"), ("SGE_TASK_ID", "undefined")])).unwrap();
        assert_eq!((sge.scheduler, sge.task), (Scheduler::GridEngine, None));
        let task = job_in_env(env_of(&[("JOB_ID", "77"), ("SGE_TASK_ID", "3")])).unwrap();
        assert_eq!(task.task.as_deref(), Some("3"));
        let lsf = job_in_env(env_of(&[("LSB_JOBID", "88"), ("LSB_JOBINDEX", "0")])).unwrap();
        assert_eq!((lsf.scheduler, lsf.task), (Scheduler::Lsf, None));
        let element = job_in_env(env_of(&[("LSB_JOBID", "88"), ("LSB_JOBINDEX", "4")])).unwrap();
        assert_eq!(element.task.as_deref(), Some("4"));
        let flux = job_in_env(env_of(&[("FLUX_JOB_ID", "ƒ2Jm5fqM7")])).unwrap();
        assert_eq!(flux.scheduler, Scheduler::Flux);
    }

    #[test]
    fn slurm_comes_first_and_flux_last() {
        let all = [
            ("FLUX_JOB_ID", "ƒ2Jm5fqM7"),
            ("LSB_JOBID", "88"),
            ("JOB_ID", "77"),
            ("PBS_JOBID", "12.pbs"),
            ("SLURM_JOB_ID", "9"),
        ];
        assert_eq!(
            job_in_env(env_of(&all)).unwrap().scheduler,
            Scheduler::Slurm
        );
        assert_eq!(
            job_in_env(env_of(&all[..4])).unwrap().scheduler,
            Scheduler::Pbs
        );
        assert_eq!(
            job_in_env(env_of(&all[..3])).unwrap().scheduler,
            Scheduler::GridEngine
        );
        assert_eq!(
            job_in_env(env_of(&all[..2])).unwrap().scheduler,
            Scheduler::Lsf
        );
    }

    #[test]
    fn what_cannot_be_a_job_id_names_no_job() {
        for bad in ["", "-x", "12 34", "12\n", "1\u{7f}"] {
            assert_eq!(job_in_env(env_of(&[("PBS_JOBID", bad)])), None, "{bad:?}");
        }
        // A bad task index is dropped, the job is kept.
        let job = job_in_env(env_of(&[("JOB_ID", "7"), ("SGE_TASK_ID", "-1")])).unwrap();
        assert_eq!(job.task, None);
    }

    /// Runs `check` with the fake commands of `dir` (tests/fakes/DIR) first
    /// on PATH and `variable` naming each recorded answer in turn.
    fn with_fakes(dir: &str, variable: &str, check: impl Fn(&dyn Fn(&str))) {
        let fakes = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fakes")
            .join(dir);
        let original = std::env::var_os("PATH").unwrap_or_default();
        let mut path = std::ffi::OsString::from(fakes);
        path.push(":");
        path.push(&original);
        std::env::set_var("PATH", &path);
        check(&|answer| std::env::set_var(variable, answer));
        std::env::set_var("PATH", original);
        std::env::remove_var(variable);
    }

    /// Each scheduler's commands run, through the fakes that replay the
    /// recorded answers (tests/fakes/), and their answers are read. One test
    /// for the four: PATH is the process's, and PBS and Grid Engine both
    /// name their command qstat.
    #[test]
    fn each_scheduler_is_asked_through_its_commands() {
        let job = |scheduler, job: &str| JobId {
            scheduler,
            job: job.into(),
            task: None,
        };
        let near = |left: Result<Option<f64>, String>, expected: f64, what: &str| {
            let left = left.unwrap_or_else(|e| panic!("{what}: {e}"));
            let left = left.unwrap_or_else(|| panic!("{what}: no limit"));
            assert!((left - expected).abs() < 5.0, "{what}: {left}");
        };
        let alive = |s: JobState| matches!(s, JobState::Alive(_));
        let gone = |s: JobState| matches!(s, JobState::Gone(_));
        let unknown = |s: JobState| matches!(s, JobState::Unknown(_));

        let pbs = job(Scheduler::Pbs, "1.vbox");
        let name = Scheduler::Pbs.name();
        with_fakes("pbs", "TASKFARM_FAKE_PBS", |answer| {
            answer("running");
            near(pbs::time_left(&pbs), 3000.0, name);
            assert!(alive(pbs::job_state(&pbs)), "{name}");
            answer("nearly-over");
            near(pbs::time_left(&pbs), 30.0, name);
            answer("unlimited");
            assert_eq!(pbs::time_left(&pbs), Ok(None), "{name}");
            for bad in ["garbage", "invalid", "unknown"] {
                answer(bad);
                assert!(pbs::time_left(&pbs).is_err(), "{name} {bad}");
            }
            answer("garbage");
            assert!(unknown(pbs::job_state(&pbs)), "{name}");
            for ended in ["unknown", "history", "finished"] {
                answer(ended);
                assert!(gone(pbs::job_state(&pbs)), "{name} {ended}");
            }
        });

        let sge = job(Scheduler::GridEngine, "7448711");
        let name = Scheduler::GridEngine.name();
        with_fakes("gridengine", "TASKFARM_FAKE_GRIDENGINE", |answer| {
            answer("running");
            std::env::set_var("TASKFARM_FAKE_STARTED_AGO", "600");
            near(gridengine::time_left(&sge), 3000.0, name);
            assert!(alive(gridengine::job_state(&sge)), "{name}");
            answer("unlimited");
            assert_eq!(gridengine::time_left(&sge), Ok(None), "{name}");
            answer("garbage");
            assert!(gridengine::time_left(&sge).is_err(), "{name}");
            assert!(unknown(gridengine::job_state(&sge)), "{name}");
            answer("gone");
            assert!(gridengine::time_left(&sge).is_err(), "{name}");
            assert!(gone(gridengine::job_state(&sge)), "{name}");
            std::env::remove_var("TASKFARM_FAKE_STARTED_AGO");
        });

        let lsf = job(Scheduler::Lsf, "111");
        let name = Scheduler::Lsf.name();
        with_fakes("lsf", "TASKFARM_FAKE_LSF", |answer| {
            answer("running");
            near(lsf::time_left(&lsf), 3000.0, name);
            assert!(alive(lsf::job_state(&lsf)), "{name}");
            answer("unlimited");
            assert_eq!(lsf::time_left(&lsf), Ok(None), "{name}");
            for bad in ["estimate", "garbage", "gone"] {
                answer(bad);
                assert!(lsf::time_left(&lsf).is_err(), "{name} {bad}");
            }
            answer("garbage");
            assert!(unknown(lsf::job_state(&lsf)), "{name}");
            for ended in ["gone", "done"] {
                answer(ended);
                assert!(gone(lsf::job_state(&lsf)), "{name} {ended}");
            }
        });

        let flux = job(Scheduler::Flux, "ƒ2Jm5fqM7");
        let name = Scheduler::Flux.name();
        with_fakes("flux", "TASKFARM_FAKE_FLUX", |answer| {
            answer("running");
            near(flux::time_left(&flux), 3000.0, name);
            assert!(alive(flux::job_state(&flux)), "{name}");
            answer("unlimited");
            assert_eq!(flux::time_left(&flux), Ok(None), "{name}");
            answer("garbage");
            assert!(flux::time_left(&flux).is_err(), "{name}");
            assert!(unknown(flux::job_state(&flux)), "{name}");
            for ended in ["gone", "inactive"] {
                answer(ended);
                assert!(gone(flux::job_state(&flux)), "{name} {ended}");
            }
        });
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
