//! Whether a pane's process has gone, for panes closed while it may still
//! run: their dir is removed only once nothing can write to it any more.

/// True if process `pid` no longer exists or is a zombie (it has exited and
/// only waits to be reaped, so it writes nothing). Errors count as "still
/// running": keeping a dir is always the safe mistake.
#[cfg(target_os = "linux")]
pub(crate) fn process_is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(err) => err.kind() == std::io::ErrorKind::NotFound,
        // `pid (comm) state ...`: comm may contain spaces and parentheses,
        // so the state is the first field after the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn process_is_gone(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    !alive && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}
