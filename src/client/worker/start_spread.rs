//! Staggered starts: the processes of a big job (a Slurm array, the ranks of
//! an MPI job or of `srun`) start in the same second, and a thousand first
//! requests at once queue on the server, time out and come back as retries.
//! Each process instead delays its first request by its own share of a
//! window: process `i` of `n` waits `window·i/n`, so that the first starts at
//! once and the others follow evenly.
//!
//! - [`JobPlace`]: the job's number of processes and this one's place among
//!   them, read from the launcher's variables (array size and index, MPI or
//!   Slurm ranks; an array of MPI jobs multiplies them).
//! - [`default_window`]: the window for `n` processes when
//!   `TASKFARM_START_SPREAD` is not set: [`DEFAULT_SECS_PER_WORKER`] per
//!   process, at most [`MAX_DEFAULT_WINDOW_SECS`]; 0 for a lone process.
//! - [`delay`]: the delay of this process (`TASKFARM_START_SPREAD` checked).
//! - [`wait_before_first_request`]: the wait itself, once per process; the
//!   run opens call it (`run.rs`), before their first request.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::client::env;
use crate::client::error::{Error, Result};
use crate::client::jitter;

/// The default window grows by this many seconds per process of the job:
/// the server then meets about 200 new workers a second, which a server of
/// 4 gunicorn workers on 2 cores serves as they come (docs/scale.md).
pub const DEFAULT_SECS_PER_WORKER: f64 = 0.005;
/// The longest default window, in seconds (reached at 12,000 processes).
pub const MAX_DEFAULT_WINDOW_SECS: f64 = 60.0;
/// The longest window `TASKFARM_START_SPREAD` accepts, in seconds.
pub const MAX_SPREAD_SECS: f64 = 3600.0;

/// The processes of the job this one runs in, as the launcher tells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobPlace {
    /// How many processes start together (at least 1).
    pub size: u64,
    /// This process's place among them, `0..size`, when known.
    pub index: Option<u64>,
}

/// A whole number from `name`, when set and valid.
fn number(env: &impl Fn(&str) -> Option<String>, name: &str) -> Option<u64> {
    env(name)?.trim().parse().ok()
}

impl JobPlace {
    /// The place of this process from the variables `env` gives: a Slurm
    /// array (`SLURM_ARRAY_TASK_COUNT`, and `SLURM_ARRAY_TASK_ID` counted
    /// from `SLURM_ARRAY_TASK_MIN` in steps of `SLURM_ARRAY_TASK_STEP`), the
    /// ranks of the job (`OMPI_COMM_WORLD_SIZE`/`OMPI_COMM_WORLD_RANK`, else
    /// `PMI_SIZE`/`PMI_RANK`, else `SLURM_NTASKS`/`SLURM_PROCID`), or both:
    /// the ranks of every array element together. `None` when the launcher
    /// says nothing.
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Option<JobPlace> {
        let array = number(&env, "SLURM_ARRAY_TASK_COUNT")
            .filter(|&n| n >= 1)
            .map(|size| {
                let min = number(&env, "SLURM_ARRAY_TASK_MIN").unwrap_or(0);
                let step = number(&env, "SLURM_ARRAY_TASK_STEP")
                    .filter(|&s| s >= 1)
                    .unwrap_or(1);
                let index = number(&env, "SLURM_ARRAY_TASK_ID")
                    .and_then(|id| id.checked_sub(min))
                    .map(|offset| offset / step)
                    .filter(|&i| i < size);
                JobPlace { size, index }
            });
        let ranks = [
            ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
            ("PMI_SIZE", "PMI_RANK"),
            ("SLURM_NTASKS", "SLURM_PROCID"),
        ]
        .iter()
        .find_map(|(size, rank)| {
            let size = number(&env, size).filter(|&n| n >= 1)?;
            let index = number(&env, rank).filter(|&r| r < size);
            Some(JobPlace { size, index })
        });
        match (array, ranks) {
            (Some(a), Some(r)) => Some(JobPlace {
                size: a.size.saturating_mul(r.size),
                index: a
                    .index
                    .zip(r.index)
                    .map(|(e, k)| e.saturating_mul(r.size).saturating_add(k)),
            }),
            (one, other) => one.or(other),
        }
    }
}

/// The default window for a job of `size` processes: 0 for one, else
/// [`DEFAULT_SECS_PER_WORKER`] per process, at most [`MAX_DEFAULT_WINDOW_SECS`].
pub fn default_window(size: u64) -> Duration {
    if size <= 1 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64((size as f64 * DEFAULT_SECS_PER_WORKER).min(MAX_DEFAULT_WINDOW_SECS))
}

/// Checks `TASKFARM_START_SPREAD`: seconds in [0, [`MAX_SPREAD_SECS`]].
pub fn parse_window(value: &str) -> Result<Duration> {
    match value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=MAX_SPREAD_SECS).contains(&s) => {
            Ok(Duration::from_secs_f64(s))
        }
        _ => Err(Error::invalid_argument(format!(
            "{}={value:?} is not a number of seconds in [0, {MAX_SPREAD_SECS}]",
            env::START_SPREAD
        ))),
    }
}

/// The delay of this process's first request, from the variables `env`
/// gives: `window·index/size`, where the window is `TASKFARM_START_SPREAD`
/// when set, else [`default_window`] of the job's size. A process that knows
/// the window but not its place (no launcher variables, or no rank) takes a
/// random share of it (`unit` gives a number in [0, 1)).
pub fn delay(env: impl Fn(&str) -> Option<String>, unit: impl FnOnce() -> f64) -> Result<Duration> {
    let place = JobPlace::from_lookup(&env);
    let window = match env(env::START_SPREAD).filter(|v| !v.trim().is_empty()) {
        Some(value) => parse_window(&value)?,
        None => default_window(place.map_or(1, |p| p.size)),
    };
    if window.is_zero() {
        return Ok(Duration::ZERO);
    }
    Ok(match place {
        Some(JobPlace {
            size,
            index: Some(index),
        }) => window.mul_f64(index as f64 / size as f64),
        _ => window.mul_f64(unit()),
    })
}

/// Waits, the first time a process opens a run, for this process's
/// [`delay`]; threads that open runs meanwhile wait for the same moment, and
/// later calls do not wait. An invalid `TASKFARM_START_SPREAD` is an error
/// (every time: nothing is remembered then).
pub fn wait_before_first_request() -> Result<()> {
    static START: OnceLock<Instant> = OnceLock::new();
    let until = match START.get() {
        Some(until) => *until,
        None => {
            let wait = delay(env::var, || jitter::with_thread_rng(|rng| rng.unit()))?;
            *START.get_or_init(|| Instant::now() + wait)
        }
    };
    let now = Instant::now();
    if until > now {
        if env::log_debug() {
            eprintln!(
                "taskfarm: start spread: first request in {:.2} s",
                (until - now).as_secs_f64()
            );
        }
        std::thread::sleep(until - now);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn place(vars: &[(&str, &str)]) -> Option<JobPlace> {
        JobPlace::from_lookup(lookup(vars))
    }

    fn at(size: u64, index: u64) -> Option<JobPlace> {
        Some(JobPlace {
            size,
            index: Some(index),
        })
    }

    #[test]
    fn the_place_comes_from_the_array_or_the_ranks_or_both() {
        assert_eq!(place(&[]), None);
        // --array=1-1000: element 1 is the first.
        let array = [
            ("SLURM_ARRAY_TASK_COUNT", "1000"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_ID", "1"),
        ];
        assert_eq!(place(&array), at(1000, 0));
        // --array=0-99:10 (10 elements): element 30 is the fourth.
        let stepped = [
            ("SLURM_ARRAY_TASK_COUNT", "10"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "10"),
            ("SLURM_ARRAY_TASK_ID", "30"),
        ];
        assert_eq!(place(&stepped), at(10, 3));
        // Open MPI before PMI before srun's own ranks.
        let ranks = [
            ("OMPI_COMM_WORLD_SIZE", "64"),
            ("OMPI_COMM_WORLD_RANK", "5"),
            ("PMI_SIZE", "2"),
            ("PMI_RANK", "1"),
            ("SLURM_NTASKS", "8"),
            ("SLURM_PROCID", "7"),
        ];
        assert_eq!(place(&ranks), at(64, 5));
        assert_eq!(place(&ranks[2..]), at(2, 1));
        assert_eq!(place(&ranks[4..]), at(8, 7));
        // An array of 10 jobs of 8 ranks: 80 processes.
        let both = [stepped.as_slice(), &ranks[4..]].concat();
        assert_eq!(place(&both), at(80, 31));
        // A size without a place, and nonsense, are not a place.
        assert_eq!(
            place(&[("SLURM_NTASKS", "4")]),
            Some(JobPlace {
                size: 4,
                index: None
            })
        );
        assert_eq!(
            place(&[("SLURM_NTASKS", "4"), ("SLURM_PROCID", "9")]),
            Some(JobPlace {
                size: 4,
                index: None
            })
        );
        assert_eq!(place(&[("SLURM_NTASKS", "0")]), None);
        assert_eq!(place(&[("OMPI_COMM_WORLD_SIZE", "lots")]), None);
    }

    #[test]
    fn the_default_window_grows_with_the_job_and_is_zero_alone() {
        assert_eq!(default_window(0), Duration::ZERO);
        assert_eq!(default_window(1), Duration::ZERO);
        assert_eq!(default_window(2), Duration::from_millis(10));
        assert_eq!(default_window(1000), Duration::from_secs(5));
        assert_eq!(default_window(1_000_000), Duration::from_secs(60));
    }

    #[test]
    fn each_process_waits_its_share_and_the_variable_overrides_the_window() {
        let never = || -> f64 { panic!("a process with a place takes no random share") };
        let element = |i: &str, extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![
                ("SLURM_ARRAY_TASK_COUNT", "1000"),
                ("SLURM_ARRAY_TASK_MIN", "0"),
            ];
            vars.push((
                "SLURM_ARRAY_TASK_ID",
                Box::leak(i.to_owned().into_boxed_str()),
            ));
            vars.extend_from_slice(extra);
            lookup(&vars)
        };
        assert_eq!(delay(element("0", &[]), never).unwrap(), Duration::ZERO);
        assert_eq!(
            delay(element("500", &[]), never).unwrap(),
            Duration::from_millis(2500)
        );
        let wide = [("TASKFARM_START_SPREAD", "100")];
        assert_eq!(
            delay(element("999", &wide), never).unwrap(),
            Duration::from_millis(99_900)
        );
        assert_eq!(
            delay(element("999", &[("TASKFARM_START_SPREAD", "0")]), never).unwrap(),
            Duration::ZERO
        );
        // A lone process: no wait by default; with the variable, a random share.
        assert_eq!(delay(lookup(&[]), never).unwrap(), Duration::ZERO);
        assert_eq!(
            delay(lookup(&[("TASKFARM_START_SPREAD", "8")]), || 0.25).unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(
            delay(lookup(&[("TASKFARM_START_SPREAD", " ")]), never).unwrap(),
            Duration::ZERO
        );
        for bad in ["soon", "-1", "nan", "inf", "3601"] {
            let err = delay(lookup(&[("TASKFARM_START_SPREAD", bad)]), never).unwrap_err();
            assert_eq!(
                err.message(),
                format!("TASKFARM_START_SPREAD={bad:?} is not a number of seconds in [0, 3600]")
            );
        }
    }
}
