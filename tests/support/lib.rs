//! Shared set-up for the integration tests: building the real libraries and
//! binaries they load, temp dirs with a fake HOME, and plugins.toml files.
//!
//! `cargo test` does not promise to put a cdylib at `target/<profile>/`, so
//! every test (and bench) binary builds what it loads itself, once, with the
//! cargo that runs it and its own profile.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository root")
        .to_path_buf()
}

/// The target dir and profile dir name of this test or bench binary,
/// which cargo puts at `{target}/{profile}/deps/{name}-{hash}`.
fn locate() -> &'static (PathBuf, String) {
    static LOCATED: OnceLock<(PathBuf, String)> = OnceLock::new();
    LOCATED.get_or_init(|| {
        let exe = std::env::current_exe().unwrap_or_default();
        let profile_dir = exe
            .parent()
            .filter(|deps| deps.file_name().is_some_and(|n| n == "deps"))
            .and_then(Path::parent);
        match (profile_dir, profile_dir.and_then(Path::parent)) {
            (Some(dir), Some(target)) => (
                target.to_path_buf(),
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "debug".into()),
            ),
            // Not run by cargo: the workspace's target dir.
            _ => (
                std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| repo_root().join("target")),
                if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
                .to_string(),
            ),
        }
    })
}

/// Builds `packages` of the workspace at `manifest` into `target_dir`, in
/// this binary's profile.
fn cargo_build(manifest: &Path, target_dir: &Path, packages: &[&str]) {
    let profile = locate().1.as_str();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(repo_root())
        .arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    for package in packages {
        cmd.args(["-p", package]);
    }
    let output = cmd.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build {packages:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The platform's file name for library `name`.
pub fn lib_file_name(name: &str) -> String {
    format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// The workspace's own built artifacts.
pub struct Artifacts {
    /// cargo's target dir (criterion writes its results under it).
    pub target_dir: PathBuf,
    pub host_shim: PathBuf,
    pub isolation_plugin: PathBuf,
    pub probe_plugin: PathBuf,
}

/// Builds host-shim and the plugins once per test or bench binary.
pub fn artifacts() -> &'static Artifacts {
    static BUILT: OnceLock<Artifacts> = OnceLock::new();
    BUILT.get_or_init(|| {
        let (target, profile) = locate();
        cargo_build(
            &repo_root().join("Cargo.toml"),
            target,
            &[
                "ccmux-host-shim",
                "ccmux-isolation-plugin",
                "ccmux-probe-plugin",
            ],
        );
        let dir = target.join(profile);
        Artifacts {
            target_dir: target.clone(),
            host_shim: dir.join(format!("host-shim{}", std::env::consts::EXE_SUFFIX)),
            isolation_plugin: dir.join(lib_file_name("ccmux_isolation_plugin")),
            probe_plugin: dir.join(lib_file_name("ccmux_probe_plugin")),
        }
    })
}

/// A fixture plugin from tests/fixtures (built against another interface
/// than the host's), built on first use. Each is built on its own so the
/// features it selects on the frozen interface are not unified.
pub fn fixture_plugin(package: &str) -> PathBuf {
    build_fixture(package).join(lib_file_name(&package.replace('-', "_")))
}

/// Builds one package of tests/fixtures on its own (one at a time, into
/// the fixtures' own target dir); the dir its artifacts are in.
fn build_fixture(package: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let (target, profile) = locate();
    let target = target.join("fixtures");
    cargo_build(
        &repo_root().join("tests/fixtures/Cargo.toml"),
        &target,
        &[package],
    );
    target.join(profile)
}

/// A temp dir with a fake `HOME` inside, so nothing a test runs can touch
/// the real one.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ccmux-test-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("fake home");
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// Writes `text` to `name` in the sandbox and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent dir");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }

    /// A command with a fake HOME and the sandbox as its temp and state
    /// dirs, with no inherited Claude or ccmux variables.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.path())
            .env("HOME", self.home())
            .env("XDG_STATE_HOME", self.path().join("xdg-state"))
            .env("XDG_DATA_HOME", self.path().join("xdg-data"))
            .env("XDG_CONFIG_HOME", self.path().join("xdg-config"))
            .env("XDG_CACHE_HOME", self.path().join("xdg-cache"))
            .env("TMPDIR", self.path())
            .env("CLAUDE_CODE_TMPDIR", self.path().join("claude-tmp"))
            .env("DISABLE_AUTOUPDATER", "1")
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("CLAUDE_SECURESTORAGE_CONFIG_DIR")
            .env_remove("CCMUX_PANE_ID")
            .env_remove("CCMUX_PROFILE")
            .env_remove("CCMUX_CLAUDE_SESSION_ID")
            .env_remove("CCMUX_USER_CLAUDE_CONFIG_DIR")
            .env_remove("CCMUX_PROFILE")
            .env_remove("CCMUX_PLUGINS_CONFIG")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("RUST_LOG");
        cmd
    }

    /// host-shim with this sandbox's environment.
    pub fn host_shim(&self) -> Command {
        self.command(&artifacts().host_shim)
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// A plugins.toml `[[plugins]]` entry.
pub fn plugin_entry(name: &str, path: &Path, required: bool, config: &str) -> String {
    format!(
        "[[plugins]]\nname = {name:?}\npath = {path:?}\nrequired = {required}\n[plugins.config]\n{config}\n\n",
        path = path.display().to_string()
    )
}

/// Output as text, for assertions and failure messages.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion with no stdin.
pub fn run(mut cmd: impl std::borrow::BorrowMut<Command>) -> Run {
    cmd.borrow_mut()
        .stdin(std::process::Stdio::null())
        .output()
        .expect("command starts")
        .into()
}

/// Lines host-shim printed for `pane` (without the `[PANE] ` prefix).
pub fn pane_lines<'a>(stdout: &'a str, pane: &str) -> Vec<&'a str> {
    let prefix = format!("[{pane}] ");
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .collect()
}

/// The ids of the panes that printed anything, in first-seen order.
pub fn pane_ids(stdout: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            if let Some((id, _)) = rest.split_once("] ") {
                if !ids.iter().any(|known| known == id) {
                    ids.push(id.to_string());
                }
            }
        }
    }
    ids
}

/// The Claude Code CLI named by `CLAUDE_BIN`, for the tests that run it.
/// Those tests are marked
/// `#[cfg_attr(not(claude_cli), ignore = "...")]` (the cfg comes from this
/// crate's build script), so without the CLI they show as ignored in
/// libtest's summary; run with `--ignored` anyway, they fail here saying
/// what to set.
pub fn claude_bin() -> PathBuf {
    match std::env::var_os("CLAUDE_BIN") {
        Some(bin) if Path::new(&bin).is_file() => PathBuf::from(bin),
        _ => panic!(
            "CLAUDE_BIN must name the Claude Code CLI: run with CLAUDE_BIN=\"$(.ci/install-claude)\""
        ),
    }
}

/// Polls `done` every 50 ms for up to `secs` seconds; panics naming `what`
/// if it never holds. For waiting on other processes, never for timing.
pub fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A process started in the background with its output going to files in
/// the sandbox; killed when dropped.
pub struct Background {
    pub child: std::process::Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Background {
    pub fn start(mut cmd: Command, sandbox: &Sandbox, name: &str) -> Self {
        let stdout = sandbox.path().join(format!("{name}.stdout"));
        let stderr = sandbox.path().join(format!("{name}.stderr"));
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("background process starts");
        Background {
            child,
            stdout,
            stderr,
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends `signal` (a `kill -s` name such as TERM or KILL).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Waits for the process to exit (up to `secs`) and returns its status.
    pub fn wait(&mut self, secs: u64) -> std::process::ExitStatus {
        let mut status = None;
        wait_for("the background process to exit", secs, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status.expect("exited")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` without terminal control sequences (CSI, OSC, and two-byte
/// escapes), for matching what a program under a PTY printed.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates, then one final byte.
            // Cursor forward (`CSI n C`) stands for n spaces and a move to
            // a column (`CSI n G`) for one: programs that draw the screen
            // use them between words.
            Some('[') => {
                let mut params = String::new();
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        if c == 'C' {
                            let n = params.parse().unwrap_or(1usize).clamp(1, 512);
                            out.extend(std::iter::repeat_n(' ', n));
                        }
                        // Cursor to a column: at least a word break.
                        if c == 'G' {
                            out.push(' ');
                        }
                        break;
                    }
                    params.push(c);
                }
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' {
                        break;
                    }
                    if c == '\x1b' {
                        chars.next();
                        break;
                    }
                }
            }
            // Character set designations take one more byte.
            Some('(' | ')' | '*' | '+') => {
                chars.next();
            }
            _ => {}
        }
    }
    out
}

/// A program running in a pseudo-terminal that the test holds, as a
/// person's terminal window: what is typed, its size, what it shows.
/// The program is killed when this is dropped.
pub struct OuterTerminal {
    master: Option<Box<dyn portable_pty::MasterPty + Send>>,
    writer: Option<Box<dyn std::io::Write + Send>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Tells the output reader to close its descriptor.
    closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Set by the output reader when it has read everything (the terminal
    /// ended) or was told to stop.
    drained: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Appends what the terminal shows to `output` until it ends or `closed`.
fn copy_terminal_output(
    mut reader: std::fs::File,
    output: &std::sync::Mutex<Vec<u8>>,
    closed: &std::sync::atomic::AtomicBool,
) {
    use std::os::fd::AsRawFd;
    let mut buffer = [0u8; 8192];
    while !closed.load(std::sync::atomic::Ordering::SeqCst) {
        let mut poll = libc::pollfd {
            fd: reader.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut poll, 1, 50) } <= 0 {
            continue;
        }
        match std::io::Read::read(&mut reader, &mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => output
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&buffer[..read]),
        }
    }
}

impl OuterTerminal {
    /// Runs `cmd` (program, args, cwd and env changes as set on it) in a
    /// new terminal of `rows` x `cols`.
    pub fn start(cmd: &Command, rows: u16, cols: u16) -> Self {
        use portable_pty::{native_pty_system, CommandBuilder, PtySize};

        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                ..PtySize::default()
            })
            .expect("openpty");
        let mut builder = CommandBuilder::new(cmd.get_program());
        builder.args(cmd.get_args());
        if let Some(dir) = cmd.get_current_dir() {
            builder.cwd(dir);
        }
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => builder.env(key, value),
                None => builder.env_remove(key),
            }
        }
        builder.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(builder).expect("spawn in pty");
        drop(pair.slave);
        let writer = pair.master.take_writer().expect("pty writer");
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let drained = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Its own descriptor, polled, so that `close` can make it let go:
        // the terminal hangs up only once every descriptor of it is closed.
        let fd = pair.master.as_raw_fd().expect("pty master fd");
        // SAFETY: dup of an open descriptor; the copy is owned by the File.
        let reader =
            unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(libc::dup(fd)) };
        std::thread::spawn({
            let output = output.clone();
            let closed = closed.clone();
            let drained = drained.clone();
            move || {
                copy_terminal_output(reader, &output, &closed);
                drained.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        OuterTerminal {
            master: Some(pair.master),
            writer: Some(writer),
            child,
            output,
            closed,
            drained,
        }
    }

    /// Everything shown so far, as text.
    pub fn output(&self) -> String {
        let bytes = self.output.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// [`output`](Self::output) without control sequences.
    pub fn text(&self) -> String {
        strip_ansi(&self.output())
    }

    /// Waits (up to `secs`) until the text shown contains `needle`.
    pub fn wait_for_text(&self, needle: &str, secs: u64) {
        let mut shown = String::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            shown = self.text();
            if shown.contains(needle) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "timed out after {secs}s waiting for {needle:?} on the terminal; it shows:\n{shown}"
        );
    }

    /// Waits (up to `secs`) until the text shown contains one of
    /// `needles`, and returns the one it found.
    pub fn wait_for_any_text<'a>(&self, needles: &[&'a str], secs: u64) -> &'a str {
        let mut shown = String::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            shown = self.text();
            if let Some(found) = needles.iter().find(|n| shown.contains(**n)) {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "timed out after {secs}s waiting for any of {needles:?} on the terminal; it shows:\n{shown}"
        );
    }

    /// Answers a menu by choosing the option whose text is `choice`,
    /// whatever its position and whichever option is selected when it
    /// appears, and waits until one of `then` shows. `question` is a text
    /// shown above the menu, `options` the text of each of its options.
    ///
    /// It reads which option the selection mark (`❯`) is on in the menu's
    /// last full drawing, moves it one step at a time with arrow keys
    /// (counting them: the program redraws only what changed), and presses
    /// Enter once the mark is on `choice`, until the next screen shows: a
    /// menu drawn again (and reset) while it is answered is answered again.
    pub fn choose(
        &mut self,
        question: &str,
        options: &[&str],
        choice: &str,
        then: &[&str],
        secs: u64,
    ) {
        self.wait_for_text(question, secs);
        let answered_from = self.output().len();
        // The last full drawing of the menu (where the question was printed
        // last, in the stripped output) and how many steps the mark was
        // moved since: a program moving the mark redraws only the lines
        // that changed, so the stream after a full drawing does not say
        // where the mark is, but the drawing and the keys sent do.
        let mut drawn_at: Option<usize> = None;
        let mut moved: isize = 0;
        // Claude probes the terminal (ending with a primary device
        // attributes request, `ESC [ c`) and reads the next input as the
        // answer until one comes: a real terminal answers at once, so this
        // one does too, or the first key would be taken for the answer.
        let mut answered = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let output = self.output();
            let after = strip_ansi(output.get(answered_from..).unwrap_or_default());
            if then.iter().any(|t| after.contains(t)) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after {secs}s choosing {choice:?} for {question:?} (then any of {then:?}); the terminal shows:\n{}",
                strip_ansi(&output)
            );
            let asked = output.matches("\x1b[c").count();
            while answered < asked {
                // The kitty keyboard query and the version query first: a
                // terminal that knows neither just answers the DA1.
                if output.contains("\x1b[?u") {
                    self.type_bytes(b"\x1b[?0u");
                }
                self.type_bytes(b"\x1b[?62;22c");
                answered += 1;
            }
            // Keys go in only once the program has been quiet for a moment:
            // a program that redraws its whole screen when its terminal
            // probe ends (reset menu included) has done so by then.
            let quiet_since = std::time::Instant::now();
            let mut seen = output.len();
            while quiet_since.elapsed() < std::time::Duration::from_millis(800) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let now = self.output().len();
                if now != seen {
                    seen = now;
                    break;
                }
            }
            if seen != output.len() {
                continue;
            }
            let text = strip_ansi(&output);
            // (the option the mark is on, the one wanted), in the order the
            // options are shown, from the last full drawing.
            let drawing = text.rfind(question).and_then(|at| {
                let tail = &text[at..];
                let mark = tail.find('❯')?;
                let mut shown: Vec<(usize, &str)> = options
                    .iter()
                    .filter_map(|o| tail.find(o).map(|found| (found, *o)))
                    .collect();
                if shown.len() < options.len() {
                    return None;
                }
                shown.sort();
                let selected = shown.iter().position(|(found, _)| *found > mark)?;
                let wanted = shown.iter().position(|(_, o)| *o == choice)?;
                Some((at, selected, wanted))
            });
            // A redraw of only the lines that changed shows the mark right
            // before the option it is on now: the latest such says where.
            let redrawn = drawing.and_then(|(at, _, _)| {
                let tail = &text[at..];
                let mark = tail.rfind('❯')?;
                let rest = tail[mark + '❯'.len_utf8()..].trim_start();
                let mut shown: Vec<(usize, &str)> = options
                    .iter()
                    .filter_map(|o| tail.find(o).map(|found| (found, *o)))
                    .collect();
                shown.sort();
                shown.iter().position(|(_, o)| rest.starts_with(o))
            });
            let Some((at, selected, wanted)) = drawing else {
                // The menu is not (fully) drawn, or it is gone.
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            };
            if drawn_at != Some(at) {
                drawn_at = Some(at);
                moved = 0;
            }
            let selected = match redrawn {
                Some(now) => {
                    moved = now as isize - selected as isize;
                    now as isize
                }
                None => selected as isize + moved,
            };
            let wanted = wanted as isize;
            let key: &[u8] = if selected == wanted {
                b"\r"
            } else if selected < wanted {
                moved += 1;
                b"\x1b[B"
            } else {
                moved -= 1;
                b"\x1b[A"
            };
            let before = output.len();
            self.type_bytes(key);
            // The program answers a key by drawing; an Enter that it took
            // may draw nothing for a while (a bounded wait, then look again).
            let answer_deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while self.output().len() == before && std::time::Instant::now() < answer_deadline {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Types `bytes` as one write.
    pub fn type_bytes(&mut self, bytes: &[u8]) {
        use std::io::Write as _;
        let writer = self.writer.as_mut().expect("terminal open");
        writer.write_all(bytes).expect("type into the terminal");
        writer.flush().expect("flush the terminal");
    }

    /// Types `text` one key at a time, each once the program has shown
    /// something in answer to the one before (interactive programs take
    /// a burst of keys for a paste).
    pub fn type_keys(&mut self, text: &str) {
        for key in text.bytes() {
            let before = self.output().len();
            self.type_bytes(&[key]);
            wait_for("the terminal to answer a key", 20, || {
                self.output().len() > before
            });
        }
    }

    pub fn resize(&self, rows: u16, cols: u16) {
        self.master
            .as_ref()
            .expect("terminal open")
            .resize(portable_pty::PtySize {
                rows,
                cols,
                ..portable_pty::PtySize::default()
            })
            .expect("resize the terminal");
    }

    /// Closes the terminal, as closing its window does: the program gets
    /// SIGHUP and end of file.
    pub fn close(&mut self) {
        self.writer = None;
        self.master = None;
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn pid(&self) -> u32 {
        self.child.process_id().expect("pid")
    }

    /// Waits (up to `secs`) for the program to exit: its exit code, and
    /// the signal that killed it if one did.
    pub fn wait(&mut self, secs: u64) -> (u32, Option<String>) {
        let mut status = None;
        wait_for("the program in the terminal to exit", secs, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        let status = status.expect("exited");
        // What the program wrote just before it exited may not be read
        // yet: wait for the reader to reach the terminal's end (once every
        // process that had it is gone). A process still holding the
        // terminal only makes this wait its 10 s, never fail.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.drained.load(std::sync::atomic::Ordering::SeqCst)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        (status.exit_code(), status.signal().map(str::to_string))
    }
}

impl Drop for OuterTerminal {
    fn drop(&mut self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The template plugin (templates/plugin), built as the cdylib a person
/// would build from it. Built together with host-shim, so the plugin API
/// is compiled once with the features the other artifacts use.
pub fn template_plugin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            artifacts();
            let (target, profile) = locate();
            cargo_build(
                &repo_root().join("Cargo.toml"),
                target,
                &["ccmux-host-shim", "hello-plugin"],
            );
            target.join(profile).join(lib_file_name("hello_plugin"))
        })
        .clone()
}

/// A binary from tests/fixtures (such as `old-host`, a host built against
/// the frozen older interface), built on first use on its own.
pub fn fixture_binary(package: &str) -> PathBuf {
    build_fixture(package).join(format!("{package}{}", std::env::consts::EXE_SUFFIX))
}

/// Runs the doc tests of `package` with `features`, in this binary's
/// target dir and profile; the output if they fail.
pub fn cargo_doc_tests(package: &str, features: &str) -> Result<(), String> {
    let (target, profile) = locate();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(repo_root())
        .args([
            "test",
            "--quiet",
            "--doc",
            "-p",
            package,
            "--features",
            features,
        ])
        .arg("--target-dir")
        .arg(target);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let output = cmd
        .output()
        .map_err(|err| format!("cargo does not run: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
