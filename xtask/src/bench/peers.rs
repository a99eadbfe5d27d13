//! `cargo xtask bench core`: nm-rs (nm-core + nm-system-settings) side by
//! side with Debian's NetworkManager and systemd-networkd, on the shared
//! peer-bench lab (`../shared/peer-bench`, or `NM_RS_PEER_BENCH`).
//!
//! The peer scripts are called, not ported: `lab.sh` loads an adapter only
//! from `adapters/` beside itself, so the scripts are copied into a fresh
//! directory together with our own adapter (`xtask/bench/adapters/nmrs.sh`)
//! and our own script (`xtask/bench/bench-static-up.sh`). Every script appends
//! to one `results.tsv` (daemon, metric, value, unit, note); the table of
//! medians, ratios and the issue's targets is computed from it here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, check, header, require_root, show, target_dir, workspace_root};

/// Where CI has the shared material: `../shared` beside the checkout.
const PEER_BENCH_DEFAULT: &str = "../shared/peer-bench";
const PEER_BENCH_ENV: &str = "NM_RS_PEER_BENCH";
/// Our own bench material (adapter, scripts), relative to the workspace root.
const OWN_BENCH_DIR: &str = "xtask/bench";
/// What the nmrs adapter starts (release builds).
pub(super) const BINARIES: &[&str] = &["nm-core", "nm-system-settings", "nm-dhcp-helper"];
/// nm-rs's own command line, the adapter's tool for down/up (as networkd's
/// adapter uses networkctl).
const CONTROL_TOOL: &str = "nmctl";

/// Daemon names as the adapters call themselves, in table order.
pub const DAEMONS: &[&str] = &["nm", "networkd", "nmrs"];

/// A group of metrics: one script of the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Group {
    /// bench-scale-links.sh: start-up with 300 static veth links.
    Links,
    /// bench-scale-routes.sh: 200,000 foreign routes while running.
    Routes,
    /// bench-reactivate.sh: down/up of the DHCP link.
    Reactivate,
    /// bench-static-up.sh (ours): `nmcli connection up` of a static profile.
    Static,
}

impl Group {
    pub const ALL: &[Group] = &[Group::Links, Group::Routes, Group::Reactivate, Group::Static];

    fn script(self) -> &'static str {
        match self {
            Group::Links => "bench-scale-links.sh",
            Group::Routes => "bench-scale-routes.sh",
            Group::Reactivate => "bench-reactivate.sh",
            Group::Static => "bench-static-up.sh",
        }
    }

    fn default_runs(self) -> u32 {
        match self {
            Group::Links | Group::Routes => 3,
            Group::Reactivate | Group::Static => 5,
        }
    }

    /// Daemons the group measures: the static profile is driven by nmcli,
    /// so only the daemons with NetworkManager's API take part.
    fn daemons(self, daemons: &[String]) -> Vec<&str> {
        daemons.iter().map(String::as_str).filter(|d| self != Group::Static || matches!(*d, "nm" | "nmrs")).collect()
    }
}

#[derive(Debug, Clone)]
pub struct CoreOptions {
    /// Runs per daemon (default: 3 for links/routes, 5 otherwise).
    pub runs: Option<u32>,
    pub only: Vec<Group>,
    pub daemons: Vec<String>,
    pub links: u32,
    pub routes: u32,
    pub build: bool,
}

pub fn core(opts: CoreOptions) -> Result<ExitCode> {
    let groups: Vec<Group> = if opts.only.is_empty() { Group::ALL.to_vec() } else { opts.only.clone() };
    let mut steps = Vec::new();
    for &g in &groups {
        let daemons = g.daemons(&opts.daemons);
        if daemons.is_empty() {
            continue;
        }
        let runs = opts.runs.unwrap_or_else(|| g.default_runs()).to_string();
        let mut args: Vec<String> = vec!["-n".into(), runs];
        match g {
            Group::Links => args.extend(["-l".into(), opts.links.to_string()]),
            Group::Routes => args.extend(["-r".into(), opts.routes.to_string()]),
            Group::Reactivate | Group::Static => {}
        }
        args.extend(daemons.iter().map(|d| d.to_string()));
        steps.push(Step::new(g.script(), args));
    }
    let suite = Suite { name: "core", steps, daemons: &opts.daemons, build: opts.build, render, env: no_env };
    Ok(run_suite(suite)?.code)
}

/// One run of a lab script: its file name (in the peer-bench folder or in
/// ours), its arguments and environment of its own.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Step {
    pub script: &'static str,
    pub args: Vec<String>,
    pub env: Env,
}

impl Step {
    pub fn new(script: &'static str, args: Vec<String>) -> Step {
        Step { script, args, env: Env::new() }
    }

    pub fn with_env(mut self, name: &str, value: &str) -> Step {
        self.env.push((name.to_string(), value.to_string()));
        self
    }
}

/// A benchmark on the peer-bench lab: scripts run one after the other into
/// one `results.tsv`, then one table.
pub(super) struct Suite<'a> {
    /// `core`, `dhcp`: names the temp dir and the messages.
    pub name: &'static str,
    pub steps: Vec<Step>,
    /// The adapters named on the command line (for the tool check).
    pub daemons: &'a [String],
    pub build: bool,
    pub render: fn(&[Row]) -> String,
    /// Extra environment for the scripts, made once the run's directory
    /// exists (`link-order` points the daemons' wrapper at valgrind there).
    pub env: fn(&Path) -> Result<Env>,
}

/// Environment variables, name and value.
pub(super) type Env = Vec<(String, String)>;

/// No extra environment.
pub(super) fn no_env(_: &Path) -> Result<Env> {
    Ok(Vec::new())
}

/// What a suite leaves: its verdict and the directory with its results,
/// logs and the lab's work dir.
pub(super) struct Outcome {
    pub code: ExitCode,
    pub dir: PathBuf,
}

pub(super) fn run_suite(suite: Suite<'_>) -> Result<Outcome> {
    require_root(&format!("cargo xtask bench {}", suite.name))?;
    for d in suite.daemons {
        if !DAEMONS.contains(&d.as_str()) {
            bail!("unknown daemon `{d}` (known: {})", DAEMONS.join(", "));
        }
    }
    let peer_dir = peer_bench_dir();
    let own_dir = workspace_root().join(OWN_BENCH_DIR);
    for f in ["lab.sh", "adapters/nm.sh", "adapters/networkd.sh"]
        .into_iter()
        .chain(suite.steps.iter().map(|s| s.script).filter(|s| !own_dir.join(s).is_file()))
    {
        if !peer_dir.join(f).is_file() {
            bail!(
                "{} not found: the peer-bench scripts are expected in {} (set {PEER_BENCH_ENV})",
                peer_dir.join(f).display(),
                peer_dir.display()
            );
        }
    }
    check_tools(suite.daemons)?;
    let prefix = std::env::var("LAB_PREFIX").unwrap_or_else(|_| "lab".into());
    refuse_existing_lab(&prefix)?;

    let programs: Vec<&str> = BINARIES.iter().copied().chain([CONTROL_TOOL]).collect();
    if suite.build {
        let packages: Vec<&str> = programs.iter().flat_map(|b| ["-p", b]).collect();
        header(&format!("cargo build --release {}", packages.join(" ")));
        let mut build = cargo();
        build.args(["build", "--release"]).args(&packages);
        check(build)?;
        // nmctl as it ships: statically linked.
        crate::install::build_static_clients()?;
    }
    let release = target_dir().join("release");
    for b in &programs {
        let built = crate::install::binary(b, true);
        if !built.is_file() {
            bail!("{} is missing (build it, or drop --no-build)", built.display());
        }
    }

    // A list that lost names measures memory and start-up without the
    // order release builds are meant to have: said before and in the table.
    let stale = if suite.name == "link-order" { None } else { super::link_order::stale(&release)? };
    if let Some(w) = &stale {
        eprintln!("\nwarning: {w}\n");
    }

    let dir = std::env::temp_dir().join(format!("nm-rs-bench-{}-{}", suite.name, std::process::id()));
    let bench = dir.join("bench");
    header(&format!("staging {} + our adapters in {}", peer_dir.display(), bench.display()));
    stage(&peer_dir, &own_dir, &bench)?;
    // The binaries are copied: a `cargo build --release` by someone else
    // during the run (it takes many minutes) must not change what is measured.
    let bin_dir = dir.join("bin");
    fs::create_dir_all(&bin_dir).with_context(|| format!("creating {}", bin_dir.display()))?;
    // readable and runnable by the helper's unprivileged user
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    for b in &programs {
        fs::copy(crate::install::binary(b, true), bin_dir.join(b))
            .with_context(|| format!("copying {b} into {}", bin_dir.display()))?;
    }
    let version = source_version();
    let env = (suite.env)(&dir)?;
    let results = dir.join("results.tsv");
    File::create(&results).with_context(|| format!("creating {}", results.display()))?;

    let mut problems = Vec::new();
    for step in &suite.steps {
        let mut cmd = Command::new("bash");
        cmd.arg(bench.join(step.script))
            .args(&step.args)
            .current_dir(&dir)
            .env("LAB_RESULTS", &results)
            .env("LAB_WORK", dir.join("work"))
            .env("LAB_PREFIX", &prefix)
            .env("NM_RS_BIN_DIR", &bin_dir)
            // nm-rs logs into the lab's dut.log: no colour codes there
            .env("NO_COLOR", "1")
            .envs(env.iter().chain(&step.env).map(|(k, v)| (k, v)));
        let log = dir.join(format!("{}.log", step.script.trim_end_matches(".sh")));
        header(&format!("{}   (log {})", show(&cmd), log.display()));
        let started = Instant::now();
        match run_logged(cmd, &log) {
            Ok(st) if st.success() => {}
            Ok(st) => problems.push(format!("{} exited with {st}; see {}", step.script, log.display())),
            Err(e) => problems.push(format!("{}: {e:#}", step.script)),
        }
        eprintln!("    {} done in {:.0} s", step.script, started.elapsed().as_secs_f64());
    }

    let text = fs::read_to_string(&results).with_context(|| format!("reading {}", results.display()))?;
    let rows = parse_results(&text);
    let mut table = (suite.render)(&rows);
    let _ = writeln!(table, "nm-rs measured: release build of {version}; load before the run: {}.", loadavg());
    if let Some(w) = &stale {
        let _ = writeln!(table, "warning: {w}");
    }
    fs::write(dir.join("table.txt"), &table).context("writing table.txt")?;
    println!();
    print!("{table}");
    for r in rows.iter().filter(|r| r.value.is_none() && DAEMONS.contains(&r.daemon.as_str())) {
        problems.push(format!("{} {}: {} {}", r.daemon, r.metric, r.raw, r.note));
    }
    eprintln!("\nresults, logs and the lab's work dir: {}", dir.display());
    let code = if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("\nproblems:");
        for p in &problems {
            eprintln!("  {p}");
        }
        ExitCode::FAILURE
    };
    Ok(Outcome { code, dir })
}

/// /proc/loadavg's three averages, for the table's last line (figures taken
/// on a busy machine say little).
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The commit the binaries were built from, and whether the sources differed.
fn source_version() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(workspace_root())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(rev) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "an unknown commit (no git)".into();
    };
    let dirty =
        git(&["status", "--porcelain", "--", "crates", "Cargo.toml", "Cargo.lock"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{rev} with uncommitted changes under crates/") } else { rev }
}

/// `bench core|dhcp --from FILE`: the table of an earlier run's results.
pub fn table_from(results: &Path, render: fn(&[Row]) -> String) -> Result<ExitCode> {
    let text = fs::read_to_string(results).with_context(|| format!("reading {}", results.display()))?;
    print!("{}", render(&parse_results(&text)));
    Ok(ExitCode::SUCCESS)
}

/// `NM_RS_PEER_BENCH`, or `../shared/peer-bench` beside the workspace.
fn peer_bench_dir() -> PathBuf {
    match std::env::var_os(PEER_BENCH_ENV) {
        Some(d) => PathBuf::from(d),
        None => workspace_root().join(PEER_BENCH_DEFAULT),
    }
}

/// Debian's packages of the programs below (installed when missing, as
/// `cargo xtask test` does, so a fresh machine can bench at once).
const BENCH_PACKAGES: &[&str] = &["dbus", "dnsmasq-base", "iproute2", "network-manager", "systemd", "libglib2.0-bin"];

/// The programs the scripts call; a missing one would fail deep in a run.
fn check_tools(daemons: &[String]) -> Result<()> {
    crate::test::ensure(BENCH_PACKAGES)?;
    let mut need = vec!["bash", "ip", "nsenter", "unshare", "dnsmasq", "dbus-daemon", "busctl", "awk"];
    for d in daemons {
        match d.as_str() {
            "nm" => need.extend(["NetworkManager", "nmcli", "nm-online"]),
            "networkd" => need.push("networkctl"),
            "nmrs" => need.extend(["sh", "nmcli", "nm-online"]),
            _ => {}
        }
    }
    let missing: BTreeSet<&str> = need.into_iter().filter(|t| !in_path(t)).collect();
    if daemons.iter().any(|d| d == "networkd") && !Path::new("/lib/systemd/systemd-networkd").is_file() {
        bail!("/lib/systemd/systemd-networkd is missing (Debian package systemd)");
    }
    if !missing.is_empty() {
        bail!(
            "missing programs: {} (Debian: dnsmasq-base, dbus, iproute2, network-manager, systemd, \
             libglib2.0-bin)",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

fn in_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).any(|d| d.join(program).is_file())
}

/// lab.sh deletes `PREFIX-cli`/`PREFIX-srv` before it starts; if they exist
/// they belong to someone else's run, which must not be torn down.
fn refuse_existing_lab(prefix: &str) -> Result<()> {
    let out = Command::new("ip").args(["netns", "list"]).output().context("running `ip netns list`")?;
    let list = String::from_utf8_lossy(&out.stdout);
    let taken: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| *ns == format!("{prefix}-cli") || *ns == format!("{prefix}-srv"))
        .collect();
    if !taken.is_empty() {
        bail!(
            "network namespace(s) {} exist: another peer-bench lab is running (or was left behind: \
             `bash {}/lab.sh down` with its LAB_WORK); or pick another LAB_PREFIX",
            taken.join(", "),
            peer_bench_dir().display()
        );
    }
    Ok(())
}

/// Copies the peer scripts and then ours (`*.sh` and `adapters/*.sh`) into `to`.
fn stage(peer: &Path, own: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to.join("adapters")).with_context(|| format!("creating {}", to.display()))?;
    for from in [peer, own] {
        for sub in ["", "adapters"] {
            let src = from.join(sub);
            let entries = fs::read_dir(&src).with_context(|| format!("reading {}", src.display()))?;
            for e in entries {
                let p = e?.path();
                if p.extension().is_some_and(|x| x == "sh") && p.is_file() {
                    let dst = to.join(sub).join(p.file_name().expect("a file name"));
                    fs::copy(&p, &dst).with_context(|| format!("copying {} to {}", p.display(), dst.display()))?;
                    // the shared copies are read-only; ours may be replaced
                    fs::set_permissions(&dst, fs::Permissions::from_mode(0o755))?;
                }
            }
        }
    }
    Ok(())
}

/// Runs `cmd`: stdout and stderr into `log`, the lab's progress lines
/// (`RESULT …`, `[lab …]`) echoed on our stderr as they come.
fn run_logged(mut cmd: Command, log: &Path) -> Result<std::process::ExitStatus> {
    let file =
        OpenOptions::new().create(true).append(true).open(log).with_context(|| format!("opening {}", log.display()))?;
    let mut writer = file.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(file).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting `{}`", show(&cmd)))?;
    let stderr = child.stderr.take().expect("piped stderr");
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        writeln!(writer, "{line}")?;
        if line.starts_with("RESULT") || line.starts_with("[lab") {
            eprintln!("    {line}");
        }
    }
    child.wait().context("waiting for the bench script")
}

// ------------------------------------------------------------ results ---

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub daemon: String,
    pub metric: String,
    /// None for FAIL (or anything else not a number).
    pub value: Option<f64>,
    pub raw: String,
    pub unit: String,
    pub note: String,
}

/// `results.tsv` lines: daemon, metric, value, unit, note.
pub fn parse_results(text: &str) -> Vec<Row> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (daemon, metric, raw) = (f.next()?, f.next()?, f.next()?);
            let unit = f.next().unwrap_or("");
            let note = f.next().unwrap_or("");
            Some(Row {
                daemon: daemon.into(),
                metric: metric.into(),
                value: raw.parse::<f64>().ok().filter(|v| v.is_finite()),
                raw: raw.into(),
                unit: unit.into(),
                note: note.into(),
            })
        })
        .collect()
}

/// The median as lab.sh's `lab_stats` computes it (mean of the two middle
/// values for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Values per metric per daemon, in file order, plus the derived
/// `routes_rss_growth_kb` (after − before, run by run).
pub fn collect(rows: &[Row]) -> BTreeMap<String, BTreeMap<String, Vec<f64>>> {
    let mut by: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for r in rows {
        if let Some(v) = r.value {
            by.entry(r.metric.clone()).or_default().entry(r.daemon.clone()).or_default().push(v);
        }
    }
    let growth: BTreeMap<String, Vec<f64>> = by
        .get("routes_rss_after_kb")
        .map(|after| {
            after
                .iter()
                .filter_map(|(d, a)| {
                    let b = by.get("routes_rss_before_kb")?.get(d)?;
                    Some((d.clone(), a.iter().zip(b).map(|(a, b)| a - b).collect()))
                })
                .collect()
        })
        .unwrap_or_default();
    if !growth.is_empty() {
        by.insert("routes_rss_growth_kb".into(), growth);
    }
    by
}

/// The issue's target for nm-rs on one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Target {
    /// value ≤ limit (in the metric's own unit)
    AtMost(f64),
    /// value = limit
    Equals(f64),
    /// value ≤ factor × NetworkManager's median
    TimesNm(f64),
    /// about the median of another nm-rs metric: ≤ max(that × 1.25, that + 2)
    AsFastAs(&'static str),
}

/// Metrics in table order (others follow alphabetically) and their targets.
fn known_metrics(routes: f64) -> Vec<(&'static str, Option<Target>)> {
    use Target::*;
    vec![
        ("scale_ready_ms", Some(AtMost(500.0))),
        ("scale_nm_startup_ms", None),
        ("scale_cpu_ready_ms", Some(AtMost(200.0))),
        ("scale_quiet_ms", None),
        ("scale_cpu_settled_ms", Some(AtMost(200.0))),
        ("scale_rss_kb", Some(AtMost(6.0 * 1024.0))),
        ("scale_pss_kb", None),
        ("routes_add_wall_ms", None),
        ("routes_cpu_add_ms", Some(AtMost(450.0))),
        ("routes_quiet_after_ms", None),
        ("routes_left", Some(Equals(routes))),
        ("routes_still_ready", Some(Equals(1.0))),
        ("routes_rss_before_kb", None),
        ("routes_rss_after_kb", None),
        ("routes_rss_growth_kb", Some(AtMost(1024.0))),
        ("routes_cpu_flush_ms", None),
        ("probe_idle_ms", None),
        ("probe_after_ms", Some(AsFastAs("probe_idle_ms"))),
        ("probe_flood_med_ms", None),
        ("probe_flood_max_ms", None),
        ("probe_light_idle_ms", None),
        ("probe_light_after_ms", Some(AsFastAs("probe_light_idle_ms"))),
        ("probe_light_flood_med_ms", None),
        ("probe_light_flood_max_ms", None),
        ("static_up_addr_ms", Some(TimesNm(0.5))),
        ("static_up_call_addr_ms", Some(TimesNm(0.5))),
        ("static_up_cmd_ms", None),
        ("static_up_cpu_ms", None),
    ]
}

/// kB are shown as MB (the issue's targets are in MB).
fn display_unit(metric: &str, unit: &str) -> (String, f64) {
    if unit == "kB" || metric.ends_with("_kb") { ("MB".into(), 1.0 / 1024.0) } else { (unit.into(), 1.0) }
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

/// `bench core`'s table (see [`table`]).
pub fn render(rows: &[Row]) -> String {
    let routes = rows
        .iter()
        .find(|r| r.metric == "routes_add_wall_ms")
        .and_then(|r| r.note.split_whitespace().find_map(|w| w.strip_prefix("n=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000.0);
    let mut out = table(&collect(rows), rows, &known_metrics(routes));
    let _ = writeln!(
        out,
        "\nmedians over the runs; nm-rs = nm-core + nm-system-settings + nm-dhcp-helper (CPU and RSS/PSS summed).\n\
         lab-dhcp is a DHCP profile for every daemon; static_up_* time the same static profile through nmcli."
    );
    out
}

/// The table: metric, unit, the three medians, nm-rs/NM, nm-rs/networkd,
/// the issue's target for nm-rs and whether it is met. Metrics in `known`
/// come first, in its order; the others follow alphabetically.
pub(super) fn table<K: AsRef<str>>(
    data: &BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    rows: &[Row],
    known: &[(K, Option<Target>)],
) -> String {
    let units: BTreeMap<&str, &str> = rows.iter().map(|r| (r.metric.as_str(), r.unit.as_str())).collect();
    let mut order: Vec<(String, Option<Target>)> = known
        .iter()
        .filter(|(m, _)| data.contains_key(m.as_ref()))
        .map(|(m, t)| (m.as_ref().to_string(), *t))
        .collect();
    let rest: Vec<&String> = data.keys().filter(|m| !known.iter().any(|(k, _)| k.as_ref() == m.as_str())).collect();
    order.extend(rest.into_iter().map(|m| (m.clone(), None)));
    let med = |metric: &str, daemon: &str| data.get(metric).and_then(|d| d.get(daemon)).and_then(|v| median(v));

    let head = ["metric", "unit", "NetworkManager", "networkd", "nm-rs", "nm-rs/NM", "nm-rs/networkd", "target", "met"];
    let mut lines: Vec<[String; 9]> = Vec::new();
    for (metric, target) in &order {
        let unit_raw = units.get(metric.as_str()).copied().unwrap_or(if metric.ends_with("_kb") {
            "kB"
        } else if metric.ends_with("_ms") {
            "ms"
        } else {
            ""
        });
        let (unit, scale) = display_unit(metric, unit_raw);
        let (nm, nd, rs) = (med(metric, "nm"), med(metric, "networkd"), med(metric, "nmrs"));
        let counted = matches!(unit.as_str(), "n" | "bool");
        let cell = |v: Option<f64>| match v {
            None => "-".into(),
            Some(v) if unit == "bool" && (v == 0.0 || v == 1.0) => if v == 1.0 { "yes" } else { "no" }.into(),
            Some(v) if unit == "bool" => format!("{v:.1}"),
            Some(v) if counted => format!("{v:.0}"),
            Some(v) => fmt_num(v * scale),
        };
        let (target_text, met) = match target {
            None => ("".to_string(), "".to_string()),
            Some(t) => {
                let (text, limit, exact) = match *t {
                    Target::AtMost(l) => (format!("<= {} {unit}", fmt_num(l * scale)), Some(l), false),
                    Target::Equals(l) => (format!("= {l:.0}"), Some(l), true),
                    Target::TimesNm(f) => {
                        let l = nm.map(|n| n * f);
                        let shown = l.map_or_else(|| "?".into(), |l| fmt_num(l * scale));
                        (format!("<= {f} x NM ({shown})"), l, false)
                    }
                    Target::AsFastAs(other) => {
                        let l = med(other, "nmrs").map(|b| (b * 1.25).max(b + 2.0));
                        let shown = l.map_or_else(|| "?".into(), |l| fmt_num(l * scale));
                        (format!("~ {other} (<= {shown})"), l, false)
                    }
                };
                let met = match (rs, limit) {
                    (Some(v), Some(l)) if exact => if (v - l).abs() < 1e-9 { "yes" } else { "no" }.to_string(),
                    (Some(v), Some(l)) => if v <= l { "yes" } else { "no" }.to_string(),
                    _ => "-".into(),
                };
                (text, met)
            }
        };
        let cells = [cell(nm), cell(nd), cell(rs)];
        let [nm_cell, nd_cell, rs_cell] = cells;
        lines.push([metric.clone(), unit, nm_cell, nd_cell, rs_cell, ratio(rs, nm), ratio(rs, nd), target_text, met]);
    }

    let mut widths = head.map(str::len);
    for l in &lines {
        for (w, c) in widths.iter_mut().zip(l.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let put = |out: &mut String, cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths.iter()).enumerate() {
            // text columns left-aligned, numbers right-aligned
            if matches!(i, 0 | 1 | 7 | 8) {
                let _ = write!(s, "{c:<w$}  ");
            } else {
                let _ = write!(s, "{c:>w$}  ");
            }
        }
        let _ = writeln!(out, "{}", s.trim_end());
    };
    put(&mut out, &head.map(String::from));
    put(&mut out, &widths.map(|w| "-".repeat(w)));
    for l in &lines {
        put(&mut out, l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "nm\tscale_ready_ms\t990.0\tms\tlinks=300\n\
        nm\tscale_ready_ms\t1010.0\tms\tlinks=300\n\
        nmrs\tscale_ready_ms\t400.0\tms\tlinks=300\n\
        nmrs\tscale_ready_ms\tFAIL\tms\tonly 3/300\n\
        nmrs\tscale_rss_kb\t7168\tkB\t\n\
        nm\troutes_add_wall_ms\t1900\tms\tn=1000 kind=dev rc=0\n\
        nmrs\troutes_left\t1000\tn\t\n\
        nmrs\troutes_rss_before_kb\t1000\tkB\t\n\
        nmrs\troutes_rss_after_kb\t1500\tkB\t\n\
        nmrs\troutes_rss_before_kb\t1000\tkB\t\n\
        nmrs\troutes_rss_after_kb\t3000\tkB\t\n\
        nmrs\tprobe_idle_ms\t10\tms\t\n\
        nmrs\tprobe_after_ms\t12\tms\t\n\
        nm\tstatic_up_addr_ms\t20\tms\tmonitor\n\
        nmrs\tstatic_up_addr_ms\t11\tms\tmonitor\n\
        networkd\treact_ready_ms[ping]\t45\tms\t\n";

    #[test]
    fn parses_rows_and_fails() {
        let rows = parse_results(TSV);
        assert_eq!(rows.len(), 16);
        assert_eq!(rows[0].value, Some(990.0));
        assert_eq!(rows[3].value, None);
        assert_eq!(rows[3].note, "only 3/300");
        assert_eq!(parse_results("x\n\n"), vec![]);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn derived_rss_growth_is_run_by_run() {
        let data = collect(&parse_results(TSV));
        assert_eq!(data["routes_rss_growth_kb"]["nmrs"], vec![500.0, 2000.0]);
    }

    #[test]
    fn table_has_targets_ratios_and_verdicts() {
        let t = render(&parse_results(TSV));
        let line = |m: &str| t.lines().find(|l| l.starts_with(&format!("{m} "))).unwrap_or_else(|| panic!("{m}: {t}"));
        let ready = line("scale_ready_ms");
        assert!(ready.contains(" 1000 ") && ready.contains(" 400 ") && ready.contains("0.40"), "{ready}");
        assert!(ready.ends_with("yes"), "{ready}");
        assert!(line("scale_rss_kb").contains(" MB ") && line("scale_rss_kb").ends_with("no"));
        // routes_left compares with the n= of routes_add_wall_ms
        assert!(line("routes_left").contains("= 1000") && line("routes_left").ends_with("yes"));
        // growth median 1250 kB > 1 MB
        assert!(line("routes_rss_growth_kb").ends_with("no"));
        assert!(line("probe_after_ms").ends_with("yes"));
        let st = line("static_up_addr_ms");
        assert!(st.contains("(10.0)") && st.ends_with("no"), "{st}");
        // unknown metrics follow, without a target
        assert!(line("react_ready_ms[ping]").contains(" 45.0 "));
        assert!(t.find("static_up_addr_ms").unwrap() < t.find("react_ready_ms[ping]").unwrap());
    }

    #[test]
    fn static_group_only_for_nmcli_daemons() {
        let all: Vec<String> = DAEMONS.iter().map(|d| d.to_string()).collect();
        assert_eq!(Group::Static.daemons(&all), vec!["nm", "nmrs"]);
        assert_eq!(Group::Links.daemons(&all), vec!["nm", "networkd", "nmrs"]);
    }
}
