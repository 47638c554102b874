//! Rows 6 and 7: host-shim end to end, isolation plugin loaded vs listed
//! but disabled (`enabled = false`: its library is never opened).
//!
//! * row6: `host-shim run --panes N -- true`, from spawn to exit, for 1
//!   pane and for 8 (which run at once). The difference per run with one
//!   pane is what isolation adds to a pane, one-time costs (loading the
//!   library, the owner lock, the orphan scan, parsing the user's
//!   `.claude.json`) included; the slope between 1 and 8 panes is what it
//!   adds to each further pane.
//! * row7: host-shim's resident memory while its pane runs, read by the
//!   pane itself (`/proc/$PPID/status`: the pane's parent is host-shim).
//!   Criterion times these runs too, but only the memory matters: it is
//!   printed as a `SUMMARY` table line at the end of the row.
//! * row11: 30 panes of one server that each trusted a folder, closing at
//!   once: from the last pane's exit to host-shim's (every change merged
//!   into the user's `.claude.json` by then), with `grace_period_ms = 0`
//!   and the default; against one such pane. Pending entries left are
//!   counted.
//! * row12: a server start with 0, 10 and 60 pending carry-backs: the time
//!   until the first pane's command runs (the pane prints the clock).

mod common;

use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ccmux_benches::report::fmt_value;
use ccmux_benches::{artifacts, isolation_config, plugin_entry, BenchEnv, Row, Scale, Summary};
use criterion::{BenchmarkId, Criterion, SamplingMode};

fn main() {
    let scale = Scale::from_args();
    // Built before the fake home is installed: cargo and rustup find their
    // own state through HOME.
    let summary = Summary::new(&artifacts().target_dir);
    let env = BenchEnv::install(scale.pick(1 << 20, 64 << 10));
    let mut c = common::criterion();
    let on = Server::new(&env, "on", true);
    let off = Server::new(&env, "off", false);
    row6(&mut c, &env, &summary, scale, &on, &off);
    row7(&mut c, &env, &summary, scale, &on, &off);
    row11(&mut c, &env, &summary, scale);
    row12(&mut c, &env, &summary, scale);
    c.final_summary();
}

/// One plugins.toml and state dir for host-shim.
struct Server {
    config: PathBuf,
    state_dir: PathBuf,
    base_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn new(env: &BenchEnv, name: &str, enabled: bool) -> Server {
        Server::with_grace(env, name, enabled, 0)
    }

    fn with_grace(env: &BenchEnv, name: &str, enabled: bool, grace_ms: u64) -> Server {
        Server::configured(env, name, enabled, grace_ms, "")
    }

    /// A server whose isolation config has `extra` (TOML lines) added.
    fn configured(env: &BenchEnv, name: &str, enabled: bool, grace_ms: u64, extra: &str) -> Server {
        let dir = env.tempdir(&format!("host-shim-{name}-"));
        let base_dir = dir.path().join("panes");
        let config = dir.path().join("plugins.toml");
        fs::write(
            &config,
            plugin_entry(
                "isolation",
                &artifacts().isolation_plugin,
                enabled,
                &format!("{}{extra}", isolation_config(&base_dir, grace_ms)),
            ),
        )
        .expect("write plugins.toml");
        Server {
            config,
            state_dir: dir.path().join("state"),
            base_dir,
            _dir: dir,
        }
    }

    /// The pending carry-backs in the base dir.
    fn pending(&self) -> usize {
        fs::read_dir(self.base_dir.join(".pending-carry-back"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Runs `host-shim run --panes N -- CMD...` to its end; returns its
    /// stdout and how long it took.
    fn run(&self, env: &BenchEnv, panes: u32, command: &[&str]) -> (String, Duration) {
        let mut cmd = env.command(&artifacts().host_shim);
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--panes")
            .arg(panes.to_string())
            .arg("--")
            .args(command);
        let start = Instant::now();
        let output = cmd.output().expect("host-shim runs");
        let elapsed = start.elapsed();
        assert!(
            output.status.success(),
            "host-shim failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            elapsed,
        )
    }
}

fn row6(
    c: &mut Criterion,
    env: &BenchEnv,
    summary: &Summary,
    scale: Scale,
    on: &Server,
    off: &Server,
) {
    let mut group = c.benchmark_group("row6");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(scale.pick(20, 10))
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for panes in [1u32, 8] {
        for (name, server) in [("isolation_on", on), ("isolation_off", off)] {
            group.bench_function(BenchmarkId::new(name, format!("{panes}-panes")), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| server.run(env, panes, &["true"]).1)
                        .sum()
                })
            });
        }
    }
    group.finish();
    // Every pane dir was removed at close (grace period 0).
    let left = fs::read_dir(&on.base_dir)
        .map(|d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(
        left,
        0,
        "host-shim left pane dirs in {}",
        on.base_dir.display()
    );

    let get = |f: &str, n: u32| summary.median_ns("row6", &format!("{f}/{n}-panes"));
    let ms = |ns: f64| ns / 1e6;
    if let (Some(on1), Some(off1)) = (get("isolation_on", 1), get("isolation_off", 1)) {
        let added = ms(on1 - off1);
        let note = match (get("isolation_on", 8), get("isolation_off", 8)) {
            (Some(on8), Some(off8)) => format!(
                "added per run of 1 pane {} ms; 8 panes at once: on {} ms, off {} ms, added {} ms per pane; marginal (slope 1->8 panes) added per pane {} ms",
                fmt_value(added),
                fmt_value(ms(on8)),
                fmt_value(ms(off8)),
                fmt_value(ms(on8 - off8) / 8.0),
                fmt_value(ms((on8 - on1) - (off8 - off1)) / 7.0),
            ),
            _ => format!("added per run of 1 pane {} ms", fmt_value(added)),
        };
        summary.print(&Row {
            row: "row6",
            what: "host-shim run --panes 1 -- true, isolation on",
            value: ms(on1),
            baseline_what: "plugin disabled in plugins.toml",
            baseline: ms(off1),
            unit: "ms",
            target: "< 2 ms added per pane",
            met: added < 2.0,
            note,
        });
    }
}

/// `/proc/PID/status` figures of host-shim, in KiB, as its pane read them.
#[derive(Debug, Default, Clone, Copy)]
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
}

fn read_memory(stdout: &str) -> Memory {
    let mut memory = Memory::default();
    let mut name = None;
    for line in stdout.lines() {
        // `[PANE-ID] Key:   value kB`
        let Some((_, text)) = line.split_once("] ") else {
            continue;
        };
        let Some((key, value)) = text.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => name = Some(value.to_string()),
            "VmRSS" => memory.rss_kib = kib(value),
            "VmHWM" => memory.hwm_kib = kib(value),
            _ => {}
        }
    }
    assert_eq!(
        name.as_deref(),
        Some("host-shim"),
        "the pane's parent is host-shim; pane output:\n{stdout}"
    );
    assert!(memory.rss_kib > 0, "VmRSS read; pane output:\n{stdout}");
    memory
}

fn kib(value: &str) -> u64 {
    value
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or_default()
}

fn row7(
    c: &mut Criterion,
    env: &BenchEnv,
    summary: &Summary,
    scale: Scale,
    on: &Server,
    off: &Server,
) {
    const READ_STATUS: &[&str] = &[
        "sh",
        "-c",
        "grep -E '^(Name|VmRSS|VmHWM):' /proc/$PPID/status",
    ];
    let readings: [Mutex<Vec<Memory>>; 2] = Default::default();
    let mut group = c.benchmark_group("row7");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(scale.pick(2, 1)));
    for (i, (name, server)) in [("plugin_loaded", on), ("plugin_disabled", off)]
        .into_iter()
        .enumerate()
    {
        let readings = &readings[i];
        group.bench_function(BenchmarkId::new("host_shim_rss", name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (stdout, took) = server.run(env, 1, READ_STATUS);
                    readings
                        .lock()
                        .expect("readings")
                        .push(read_memory(&stdout));
                    total += took;
                }
                total
            })
        });
    }
    group.finish();

    let [loaded, disabled] = readings.map(|r| r.into_inner().expect("readings"));
    if scale == Scale::Test || loaded.is_empty() || disabled.is_empty() {
        return;
    }
    let med = |v: &[Memory], f: fn(&Memory) -> u64| {
        let mut xs: Vec<u64> = v.iter().map(f).collect();
        xs.sort_unstable();
        xs[xs.len() / 2] as f64 / 1024.0
    };
    let (rss_on, rss_off) = (med(&loaded, |m| m.rss_kib), med(&disabled, |m| m.rss_kib));
    let (hwm_on, hwm_off) = (med(&loaded, |m| m.hwm_kib), med(&disabled, |m| m.hwm_kib));
    summary.print(&Row {
        row: "row7",
        what: "host-shim VmRSS while its pane runs, plugin loaded",
        value: rss_on,
        baseline_what: "plugin disabled",
        baseline: rss_off,
        unit: "MiB",
        target: "< 2 MiB added",
        met: rss_on - rss_off < 2.0,
        note: format!(
            "added VmRSS {:.2} MiB; VmHWM (peak) {} vs {} MiB, added {:.2} MiB; medians of {} and {} runs",
            rss_on - rss_off,
            fmt_value(hwm_on),
            fmt_value(hwm_off),
            hwm_on - hwm_off,
            loaded.len(),
            disabled.len()
        ),
    });
    summary.note(&format!(
        "row7 table | host-shim memory (MiB) | VmRSS loaded {} | VmRSS disabled {} | VmRSS added {:.2} | VmHWM loaded {} | VmHWM disabled {} | VmHWM added {:.2}",
        fmt_value(rss_on),
        fmt_value(rss_off),
        rss_on - rss_off,
        fmt_value(hwm_on),
        fmt_value(hwm_off),
        hwm_on - hwm_off
    ));
}

/// A pane command that trusts a folder of its own (a new project in its
/// `.claude.json`, as Claude writes it when the user says yes), so that
/// every pane has a change to carry back.
const TRUST_A_FOLDER: &[&str] = &[
    "sh",
    "-c",
    "sed -i \"s|\\\"projects\\\":{|\\\"projects\\\":{\\\"/bench/$$\\\":{\\\"hasTrustDialogAccepted\\\":true},|\" \"$CLAUDE_CONFIG_DIR/.claude.json\" && date +%s%N",
];

/// The clock each pane printed last (`date +%s%N`), in nanoseconds since
/// the epoch: when the last of them exited.
fn last_pane_exit(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|line| line.split_once("] "))
        .filter_map(|(_, text)| text.trim().parse::<u64>().ok())
        .max()
        .expect("the panes printed the clock")
}

fn nanos_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

fn row11(c: &mut Criterion, env: &BenchEnv, summary: &Summary, scale: Scale) {
    let panes = scale.pick(30, 4);
    let servers = [
        ("grace_0", Server::with_grace(env, "row11-g0", true, 0)),
        (
            "grace_default",
            Server::with_grace(env, "row11-g3000", true, 3000),
        ),
    ];
    // The same panes with nothing carried back: what closing them costs
    // without any merge.
    let no_carry = [
        (
            "grace_0_no_carry_back",
            Server::configured(env, "row11-g0-nc", true, 0, "carry_back = false\n"),
        ),
        (
            "grace_default_no_carry_back",
            Server::configured(env, "row11-g3000-nc", true, 3000, "carry_back = false\n"),
        ),
    ];
    let before = projects_trusted(env);
    let mut group = c.benchmark_group("row11");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(scale.pick(4, 1)));
    let mut runs = 0;
    for (name, server) in &servers {
        for n in [1, panes] {
            group.bench_function(BenchmarkId::new(*name, format!("{n}-panes")), |b| {
                // From the last pane's exit to host-shim's: the closes, the
                // merges and the server's stop.
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            runs += n as usize;
                            let (stdout, _) = server.run(env, n, TRUST_A_FOLDER);
                            Duration::from_nanos(
                                nanos_now().saturating_sub(last_pane_exit(&stdout)),
                            )
                        })
                        .sum()
                })
            });
        }
    }
    for (name, server) in &no_carry {
        group.bench_function(BenchmarkId::new(*name, format!("{panes}-panes")), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let (stdout, _) = server.run(env, panes, TRUST_A_FOLDER);
                        Duration::from_nanos(nanos_now().saturating_sub(last_pane_exit(&stdout)))
                    })
                    .sum()
            })
        });
    }
    group.finish();
    let pending: usize = servers.iter().map(|(_, server)| server.pending()).sum();
    assert_eq!(pending, 0, "closing panes left pending carry-backs");
    // Every pane's folder reached the user's file.
    assert_eq!(
        projects_trusted(env) - before,
        runs,
        "some panes' changes were lost"
    );

    let ms = |ns: f64| ns / 1e6;
    for (name, _) in &servers {
        let get = |n: u32| summary.median_ns("row11", &format!("{name}/{n}-panes"));
        let without = summary.median_ns("row11", &format!("{name}_no_carry_back/{panes}-panes"));
        if let (Some(many), Some(one)) = (get(panes), get(1)) {
            summary.print(&Row {
                row: "row11",
                what: if *name == "grace_0" {
                    "30 panes closing at once, grace_period_ms = 0: to exit, all merged"
                } else {
                    "30 panes closing at once, default grace: to exit, all merged"
                },
                value: ms(many),
                baseline_what: "one pane",
                baseline: ms(one),
                unit: "ms",
                target: "<= 2 s and <= 3x one pane, 0 pending",
                met: ms(many) <= 2000.0 && many <= 3.0 * one,
                note: format!(
                    "{} x one pane; the same {panes} panes with carry_back = false: {} ms; pending left: {pending}",
                    fmt_value(many / one),
                    without.map_or_else(|| "-".to_string(), |ns| fmt_value(ms(ns)))
                ),
            });
        }
    }
}

/// How many folders the user's file trusts under `/bench/`.
fn projects_trusted(env: &BenchEnv) -> usize {
    let text = fs::read_to_string(&env.user.claude_json).expect("the user's .claude.json");
    let file: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    file["projects"]
        .as_object()
        .map(|projects| {
            projects
                .keys()
                .filter(|path| path.starts_with("/bench/"))
                .count()
        })
        .unwrap_or(0)
}

fn row12(c: &mut Criterion, env: &BenchEnv, summary: &Summary, scale: Scale) {
    let server = Server::with_grace(env, "row12", true, 0);
    let counts = [0usize, 10, scale.pick(60, 12)];
    let mut group = c.benchmark_group("row12");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(scale.pick(3, 1)));
    let mut round = 0u64;
    for count in counts {
        group.bench_function(
            BenchmarkId::new("first_pane", format!("{count}-pending")),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        round += 1;
                        plant_pending(&server.base_dir, count, round);
                        let started = std::time::SystemTime::now();
                        let (stdout, _) = server.run(env, 1, &["sh", "-c", "date +%s%N"]);
                        let ran_at = stdout
                            .lines()
                            .filter_map(|line| line.split_once("] "))
                            .find_map(|(_, text)| text.trim().parse::<u64>().ok())
                            .expect("the pane printed the clock");
                        let started = started
                            .duration_since(std::time::UNIX_EPOCH)
                            .expect("clock after 1970")
                            .as_nanos() as u64;
                        total += Duration::from_nanos(ran_at.saturating_sub(started));
                    }
                    total
                })
            },
        );
    }
    group.finish();
    let ms = |ns: f64| ns / 1e6;
    let get = |n: usize| summary.median_ns("row12", &format!("first_pane/{n}-pending"));
    if let (Some(none), Some(ten), Some(many)) = (get(0), get(10), get(counts[2])) {
        summary.print(&Row {
            row: "row12",
            what: "server start with 60 pending carry-backs: until the first pane's command runs",
            value: ms(many),
            baseline_what: "no pending entry",
            baseline: ms(none),
            unit: "ms",
            target: "<= 1.1x no entries",
            met: many <= 1.1 * none,
            note: format!(
                "10 entries: {} ms ({} x); 60 entries: {} x",
                fmt_value(ms(ten)),
                fmt_value(ten / none),
                fmt_value(many / none)
            ),
        });
    }
}

/// Replaces what is pending in `base` by `count` entries, each a pane that
/// trusted a folder of its own (named by `round`, so each round's merge
/// writes).
fn plant_pending(base: &std::path::Path, count: usize, round: u64) {
    use std::os::unix::fs::PermissionsExt;
    let store = base.join(".pending-carry-back");
    let _ = fs::remove_dir_all(&store);
    fs::create_dir_all(&store).expect("pending store");
    for dir in [base, store.as_path()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).expect("private");
    }
    for n in 0..count {
        let entry = store.join(format!(
            "{:020}-pending_{n}",
            1_700_000_000_000u64 + n as u64
        ));
        fs::create_dir(&entry).expect("entry");
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o700)).expect("private");
        let pane = serde_json::json!({
            "projects": {format!("/pending/{round}/{n}"): {"hasTrustDialogAccepted": true}}
        });
        fs::write(entry.join(".claude.json"), pane.to_string()).expect("entry file");
        fs::write(entry.join(".claude-json.seed"), "{}\n").expect("entry seed");
    }
}
