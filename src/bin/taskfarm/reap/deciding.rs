//! Deciding whether a journaled worker is gone, on proofs only:
//!
//! - its process, where the reaper can judge a pid: the same running kernel
//!   (boot id) and the same PID namespace as the worker's journal records.
//!   `kill(pid, 0)` says whether the pid exists (also for another user's
//!   process, and under `/proc` mounted `hidepid=2`), `/proc/PID/stat`
//!   whether it is a zombie or a later process that got the pid;
//! - under Slurm, `squeue` here (the library's `scheduler::slurm`) when the
//!   journal is of this cluster: a job that ended is gone, a suspended job
//!   is alive whatever its heartbeat;
//! - else the heartbeat, judged only by whether it *changed* between the
//!   reaper's own looks, timed by the reaper's own monotonic clock (never
//!   by comparing clocks of two machines), and stale only when it stood
//!   still longer than `--stale` and than [`STALE_HEARTBEATS`] of the
//!   interval the worker recorded.
//!
//! A host name proves nothing (cloned VMs, nodes all called `localhost`);
//! another boot id means another machine or a reboot, which the reaper
//! cannot tell apart, so it is no proof either. [`Probe`] is where the
//! reaper looks, a trait so that the decision is testable without
//! processes or Slurm.

use std::collections::BTreeMap;

use taskfarm_worker::internal::scheduler::slurm::{self, SlurmState};
use taskfarm_worker::internal::worker::journal::{Record, SlurmIds};
use taskfarm_worker::internal::worker::machine::{
    boot_id, pid_namespace, process_state, ProcessState,
};

use super::cluster_name;

/// A heartbeat is stale only when it stood still for more than this many
/// of the intervals its worker recorded (and more than `--stale`).
pub const STALE_HEARTBEATS: f64 = 3.0;

/// Where the reaper looks: the machine it runs on and Slurm. A trait so that
/// the decision is testable without processes or Slurm.
pub trait Probe {
    /// This machine's boot id.
    fn boot_id(&self) -> Option<String>;
    /// The reaper's PID namespace.
    fn pid_namespace(&self) -> Option<u64>;
    /// Process `pid` in the reaper's PID namespace.
    fn process(&self, pid: u32) -> ProcessState;
    /// The name of the Slurm cluster that `squeue` here answers for, when
    /// known.
    fn slurm_cluster(&self) -> Option<String>;
    /// The job or step of `ids`, asked of this machine's Slurm.
    fn slurm(&self, ids: &SlurmIds) -> SlurmState;
}

/// The real machine, and Slurm through `squeue` (and `scontrol show config`
/// for the cluster's name) when it is installed. One probe serves one pass:
/// the answer for a job or step is asked once (the ranks of one MPI job
/// share it), the cluster's name once.
#[derive(Debug, Default)]
pub struct SystemProbe {
    slurm_answers: std::cell::RefCell<BTreeMap<(String, Option<String>), SlurmState>>,
    cluster: std::cell::OnceCell<Option<String>>,
}

impl Probe for SystemProbe {
    fn boot_id(&self) -> Option<String> {
        boot_id()
    }

    fn pid_namespace(&self) -> Option<u64> {
        pid_namespace()
    }

    fn process(&self, pid: u32) -> ProcessState {
        process_state(pid)
    }

    fn slurm_cluster(&self) -> Option<String> {
        self.cluster.get_or_init(cluster_name::ask).clone()
    }

    fn slurm(&self, ids: &SlurmIds) -> SlurmState {
        let Some(job) = ids.job_id.clone() else {
            return SlurmState::Unknown("no Slurm job id".into());
        };
        let key = (job, ids.step_id.clone());
        if let Some(answer) = self.slurm_answers.borrow().get(&key) {
            return answer.clone();
        }
        let answer = name_element(ask_slurm(ids), ids);
        self.slurm_answers.borrow_mut().insert(key, answer.clone());
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
fn ask_slurm(ids: &SlurmIds) -> SlurmState {
    let job = ids.job_id.as_deref().unwrap_or_default();
    if !is_number(job) {
        return SlurmState::Unknown(format!("Slurm job id {job:?} is not a number"));
    }
    let job_state = slurm::job_state(job);
    if job_state != SlurmState::Running {
        return job_state;
    }
    let Some(step) = ids.step_id.as_deref().filter(|s| is_number(s)) else {
        return SlurmState::Running;
    };
    let element = ids
        .array_job_id
        .as_deref()
        .zip(ids.array_task_id.as_deref());
    slurm::step_state(job, step, element)
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
    /// Alive and unable to run (its Slurm job is suspended): its heartbeat
    /// stands still and counts from the reaper's next look only.
    Suspended(String),
    /// Gone. `crashed`: it died (its task counts an attempt), rather than
    /// being freed by its program.
    Gone {
        /// Why it is known to be gone.
        why: String,
        /// True when it died; false when its program freed it.
        crashed: bool,
    },
}

/// How long the reaper has seen a worker's heartbeat stand still, on its
/// own monotonic clock: `None` at its first look (or the first since the
/// heartbeat changed in a way the reaper could not time).
pub type StillFor = Option<f64>;

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

/// Decides whether the worker of journal `record` is gone, its heartbeat
/// having stood still for `still` seconds of the reaper's clock.
pub fn decide(record: &Record, probe: &dyn Probe, still: StillFor, stale_secs: f64) -> Verdict {
    let gone = |why: String| Verdict::Gone { why, crashed: true };
    if record.freed {
        return Verdict::Gone {
            why: "its program freed it".into(),
            crashed: false,
        };
    }
    let mut note = match pid_judge(record, probe) {
        PidJudge::Gone(why) => return gone(why),
        PidJudge::Alive(why) => return Verdict::Alive(why),
        PidJudge::CannotTell(why) => format!("; {why}"),
    };
    if let Some(ids) = record.slurm.as_ref().filter(|s| s.job_id.is_some()) {
        match slurm_here(ids, probe) {
            SlurmState::Gone(why) => return gone(why),
            SlurmState::Suspended(why) => return Verdict::Suspended(format!("{why}{note}")),
            SlurmState::Running => note.push_str("; its Slurm job is running"),
            SlurmState::Unknown(why) => note.push_str(&format!("; Slurm: {why}")),
        }
    }
    let limit = stale_limit(record, stale_secs);
    match still {
        None => Verdict::Alive(format!("first look at its heartbeat{note}")),
        Some(secs) if secs > limit => gone(format!(
            "its heartbeat stood still for {secs:.1} s of this reaper's clock, more than \
             {limit:.1} s (--stale {stale_secs} s, {STALE_HEARTBEATS} of its {} s heartbeats){note}",
            record.heartbeat_interval
        )),
        Some(secs) => Verdict::Alive(format!(
            "heartbeat unchanged for {secs:.1} s of this reaper's clock (stale after {limit:.1} s){note}"
        )),
    }
}

/// How long a heartbeat of `record` may stand still before the worker is
/// gone: `--stale`, or [`STALE_HEARTBEATS`] of the worker's own interval
/// when that is longer.
pub fn stale_limit(record: &Record, stale_secs: f64) -> f64 {
    stale_secs.max(STALE_HEARTBEATS * record.heartbeat_interval)
}

/// What the worker's pid proves here.
enum PidJudge {
    Gone(String),
    Alive(String),
    CannotTell(String),
}

/// Judges the worker's pid, where that means something: the same running
/// kernel (boot id) and the same PID namespace as the reaper's.
fn pid_judge(record: &Record, probe: &dyn Probe) -> PidJudge {
    let pid = record.pid;
    match (&record.boot_id, probe.boot_id()) {
        (Some(theirs), Some(ours)) if *theirs == ours => {}
        (Some(_), Some(_)) => {
            return PidJudge::CannotTell(format!(
                "host {} has another boot id than this machine (another machine, or \
                 rebooted): its pid is not judged here",
                record.host
            ))
        }
        _ => {
            return PidJudge::CannotTell("a boot id is unknown: its pid is not judged here".into())
        }
    }
    match (record.pid_namespace, probe.pid_namespace()) {
        (Some(theirs), Some(ours)) if theirs == ours => {}
        (Some(_), Some(_)) => {
            return PidJudge::CannotTell(format!(
                "process {pid} runs in another PID namespace (a container): its pid is not \
                 judged here"
            ))
        }
        _ => {
            return PidJudge::CannotTell(format!(
                "the PID namespace of process {pid} is unknown: its pid is not judged here"
            ))
        }
    }
    match probe.process(pid) {
        ProcessState::Gone => PidJudge::Gone(format!("process {pid} has ended")),
        ProcessState::Running { start: Some(now) } => match record.process_start {
            Some(then) if then != now => PidJudge::Gone(format!(
                "process {pid} has ended (its pid now belongs to a later process)"
            )),
            Some(_) => PidJudge::Alive(format!("process {pid} is running")),
            None => PidJudge::CannotTell(format!(
                "pid {pid} exists, but its journal has no start time to tell a reused pid"
            )),
        },
        ProcessState::Running { start: None } => PidJudge::CannotTell(format!(
            "pid {pid} exists, but /proc hides its start time (hidepid): a reused pid \
             cannot be told"
        )),
        ProcessState::Unknown => {
            PidJudge::CannotTell(format!("this machine cannot tell whether pid {pid} exists"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskfarm_worker::internal::worker::journal;

    struct Fake {
        boot: Option<&'static str>,
        namespace: Option<u64>,
        process: ProcessState,
        slurm: SlurmState,
        cluster: Option<&'static str>,
    }

    impl Probe for Fake {
        fn boot_id(&self) -> Option<String> {
            self.boot.map(Into::into)
        }
        fn pid_namespace(&self) -> Option<u64> {
            self.namespace
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
            pid_namespace: Some(4026531836),
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

    /// The worker's machine and PID namespace.
    fn here(process: ProcessState) -> Fake {
        Fake {
            boot: Some("boot-a"),
            namespace: Some(4026531836),
            process,
            slurm: SlurmState::Unknown("none".into()),
            cluster: None,
        }
    }

    /// A machine where the worker's pid means nothing (another boot id);
    /// `process` must not be consulted.
    fn elsewhere(slurm: SlurmState) -> Fake {
        Fake {
            boot: Some("boot-z"),
            process: ProcessState::Gone,
            slurm,
            ..here(ProcessState::Gone)
        }
    }

    fn running(start: u64) -> ProcessState {
        ProcessState::Running { start: Some(start) }
    }

    fn is_gone(v: &Verdict) -> bool {
        matches!(v, Verdict::Gone { crashed: true, .. })
    }

    fn is_alive(v: &Verdict) -> bool {
        matches!(v, Verdict::Alive(_) | Verdict::Suspended(_))
    }

    #[test]
    fn on_the_same_kernel_and_pid_namespace_the_process_decides() {
        let r = record();
        assert!(is_gone(&decide(&r, &here(ProcessState::Gone), None, 300.0)));
        // The pid belongs to a process that started later: gone.
        assert!(is_gone(&decide(&r, &here(running(2000)), None, 300.0)));
        // The same process, heartbeat still for ages (stopped, a slow disk): alive.
        let v = decide(&r, &here(running(1000)), Some(1.0e6), 300.0);
        assert!(matches!(v, Verdict::Alive(_)), "{v:?}");
        // The machine cannot tell: the heartbeat decides.
        assert!(is_alive(&decide(
            &r,
            &here(ProcessState::Unknown),
            Some(100.0),
            300.0
        )));
        assert!(is_gone(&decide(
            &r,
            &here(ProcessState::Unknown),
            Some(400.0),
            300.0
        )));
    }

    #[test]
    fn a_pid_of_another_namespace_or_hidden_by_hidepid_is_not_judged() {
        let r = record();
        // A container's pid 42 is not this namespace's pid 42.
        let container = Fake {
            namespace: Some(4026532000),
            ..here(ProcessState::Gone)
        };
        match decide(&r, &container, None, 300.0) {
            Verdict::Alive(why) => assert!(why.contains("another PID namespace"), "{why}"),
            v => panic!("{v:?}"),
        }
        // An unknown namespace (an older journal): not judged either.
        let older = Record {
            pid_namespace: None,
            ..record()
        };
        assert!(is_alive(&decide(
            &older,
            &here(ProcessState::Gone),
            None,
            300.0
        )));
        // hidepid=2: kill says the pid exists, /proc hides its start time.
        let hidden = here(ProcessState::Running { start: None });
        match decide(&r, &hidden, Some(10.0), 300.0) {
            Verdict::Alive(why) => assert!(why.contains("hidepid"), "{why}"),
            v => panic!("{v:?}"),
        }
        assert!(is_gone(&decide(&r, &hidden, Some(400.0), 300.0)));
    }

    #[test]
    fn another_boot_id_is_no_proof_of_a_reboot() {
        // The same host name, another boot id (cloned VMs, nodes named
        // localhost, two clusters on one file system), a fresh heartbeat.
        let r = record();
        let v = decide(
            &r,
            &elsewhere(SlurmState::Unknown("no squeue".into())),
            None,
            300.0,
        );
        match v {
            Verdict::Alive(why) => assert!(why.contains("another boot id"), "{why}"),
            v => panic!("{v:?}"),
        }
        let v = decide(
            &r,
            &elsewhere(SlurmState::Unknown("x".into())),
            Some(1.0),
            300.0,
        );
        assert!(matches!(v, Verdict::Alive(_)), "{v:?}");
    }

    #[test]
    fn the_heartbeat_is_judged_by_the_reapers_own_looks_and_the_workers_interval() {
        let r = record();
        let probe = elsewhere(SlurmState::Unknown("no squeue".into()));
        // The first look proves nothing, however old the value looks.
        assert!(is_alive(&decide(&r, &probe, None, 300.0)));
        assert!(is_alive(&decide(&r, &probe, Some(299.0), 300.0)));
        assert!(is_gone(&decide(&r, &probe, Some(301.0), 300.0)));
        // A worker whose heartbeat is every 600 s: stale after 3 of them.
        let slow = Record {
            heartbeat_interval: 600.0,
            ..record()
        };
        assert_eq!(stale_limit(&slow, 300.0), 1800.0);
        assert!(is_alive(&decide(&slow, &probe, Some(1000.0), 300.0)));
        assert!(is_gone(&decide(&slow, &probe, Some(1801.0), 300.0)));
    }

    #[test]
    fn slurm_decides_an_ended_job_and_a_suspended_one_is_alive() {
        let mut r = record();
        r.slurm = Some(SlurmIds {
            job_id: Some("77".into()),
            ..SlurmIds::default()
        });
        let ended = elsewhere(SlurmState::Gone("Slurm job 77 is CANCELLED".into()));
        match decide(&r, &ended, None, 300.0) {
            Verdict::Gone { why, crashed: true } => assert!(why.contains("CANCELLED"), "{why}"),
            v => panic!("{v:?}"),
        }
        let running = elsewhere(SlurmState::Running);
        match decide(&r, &running, Some(100.0), 300.0) {
            Verdict::Alive(why) => assert!(why.contains("Slurm job is running"), "{why}"),
            v => panic!("{v:?}"),
        }
        assert!(is_gone(&decide(&r, &running, Some(400.0), 300.0)));
        // Suspended: its processes cannot refresh the heartbeat. Alive, and
        // never called running.
        let suspended = elsewhere(SlurmState::Suspended(
            "its Slurm job 77 is SUSPENDED".into(),
        ));
        match decide(&r, &suspended, Some(1.0e6), 300.0) {
            Verdict::Suspended(why) => {
                assert!(
                    why.contains("SUSPENDED") && !why.contains("running"),
                    "{why}"
                )
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn a_freed_worker_is_gone_without_an_attempt() {
        let r = Record {
            freed: true,
            ..record()
        };
        assert!(matches!(
            decide(&r, &here(running(1000)), None, 300.0),
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
            cluster,
            // Job 77 of this cluster is another job, which has ended.
            ..elsewhere(SlurmState::Gone("Slurm job 77 is COMPLETED".into()))
        };
        for cluster in [Some("small"), None] {
            let probe = on(cluster);
            match decide(&r, &probe, Some(100.0), 300.0) {
                Verdict::Alive(why) => assert!(why.contains("cluster big"), "{why}"),
                v => panic!("{cluster:?}: {v:?}"),
            }
            // The heartbeat still decides.
            match decide(&r, &probe, Some(400.0), 300.0) {
                Verdict::Gone { why, crashed: true } => {
                    assert!(why.contains("heartbeat"), "{why}")
                }
                v => panic!("{cluster:?}: {v:?}"),
            }
        }
        // The same cluster: Slurm is asked.
        match decide(&r, &on(Some("big")), None, 300.0) {
            Verdict::Gone { why, crashed: true } => assert!(why.contains("COMPLETED"), "{why}"),
            v => panic!("{v:?}"),
        }
        // A journal without a cluster name (an older Slurm): asked as well.
        r.slurm.as_mut().unwrap().cluster = None;
        assert!(is_gone(&decide(&r, &on(None), None, 300.0)));
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
