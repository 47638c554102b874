//! SIGHUP re-reads plugins.toml, as daemons conventionally do: plugins are
//! turned on and off without restarting the server. A bad file changes
//! nothing; the error is printed and the running plugins stay.

use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use ccmux_plugin_api::host::PluginHost;
use signal_hook::iterator::{Handle, Signals};

use crate::config_file;

/// Reloads the plugins on SIGHUP for as long as it lives.
pub struct ReloadOnHangup {
    handle: Handle,
    watcher: Option<JoinHandle<()>>,
}

impl ReloadOnHangup {
    /// `hangup` catches SIGHUP, registered when host-shim started so that
    /// an early one neither kills it nor is lost: it reloads once here.
    /// `live_panes` says which panes are open at the time of a reload: a
    /// plugin the reload turns on is told them in its `on_server_start`.
    /// `config` says which plugins.toml and why, for the messages.
    pub fn install(
        mut signals: Signals,
        host: Arc<PluginHost>,
        config: String,
        live_panes: impl Fn() -> Vec<String> + Send + 'static,
    ) -> io::Result<Self> {
        let handle = signals.handle();
        let watcher = thread::Builder::new()
            .name("reload".to_string())
            .spawn(move || {
                for _ in signals.forever() {
                    if let Err(err) = config_file::check_readable(host.config_file()) {
                        say!("host-shim: reload of {config} failed, the plugins stay as they were: {err}");
                        continue;
                    }
                    match host.reload(&live_panes()) {
                        Ok(()) => say!("host-shim: reloaded {config}"),
                        Err(err) => {
                            say!("host-shim: reload of {config} failed, the plugins stay as they were: {err}")
                        }
                    }
                }
            })?;
        Ok(ReloadOnHangup {
            handle,
            watcher: Some(watcher),
        })
    }
}

impl Drop for ReloadOnHangup {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}
