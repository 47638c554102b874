//! The server's state directory: its lock, its identity and its saved panes.
//!
//! Every file here is replaced atomically (written to a temp file in the
//! same directory, then renamed over), so a server killed at any moment,
//! even by SIGKILL, leaves either the old or the new content, never half.
//! Nothing is opened through a symlink and every read is bounded (see
//! [`crate::state_file`]): a link, FIFO or device planted in place of one
//! of these files is refused by name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::state_file::{self, StateFileError};

const LOCK_FILE: &str = "server.lock";
const SERVER_ID_FILE: &str = "server-id";
const PANES_FILE: &str = "panes.json";
/// The layout of panes.json; bumped when it changes incompatibly.
const PANES_FORMAT: u32 = 1;
/// The most of panes.json that is read: thousands of panes with long
/// commands fit many times over.
pub const PANES_CAP: u64 = 4 << 20;
/// A UUID and a newline, with room to spare.
const SERVER_ID_CAP: u64 = 1024;
/// A pid and a newline, with room to spare.
const LOCK_CAP: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state dir {dir}: {source}; pass --state-dir DIR to use another", dir = .dir.display())]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("cannot lock {file}: {source}; check that the state dir is yours and writable, or pass another --state-dir", file = .file.display())]
    Lock { file: PathBuf, source: io::Error },
    #[error("another host-shim is running with state dir {dir}{holder}; stop it or pass another --state-dir", dir = .dir.display(), holder = .holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
    Locked { dir: PathBuf, holder: Option<u32> },
    #[error("cannot read {file}: {source}; check its permissions, or pass another --state-dir", file = .file.display())]
    Read { file: PathBuf, source: io::Error },
    #[error("cannot write {file}: {source}; check that the disk has room and the state dir is writable", file = .file.display())]
    Write { file: PathBuf, source: io::Error },
    #[error("{file} does not hold a server id (a UUID); delete it to give this state dir a new identity", file = .file.display())]
    BadServerId { file: PathBuf },
    #[error("{file} is not a valid panes file: {message}; delete it to start without saved panes", file = .file.display())]
    BadPanes { file: PathBuf, message: String },
    #[error("cannot use {file}: {source}", file = .file.display())]
    Unsafe {
        file: PathBuf,
        source: StateFileError,
    },
}

impl StateError {
    /// A [`StateFileError`] about `file`: the unsafe kinds keep their own
    /// message, plain I/O errors become a read error.
    fn file(file: &Path, source: StateFileError) -> Self {
        match source {
            StateFileError::Io(source) => StateError::Read {
                file: file.to_path_buf(),
                source,
            },
            source => StateError::Unsafe {
                file: file.to_path_buf(),
                source,
            },
        }
    }
}

/// An open, exclusively locked state directory. The lock is held until
/// this is dropped, so two servers never share one directory.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    /// Holds the advisory lock; closing the file releases it, also when
    /// the process dies.
    _lock: File,
}

impl StateDir {
    /// Creates `dir` (0700: it holds the server's identity) if needed and
    /// locks it. Fails with [`StateError::Locked`] if another process holds
    /// the lock.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let dir = std::path::absolute(dir).map_err(|source| StateError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        // A removal of the dir (`remove_if_unused`) between our steps is
        // met again from the start; it cannot happen twice in a row
        // unless another process keeps removing it.
        for _ in 0..3 {
            if let Some(state) = Self::open_once(&dir)? {
                return Ok(state);
            }
        }
        Err(StateError::Lock {
            file: dir.join(LOCK_FILE),
            source: io::Error::other("it keeps being removed while host-shim opens it"),
        })
    }

    /// [`open`](Self::open), or `None` if the dir was being removed.
    fn open_once(dir: &Path) -> Result<Option<Self>, StateError> {
        let dir = dir.to_path_buf();
        create_private_dir(&dir).map_err(|source| StateError::CreateDir {
            dir: dir.clone(),
            source,
        })?;
        let file = dir.join(LOCK_FILE);
        let lock_error = |source| StateError::Lock {
            file: file.clone(),
            source,
        };
        // Files renamed over later are checked now, so a link or FIFO the
        // user (or anyone) put there is reported before anything runs.
        for name in [SERVER_ID_FILE, PANES_FILE] {
            let path = dir.join(name);
            state_file::check_not_planted(&path).map_err(|err| StateError::file(&path, err))?;
        }
        // Not truncated on open: the holder's pid in it is only replaced
        // once the lock is ours.
        let lock = state_file::open(
            &file,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
        )
        .map_err(|err| match err {
            StateFileError::Io(source) => lock_error(source),
            source => StateError::Unsafe {
                file: file.clone(),
                source,
            },
        })?;
        let Some(mut lock) = lock else {
            // Created if missing: only a race with a removal gets here.
            return Ok(None);
        };
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = state_file::read_capped(&lock, LOCK_CAP)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|text| text.trim().parse().ok());
                return Err(StateError::Locked { dir, holder });
            }
            Err(fs::TryLockError::Error(source)) => return Err(lock_error(source)),
        }
        // A state dir is removed (see `remove_if_unused`) by a process
        // holding this lock, which unlinks the lock file last: a lock taken
        // on a file that is no longer the one at its path is no lock.
        if !names_file(&file, &lock) {
            return Ok(None);
        }
        // The pid is for the "already running" message only; the lock, not
        // the file's content, is what keeps other servers out.
        lock.set_len(0)
            .and_then(|()| writeln!(lock, "{}", std::process::id()))
            .map_err(lock_error)?;
        Ok(Some(StateDir { dir, _lock: lock }))
    }

    /// The directory, absolute.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn panes_file(&self) -> PathBuf {
        self.dir.join(PANES_FILE)
    }

    /// The server's identity: a UUID v4 created on first use and kept in
    /// `server-id`, so it is the same after every restart.
    pub fn server_id(&self) -> Result<Uuid, StateError> {
        self.server_id_or(Uuid::new_v4())
    }

    /// The server's identity: the one in `server-id`, else `new`, then
    /// kept there.
    pub fn server_id_or(&self, new: Uuid) -> Result<Uuid, StateError> {
        let file = self.dir.join(SERVER_ID_FILE);
        match read_server_id(&file)? {
            Some(id) => Ok(id),
            None => {
                let id = new;
                let write_error = |source| StateError::Write {
                    file: file.clone(),
                    source,
                };
                let temp =
                    write_temp(&self.dir, format!("{id}\n").as_bytes()).map_err(write_error)?;
                // No-clobber: should the file have appeared meanwhile, its id
                // wins, and every run keeps agreeing on one identity.
                match temp.persist_noclobber(&file) {
                    Ok(_) => Ok(id),
                    Err(err) if err.error.kind() == io::ErrorKind::AlreadyExists => {
                        read_server_id(&file)?.ok_or(StateError::BadServerId { file })
                    }
                    Err(err) => Err(write_error(err.error)),
                }
            }
        }
    }
}

/// Whether `path` names the file `file` is open on (the same inode).
fn names_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::symlink_metadata(path), file.metadata()) {
        (Ok(at_path), Ok(open)) => at_path.dev() == open.dev() && at_path.ino() == open.ino(),
        _ => false,
    }
}

/// Removes the state dir `dir` when nothing in it is needed again: no
/// server holds it, it saves no pane, and its identity is `identity` (or
/// it has none yet), one that is derived again from where it is, so no
/// plugin data is left without an owner. Anything else is left as it is.
/// True if it was removed.
///
/// The lock is held while the files go, and the lock file goes last:
/// [`StateDir::open`] never trusts a lock on a file that is no longer at
/// its path.
pub fn remove_if_unused(dir: &Path, identity: Uuid) -> Result<bool, StateError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        _ => return Ok(false),
    }
    let lock_path = dir.join(LOCK_FILE);
    // Never created here: a dir without one is being set up right now.
    let lock = match state_file::open(&lock_path, OpenOptions::new().read(true)) {
        Ok(Some(lock)) => lock,
        Ok(None) => return Ok(false),
        Err(err) => return Err(StateError::file(&lock_path, err)),
    };
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Ok(false),
        Err(fs::TryLockError::Error(source)) => {
            return Err(StateError::Lock {
                file: lock_path,
                source,
            })
        }
    }
    if !names_file(&lock_path, &lock) {
        return Ok(false);
    }
    let id_file = dir.join(SERVER_ID_FILE);
    match read_server_id(&id_file) {
        Ok(None) => {}
        Ok(Some(id)) if id == identity => {}
        // Another identity (an older host-shim's, random) may own plugin
        // data: it stays, and so does the dir that remembers it.
        Ok(Some(_)) | Err(_) => return Ok(false),
    }
    if !load_panes(&dir.join(PANES_FILE))?.is_empty() {
        return Ok(false);
    }
    let remove = |path: &Path| match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Write {
            file: path.to_path_buf(),
            source,
        }),
    };
    remove(&dir.join(PANES_FILE))?;
    remove(&id_file)?;
    // Temp files a killed write left (`write_temp`'s names).
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".host-shim-") && name.ends_with(".tmp") {
                remove(&entry.path())?;
            }
        }
    }
    remove(&lock_path)?;
    drop(lock);
    // Only if empty: anything else someone put there stays.
    Ok(fs::remove_dir(dir).is_ok())
}

fn read_server_id(file: &Path) -> Result<Option<Uuid>, StateError> {
    let Some(bytes) =
        state_file::read(file, SERVER_ID_CAP).map_err(|err| StateError::file(file, err))?
    else {
        return Ok(None);
    };
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| Uuid::parse_str(text.trim()).ok())
        .map(Some)
        .ok_or_else(|| StateError::BadServerId {
            file: file.to_path_buf(),
        })
}

/// Creates `dir` and its missing parents, and makes `dir` 0700 whatever
/// the umask: it holds the server's identity.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = fs::metadata(dir)?;
    if meta.permissions().mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A synced temp file in `dir` holding `contents`, ready to be renamed.
fn write_temp(dir: &Path, contents: &[u8]) -> io::Result<tempfile::NamedTempFile> {
    let mut temp = tempfile::Builder::new()
        .prefix(".host-shim-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(contents)?;
    // Synced before the rename, so a crash of the machine cannot leave the
    // new name pointing at unwritten data.
    temp.as_file().sync_all()?;
    Ok(temp)
}

/// One pane as panes.json saves it: enough to open it again with the same
/// identity and command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPane {
    pub pane_id: String,
    pub session_id: String,
    pub window_id: String,
    pub pane_index: u32,
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The profile (Claude account) the pane is in, as the isolation
    /// plugin put it there at its last spawn, or as asked before that; a
    /// restore keeps it. `None` in files written before profiles, and
    /// without the plugin: the plugin's own record of the pane decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl SavedPane {
    /// Session, window, then pane, as a server lists them; windows in
    /// numeric order. The file's order is then the same whichever pane
    /// thread got there first, and so is the restored panes' order.
    fn layout_order(a: &Self, b: &Self) -> std::cmp::Ordering {
        let key = |p: &Self| {
            (
                p.session_id.clone(),
                p.window_id.len(),
                p.window_id.clone(),
                p.pane_index,
                p.pane_id.clone(),
            )
        };
        key(a).cmp(&key(b))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct PanesFile {
    format: u32,
    panes: Vec<SavedPane>,
}

/// Reads the panes saved in `file`; none if it does not exist.
pub fn load_panes(file: &Path) -> Result<Vec<SavedPane>, StateError> {
    let Some(bytes) =
        state_file::read(file, PANES_CAP).map_err(|err| StateError::file(file, err))?
    else {
        return Ok(Vec::new());
    };
    let bad = |message: String| StateError::BadPanes {
        file: file.to_path_buf(),
        message,
    };
    let parsed: PanesFile = serde_json::from_slice(&bytes).map_err(|err| bad(err.to_string()))?;
    if parsed.format != PANES_FORMAT {
        return Err(bad(format!(
            "it has format {}, this host-shim reads format {PANES_FORMAT}",
            parsed.format
        )));
    }
    Ok(parsed.panes)
}

/// The open panes, kept in panes.json: every change is written through
/// before the call returns, so the file always says which panes are open.
#[derive(Debug)]
pub struct PaneStore {
    file: PathBuf,
    /// Also serializes the writes, so the last change is the one on disk.
    panes: Mutex<Vec<SavedPane>>,
}

impl PaneStore {
    /// Replaces `file` with `panes`: whatever it held before is forgotten.
    pub fn create(file: PathBuf, mut panes: Vec<SavedPane>) -> Result<Self, StateError> {
        panes.sort_by(SavedPane::layout_order);
        let store = PaneStore {
            file,
            panes: Mutex::new(panes),
        };
        store.save(&store.lock())?;
        Ok(store)
    }

    /// Adds `pane`, or replaces the saved pane with the same id.
    pub fn upsert(&self, pane: &SavedPane) -> Result<(), StateError> {
        let mut panes = self.lock();
        match panes.iter_mut().find(|p| p.pane_id == pane.pane_id) {
            Some(saved) if saved == pane => return Ok(()),
            Some(saved) => *saved = pane.clone(),
            None => {
                panes.push(pane.clone());
                panes.sort_by(SavedPane::layout_order);
            }
        }
        self.save(&panes)
    }

    /// The ids of the open panes.
    pub fn ids(&self) -> Vec<String> {
        self.lock().iter().map(|p| p.pane_id.clone()).collect()
    }

    pub fn remove(&self, pane_id: &str) -> Result<(), StateError> {
        let mut panes = self.lock();
        let before = panes.len();
        panes.retain(|p| p.pane_id != pane_id);
        if panes.len() == before {
            return Ok(());
        }
        self.save(&panes)
    }

    fn save(&self, panes: &[SavedPane]) -> Result<(), StateError> {
        let write_error = |source| StateError::Write {
            file: self.file.clone(),
            source,
        };
        let mut json = serde_json::to_vec_pretty(&PanesFile {
            format: PANES_FORMAT,
            panes: panes.to_vec(),
        })
        .map_err(|err| write_error(err.into()))?;
        json.push(b'\n');
        let dir = self.file.parent().unwrap_or(Path::new("."));
        let temp = write_temp(dir, &json).map_err(write_error)?;
        temp.persist(&self.file)
            .map_err(|err| write_error(err.error))?;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SavedPane>> {
        // A thread that panicked mid-update left the list as it was before
        // or after its change, both of which are consistent.
        self.panes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(id: &str, index: u32) -> SavedPane {
        SavedPane {
            pane_id: id.to_string(),
            session_id: "abcd1234".to_string(),
            window_id: "0".to_string(),
            pane_index: index,
            command: "sh".to_string(),
            args: vec!["-c".to_string(), "echo hi".to_string()],
            cwd: PathBuf::from("/tmp"),
            profile: None,
        }
    }

    #[test]
    fn the_state_dir_is_created_private() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("a/b/state");
        let state = StateDir::open(&dir).unwrap();
        assert_eq!(state.path(), dir);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn an_existing_state_dir_is_made_private_and_its_lock_file_too() {
        use std::os::unix::fs::PermissionsExt;
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("state");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let _state = StateDir::open(&dir).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(
            mode(&dir.join(LOCK_FILE)) & 0o077,
            0,
            "the lock file is private"
        );
    }

    #[test]
    fn the_server_id_is_created_once_and_kept() {
        let temp = tempfile::tempdir().unwrap();
        let first = StateDir::open(temp.path()).unwrap().server_id().unwrap();
        let state = StateDir::open(temp.path()).unwrap();
        assert_eq!(state.server_id().unwrap(), first);
        assert_eq!(state.server_id().unwrap(), first);
        assert_eq!(first.get_version_num(), 4);
        let text = fs::read_to_string(temp.path().join(SERVER_ID_FILE)).unwrap();
        assert_eq!(text, format!("{first}\n"));
    }

    #[test]
    fn a_damaged_server_id_is_an_error_not_a_new_identity() {
        let temp = tempfile::tempdir().unwrap();
        fs::write(temp.path().join(SERVER_ID_FILE), "not a uuid").unwrap();
        let err = StateDir::open(temp.path())
            .unwrap()
            .server_id()
            .unwrap_err();
        assert!(matches!(err, StateError::BadServerId { .. }), "{err}");
        assert!(err.to_string().contains("server-id"), "{err}");
    }

    #[test]
    fn a_second_open_is_refused_while_the_first_holds_the_lock() {
        let temp = tempfile::tempdir().unwrap();
        let held = StateDir::open(temp.path()).unwrap();
        let err = StateDir::open(temp.path()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StateError::Locked { .. }), "{message}");
        assert!(
            message.contains("another host-shim is running"),
            "{message}"
        );
        assert!(
            message.contains(&temp.path().display().to_string()),
            "{message}"
        );
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(held);
        StateDir::open(temp.path()).expect("the lock is free once dropped");
    }

    #[test]
    fn panes_round_trip_through_the_file() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join(PANES_FILE);
        assert_eq!(load_panes(&file).unwrap(), []);

        let store = PaneStore::create(file.clone(), vec![pane("s_0_0", 0)]).unwrap();
        assert_eq!(load_panes(&file).unwrap(), [pane("s_0_0", 0)]);
        store.upsert(&pane("s_0_1", 1)).unwrap();
        let mut changed = pane("s_0_0", 0);
        changed.command = "bash".to_string();
        store.upsert(&changed).unwrap();
        assert_eq!(
            load_panes(&file).unwrap(),
            [changed.clone(), pane("s_0_1", 1)]
        );
        store.remove("s_0_1").unwrap();
        store.remove("unknown").unwrap();
        assert_eq!(load_panes(&file).unwrap(), [changed]);

        PaneStore::create(file.clone(), Vec::new()).unwrap();
        assert_eq!(load_panes(&file).unwrap(), []);
    }

    #[test]
    fn a_panes_profile_is_saved_and_a_file_from_before_profiles_still_loads() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join(PANES_FILE);
        // As host-shim wrote it before profiles: no `profile` key.
        fs::write(
            &file,
            r#"{"format": 1, "panes": [{"pane_id": "s_0_0", "session_id": "abcd1234", "window_id": "0", "pane_index": 0, "command": "sh", "args": ["-c", "echo hi"], "cwd": "/tmp"}]}"#,
        )
        .unwrap();
        assert_eq!(load_panes(&file).unwrap(), [pane("s_0_0", 0)]);
        // A pane without a profile is written as before; one with it, with it.
        PaneStore::create(file.clone(), vec![pane("s_0_0", 0)]).unwrap();
        assert!(!fs::read_to_string(&file).unwrap().contains("profile"));
        let mut work = pane("s_0_1", 1);
        work.profile = Some("work".to_string());
        PaneStore::create(file.clone(), vec![pane("s_0_0", 0), work.clone()]).unwrap();
        assert_eq!(load_panes(&file).unwrap(), [pane("s_0_0", 0), work]);
        assert!(fs::read_to_string(&file)
            .unwrap()
            .contains(r#""profile": "work""#));
    }

    #[test]
    fn panes_are_saved_in_layout_order_whoever_came_first() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join(PANES_FILE);
        let store = PaneStore::create(file.clone(), vec![pane("s_0_10", 10)]).unwrap();
        let mut other_window = pane("s_2_0", 0);
        other_window.window_id = "2".to_string();
        let mut later_window = pane("s_10_0", 0);
        later_window.window_id = "10".to_string();
        for pane in [&later_window, &pane("s_0_2", 2), &other_window] {
            store.upsert(pane).unwrap();
        }
        let ids: Vec<String> = load_panes(&file)
            .unwrap()
            .into_iter()
            .map(|p| p.pane_id)
            .collect();
        assert_eq!(ids, ["s_0_2", "s_0_10", "s_2_0", "s_10_0"]);
    }

    #[test]
    fn writes_replace_the_file_and_leave_no_temp_files() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join(PANES_FILE);
        let store = PaneStore::create(file.clone(), Vec::new()).unwrap();
        let hold = File::open(&file).unwrap();
        #[cfg(unix)]
        let inode = |f: &File| std::os::unix::fs::MetadataExt::ino(&f.metadata().unwrap());
        store.upsert(&pane("s_0_0", 0)).unwrap();
        // Renamed over, not rewritten in place: a reader (or a crash) never
        // sees a half-written file.
        #[cfg(unix)]
        assert_ne!(inode(&hold), inode(&File::open(&file).unwrap()));
        let old = io::read_to_string(&hold).unwrap();
        assert!(old.contains("\"panes\": []"), "{old}");
        let names: Vec<String> = fs::read_dir(temp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [PANES_FILE]);
    }

    #[test]
    fn a_damaged_or_newer_panes_file_is_refused_with_its_name() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join(PANES_FILE);
        fs::write(&file, "{\"format\": 1, \"panes\": [").unwrap();
        let err = load_panes(&file).unwrap_err();
        assert!(err.to_string().contains("panes.json"), "{err}");
        fs::write(&file, "{\"format\": 2, \"panes\": []}").unwrap();
        let err = load_panes(&file).unwrap_err();
        assert!(err.to_string().contains("format 2"), "{err}");
    }

    #[test]
    fn a_state_dir_is_removed_only_when_unused_and_of_the_given_identity() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("attached/p_0_0");
        let identity = Uuid::new_v4();

        // Held: never removed.
        let state = StateDir::open(&dir).unwrap();
        state.server_id_or(identity).unwrap();
        assert!(!remove_if_unused(&dir, identity).unwrap());
        // A saved pane: kept.
        PaneStore::create(state.panes_file(), vec![pane("p_0_0", 0)]).unwrap();
        drop(state);
        assert!(!remove_if_unused(&dir, identity).unwrap());
        // Another identity: kept, whatever it saves.
        PaneStore::create(dir.join(PANES_FILE), Vec::new()).unwrap();
        assert!(!remove_if_unused(&dir, Uuid::new_v4()).unwrap());
        // Something of someone else's in it: the files go, the dir stays.
        fs::write(dir.join("notes"), "mine").unwrap();
        assert!(!remove_if_unused(&dir, identity).unwrap());
        assert_eq!(fs::read_to_string(dir.join("notes")).unwrap(), "mine");
        fs::remove_file(dir.join("notes")).unwrap();
        // Unused, its own identity: gone; and it opens again as new.
        let state = StateDir::open(&dir).unwrap();
        state.server_id_or(identity).unwrap();
        drop(state);
        assert!(remove_if_unused(&dir, identity).unwrap());
        assert!(!dir.exists());
        let state = StateDir::open(&dir).unwrap();
        assert_eq!(state.server_id_or(identity).unwrap(), identity);
    }
}
