//! The packaging checks `cargo xtask test` runs on an installed tree (a temp
//! `--destdir`, built from what is already compiled):
//! - `systemd-analyze verify` of every unit we ship, against the host's own
//!   units (copied in) plus ours, with `--root` so no host path is touched;
//!   user units with `--user` (which has no `--root`) on copies whose
//!   `ExecStart=` points into the tree;
//! - `systemd-analyze security` of nm-dhcp-helper.service: exposure < 3.0;
//! - dbus-daemon loading every policy file we ship (a broken one stops it),
//!   and listing every activation file's name as activatable.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::install::{self, ACTIVATION_DIR, POLICY_DIR, UNIT_DIR, USER_UNIT_DIR};

/// nm-dhcp-helper's unit must score below this (`systemd-analyze security`, ×10).
const HELPER_EXPOSURE_MAX: &str = "30";

pub struct Tree {
    pub root: PathBuf,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Installs the debug build into a fresh temp root with the host's units.
pub fn installed_tree() -> Result<Tree> {
    let tree = Tree { root: std::env::temp_dir().join(format!("nm-rs-install-check-{}", std::process::id())) };
    let _ = fs::remove_dir_all(&tree.root);
    let units = tree.root.join(UNIT_DIR.trim_start_matches('/'));
    fs::create_dir_all(&units)?;
    // The host's units (dbus.socket, network.target, …) for our units to refer to.
    let status = Command::new("cp").arg("-a").arg("/usr/lib/systemd/system/.").arg(&units).status()?;
    if !status.success() {
        bail!("copying the host's units failed");
    }
    install::install(&tree.root, false, true)?;
    Ok(tree)
}

fn names(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(suffix))
        .collect();
    out.sort();
    Ok(out)
}

/// Our units, by name.
fn our_units() -> Result<Vec<String>> {
    names(&crate::util::workspace_root().join("systemd"), ".service")
}

pub fn verify_units(tree: &Tree) -> Result<()> {
    let units = our_units()?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        // Documentation=man:… is looked up with man(1): in the tree.
        .env("MANPATH", tree.root.join("usr/share/man"))
        .arg(format!("--root={}", tree.root.display()))
        .args(&units)
        .output()
        .context("running systemd-analyze (is systemd installed?)")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Complaints about the host's own units are not ours to fix.
    let ours: Vec<&str> = stderr.lines().filter(|l| units.iter().any(|u| l.contains(u.as_str()))).collect();
    if !out.status.success() || !ours.is_empty() {
        bail!("systemd-analyze verify: {}\n{stderr}", ours.join("\n"));
    }
    eprintln!("systemd-analyze verify: {} units clean", units.len());
    verify_user_units(tree)?;
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(format!("--root={}", tree.root.display()))
        .arg(format!("--threshold={HELPER_EXPOSURE_MAX}"))
        .arg("nm-dhcp-helper.service")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let score = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or("no score printed").trim();
    eprintln!("{score}");
    if !out.status.success() {
        bail!("nm-dhcp-helper.service is exposed more than {HELPER_EXPOSURE_MAX}/10: {score}");
    }
    Ok(())
}

/// `systemd-analyze --user verify` of every user unit we ship. The user
/// manager cannot take `--root`, so each unit is checked as a copy whose
/// `ExecStart=` names the binary in the tree; it needs a runtime directory.
fn verify_user_units(tree: &Tree) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let installed = tree.root.join(USER_UNIT_DIR.trim_start_matches('/'));
    let units = names(&installed, ".service")?;
    let scratch = tree.root.join("user-unit-check");
    fs::create_dir_all(&scratch)?;
    fs::set_permissions(&scratch, fs::Permissions::from_mode(0o700))?;
    let prefix = format!("ExecStart={}/", tree.root.display());
    let mut copies = Vec::new();
    for unit in &units {
        let text = fs::read_to_string(installed.join(unit))?;
        let text = text.replace("ExecStart=/", &prefix);
        let copy = scratch.join(unit);
        fs::write(&copy, text)?;
        copies.push(copy);
    }
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .env("XDG_RUNTIME_DIR", &scratch)
        .args(&copies)
        .output()
        .context("running systemd-analyze --user")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = stderr.lines().filter(|l| units.iter().any(|u| l.contains(u.as_str()))).collect();
    if !out.status.success() || !ours.is_empty() {
        bail!("systemd-analyze --user verify: {}\n{stderr}", ours.join("\n"));
    }
    eprintln!("systemd-analyze --user verify: {} user units clean", units.len());
    Ok(())
}

pub fn verify_bus_files(tree: &Tree) -> Result<()> {
    let policies = tree.root.join(POLICY_DIR.trim_start_matches('/'));
    let services = tree.root.join(ACTIVATION_DIR.trim_start_matches('/'));
    let scratch = tree.root.join("bus-check");
    fs::create_dir_all(&scratch)?;
    let socket = scratch.join("socket");
    let config = scratch.join("bus.conf");
    // The lab's system-bus configuration, with only our installed files in it.
    let text = nm_lab::bus_config(&socket, &services, std::slice::from_ref(&policies));
    fs::write(&config, text)?;
    let mut bus = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--print-address=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting dbus-daemon")?;
    let mut address = String::new();
    if let Some(out) = bus.stdout.take() {
        use std::io::BufRead;
        let _ = std::io::BufReader::new(out).read_line(&mut address);
    }
    let address = address.trim().to_string();
    let result = (|| -> Result<()> {
        if address.is_empty() {
            bail!("dbus-daemon refused our policy files");
        }
        let out = Command::new("dbus-send")
            .arg(format!("--bus={address}"))
            .args(["--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus"])
            .arg("org.freedesktop.DBus.ListActivatableNames")
            .output()
            .context("running dbus-send")?;
        let listed = String::from_utf8_lossy(&out.stdout);
        for file in names(&services, ".service")? {
            let name = file.trim_end_matches(".service");
            if !listed.contains(&format!("\"{name}\"")) {
                bail!("{file} does not make {name} activatable:\n{listed}");
            }
        }
        Ok(())
    })();
    let _ = bus.kill();
    let output = bus.wait_with_output()?;
    let log = String::from_utf8_lossy(&output.stderr);
    result.map_err(|e| anyhow::anyhow!("{e}\n{log}"))?;
    eprintln!(
        "dbus-daemon: {} policy files load, {} activation files list",
        names(&policies, ".conf")?.len(),
        names(&services, ".service")?.len()
    );
    Ok(())
}

/// Both checks, on one installed tree.
pub fn run() -> Result<()> {
    let tree = installed_tree()?;
    verify_units(&tree)?;
    verify_bus_files(&tree)
}
