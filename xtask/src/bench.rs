//! `cargo xtask bench settings`: nm-system-settings over many keyfiles;
//! `cargo xtask bench core`: nm-rs beside NetworkManager and networkd on the
//! shared peer-bench lab (in `peers`); `cargo xtask bench dhcp`: DHCPv4 on
//! that lab, with `peers`' runner and table (in `dhcp`); `cargo xtask bench
//! link-order`: the daemons under callgrind there, for the order of their
//! functions in release builds (in `link_order`).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt};
use nm_lab::Lab;
use zbus::{OwnedObjectPath, OwnedVariant};

use crate::util::{cargo, check, header, require_root, target_dir};

mod dhcp;
mod link_order;
mod peers;
pub use dhcp::{DhcpOptions, Group as DhcpGroup, dhcp, render as dhcp_render};
pub use link_order::link_order;
pub use peers::{CoreOptions, DAEMONS as CORE_DAEMONS, Group as CoreGroup, core, render as core_render, table_from};

const BINARY: &str = "nm-system-settings";
const SERVICE: &str = "org.freedesktop.NetworkManagerSystemSettings";
const SETTINGS_PATH: &str = "/org/freedesktop/NetworkManagerSettings";
const SETTINGS_IFACE: &str = "org.freedesktop.NetworkManagerSettings";
const CONNECTION_IFACE: &str = "org.freedesktop.NetworkManagerSettings.Connection";
/// Calls in flight at once: well below the bus's per-connection limit of
/// pending replies, enough to keep the daemon busy.
const IN_FLIGHT: usize = 64;
/// The targets.
const TARGET_READY: Duration = Duration::from_secs(1);
const TARGET_RSS_KB: u64 = 30 * 1024;

type Settings = HashMap<String, HashMap<String, OwnedVariant>>;

pub async fn settings(count: usize) -> Result<ExitCode> {
    require_root("cargo xtask bench")?;

    header(&format!("cargo build --release -p {BINARY}"));
    let mut build = cargo();
    build.args(["build", "--release", "-p", BINARY]);
    check(build)?;
    let program = target_dir().join("release").join(BINARY);

    let lab = Lab::builder().uplinks(0).build().context("bringing the lab up")?;
    let dir = lab.root_path("/etc/NetworkManager/system-connections");
    header(&format!("writing {count} keyfiles into {}", dir.display()));
    write_profiles(&dir, count)?;

    header(&format!("starting {BINARY}"));
    let mut daemon = lab.daemon(BINARY).program(&program).timeout(Duration::from_secs(120)).spawn().await?;
    let ready = daemon.ready_after();
    let rss_ready = vm_rss_kb(daemon.pid())?;

    let conn = lab.bus().await?;
    let started = Instant::now();
    let reply = conn
        .call_method(Some(SERVICE), SETTINGS_PATH, Some(SETTINGS_IFACE), "ListConnections", &())
        .await
        .context("ListConnections")?;
    let paths: Vec<OwnedObjectPath> = reply.body().deserialize().context("ListConnections reply")?;
    let listed = started.elapsed();
    let settings: Vec<Settings> = futures_util::stream::iter(paths.iter())
        .map(|path| {
            let conn = &conn;
            async move {
                let reply = conn
                    .call_method(Some(SERVICE), path.as_str(), Some(CONNECTION_IFACE), "GetSettings", &())
                    .await
                    .with_context(|| format!("GetSettings on {}", path.as_str()))?;
                reply
                    .body()
                    .deserialize::<Settings>()
                    .with_context(|| format!("GetSettings reply of {}", path.as_str()))
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    let all = started.elapsed();
    let rss_after = vm_rss_kb(daemon.pid())?;
    let with_id = settings.iter().filter(|s| s.get("connection").is_some_and(|c| c.contains_key("id"))).count();

    let stopped = daemon.stop().await;

    println!();
    println!("nm-system-settings, {count} keyfile profiles (release build)");
    let target_ms = TARGET_READY.as_millis();
    row("spawn -> bus name owned", ms(ready), "ms", &format!("target < {target_ms} ms"));
    row("ListConnections", ms(listed), "ms", &format!("{} paths", paths.len()));
    row(
        "ListConnections + GetSettings of all",
        ms(all),
        "ms",
        &format!("{} profiles, {IN_FLIGHT} calls in flight", settings.len()),
    );
    let target_mb = TARGET_RSS_KB / 1024;
    row("RSS when ready", mb(rss_ready), "MB", &format!("target < {target_mb} MB"));
    row("RSS after GetSettings", mb(rss_after), "MB", "");

    let mut problems = Vec::new();
    if paths.len() != count {
        problems.push(format!("listed {} of {count} profiles", paths.len()));
    }
    if with_id != settings.len() {
        problems.push(format!("{} settings without connection.id", settings.len() - with_id));
    }
    if let Err(e) = stopped {
        problems.push(format!("stop: {e}"));
    }
    if problems.is_empty() { Ok(ExitCode::SUCCESS) } else { bail!("{}", problems.join("; ")) }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn row(label: &str, value: f64, unit: &str, note: &str) {
    let note = if note.is_empty() { String::new() } else { format!("   ({note})") };
    println!("  {label:<38}{value:>9.1} {unit}{note}");
}

/// Writes `count` ethernet keyfiles, mode 0600 (root's, as we run as root).
fn write_profiles(dir: &Path, count: usize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for i in 0..count {
        let (name, text) = bench_keyfile(i);
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Keyfile `i` of the benchmark: a DHCP ethernet profile bound to an
/// interface that does not exist, with a deterministic uuid.
pub fn bench_keyfile(i: usize) -> (String, String) {
    let id = format!("bench-{i:05}");
    let text = format!(
        "[connection]\n\
         id={id}\n\
         uuid=00000000-0000-4000-8000-{i:012x}\n\
         type=ethernet\n\
         interface-name=bench{i}\n\
         autoconnect=false\n\
         \n\
         [ethernet]\n\
         \n\
         [ipv4]\n\
         method=auto\n\
         \n\
         [ipv6]\n\
         addr-gen-mode=default\n\
         method=auto\n\
         \n\
         [proxy]\n"
    );
    (format!("{id}.nmconnection"), text)
}

/// VmRSS of a process, in kB.
fn vm_rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss() {
        let status = "Name:\tnm-system-setti\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn keyfiles_are_distinct_and_well_formed() {
        let (n0, t0) = bench_keyfile(0);
        let (n1, t1) = bench_keyfile(9999);
        assert_eq!(n0, "bench-00000.nmconnection");
        assert_eq!(n1, "bench-09999.nmconnection");
        assert!(t0.contains("uuid=00000000-0000-4000-8000-000000000000\n"));
        assert!(t1.contains("uuid=00000000-0000-4000-8000-00000000270f\n"));
        assert!(t1.starts_with("[connection]\nid=bench-09999\n"));
        // Every line is a group header, a key=value pair, or empty.
        for line in t1.lines() {
            assert!(line.is_empty() || line.starts_with('[') || line.contains('='), "{line}");
        }
    }
}
