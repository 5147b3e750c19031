//! Checks the test harness itself (tests/harness/, tests/common/server.rs)
//! against the REAL taskfarm server: start, authentication, a run, stop,
//! restart with a new secret key, the watchdog and the shared server. Uses
//! plain HTTP (ureq), not the crate, so it tells harness problems apart from
//! library problems.

mod common;

use common::server::{pid_alive, TaskfarmServer};
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
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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

    // PROTOCOL.md: a token signed with the old key gets 500, not 401.
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
        wait_until_gone(server.pid, Duration::from_secs(5)),
        "server {} still alive 5 s after its watched process died\n{}",
        server.pid,
        server.log_tail(20)
    );
    assert!(server.log_tail(5).contains("is gone: stopping the server"));
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
