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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ccmux_plugin_api::{HookError, HookErrorKind};

use crate::pane_dir::PaneDir;
use crate::process::process_is_gone;

/// How often a removal that waits for a process checks on it.
const PROCESS_POLL: Duration = Duration::from_millis(100);

/// One pane dir to remove.
#[derive(Debug, Clone)]
pub(crate) struct Removal {
    pub pane: PaneDir,
    /// The server identity the dir must belong to; checked again right
    /// before removing, so a dir claimed by someone else meanwhile is kept.
    pub owner: String,
    /// `Some(pid)`: the pane's process may still run. The dir is removed as
    /// soon as it has gone, or kept (with a warning) if it outlives the
    /// deadline; the next server start then cleans it as an orphan.
    pub wait_for: Option<u32>,
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
        self.pane.remove_if_owned(&self.owner, reason)
    }

    /// [`try_run`](Self::try_run) on the worker, where errors can only be
    /// logged: there is no caller left to report them to.
    fn run(&self) {
        if let Err(err) = self.try_run() {
            tracing::warn!(pane = %self.pane.id(), "could not remove the dir of a closed pane: {err}");
        }
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

pub(crate) struct RemovalQueue {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl RemovalQueue {
    pub(crate) fn start() -> Result<Self, HookError> {
        let shared = Arc::new(Shared::default());
        let worker_shared = Arc::clone(&shared);
        let worker = thread::Builder::new()
            .name("ccmux-isolation-removals".to_string())
            .spawn(move || worker_loop(&worker_shared))
            .map_err(|err| {
                HookError::new(
                    HookErrorKind::Io,
                    format!("could not start the isolation plugin's removal thread: {err}"),
                )
            })?;
        Ok(RemovalQueue {
            shared,
            worker: Some(worker),
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
        for (id, removal) in due {
            removal.run();
            self.shared.finished(&[id]);
        }
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
        for removal in &batch {
            removal.run();
        }
        shared.finished(&due);
        queue = shared.lock();
    }
}
