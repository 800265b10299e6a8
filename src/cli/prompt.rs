//! Reading a password: one line from standard input, or typed at a terminal without echo.

use std::io::{BufRead, IsTerminal, Read, Write};

use crate::people::{Password, PeopleError};

/// Longest line read as a password from a pipe: an unending stream is refused, not buffered.
const MAX_LINE: u64 = 4096;

/// A password for `who`: typed twice at a terminal (a typo cannot lock anyone out), else the
/// first line of standard input (`echo "$PASS" | mailrules user add …`, a file, a secret store).
pub fn password(who: &str) -> anyhow::Result<Password> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = Vec::new();
        stdin.lock().take(MAX_LINE).read_until(b'\n', &mut line)?;
        return Ok(Password::from_line(whole(line)?)?);
    }
    let first = Password::from_line(read_hidden(&format!("password for {who}: "))?)?;
    let again = Password::from_line(read_hidden("the same password again: ")?)?;
    if first.expose() != again.expose() {
        return Err(PeopleError::PasswordsDiffer.into());
    }
    Ok(first)
}

/// Shows `prompt` on stderr and reads one line from the terminal on stdin with echo off.
/// Echo comes back when the line is read, on an error too (the guard restores it).
fn read_hidden(prompt: &str) -> anyhow::Result<Vec<u8>> {
    let _quiet = EchoOff::new()?;
    let mut stderr = std::io::stderr();
    stderr.write_all(prompt.as_bytes())?;
    stderr.flush()?;
    let mut line = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)?;
    whole(line)
}

/// Refuses a line cut at [`MAX_LINE`]: a password silently shortened would not be the one
/// its owner types later.
fn whole(line: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    if line.len() as u64 >= MAX_LINE && !line.ends_with(b"\n") {
        anyhow::bail!("the password is too long (at most {} bytes)", MAX_LINE - 1);
    }
    Ok(line)
}

/// The terminal on stdin with echo off (but the newline still echoed, so the next prompt
/// starts on its own line) while this lives.
struct EchoOff {
    saved: libc::termios,
}

impl EchoOff {
    fn new() -> std::io::Result<EchoOff> {
        // SAFETY: termios is plain data, filled in by tcgetattr before it is read.
        let mut term: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 and a valid pointer to a termios.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut term) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let saved = term;
        term.c_lflag &= !libc::ECHO;
        term.c_lflag |= libc::ECHONL;
        // SAFETY: as above.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &term) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `new` on the same fd.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved) };
    }
}
