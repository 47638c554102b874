//! One pane's process: spawned in its own PTY, its output copied to stdout
//! (line by line as `[PANE-ID] line` for `run`, byte for byte for
//! `attach`), its exit turned into a [`PaneExit`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ccmux_plugin_api::{EnvVar, PaneExit};
use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtyPair, PtySize};

/// What a pane runs, with the environment the plugins produced.
pub struct PaneCommand<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub cwd: &'a Path,
    /// The whole environment: nothing of host-shim's own is added.
    pub env: &'a [EnvVar],
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot open a pseudo-terminal: {0}")]
    Pty(String),
    #[error("cannot start `{program}`: {detail}; check the command, and that the PATH the plugins left finds it")]
    Spawn { program: String, detail: String },
    #[error("cannot start the output reader: {0}")]
    Reader(io::Error),
    #[error("cannot attach the pane to this terminal: {0}")]
    Terminal(io::Error),
}

/// How long a pane's terminal may stay open after its process exited,
/// before what the process left running there is hung up, then killed,
/// then given up on. The first step is the longest: normally the output is
/// drained within milliseconds, so only stragglers wait it out.
const OUTPUT_PATIENCE: [(Option<libc::c_int>, Duration); 3] = [
    (None, Duration::from_secs(2)),
    (Some(libc::SIGHUP), Duration::from_secs(1)),
    (Some(libc::SIGKILL), Duration::from_secs(1)),
];

/// How a pane's output reaches stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Line by line, each prefixed `[PANE-ID] `: several panes share stdout.
    Prefixed,
    /// Every byte as it comes, unbuffered: stdout is the pane's terminal.
    Raw,
}

/// The size of a new pane's terminal when nothing says otherwise.
pub const DEFAULT_SIZE: PtySize = PtySize {
    rows: 24,
    cols: 80,
    pixel_width: 0,
    pixel_height: 0,
};

/// A running pane process and the thread copying its output.
pub struct PaneProcess {
    pane_id: String,
    child: Box<dyn Child + Send + Sync>,
    pid: Option<u32>,
    /// The pane's end of the terminal, held for as long as the pane runs,
    /// as a server holds it to resize the pane and type into it.
    master: Box<dyn MasterPty + Send>,
    output: OutputPump,
}

impl PaneProcess {
    /// Spawns `command` in a new PTY of `size` and starts copying its
    /// output as `output` says.
    pub fn spawn(
        pane_id: &str,
        command: &PaneCommand<'_>,
        size: PtySize,
        output: Output,
    ) -> Result<Self, SpawnError> {
        let PtyPair { slave, master } = native_pty_system()
            .openpty(size)
            .map_err(|err| SpawnError::Pty(format!("{err:#}")))?;
        let reader = master
            .try_clone_reader()
            .map_err(|err| SpawnError::Pty(format!("{err:#}")))?;

        let mut builder = CommandBuilder::new(command.program);
        builder.args(command.args);
        builder.cwd(command.cwd);
        // The hooks' result is the whole environment: plugins may have
        // removed variables, so host-shim's own must not leak back in.
        // (portable-pty still sets SHELL when the final env has none.)
        builder.env_clear();
        for var in command.env {
            builder.env(var.key.as_str(), var.value.as_str());
        }
        let mut child = slave
            .spawn_command(builder)
            .map_err(|err| SpawnError::Spawn {
                program: command.program.to_string(),
                // One line, so all of it stays behind the pane's prefix.
                detail: format!("{err:#}").replace('\n', " "),
            })?;
        // Our copy of the slave must be closed, or the master never reports
        // the end of the output once the process and its children are gone.
        drop(slave);
        let pid = child.process_id();

        let output = match OutputPump::start(pane_id, reader, output) {
            Ok(output) => output,
            Err(err) => {
                // Unwatched, the process would write into a terminal nobody
                // reads; end it rather than leave it blocked forever.
                let _ = child.kill();
                let _ = child.wait();
                return Err(SpawnError::Reader(err));
            }
        };
        Ok(PaneProcess {
            pane_id: pane_id.to_string(),
            child,
            pid,
            master,
            output,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// A second handle on the pane's end of the terminal, to type into it
    /// and resize it from other threads. (portable-pty's own writer sends
    /// an end-of-file when dropped, which the pane must not see.)
    pub fn terminal(&self) -> io::Result<File> {
        let fd = self
            .master
            .as_raw_fd()
            .ok_or_else(|| io::Error::other("the pane's terminal has no file descriptor"))?;
        // SAFETY: the master is open for as long as `self` lives, and the
        // borrow ends with this statement, after the dup.
        let owned: OwnedFd = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
        Ok(File::from(owned))
    }

    /// Waits for the process to exit and says how it ended.
    pub fn wait(&mut self) -> PaneExit {
        let exit = match wait_for_exit(&mut *self.child) {
            Ok(exit) => exit,
            Err(err) => {
                tracing::warn!(pane = %self.pane_id, "cannot read the exit status of the pane's process: {err}");
                // Unreadable is not gone: plugins may wait for the pid.
                PaneExit::unknown(false)
            }
        };
        match self.pid {
            Some(pid) => exit.with_pid(pid),
            None => exit,
        }
    }

    /// Waits until the output is copied to its end; call after
    /// [`wait`](Self::wait). Processes the command left running in the
    /// terminal keep it open, so they are hung up, then killed, and in the
    /// end (say they left the pane's process group) the rest of the output
    /// is given up on rather than the pane never closing.
    pub fn finish_output(self) {
        for (signal, patience) in OUTPUT_PATIENCE {
            if let (Some(signal), Some(pid)) = (signal, self.pid) {
                tracing::debug!(pane = %self.pane_id, signal, "the pane's terminal is still open after its process exited; signalling what is left in it");
                signal_process_group(pid, signal);
            }
            match self.output.finished.recv_timeout(patience) {
                Err(RecvTimeoutError::Timeout) => continue,
                // The pump drops its sender when it ends.
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.output.thread.join();
                    return;
                }
            }
        }
        tracing::warn!(
            pane = %self.pane_id,
            "processes started in the pane still hold its terminal open; closing the pane without the rest of their output"
        );
    }
}

/// Sends `signal` to the process group `pid` leads. A pane's process leads
/// a session of its own (portable-pty calls setsid), so its group holds
/// what it runs in the foreground, which a pane close must reach too.
pub fn signal_process_group(pid: u32, signal: libc::c_int) {
    // -1 and 0 would mean every process, or our own group: never those.
    let Some(group) = libc::pid_t::try_from(pid).ok().filter(|&pid| pid > 1) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(-group, signal) } != 0 {
        // ESRCH: the group is already gone, which is what we wanted.
        let err = io::Error::last_os_error();
        tracing::debug!(pid, signal, "kill of process group failed: {err}");
    }
}

fn wait_for_exit(child: &mut (dyn Child + Send + Sync)) -> io::Result<PaneExit> {
    let child: &mut dyn Child = child;
    // portable-pty's ExitStatus names a signal only by its description,
    // but plugins are given its number: std's status for the process that
    // native_pty_system spawns on Unix has it.
    if let Some(process) = child.downcast_mut::<std::process::Child>() {
        let status = process.wait()?;
        return Ok(match (status.signal(), status.code()) {
            (Some(signal), _) => PaneExit::signaled(signal),
            (None, Some(code)) => PaneExit::exited(code),
            (None, None) => PaneExit::unknown(true),
        });
    }
    let status = child.wait()?;
    Ok(match status.signal() {
        Some(_) => PaneExit::unknown(true),
        None => PaneExit::exited(i32::try_from(status.exit_code()).unwrap_or(i32::MAX)),
    })
}

/// The thread copying a pane's terminal output to stdout.
struct OutputPump {
    thread: JoinHandle<()>,
    /// Disconnected when the pump has written the last line.
    finished: mpsc::Receiver<()>,
}

impl OutputPump {
    fn start(pane_id: &str, reader: Box<dyn Read + Send>, output: Output) -> io::Result<Self> {
        let (done, finished) = mpsc::channel();
        let prefix = format!("[{pane_id}] ");
        let thread = thread::Builder::new()
            .name(format!("output {pane_id}"))
            .spawn(move || {
                match output {
                    Output::Prefixed => copy_lines(reader, |line| print_line(&prefix, line)),
                    Output::Raw => copy_raw(reader, io::stdout()),
                }
                drop(done);
            })?;
        Ok(OutputPump { thread, finished })
    }
}

/// Copies `reader` to `out` read by read, flushing each, until the reader
/// ends. A failing `out` (the terminal went away) does not stop the
/// reading: the pane would block on a full terminal and never exit.
fn copy_raw(mut reader: impl Read, mut out: impl Write) {
    let mut buffer = [0u8; 8192];
    let mut writable = true;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                if writable {
                    writable = out
                        .write_all(&buffer[..read])
                        .and_then(|()| out.flush())
                        .is_ok();
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.raw_os_error() == Some(libc::EIO) => break,
            Err(err) => {
                tracing::warn!("cannot read the pane's terminal: {err}");
                break;
            }
        }
    }
}

/// Hands each line of `reader` to `emit`, without its line ending, until
/// the reader ends; a last line without a newline is handed over too.
fn copy_lines(mut reader: impl Read, mut emit: impl FnMut(&[u8])) {
    let mut pending = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                pending.extend_from_slice(&buffer[..read]);
                let mut start = 0;
                while let Some(newline) = pending[start..].iter().position(|&b| b == b'\n') {
                    // The terminal turns every "\n" into "\r\n".
                    let line = &pending[start..start + newline];
                    emit(line.strip_suffix(b"\r").unwrap_or(line));
                    start += newline + 1;
                }
                pending.drain(..start);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // Linux reports EIO, not end of file, on a PTY master once every
            // slave is closed; the data written before is read first.
            Err(err) if err.raw_os_error() == Some(libc::EIO) => break,
            Err(err) => {
                tracing::warn!("cannot read a pane's terminal: {err}");
                break;
            }
        }
    }
    if !pending.is_empty() {
        emit(pending.strip_suffix(b"\r").unwrap_or(&pending));
    }
}

/// Writes `{prefix}{line}` to stdout, whole, under the stdout lock.
fn print_line(prefix: &str, line: &[u8]) {
    let mut stdout = io::stdout().lock();
    // A closed stdout must not stop the copy: the process would block on a
    // full terminal and never exit.
    let _ =
        writeln!(stdout, "{prefix}{}", String::from_utf8_lossy(line)).and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its chunks one read at a time, then fails like a Linux
    /// PTY master whose slaves are all closed.
    struct PtyLike(Vec<&'static [u8]>);

    impl Read for PtyLike {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            let chunk = self.0.remove(0);
            buf[..chunk.len()].copy_from_slice(chunk);
            Ok(chunk.len())
        }
    }

    fn lines(chunks: Vec<&'static [u8]>) -> Vec<String> {
        let mut lines = Vec::new();
        copy_lines(PtyLike(chunks), |line| {
            lines.push(String::from_utf8_lossy(line).into_owned())
        });
        lines
    }

    #[test]
    fn lines_are_split_across_reads_and_lose_their_carriage_return() {
        assert_eq!(
            lines(vec![b"one\r\ntw", b"o\r", b"\n\r\nthree\r\n"]),
            ["one", "two", "", "three"]
        );
    }

    #[test]
    fn eio_ends_the_output_and_a_last_partial_line_is_kept() {
        assert_eq!(lines(vec![b"done\r\nno newline"]), ["done", "no newline"]);
        assert!(lines(vec![]).is_empty());
    }

    #[test]
    fn raw_output_is_copied_byte_for_byte() {
        let mut out = Vec::new();
        copy_raw(PtyLike(vec![b"\x1b[2Jone\r\n", b"tw", b"o\xff"]), &mut out);
        assert_eq!(out, b"\x1b[2Jone\r\ntwo\xff");
    }

    #[test]
    fn invalid_utf8_does_not_stop_the_copy() {
        assert_eq!(lines(vec![b"a\xffb\nnext\n"]), ["a\u{fffd}b", "next"]);
    }
}
