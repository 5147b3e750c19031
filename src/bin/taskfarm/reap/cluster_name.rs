//! The name of the Slurm cluster that `squeue` here answers for, from
//! `scontrol show config`: a journal of another cluster is not judged by the
//! local `squeue` (the same job id there is another job). Only the reaper
//! asks it.

use std::time::Duration;

use taskfarm_worker::internal::scheduler::command::run_with_time_limit;

/// How long `scontrol show config` may take before the name counts as unknown.
const LIMIT: Duration = Duration::from_secs(30);

/// The cluster's name from `scontrol show config`, `None` when it cannot be
/// told (no Slurm, an error, no name).
pub fn ask() -> Option<String> {
    match run_with_time_limit("scontrol", &["show", "config"], LIMIT) {
        Ok(output) if output.success => cluster_name(&output.stdout),
        _ => None,
    }
}

/// `ClusterName` from the output of `scontrol show config`.
pub fn cluster_name(config: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "ClusterName")
            .then(|| value.trim().to_owned())
            .filter(|v| !v.is_empty() && *v != "(null)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_name_is_read_from_scontrol_show_config() {
        let config = "Configuration data as of 2026-12-02T15:00:00\n\
                      AccountingStorageType   = accounting_storage/none\n\
                      ClusterName             = tf56f450\n\
                      CompleteWait            = 0 sec\n";
        assert_eq!(cluster_name(config), Some("tf56f450".into()));
        assert_eq!(cluster_name("ClusterName = (null)\n"), None);
        assert_eq!(cluster_name("garbage"), None);
    }
}
