//! Deciding whether a journaled worker is gone: on the same machine its
//! process (and the boot id) decides; under Slurm, `squeue` here (the
//! library's `scheduler::slurm`) when the journal is of this cluster; else
//! the age of its heartbeat. [`Probe`] is where the reaper looks, a trait so
//! that the decision is testable without processes or Slurm.

use std::collections::{BTreeMap, BTreeSet};

use taskfarm_worker::internal::scheduler::slurm::{self, SlurmState};
use taskfarm_worker::internal::worker::identity;
use taskfarm_worker::internal::worker::journal::{
    boot_id, process_state, ProcessState, Record, SlurmIds,
};

use super::cluster_name;

/// Where the reaper looks: the machine it runs on and Slurm. A trait so that
/// the decision is testable without processes or Slurm.
pub trait Probe {
    /// This machine's host name.
    fn host(&self) -> String;
    /// This machine's boot id.
    fn boot_id(&self) -> Option<String>;
    /// Process `pid` on this machine.
    fn process(&self, pid: u32) -> ProcessState;
    /// The name of the Slurm cluster that `squeue` here answers for, when
    /// known.
    fn slurm_cluster(&self) -> Option<String>;
    /// The job or step of `ids`, asked of this machine's Slurm.
    fn slurm(&self, ids: &SlurmIds) -> SlurmState;
    /// Told, before the pass decides, of the Slurm ids of every journal it
    /// read: a probe that can asks Slurm about all of them in one go, the
    /// first time [`Probe::slurm`] needs an answer.
    fn expect_slurm(&self, _ids: Vec<SlurmIds>) {}
}

/// The real machine, and Slurm through `squeue` (and `scontrol show config`
/// for the cluster's name) when it is installed. One probe serves one pass:
/// the first question to Slurm asks about every job the pass expects at once
/// (`squeue -t all -j J1,J2,...`, then `squeue -s` for the steps of those
/// running: two calls per 1,000 jobs, `slurm::MAX_JOBS_PER_CALL`), and the
/// answers serve the rest of the pass; the cluster's name is asked once.
#[derive(Debug, Default)]
pub struct SystemProbe {
    slurm_answers: std::cell::RefCell<BTreeMap<(String, Option<String>), SlurmState>>,
    expected: std::cell::RefCell<Vec<SlurmIds>>,
    cluster: std::cell::OnceCell<Option<String>>,
}

/// The key of an answer: the job and the step.
fn answer_key(ids: &SlurmIds) -> Option<(String, Option<String>)> {
    Some((ids.job_id.clone()?, ids.step_id.clone()))
}

impl Probe for SystemProbe {
    fn host(&self) -> String {
        identity::host_name()
    }

    fn boot_id(&self) -> Option<String> {
        boot_id()
    }

    fn process(&self, pid: u32) -> ProcessState {
        process_state(pid)
    }

    fn slurm_cluster(&self) -> Option<String> {
        self.cluster.get_or_init(cluster_name::ask).clone()
    }

    fn slurm(&self, ids: &SlurmIds) -> SlurmState {
        let Some(key) = answer_key(ids) else {
            return SlurmState::Unknown("no Slurm job id".into());
        };
        if let Some(answer) = self.slurm_answers.borrow().get(&key) {
            return answer.clone();
        }
        let mut wanted = self.expected.take();
        wanted.push(ids.clone());
        let answers = ask_slurm(&wanted);
        let mut cache = self.slurm_answers.borrow_mut();
        for (ids, answer) in wanted.iter().zip(answers) {
            if let Some(key) = answer_key(ids) {
                cache.insert(key, name_element(answer, ids));
            }
        }
        cache[&key].clone()
    }

    fn expect_slurm(&self, ids: Vec<SlurmIds>) {
        self.expected.borrow_mut().extend(ids);
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// The state of the job (and step, when it is a number) of each of
/// `wanted`, from squeue: one query of the states of all their jobs, then
/// one of the steps of those running ([`slurm::job_states`],
/// [`slurm::step_lists`]). The job is named by its own id (`SLURM_JOB_ID`):
/// for an array element that is the element's id, but the element that got
/// the array's id shares it with the whole array in `squeue -j`, so only the
/// lines whose job id (`%A`) is the worker's count.
fn ask_slurm(wanted: &[SlurmIds]) -> Vec<SlurmState> {
    let job = |ids: &SlurmIds| ids.job_id.clone().unwrap_or_default();
    let step = |ids: &SlurmIds| ids.step_id.clone().filter(|s| is_number(s));
    let jobs: BTreeSet<String> = wanted.iter().map(job).filter(|j| is_number(j)).collect();
    let jobs: Vec<&str> = jobs.iter().map(String::as_str).collect();
    let states = if jobs.is_empty() {
        BTreeMap::new()
    } else {
        slurm::job_states(&jobs)
    };
    let running = |j: &str| states.get(j) == Some(&SlurmState::Running);
    let step_jobs: BTreeSet<String> = wanted
        .iter()
        .filter(|ids| step(ids).is_some() && running(&job(ids)))
        .map(job)
        .collect();
    let step_jobs: Vec<&str> = step_jobs.iter().map(String::as_str).collect();
    let steps = if step_jobs.is_empty() {
        Ok(String::new())
    } else {
        slurm::step_lists(&step_jobs)
    };
    wanted
        .iter()
        .map(|ids| {
            let job = job(ids);
            if !is_number(&job) {
                return SlurmState::Unknown(format!("Slurm job id {job:?} is not a number"));
            }
            let state = states[&job].clone();
            let Some(step) = step(ids).filter(|_| state == SlurmState::Running) else {
                return state;
            };
            let element = ids
                .array_job_id
                .as_deref()
                .zip(ids.array_task_id.as_deref());
            match &steps {
                Ok(listed) => slurm::parse_step_state(listed, &job, &step, element),
                Err(why) => SlurmState::Unknown(why.clone()),
            }
        })
        .collect()
}

/// `SlurmState::Gone` of an array element names the element too.
fn name_element(state: SlurmState, ids: &SlurmIds) -> SlurmState {
    match (state, &ids.array_job_id, &ids.array_task_id) {
        (SlurmState::Gone(why), Some(array), Some(index)) => {
            SlurmState::Gone(format!("{why} (array element {array}_{index})"))
        }
        (state, _, _) => state,
    }
}

/// Whether a worker is alive, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Alive, or not proved gone.
    Alive(String),
    /// Gone. `crashed`: it died (its task counts an attempt), rather than
    /// being freed by its program.
    Gone {
        /// Why it is known to be gone.
        why: String,
        /// True when it died; false when its program freed it.
        crashed: bool,
    },
}

/// What this machine's Slurm says about the job of `ids`. A job of another
/// cluster (its `SLURM_CLUSTER_NAME` is not the name of the cluster squeue
/// here answers for, or that name is unknown) is not asked about: the same
/// job id there is another job.
fn slurm_here(ids: &SlurmIds, probe: &dyn Probe) -> SlurmState {
    if let Some(theirs) = &ids.cluster {
        match probe.slurm_cluster() {
            Some(ours) if ours == *theirs => {}
            Some(ours) => {
                return SlurmState::Unknown(format!(
                    "the worker ran on cluster {theirs}, squeue here answers for cluster {ours}"
                ))
            }
            None => {
                return SlurmState::Unknown(format!(
                    "the worker ran on cluster {theirs}, and the cluster of squeue here is unknown"
                ))
            }
        }
    }
    probe.slurm(ids)
}

/// Decides whether the worker of journal `record` is gone, at Unix time `now`.
pub fn decide(record: &Record, probe: &dyn Probe, now: f64, stale_secs: f64) -> Verdict {
    let gone = |why: String| Verdict::Gone { why, crashed: true };
    if record.freed {
        return Verdict::Gone {
            why: "its program freed it".into(),
            crashed: false,
        };
    }
    let same_host = record.host == probe.host();
    if same_host {
        let here = probe.boot_id();
        if let (Some(then), Some(here)) = (&record.boot_id, &here) {
            if then != here {
                return gone(format!("host {} rebooted since", record.host));
            }
        }
        match probe.process(record.pid) {
            ProcessState::Gone => return gone(format!("process {} has ended", record.pid)),
            ProcessState::Running(start) => match record.process_start {
                Some(then) if then != start => {
                    return gone(format!(
                        "process {} has ended (its pid now belongs to a later process)",
                        record.pid
                    ))
                }
                _ => return Verdict::Alive(format!("process {} is running", record.pid)),
            },
            ProcessState::Unknown => {}
        }
    }
    let mut note = String::new();
    if let Some(ids) = record.slurm.as_ref().filter(|s| s.job_id.is_some()) {
        match slurm_here(ids, probe) {
            SlurmState::Gone(why) => return gone(why),
            SlurmState::Running => note = "; its Slurm job is running".into(),
            SlurmState::Unknown(why) => note = format!("; Slurm: {why}"),
        }
    }
    let age = now - record.heartbeat;
    if age > stale_secs {
        gone(format!(
            "its heartbeat is {age:.0} s old, more than --stale {stale_secs} s{note}"
        ))
    } else {
        Verdict::Alive(format!("heartbeat {age:.0} s ago{note}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskfarm_worker::internal::worker::journal;

    struct Fake {
        host: &'static str,
        boot: Option<&'static str>,
        process: ProcessState,
        slurm: SlurmState,
        cluster: Option<&'static str>,
    }

    impl Probe for Fake {
        fn host(&self) -> String {
            self.host.into()
        }
        fn boot_id(&self) -> Option<String> {
            self.boot.map(Into::into)
        }
        fn process(&self, _pid: u32) -> ProcessState {
            self.process
        }
        fn slurm_cluster(&self) -> Option<String> {
            self.cluster.map(Into::into)
        }
        fn slurm(&self, _ids: &SlurmIds) -> SlurmState {
            self.slurm.clone()
        }
    }

    fn record() -> Record {
        Record {
            format: journal::FORMAT.into(),
            version: journal::VERSION,
            run: "r1".into(),
            worker: "w1".into(),
            host: "node1".into(),
            boot_id: Some("boot-a".into()),
            pid: 42,
            process_start: Some(1000),
            slurm: None,
            mpi_rank: None,
            task: Some(5),
            percent: Some(10.0),
            releasing: false,
            kept_done: vec![],
            freed: false,
            heartbeat: 1000.0,
            heartbeat_interval: 30.0,
        }
    }

    fn here(process: ProcessState) -> Fake {
        Fake {
            host: "node1",
            boot: Some("boot-a"),
            process,
            slurm: SlurmState::Unknown("none".into()),
            cluster: None,
        }
    }

    fn is_gone(v: &Verdict) -> bool {
        matches!(v, Verdict::Gone { crashed: true, .. })
    }

    #[test]
    fn on_the_same_host_the_process_decides_not_the_heartbeat() {
        let r = record();
        // Fresh heartbeat, but the process is gone: gone.
        assert!(is_gone(&decide(
            &r,
            &here(ProcessState::Gone),
            1001.0,
            300.0
        )));
        // The pid belongs to a process that started later: gone.
        assert!(is_gone(&decide(
            &r,
            &here(ProcessState::Running(2000)),
            1001.0,
            300.0
        )));
        // The same process, heartbeat very old (stopped, or a slow disk): alive.
        let v = decide(&r, &here(ProcessState::Running(1000)), 1.0e6, 300.0);
        assert!(matches!(v, Verdict::Alive(_)), "{v:?}");
        // /proc cannot tell: the heartbeat decides.
        assert!(matches!(
            decide(&r, &here(ProcessState::Unknown), 1100.0, 300.0),
            Verdict::Alive(_)
        ));
        assert!(is_gone(&decide(
            &r,
            &here(ProcessState::Unknown),
            1400.0,
            300.0
        )));
        // The machine rebooted: gone, even with a live process of that pid.
        let rebooted = Fake {
            boot: Some("boot-b"),
            ..here(ProcessState::Running(1000))
        };
        assert!(is_gone(&decide(&r, &rebooted, 1001.0, 300.0)));
    }

    #[test]
    fn on_another_host_slurm_or_the_heartbeat_decides() {
        let mut r = record();
        let elsewhere = |slurm| Fake {
            host: "login1",
            boot: Some("boot-z"),
            process: ProcessState::Gone, // must not be consulted
            slurm,
            cluster: None,
        };
        let unknown = elsewhere(SlurmState::Unknown("no squeue".into()));
        assert!(matches!(
            decide(&r, &unknown, 1100.0, 300.0),
            Verdict::Alive(_)
        ));
        assert!(is_gone(&decide(&r, &unknown, 1301.0, 300.0)));
        r.slurm = Some(SlurmIds {
            job_id: Some("77".into()),
            ..SlurmIds::default()
        });
        let ended = elsewhere(SlurmState::Gone("Slurm job 77 is CANCELLED".into()));
        match decide(&r, &ended, 1001.0, 300.0) {
            Verdict::Gone { why, crashed: true } => assert!(why.contains("CANCELLED"), "{why}"),
            v => panic!("{v:?}"),
        }
        let running = elsewhere(SlurmState::Running);
        assert!(matches!(
            decide(&r, &running, 1100.0, 300.0),
            Verdict::Alive(_)
        ));
        assert!(is_gone(&decide(&r, &running, 1400.0, 300.0)));
    }

    #[test]
    fn a_freed_worker_is_gone_without_an_attempt() {
        let r = Record {
            freed: true,
            ..record()
        };
        assert!(matches!(
            decide(&r, &here(ProcessState::Running(1000)), 1001.0, 300.0),
            Verdict::Gone { crashed: false, .. }
        ));
    }

    #[test]
    fn a_journal_of_another_cluster_is_not_judged_by_the_local_squeue() {
        let mut r = record();
        r.slurm = Some(SlurmIds {
            job_id: Some("77".into()),
            cluster: Some("big".into()),
            ..SlurmIds::default()
        });
        let on = |cluster| Fake {
            host: "login1",
            boot: None,
            process: ProcessState::Gone,
            // Job 77 of this cluster is another job, which has ended.
            slurm: SlurmState::Gone("Slurm job 77 is COMPLETED".into()),
            cluster,
        };
        for cluster in [Some("small"), None] {
            let probe = on(cluster);
            match decide(&r, &probe, 1100.0, 300.0) {
                Verdict::Alive(why) => assert!(why.contains("cluster big"), "{why}"),
                v => panic!("{cluster:?}: {v:?}"),
            }
            // The heartbeat still decides.
            match decide(&r, &probe, 1400.0, 300.0) {
                Verdict::Gone { why, crashed: true } => {
                    assert!(why.contains("heartbeat"), "{why}")
                }
                v => panic!("{cluster:?}: {v:?}"),
            }
        }
        // The same cluster: Slurm is asked.
        match decide(&r, &on(Some("big")), 1100.0, 300.0) {
            Verdict::Gone { why, crashed: true } => assert!(why.contains("COMPLETED"), "{why}"),
            v => panic!("{v:?}"),
        }
        // A journal without a cluster name (an older Slurm): asked as well.
        r.slurm.as_mut().unwrap().cluster = None;
        assert!(is_gone(&decide(&r, &on(None), 1100.0, 300.0)));
    }

    #[test]
    fn an_array_elements_end_names_the_element() {
        let element = SlurmIds {
            job_id: Some("1".into()),
            array_job_id: Some("1".into()),
            array_task_id: Some("1".into()),
            step_id: Some("0".into()),
            cluster: None,
        };
        let gone = name_element(SlurmState::Gone("Slurm job 1 is FAILED".into()), &element);
        assert_eq!(
            gone,
            SlurmState::Gone("Slurm job 1 is FAILED (array element 1_1)".into())
        );
        assert_eq!(
            name_element(SlurmState::Running, &element),
            SlurmState::Running
        );
    }
}
