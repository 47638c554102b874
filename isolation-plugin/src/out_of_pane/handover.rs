//! Handover: what a pane dir hands to the user before it is removed, so
//! that removing it loses nothing the user made: the pane's own changes to
//! its `.claude.json` are carried back into the user's file, and whatever
//! it holds of the user's data pane-locally is moved into the user's
//! Claude dir. Run by every removal (after the grace period, by the orphan
//! scan, by `max_age_secs`).
//!
//! If the data cannot go home, the dir is kept. If the `.claude.json`
//! merge fails (the user's file is invalid, a link, locked by a stuck
//! process), the pane's two small files that hold its changes (its final
//! `.claude.json` and its seed record) are kept in
//! `{base}/.pending-carry-back/{ms}-{pane-id}/` and the dir goes: a failed
//! merge must not keep whole pane dirs around for ever. Every server start
//! merges what is pending there, off the path of the first pane, all in
//! one write, and removes each once it is merged. What the guard rails held
//! back (a reset, a value of the wrong type: see `carry_back`) is kept
//! there too, marked held, for the user to review.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use ccmux_plugin_api::{HookError, HookErrorKind};

use crate::classification::CLAUDE_JSON;
use crate::config::Settings;
use crate::floor::private_fs::{read_bounded, Links, ReadFailure};
use crate::into_pane::seed::{describe_read_failure, list, pick_keys, Picked, SEED_RECORD};
use crate::into_pane::user_claude_dir::UserClaudeDir;
use crate::out_of_pane::carry_back::{guard, CarriedKeys, Held, Precedence};
use crate::out_of_pane::pending::{PaneFiles, Pending, PendingCarryBacks, PANE_FILE_LIMIT};
use crate::out_of_pane::user_claude_json::{MergeJob, UserClaudeJson};
use crate::out_of_pane::verify::Verifier;
use crate::pane_dirs::layout::Layout;
use crate::pane_dirs::pane_dir::{BeforeRemoval, PaneDir};
use crate::user_data::shared_data::SharedData;

#[derive(Debug, Default)]
pub(crate) struct Handover {
    /// Moves data home; `None` when nothing is shared or moved home.
    pub data: Option<SharedData>,
    /// Carries `.claude.json` changes back; `None` with `carry_back = false`
    /// or no known user file.
    pub claude_json: Option<ClaudeJsonCarry>,
}

#[derive(Debug)]
pub(crate) struct ClaudeJsonCarry {
    pub keys: CarriedKeys,
    pub user: UserClaudeJson,
    /// Changes not in the user's file yet, kept for later.
    pub pending: PendingCarryBacks,
    /// Looks again at each merge a moment later.
    pub verifier: Verifier,
}

impl Handover {
    /// Hands over everything of `pane` (whose config dir is checked to be
    /// a real dir of this user by the caller). An error means the dir must
    /// be kept: something in it is not the user's yet.
    pub(crate) fn run(&self, pane: &PaneDir, config: &Path) -> Result<(), HookError> {
        // Data first: Claude moves some settings out of `.claude.json`
        // into `settings.json` (a pane's own one, if the user has none),
        // and the removal carried back below is only right once that file
        // is home.
        if let Some(data) = &self.data {
            let rescued = data.rescue(pane.id(), config)?;
            if !rescued.is_empty() {
                tracing::info!(pane = %pane.id(), "moved the pane's own data into the user's Claude dir before removing it: {rescued}");
            }
        }
        if let Some(carry) = &self.claude_json {
            carry.run_or_keep(pane, config)?;
        }
        Ok(())
    }
}

/// How a removal of a pane dir (grace period, orphan scan, `max_age_secs`)
/// reaches the handover without depending on it.
impl BeforeRemoval for Handover {
    fn hand_over(&self, pane: &PaneDir, config: &Path) -> Result<(), HookError> {
        self.run(pane, config)
    }
}

/// The most bytes of pane files one pending pass reads (and holds, for the
/// looks after its merge): the rest waits for the next pass.
const PASS_BYTES: u64 = 128 << 20;

/// What to merge of one pane's files, and what to hold back.
pub(crate) struct Plan {
    pub job: MergeJob,
    /// Held back by the reset rule.
    pub held: Vec<Held>,
    /// How many items of its seed the pane lost, of how many.
    pub lost: usize,
    pub seed_items: usize,
}

/// Why a pane's files cannot be compared at all.
pub(crate) struct NotComparable(pub String);

impl ClaudeJsonCarry {
    /// The carry-back into `user`'s `.claude.json` (a profile's), as
    /// `settings` say.
    pub(crate) fn new(settings: &Settings, layout: &Layout, user: &UserClaudeDir) -> Self {
        let usual = user.config_dir_var.is_none();
        let user = UserClaudeJson {
            path: user.claude_json.clone(),
            user_dir: user.dir.clone(),
            backups: layout.claude_json_backups(&user.claude_json, usual),
        };
        let pending = PendingCarryBacks::new(
            layout.pending_carry_backs(&user.path, usual),
            user.path.clone(),
        );
        ClaudeJsonCarry {
            keys: CarriedKeys {
                top: settings.seed_keys.iter().cloned().collect(),
                project: settings.project_keys.iter().cloned().collect(),
            },
            verifier: Verifier::new(user.clone(), pending.clone()),
            user,
            pending,
        }
    }

    /// Merges the pane's changes; if that fails, keeps them pending (and
    /// says so) so the dir can go. An error only if they could not be kept
    /// either: the dir must stay then.
    fn run_or_keep(&self, pane: &PaneDir, config: &Path) -> Result<(), HookError> {
        let Some(files) = read_pane_files(
            pane.id(),
            &config.join(CLAUDE_JSON),
            &pane.root().join(SEED_RECORD),
        )?
        else {
            return Ok(());
        };
        let plan = match self.plan(&files, Precedence::PaneWins) {
            Ok(Some(plan)) => plan,
            Ok(None) => return Ok(()),
            // Not JSON: nothing can be told; kept whole for the user.
            Err(NotComparable(why)) => {
                let kept = self.pending.keep(&files, Some(&why))?;
                tracing::warn!(pane = %pane.id(), kept = %kept.name, "{why}; it is kept for you: `host-shim carry-back show {}`", kept.name);
                return Ok(());
            }
        };
        match self.user.merge(vec![plan.job.clone()]) {
            Ok(applied) => {
                let applied = applied.into_iter().next().unwrap_or_default();
                log_applied(&plan.job.pane_id, &self.user, &applied);
                let mut held = plan.held.clone();
                held.extend(applied.refused.iter().cloned());
                let kept_held = if held.is_empty() {
                    false
                } else {
                    let why = held_reason(&plan, &held);
                    let kept = self.pending.keep(&files, Some(&why))?;
                    warn_held(&plan.job.pane_id, &kept, &held, &plan);
                    true
                };
                if applied.written > 0 {
                    // A held entry has every change of the pane already.
                    let files = if kept_held { Vec::new() } else { vec![files] };
                    self.verifier.watch(vec![plan.job], files, applied.write);
                }
                Ok(())
            }
            Err(err) => match self.pending.keep(&files, None) {
                Ok(kept) => {
                    tracing::warn!(
                        pane = %pane.id(),
                        kept = %kept.path.display(),
                        "{}; the pane's .claude.json changes are kept in the dir named here and merged at every server start until they go in (`host-shim carry-back` lists them)",
                        err.message
                    );
                    Ok(())
                }
                Err(keep_err) => Err(HookError::new(
                    err.kind,
                    format!(
                        "{}; and keeping them pending failed too: {}",
                        err.message, keep_err.message
                    ),
                )),
            },
        }
    }

    /// What `files` changed, split by the guard rails; `None` when nothing
    /// (the pane's file is still its seed, or equal in what is compared).
    pub(crate) fn plan(
        &self,
        files: &PaneFiles,
        precedence: Precedence,
    ) -> Result<Option<Plan>, NotComparable> {
        // A pane whose Claude never saved (a shell pane, most panes of a
        // multiplexer) still holds its seed byte for byte: nothing changed.
        if files.seed.as_deref() == Some(files.final_file.as_slice()) {
            return Ok(None);
        }
        // Only the compared keys are built; a project's history is skipped.
        let pane = self.parse(&files.final_file, "its .claude.json")?;
        let seed = match &files.seed {
            Some(bytes) => Some(self.parse(bytes, "its seed record")?),
            None => None,
        };
        // Without a record of its seed, a pane's stale value cannot be told
        // from a change: it only adds.
        let precedence = if seed.is_none() {
            Precedence::OnlyAdditions
        } else {
            precedence
        };
        let seed = seed.unwrap_or_default();
        for (what, picked) in [("its .claude.json", &pane), ("its seed record", &seed)] {
            if !picked.unreadable.is_empty() {
                tracing::warn!(
                    pane = %files.pane_id,
                    "not carrying back these items of the pane's .claude.json, which cannot be read as they stand in {what}: {}; every other change goes on",
                    list(&picked.unreadable)
                );
            }
        }
        let changes = self.keys.changes(&seed, &pane);
        if changes.is_empty() {
            return Ok(None);
        }
        let guarded = guard(&self.keys, &seed, &pane, changes);
        Ok(Some(Plan {
            job: MergeJob {
                pane_id: files.pane_id.clone(),
                changes: guarded.carried,
                precedence,
                check_types: true,
            },
            held: guarded.held,
            lost: guarded.lost,
            seed_items: guarded.seed_items,
        }))
    }

    fn parse(&self, bytes: &[u8], what: &str) -> Result<Picked, NotComparable> {
        pick_keys(bytes, &self.keys.top, &self.keys.project).map_err(|err| {
            NotComparable(format!(
                "the pane's {what} is not a JSON object ({err}), so what it changed cannot be told"
            ))
        })
    }

    /// Merges every pending carry-back that is not held for the user, in
    /// one write, and drops each one that went in. For server start, on a
    /// thread of its own: `cancelled` (a server stopping) ends it at once
    /// with the rest still pending. Newest first, each with the user's value
    /// winning where it changed since that pane's seed: so the latest
    /// pane's choice stands over older pending ones, and a choice the user
    /// made after a pane's seed stands over that pane's.
    pub(crate) fn merge_pending(&self, cancelled: &AtomicBool) {
        let Some(lock) = self.pending.lock() else {
            return;
        };
        self.pending.clear_abandoned(&lock);
        let entries = self.pending.list(&lock);
        let already_held = entries.iter().filter(|entry| entry.is_held()).count();
        let mut plans: Vec<(Pending, PaneFiles, Option<Plan>)> = Vec::new();
        let mut unreadable = Vec::new();
        let (mut read, mut waiting) = (0u64, 0usize);
        for entry in entries.into_iter().rev().filter(|entry| !entry.is_held()) {
            if cancelled.load(Ordering::Relaxed) {
                return;
            }
            // One pass holds at most PASS_BYTES of pane files; older entries
            // past it wait for the next pass.
            if read > PASS_BYTES {
                waiting += 1;
                continue;
            }
            let files = match entry.read() {
                Ok(Some(files)) => files,
                Ok(None) => {
                    unreadable.push(format!("{}: no .claude.json", entry.name));
                    continue;
                }
                Err(err) => {
                    unreadable.push(format!("{}: {err}", entry.name));
                    continue;
                }
            };
            read += (files.final_file.len() + files.seed.as_ref().map_or(0, Vec::len)) as u64;
            match self.plan(&files, Precedence::UserWins) {
                Ok(plan) => plans.push((entry, files, plan)),
                Err(NotComparable(why)) => {
                    if let Err(err) = entry.hold(&why) {
                        unreadable.push(format!("{}: {err}", entry.name));
                    }
                }
            }
        }
        if waiting > 0 {
            tracing::info!(
                waiting,
                "older pending carry-backs wait for the next server start (this pass read {read} bytes of them)"
            );
        }
        if !unreadable.is_empty() {
            tracing::warn!(
                "{} pending carry-back(s) cannot be read and stay as they are: {}",
                unreadable.len(),
                list(&unreadable)
            );
        }
        if plans.is_empty() {
            report_held(already_held, 0);
            return;
        }
        // Another process merging (a server's closing panes) goes first;
        // this pass is nobody's hurry, and a stop must end it at once.
        if !self.user.wait_for_merge_lock(cancelled) {
            return;
        }
        let jobs: Vec<MergeJob> = plans
            .iter()
            .filter_map(|(_, _, plan)| plan.as_ref().map(|plan| plan.job.clone()))
            .collect();
        let applied = match self.user.merge(jobs.clone()) {
            Ok(applied) => applied,
            Err(err) => {
                tracing::warn!(
                    "{} pending carry-back(s) still cannot be merged (they wait for the next server start): {}",
                    plans.len(),
                    err.message
                );
                report_held(already_held, 0);
                return;
            }
        };
        let mut applied = applied.into_iter();
        let (mut merged, mut newly_held) = (0, 0);
        let mut watched = (Vec::new(), Vec::new());
        let mut write = 0;
        for (entry, files, plan) in plans {
            let Some(plan) = plan else {
                self.pending.drop_merged(&entry);
                merged += 1;
                continue;
            };
            let applied = applied.next().unwrap_or_default();
            write = write.max(applied.write);
            log_applied(&plan.job.pane_id, &self.user, &applied);
            let mut held = plan.held.clone();
            held.extend(applied.refused.iter().cloned());
            if held.is_empty() {
                self.pending.drop_merged(&entry);
                merged += 1;
                if applied.written > 0 {
                    watched.0.push(plan.job);
                    watched.1.push(files);
                }
            } else {
                match entry.hold(&held_reason(&plan, &held)) {
                    Ok(()) => newly_held += 1,
                    Err(err) => {
                        tracing::warn!(kept = %entry.name, "could not mark a pending carry-back held for review: {err}")
                    }
                }
            }
        }
        self.verifier.watch(watched.0, watched.1, write);
        tracing::info!(
            merged,
            "merged the pending carry-backs into the user's .claude.json"
        );
        report_held(already_held, newly_held);
    }
}

/// One line for every entry held for the user, however many.
fn report_held(already: usize, new: usize) {
    if already + new > 0 {
        tracing::warn!(
            held = already + new,
            new,
            "some panes' .claude.json changes are held back for you to review (a reset or a value of the wrong type): `host-shim carry-back list` shows them, `apply NAME` or `drop NAME` decides"
        );
    }
}

fn log_applied(
    pane_id: &str,
    user: &UserClaudeJson,
    applied: &crate::out_of_pane::carry_back::Applied,
) {
    if applied.written > 0 {
        tracing::info!(
            pane = pane_id,
            path = %user.path.display(),
            written = applied.written,
            conflicts = applied.conflicts,
            "carried the pane's own .claude.json changes back into the user's file"
        );
    }
}

/// What the `held` file of an entry says.
fn held_reason(plan: &Plan, held: &[Held]) -> String {
    let mut why = String::new();
    for item in held {
        why.push_str(&format!("{}: {}\n", item.change.path, item.why));
    }
    if !plan.held.is_empty() {
        why.push_str(&format!(
            "the pane lost {} of the {} items it was seeded with at once\n",
            plan.lost, plan.seed_items
        ));
    }
    why
}

fn warn_held(pane_id: &str, kept: &Pending, held: &[Held], plan: &Plan) {
    let items = list(held.iter().map(|held| &held.change.path));
    if plan.held.is_empty() {
        tracing::warn!(
            pane = pane_id,
            "not carrying back values of another JSON type than the user's .claude.json has: {items}; everything else went in. To apply them anyway: `host-shim carry-back apply {}`",
            kept.name
        );
    } else {
        tracing::warn!(
            pane = pane_id,
            lost = plan.lost,
            seed_items = plan.seed_items,
            "the pane's .claude.json looks reset (it lost most of what it was seeded with at once): not removing from the user's file, nor changing what the pane was seeded with: {items}; what it added went in. To see them: `host-shim carry-back show {0}`; to apply them anyway: `host-shim carry-back apply {0}`",
            kept.name
        );
    }
}

/// A pane's two files, bounded; `None` if it has no `.claude.json`. One
/// that cannot be read is an error: the pane's changes would be lost.
fn read_pane_files(
    pane_id: &str,
    final_path: &Path,
    seed_path: &Path,
) -> Result<Option<PaneFiles>, HookError> {
    let Some(final_file) = read_pane_file(final_path, "the pane's .claude.json")? else {
        return Ok(None);
    };
    let seed = read_pane_file(seed_path, "the pane's seed record")?;
    Ok(Some(PaneFiles {
        pane_id: pane_id.to_string(),
        final_file,
        seed,
    }))
}

fn read_pane_file(path: &Path, what: &str) -> Result<Option<Vec<u8>>, HookError> {
    match read_bounded(path, PANE_FILE_LIMIT, Links::Refuse) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(ReadFailure::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(failure) => Err(HookError::new(
            HookErrorKind::Failed,
            format!(
                "{what} {}: {}",
                path.display(),
                describe_read_failure(&failure)
            ),
        )),
    }
}

/// The pending pass of a server start, on its own thread.
pub(crate) struct PendingPass {
    cancelled: std::sync::Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl PendingPass {
    /// Starts merging what is pending, off the caller's path.
    pub(crate) fn start(handover: std::sync::Arc<Handover>) -> Option<PendingPass> {
        // Nothing was ever kept: no thread.
        if !handover.claude_json.as_ref()?.pending.exists() {
            return None;
        }
        let cancelled = std::sync::Arc::new(AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&cancelled);
        // The thread logs where its starter does.
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let spawned = thread::Builder::new()
            .name("ccmux-isolation-pending".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    if let Some(carry) = &handover.claude_json {
                        carry.merge_pending(&flag);
                    }
                });
            });
        match spawned {
            Ok(thread) => Some(PendingPass { cancelled, thread }),
            Err(err) => {
                tracing::warn!("cannot start merging the pending carry-backs ({err}); they wait for the next server start");
                None
            }
        }
    }

    /// Stops the pass at once (the rest stays pending) and waits for its
    /// thread, which is then at most finishing one write.
    pub(crate) fn stop(self) {
        self.cancelled.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }

    /// Waits for the pass to end by itself; for tests.
    #[cfg(test)]
    pub(crate) fn wait(self) {
        let _ = self.thread.join();
    }
}
