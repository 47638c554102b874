//! RemovalQueue: removes the dirs of closed panes after a grace period, on
//! one background thread, so closing a pane never waits on the disk.
//!
//! Why a grace period: a pane is often closed and re-created with the same
//! id moments later (a client reconnecting, a layout being restored).
//! Re-creating it before its deadline cancels the removal, and the new
//! pane finds its Claude history intact.
//!
//! Why one worker with a deadline map and not a thread (or timer) per pane:
//! closing a hundred panes at once must not start a hundred threads, and
//! `flush` (at server stop) needs every pending removal in one place.
//!
//! A removal never deletes a dir claimed again since it was scheduled: it
//! carries the claim token of the pane it was scheduled for and checks it
//! against `.pane-metadata` right before deleting.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ccmux_plugin_api::{HookError, HookErrorKind};

use crate::floor::process::process_is_gone;
use crate::pane_dirs::pane_dir::{BeforeRemoval, PaneDir};

/// How often a removal that waits for a process checks on it.
const PROCESS_POLL: Duration = Duration::from_millis(100);

/// One pane dir to remove.
#[derive(Debug, Clone)]
pub(crate) struct Removal {
    pub pane: PaneDir,
    /// The server identity the dir must belong to; checked again right
    /// before removing, so a dir claimed by someone else meanwhile is kept.
    pub owner: String,
    /// The claim token the pane's metadata had when it closed; checked
    /// again right before removing, so a dir re-claimed meanwhile (by
    /// another plugin instance of the same server) is kept.
    pub claim: String,
    /// `Some(pid)`: the pane's process may still run. The dir is removed as
    /// soon as it has gone, or kept (with a warning) if it outlives the
    /// deadline; the next server start then cleans it as an orphan.
    pub wait_for: Option<u32>,
    /// What the pane hands to the user before its dir is removed.
    pub handover: Arc<dyn BeforeRemoval>,
}

impl Removal {
    /// Removes the dir now, unless the process it waits for still runs or
    /// the dir is no longer this owner's. Returns whether it was removed.
    pub(crate) fn try_run(&self) -> Result<bool, HookError> {
        if let Some(pid) = self.wait_for {
            if !process_is_gone(pid) {
                tracing::warn!(
                    pane = %self.pane.id(),
                    path = %self.pane.root().display(),
                    pid,
                    "keeping the dir of a closed pane: its process is still running; the next server start removes it"
                );
                return Ok(false);
            }
        }
        let reason = match self.wait_for {
            Some(_) => "pane closed and its process has exited",
            None => "pane closed and its grace period is over",
        };
        self.pane
            .remove_if_claimed(&self.owner, &self.claim, reason, Some(&*self.handover))
    }

    /// [`try_run`](Self::try_run) where errors can only be logged (there is
    /// no caller left to report them to), and where a panic must not escape:
    /// it would kill the worker, or leave the flushing hook half done.
    fn run(&self) {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            test_hooks::maybe_panic(self.pane.root());
            self.try_run()
        }));
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::warn!(pane = %self.pane.id(), "could not remove the dir of a closed pane: {err}");
            }
            Err(payload) => tracing::error!(
                pane = %self.pane.id(),
                path = %self.pane.root().display(),
                "bug: removing the dir of a closed pane panicked: {}; the dir is left for the next server start",
                panic_message(&*payload)
            ),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "non-string panic payload"
    }
}

struct Pending {
    removal: Removal,
    deadline: Instant,
}

#[derive(Default)]
struct Queue {
    pending: HashMap<String, Pending>,
    /// Pane ids being removed right now, outside the lock.
    running: HashSet<String>,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled whenever the queue changes or a removal finishes.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic elsewhere while holding the lock leaves the map usable.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        self.changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn finished(&self, ids: &[String]) {
        let mut queue = self.lock();
        for id in ids {
            queue.running.remove(id);
        }
        drop(queue);
        self.changed.notify_all();
    }
}

/// Marks ids as running until dropped, however the running ends: an id
/// left in `running` would make every `cancel` and `flush` of it wait
/// forever.
struct Running<'a> {
    shared: &'a Shared,
    ids: Vec<String>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.shared.finished(&self.ids);
    }
}

pub(crate) struct RemovalQueue {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    /// Set by a test to hold the next `flush` at its start.
    #[cfg(test)]
    pub(crate) pause_flush: test_hooks::FlushPause,
}

/// Why the plugin cannot load without its removal thread, and what to do.
pub(crate) fn thread_start_error(err: &io::Error) -> HookError {
    HookError::new(
        HookErrorKind::Io,
        format!(
            "could not start the isolation plugin's removal thread (it removes the dirs of \
             closed panes): {err}; the process is out of threads or memory: raise the limit \
             on processes/threads (`ulimit -u`) or free memory, then restart the server or \
             reload plugins.toml"
        ),
    )
}

impl RemovalQueue {
    pub(crate) fn start() -> Result<Self, HookError> {
        let shared = Arc::new(Shared::default());
        let worker_shared = Arc::clone(&shared);
        let worker = thread::Builder::new()
            .name("ccmux-isolation-removals".to_string())
            .spawn(move || worker_loop(&worker_shared))
            .map_err(|err| thread_start_error(&err))?;
        Ok(RemovalQueue {
            shared,
            worker: Some(worker),
            #[cfg(test)]
            pause_flush: test_hooks::FlushPause::default(),
        })
    }

    /// Removes the pane's dir after `delay`, replacing any removal already
    /// pending for the same pane.
    pub(crate) fn schedule(&self, removal: Removal, delay: Duration) {
        let now = Instant::now();
        // The config caps the grace period, so this cannot overflow; if it
        // somehow did, removing at once is the documented behaviour of 0.
        let deadline = now.checked_add(delay).unwrap_or(now);
        let id = removal.pane.id().to_string();
        self.shared
            .lock()
            .pending
            .insert(id, Pending { removal, deadline });
        self.shared.changed.notify_all();
    }

    /// Cancels the pending removal of `pane_id`, if any; returns whether one
    /// was pending. A removal already under way is waited for instead, so
    /// the caller then creates the dir afresh rather than racing it.
    pub(crate) fn cancel(&self, pane_id: &str) -> bool {
        let mut queue = self.shared.lock();
        while queue.running.contains(pane_id) {
            queue = self.shared.wait(queue);
        }
        queue.pending.remove(pane_id).is_some()
    }

    /// Runs every pending removal now, on the calling thread, and waits for
    /// those the worker is running. Deadlines are ignored; a removal that
    /// waits for a process checks it once.
    pub(crate) fn flush(&self) {
        let due = {
            let mut queue = self.shared.lock();
            let due: Vec<(String, Removal)> = queue
                .pending
                .drain()
                .map(|(id, pending)| (id, pending.removal))
                .collect();
            queue.running.extend(due.iter().map(|(id, _)| id.clone()));
            due
        };
        // Each id leaves `running` as soon as its own removal is done, so a
        // `cancel` of it waits for that removal only.
        let due: Vec<(Running<'_>, Removal)> = due
            .into_iter()
            .map(|(id, removal)| {
                let running = Running {
                    shared: &self.shared,
                    ids: vec![id],
                };
                (running, removal)
            })
            .collect();
        #[cfg(test)]
        test_hooks::pause_flush(&self.pause_flush);
        side_by_side(due, |(running, removal)| {
            removal.run();
            drop(running);
        });
        let mut queue = self.shared.lock();
        while !queue.running.is_empty() {
            queue = self.shared.wait(queue);
        }
    }

    #[cfg(test)]
    pub(crate) fn is_pending(&self, pane_id: &str) -> bool {
        self.shared.lock().pending.contains_key(pane_id)
    }
}

impl Drop for RemovalQueue {
    /// Stops the worker and waits for it. Removals still pending are left
    /// on disk: the plugin flushes before dropping the queue, and anything
    /// left is an orphan for the next server start.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(worker) = self.worker.take() {
            // The worker does not panic; if it did, there is nothing to add.
            let _ = worker.join();
        }
    }
}

fn worker_loop(shared: &Shared) {
    let mut queue = shared.lock();
    loop {
        if queue.stop {
            return;
        }
        let now = Instant::now();
        let mut due = Vec::new();
        let mut next_wake: Option<Instant> = None;
        for (id, pending) in &queue.pending {
            let process_gone = pending.removal.wait_for.is_some_and(process_is_gone);
            if pending.deadline <= now || process_gone {
                due.push(id.clone());
                continue;
            }
            let wake = match pending.removal.wait_for {
                Some(_) => pending
                    .deadline
                    .min(now.checked_add(PROCESS_POLL).unwrap_or(now)),
                None => pending.deadline,
            };
            next_wake = Some(next_wake.map_or(wake, |w| w.min(wake)));
        }
        if due.is_empty() {
            queue = match next_wake {
                Some(wake) => {
                    let timeout = wake.saturating_duration_since(now);
                    shared
                        .changed
                        .wait_timeout(queue, timeout)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => shared.wait(queue),
            };
            continue;
        }
        let batch: Vec<Removal> = due
            .iter()
            .filter_map(|id| queue.pending.remove(id))
            .map(|pending| pending.removal)
            .collect();
        queue.running.extend(due.iter().cloned());
        // The disk work happens outside the lock, so scheduling and
        // cancelling never wait behind a slow `remove_dir_all`.
        drop(queue);
        {
            let _running = Running { shared, ids: due };
            side_by_side(batch, |removal| removal.run());
        }
        queue = shared.lock();
    }
}

/// How many removals run at once.
const SIDE_BY_SIDE: usize = 16;

/// Runs `run` on every item, a few at a time on threads of their own: panes
/// closed together are removed together, so their `.claude.json` merges
/// share one write of the user's file (see `user_claude_json`) instead of
/// one write each. An item whose thread cannot start runs here.
fn side_by_side<T: Send>(items: Vec<T>, run: impl Fn(T) + Sync) {
    let take = |slot: &Mutex<Option<T>>| slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let slots: Vec<Mutex<Option<T>>> = items
            .by_ref()
            .take(SIDE_BY_SIDE)
            .map(|item| Mutex::new(Some(item)))
            .collect();
        // The threads log where the caller does.
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        thread::scope(|scope| {
            for slot in &slots {
                let (run, take, dispatch) = (&run, &take, &dispatch);
                let spawned = thread::Builder::new()
                    .name("ccmux-isolation-removal".into())
                    .spawn_scoped(scope, move || {
                        tracing::dispatcher::with_default(dispatch, || {
                            if let Some(item) = take(slot) {
                                run(item);
                            }
                        });
                    });
                if spawned.is_err() {
                    if let Some(item) = take(slot) {
                        run(item);
                    }
                }
            }
        });
    }
}

/// Ways for tests to reach into the queue at moments they cannot time:
/// a removal that panics, a flush held at its start.
#[cfg(test)]
pub(crate) mod test_hooks {
    use std::path::{Path, PathBuf};
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::sync::{Mutex, PoisonError};

    /// Pane dirs whose removal panics. Keyed by path, which is unique per
    /// test, so tests running meanwhile are not affected.
    static PANIC_ON: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub(crate) fn panic_when_removing(root: &Path) {
        PANIC_ON
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(root.to_path_buf());
    }

    pub(super) fn maybe_panic(root: &Path) {
        let panics = PANIC_ON
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|path| path == root);
        assert!(!panics, "test panic while removing {}", root.display());
    }

    /// When armed, the next flush says it has started and waits to be
    /// resumed.
    #[derive(Default)]
    pub(crate) struct FlushPause(Mutex<Option<(Sender<()>, Receiver<()>)>>);

    impl FlushPause {
        /// Returns (started, resume): `started` receives once the next
        /// flush has begun; sending on (or dropping) `resume` lets it go on.
        pub(crate) fn arm(&self) -> (Receiver<()>, Sender<()>) {
            let (started_tx, started_rx) = channel();
            let (resume_tx, resume_rx) = channel();
            *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some((started_tx, resume_rx));
            (started_rx, resume_tx)
        }
    }

    pub(super) fn pause_flush(pause: &FlushPause) {
        let armed = pause
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((started, resume)) = armed {
            let _ = started.send(());
            let _ = resume.recv();
        }
    }
}
