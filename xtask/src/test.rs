//! `cargo xtask test`: everything CI checks, with one summary line at the end.
//!
//! Every check counts: each test of `cargo test`, and fmt, clippy and the
//! build of the binaries as one check each. The last line on stdout is
//! `N passed, N failed`; the exit status is non-zero when anything failed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, check, header, is_root, show, status, succeeds};

/// Debian packages the lab tests need: dbus-daemon and dbus-send (dbus),
/// dnsmasq (dnsmasq-base), ip and ss (iproute2), nmcli (network-manager),
/// busctl (systemd) for calls with nested dictionaries as another uid,
/// polkitd (Debian's real one, run on the lab bus by the authorization tests),
/// gnome-keyring (a user's Secret Service, for nm-user-settings' keyring test),
/// nft (nftables: the NAT of a shared connection), ethtool (to read back a
/// device's offload features and channels).
pub const PACKAGES: &[&str] = &[
    "dbus",
    "dnsmasq-base",
    "ethtool",
    "gnome-keyring",
    "hostapd",
    "iproute2",
    "network-manager",
    "nftables",
    "polkitd",
    "systemd",
    "wpasupplicant",
];

/// Seconds per fuzz target in `test --full`.
const FULL_FUZZ_SECONDS: u64 = 30;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
}

impl Tally {
    fn step(&mut self, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }
}

pub fn run(full: bool) -> Result<ExitCode> {
    ensure_packages()?;
    ensure_rust_components()?;

    let mut tally = Tally::default();

    header("cargo fmt --all --check");
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    tally.step(status(fmt)?.success());

    header("cargo clippy --workspace --all-targets -- -D warnings");
    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    tally.step(status(clippy)?.success());

    // The lab tests start the workspace's daemons from target/debug; `cargo
    // test` alone does not build other packages' binaries.
    header("cargo build --workspace --bins");
    let mut build = cargo();
    build.args(["build", "--workspace", "--bins"]);
    let built = status(build)?.success();
    tally.step(built);

    // What ships: units verified by systemd, policies loaded by dbus-daemon.
    if built {
        header("systemd units and bus files, installed into a temp root");
        let checked = crate::checks::run();
        if let Err(e) = &checked {
            eprintln!("xtask: {e:#}");
        }
        tally.step(checked.is_ok());

        // The package on a booted Debian under systemd-nspawn: about 40 s
        // with a fresh debootstrap, 4 s once the tree is cached.
        header("boot test: the package under systemd as PID 1");
        let booted = crate::util::block_on(crate::boot_test::run(true));
        if let Err(e) = &booted {
            eprintln!("xtask: boot test: {e:#}");
        }
        tally.step(booted.is_ok());
    }

    header("cargo test --workspace --no-fail-fast");
    if !is_root() {
        eprintln!("xtask: not root: the lab tests will fail (they need network namespaces)");
    }
    let tests = cargo_test()?;
    tally.passed += tests.passed;
    tally.failed += tests.failed;

    if full {
        for (target, ok) in crate::fuzz::run_all(FULL_FUZZ_SECONDS, None)? {
            eprintln!("fuzz {target}: {}", if ok { "ok" } else { "FAILED" });
            tally.step(ok);
        }
    }

    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs `cargo test --workspace --no-fail-fast`, echoing its output, and
/// counts from its `test result:` lines. A failure that has no such line (a
/// compile error, a test binary that crashed) counts as one failed check.
fn cargo_test() -> Result<Tally> {
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = show(&cmd);
    let mut child = cmd.spawn().with_context(|| format!("starting `{shown}`"))?;

    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut copiers = Vec::new();
    if let Some(out) = child.stdout.take() {
        copiers.push(tee(out, false, Arc::clone(&lines)));
    }
    if let Some(err) = child.stderr.take() {
        copiers.push(tee(err, true, Arc::clone(&lines)));
    }
    let st = child.wait().with_context(|| format!("waiting for `{shown}`"))?;
    for c in copiers {
        let _ = c.join();
    }
    let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(count(&lines, st.success()))
}

/// Copies a child's stream line by line to ours, keeping the lines.
fn tee(
    stream: impl std::io::Read + Send + 'static,
    to_stderr: bool,
    keep: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if to_stderr {
                let _ = writeln!(std::io::stderr(), "{line}");
            } else {
                let _ = writeln!(std::io::stdout(), "{line}");
            }
            if let Ok(mut k) = keep.lock() {
                k.push(line);
            }
        }
    })
}

/// The tally of a `cargo test` run from its output lines.
pub fn count(lines: &[String], success: bool) -> Tally {
    let mut tally = Tally::default();
    for line in lines {
        if let Some((p, f)) = parse_test_result(line) {
            tally.passed += p;
            tally.failed += f;
        }
        // A test binary killed by a signal prints no result line; a binary
        // whose tests failed exits with 101 and has one.
        if line.contains("process didn't exit successfully") && !line.contains("exit status: 101") {
            tally.failed += 1;
        }
    }
    if !success && tally.failed == 0 {
        tally.failed += 1;
    }
    tally
}

/// `test result: ok. 15 passed; 0 failed; 0 ignored; …` → (15, 0).
pub fn parse_test_result(line: &str) -> Option<(u64, u64)> {
    let rest = &line[line.find("test result:")? + "test result:".len()..];
    let mut passed = None;
    let mut failed = None;
    for part in rest.split(';') {
        let mut words = part.split_whitespace().rev();
        let (Some(label), Some(n)) = (words.next(), words.next()) else {
            continue;
        };
        match (label, n.parse::<u64>()) {
            ("passed", Ok(n)) => passed = Some(n),
            ("failed", Ok(n)) => failed = Some(n),
            _ => {}
        }
    }
    Some((passed?, failed?))
}

/// Installs the Debian packages the tests need when any is missing.
fn ensure_packages() -> Result<()> {
    ensure(PACKAGES)
}

/// Installs those of `packages` that are missing (without recommends, and
/// without starting services).
pub fn ensure(packages: &[&str]) -> Result<()> {
    if !Path::new("/usr/bin/dpkg").exists() {
        eprintln!("xtask: no dpkg; make sure the equivalents of {} are installed", packages.join(", "));
        return Ok(());
    }
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !dpkg_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    header(&format!("installing {}", missing.join(" ")));
    if !is_root() {
        bail!("missing packages: {0}; run as root or `apt-get install {0}`", missing.join(" "));
    }
    let _no_services = NoServiceStarts::new()?;
    let mut update = std::process::Command::new("apt-get");
    update.args(["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive");
    check(update)?;
    let mut install = std::process::Command::new("apt-get");
    install
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    check(install)
}

fn dpkg_installed(package: &str) -> bool {
    std::process::Command::new("dpkg").args(["-s", package]).stderr(Stdio::null()).output().is_ok_and(|o| {
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Status: install ok installed")
    })
}

/// While alive, a `policy-rc.d` that forbids service starts (unless the host
/// already has one). Installing network-manager on a host run by systemd
/// would otherwise start NetworkManager in the root namespace, where it would
/// take over the host's interfaces; the tests only need its `nmcli`.
struct NoServiceStarts {
    path: Option<&'static Path>,
}

impl NoServiceStarts {
    fn new() -> Result<Self> {
        let path = Path::new("/usr/sbin/policy-rc.d");
        if path.exists() {
            return Ok(NoServiceStarts { path: None });
        }
        std::fs::write(path, "#!/bin/sh\n# written by cargo xtask test for one apt-get run\nexit 101\n")
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            })
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(NoServiceStarts { path: Some(path) })
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if let Some(path) = self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// rustfmt and clippy, through rustup when they are missing.
fn ensure_rust_components() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let have_fmt = succeeds(&cargo, ["fmt", "--version"]);
    let have_clippy = succeeds(&cargo, ["clippy", "--version"]);
    if have_fmt && have_clippy {
        return Ok(());
    }
    header("rustup component add rustfmt clippy");
    let mut add = std::process::Command::new("rustup");
    add.args(["component", "add", "rustfmt", "clippy"]);
    check(add)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn parses_result_lines() {
        assert_eq!(
            parse_test_result(
                "test result: ok. 15 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s"
            ),
            Some((15, 0))
        );
        assert_eq!(parse_test_result("test result: FAILED. 4 passed; 2 failed; 1 ignored; 0 measured"), Some((4, 2)));
        assert_eq!(parse_test_result("test foo ... ok"), None);
        assert_eq!(parse_test_result("test result: garbage"), None);
    }

    #[test]
    fn sums_runs_and_counts_crashes_and_silent_failures() {
        let ok = lines(
            "test result: ok. 3 passed; 0 failed; 0 ignored\n\
             test result: FAILED. 1 passed; 2 failed; 0 ignored\n",
        );
        assert_eq!(count(&ok, false), Tally { passed: 4, failed: 2 });

        let crashed = lines(
            "test result: ok. 3 passed; 0 failed; 0 ignored\n\
             process didn't exit successfully: `target/debug/deps/lab-1` (signal: 6, SIGABRT: process abort signal)\n",
        );
        assert_eq!(count(&crashed, false), Tally { passed: 3, failed: 1 });

        let failed_tests = lines(
            "test result: FAILED. 0 passed; 1 failed\n\
             process didn't exit successfully: `target/debug/deps/lab-1` (exit status: 101)\n",
        );
        assert_eq!(count(&failed_tests, false), Tally { passed: 0, failed: 1 });

        let compile_error = lines("error[E0425]: cannot find value `x` in this scope\n");
        assert_eq!(count(&compile_error, false), Tally { passed: 0, failed: 1 });

        assert_eq!(count(&[], true), Tally::default());
    }
}
