//! A TCP fault proxy (loopback) between the library and the real server:
//! it resets connections, delays answers past the timeout and drops the
//! connection in the middle of an answer. The library retries what is safe to
//! retry (GET, PUT), reports the rest (a task request whose answer was lost),
//! and nothing is lost or done twice: a worker that asks again goes on, and
//! the tasks whose answer was lost come back with restart(false).
//! The environment is process-wide: this binary holds a single test.

mod common;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::c_abi::last_error;
use common::server::TaskfarmServer;
use taskfarm_worker::ffi::status::tf_status::*;
use taskfarm_worker::ffi::taskfarm::*;
use taskfarm_worker::ffi::worker::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    /// Read the request, then reset the connection (RST) without forwarding it.
    Reset,
    /// Forward the request; hold the answer longer than the client's timeout.
    Delay,
    /// Forward the request; pass 20 bytes of the answer, then close.
    DropMidAnswer,
}

const FAULTS: [Fault; 3] = [Fault::Reset, Fault::Delay, Fault::DropMidAnswer];
const TIMEOUT_SECS: f64 = 1.0;

struct Proxy {
    port: u16,
    enabled: Arc<AtomicBool>,
    injected: Arc<Mutex<BTreeMap<Fault, usize>>>,
}

/// Every third connection gets the next fault, while enabled.
fn start_proxy(upstream_port: u16) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let enabled = Arc::new(AtomicBool::new(false));
    let injected: Arc<Mutex<BTreeMap<Fault, usize>>> = Arc::default();
    let (e, inj) = (enabled.clone(), injected.clone());
    let count = AtomicUsize::new(0);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let fault = (e.load(Ordering::SeqCst) && n % 3 == 2).then(|| FAULTS[(n / 3) % 3]);
            if let Some(f) = fault {
                *inj.lock().unwrap().entry(f).or_default() += 1;
            }
            std::thread::spawn(move || serve(client, upstream_port, fault));
        }
    });
    Proxy {
        port,
        enabled,
        injected,
    }
}

fn serve(mut client: TcpStream, upstream_port: u16, fault: Option<Fault>) {
    if fault == Some(Fault::Reset) {
        let mut buf = [0u8; 4096];
        let _ = client.read(&mut buf);
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid socket and a properly sized option value.
        unsafe {
            libc::setsockopt(
                client.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        return; // dropped with linger 0: RST
    }
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        return;
    };
    let (mut client_reader, mut upstream_writer) =
        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_reader, &mut upstream_writer);
        let _ = upstream_writer.shutdown(Shutdown::Write);
    });
    let mut answer = Vec::new();
    let _ = upstream.read_to_end(&mut answer);
    match fault {
        Some(Fault::Delay) => {
            std::thread::sleep(Duration::from_secs_f64(TIMEOUT_SECS * 3.0));
            let _ = client.write_all(&answer);
        }
        Some(Fault::DropMidAnswer) => {
            let _ = client.write_all(&answer[..answer.len().min(20)]);
        }
        _ => {
            let _ = client.write_all(&answer);
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

#[test]
fn the_library_rides_out_resets_delays_and_dropped_answers() {
    std::env::set_var("TASKFARM_BACKOFF", "0.05");
    std::env::set_var("TASKFARM_RETRIES", "4");
    let server = TaskfarmServer::start();
    let upstream_port: u16 = server
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy = start_proxy(upstream_port);
    let (user, password) = (
        CString::new(server.user.as_str()).unwrap(),
        CString::new(server.password.as_str()).unwrap(),
    );
    let direct = CString::new(server.url.as_str()).unwrap();
    let proxied = CString::new(format!("http://127.0.0.1:{}/api/", proxy.port)).unwrap();
    let tasks = 10;

    let mut tf = ptr::null_mut();
    assert_eq!(
        tf_taskfarm_create(
            user.as_ptr(),
            password.as_ptr(),
            direct.as_ptr(),
            tasks,
            &mut tf
        ),
        TF_OK,
        "{}",
        last_error()
    );
    let mut w = ptr::null_mut();
    assert_eq!(
        tf_worker_new(
            user.as_ptr(),
            password.as_ptr(),
            proxied.as_ptr(),
            tf_taskfarm_uuid(tf),
            &mut w
        ),
        TF_OK,
        "{}",
        last_error()
    );
    // The token is fetched (the password check is slow on purpose); now a
    // short timeout per attempt for the worker's calls through the proxy.
    assert_eq!(
        tf_taskfarm_set_timeout(tf_worker_taskfarm(w), TIMEOUT_SECS),
        TF_OK
    );
    proxy.enabled.store(true, Ordering::SeqCst);

    let mut finished: Vec<i64> = Vec::new();
    let mut lost_answers = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the worker did not finish");
        let mut task = -1;
        match tf_worker_task(w, &mut task) {
            TF_OK => {}
            TF_NO_MORE_TASKS => break,
            TF_ERR_CONNECTION => {
                // The task request may have reached the server: the library
                // does not repeat it; the worker asks again.
                assert!(last_error().contains("POST runs/"), "{}", last_error());
                lost_answers += 1;
                continue;
            }
            other => panic!("tf_worker_task: {other:?}: {}", last_error()),
        }
        for p in [50.0, 100.0] {
            assert_eq!(
                tf_worker_update(w, p),
                TF_OK,
                "PUTs are retried: {}",
                last_error()
            );
        }
        assert_eq!(tf_worker_done(w), TF_OK, "{}", last_error());
        finished.push(task);
    }
    tf_worker_free(w);
    proxy.enabled.store(false, Ordering::SeqCst);

    // Tasks handed out whose answer was lost are `computing`: restart(false)
    // gives them back, and a worker finishes them.
    assert_eq!(tf_taskfarm_restart(tf, false), TF_OK, "{}", last_error());
    let mut w = ptr::null_mut();
    assert_eq!(
        tf_worker_new(
            user.as_ptr(),
            password.as_ptr(),
            direct.as_ptr(),
            tf_taskfarm_uuid(tf),
            &mut w
        ),
        TF_OK
    );
    let mut task = -1;
    while tf_worker_task(w, &mut task) == TF_OK {
        assert_eq!(tf_worker_update(w, 100.0), TF_OK);
        assert_eq!(tf_worker_done(w), TF_OK);
        finished.push(task);
    }
    tf_worker_free(w);

    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    for t in &finished {
        *count.entry(*t).or_default() += 1;
    }
    assert_eq!(
        count.keys().copied().collect::<Vec<_>>(),
        (0..tasks).collect::<Vec<_>>()
    );
    assert!(
        count.values().all(|&n| n == 1),
        "a task was done twice: {count:?}"
    );
    let mut done = -1;
    assert_eq!(tf_taskfarm_num_done(tf, &mut done), TF_OK);
    assert_eq!(done, tasks);
    let injected = proxy.injected.lock().unwrap().clone();
    for fault in FAULTS {
        assert!(
            injected.get(&fault).copied().unwrap_or(0) >= 1,
            "{fault:?} was never injected: {injected:?}"
        );
    }
    eprintln!("faults injected: {injected:?}; task answers lost and asked again: {lost_answers}");
    tf_taskfarm_free(tf);
}
