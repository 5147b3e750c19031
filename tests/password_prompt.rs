//! The password prompt of `taskfarm` on a real terminal (a pseudo-terminal
//! that the test opens, the tool's controlling terminal), against the real
//! server: echo is off at the moment the prompt appears — the test reads the
//! terminal's settings right then — so a password typed as soon as the prompt
//! shows never reaches the screen; Enter, Ctrl-C and end of input all leave
//! the terminal as it was.
//!
//! The typing side never waits a fixed time: it types as soon as the prompt
//! has arrived, which is exactly the moment that used to race.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::server::TaskfarmServer;
use taskfarm_worker::internal::{Run, Settings};

/// How long any one step may take on a loaded machine before the test fails.
const STEP: Duration = Duration::from_secs(60);

/// `taskfarm -l` with a pseudo-terminal as its controlling terminal.
struct Terminal {
    child: Child,
    /// The test's side: what is written is typed, what is read was shown.
    keyboard: File,
    /// The tool's side, kept open to read the terminal's settings.
    tool_side: File,
    screen: Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

/// The local flags of the terminal's settings now.
fn local_flags(terminal: &File) -> libc::tcflag_t {
    // SAFETY: termios is plain data; tcgetattr fills it or fails.
    let mut settings: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: an open descriptor of the pseudo-terminal, a valid termios.
    let rc = unsafe { libc::tcgetattr(terminal.as_raw_fd(), &mut settings) };
    assert_eq!(rc, 0, "tcgetattr: {}", std::io::Error::last_os_error());
    settings.c_lflag
}

impl Terminal {
    fn open(server: &TaskfarmServer) -> Terminal {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes the two descriptors; the other arguments may be NULL.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors are new and owned by nobody else.
        let (keyboard, tool_side) =
            unsafe { (File::from_raw_fd(master), File::from_raw_fd(slave)) };
        let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TASKFARM_") {
                command.env_remove(name);
            }
        }
        command
            .env("TASKFARM_URL", &server.url)
            .env("TASKFARM_USER", &server.user)
            .arg("-l")
            .stdin(Stdio::from(tool_side.try_clone().unwrap()))
            .stdout(Stdio::from(tool_side.try_clone().unwrap()))
            .stderr(Stdio::from(tool_side.try_clone().unwrap()));
        // SAFETY: setsid and ioctl are async-signal-safe; they make the
        // pseudo-terminal (the child's stdin) its controlling terminal.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("taskfarm starts");
        let mut reader = keyboard.try_clone().unwrap();
        let (send, screen) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // Ends with EIO once no process has the tool's side open.
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                if send.send(buffer[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Terminal {
            child,
            keyboard,
            tool_side,
            screen,
            seen: Vec::new(),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Reads the screen until `text` is on it.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + STEP;
        while !self.text().contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.screen.recv_timeout(left) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) => panic!("{text:?} never appeared; the screen: {}", self.text()),
            }
        }
    }

    /// Waits for the prompt and checks that echo was already off when it appeared.
    fn wait_for_prompt(&mut self, user: &str) {
        self.wait_for(&format!("taskfarm password for {user}: "));
        let flags = local_flags(&self.tool_side);
        assert_eq!(flags & libc::ECHO, 0, "echo is on while the prompt shows");
    }

    fn type_bytes(&mut self, bytes: &[u8]) {
        self.keyboard.write_all(bytes).unwrap();
        self.keyboard.flush().unwrap();
    }

    /// Waits for the tool to end, checks that it left the terminal's echo,
    /// line editing and signals on, and returns the exit status with
    /// everything the screen showed.
    fn finish(mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            match self.screen.recv_timeout(Duration::from_millis(100)) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) if start.elapsed() < STEP => {}
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("taskfarm hangs; the screen: {}", self.text());
                }
            }
        };
        let flags = local_flags(&self.tool_side);
        for (flag, name) in [
            (libc::ECHO, "echo"),
            (libc::ICANON, "icanon"),
            (libc::ISIG, "isig"),
            (libc::IEXTEN, "iexten"),
        ] {
            assert_ne!(
                flags & flag,
                0,
                "{name} is not restored; the screen: {}",
                self.text()
            );
        }
        // The last holder of the tool's side closes it: the reader sees the end.
        drop(self.tool_side);
        while let Ok(chunk) = self.screen.recv_timeout(STEP) {
            self.seen.extend(chunk);
        }
        drop(self.keyboard);
        (status, String::from_utf8_lossy(&self.seen).into_owned())
    }
}

fn new_run(server: &TaskfarmServer) -> Run {
    let settings = Settings::resolve(
        Some(&server.user),
        Some(&server.password),
        Some(&server.url),
    )
    .unwrap();
    Run::create(&settings, 2).unwrap()
}

#[test]
fn a_password_typed_the_moment_the_prompt_shows_is_never_echoed() {
    let server = TaskfarmServer::shared();
    let run = new_run(server);
    let mut terminal = Terminal::open(server);
    terminal.wait_for_prompt(&server.user);
    terminal.type_bytes(format!("{}\r", server.password).as_bytes());
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(screen.contains(&format!(" {} 2", run.uuid())), "{screen}");
    assert!(
        !screen.contains(&server.password),
        "the password was echoed: {screen}"
    );
}

#[test]
fn ctrl_c_at_the_prompt_ends_with_130_and_restores_the_terminal() {
    let server = TaskfarmServer::shared();
    let mut terminal = Terminal::open(server);
    terminal.wait_for_prompt(&server.user);
    terminal.type_bytes(b"half-typ\x03");
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(130), "{screen}");
    assert!(screen.contains("taskfarm: interrupted"), "{screen}");
    assert!(!screen.contains("half-typ"), "echoed: {screen}");
}

#[test]
fn end_of_input_at_the_prompt_is_a_local_failure_and_restores_the_terminal() {
    let server = TaskfarmServer::shared();
    let mut terminal = Terminal::open(server);
    terminal.wait_for_prompt(&server.user);
    terminal.type_bytes(b"\x04");
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(1), "{screen}");
    assert!(
        screen.contains("taskfarm: no password: the input ended at the prompt"),
        "{screen}"
    );
}
