//! Rows 1 and 2: what the plugin boundary itself costs.
//!
//! * row1: one no-op hook call (`PluginHost::pane_create` on the probe
//!   plugin with an empty config) vs the same call on a `Box<dyn Trait>`
//!   in the same process. Also, to tell the parts apart: the host with no
//!   plugin at all (dispatch without crossing into a library), and the
//!   plugin host before any server start (no live-pane bookkeeping).
//! * row2: `PluginHost::start` on a plugins.toml naming the probe plugin vs
//!   a bare `libloading::Library::new` of the same file. The loader caches
//!   an opened file and abi_stable never unloads one, so every load, on
//!   both sides, opens a fresh copy made outside the timed part.

mod common;

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ccmux_benches::report::fmt_value;
use ccmux_benches::{artifacts, pane, plugin_entry, server_start, BenchEnv, Row, Scale, Summary};
use ccmux_plugin_api::host::{PluginHost, PluginLibrary, PluginsConfig};
use ccmux_plugin_api::{HookError, PaneInfo};
use criterion::{Criterion, SamplingMode};

fn main() {
    let scale = Scale::from_args();
    // Built before the fake home is installed: cargo and rustup find their
    // own state through HOME.
    let summary = Summary::new(&artifacts().target_dir);
    let env = BenchEnv::install(scale.pick(1 << 20, 64 << 10));
    let mut c = common::criterion();
    row1(&mut c, &env, &summary, scale);
    row2(&mut c, &env, &summary, scale);
    c.final_summary();
}

/// The in-process baseline: a plain Rust trait with the hook's shape.
trait PaneHooks {
    fn pane_create(&self, pane: &PaneInfo) -> Result<(), HookError>;
}

/// Does what the probe plugin does with an empty config: nothing.
struct NoOp;

impl PaneHooks for NoOp {
    #[inline(never)]
    fn pane_create(&self, pane: &PaneInfo) -> Result<(), HookError> {
        black_box(pane);
        Ok(())
    }
}

fn write_plugins_toml(dir: &Path, entries: &str) -> PathBuf {
    let file = dir.join("plugins.toml");
    fs::write(&file, entries).expect("write plugins.toml");
    file
}

fn row1(c: &mut Criterion, env: &BenchEnv, summary: &Summary, scale: Scale) {
    let dir = env.tempdir("row1-");
    let probe = &artifacts().probe_plugin;
    let with_probe = write_plugins_toml(dir.path(), &plugin_entry("probe", probe, true, ""));
    let empty_dir = env.tempdir("row1-empty-");
    let no_plugins = write_plugins_toml(empty_dir.path(), "");
    let info = pane("bench_w0_0");

    let mut group = c.benchmark_group("row1");
    group
        .sample_size(scale.pick(50, 10))
        .measurement_time(Duration::from_secs(2));

    // A server does this after server_start, so that is the state measured.
    let host = PluginHost::start(&with_probe).expect("the probe plugin loads");
    let server_id = uuid::Uuid::new_v4().to_string();
    host.server_start(&server_start(&server_id, dir.path(), &[]))
        .expect("server_start");
    group.bench_function("plugin", |b| {
        b.iter(|| host.pane_create(black_box(&info)).expect("pane_create"))
    });

    let trait_object: Box<dyn PaneHooks> = black_box(Box::new(NoOp));
    group.bench_function("trait_object", |b| {
        b.iter(|| {
            black_box(&trait_object)
                .pane_create(black_box(&info))
                .expect("pane_create")
        })
    });

    // Where the difference goes: the same host with no plugin listed
    // (snapshot, locks, live-pane set, no library call) ...
    let empty_host = PluginHost::start(&no_plugins).expect("an empty plugins.toml loads");
    empty_host
        .server_start(&server_start(&server_id, empty_dir.path(), &[]))
        .expect("server_start");
    group.bench_function("host_without_plugins", |b| {
        b.iter(|| {
            empty_host
                .pane_create(black_box(&info))
                .expect("pane_create")
        })
    });
    // ... and the plugin with no server started (no live-pane set update).
    let idle_host = PluginHost::start(&with_probe).expect("the probe plugin loads");
    group.bench_function("plugin_before_server_start", |b| {
        b.iter(|| {
            idle_host
                .pane_create(black_box(&info))
                .expect("pane_create")
        })
    });
    group.finish();

    let (Some(plugin), Some(baseline)) = (
        summary.median_ns("row1", "plugin"),
        summary.median_ns("row1", "trait_object"),
    ) else {
        return;
    };
    let overhead = plugin - baseline;
    let host_only = summary.median_ns("row1", "host_without_plugins");
    let idle = summary.median_ns("row1", "plugin_before_server_start");
    summary.print(&Row {
        row: "row1",
        what: "PluginHost::pane_create, probe plugin",
        value: plugin,
        baseline_what: "Box<dyn Trait> call",
        baseline,
        unit: "ns",
        target: "overhead <= 50 ns/call",
        met: overhead <= 50.0,
        note: format!(
            "overhead {overhead:.1} ns/call; host with no plugin {} ns; plugin before server_start {} ns",
            host_only.map_or("-".into(), fmt_value),
            idle.map_or("-".into(), fmt_value),
        ),
    });
}

fn row2(c: &mut Criterion, env: &BenchEnv, summary: &Summary, scale: Scale) {
    let source = artifacts().probe_plugin.clone();
    let dir = env.tempdir("row2-");
    let mut group = c.benchmark_group("row2");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(scale.pick(20, 10))
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));

    // PluginHost: every iteration a fresh copy and its own plugins.toml.
    // Hosts are dropped after the timed part; their libraries stay loaded
    // (abi_stable never unloads), the copies are unlinked at once.
    let mut next = 0usize;
    group.bench_function("plugin_host_start", |b| {
        b.iter_custom(|iters| {
            let configs: Vec<(PathBuf, PathBuf)> = (0..iters)
                .map(|_| {
                    next += 1;
                    let lib = fresh_copy(&source, dir.path(), next);
                    let toml = dir.path().join(format!("plugins-{next}.toml"));
                    fs::write(&toml, plugin_entry("probe", &lib, true, ""))
                        .expect("write plugins.toml");
                    (toml, lib)
                })
                .collect();
            let mut hosts = Vec::with_capacity(configs.len());
            let start = Instant::now();
            for (toml, _) in &configs {
                hosts.push(PluginHost::start(black_box(toml)).expect("the probe plugin loads"));
            }
            let elapsed = start.elapsed();
            for (toml, lib) in &configs {
                let _ = fs::remove_file(toml);
                let _ = fs::remove_file(lib);
            }
            drop(hosts);
            elapsed
        })
    });

    // The bare open of the same file: dlopen and nothing else.
    // The bare open of the same file: dlopen and nothing else.
    group.bench_function("bare_dlopen", |b| {
        b.iter_custom(|iters| {
            time_fresh_loads(iters, &source, dir.path(), &mut next, |lib| {
                // SAFETY: the probe plugin runs no code when it is loaded
                // beyond what any Rust cdylib does.
                unsafe { libloading::Library::new(lib) }.expect("dlopen")
            })
        })
    });
    // Where the difference goes: the two halves of PluginHost::start that
    // are public API. PluginLibrary::open is dlopen plus abi_stable's
    // layout checks (root module, then each hook's signature); reading
    // plugins.toml is the rest, with the plugin's constructor.
    group.bench_function("plugin_library_open", |b| {
        b.iter_custom(|iters| {
            time_fresh_loads(iters, &source, dir.path(), &mut next, |lib| {
                PluginLibrary::open(lib).expect("the probe plugin opens")
            })
        })
    });
    let toml = dir.path().join("plugins-parse.toml");
    fs::write(&toml, plugin_entry("probe", &source, true, "")).expect("write plugins.toml");
    group.bench_function("plugins_toml_load", |b| {
        b.iter(|| PluginsConfig::load(black_box(&toml)).expect("plugins.toml parses"))
    });
    group.finish();

    let (Some(host), Some(bare)) = (
        summary.median_ns("row2", "plugin_host_start"),
        summary.median_ns("row2", "bare_dlopen"),
    ) else {
        return;
    };
    let (host_ms, bare_ms) = (host / 1e6, bare / 1e6);
    summary.print(&Row {
        row: "row2",
        what: "PluginHost::start (plugins.toml, probe plugin)",
        value: host_ms,
        baseline_what: "libloading::Library::new, same file",
        baseline: bare_ms,
        unit: "ms",
        target: "<= 2x bare open and < 5 ms",
        met: host_ms <= 2.0 * bare_ms && host_ms < 5.0,
        note: format!(
            "added {:.3} ms per load; PluginLibrary::open (dlopen + ABI checks) {} ms; PluginsConfig::load {} ms",
            host_ms - bare_ms,
            summary
                .median_ns("row2", "plugin_library_open")
                .map_or("-".into(), |ns| fmt_value(ns / 1e6)),
            summary
                .median_ns("row2", "plugins_toml_load")
                .map_or("-".into(), |ns| fmt_value(ns / 1e6)),
        ),
    });
}

/// A copy of `source` under a name never used before, so the dynamic
/// loader cannot hand back an already opened library.
fn fresh_copy(source: &Path, dir: &Path, n: usize) -> PathBuf {
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let copy = dir.join(format!("{n}-{name}"));
    fs::copy(source, &copy).expect("copy the plugin library");
    copy
}

/// Times `open` on `iters` fresh copies of `source` (made before the clock
/// starts, removed after it stops): the loader caches a file it has opened.
fn time_fresh_loads<T>(
    iters: u64,
    source: &Path,
    dir: &Path,
    next: &mut usize,
    mut open: impl FnMut(&Path) -> T,
) -> Duration {
    let libs: Vec<PathBuf> = (0..iters)
        .map(|_| {
            *next += 1;
            fresh_copy(source, dir, *next)
        })
        .collect();
    let mut opened = Vec::with_capacity(libs.len());
    let start = Instant::now();
    for lib in &libs {
        opened.push(open(black_box(lib)));
    }
    let elapsed = start.elapsed();
    drop(opened);
    for lib in &libs {
        let _ = fs::remove_file(lib);
    }
    elapsed
}
