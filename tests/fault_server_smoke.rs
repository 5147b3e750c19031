//! Tests of the scripted fault server itself (tests/common/fault_server.rs),
//! with plain std sockets and with ureq.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::fault_server::{base64_decode, token_ok, Action, FaultServer};
use serde_json::json;

/// A parsed response as seen by [`RawConn`].
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client on one TCP connection.
struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    fn connect(server: &FaultServer) -> RawConn {
        let stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        RawConn {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, raw: &str) {
        self.stream.write_all(raw.as_bytes()).unwrap();
    }

    /// Reads more bytes into the buffer; Ok(0) at EOF.
    fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 65536];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads the response head; returns (status, headers).
    fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            assert!(self.fill().unwrap() > 0, "EOF before response head");
        };
        let text = String::from_utf8(self.buf[..end].to_vec()).unwrap();
        self.buf.drain(..end);
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line:?}");
        let status = status_line[9..12].parse().unwrap();
        let headers = lines
            .take_while(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        (status, headers)
    }

    /// Reads one complete `Content-Length` response.
    fn read_response(&mut self) -> RawResponse {
        let (status, headers) = self.read_head();
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = response
            .header("content-length")
            .map(|v| v.parse().unwrap())
            .unwrap_or(0);
        while self.buf.len() < len {
            assert!(self.fill().unwrap() > 0, "EOF inside response body");
        }
        response.body = self.buf.drain(..len).collect();
        response
    }

    /// Reads until the server closes; returns everything left over.
    fn read_to_eof(&mut self) -> std::io::Result<Vec<u8>> {
        while self.fill()? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

#[test]
fn keep_alive_two_requests_on_one_connection() {
    let server =
        FaultServer::start(|req, n| Action::json(200, &json!({ "path": req.path, "n": n })));
    let mut conn = RawConn::connect(&server);
    conn.send("GET /api/a HTTP/1.1\r\nHost: x\r\n\r\n");
    let first = conn.read_response();
    conn.send("GET /api/a?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    let second = conn.read_response();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("application/json"));
    let first: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    let second: serde_json::Value = serde_json::from_slice(&second.body).unwrap();
    assert_eq!(first, json!({ "path": "/api/a", "n": 0 }));
    assert_eq!(second, json!({ "path": "/api/a", "n": 1 }));
    assert_eq!(server.connections(), 1);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(server.requests()[1].query, "x=1");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = FaultServer::start(|req, _| Action::text(200, &req.path));
    let mut conn = RawConn::connect(&server);
    conn.send("POST /api/p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /api/q HTTP/1.1\r\n\r\n");
    assert_eq!(conn.read_response().body, b"/api/p");
    assert_eq!(conn.read_response().body, b"/api/q");
    assert_eq!(server.requests()[0].body, b"abc");
    assert_eq!(server.connections(), 1);
}

#[test]
fn ureq_agent_reuses_the_connection() {
    let server = FaultServer::start(|_, _| token_ok("tok"));
    let agent = agent();
    for _ in 0..3 {
        let mut resp = agent.get(format!("{}token", server.url())).call().unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let body: serde_json::Value = resp.body_mut().read_json().unwrap();
        assert_eq!(body, json!({ "token": "tok" }));
    }
    assert_eq!(server.count("GET", "/api/token"), 3);
    assert_eq!(server.connections(), 1);
}

#[test]
fn connection_close_is_honoured() {
    let server = FaultServer::start(|_, _| Action::text(200, "bye"));
    let mut conn = RawConn::connect(&server);
    conn.send("GET /api/x HTTP/1.1\r\nConnection: close\r\n\r\n");
    let resp = conn.read_response();
    assert_eq!(resp.body, b"bye");
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(conn.read_to_eof().unwrap(), b"");
}

#[test]
fn requests_are_recorded() {
    let server = FaultServer::start(|_, _| Action::empty(204));
    let agent = agent();
    let resp = agent
        .post(format!("{}runs/abc?wait=1&x=y", server.url()))
        .header("Authorization", "Basic dXNlcjpwYTpzcw==")
        .header("X-Custom", "  Value  ")
        .send_json(json!({ "a": [1, 2], "b": "c" }))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/api/runs/abc");
    assert_eq!(req.query, "wait=1&x=y");
    assert_eq!(req.header("x-custom"), Some("Value"));
    assert_eq!(req.header("X-CUSTOM"), Some("Value"));
    assert!(req
        .headers
        .iter()
        .all(|(n, _)| *n == n.to_ascii_lowercase()));
    assert_eq!(req.body_json(), json!({ "a": [1, 2], "b": "c" }));
    assert_eq!(
        req.basic_auth_user(),
        Some(("user".to_string(), "pa:ss".to_string()))
    );
    assert_eq!(server.count("POST", "/runs/abc"), 1);
    assert_eq!(server.count("GET", "/runs/abc"), 0);
}

#[test]
fn base64_decoder() {
    assert_eq!(base64_decode("").unwrap(), b"");
    assert_eq!(base64_decode("Zg==").unwrap(), b"f");
    assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
    assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
    assert_eq!(base64_decode("Zm9vYg").unwrap(), b"foob");
    assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
    assert_eq!(base64_decode("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    assert_eq!(base64_decode("Zm9v!"), None);
    assert_eq!(base64_decode("Z"), None);
    assert_eq!(base64_decode("Zg==="), None);
}

#[test]
fn per_route_counter() {
    // 500 twice, then the token; other routes have their own counters.
    let server = FaultServer::start(|req, n| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/api/token") if n < 2 => Action::html(500, "<h1>oops</h1>"),
        ("GET", "/api/token") => token_ok("t"),
        _ => Action::json(200, &json!({ "n": n })),
    });
    let agent = agent();
    let token = format!("{}token", server.url());
    let other = format!("{}other", server.url());
    let mut resp = agent.get(&token).call().unwrap();
    assert_eq!(resp.status().as_u16(), 500);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/html; charset=utf-8"
    );
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "<h1>oops</h1>");
    let mut resp = agent.get(&other).call().unwrap();
    assert_eq!(
        resp.body_mut().read_json::<serde_json::Value>().unwrap(),
        json!({ "n": 0 })
    );
    let resp = agent.post(&token).send_empty().unwrap();
    assert_eq!(resp.status().as_u16(), 200, "POST has its own counter");
    assert_eq!(agent.get(&token).call().unwrap().status().as_u16(), 500);
    let mut resp = agent.get(&token).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.body_mut().read_json::<serde_json::Value>().unwrap(),
        json!({ "token": "t" })
    );
    assert_eq!(server.count("GET", "/token"), 3);
    assert_eq!(server.count("POST", "/token"), 1);
    assert_eq!(server.count("GET", "/other"), 1);
}

#[test]
fn respond_variants() {
    let server = FaultServer::start(|req, _| match req.path.as_str() {
        "/api/json" => Action::json(401, &json!({ "detail": "no" })),
        "/api/html" => Action::html(503, "<html>down</html>"),
        "/api/text" => Action::text(400, "bad"),
        "/api/invalid" => Action::raw(200, "application/json", "{not json"),
        "/api/204" => Action::empty(204),
        "/api/500" => Action::empty(500),
        _ => Action::empty(404),
    });
    let mut conn = RawConn::connect(&server);
    let mut get = |path: &str| {
        conn.send(&format!("GET /api/{path} HTTP/1.1\r\n\r\n"));
        conn.read_response()
    };

    let r = get("json");
    assert_eq!(
        (r.status, r.header("content-type")),
        (401, Some("application/json"))
    );
    assert_eq!(r.body, br#"{"detail":"no"}"#);
    let r = get("html");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.body, b"<html>down</html>");
    let r = get("text");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.body, b"bad");
    let r = get("invalid");
    assert_eq!(r.body, b"{not json");
    let r = get("204");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("content-type"), None);
    let r = get("500");
    assert_eq!(r.status, 500);
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("content-type"), None);
    let r = get("nothing");
    assert_eq!(r.status, 404);
    // All of it on one connection: the 204 sent no body to trip over.
    assert_eq!(server.connections(), 1);
}

#[test]
fn status_line_has_reason_phrase() {
    let server = FaultServer::start(|_, _| Action::empty(503));
    let mut conn = RawConn::connect(&server);
    conn.send("GET /api/x HTTP/1.1\r\nConnection: close\r\n\r\n");
    let all = conn.read_to_eof().unwrap();
    assert_eq!(
        all,
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn delayed_answer_arrives_after_the_delay_without_blocking_others() {
    let delay = Duration::from_millis(800);
    let server = FaultServer::start(move |req, _| match req.path.as_str() {
        "/api/slow" => Action::text(200, "slow").delayed(delay),
        _ => Action::text(200, "fast"),
    });
    let url = server.url();
    let slow = thread::spawn(move || {
        let start = Instant::now();
        let mut resp = agent().get(format!("{url}slow")).call().unwrap();
        let body = resp.body_mut().read_to_string().unwrap();
        (body, start.elapsed())
    });
    // Wait until the slow request is in, then a second connection must not wait for it.
    let wait = Instant::now();
    while server.count("GET", "/slow") == 0 {
        assert!(wait.elapsed() < Duration::from_secs(5));
        thread::sleep(Duration::from_millis(5));
    }
    let start = Instant::now();
    let mut resp = agent().get(format!("{}fast", server.url())).call().unwrap();
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "fast");
    assert!(
        start.elapsed() < delay / 2,
        "fast answer took {:?}",
        start.elapsed()
    );

    let (body, elapsed) = slow.join().unwrap();
    assert_eq!(body, "slow");
    assert!(elapsed >= delay, "slow answer after {elapsed:?}");
    assert_eq!(server.connections(), 2);
}

#[test]
fn delayed_answer_trips_a_client_timeout() {
    let server =
        FaultServer::start(|_, _| Action::text(200, "late").delayed(Duration::from_secs(2)));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_millis(300)))
        .build()
        .into();
    let start = Instant::now();
    let err = agent.get(format!("{}x", server.url())).call().unwrap_err();
    assert!(matches!(err, ureq::Error::Timeout(_)), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn nine_mib_body_arrives_whole() {
    const SIZE: usize = 9 * 1024 * 1024;
    let body: Arc<Vec<u8>> = Arc::new((0..SIZE).map(|i| (i % 251) as u8).collect());
    let server_body = Arc::clone(&body);
    let server = FaultServer::start(move |_, _| {
        Action::raw(200, "application/octet-stream", server_body.to_vec())
    });
    let mut resp = agent().get(format!("{}big", server.url())).call().unwrap();
    assert_eq!(
        resp.headers()["content-length"].to_str().unwrap(),
        SIZE.to_string()
    );
    let got = resp
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_vec()
        .unwrap();
    assert_eq!(got.len(), SIZE);
    assert!(got == *body);

    // The same over a raw socket.
    let mut conn = RawConn::connect(&server);
    conn.send("GET /api/big HTTP/1.1\r\n\r\n");
    let resp = conn.read_response();
    assert_eq!(resp.body.len(), SIZE);
    assert!(resp.body == *body);
}

#[test]
fn close_mid_body_raw() {
    let server = FaultServer::start(|_, _| Action::CloseMidBody {
        status: 200,
        declared_len: 1000,
        sent: b"0123456789".to_vec(),
    });
    let mut conn = RawConn::connect(&server);
    conn.send("GET /api/x HTTP/1.1\r\n\r\n");
    let (status, headers) = conn.read_head();
    assert_eq!(status, 200);
    assert!(headers.contains(&("Content-Length".to_string(), "1000".to_string())));
    assert_eq!(conn.read_to_eof().unwrap(), b"0123456789");
}

#[test]
fn close_mid_body_is_a_read_error_in_ureq() {
    let server = FaultServer::start(|_, _| Action::CloseMidBody {
        status: 200,
        declared_len: 1000,
        sent: b"0123456789".to_vec(),
    });
    let mut resp = agent().get(format!("{}x", server.url())).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let err = resp.body_mut().read_to_vec().unwrap_err();
    eprintln!("mid-body close: {err:?}");
    assert_eq!(server.count("GET", "/x"), 1);
}

#[test]
fn close_without_answer() {
    let server = FaultServer::start(|_, _| Action::CloseWithoutAnswer);
    let mut conn = RawConn::connect(&server);
    conn.send("POST /api/x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
    match conn.read_to_eof() {
        Ok(bytes) => assert_eq!(bytes, b""),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
    }
    assert_eq!(server.requests()[0].body, b"hi");

    let err = agent()
        .get(format!("{}x", server.url()))
        .call()
        .unwrap_err();
    eprintln!("close without answer: {err:?}");
    assert_eq!(server.count("GET", "/x"), 1, "ureq does not retry");
}

#[test]
fn chunked_request_bodies_are_rejected() {
    let called = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&called);
    let server = FaultServer::start(move |_, _| {
        seen.fetch_add(1, Ordering::SeqCst);
        Action::empty(200)
    });
    let mut conn = RawConn::connect(&server);
    conn.send("POST /api/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n");
    let resp = conn.read_response();
    assert_eq!(resp.status, 501);
    assert!(String::from_utf8_lossy(&resp.body).contains("Transfer-Encoding"));
    assert_eq!(called.load(Ordering::SeqCst), 0);
    assert!(server.requests().is_empty());
}

#[test]
#[should_panic(expected = "fault server handler panicked")]
fn handler_panic_fails_the_test_on_drop() {
    let server = FaultServer::start(|_, _| panic!("scripted assertion failed"));
    let resp = agent().get(format!("{}x", server.url())).call().unwrap();
    assert_eq!(resp.status().as_u16(), 500);
    drop(server);
}

#[test]
fn drop_stops_the_server_promptly() {
    let server = FaultServer::start(|_, _| Action::empty(200));
    let addr = server.addr();
    // An idle keep-alive connection must not hold the drop up.
    let mut conn = RawConn::connect(&server);
    conn.send("GET /api/x HTTP/1.1\r\n\r\n");
    assert_eq!(conn.read_response().status, 200);
    let start = Instant::now();
    drop(server);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(TcpStream::connect(addr).is_err());
    // The idle connection's thread notices the stop flag and closes.
    assert_eq!(conn.read_to_eof().unwrap(), b"");
}
