//! TLS: an nginx reverse proxy (Debian's package) with a certificate from a CA
//! this test makes with openssl, in front of the real server. With
//! `TASKFARM_CA_FILE` the library works through it; without, it refuses the
//! connection with a clear TF_ERR_CONNECTION and never falls back to plain
//! HTTP. `TASKFARM_CA_FILE` is process-wide: this binary holds a single test.

mod common;

use std::ffi::CString;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::ptr;
use std::time::{Duration, Instant};

use common::c_abi::last_error;
use common::server::TaskfarmServer;
use taskfarm_worker::ffi::status::tf_status::*;
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;

fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run ({e}): apt-get install -y openssl nginx"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a certificate it signs for localhost and 127.0.0.1.
fn make_certificates(dir: &Path) {
    run(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=taskfarm test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    run(
        dir,
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

/// nginx in the foreground, one process, stopped by PID when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_nginx(dir: &Path, upstream: &str) -> (Nginx, u16) {
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n  server {{\n    listen 127.0.0.1:{port} ssl;\n\
         ssl_certificate {d}/server.pem;\n    ssl_certificate_key {d}/server.key;\n\
         location / {{ proxy_pass {upstream}; proxy_set_header Host $host; }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .args([
            "-c",
            &format!("{d}/nginx.conf"),
            "-p",
            &d.to_string(),
            "-e",
            &format!("{d}/error.log"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx is installed (apt-get install -y nginx)");
    let nginx = Nginx(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (nginx, port)
}

fn open_status(
    server: &TaskfarmServer,
    url: &str,
) -> (taskfarm_worker::ffi::status::tf_status, *mut tf_taskfarm) {
    let (user, password, url) = (
        CString::new(server.user.as_str()).unwrap(),
        CString::new(server.password.as_str()).unwrap(),
        CString::new(url).unwrap(),
    );
    let mut tf = ptr::null_mut();
    let status = tf_taskfarm_create(user.as_ptr(), password.as_ptr(), url.as_ptr(), 3, &mut tf);
    (status, tf)
}

fn token_requests(server: &TaskfarmServer) -> usize {
    let log = std::fs::read_to_string(server.state_dir.join("server.log")).unwrap_or_default();
    log.matches("GET /api/token").count()
}

#[test]
fn https_works_with_the_ca_file_and_refuses_an_unverified_certificate() {
    let server = TaskfarmServer::start();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("target/tmp/tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir);
    let upstream = server
        .url
        .trim_end_matches("api/")
        .trim_end_matches('/')
        .to_owned();
    let (_nginx, port) = start_nginx(&dir, &upstream);
    let https = format!("https://localhost:{port}/api/");

    // No CA file: the certificate does not verify; nothing reaches the server.
    std::env::remove_var("TASKFARM_CA_FILE");
    std::env::set_var("TASKFARM_RETRIES", "2");
    let before = token_requests(&server);
    let (status, tf) = open_status(&server, &https);
    assert_eq!(status, TF_ERR_CONNECTION, "{}", last_error());
    assert!(tf.is_null());
    let message = last_error();
    assert!(
        message.contains("certificate does not verify") && message.contains(&https),
        "{message}"
    );
    assert!(
        !message.contains("after"),
        "a bad certificate is not retried: {message}"
    );
    assert_eq!(token_requests(&server), before, "no fallback to plain HTTP");

    // With the CA file: a whole worker session through TLS.
    std::env::set_var("TASKFARM_CA_FILE", dir.join("ca.pem"));
    let (status, tf) = open_status(&server, &https);
    assert_eq!(status, TF_OK, "{}", last_error());
    let (user, password, url) = (
        CString::new(server.user.as_str()).unwrap(),
        CString::new(server.password.as_str()).unwrap(),
        CString::new(https.as_str()).unwrap(),
    );
    let mut w = ptr::null_mut();
    assert_eq!(
        tf_worker_new(
            user.as_ptr(),
            password.as_ptr(),
            url.as_ptr(),
            tf_taskfarm_uuid(tf),
            &mut w
        ),
        TF_OK,
        "{}",
        last_error()
    );
    let mut task = -1;
    let mut finished = 0;
    while tf_worker_task(w, &mut task) == TF_OK {
        assert_eq!(tf_worker_update(w, 100.0), TF_OK, "{}", last_error());
        assert_eq!(tf_worker_done(w), TF_OK, "{}", last_error());
        finished += 1;
    }
    assert_eq!(finished, 3);
    let mut done = -1;
    assert_eq!(tf_taskfarm_num_done(tf, &mut done), TF_OK);
    assert_eq!(done, 3);
    tf_worker_free(w);
    tf_taskfarm_free(tf);

    // By IP address too (the certificate names 127.0.0.1).
    let (status, tf) = open_status(&server, &format!("https://127.0.0.1:{port}/api/"));
    assert_eq!(status, TF_OK, "{}", last_error());
    tf_taskfarm_free(tf);

    // Plain HTTP to the TLS port is not TLS: nginx refuses it.
    let (status, _) = open_status(&server, &format!("http://127.0.0.1:{port}/api/"));
    assert_eq!(status, TF_ERR_HTTP, "{}", last_error());
    assert!(last_error().contains("HTTP 400"), "{}", last_error());

    // A CA file that is missing or not PEM is a clear argument error.
    for (file, why) in [
        (dir.join("missing.pem"), "cannot be read"),
        (dir.join("server.ext"), "PEM"),
    ] {
        std::env::set_var("TASKFARM_CA_FILE", &file);
        let (status, _) = open_status(&server, &https);
        assert_eq!(status, TF_ERR_INVALID_ARGUMENT, "{}", last_error());
        assert!(
            last_error().contains("TASKFARM_CA_FILE") && last_error().contains(why),
            "{}",
            last_error()
        );
    }
    std::env::remove_var("TASKFARM_CA_FILE");
    let _ = std::fs::remove_dir_all(&dir);
}
