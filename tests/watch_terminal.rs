//! `taskfarm watch` on a terminal (a pseudo-terminal of 80, then 110
//! columns, the tool's stdout), against the real server: the bar is drawn
//! with room to fill (it was empty at 80 columns, the text beside it taking
//! the whole line), what the terminal shows at the end is the bar and the
//! whole line of counts below it (the line used to wrap, leaving pieces of
//! earlier frames; the output is replayed on a model of the terminal), and
//! the bar keeps one width from frame to frame (it jittered with the length
//! of the text beside it). A worker works through the run
//! meanwhile; the test waits for what the screen shows, never for a time.

mod common;

use std::fs::File;
use std::io::Read;
use std::os::fd::FromRawFd;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::server::TaskfarmServer;
use taskfarm_worker::internal::{Run, Worker};

/// How long any one step may take on a loaded machine before the test fails.
const STEP: Duration = Duration::from_secs(60);

/// Text without its ANSI escape sequences (CSI `ESC [ ... letter`).
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Runs `taskfarm watch` on a pseudo-terminal of `columns` while a worker
/// completes a run of 3 tasks; returns what the screen showed.
fn watch_on_a_terminal(server: &TaskfarmServer, columns: u16) -> String {
    let run = std::sync::Arc::new(Run::create(&server.settings(), 3).unwrap());
    let size = libc::winsize {
        ws_row: 24,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let (mut screen_side, mut tool_side) = (-1, -1);
    // SAFETY: openpty writes the two descriptors; size is read, the name may be NULL.
    let rc = unsafe {
        libc::openpty(
            &mut screen_side,
            &mut tool_side,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned by nobody else.
    let (screen, tool) = unsafe { (File::from_raw_fd(screen_side), File::from_raw_fd(tool_side)) };
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskfarm"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TASKFARM_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .env("TASKFARM_URL", &server.url)
        .env("TASKFARM_USER", &server.user)
        .env("TASKFARM_PASSWORD", &server.password)
        .env_remove("COLUMNS")
        .env("TERM", "xterm")
        .args(["watch", run.uuid(), "-n", "0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(tool.try_clone().unwrap()))
        .stderr(Stdio::from(tool))
        .spawn()
        .expect("taskfarm starts");
    let mut reader = screen;
    let (send, chunks) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        // Ends with EIO once no process has the tool's side open.
        while let Ok(n @ 1..) = reader.read(&mut buffer) {
            if send.send(buffer[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let wait_for = |text: &str, seen: &mut Vec<u8>| {
        let deadline = Instant::now() + STEP;
        while !plain(&String::from_utf8_lossy(seen)).contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match chunks.recv_timeout(left) {
                Ok(chunk) => seen.extend(chunk),
                Err(_) => panic!(
                    "{text:?} never appeared; the screen: {}",
                    String::from_utf8_lossy(seen)
                ),
            }
        }
    };
    wait_for("not started 3", &mut seen);
    let mut worker = Worker::register(run.clone()).unwrap();
    while worker.task().unwrap().is_some() {
        worker.update(50.0).unwrap();
        wait_for("computing 1", &mut seen);
        worker.update(100.0).unwrap();
        worker.done().unwrap();
    }
    wait_for("complete", &mut seen);
    let deadline = Instant::now() + STEP;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "watch did not end at 100 %");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    while let Ok(chunk) = chunks.recv_timeout(Duration::from_millis(200)) {
        seen.extend(chunk);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// What a terminal of `columns` × 24 shows after `output`: printable
/// characters at the cursor, wrapping at the last column (as a terminal
/// does), `\r`, `\n`, cursor up and down (`ESC [ n A`, `ESC [ n B`), erase
/// line (`ESC [ 2K`, `ESC [ K`); other sequences (colours) change nothing.
fn screen_after(output: &str, columns: usize) -> Vec<String> {
    const ROWS: usize = 24;
    let mut grid = vec![vec![' '; columns]; ROWS];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = output.chars().peekable();
    let next_row = |grid: &mut Vec<Vec<char>>, row: &mut usize| {
        if *row + 1 == ROWS {
            grid.remove(0);
            grid.push(vec![' '; columns]);
        } else {
            *row += 1;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => next_row(&mut grid, &mut row),
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut arg = String::new();
                let mut command = ' ';
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        command = d;
                        break;
                    }
                    arg.push(d);
                }
                let n: usize = arg.parse().unwrap_or(1);
                match command {
                    'A' => row = row.saturating_sub(n),
                    'B' => row = (row + n).min(ROWS - 1),
                    'K' if arg == "2" => grid[row] = vec![' '; columns],
                    'K' => grid[row][col.min(columns)..].fill(' '),
                    _ => {}
                }
            }
            c if !c.is_control() => {
                if col == columns {
                    col = 0;
                    next_row(&mut grid, &mut row);
                }
                grid[row][col] = c;
                col += 1;
            }
            _ => {}
        }
    }
    grid.into_iter()
        .map(|r| r.into_iter().collect::<String>().trim_end().to_owned())
        .collect()
}

#[test]
fn the_bar_fills_fits_the_terminal_and_keeps_its_width() {
    let server = TaskfarmServer::shared();
    for columns in [80usize, 110] {
        let screen = watch_on_a_terminal(server, columns as u16);
        if std::env::var_os("DUMP").is_some() {
            eprintln!("{screen:?}");
        }
        // At the end the terminal shows the bar and, below it, the whole
        // line of counts: nothing wrapped, nothing left of earlier frames.
        let rows: Vec<String> = screen_after(&screen, columns)
            .into_iter()
            .filter(|r| !r.is_empty())
            .collect();
        assert_eq!(rows.len(), 2, "{columns} columns: the screen: {rows:#?}");
        assert!(
            rows[0].contains(" [") && rows[0].ends_with("] 100.0 %"),
            "{rows:#?}"
        );
        assert!(
            rows[1].trim_start().starts_with("not started 0  waiting 0")
                && rows[1].ends_with("complete"),
            "{columns} columns: {rows:#?}"
        );
        // Every frame's bar: what is between ` [` and `] `.
        let text = plain(&screen);
        let bars: Vec<&str> = text
            .split(['\r', '\n'])
            .filter_map(|l| Some(&l[l.find(" [")? + 2..l.rfind("] ")?]))
            .collect();
        assert!(bars.len() >= 2, "{columns} columns: frames: {text:?}");
        let width = bars[0].chars().count();
        assert!(
            width >= columns / 2,
            "{columns} columns: a bar of {width}: {bars:?}"
        );
        assert!(
            bars.iter().all(|b| b.chars().count() == width),
            "{columns} columns: the bar's width changes: {bars:?}"
        );
        assert!(
            bars.last().unwrap().chars().all(|c| c == '='),
            "{columns} columns: full at the end: {bars:?}"
        );
    }
}
