//! Verifier: the looks at the user's `.claude.json` a moment after each
//! merge, off every caller's path.
//!
//! Why: Claude does not wait for its own lock on the file (it saves without
//! it when it cannot take it), so a Claude outside ccmux that read the file
//! just before a merge's rename can save its stale copy just after it,
//! undoing the merge. A running Claude re-reads a changed file within a
//! second, after which its saves carry the merge; so the file is looked at
//! again 100 ms and 1 s after each merge, and merged again if the changes
//! are gone.
//!
//! Nobody waits for the looks: a closing pane, a server start and a server
//! stop all return at once. A server that stops (or a plugin dropped)
//! before a merge's looks are done takes one last look at once, without
//! waiting: a merge saved over is made again (or, if that fails, its pane
//! files are kept pending for the next server start). What a Claude outside
//! ccmux saves over it after the server has gone is the race Claude
//! instances have with each other.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::out_of_pane::carry_back::Precedence;
use crate::out_of_pane::pending::{PaneFiles, PendingCarryBacks};
use crate::out_of_pane::user_claude_json::{MergeJob, UserClaudeJson};

/// When the looks are, after a merge (each after the one before).
const LOOKS: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(900)];

/// How many times one merge is made again before its changes are kept
/// pending for the next server start instead.
const REMERGES: usize = 3;

/// A merge being watched.
struct Watch {
    jobs: Vec<MergeJob>,
    /// The write of this process that made it (see
    /// [`UserClaudeJson::still_ours`]).
    write: u64,
    /// What to keep pending if the watch cannot end well: the pane files
    /// each job came from.
    files: Vec<PaneFiles>,
    due: Instant,
    /// Index into [`LOOKS`] of the next look.
    look: usize,
    remerges: usize,
}

#[derive(Default)]
struct State {
    watches: Vec<Watch>,
    /// Watches taken out for a look right now.
    looking: usize,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Reads of the user's file the looks made (tests count them).
    reads: std::sync::atomic::AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Watches the merges into one user file; a thread while there is
/// something to watch.
pub(crate) struct Verifier {
    user: UserClaudeJson,
    pending: PendingCarryBacks,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("user", &self.user.path)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub(crate) fn new(user: UserClaudeJson, pending: PendingCarryBacks) -> Self {
        Verifier {
            user,
            pending,
            shared: Arc::default(),
            thread: Mutex::new(None),
        }
    }

    /// Watches a merge that just wrote `jobs`, made of `files`.
    ///
    /// A look asks whether an item went back to what it was before the
    /// pane changed it (a stale copy saved over the merge), not whether it
    /// still holds the pane's value: an item changed again since (by a
    /// later pane's merge, or by the user) is theirs, and stays. So the
    /// jobs are looked at, and merged again, with the user's value winning.
    pub(crate) fn watch(&self, jobs: Vec<MergeJob>, files: Vec<PaneFiles>, write: u64) {
        if jobs.is_empty() || write == 0 {
            return;
        }
        let jobs = jobs
            .into_iter()
            .map(|job| MergeJob {
                precedence: match job.precedence {
                    Precedence::OnlyAdditions => Precedence::OnlyAdditions,
                    Precedence::PaneWins | Precedence::UserWins => Precedence::UserWins,
                },
                ..job
            })
            .collect();
        let mut state = self.shared.lock();
        state.stop = false;
        state.watches.push(Watch {
            jobs,
            write,
            files,
            due: Instant::now() + LOOKS[0],
            look: 0,
            remerges: 0,
        });
        drop(state);
        self.shared.changed.notify_all();
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if thread.as_ref().is_none_or(JoinHandle::is_finished) {
            let (shared, user, pending) = (
                Arc::clone(&self.shared),
                self.user.clone(),
                self.pending.clone(),
            );
            // The thread logs where its starter does.
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            let spawned = thread::Builder::new()
                .name("ccmux-isolation-verify".into())
                .spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || run(&shared, &user, &pending));
                });
            match spawned {
                Ok(handle) => *thread = Some(handle),
                Err(err) => {
                    drop(thread);
                    tracing::warn!("cannot start the thread that looks again at merges ({err}); keeping them pending for the next server start");
                    self.finish();
                }
            }
        }
    }

    /// Ends the watching now: the thread stops, and every merge whose looks
    /// are not done gets its last look at once. Waits for no timer.
    pub(crate) fn finish(&self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        // One last look now, for all of them with one read, instead of the
        // looks still due: merges saved over are made again, or kept for
        // the next server start.
        let mut left = std::mem::take(&mut self.shared.lock().watches);
        look_all(&self.shared, &self.user, &self.pending, &mut left, true);
    }

    /// How many times the looks read the user's file; for tests.
    #[cfg(test)]
    pub(crate) fn reads(&self) -> usize {
        self.shared.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a merge is still being watched; for tests.
    #[cfg(test)]
    pub(crate) fn busy(&self) -> bool {
        let state = self.shared.lock();
        !state.watches.is_empty() || state.looking > 0
    }
}

/// The thread: sleeps until the next look is due (or it is told to stop),
/// then looks at every merge due, with one read of the file.
fn run(shared: &Shared, user: &UserClaudeJson, pending: &PendingCarryBacks) {
    let mut state = shared.lock();
    loop {
        if state.stop || state.watches.is_empty() {
            return;
        }
        let now = Instant::now();
        if !state.watches.iter().any(|watch| watch.due <= now) {
            let next = state
                .watches
                .iter()
                .map(|watch| watch.due)
                .min()
                .unwrap_or(now);
            state = shared
                .changed
                .wait_timeout(state, next.saturating_duration_since(now))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        let (mut due, later): (Vec<Watch>, Vec<Watch>) = std::mem::take(&mut state.watches)
            .into_iter()
            .partition(|watch| watch.due <= now);
        state.watches = later;
        state.looking = due.len();
        drop(state);
        look_all(shared, user, pending, &mut due, false);
        state = shared.lock();
        state.looking = 0;
        state.watches.extend(due);
    }
}

/// One look at `watches` (with one read of the user's file); leaves in it
/// those to be looked at again. `last`: no look comes after this one.
fn look_all(
    shared: &Shared,
    user: &UserClaudeJson,
    pending: &PendingCarryBacks,
    watches: &mut Vec<Watch>,
    last: bool,
) {
    // What a later merge of this process changed again is that merge's.
    for watch in watches.iter_mut() {
        for job in &mut watch.jobs {
            job.changes = user.still_ours(watch.write, std::mem::take(&mut job.changes));
        }
        watch.jobs.retain(|job| !job.changes.is_empty());
    }
    watches.retain(|watch| !watch.jobs.is_empty());
    if watches.is_empty() {
        return;
    }
    let jobs: Vec<MergeJob> = watches
        .iter()
        .flat_map(|watch| watch.jobs.clone())
        .collect();
    shared
        .reads
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if user.still_applied(&jobs) {
        if last {
            watches.clear();
            return;
        }
        watches.retain_mut(|watch| {
            watch.look += 1;
            match LOOKS.get(watch.look) {
                Some(wait) => {
                    watch.due = Instant::now() + *wait;
                    true
                }
                None => false,
            }
        });
        return;
    }
    tracing::info!(
        path = %user.path.display(),
        panes = %crate::into_pane::seed::list(watches.iter().map(pane_ids)),
        "the user's .claude.json was saved over right after a merge (a Claude outside ccmux); merging again"
    );
    let merged = user.merge(jobs);
    let write = match &merged {
        Ok(applied) => applied
            .iter()
            .map(|applied| applied.write)
            .max()
            .unwrap_or(0),
        Err(_) => 0,
    };
    watches.retain_mut(|watch| {
        watch.remerges += 1;
        let given_up = match &merged {
            Err(err) => Some(err.message.to_string()),
            Ok(_) if watch.remerges > REMERGES => Some(
                "the user's .claude.json kept being saved over right after the merge".to_string(),
            ),
            Ok(_) if last => None,
            Ok(_) => {
                watch.look = 0;
                watch.due = Instant::now() + LOOKS[0];
                if write > 0 {
                    watch.write = write;
                }
                return true;
            }
        };
        if let Some(why) = given_up {
            keep(pending, watch, &why);
        }
        false
    });
}

fn pane_ids(watch: &Watch) -> String {
    crate::into_pane::seed::list(watch.jobs.iter().map(|job| job.pane_id.as_str()))
}

/// Keeps a watched merge's pane files pending for the next server start.
fn keep(pending: &PendingCarryBacks, watch: &Watch, why: &str) {
    for files in &watch.files {
        match pending.keep(files, None) {
            Ok(kept) => tracing::info!(
                pane = %files.pane_id,
                kept = %kept.path.display(),
                "{why}: the pane's .claude.json changes are kept and merged again at the next server start"
            ),
            Err(err) => tracing::warn!(
                pane = %files.pane_id,
                "{why}, and its changes could not be kept for the next server start: {err}"
            ),
        }
    }
}
