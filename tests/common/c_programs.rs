//! C programs of the tests built against the tree: the headers in include/
//! and the release library in target/release (found at run time through an
//! rpath). The release library must be newer than the sources, or a test
//! would run the C programs against old code: `make build` first.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The newest modification time of the files under `path` (itself, when it
/// is a file), with the file that has it.
fn newest_under(path: &Path) -> Option<(SystemTime, PathBuf)> {
    if !path.is_dir() {
        let t = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
        return Some((t, path.to_path_buf()));
    }
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(path).ok()?.flatten() {
        if let Some((t, p)) = newest_under(&entry.path()) {
            if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                newest = Some((t, p));
            }
        }
    }
    newest
}

/// target/release, after checking that its library exists and is newer than
/// src/ and Cargo.toml.
pub fn fresh_release_dir() -> PathBuf {
    let lib_dir = root().join("target/release");
    let lib = lib_dir.join("libtaskfarm_worker.so");
    let built = std::fs::metadata(&lib)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run make build first (the C programs of the tests \
                 link the release library)",
                lib.display()
            )
        });
    for source in ["src", "Cargo.toml"] {
        if let Some((t, path)) = newest_under(&root().join(source)) {
            assert!(
                t <= built,
                "{} is older than {}: run make build first (the C programs of the \
                 tests link the release library)",
                lib.display(),
                path.display()
            );
        }
    }
    lib_dir
}

/// Runs a compiler command; fails the test with its output when the
/// compiler cannot be run or fails.
pub fn compile(what: &str, mut command: Command) {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program:?} to build {what} ({e})"));
    assert!(
        out.status.success(),
        "building {what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `compiler FLAGS -I include/ SOURCES -L target/release -ltaskfarm_worker -o
/// output`, the library found at run time through an rpath: the command
/// line of every test program in C, C++ or Fortran (not yet run).
pub fn linking(compiler: &str, flags: &[&str], sources: &[&Path], output: &Path) -> Command {
    let lib_dir = fresh_release_dir();
    let mut command = Command::new(compiler);
    command
        .args(flags)
        .arg("-I")
        .arg(root().join("include"))
        .args(sources)
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .args(["-ltaskfarm_worker", "-o"])
        .arg(output);
    command
}

/// The C compiler: `$CC`, default `cc`.
pub fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// The flags of the C test programs: C11, warnings as errors.
pub const C_FLAGS: &[&str] = &[
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
    "-O1",
];

/// Compiles `source` (relative to the root) into `bin` with `$CC` (default
/// `cc`), warnings as errors, against include/ and the fresh release library.
pub fn build(source: &str, bin: &Path) {
    let path = root().join(source);
    compile(source, linking(&cc(), C_FLAGS, &[&path], bin));
}

/// What a C worker wrote to stderr besides the library's one line at the
/// start of a retry series ("taskfarm: GET token to URL: no answer within
/// 60.0 s; retrying up to ..."): on a loaded machine the server may answer
/// after a request's timeout, and the worker that retries says so; what it
/// did is checked by the task counts (a killed server, a slow one). Anything
/// else (an error) is returned.
pub fn unexpected_stderr(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter(|line| !(line.starts_with("taskfarm: ") && line.contains("; retrying up to ")))
        .collect()
}

/// tests/reap/worker.c (takes a task and holds it), built once per test
/// process into its scratch directory.
pub fn reap_worker() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = super::jobs::scratch("bin").join("reap_worker");
        build("tests/reap/worker.c", &bin);
        bin
    })
}

/// tests/stop/stop_worker.c (with `-pthread`), built once per test process
/// into its scratch directory.
pub fn stop_worker() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = super::jobs::scratch("bin").join("stop_worker");
        let source = root().join("tests/stop/stop_worker.c");
        let mut command = linking(&cc(), C_FLAGS, &[&source], &bin);
        command.arg("-pthread");
        compile("tests/stop/stop_worker.c", command);
        bin
    })
}
