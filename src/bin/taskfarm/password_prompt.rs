//! Asking for the password on the terminal without echo.
//!
//! The order matters (glibc's `getpass` and Python's `getpass` keep it):
//! echo goes off first, then the prompt is shown, so that nothing typed as
//! soon as the prompt appears can reach the screen. The terminal is put in
//! non-canonical mode without signals for the prompt, so that Ctrl-C and
//! Ctrl-D arrive as bytes and are handled here: the terminal's settings are
//! restored on every way out (Enter, Ctrl-C, end of input, a read error) by
//! the guard's `Drop`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// How asking for the password ended without a password.
#[derive(Debug)]
pub enum PromptError {
    /// Ctrl-C (the terminal's interrupt character) was typed.
    Interrupted,
    /// End of input (Ctrl-D on an empty line, or the terminal went away).
    EndOfInput,
    /// The terminal could not be opened, set up or read.
    Io(io::Error),
    /// What was typed is not valid UTF-8.
    NotUtf8,
}

impl From<io::Error> for PromptError {
    fn from(error: io::Error) -> PromptError {
        PromptError::Io(error)
    }
}

/// Shows `prompt` on the controlling terminal (`/dev/tty`) with echo off and
/// reads one line from it: the password, without the line end.
pub fn read_password(prompt: &str) -> Result<String, PromptError> {
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open("/dev/tty")?;
    let quiet = QuietTerminal::enter(&tty)?;
    let mut terminal = &tty;
    terminal.write_all(prompt.as_bytes())?;
    terminal.flush()?;
    let line = read_line(terminal, &quiet.special);
    // Echo was off: the Enter did not move the cursor to the next line.
    let _ = terminal.write_all(b"\n");
    drop(quiet);
    let bytes = line?;
    String::from_utf8(bytes).map_err(|_| PromptError::NotUtf8)
}

/// The control characters of the terminal that the line editing here honours.
struct SpecialCharacters {
    interrupt: u8,
    end_of_file: u8,
    erase: u8,
    kill: u8,
}

/// The terminal with echo, canonical mode and signals off; restores the
/// settings it found when dropped.
struct QuietTerminal<'a> {
    tty: &'a File,
    saved: libc::termios,
    special: SpecialCharacters,
}

impl<'a> QuietTerminal<'a> {
    fn enter(tty: &'a File) -> io::Result<QuietTerminal<'a>> {
        let fd = tty.as_raw_fd();
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is an open file descriptor of `tty`; `saved` is valid.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut quiet = saved;
        quiet.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::ISIG | libc::IEXTEN);
        quiet.c_cc[libc::VMIN] = 1;
        quiet.c_cc[libc::VTIME] = 0;
        // TCSAFLUSH: what was typed before the prompt is dropped, as getpass does.
        // SAFETY: as above; `quiet` is a valid termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let special = SpecialCharacters {
            interrupt: saved.c_cc[libc::VINTR],
            end_of_file: saved.c_cc[libc::VEOF],
            erase: saved.c_cc[libc::VERASE],
            kill: saved.c_cc[libc::VKILL],
        };
        Ok(QuietTerminal {
            tty,
            saved,
            special,
        })
    }
}

impl Drop for QuietTerminal<'_> {
    fn drop(&mut self) {
        // SAFETY: the descriptor is still open (`tty` outlives the guard);
        // `saved` is what tcgetattr returned.
        unsafe { libc::tcsetattr(self.tty.as_raw_fd(), libc::TCSAFLUSH, &self.saved) };
    }
}

/// Reads bytes up to Enter, with the erase and kill characters applied.
fn read_line(mut tty: &File, special: &SpecialCharacters) -> Result<Vec<u8>, PromptError> {
    let mut line = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        match tty.read(&mut byte) {
            Ok(0) => return Err(PromptError::EndOfInput),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PromptError::Io(e)),
        }
        match edit(&mut line, byte[0], special) {
            Edit::Continue => {}
            Edit::Finished => return Ok(line),
            Edit::Stop(why) => return Err(why),
        }
    }
}

/// What one typed byte does to the line.
enum Edit {
    Continue,
    Finished,
    Stop(PromptError),
}

fn edit(line: &mut Vec<u8>, byte: u8, special: &SpecialCharacters) -> Edit {
    match byte {
        b'\r' | b'\n' => return Edit::Finished,
        b if b == special.interrupt => return Edit::Stop(PromptError::Interrupted),
        b if b == special.end_of_file => {
            return if line.is_empty() {
                Edit::Stop(PromptError::EndOfInput)
            } else {
                Edit::Finished
            }
        }
        b if b == special.erase || b == 0x08 => {
            // Remove one character: its UTF-8 continuation bytes too.
            while let Some(last) = line.pop() {
                if last & 0xC0 != 0x80 {
                    break;
                }
            }
        }
        b if b == special.kill => line.clear(),
        b => line.push(b),
    }
    Edit::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECIAL: SpecialCharacters = SpecialCharacters {
        interrupt: 0x03,
        end_of_file: 0x04,
        erase: 0x7f,
        kill: 0x15,
    };

    fn typed(bytes: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut line = Vec::new();
        for &b in bytes {
            match edit(&mut line, b, &SPECIAL) {
                Edit::Continue => {}
                Edit::Finished => return Ok(line),
                Edit::Stop(PromptError::Interrupted) => return Err("interrupted"),
                Edit::Stop(PromptError::EndOfInput) => return Err("end of input"),
                Edit::Stop(_) => return Err("other"),
            }
        }
        Err("no line end")
    }

    #[test]
    fn a_line_ends_at_enter_either_way() {
        assert_eq!(typed(b"secret\n"), Ok(b"secret".to_vec()));
        assert_eq!(typed(b"secret\rrest"), Ok(b"secret".to_vec()));
        assert_eq!(typed(b"\n"), Ok(Vec::new()));
    }

    #[test]
    fn erase_removes_a_whole_character_and_kill_the_line() {
        assert_eq!(typed(b"sec\x7fcret\n"), Ok(b"secret".to_vec()));
        assert_eq!(typed(b"x\x08\n"), Ok(Vec::new()));
        assert_eq!(typed("pé\x7fe\n".as_bytes()), Ok(b"pe".to_vec()));
        assert_eq!(typed(b"\x7f\x7fok\n"), Ok(b"ok".to_vec()));
        assert_eq!(typed(b"wrong\x15right\n"), Ok(b"right".to_vec()));
    }

    #[test]
    fn ctrl_c_interrupts_and_ctrl_d_ends_input_on_an_empty_line() {
        assert_eq!(typed(b"sec\x03ret\n"), Err("interrupted"));
        assert_eq!(typed(b"\x04"), Err("end of input"));
        assert_eq!(typed(b"secret\x04"), Ok(b"secret".to_vec()));
    }
}
