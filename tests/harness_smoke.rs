//! Checks the test harness itself (tests/harness/, tests/common/server.rs)
//! against the REAL taskfarm server: start, authentication, a run, stop,
//! restart with a new secret key, the watchdog and the shared server (in the
//! mode of `TASKFARM_TEST_DB`), and the PostgreSQL + gunicorn production
//! mode explicitly: its processes, a restart that keeps the data, a stop and
//! a watchdog that leave no process behind, the mode taken from
//! `TASKFARM_TEST_DB` by `server.sh`, a loud failure without PostgreSQL.
//! Uses plain HTTP (ureq), not the crate, so it tells harness problems apart
//! from library problems.

mod common;

use common::server::{pid_alive, Db, TaskfarmServer};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// An agent that ignores proxy variables (the server is on loopback) and
/// hands back 4xx/5xx answers instead of turning them into errors.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn base64(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// `GET url` with HTTP basic auth: (status, body).
fn get(url: &str, user: &str, password: &str) -> (u16, String) {
    let mut resp = agent()
        .get(url)
        .header("Authorization", &basic(user, password))
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (resp.status().as_u16(), body)
}

/// `POST url` with a JSON body and HTTP basic auth: (status, body).
fn post_json(url: &str, user: &str, body: serde_json::Value) -> (u16, String) {
    let mut resp = agent()
        .post(url)
        .header("Authorization", &basic(user, ""))
        .send_json(&body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (resp.status().as_u16(), text)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A token for the server's user.
fn token(server: &TaskfarmServer) -> String {
    let (status, body) = get(
        &format!("{}token", server.url),
        &server.user,
        &server.password,
    );
    assert_eq!(status, 200, "GET token: {body}\n{}", server.log_tail(20));
    let token = json(&body)["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {body}"))
        .to_owned();
    assert!(!token.is_empty());
    token
}

/// Creates a run of `num_tasks` tasks; returns its uuid.
fn create_run(server: &TaskfarmServer, token: &str, num_tasks: u32) -> String {
    let (status, body) = post_json(
        &format!("{}run", server.url),
        token,
        serde_json::json!({ "numTasks": num_tasks }),
    );
    assert_eq!(status, 201, "POST run: {body}\n{}", server.log_tail(20));
    let run = json(&body);
    assert_eq!(run["numTasks"], num_tasks, "{body}");
    run["uuid"]
        .as_str()
        .unwrap_or_else(|| panic!("no uuid in {body}"))
        .to_owned()
}

fn wait_until_gone(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while pid_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn fresh_server_gives_tokens_runs_and_401s_then_stops() {
    let server = TaskfarmServer::start();
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    assert!(server.url.ends_with("/api/"), "{}", server.url);
    assert!(
        pid_alive(server.pid),
        "server pid {} not running",
        server.pid
    );

    // server.json holds the password and the secret key: its owner only.
    let mode = std::fs::metadata(server.state_dir.join("server.json"))
        .expect("server.json")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "server.json mode {mode:o}");

    let token = token(&server);
    create_run(&server, &token, 3);

    let (status, _) = get(&format!("{}token", server.url), &server.user, "wrong");
    assert_eq!(status, 401, "wrong password");
    let (status, _) = get(&format!("{}token", server.url), "nobody", &server.password);
    assert_eq!(status, 401, "unknown user");
    let (status, _) = get(&format!("{}runs", server.url), "not-a-jwt", "");
    assert_eq!(status, 401, "garbage token");

    server.stop();
    assert!(
        !pid_alive(server.pid),
        "server pid {} still alive after stop",
        server.pid
    );
    assert!(
        agent().get(&server.url).call().is_err(),
        "the port still answers after stop"
    );
    // Stopping twice is fine.
    server.stop();
}

#[test]
fn restart_keeps_the_database_and_a_new_key_breaks_old_tokens() {
    let server = TaskfarmServer::start();
    let old_token = token(&server);
    let uuid = create_run(&server, &old_token, 3);
    let run_url = format!("{}runs/{uuid}", server.url);

    server.restart(Some("newkey"));
    let new_pid = server.current_pid();
    assert_ne!(new_pid, server.pid, "restart kept the old process");
    assert!(
        !pid_alive(server.pid),
        "old server still alive after restart"
    );
    assert!(server.is_running());

    // docs/PROTOCOL.md: a token signed with the old key gets 500, not 401.
    let (status, body) = get(&run_url, &old_token, "");
    assert_eq!(status, 500, "old token after key change: {body}");

    let new_token = token(&server);
    assert_ne!(new_token, old_token, "same token with another key");
    let (status, body) = get(&run_url, &new_token, "");
    assert_eq!(status, 200, "run lost by restart: {body}");
    assert_eq!(json(&body)["numTasks"], 3, "{body}");

    // Without a new key, the key and so the tokens stay the same.
    server.restart(None);
    assert_eq!(token(&server), new_token);
    let (status, body) = get(&run_url, &new_token, "");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn watchdog_stops_the_server_when_the_watched_process_dies() {
    let mut watched = std::process::Command::new("sleep")
        .arg("120")
        .spawn()
        .expect("spawn sleep");
    let server = TaskfarmServer::start_watching(watched.id() as i32);
    assert!(pid_alive(server.pid));
    token(&server);

    watched.kill().expect("kill sleep");
    watched.wait().expect("wait sleep");
    assert!(
        wait_until_gone(server.pid, Duration::from_secs(15)),
        "server {} still alive 15 s after its watched process died\n{}",
        server.pid,
        server.log_tail(20)
    );
    // (gunicorn logs its shutdown after the watchdog's line.)
    assert!(server.log_tail(40).contains("is gone: stopping the server"));
}

#[test]
fn shared_server_is_started_once() {
    let a = TaskfarmServer::shared();
    let b = TaskfarmServer::shared();
    assert!(std::ptr::eq(a, b));
    assert!(pid_alive(a.pid));
    let (status, body) = get(&a.url.replace("/api/", "/"), "", "");
    assert_eq!(status, 200);
    assert!(body.contains("Taskfarm Server"), "{body}");
    token(a);
}

// ---------------------------------------------------------------------------
// PostgreSQL + gunicorn (production mode), whatever TASKFARM_TEST_DB says.

/// (state, ppid, pgid) of a process from /proc; None when gone or a zombie.
fn proc_stat(pid: i32) -> Option<(String, i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let state = rest.first()?.to_string();
    if matches!(state.as_str(), "Z" | "X" | "x") {
        return None;
    }
    Some((
        state,
        rest.get(1)?.parse().ok()?,
        rest.get(2)?.parse().ok()?,
    ))
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Every live process: (pid, ppid, pgid).
fn all_processes() -> Vec<(i32, i32, i32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            if let Some((_, ppid, pgid)) = proc_stat(pid) {
                out.push((pid, ppid, pgid));
            }
        }
    }
    out
}

/// The gunicorn processes (master and workers) in process group `pgid` (not
/// the watchdog, whose command line holds gunicorn's).
fn gunicorn_processes(pgid: i32) -> Vec<i32> {
    all_processes()
        .into_iter()
        .filter(|&(pid, _, g)| {
            let cmd = cmdline(pid);
            g == pgid && cmd.contains("-m gunicorn") && !cmd.contains("_watchdog")
        })
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Every process of the server: its process group (watchdog, gunicorn), the
/// postmaster and the postmaster's children.
fn server_processes(server: &TaskfarmServer) -> Vec<i32> {
    let pgid = server.current_pid();
    let postmaster = server
        .postgres_pid()
        .expect("postgresql.pid in server.json");
    let mut pids: Vec<i32> = all_processes()
        .into_iter()
        .filter(|&(_, ppid, g)| g == pgid || ppid == postmaster)
        .map(|(pid, _, _)| pid)
        .collect();
    pids.push(postmaster);
    pids
}

/// Live processes whose command line names the state directory or the
/// server's port (postgres -D DIR/..., gunicorn --bind 127.0.0.1:PORT).
fn leftovers(server: &TaskfarmServer, port: u64) -> Vec<(i32, String)> {
    let dir = server.state_dir.to_string_lossy().into_owned();
    let bind = format!("127.0.0.1:{port} ");
    all_processes()
        .into_iter()
        .map(|(pid, _, _)| (pid, cmdline(pid)))
        .filter(|(_, cmd)| cmd.contains(&dir) || cmd.contains(&bind))
        .collect()
}

fn wait_all_gone(pids: &[i32], within: Duration) -> Vec<i32> {
    let deadline = Instant::now() + within;
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|&p| pid_alive(p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn postgresql_mode_runs_gunicorn_keeps_data_over_restart_and_stops_clean() {
    let server = TaskfarmServer::start_with(Db::Postgresql);
    assert_eq!(server.db, Db::Postgresql);
    let info = server.info();
    assert_eq!(info["db"], "postgresql", "{info}");
    assert!(
        info["database_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("postgresql+psycopg2://")),
        "{info}"
    );
    let pg_dir = info["postgresql"]["dir"].as_str().expect("postgresql.dir");
    let harness_file = Path::new(pg_dir).join("harness.json");
    let mode = std::fs::metadata(&harness_file)
        .unwrap_or_else(|e| panic!("{}: {e}", harness_file.display()))
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "harness.json (role password) mode {mode:o}"
    );
    let port = info["port"].as_u64().expect("port");
    let postmaster = server.postgres_pid().expect("postmaster pid");
    assert!(pid_alive(postmaster), "postmaster {postmaster} not running");
    assert!(
        info["postgresql"]["data"]
            .as_str()
            .is_some_and(|d| Path::new(d).join("PG_VERSION").is_file()),
        "no cluster: {info}"
    );

    // gunicorn -w 4: a master and 4 workers in the server's process group.
    let deadline = Instant::now() + Duration::from_secs(15);
    while gunicorn_processes(server.pid).len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        gunicorn_processes(server.pid).len(),
        5,
        "not gunicorn with 4 workers\n{}",
        server.log_tail(20)
    );

    let tok = token(&server);
    let uuid = create_run(&server, &tok, 7);
    let run_url = format!("{}runs/{uuid}", server.url);

    // Restart: gunicorn and PostgreSQL start again, the data stays.
    server.restart(None);
    assert_ne!(server.current_pid(), server.pid, "restart kept gunicorn");
    let new_postmaster = server.postgres_pid().expect("postmaster pid");
    assert_ne!(new_postmaster, postmaster, "restart kept PostgreSQL");
    assert!(!pid_alive(postmaster), "old postmaster still alive");
    assert!(!pid_alive(server.pid), "old gunicorn still alive");
    assert_eq!(token(&server), tok, "same key, same token");
    let (status, body) = get(&run_url, &tok, "");
    assert_eq!(status, 200, "run lost by restart: {body}");
    assert_eq!(json(&body)["numTasks"], 7, "{body}");

    // Stop: nothing of the server is left.
    let pids = server_processes(&server);
    assert!(pids.len() >= 7, "too few server processes: {pids:?}");
    server.stop();
    let alive = wait_all_gone(&pids, Duration::from_secs(5));
    assert!(alive.is_empty(), "still alive after stop: {alive:?}");
    let left = leftovers(&server, port);
    assert!(left.is_empty(), "processes left after stop: {left:?}");
    assert!(
        agent().get(&server.url).call().is_err(),
        "the port still answers"
    );
    server.stop(); // twice is fine
}

#[test]
fn postgresql_watchdog_stops_gunicorn_and_postgresql() {
    let mut watched = Command::new("sleep")
        .arg("120")
        .spawn()
        .expect("spawn sleep");
    let server = TaskfarmServer::start_watching_with(Db::Postgresql, watched.id() as i32);
    token(&server);
    let port = server.info()["port"].as_u64().expect("port");
    let pids = server_processes(&server);

    watched.kill().expect("kill sleep");
    watched.wait().expect("wait sleep");
    let alive = wait_all_gone(&pids, Duration::from_secs(20));
    assert!(
        alive.is_empty(),
        "still alive 20 s after the watched process died: {alive:?}\n{}",
        server.log_tail(20)
    );
    let left = leftovers(&server, port);
    assert!(left.is_empty(), "processes left: {left:?}");
    let log = server.log_tail(40);
    assert!(log.contains("is gone: stopping the server"), "{log}");
    assert!(log.contains("PostgreSQL stopped"), "{log}");
}

/// `server.sh ARGS` with extra environment variables: (success, stdout, stderr).
fn server_sh(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/harness/server.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run server.sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("harness-smoke-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn server_sh_takes_the_mode_from_taskfarm_test_db() {
    let dir = scratch_dir("env-mode");
    let d = dir.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    let (ok, stdout, stderr) = server_sh(
        &["start", &d, "--watch-pid", &me],
        &[("TASKFARM_TEST_DB", "postgresql")],
    );
    let stopped = server_sh(&["stop", &d], &[]);
    assert!(ok, "start failed\n{stderr}\n{stdout}");
    assert!(stopped.0, "stop failed: {}", stopped.2);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("JSON");
    let info = json(line);
    assert_eq!(info["db"], "postgresql", "{info}");
    let postmaster = info["postgresql"]["pid"].as_i64().expect("pid") as i32;
    assert!(!pid_alive(postmaster), "PostgreSQL survived stop");
    let _ = std::fs::remove_dir_all(&dir);

    let (ok, _, stderr) = server_sh(&["start", &d], &[("TASKFARM_TEST_DB", "postgres-typo")]);
    assert!(!ok, "a bad TASKFARM_TEST_DB was accepted");
    assert!(stderr.contains("TASKFARM_TEST_DB"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn postgresql_mode_without_postgresql_fails_loudly_with_the_apt_line() {
    let dir = scratch_dir("no-pg");
    let d = dir.to_string_lossy().into_owned();
    let (ok, stdout, stderr) = server_sh(
        &["start", &d, "--db", "postgresql"],
        &[("TASKFARM_PG_BIN", "/nonexistent/postgresql/bin")],
    );
    let _ = server_sh(&["stop", &d], &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok, "started without PostgreSQL binaries: {stdout}");
    assert!(
        stderr.contains("apt-get install -y postgresql"),
        "no install hint: {stderr}"
    );
}

#[test]
fn postgresql_cluster_in_tmp_keeps_its_data_over_stop_and_restart() {
    // A state directory whose socket path is too long: the cluster goes to
    // /tmp/taskfarm-pg-* (as it does in a deep or 0700 checkout). A plain
    // `stop` removed it, so a restart after `server.stop()` came up on an
    // empty database: "no run" (issue 26 point 17).
    let dir = scratch_dir(&format!("external-{}", "d".repeat(64)));
    let d = dir.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    let (ok, stdout, stderr) = server_sh(
        &["start", &d, "--db", "postgresql", "--watch-pid", &me],
        &[],
    );
    assert!(ok, "start failed\n{stderr}\n{stdout}");
    let info = json(
        stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .expect("JSON"),
    );
    let pg_dir = info["postgresql"]["dir"].as_str().expect("dir").to_owned();
    assert_eq!(info["postgresql"]["external"], true, "{info}");
    assert!(pg_dir.starts_with("/tmp/taskfarm-pg-"), "{info}");
    let url = info["url"].as_str().unwrap().to_owned();
    let (user, password) = (
        info["user"].as_str().unwrap().to_owned(),
        info["password"].as_str().unwrap().to_owned(),
    );
    let (status, body) = get(&format!("{url}token"), &user, &password);
    assert_eq!(status, 200, "{body}");
    let tok = json(&body)["token"].as_str().unwrap().to_owned();
    let (status, body) = post_json(
        &format!("{url}run"),
        &tok,
        serde_json::json!({ "numTasks": 3 }),
    );
    assert_eq!(status, 201, "{body}");
    let uuid = json(&body)["uuid"].as_str().unwrap().to_owned();

    let (ok, _, stderr) = server_sh(&["stop", &d, "--keep-data"], &[]);
    assert!(ok, "stop --keep-data: {stderr}");
    assert!(Path::new(&pg_dir).join("data/PG_VERSION").is_file());
    let (ok, stdout, stderr) = server_sh(&["restart", &d], &[]);
    assert!(ok, "restart failed\n{stderr}\n{stdout}");
    let (status, body) = get(&format!("{url}runs/{uuid}"), &tok, "");
    let (stopped, _, stop_err) = server_sh(&["stop", &d], &[]);
    assert_eq!(status, 200, "run lost by stop and restart: {body}");
    // The final stop removes the cluster in /tmp.
    assert!(stopped, "{stop_err}");
    assert!(!Path::new(&pg_dir).exists(), "{pg_dir} left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn postgresql_stops_when_the_test_dies_even_if_its_state_dir_is_removed() {
    // The test process killed (SIGKILL), and its state directory removed at
    // once, as the next test binary removes those of dead test processes:
    // the watchdog read server.json only then, found none, and PostgreSQL
    // ran on (issue 26 point 17).
    let mut test_process = Command::new("sleep")
        .arg("120")
        .spawn()
        .expect("spawn sleep");
    let server = TaskfarmServer::start_watching_with(Db::Postgresql, test_process.id() as i32);
    token(&server);
    let port = server.info()["port"].as_u64().expect("port");
    let pids = server_processes(&server);
    let postmaster = server.postgres_pid().expect("postmaster");
    assert!(pids.contains(&postmaster), "{pids:?}");

    test_process.kill().expect("SIGKILL the test process");
    test_process.wait().expect("wait sleep");
    std::fs::remove_dir_all(&server.state_dir).expect("remove the state dir");
    let alive = wait_all_gone(&pids, Duration::from_secs(30));
    assert!(
        alive.is_empty(),
        "still alive 30 s after the test process was killed: {alive:?}"
    );
    let left = leftovers(&server, port);
    assert!(left.is_empty(), "processes left: {left:?}");
}
