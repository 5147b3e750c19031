//! The committed header must be what cbindgen generates from the sources now,
//! and must declare every function of the C API that the library promises
//! (the list below).
//! `make header` rewrites include/taskfarm_worker.h from the fresh generation.
//!
//! The header is generated here, by cbindgen as a dev-dependency, with the
//! settings of cbindgen.toml: building the library compiles no cbindgen.

use std::path::Path;
use std::sync::OnceLock;

/// The header cbindgen makes from the sources now (made once per process).
fn generated() -> &'static str {
    static HEADER: OnceLock<String> = OnceLock::new();
    HEADER.get_or_init(|| {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
            .expect("cbindgen.toml is readable and valid");
        config.after_includes = Some(format!(
            "\n/** The version of this header (compare with tf_version() at run time). */\n\
             #define TF_VERSION_MAJOR {}\n#define TF_VERSION_MINOR {}\n#define TF_VERSION_PATCH {}\n",
            env!("CARGO_PKG_VERSION_MAJOR"),
            env!("CARGO_PKG_VERSION_MINOR"),
            env!("CARGO_PKG_VERSION_PATCH")
        ));
        let mut header = Vec::new();
        cbindgen::Builder::new()
            .with_crate(crate_dir)
            .with_config(config)
            .generate()
            .expect("cbindgen generates the header")
            .write(&mut header);
        String::from_utf8(header).expect("the header is UTF-8")
    })
}

/// Every function the C ABI promises: removing one is an ABI break.
const CONTRACT: &[&str] = &[
    "tf_runs",
    "tf_runs_json",
    "tf_run_list_len",
    "tf_run_list_id",
    "tf_run_list_uuid",
    "tf_run_list_num_tasks",
    "tf_run_list_free",
    "tf_taskfarm_create",
    "tf_taskfarm_open",
    "tf_taskfarm_uuid",
    "tf_taskfarm_num_tasks",
    "tf_taskfarm_percent_done",
    "tf_taskfarm_num_done",
    "tf_taskfarm_num_waiting",
    "tf_taskfarm_num_computing",
    "tf_taskfarm_info",
    "tf_taskfarm_get_task_info",
    "tf_taskfarm_set_task_info",
    "tf_taskfarm_restart",
    "tf_taskfarm_delete",
    "tf_taskfarm_url",
    "tf_taskfarm_token",
    "tf_taskfarm_status",
    "tf_taskfarm_task_percent_completed",
    "tf_taskfarm_task_state",
    "tf_taskfarm_set_task_percent_completed",
    "tf_taskfarm_set_task_state",
    "tf_taskfarm_set_timeout",
    "tf_taskfarm_set_retries",
    "tf_taskfarm_free",
    "tf_worker_new",
    "tf_worker_uuid",
    "tf_worker_taskfarm",
    "tf_worker_task",
    "tf_worker_update",
    "tf_worker_done",
    "tf_worker_requeue",
    "tf_worker_free",
    "tf_last_error",
    "tf_last_http_status",
    "tf_status_name",
    "tf_string_free",
    "tf_version",
];

#[test]
fn committed_header_matches_a_fresh_generation() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/taskfarm_worker.h");
    if std::env::var_os("TASKFARM_BLESS_HEADER").is_some() {
        std::fs::write(&path, generated()).expect("include/ is writable");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated(),
        "include/taskfarm_worker.h is stale: run `make header` and commit it"
    );
}

#[test]
fn header_declares_and_documents_every_contract_function() {
    let lines: Vec<&str> = generated().lines().collect();
    for name in CONTRACT {
        let call = format!("{name}(");
        // A declaration starts at column 0 (comments are indented by " * ").
        let at = lines
            .iter()
            .position(|line| {
                !line.starts_with([' ', '/', '#'])
                    && line
                        .find(&call)
                        .is_some_and(|i| i > 0 && matches!(line.as_bytes()[i - 1], b' ' | b'*'))
            })
            .unwrap_or_else(|| panic!("{name} is not declared in the header"));
        assert!(
            at > 0 && lines[at - 1].trim() == "*/",
            "{name} has no documentation comment in the header"
        );
    }
    for name in [
        "TF_OK",
        "TF_NO_MORE_TASKS",
        "TF_ERR_INVALID_ARGUMENT",
        "TF_ERR_CONNECTION",
        "TF_ERR_AUTH",
        "TF_ERR_NOT_FOUND",
        "TF_ERR_HTTP",
        "TF_ERR_PROTOCOL",
        "TF_ERR_INTERNAL",
        "TF_TASK_WAITING",
        "TF_TASK_COMPUTING",
        "TF_TASK_DONE",
    ] {
        assert!(
            generated().contains(&format!("    {name} = ")),
            "{name} is missing"
        );
    }
}

#[test]
fn version_macros_match_the_crate_version() {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.');
    for (macro_name, value) in ["TF_VERSION_MAJOR", "TF_VERSION_MINOR", "TF_VERSION_PATCH"]
        .iter()
        .zip(&mut parts)
    {
        assert!(
            generated().contains(&format!("#define {macro_name} {value}\n")),
            "{macro_name} is not {value}"
        );
    }
    let runtime = unsafe { std::ffi::CStr::from_ptr(taskfarm_worker::ffi::version::tf_version()) };
    assert_eq!(runtime.to_str().unwrap(), version);
}
