//! SharedData: the entries of a Claude config dir that Claude keeps per
//! session or append-only (transcripts, prompt history, checkpoints,
//! todos, ...), linked from the user's Claude dir into every pane.
//!
//! Why: none of this needs isolating. Claude already runs many instances
//! on one `~/.claude/` and never rewrites these whole: each session writes
//! its own files, and `history.jsonl` is only appended to. Kept in the
//! user's dir, every conversation survives its pane and can be resumed
//! from any pane or from a plain terminal, as without ccmux. What
//! concurrent instances do corrupt, `.claude.json`, stays per pane.
//!
//! Unlike the `share` links, an entry the user lacks is created in the
//! user's dir first (dirs 0700, files 0600, never through a link), so the
//! link is always made and nothing is written pane-locally; only a user
//! without a Claude dir at all gets no links (and no dir), and the pane's
//! data goes home when the pane closes. Anything
//! that does sit pane-locally where a shared entry belongs is moved home
//! (see [`rescue`](crate::user_data::rescue)) before the link is made and before a
//! pane dir is removed.

use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use ccmux_plugin_api::{HookError, HookErrorKind};

use crate::classification;
use crate::config::{DataEntry, DataKind};
use crate::floor::errors::{io_error, refused};
use crate::floor::private_fs::{
    check_own_dir, create_private_dir, create_private_file, entry, Entry,
};
use crate::user_data::drift;
use crate::user_data::rescue::{append_log, beside_name, merge_dir, move_no_replace, Rescued};

/// The user's Claude dir, the entries shared from it, and those each pane
/// keeps its own but moves home before its dir goes.
#[derive(Debug)]
pub(crate) struct SharedData {
    user_dir: PathBuf,
    entries: Vec<DataEntry>,
    move_home: Vec<DataEntry>,
    /// The `share` names: linked only if the user has them, so a pane
    /// whose user lacks one makes its own (a first `/model` writes a
    /// `settings.json`, `/agents` an `agents/`), which goes home too.
    configuration: Vec<String>,
}

impl SharedData {
    pub(crate) fn new(
        user_dir: PathBuf,
        entries: Vec<DataEntry>,
        move_home: Vec<DataEntry>,
        configuration: Vec<String>,
    ) -> Self {
        SharedData {
            user_dir,
            entries,
            move_home,
            configuration,
        }
    }

    pub(crate) fn user_dir(&self) -> &Path {
        &self.user_dir
    }

    /// Whether the entry `name` is linked into every pane.
    pub(crate) fn shares(&self, name: &str) -> bool {
        self.entries.iter().any(|data| data.name == name)
    }

    /// Links every entry into the pane's `config/`, first creating it in
    /// the user's dir if the user lacks it, and first moving home anything
    /// the pane holds there itself (a pane dir of an older layout). An
    /// entry the user has as a link or as the wrong kind is not shared, with
    /// a warning: nothing is written through it. Returns how many links
    /// were made.
    ///
    /// A user without a Claude dir gets none: nothing is linked, and what
    /// Claude writes in the pane stays pane-local until the pane's dir is
    /// removed, when [`rescue`](Self::rescue) moves it home (making the
    /// user's dir then). A pane that never runs Claude creates nothing in
    /// the user's home.
    pub(crate) fn link_into(&self, pane_id: &str, pane_config: &Path) -> Result<usize, HookError> {
        if matches!(
            entry(&self.user_dir).map_err(|err| io_error("inspect", &self.user_dir, &err))?,
            Entry::Missing
        ) {
            tracing::debug!(
                pane = pane_id,
                user_dir = %self.user_dir.display(),
                "the user has no Claude dir: the pane's data stays its own until it closes"
            );
            return Ok(0);
        }
        self.ensure_user_dir()?;
        let mut made = 0;
        for data in &self.entries {
            let target = self.user_dir.join(&data.name);
            if let Err(err) = self
                .ensure_parents(&data.name)
                .and_then(|()| ensure_pane_parents(pane_config, &data.name))
                .and_then(|()| self.ensure_user_entry(data, &target))
            {
                tracing::warn!(pane = pane_id, "not sharing {}: {err}", data.name);
                continue;
            }
            let link = pane_config.join(&data.name);
            let rescued = self.rescue_entry(pane_id, data, &link, &target)?;
            if !rescued.is_empty() {
                tracing::info!(
                    pane = pane_id,
                    entry = %data.name,
                    "moved the pane's own {} into the user's Claude dir before sharing it: {rescued}",
                    data.name
                );
            }
            if link_to(&target, &link)? {
                made += 1;
            }
        }
        Ok(made)
    }

    /// Moves home whatever the pane holds pane-locally where a shared
    /// entry belongs. Called before a pane dir is removed: an error means
    /// the dir must be kept, since something in it is not home yet.
    pub(crate) fn rescue(&self, pane_id: &str, pane_config: &Path) -> Result<Rescued, HookError> {
        let mut total = Rescued::default();
        for data in self.entries.iter().chain(&self.move_home) {
            let local = pane_config.join(&data.name);
            if !pane_parents_are_real(pane_config, &data.name)? {
                continue;
            }
            if !matches!(
                entry(&local).map_err(|err| io_error("inspect", &local, &err))?,
                Entry::Dir(_) | Entry::File
            ) {
                continue;
            }
            self.ensure_user_dir()?;
            self.ensure_parents(&data.name)?;
            let target = self.user_dir.join(&data.name);
            self.ensure_user_entry(data, &target)?;
            let rescued = self.rescue_entry(pane_id, data, &local, &target)?;
            total.moved += rescued.moved;
            total.set_beside += rescued.set_beside;
            total.appended_bytes += rescued.appended_bytes;
        }
        for name in &self.configuration {
            let local = pane_config.join(name);
            let found = entry(&local).map_err(|err| io_error("inspect", &local, &err))?;
            if !matches!(found, Entry::Dir(_) | Entry::File) {
                continue;
            }
            self.ensure_user_dir()?;
            let target = self.user_dir.join(name);
            let rescued = match (
                found,
                entry(&target).map_err(|err| io_error("inspect", &target, &err))?,
            ) {
                (_, Entry::Missing) if move_no_replace(&local, &target, pane_id)? => Rescued {
                    moved: 1,
                    ..Rescued::default()
                },
                (Entry::Dir(_), Entry::Dir(_)) => merge_dir(&local, &target, pane_id)?,
                // The user has one too (made since, or a link the pane's
                // link was replaced by): both are kept.
                _ => {
                    let beside = self.user_dir.join(beside_name(name, pane_id));
                    if !move_no_replace(&local, &beside, pane_id)? {
                        return Err(io_error(
                            "move aside",
                            &local,
                            &io::Error::other("the name beside it is taken"),
                        ));
                    }
                    tracing::warn!(
                        pane = pane_id,
                        kept = %beside.display(),
                        "the pane had its own {name} where the user has one: kept beside the user's; merge it by hand"
                    );
                    Rescued {
                        set_beside: 1,
                        ..Rescued::default()
                    }
                }
            };
            total.moved += rescued.moved;
            total.set_beside += rescued.set_beside;
        }
        // Last, what no list classifies (a newer Claude's files): kept.
        let configured = |name: &str| {
            self.entries
                .iter()
                .chain(&self.move_home)
                .any(|data| data.name.split('/').next() == Some(name))
                || self.configuration.iter().any(|n| n == name)
        };
        if self.has_unknown(pane_config, &configured)? {
            self.ensure_user_dir()?;
            let rescued = drift::rescue_unknown(pane_id, pane_config, &self.user_dir, configured)?;
            total.moved += rescued.moved;
            total.set_beside += rescued.set_beside;
        }
        Ok(total)
    }

    /// Whether the pane's config dir holds a real entry nothing classifies.
    fn has_unknown(
        &self,
        pane_config: &Path,
        configured: &dyn Fn(&str) -> bool,
    ) -> Result<bool, HookError> {
        let listing = match std::fs::read_dir(pane_config) {
            Ok(listing) => listing,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(io_error("list", pane_config, &err)),
        };
        for item in listing {
            let item = item.map_err(|err| io_error("list", pane_config, &err))?;
            let name = item.file_name();
            let known = name
                .to_str()
                .is_some_and(|name| classification::class_of(name).is_some() || configured(name));
            if !known
                && matches!(
                    entry(&item.path()).map_err(|err| io_error("inspect", &item.path(), &err))?,
                    Entry::Dir(_) | Entry::File
                )
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Moves a real entry at `local` into the user's `target`, then
    /// removes what is left of it (links, copies already home). Nothing if
    /// `local` is missing or a link.
    fn rescue_entry(
        &self,
        pane_id: &str,
        data: &DataEntry,
        local: &Path,
        target: &Path,
    ) -> Result<Rescued, HookError> {
        let found = entry(local).map_err(|err| io_error("inspect", local, &err))?;
        let mut rescued = Rescued::default();
        match (found, data.kind) {
            (Entry::Dir(_), DataKind::Dir) => {
                rescued = merge_dir(local, target, pane_id)?;
                std::fs::remove_dir_all(local).map_err(|err| io_error("remove", local, &err))?;
            }
            (Entry::File, DataKind::AppendLog) => {
                rescued.appended_bytes = append_log(local, target)?;
                std::fs::remove_file(local).map_err(|err| io_error("remove", local, &err))?;
            }
            (Entry::Dir(_) | Entry::File, _) => {
                // The wrong kind for this entry: keep it whole, beside the
                // user's, rather than guess.
                let parent = self.user_dir.as_path();
                let moved = move_no_replace(
                    local,
                    &parent.join(beside_name(&data.name, pane_id)),
                    pane_id,
                )?;
                if !moved {
                    return Err(io_error(
                        "move aside",
                        local,
                        &io::Error::other("the name beside it is taken"),
                    ));
                }
                rescued.set_beside += 1;
            }
            (Entry::Missing | Entry::Symlink | Entry::Other, _) => {}
        }
        Ok(rescued)
    }

    /// The user's Claude dir: made if missing, 0700 since it is about to
    /// hold the pane's conversations (Claude itself makes it under the
    /// umask, usually 0755, when it is first to write there). It may be a link (a dotfiles checkout): it is
    /// the user's own choice of where their Claude state lives.
    fn ensure_user_dir(&self) -> Result<(), HookError> {
        if self.user_dir.is_dir() {
            return Ok(());
        }
        match entry(&self.user_dir).map_err(|err| io_error("inspect", &self.user_dir, &err))? {
            Entry::Missing => {
                create_private_dir("the user's Claude dir", &self.user_dir)?;
                Ok(())
            }
            _ => Err(refused(
                "the user's Claude dir",
                &self.user_dir,
                "it is not a directory",
            )),
        }
    }

    /// For an entry below the Claude dir (`state/deleted-transcripts`):
    /// makes each parent a real dir of the user's (0700 if created), never
    /// through a link.
    fn ensure_parents(&self, name: &str) -> Result<(), HookError> {
        let mut dir = self.user_dir.clone();
        for part in parents_of(name) {
            dir.push(part);
            if !check_own_dir("a parent of a shared entry in the user's Claude dir", &dir)? {
                create_private_dir("a parent of a shared entry in the user's Claude dir", &dir)?;
            }
        }
        Ok(())
    }

    /// Makes sure the user has the entry, of the right kind and not a link.
    fn ensure_user_entry(&self, data: &DataEntry, target: &Path) -> Result<(), HookError> {
        let what = format!("the user's {}", data.name);
        for _ in 0..3 {
            match (
                entry(target).map_err(|err| io_error("inspect", target, &err))?,
                data.kind,
            ) {
                (Entry::Dir(_), DataKind::Dir) | (Entry::File, DataKind::AppendLog) => {
                    return Ok(())
                }
                (Entry::Missing, DataKind::Dir) => {
                    create_private_dir(&what, target)?;
                }
                (Entry::Missing, DataKind::AppendLog) => {
                    create_private_file(&self.user_dir, &data.name, b"")?;
                }
                (Entry::Symlink, _) => {
                    return Err(refused(&what, target, "it is a symbolic link"));
                }
                (_, DataKind::Dir) => return Err(refused(&what, target, "it is not a directory")),
                (_, DataKind::AppendLog) => {
                    return Err(refused(&what, target, "it is not a regular file"))
                }
            }
        }
        Err(HookError::new(
            HookErrorKind::Io,
            format!("{} keeps changing while being created", target.display()),
        ))
    }
}

/// The parent names of an entry below the Claude dir: `["state"]` for
/// `state/deleted-transcripts`, none for `projects`.
fn parents_of(name: &str) -> impl Iterator<Item = &str> {
    let parents = name.rsplit_once('/').map(|(parents, _)| parents);
    parents.into_iter().flat_map(|p| p.split('/'))
}

/// Makes each parent of `name` in the pane's config dir a real dir of its
/// own (the rest of `state/` is the pane's), refusing a link.
fn ensure_pane_parents(pane_config: &Path, name: &str) -> Result<(), HookError> {
    let mut dir = pane_config.to_path_buf();
    for part in parents_of(name) {
        dir.push(part);
        if !check_own_dir("a parent of a shared entry in the pane's config dir", &dir)? {
            create_private_dir("a parent of a shared entry in the pane's config dir", &dir)?;
        }
    }
    Ok(())
}

/// Whether every parent of `name` in the pane is a real dir (false when
/// one is missing: nothing is there). A link is refused: nothing is moved
/// from where it points.
fn pane_parents_are_real(pane_config: &Path, name: &str) -> Result<bool, HookError> {
    let mut dir = pane_config.to_path_buf();
    for part in parents_of(name) {
        dir.push(part);
        if !check_own_dir("a parent of a shared entry in the pane's config dir", &dir)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Links `link` to `target`. An existing link is made to point at
/// `target` (links hold no data); a real entry there is left alone (it is
/// rescued first by the caller). Returns whether a link was made.
fn link_to(target: &Path, link: &Path) -> Result<bool, HookError> {
    match symlink(target, link) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            match std::fs::read_link(link) {
                Ok(existing) if existing == target => Ok(false),
                Ok(_) => {
                    std::fs::remove_file(link).map_err(|err| io_error("replace", link, &err))?;
                    symlink(target, link)
                        .map(|()| true)
                        .map_err(|err| io_error("create the shared-data link", link, &err))
                }
                // A real entry: the caller's rescue has failed to move it.
                Err(_) => Ok(false),
            }
        }
        Err(err) => Err(io_error("create the shared-data link", link, &err)),
    }
}
