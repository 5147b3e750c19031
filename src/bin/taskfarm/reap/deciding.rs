//! Deciding whether a journaled worker is gone: on the same machine its
//! process (and the boot id) decides; else the schedulers of the batch jobs
//! the journal records (the library's `scheduler` modules: under Slurm
//! `squeue` here when the journal is of this cluster; PBS, Grid Engine, LSF,
//! Flux), a job ended or unknown to its scheduler proving the worker gone;
//! else the age of its heartbeat. [`Probe`] is where the reaper looks, a
//! trait so that the decision is testable without processes or schedulers.

use std::collections::BTreeMap;

use taskfarm_worker::internal::scheduler::{slurm, JobId, JobState, Scheduler};
use taskfarm_worker::internal::worker::identity;
use taskfarm_worker::internal::worker::journal::{
    boot_id, process_state, ProcessState, Record, SlurmIds,
};

use super::cluster_name;

/// Where the reaper looks: the machine it runs on and the schedulers. A
/// trait so that the decision is testable without processes or schedulers.
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
    fn slurm(&self, ids: &SlurmIds) -> JobState;
    /// Job `job`, asked of its scheduler's command here.
    fn job(&self, job: &JobId) -> JobState;
}

/// The real machine, and the schedulers through their commands: Slurm's
/// `squeue` (and `scontrol show config` for the cluster's name), PBS's and
/// Grid Engine's `qstat`, LSF's `bjobs`, `flux jobs`, when installed. One
/// probe serves one pass: the answer for a job or step is asked once (the
/// ranks of one MPI job share it), the cluster's name once.
#[derive(Debug, Default)]
pub struct SystemProbe {
    slurm_answers: std::cell::RefCell<BTreeMap<(String, Option<String>), JobState>>,
    job_answers: std::cell::RefCell<BTreeMap<JobId, JobState>>,
    cluster: std::cell::OnceCell<Option<String>>,
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

    fn slurm(&self, ids: &SlurmIds) -> JobState {
        let Some(job) = ids.job_id.clone() else {
            return JobState::Unknown("no Slurm job id".into());
        };
        let key = (job, ids.step_id.clone());
        if let Some(answer) = self.slurm_answers.borrow().get(&key) {
            return answer.clone();
        }
        let answer = name_element(ask_slurm(ids), ids);
        self.slurm_answers.borrow_mut().insert(key, answer.clone());
        answer
    }

    fn job(&self, job: &JobId) -> JobState {
        if let Some(answer) = self.job_answers.borrow().get(job) {
            return answer.clone();
        }
        let answer = job.state();
        self.job_answers
            .borrow_mut()
            .insert(job.clone(), answer.clone());
        answer
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// The state of the job (and step, when it is a number) of `ids`, from
/// squeue. The job is named by its own id (`SLURM_JOB_ID`): for an array
/// element that is the element's id, but the element that got the array's
/// id shares it with the whole array in `squeue -j`, so only the lines
/// whose job id (`%A`) is the worker's count.
fn ask_slurm(ids: &SlurmIds) -> JobState {
    let job = ids.job_id.as_deref().unwrap_or_default();
    if !is_number(job) {
        return JobState::Unknown(format!("Slurm job id {job:?} is not a number"));
    }
    let job_state = slurm::job_state(&JobId {
        scheduler: Scheduler::Slurm,
        job: job.to_owned(),
        task: None,
        instance: None,
    });
    let JobState::Alive(_) = job_state else {
        return job_state;
    };
    let Some(step) = ids.step_id.as_deref().filter(|s| is_number(s)) else {
        return job_state;
    };
    let element = ids
        .array_job_id
        .as_deref()
        .zip(ids.array_task_id.as_deref());
    slurm::step_state(job, step, element)
}

/// `JobState::Gone` of an array element names the element too.
fn name_element(state: JobState, ids: &SlurmIds) -> JobState {
    match (state, &ids.array_job_id, &ids.array_task_id) {
        (JobState::Gone(why), Some(array), Some(index)) => {
            JobState::Gone(format!("{why} (array element {array}_{index})"))
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
fn slurm_here(ids: &SlurmIds, probe: &dyn Probe) -> JobState {
    if let Some(theirs) = &ids.cluster {
        match probe.slurm_cluster() {
            Some(ours) if ours == *theirs => {}
            Some(ours) => {
                return JobState::Unknown(format!(
                    "the worker ran on cluster {theirs}, squeue here answers for cluster {ours}"
                ))
            }
            None => {
                return JobState::Unknown(format!(
                    "the worker ran on cluster {theirs}, and the cluster of squeue here is unknown"
                ))
            }
        }
    }
    probe.slurm(ids)
}

/// What the schedulers say of the batch jobs of `record`: `Err(why)` when
/// one of them has ended or is unknown to its scheduler (the worker in it is
/// gone); else `Ok` with a note for the verdict (each job running, or why
/// its scheduler cannot tell). Slurm's job is asked with its step and
/// cluster ([`slurm_here`]); every other recorded job of its scheduler.
fn ask_schedulers(record: &Record, probe: &dyn Probe) -> Result<String, String> {
    let mut note = String::new();
    let slurm_ids = record.slurm.as_ref().filter(|s| s.job_id.is_some());
    if let Some(ids) = slurm_ids {
        match slurm_here(ids, probe) {
            JobState::Gone(why) => return Err(why),
            JobState::Alive(_) => note.push_str("; its Slurm job is running"),
            JobState::Unknown(why) => note.push_str(&format!("; Slurm: {why}")),
        }
    }
    let others = record
        .jobs
        .iter()
        .filter(|job| !(slurm_ids.is_some() && job.scheduler == Scheduler::Slurm));
    for job in others {
        match probe.job(job) {
            JobState::Gone(why) => return Err(why),
            JobState::Alive(_) => note.push_str(&format!("; its {} is running", job.describe())),
            JobState::Unknown(why) => note.push_str(&format!("; {}: {why}", job.scheduler.name())),
        }
    }
    Ok(note)
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
    let note = match ask_schedulers(record, probe) {
        Ok(note) => note,
        Err(why) => return gone(why),
    };
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
        slurm: JobState,
        cluster: Option<&'static str>,
    }

    /// What the fake schedulers other than Slurm answer: a verdict per job
    /// id, unknown for any other.
    fn other_scheduler(job: &JobId) -> JobState {
        match job.job.as_str() {
            "ended" => JobState::Gone(format!("{} is F (ended)", job.describe())),
            "running" => JobState::Alive(format!("{} is R", job.describe())),
            _ => JobState::Unknown("cannot tell".into()),
        }
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
        fn slurm(&self, _ids: &SlurmIds) -> JobState {
            self.slurm.clone()
        }
        fn job(&self, job: &JobId) -> JobState {
            other_scheduler(job)
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
            jobs: vec![],
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
            slurm: JobState::Unknown("none".into()),
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
        let unknown = elsewhere(JobState::Unknown("no squeue".into()));
        assert!(matches!(
            decide(&r, &unknown, 1100.0, 300.0),
            Verdict::Alive(_)
        ));
        assert!(is_gone(&decide(&r, &unknown, 1301.0, 300.0)));
        r.slurm = Some(SlurmIds {
            job_id: Some("77".into()),
            ..SlurmIds::default()
        });
        let ended = elsewhere(JobState::Gone("Slurm job 77 is CANCELLED".into()));
        match decide(&r, &ended, 1001.0, 300.0) {
            Verdict::Gone { why, crashed: true } => assert!(why.contains("CANCELLED"), "{why}"),
            v => panic!("{v:?}"),
        }
        let running = elsewhere(JobState::Alive("Slurm job 77 is RUNNING".into()));
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
            slurm: JobState::Gone("Slurm job 77 is COMPLETED".into()),
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
        let gone = name_element(JobState::Gone("Slurm job 1 is FAILED".into()), &element);
        assert_eq!(
            gone,
            JobState::Gone("Slurm job 1 is FAILED (array element 1_1)".into())
        );
        assert_eq!(
            name_element(JobState::Alive("Slurm job 77 is RUNNING".into()), &element),
            JobState::Alive("Slurm job 77 is RUNNING".into())
        );
    }

    #[test]
    fn on_another_host_a_recorded_job_of_any_scheduler_decides() {
        let job = |scheduler, id: &str| JobId {
            scheduler,
            job: id.into(),
            task: None,
            instance: None,
        };
        let elsewhere = Fake {
            host: "login1",
            boot: None,
            process: ProcessState::Gone, // must not be consulted
            slurm: JobState::Unknown("no squeue".into()),
            cluster: None,
        };
        for scheduler in [
            Scheduler::Pbs,
            Scheduler::GridEngine,
            Scheduler::Lsf,
            Scheduler::Flux,
        ] {
            let mut r = record();
            r.jobs = vec![job(scheduler, "ended")];
            match decide(&r, &elsewhere, 1001.0, 300.0) {
                Verdict::Gone { why, crashed: true } => assert!(why.contains("ended"), "{why}"),
                v => panic!("{scheduler:?}: {v:?}"),
            }
            r.jobs = vec![job(scheduler, "running")];
            match decide(&r, &elsewhere, 1100.0, 300.0) {
                Verdict::Alive(why) => assert!(why.contains("is running"), "{why}"),
                v => panic!("{scheduler:?}: {v:?}"),
            }
            // Running, but the heartbeat is stale: the heartbeat decides.
            assert!(is_gone(&decide(&r, &elsewhere, 1400.0, 300.0)));
            r.jobs = vec![job(scheduler, "garbled")];
            match decide(&r, &elsewhere, 1100.0, 300.0) {
                Verdict::Alive(why) => assert!(why.contains("cannot tell"), "{why}"),
                v => panic!("{scheduler:?}: {v:?}"),
            }
        }
        // Flux inside a running Slurm job: the Flux job's end decides.
        let mut r = record();
        r.slurm = Some(SlurmIds {
            job_id: Some("77".into()),
            ..SlurmIds::default()
        });
        r.jobs = vec![job(Scheduler::Slurm, "77"), job(Scheduler::Flux, "ended")];
        let slurm_running = Fake {
            slurm: JobState::Alive("Slurm job 77 is RUNNING".into()),
            ..elsewhere
        };
        assert!(is_gone(&decide(&r, &slurm_running, 1001.0, 300.0)));
        // The Slurm entry of "jobs" is asked through the Slurm ids (with the
        // cluster check), not a second time as "ended" would say.
        r.jobs = vec![job(Scheduler::Slurm, "ended")];
        assert!(matches!(
            decide(&r, &slurm_running, 1001.0, 300.0),
            Verdict::Alive(_)
        ));
        // On the same host the process still decides first.
        let mut r = record();
        r.jobs = vec![job(Scheduler::Pbs, "ended")];
        assert!(matches!(
            decide(&r, &here(ProcessState::Running(1000)), 1001.0, 300.0),
            Verdict::Alive(_)
        ));
    }
}
