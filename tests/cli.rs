//! The command-line tool `taskfarm`, run as a program against the real
//! taskfarm server: every command and option, the manageTF spellings (checked
//! against the real `manageTF` of the harness's venv), JSON output, exit
//! statuses, one-line error messages without the password, and `watch`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::server::{venv, TaskfarmServer};
use serde_json::Value;
use taskfarm_worker::internal::{ErrorKind, Run, TaskState, Worker};

const EXIT_USAGE: i32 = 2;
const EXIT_CONNECTION: i32 = 3;
const EXIT_AUTH: i32 = 4;
const EXIT_NOT_FOUND: i32 = 5;
const EXIT_SERVER: i32 = 6;
const EXIT_INTERRUPTED: i32 = 130;

/// A UUID that no run has.
const UNKNOWN_UUID: &str = "0123456789abcdef0123456789abcdef";
/// A wrong password that must never show in a message.
const WRONG_PASSWORD: &str = "Wr0ng-Pa55word-xyzzy";

/// With SQLite, workers asking for tasks at the same moment break the
/// server: tests that drive workers take turns.
static WORKERS: Mutex<()> = Mutex::new(());

fn workers_turn() -> MutexGuard<'static, ()> {
    WORKERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one run of the tool gave.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn from_output(output: std::process::Output) -> Out {
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Exit status 0 and nothing on stderr.
    fn ok(self) -> Out {
        assert_eq!(self.code, 0, "{self:?}");
        assert_eq!(self.stderr, "", "{self:?}");
        self
    }

    /// Exit status `code`, nothing on stdout, and one line `taskfarm: ...`
    /// on stderr without any secret or backtrace.
    fn fails(self, code: i32) -> Out {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        assert!(
            self.stderr.starts_with("taskfarm: ") && self.stderr.ends_with('\n'),
            "{self:?}"
        );
        assert_eq!(self.stderr.lines().count(), 1, "{self:?}");
        for bad in ["panicked", "backtrace", "RUST_BACKTRACE", WRONG_PASSWORD] {
            assert!(!self.stderr.contains(bad), "{bad:?} in {self:?}");
        }
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// The tool with no `TASKFARM_*` variable from the test's environment and
/// no terminal on stdin.
fn bare() -> Command {
    without_taskfarm_variables(env!("CARGO_BIN_EXE_taskfarm"))
}

fn without_taskfarm_variables(program: &str) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TASKFARM_") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// The tool, credentials and URL of `server` in the environment.
fn tf(server: &TaskfarmServer) -> Command {
    let mut command = bare();
    command.envs(server.credentials_env());
    command
}

fn run(mut command: Command, args: &[&str]) -> Out {
    Out::from_output(command.args(args).output().expect("taskfarm runs"))
}

/// Runs the tool against `server` (credentials from the environment) and
/// checks that the password shows nowhere.
fn cli(server: &TaskfarmServer, args: &[&str]) -> Out {
    let out = run(tf(server), args);
    assert!(
        !out.stderr.contains(&server.password),
        "password on stderr: {out:?}"
    );
    out
}

/// The manageTF way: everything on the command line.
fn cli_flags(server: &TaskfarmServer, args: &[&str]) -> Out {
    let mut all = vec![
        "-b",
        &server.url,
        "-u",
        &server.user,
        "-p",
        &server.password,
    ];
    all.extend_from_slice(args);
    run(bare(), &all)
}

fn create(server: &TaskfarmServer, num_tasks: i64) -> Arc<Run> {
    Arc::new(Run::create(&server.settings(), num_tasks).unwrap())
}

/// A run of `num_tasks` (at least 2): task 0 done at 100 %, task 1 computing
/// at 50 %, the others never handed out.
fn mixed_run(server: &TaskfarmServer, num_tasks: i64) -> Arc<Run> {
    let run = create(server, num_tasks);
    let _turn = workers_turn();
    let mut worker = Worker::register(run.clone()).unwrap();
    assert_eq!(worker.task().unwrap(), Some(0));
    worker.update(100.0).unwrap();
    worker.done().unwrap();
    assert_eq!(worker.task().unwrap(), Some(1));
    worker.update(50.0).unwrap();
    run
}

fn task_state(run: &Run, task: i64) -> (TaskState, f64) {
    let t = run.task(task).unwrap();
    (t.status, t.percent_completed)
}

fn id_of(server: &TaskfarmServer, uuid: &str) -> i64 {
    let out = cli(server, &["--json", "info", uuid]).ok();
    out.json()["id"].as_i64().unwrap()
}

/// The real `manageTF` of the harness's venv (taskfarm-worker 0.4.0).
fn manage_tf(server: &TaskfarmServer, args: &[&str]) -> String {
    let output = Command::new(venv().join("bin/manageTF"))
        .args([
            "-b",
            &server.url,
            "-u",
            &server.user,
            "-p",
            &server.password,
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the harness venv has manageTF (tests/harness/venv.sh)");
    assert!(
        output.status.success(),
        "manageTF {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn manage_tf_flags_print_exactly_what_manage_tf_prints() {
    // Own server: the list must not change between the two programs.
    let server = TaskfarmServer::start();
    let a = mixed_run(&server, 9);
    let b = create(&server, 1);
    {
        let _turn = workers_turn();
        let mut worker = Worker::register(b.clone()).unwrap();
        worker.task().unwrap();
        worker.update(0.00001).unwrap();
    }
    let (a, b) = (a.uuid(), b.uuid());
    let expected = [
        (vec!["-l"], format!("1 {a} 9\n2 {b} 1\n")),
        (vec!["--list"], format!("1 {a} 9\n2 {b} 1\n")),
        (
            vec![a, "-i"],
            format!("1 {a} 9 (0,1,1) 16.666666666666668\n"),
        ),
        (
            vec!["--info", a],
            format!("1 {a} 9 (0,1,1) 16.666666666666668\n"),
        ),
        (vec![b, "-i"], format!("2 {b} 1 (0,1,0) 1e-05\n")),
    ];
    for (args, text) in &expected {
        assert_eq!(&manage_tf(&server, args), text, "manageTF {args:?}");
        assert_eq!(&cli_flags(&server, args).ok().stdout, text, "{args:?}");
    }
    // The long spellings of the options, and the environment.
    let long = run(
        bare(),
        &[
            "--baseurl",
            &server.url,
            "--user",
            &server.user,
            "--password",
            &server.password,
            "--list",
        ],
    );
    assert_eq!(long.ok().stdout, expected[0].1);
    assert_eq!(cli(&server, &[a, "-i"]).ok().stdout, expected[2].1);
}

#[test]
fn reset_spellings_reset_as_the_server_says() {
    let server = TaskfarmServer::shared();
    for (args, human) in [
        (vec!["-r"], false),
        (vec!["--reset"], false),
        (vec!["reset"], true),
    ] {
        let run = mixed_run(server, 3);
        let mut all = args.clone();
        all.push(run.uuid());
        let out = cli(server, &all).ok();
        assert_eq!(out.stdout.is_empty(), !human, "{args:?}: {out:?}");
        if human {
            // How many it reset, and what the run holds now.
            assert_eq!(
                out.stdout,
                format!(
                    "run {}: 1 task computing set back to waiting; \
                     now 1 not started, 1 waiting, 0 computing, 1 done of 3\n",
                    run.uuid()
                )
            );
        }
        // Unfinished tasks back to waiting with their percentage; done stays done.
        assert_eq!(task_state(&run, 0), (TaskState::Done, 100.0), "{args:?}");
        assert_eq!(task_state(&run, 1), (TaskState::Waiting, 50.0), "{args:?}");
    }
    for (args, human) in [
        (vec!["-R"], false),
        (vec!["--reset-all"], false),
        (vec!["reset", "--all"], true),
        (vec!["reset", "-a"], true),
    ] {
        let run = mixed_run(server, 3);
        let mut all = args.clone();
        all.insert(if human { 1 } else { 0 }, run.uuid());
        let out = cli(server, &all).ok();
        assert_eq!(out.stdout.is_empty(), !human, "{args:?}: {out:?}");
        if human {
            assert_eq!(
                out.stdout,
                format!(
                    "run {}: every task set back to waiting at 0 % (2 tasks computing or \
                     done before); now 1 not started, 2 waiting, 0 computing, 0 done of 3\n",
                    run.uuid()
                )
            );
        }
        for task in [0, 1] {
            assert_eq!(
                task_state(&run, task),
                (TaskState::Waiting, 0.0),
                "{args:?}"
            );
        }
        let status = run.status().unwrap();
        assert_eq!((status.num_waiting, status.percent_done), (2, 0.0));
    }
    // --json: nothing on stdout.
    let run = mixed_run(server, 2);
    assert_eq!(
        cli(server, &["--json", "reset", run.uuid()]).ok().stdout,
        ""
    );
}

#[test]
fn delete_spellings_remove_the_run() {
    let server = TaskfarmServer::shared();
    for args in [vec!["-d"], vec!["--delete"], vec!["delete"]] {
        let run = create(server, 2);
        let mut all = args.clone();
        all.push(run.uuid());
        let out = cli(server, &all).ok();
        assert_eq!(out.stdout.is_empty(), args[0] != "delete", "{out:?}");
        let err = Run::open(&server.settings(), run.uuid()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{args:?}");
        cli(server, &["info", run.uuid()]).fails(EXIT_NOT_FOUND);
    }
}

#[test]
fn list_prints_every_run_for_people_and_as_json() {
    let server = TaskfarmServer::shared();
    let run = create(server, 7);
    let uuid = run.uuid();
    let id = id_of(server, uuid);

    let human = cli(server, &["list"]).ok().stdout;
    let mut lines = human.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "UUID", "TASKS"]);
    let row = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.get(1) == Some(&uuid))
        .unwrap_or_else(|| panic!("{uuid} not in {human}"));
    assert_eq!(row, [id.to_string().as_str(), uuid, "7"]);

    for args in [
        vec!["--json", "list"],
        vec!["list", "--json"],
        vec!["--json", "-l"],
    ] {
        let runs = cli(server, &args).ok().json();
        let entry = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["uuid"] == uuid)
            .unwrap_or_else(|| panic!("{uuid} not in {runs}"))
            .clone();
        assert_eq!(
            entry,
            serde_json::json!({"id": id, "uuid": uuid, "numTasks": 7}),
            "{args:?}"
        );
    }
}

#[test]
fn info_shows_the_whole_run() {
    let server = TaskfarmServer::shared();
    let run = mixed_run(server, 4);
    let uuid = run.uuid();
    let whole = cli(server, &["--json", "info", uuid]).ok().json();
    let id = whole["id"].as_i64().unwrap();
    assert_eq!(
        whole,
        serde_json::json!({"id": id, "uuid": uuid, "numTasks": 4, "numWaiting": 0,
                           "numComputing": 1, "numDone": 1, "percentDone": 37.5,
                           "numNotStarted": 2})
    );
    assert_eq!(cli(server, &["--json", uuid, "-i"]).ok().json(), whole);

    let human = cli(server, &["info", uuid]).ok().stdout;
    let rows: Vec<Vec<&str>> = human
        .lines()
        .map(|l| l.rsplitn(2, "  ").map(str::trim).collect())
        .collect();
    let id = id.to_string();
    let expected = [
        ["id", id.as_str()],
        ["uuid", uuid],
        ["tasks", "4"],
        ["not started", "2"],
        ["waiting", "0"],
        ["computing", "1"],
        ["done", "1"],
        ["percent done", "37.5 %"],
    ];
    assert_eq!(rows.len(), expected.len(), "{human}");
    for (row, [label, value]) in rows.iter().zip(expected) {
        assert_eq!(row, &[value, label], "{human}");
    }
}

#[test]
fn create_prints_the_new_uuid_only() {
    let server = TaskfarmServer::shared();
    let out = cli(server, &["create", "3"]).ok();
    let uuid = out.stdout.strip_suffix('\n').unwrap();
    assert!(
        uuid.len() == 32 && uuid.chars().all(|c| c.is_ascii_hexdigit()),
        "{out:?}"
    );
    assert_eq!(Run::open(&server.settings(), uuid).unwrap().num_tasks(), 3);

    let created = cli(server, &["--json", "create", "5"]).ok().json();
    let uuid = created["uuid"].as_str().unwrap();
    assert_eq!(created, serde_json::json!({"uuid": uuid, "numTasks": 5}));
    assert_eq!(Run::open(&server.settings(), uuid).unwrap().num_tasks(), 5);

    for bad in ["0", "-3", "x", "2147483648"] {
        cli(server, &["create", bad]).fails(EXIT_USAGE);
    }
}

#[test]
fn task_shows_status_and_percentage() {
    let server = TaskfarmServer::shared();
    let run = mixed_run(server, 4);
    let uuid = run.uuid();
    assert_eq!(
        cli(server, &["task", uuid, "0"]).ok().stdout,
        "task 0: done, 100.0 %\n"
    );
    assert_eq!(
        cli(server, &["task", uuid, "1"]).ok().stdout,
        "task 1: computing, 50.0 %\n"
    );
    let task = cli(server, &["--json", "task", uuid, "1"]).ok().json();
    assert_eq!(task["task"], 1);
    assert_eq!(task["status"], "computing");
    assert_eq!(task["percentCompleted"], 50.0);
    assert!(task["id"].is_i64(), "{task}");

    // A task never handed out is not read (reading creates it on the server).
    assert_eq!(
        cli(server, &["task", uuid, "3"]).ok().stdout,
        "task 3: waiting, 0.0 % (not handed out yet)\n"
    );
    let task = cli(server, &["task", "--json", uuid, "2"]).ok().json();
    assert_eq!(
        task,
        serde_json::json!({"id": null, "task": 2, "percentCompleted": 0.0, "status": "waiting"})
    );
    let status = run.status().unwrap();
    assert_eq!(
        status.num_waiting + status.num_computing + status.num_done,
        2
    );

    cli(server, &["task", uuid, "4"]).fails(EXIT_NOT_FOUND);
    cli(server, &["task", UNKNOWN_UUID, "0"]).fails(EXIT_NOT_FOUND);
    cli(server, &["task", uuid, "x"]).fails(EXIT_USAGE);
    cli(server, &["task", uuid, "-1"]).fails(EXIT_USAGE);
}

#[test]
fn a_bare_uuid_is_a_usage_error_saying_what_to_add() {
    // manageTF opens the run and prints nothing; the tool says what is
    // missing, before any request (nothing listens at the URL: a request
    // would fail with "cannot connect" and exit 3).
    let mut command = bare();
    command
        .env("TASKFARM_URL", "http://127.0.0.1:1/api/")
        .env("TASKFARM_USER", "u")
        .env("TASKFARM_PASSWORD", WRONG_PASSWORD);
    let out = run(command, &[UNKNOWN_UUID]).fails(EXIT_USAGE);
    for text in [
        UNKNOWN_UUID,
        "-i",
        "-d",
        &format!("taskfarm info {UNKNOWN_UUID}"),
    ] {
        assert!(out.stderr.contains(text), "{text:?} not in {out:?}");
    }
}

#[test]
fn url_user_and_password_come_from_options_then_environment() {
    let server = TaskfarmServer::shared();
    // Options win over the environment.
    let mut wrong_env = tf(server);
    wrong_env
        .env("TASKFARM_URL", "http://127.0.0.1:1/api/")
        .env("TASKFARM_USER", "nobody")
        .env("TASKFARM_PASSWORD", WRONG_PASSWORD);
    let out = run(
        wrong_env,
        &[
            "-b",
            &server.url,
            "-u",
            &server.user,
            "-p",
            &server.password,
            "list",
        ],
    );
    out.ok();
    // The URL without its trailing slash works.
    let mut env = tf(server);
    env.env("TASKFARM_URL", server.url.trim_end_matches('/'));
    run(env, &["list"]).ok();

    // No user, no password: usage errors naming the variables.
    let mut no_user = tf(server);
    no_user.env_remove("TASKFARM_USER");
    let out = run(no_user, &["list"]).fails(EXIT_USAGE);
    assert!(out.stderr.contains("TASKFARM_USER"), "{out:?}");
    let mut no_password = tf(server);
    no_password.env_remove("TASKFARM_PASSWORD");
    let out = run(no_password, &["list"]).fails(EXIT_USAGE);
    assert!(out.stderr.contains("TASKFARM_PASSWORD"), "{out:?}");

    // The library's other variables apply.
    let mut bad_timeout = tf(server);
    bad_timeout.env("TASKFARM_TIMEOUT", "soon");
    let out = run(bad_timeout, &["list"]).fails(EXIT_USAGE);
    assert!(out.stderr.contains("TASKFARM_TIMEOUT"), "{out:?}");
    let mut logged = tf(server);
    logged.env("TASKFARM_LOG", "debug");
    let out = run(logged, &["list"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("GET runs -> 200"), "{out:?}");
    assert!(!out.stderr.contains(&server.password), "{out:?}");
}

#[test]
fn failures_have_their_exit_status_and_one_line() {
    let server = TaskfarmServer::shared();
    let run_ = create(server, 2);
    let uuid = run_.uuid();

    // Wrong password: authentication.
    for args in [
        vec!["list"],
        vec!["-l"],
        vec!["info", uuid],
        vec![uuid, "-i"],
    ] {
        let mut wrong = tf(server);
        wrong.env("TASKFARM_PASSWORD", WRONG_PASSWORD);
        let out = run(wrong, &args).fails(EXIT_AUTH);
        assert!(out.stderr.contains("refused"), "{out:?}");
        let mut all = vec!["-p", WRONG_PASSWORD];
        all.extend_from_slice(&args);
        cli(server, &all).fails(EXIT_AUTH);
    }

    // Unknown run: not found, whatever the command.
    for args in [
        vec!["info", UNKNOWN_UUID],
        vec![UNKNOWN_UUID, "-i"],
        vec![UNKNOWN_UUID, "-r"],
        vec![UNKNOWN_UUID, "-R"],
        vec![UNKNOWN_UUID, "-d"],
        vec!["reset", UNKNOWN_UUID],
        vec!["reset", "--all", UNKNOWN_UUID],
        vec!["delete", UNKNOWN_UUID],
        vec!["task", UNKNOWN_UUID, "0"],
        vec!["watch", UNKNOWN_UUID],
    ] {
        let out = cli(server, &args).fails(EXIT_NOT_FOUND);
        assert!(out.stderr.contains(UNKNOWN_UUID), "{out:?}");
    }

    // Nothing listening: connection (no retries, for speed).
    let dead = "http://127.0.0.1:1/api/";
    for args in [vec!["list"], vec!["-b", dead, "-l"], vec!["info", uuid]] {
        let mut command = tf(server);
        command
            .env("TASKFARM_URL", dead)
            .env("TASKFARM_RETRIES", "0");
        let out = run(command, &args).fails(EXIT_CONNECTION);
        assert!(out.stderr.contains("connect"), "{out:?}");
    }

    // A URL that is not the API: a server error, not "no such run".
    let root = server.url.trim_end_matches("api/");
    let out = cli(server, &["-b", root, "info", uuid]).fails(EXIT_SERVER);
    assert!(out.stderr.contains("not a taskfarm API"), "{out:?}");

    // Arguments that cannot be right: usage.
    cli(server, &["-b", "ftp://example.org/api/", "list"]).fails(EXIT_USAGE);
    cli(server, &["info", "not-a-uuid!"]).fails(EXIT_USAGE);
    cli(server, &["not-a-uuid!", "-i"]).fails(EXIT_USAGE);
}

#[test]
fn usage_errors_exit_with_2_and_one_line() {
    // No server needed: all of these fail before any request.
    for args in [
        vec![],
        vec!["-i"],
        vec!["-l", "-i"],
        vec!["abc", "-r", "-d"],
        vec!["-i", "info", "abc"],
        vec!["-l", "list"],
        vec!["abc", "info", "abc"],
        vec!["info"],
        vec!["reset"],
        vec!["list", "extra"],
        vec!["--bogus"],
        vec!["create"],
        vec!["create", "many"],
        vec!["task", "abc"],
        vec!["watch", "abc", "-n", "0"],
        vec!["watch", "abc", "--interval", "soon"],
        vec!["frobnicate"],
        vec!["-p"],
    ] {
        let out = run(bare(), &args).fails(EXIT_USAGE);
        assert!(out.stderr.contains("taskfarm --help"), "{args:?}: {out:?}");
    }
}

#[test]
fn help_documents_commands_environment_and_exit_statuses() {
    let out = run(bare(), &["--help"]).ok();
    for text in [
        "list",
        "info",
        "reset",
        "delete",
        "create",
        "task",
        "watch",
        "--baseurl",
        "--user",
        "--password",
        "--json",
        "--list",
        "--reset-all",
        "TASKFARM_URL",
        "TASKFARM_PASSWORD",
        "3    cannot reach the server",
        "4    authentication failed",
        "5    not found",
        "6    other server or protocol error",
        "130  watch stopped by Ctrl-C",
    ] {
        assert!(out.stdout.contains(text), "{text:?} not in --help");
    }
    let out = run(bare(), &["watch", "--help"]).ok();
    assert!(out.stdout.contains("--interval"), "{out:?}");
}

#[test]
fn version_names_the_tool_and_the_library() {
    let version = env!("CARGO_PKG_VERSION");
    let out = run(bare(), &["--version"]).ok();
    assert_eq!(
        out.stdout,
        format!("taskfarm {version} (library taskfarm_worker {version})\n")
    );
    let library = unsafe { std::ffi::CStr::from_ptr(taskfarm_worker::ffi::version::tf_version()) };
    assert_eq!(library.to_str().unwrap(), version, "tf_version");
}

/// The completion scripts and the man page: made from the command line
/// without a server, credentials or a terminal.
#[test]
fn completions_and_man_page_need_no_server() {
    let bash = run(bare(), &["completions", "bash"]).ok();
    let checked = Command::new("bash")
        .args(["-n", "-c", &bash.stdout])
        .output()
        .expect("bash runs (apt-get install -y bash)");
    assert!(checked.status.success(), "bash -n: {checked:?}");
    for name in ["list", "info", "watch", "reap", "--baseurl"] {
        assert!(
            bash.stdout.contains(name),
            "{name} not in the bash completion"
        );
    }
    let zsh = run(bare(), &["completions", "zsh"]).ok();
    assert!(zsh.stdout.starts_with("#compdef taskfarm"), "{zsh:?}");
    let fish = run(bare(), &["completions", "fish"]).ok();
    assert!(fish.stdout.contains("complete -c taskfarm"), "{fish:?}");
    let out = run(bare(), &["completions", "tcsh"]).fails(EXIT_USAGE);
    assert!(out.stderr.contains("bash"), "{out:?}");

    let page = run(bare(), &["manpage"]).ok();
    assert!(page.stdout.contains("\n.TH TASKFARM 1 "), "{page:?}");
    assert!(
        page.stdout.contains("\n.SS \"taskfarm watch\"\n"),
        "{page:?}"
    );
}

/// The tool running in the background, its stdout lines arriving on a channel.
struct Background {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Background {
    fn spawn(server: &TaskfarmServer, args: &[&str]) -> Background {
        let mut child = tf(server)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("taskfarm runs");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Background { child, lines }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a line from taskfarm within 60 s")
    }

    /// Waits at most `limit` for the tool to end; the rest of its stdout
    /// lines and its stderr.
    fn wait(mut self, limit: Duration) -> (ExitStatus, Vec<String>, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("taskfarm did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut stderr).unwrap();
        let rest = self.lines.iter().collect();
        (status, rest, stderr)
    }
}

/// A line of `watch` written to a pipe without its local time
/// (`2026-12-07 19:23:17  `), which it must start with.
#[track_caller]
fn untimed(line: &str) -> String {
    let (time, rest) = line.split_at_checked(21).unwrap_or(("", line));
    let shape: String = time
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(
        shape, "9999-99-99 99:99:99  ",
        "no local time first: {line}"
    );
    rest.to_owned()
}

#[test]
fn watch_ends_by_itself_when_the_run_completes() {
    let server = TaskfarmServer::shared();
    let run = create(server, 3);
    let watch = Background::spawn(server, &["watch", run.uuid(), "-n", "0.1"]);
    let first = untimed(&watch.next_line());
    assert!(
        first.starts_with("0.0 %  not started 3  waiting 0  computing 0  done 0/3"),
        "{first}"
    );
    let moving = {
        let _turn = workers_turn();
        let mut worker = Worker::register(run.clone()).unwrap();
        assert!(worker.task().unwrap().is_some());
        worker.update(50.0).unwrap();
        // Waits for watch to show the run moving: no time is assumed.
        let moving = std::iter::repeat_with(|| untimed(&watch.next_line()))
            .find(|l| !l.starts_with("0.0 %"))
            .unwrap();
        worker.update(100.0).unwrap();
        worker.done().unwrap();
        while worker.task().unwrap().is_some() {
            worker.update(100.0).unwrap();
            worker.done().unwrap();
        }
        moving
    };
    // A line in between shows the run going on, with a rate once it moved.
    assert!(moving.starts_with("16.7 %"), "{moving}");
    assert!(moving.contains("tasks/"), "{moving}");
    let (status, rest, stderr) = watch.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
    let last = untimed(rest.last().expect("progress lines while the run went on"));
    // watch ends at 100 %: the last task may still be `computing` (its
    // update to 100 came, its done not yet) when the poll sees 100 %.
    assert!(
        (last.starts_with("100.0 %  not started 0  waiting 0  computing 0  done 3/3")
            || last.starts_with("100.0 %  not started 0  waiting 0  computing 1  done 2/3"))
            && last.ends_with("complete"),
        "{last}"
    );
}

#[test]
fn watch_json_prints_the_run_per_poll_and_ends_at_100_percent() {
    let server = TaskfarmServer::shared();
    let run = create(server, 2);
    {
        // 100 % with the last task not yet marked done: complete already.
        let _turn = workers_turn();
        let mut worker = Worker::register(run.clone()).unwrap();
        worker.task().unwrap();
        worker.update(100.0).unwrap();
        worker.done().unwrap();
        worker.task().unwrap();
        worker.update(100.0).unwrap();
    }
    let out = cli(
        server,
        &["--json", "watch", run.uuid(), "--interval", "0.1"],
    )
    .ok();
    let polls: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(polls.len(), 1, "{out:?}");
    assert_eq!(polls[0]["uuid"], run.uuid());
    assert_eq!(polls[0]["percentDone"], 100.0);
    assert_eq!(polls[0]["numDone"], 1);
    assert_eq!(polls[0]["numComputing"], 1);
    assert_eq!(polls[0]["numNotStarted"], 0);
}

#[test]
fn watch_stops_on_ctrl_c_and_when_the_run_is_deleted() {
    let server = TaskfarmServer::shared();
    let run = create(server, 2);
    let watch = Background::spawn(server, &["watch", run.uuid(), "-n", "0.2"]);
    watch.next_line();
    // SAFETY: kill(2) on our own child.
    assert_eq!(
        unsafe { libc::kill(watch.child.id() as i32, libc::SIGINT) },
        0
    );
    let (status, _, stderr) = watch.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(EXIT_INTERRUPTED), "{stderr}");
    assert_eq!(stderr, "taskfarm: interrupted\n");

    let watch = Background::spawn(server, &["watch", run.uuid(), "-n", "0.1"]);
    watch.next_line();
    run.delete().unwrap();
    let (status, _, stderr) = watch.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(EXIT_NOT_FOUND), "{stderr}");
    assert!(stderr.starts_with("taskfarm: no run "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
