//! Carries a plugin's `tracing` events to the host's subscriber.
//!
//! A cdylib links its own copy of `tracing`, with its own global
//! dispatcher, so events emitted inside a plugin would reach nothing. The
//! plugin side installs a small subscriber in the plugin's copy that turns
//! each event into text and hands it to the host's [`LogSink`]; the host side
//! re-emits it under the target `ccmux::plugin` with the plugin's name as a
//! field. Spans are not forwarded.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::{Once, OnceLock, RwLock};

use abi_stable::std_types::RStr;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

use crate::abi::{level_to_u8, LogSink};

static SINK: OnceLock<LogSink> = OnceLock::new();
/// Events from threads that are not running a hook (a plugin's own worker
/// threads) are attributed to the instance constructed last.
static DEFAULT_NAME: RwLock<String> = RwLock::new(String::new());

thread_local! {
    /// The name of the instance whose hook this thread is running.
    static CURRENT: Cell<Option<*const str>> = const { Cell::new(None) };
}

/// Plugin side: route this library's `tracing` events to the host.
pub(crate) fn install(sink: LogSink) {
    let _ = SINK.set(sink);
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = tracing::dispatcher::set_global_default(tracing::Dispatch::new(ForwardToHost));
    });
}

/// Events from the plugin's own threads go to `plugin_name` from now on:
/// the instance constructed last.
pub(crate) fn set_default_name(plugin_name: &str) {
    if let Ok(mut name) = DEFAULT_NAME.write() {
        *name = plugin_name.to_string();
    }
}

/// Attributes this thread's events to `name` until the guard is dropped.
/// (`try_with`: thread-local storage may be gone while a thread exits, and
/// a panic here would abort inside an `extern "C"` function.)
pub(crate) fn attribute_to(name: &str) -> Attribution {
    let previous = CURRENT
        .try_with(|c| c.replace(Some(name as *const str)))
        .unwrap_or(None);
    Attribution { previous }
}

pub(crate) struct Attribution {
    previous: Option<*const str>,
}

impl Drop for Attribution {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(self.previous));
    }
}

struct ForwardToHost;

impl Subscriber for ForwardToHost {
    // Interest is never cached: the host's filter decides per event.
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        SINK.get()
            .is_some_and(|sink| (sink.enabled)(level_to_u8(metadata.level())))
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let Some(sink) = SINK.get() else { return };
        let mut text = EventText::default();
        event.record(&mut text);
        let message = text.finish();
        let metadata = event.metadata();
        let level = level_to_u8(metadata.level());
        let target = RStr::from_str(metadata.target());
        match CURRENT.try_with(Cell::get).unwrap_or(None) {
            Some(name) => (sink.emit)(
                // SAFETY: `attribute_to` set the pointer from a `&str` (an
                // instance's name) that outlives the guard it returned, and
                // the guard resets `CURRENT` when dropped; this runs on the
                // same thread, inside the guard's lifetime, so the string
                // is alive and unchanged.
                RStr::from_str(unsafe { &*name }),
                level,
                target,
                RStr::from_str(&message),
            ),
            None => {
                let name = DEFAULT_NAME.read().map(|n| n.clone()).unwrap_or_default();
                (sink.emit)(
                    RStr::from_str(&name),
                    level,
                    target,
                    RStr::from_str(&message),
                )
            }
        }
    }
}

/// The message first, then ` key=value` for every other field.
#[derive(Default)]
struct EventText {
    message: String,
    fields: String,
}

impl EventText {
    fn finish(mut self) -> String {
        self.message.push_str(&self.fields);
        self.message
    }
}

impl Visit for EventText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// Host side: the sink handed to every plugin this host constructs.
#[cfg(feature = "host")]
pub fn host_log_sink() -> LogSink {
    LogSink {
        enabled: host_wants_level,
        emit: receive_plugin_event,
    }
}

#[cfg(feature = "host")]
extern "C" fn host_wants_level(level: u8) -> bool {
    std::panic::catch_unwind(|| match level {
        1 => tracing::enabled!(target: "ccmux::plugin", tracing::Level::ERROR),
        2 => tracing::enabled!(target: "ccmux::plugin", tracing::Level::WARN),
        3 => tracing::enabled!(target: "ccmux::plugin", tracing::Level::INFO),
        4 => tracing::enabled!(target: "ccmux::plugin", tracing::Level::DEBUG),
        _ => tracing::enabled!(target: "ccmux::plugin", tracing::Level::TRACE),
    })
    .unwrap_or(false)
}

#[cfg(feature = "host")]
extern "C" fn receive_plugin_event(
    plugin: RStr<'_>,
    level: u8,
    target: RStr<'_>,
    message: RStr<'_>,
) {
    // A panicking subscriber must not unwind into the plugin.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // What a plugin logs reaches the user's terminal: shown, not obeyed.
        let printable = crate::host::printable;
        let (plugin, origin, message) = (
            printable(plugin.as_str()),
            printable(target.as_str()),
            printable(message.as_str()),
        );
        let (plugin, origin, message) = (plugin.as_ref(), origin.as_ref(), message.as_ref());
        match level {
            1 => tracing::error!(target: "ccmux::plugin", plugin, origin, "{message}"),
            2 => tracing::warn!(target: "ccmux::plugin", plugin, origin, "{message}"),
            3 => tracing::info!(target: "ccmux::plugin", plugin, origin, "{message}"),
            4 => tracing::debug!(target: "ccmux::plugin", plugin, origin, "{message}"),
            _ => tracing::trace!(target: "ccmux::plugin", plugin, origin, "{message}"),
        }
    }));
}
