//! Hook arguments with sensible defaults, one line each, for plugin tests
//! (see [`test_host`](crate#testing-a-plugin)) and for hosts that fill in
//! only what they know.
//!
//! ```
//! use ccmux_plugin_api::{PaneExit, PaneInfo, ServerStart};
//!
//! let pane = PaneInfo::new("main_0_1").with_command("claude").with_args(["--resume", "abc"]).with_cwd("/work");
//! assert_eq!((pane.session_id.as_str(), pane.window_id.as_str(), pane.pane_index), ("main", "0", 1));
//!
//! let start = ServerStart::new().with_live_panes(["main_0_1"]);
//! let stop = start.stop();
//! assert_eq!(stop.instance_id, start.instance_id);
//!
//! let exit = PaneExit::exited(0).with_pid(4242);
//! assert!(exit.process_gone);
//! ```

use abi_stable::std_types::{RString, RVec};

use crate::abi::{PaneInfo, ServerStart, ServerStop};

/// The server id of [`ServerStart::new`]: a fixed UUID, as a real server's
/// is stable across its restarts.
pub const TEST_SERVER_ID: &str = "3f2b8c1e-5c7d-4a8e-9f00-0000000000a1";
/// The instance id of [`ServerStart::new`].
pub const TEST_INSTANCE_ID: &str = "3f2b8c1e-5c7d-4a8e-9f00-0000000000b2";
/// The state dir of [`ServerStart::new`]: a path that does not exist, so a
/// plugin that writes there fails loudly; set a temp dir with
/// [`ServerStart::with_state_dir`] when it should work.
pub const TEST_STATE_DIR: &str = "/nonexistent/ccmux-test-state";

impl PaneInfo {
    /// A pane with id `pane_id`. A server-form id
    /// (`{session}_{window}_{index}`) gives session, window and index;
    /// any other id joins session `test`, window `0`, index 0. The pane
    /// runs `sh` with no arguments in `/`.
    ///
    /// The id is not checked here: hand the host a bad one to see it
    /// refused.
    pub fn new(pane_id: &str) -> Self {
        let (session, window, index) = split_server_form(pane_id).unwrap_or(("test", "0", 0));
        PaneInfo {
            pane_id: RString::from(pane_id),
            session_id: RString::from(session),
            window_id: RString::from(window),
            pane_index: index,
            command: RString::from("sh"),
            args: RVec::new(),
            cwd: RString::from("/"),
        }
    }

    /// The same pane, running `program` (with no arguments).
    pub fn with_command(self, program: &str) -> Self {
        PaneInfo {
            command: RString::from(program),
            args: RVec::new(),
            ..self
        }
    }

    /// The same pane, with these arguments to its program.
    pub fn with_args<S: AsRef<str>>(self, args: impl IntoIterator<Item = S>) -> Self {
        PaneInfo {
            args: args
                .into_iter()
                .map(|arg| RString::from(arg.as_ref()))
                .collect(),
            ..self
        }
    }

    /// The same pane, started in `cwd`.
    pub fn with_cwd(self, cwd: impl AsRef<std::path::Path>) -> Self {
        PaneInfo {
            cwd: RString::from(cwd.as_ref().to_string_lossy().as_ref()),
            ..self
        }
    }
}

/// `{session}_{window}_{index}`: the session may itself hold `_`.
fn split_server_form(id: &str) -> Option<(&str, &str, u32)> {
    let mut parts = id.rsplitn(3, '_');
    let index = parts.next()?.parse().ok()?;
    let window = parts.next().filter(|w| !w.is_empty())?;
    let session = parts.next().filter(|s| !s.is_empty())?;
    Some((session, window, index))
}

impl ServerStart {
    /// A server start with [`TEST_SERVER_ID`], [`TEST_INSTANCE_ID`],
    /// [`TEST_STATE_DIR`] and no live panes.
    pub fn new() -> Self {
        ServerStart {
            server_id: RString::from(TEST_SERVER_ID),
            instance_id: RString::from(TEST_INSTANCE_ID),
            state_dir: RString::from(TEST_STATE_DIR),
            live_panes: RVec::new(),
        }
    }

    /// The same start, with these panes restored and live again.
    pub fn with_live_panes<S: AsRef<str>>(self, panes: impl IntoIterator<Item = S>) -> Self {
        ServerStart {
            live_panes: panes
                .into_iter()
                .map(|pane| RString::from(pane.as_ref()))
                .collect(),
            ..self
        }
    }

    /// The same start, with another server identity.
    pub fn with_server_id(self, server_id: &str) -> Self {
        ServerStart {
            server_id: RString::from(server_id),
            ..self
        }
    }

    /// The same start, with another state directory.
    pub fn with_state_dir(self, dir: impl AsRef<std::path::Path>) -> Self {
        ServerStart {
            state_dir: RString::from(dir.as_ref().to_string_lossy().as_ref()),
            ..self
        }
    }

    /// The stop event that ends this run.
    pub fn stop(&self) -> ServerStop {
        ServerStop {
            instance_id: self.instance_id.clone(),
        }
    }
}

impl Default for ServerStart {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_form_ids_give_session_window_and_index() {
        let pane = PaneInfo::new("my_session_3_1");
        assert_eq!(pane.session_id.as_str(), "my_session");
        assert_eq!(pane.window_id.as_str(), "3");
        assert_eq!(pane.pane_index, 1);
        let uuid = PaneInfo::new("0b4c1f9e-5c7d-4a8e-9f00-1234567890ab");
        assert_eq!(
            (
                uuid.session_id.as_str(),
                uuid.window_id.as_str(),
                uuid.pane_index
            ),
            ("test", "0", 0)
        );
    }

    #[test]
    fn defaults_are_a_valid_pane_and_a_fixed_server() {
        let pane = PaneInfo::new("s_0_0");
        assert_eq!(crate::check_pane_id(&pane.pane_id), Ok(()));
        assert_eq!(pane.command.as_str(), "sh");
        assert!(pane.args.is_empty());
        assert_eq!(pane.cwd.as_str(), "/");
        assert_eq!(ServerStart::new(), ServerStart::default());
        assert_eq!(ServerStart::new().server_id.as_str(), TEST_SERVER_ID);
    }
}
