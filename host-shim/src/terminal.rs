//! The terminal host-shim runs in, for `attach`: its size, and raw mode
//! with its modes put back on every way out.
//!
//! The modes are kept in a process-wide slot rather than only in the
//! guard, because not every way out runs destructors: the third signal
//! exits on the spot and a panic on another thread never unwinds the
//! guard's. Each of those calls [`restore`] itself.

use std::io;
use std::os::fd::RawFd;
use std::sync::Mutex;

use portable_pty::PtySize;

/// The terminal's modes before raw mode, and its descriptor.
static SAVED: Mutex<Option<(RawFd, libc::termios)>> = Mutex::new(None);

/// Raw mode on a terminal, until dropped (or [`restore`]d).
pub struct RawMode(());

impl RawMode {
    /// Puts the terminal on `fd` in raw mode: no echo, no line editing,
    /// no signals from Ctrl-C or Ctrl-Z, no output processing. Every byte
    /// typed is read as it is, for the pane to interpret.
    pub fn enter(fd: RawFd) -> io::Result<RawMode> {
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        let mut original: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a termios we own.
        if unsafe { libc::tcgetattr(fd, &mut original) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = original;
        // SAFETY: cfmakeraw only edits the struct it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        {
            let mut saved = SAVED.lock().unwrap_or_else(|p| p.into_inner());
            *saved = Some((fd, original));
        }
        // TCSANOW: what was typed ahead is kept for the pane.
        // SAFETY: a valid pointer to a termios we own.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            let err = io::Error::last_os_error();
            restore();
            return Err(err);
        }
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts back the modes raw mode replaced, once; does nothing otherwise.
/// A terminal that is gone (closed, hung up) has nothing to put back.
pub fn restore() {
    let saved = SAVED.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some((fd, original)) = saved {
        // TCSADRAIN: the pane's last output is written in raw mode first.
        // SAFETY: a valid pointer to the termios saved by `enter`.
        unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, &original) };
    }
}

/// Restores the terminal before any panic message, on any thread, then
/// reports the panic as before.
pub fn restore_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// The size of the terminal on `fd`, if it is one and knows its size.
pub fn size(fd: RawFd) -> Option<PtySize> {
    // SAFETY: winsize is plain data; the ioctl fills it or fails.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize through a valid pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } != 0 {
        return None;
    }
    // 0x0: a terminal nobody sized (some pipes of terminals report it).
    (size.ws_row > 0 && size.ws_col > 0).then_some(PtySize {
        rows: size.ws_row,
        cols: size.ws_col,
        pixel_width: size.ws_xpixel,
        pixel_height: size.ws_ypixel,
    })
}

/// Gives the terminal on `fd` (a pane's PTY) `size`; the kernel then
/// sends SIGWINCH to the pane's foreground processes.
pub fn set_size(fd: RawFd, size: PtySize) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: size.pixel_width,
        ws_ypixel: size.pixel_height,
    };
    // SAFETY: TIOCSWINSZ reads one winsize through a valid pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
