//! SIGINT and SIGTERM (and for `attach` SIGHUP, the terminal closing) end
//! a run gracefully, as a server that will restore its panes shuts down:
//! the panes' processes are hung up (and killed if they linger), their
//! panes are not closed, and the server still stops.
//!
//! A second signal kills the processes without waiting for the grace
//! period; one more after that exits on the spot (restoring an attached
//! terminal first), which the state dir survives as it survives SIGKILL.

use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use signal_hook::iterator::{Handle, Signals};

use crate::pane::signal_process_group;

/// How long hung-up processes get to exit before they are killed.
const KILL_AFTER: Duration = Duration::from_secs(2);

/// Catches its signals for as long as it lives.
pub struct Shutdown {
    shared: Arc<Shared>,
    handle: Handle,
    watcher: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The first signal received.
    signal: Option<libc::c_int>,
    /// Hanging up is over: processes are killed.
    killing: bool,
    /// The pids of the running pane processes.
    running: BTreeSet<u32>,
}

impl Shutdown {
    /// Catches `signals` from now on; `kept` says what becomes of the
    /// panes, for the message printed when one arrives.
    pub fn install(signals: &[libc::c_int], kept: &'static str) -> io::Result<Self> {
        let mut signals = Signals::new(signals)?;
        let handle = signals.handle();
        let shared = Arc::new(Shared::default());
        let watcher = thread::Builder::new().name("signals".to_string()).spawn({
            let shared = shared.clone();
            move || watch(&mut signals, &shared, kept)
        })?;
        Ok(Shutdown {
            shared,
            handle,
            watcher: Some(watcher),
        })
    }

    /// The signal that asked for the shutdown, if one did.
    pub fn requested(&self) -> Option<libc::c_int> {
        self.shared.lock().signal
    }

    /// The exit status of a run ended by `signal`, as a shell reports it.
    pub fn exit_code(signal: libc::c_int) -> u8 {
        u8::try_from(128 + signal).unwrap_or(u8::MAX)
    }

    /// Makes the process `pid` (and its process group) one a shutdown
    /// ends, until the returned guard is dropped.
    pub fn track(&self, pid: u32) -> Tracked<'_> {
        let mut state = self.shared.lock();
        state.running.insert(pid);
        // Spawned while the shutdown was already under way.
        if state.signal.is_some() {
            signal_process_group(pid, state.current_signal());
        }
        Tracked {
            shutdown: self,
            pid,
        }
    }
}

impl Shutdown {
    /// A way for another thread to end the run as a SIGHUP would, should
    /// no signal have done so yet: for a terminal found closed.
    pub fn hang_up(&self) -> HangUp {
        HangUp {
            shared: self.shared.clone(),
        }
    }
}

/// Ends the run as a SIGHUP does (see [`Shutdown::hang_up`]).
pub struct HangUp {
    shared: Arc<Shared>,
}

impl HangUp {
    pub fn hang_up(&self) {
        // Raised, not begun here, so the watcher does what it does for a
        // real SIGHUP; skipped when a signal came first, which a second one
        // would escalate to killing the pane's processes at once.
        if self.shared.lock().signal.is_none() {
            let _ = signal_hook::low_level::raise(libc::SIGHUP);
        }
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

/// A pane process a shutdown would end.
pub struct Tracked<'a> {
    shutdown: &'a Shutdown,
    pid: u32,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.shutdown.shared.lock().running.remove(&self.pid);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn begin(&self, signal: libc::c_int) {
        let mut state = self.lock();
        state.signal = Some(signal);
        state.signal_all();
    }

    fn escalate(&self) {
        let mut state = self.lock();
        state.killing = true;
        state.signal_all();
    }
}

impl State {
    fn current_signal(&self) -> libc::c_int {
        if self.killing {
            libc::SIGKILL
        } else {
            libc::SIGHUP
        }
    }

    fn signal_all(&self) {
        for &pid in &self.running {
            signal_process_group(pid, self.current_signal());
        }
    }
}

fn watch(signals: &mut Signals, shared: &Shared, kept: &str) {
    // None: the handle was closed, the run ended without a signal.
    let Some(signal) = signals.forever().next() else {
        return;
    };
    let name = signal_hook::low_level::signal_name(signal).unwrap_or("a signal");
    // "\r\n": an attached terminal may be in raw mode right now.
    {
        use std::io::Write as _;
        let _ = write!(
            std::io::stderr(),
            "host-shim: {name}: ending the panes' processes and stopping the server; {kept}\r\n"
        );
    }
    shared.begin(signal);

    let deadline = Instant::now() + KILL_AFTER;
    while Instant::now() < deadline {
        if signals.is_closed() {
            return;
        }
        if signals.pending().next().is_some() {
            // Signalled again: do not wait for the grace period.
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    shared.escalate();

    if signals.forever().next().is_some() {
        // Something (a plugin hook, most likely) still blocks the stop.
        // exit() runs no destructors: put an attached terminal back first.
        crate::terminal::restore();
        say!("host-shim: signalled again; exiting without waiting for the plugins");
        std::process::exit(i32::from(Shutdown::exit_code(signal)));
    }
}
