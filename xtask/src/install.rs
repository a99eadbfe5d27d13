//! `cargo xtask install [--destdir DIR] [--debug]`: binaries, units, bus
//! policies and activation files, tmpfiles/sysusers, man pages, completions
//! and docs to their FHS places (Debian's layout). The one table of what
//! goes where is [`layout`]; `deb` and the unit/policy checks of `test`
//! install through it too, so they check what ships.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, check, header, target_dir, workspace_root};

/// The daemons, installed to `/usr/libexec/nm-rs/` (the units name them there).
pub const DAEMONS: &[&str] = &["nm-core", "nm-system-settings", "nm-user-settings", "nm-dhcp-helper", "nm-dispatcher"];
/// The command line, installed to `/usr/bin/`.
pub const CLIENTS: &[&str] = &["nmctl"];
pub const LIBEXEC: &str = "/usr/libexec/nm-rs";
pub const UNIT_DIR: &str = "/usr/lib/systemd/system";
/// systemd user units (`systemd/user/`): run by each user's manager.
pub const USER_UNIT_DIR: &str = "/usr/lib/systemd/user";
pub const POLICY_DIR: &str = "/usr/share/dbus-1/system.d";
pub const ACTIVATION_DIR: &str = "/usr/share/dbus-1/system-services";
/// polkit actions (`polkit/*.policy`): NetworkManager's action ids nm-core asks about.
pub const POLKIT_ACTIONS_DIR: &str = "/usr/share/polkit-1/actions";

/// One file to install: from the tree (or the build), to an absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub from: PathBuf,
    pub to: PathBuf,
    pub mode: u32,
}

fn entry(from: PathBuf, to: impl Into<PathBuf>, mode: u32) -> Entry {
    Entry { from, to: to.into(), mode }
}

/// Files of `dir` whose names end with `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix)))
        .collect();
    out.sort();
    Ok(out)
}

fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Where the built binary `name` is. A release build's clients are the
/// static ones ([`build_static_clients`]).
pub fn binary(name: &str, release: bool) -> PathBuf {
    if CLIENTS.contains(&name) { client_dir(release).join(name) } else { bin_dir(release).join(name) }
}

/// The clients' directory for a build profile.
pub fn client_dir(release: bool) -> PathBuf {
    if release { target_dir().join(STATIC_TARGET).join("release") } else { bin_dir(false) }
}

/// The target the static clients are built for (this machine's kind).
const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds the clients (nmctl) of a release statically linked: a command
/// line tool runs once per command, and without the dynamic loader and
/// libc's shared mappings it starts with a third less CPU (`nmctl
/// --version`: 0.73 -> 0.51 ms, 121 -> 97 page faults). nmctl uses nothing
/// of glibc that loads shared libraries at run time (no NSS, no name
/// resolution). With `--target`, the flag reaches only the target's
/// crates, not build scripts and proc-macros; the output goes to
/// `target/<triple>/release`.
pub fn build_static_clients() -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--target", STATIC_TARGET]);
    for c in CLIENTS {
        cmd.args(["-p", c]);
    }
    // Added to .cargo/config.toml's flags for the target (arrays join).
    cmd.env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-C target-feature=+crt-static");
    header("cargo build --release --target (static) of the clients");
    check(cmd)
}

/// Everything that ships except the generated docs: `bin_dir` holds the
/// built binaries.
pub fn layout(bin_dir: &Path, client_dir: &Path) -> Result<Vec<Entry>> {
    let root = workspace_root();
    let mut out = Vec::new();
    for d in DAEMONS {
        out.push(entry(bin_dir.join(d), format!("{LIBEXEC}/{d}"), 0o755));
    }
    for c in CLIENTS {
        out.push(entry(client_dir.join(c), format!("/usr/bin/{c}"), 0o755));
    }
    for unit in files(&root.join("systemd"), ".service")? {
        out.push(entry(unit.clone(), format!("{UNIT_DIR}/{}", name(&unit)), 0o644));
    }
    for unit in files(&root.join("systemd/user"), ".service")? {
        out.push(entry(unit.clone(), format!("{USER_UNIT_DIR}/{}", name(&unit)), 0o644));
    }
    for f in files(&root.join("systemd"), ".tmpfiles")? {
        let stem = name(&f).trim_end_matches(".tmpfiles").to_string();
        out.push(entry(f, format!("/usr/lib/tmpfiles.d/{stem}.conf"), 0o644));
    }
    for f in files(&root.join("systemd"), ".sysusers")? {
        let stem = name(&f).trim_end_matches(".sysusers").to_string();
        out.push(entry(f, format!("/usr/lib/sysusers.d/{stem}.conf"), 0o644));
    }
    // `*.lab.conf` only lets the lab's stand-in users in: never installed.
    for policy in files(&root.join("dbus-policy"), ".conf")?.into_iter().filter(|p| !name(p).ends_with(".lab.conf")) {
        out.push(entry(policy.clone(), format!("{POLICY_DIR}/{}", name(&policy)), 0o644));
    }
    for activation in files(&root.join("dbus-policy"), ".service")? {
        out.push(entry(activation.clone(), format!("{ACTIVATION_DIR}/{}", name(&activation)), 0o644));
    }
    for policy in files(&root.join("polkit"), ".policy")? {
        out.push(entry(policy.clone(), format!("{POLKIT_ACTIONS_DIR}/{}", name(&policy)), 0o644));
    }
    for doc in ["README.md", "ARCHITECTURE.md"] {
        out.push(entry(root.join(doc), format!("/usr/share/doc/nm-rs/{doc}"), 0o644));
    }
    Ok(out)
}

/// The binaries' directory for a build profile.
pub fn bin_dir(release: bool) -> PathBuf {
    target_dir().join(if release { "release" } else { "debug" })
}

/// Builds the binaries that ship.
pub fn build(release: bool) -> Result<()> {
    let mut cmd = cargo();
    cmd.arg("build");
    if release {
        cmd.arg("--release");
    }
    for p in DAEMONS.iter().chain(CLIENTS) {
        cmd.args(["-p", p]);
    }
    header(&format!("cargo build {}of the shipped binaries", if release { "--release " } else { "" }));
    check(cmd)?;
    if release { build_static_clients() } else { Ok(()) }
}

fn under(destdir: &Path, abs: &Path) -> PathBuf {
    destdir.join(abs.strip_prefix("/").unwrap_or(abs))
}

fn copy(e: &Entry, destdir: &Path) -> Result<()> {
    let to = under(destdir, &e.to);
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::copy(&e.from, &to).with_context(|| format!("copying {} to {}", e.from.display(), to.display()))?;
    fs::set_permissions(&to, fs::Permissions::from_mode(e.mode))
        .with_context(|| format!("setting the mode of {}", to.display()))?;
    Ok(())
}

/// nmctl's man pages (gzipped, as Debian wants) and completions.
fn install_docs(destdir: &Path) -> Result<()> {
    let scratch = std::env::temp_dir().join(format!("nm-rs-docs-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    crate::docs::man(&scratch.join("man"))?;
    crate::docs::completions(&scratch.join("completions"))?;
    let man1 = under(destdir, Path::new("/usr/share/man/man1"));
    fs::create_dir_all(&man1).with_context(|| format!("creating {}", man1.display()))?;
    for page in files(&scratch.join("man"), ".1")? {
        let to = man1.join(format!("{}.gz", name(&page)));
        let out = Command::new("gzip").args(["-9", "-n", "-c"]).arg(&page).output().context("running gzip")?;
        if !out.status.success() {
            bail!("gzip {} failed", page.display());
        }
        fs::write(&to, out.stdout).with_context(|| format!("writing {}", to.display()))?;
        fs::set_permissions(&to, fs::Permissions::from_mode(0o644))?;
    }
    let completions = scratch.join("completions");
    for (file, to) in [
        ("nmctl.bash", "/usr/share/bash-completion/completions/nmctl"),
        ("_nmctl", "/usr/share/zsh/vendor-completions/_nmctl"),
        ("nmctl.fish", "/usr/share/fish/vendor_completions.d/nmctl.fish"),
    ] {
        copy(&entry(completions.join(file), to, 0o644), destdir)?;
    }
    let _ = fs::remove_dir_all(&scratch);
    Ok(())
}

/// Installs into `destdir` (`/` for the host). Builds first unless `no_build`.
pub fn install(destdir: &Path, release: bool, no_build: bool) -> Result<()> {
    if !no_build {
        build(release)?;
    }
    let entries = layout(&bin_dir(release), &client_dir(release))?;
    header(&format!("installing {} files (and nmctl's docs) into {}", entries.len(), destdir.display()));
    for e in &entries {
        copy(e, destdir)?;
    }
    install_docs(destdir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_policy_and_daemon_has_a_place_and_lab_policies_stay_out() {
        let entries = layout(Path::new("/build"), Path::new("/build")).expect("layout");
        let to: Vec<String> = entries.iter().map(|e| e.to.display().to_string()).collect();
        for d in DAEMONS {
            assert!(to.contains(&format!("{LIBEXEC}/{d}")), "{d}: {to:?}");
        }
        assert!(to.contains(&"/usr/bin/nmctl".to_string()));
        assert!(to.contains(&format!("{UNIT_DIR}/nm-core.service")));
        assert!(to.contains(&format!("{USER_UNIT_DIR}/nm-user-settings.service")));
        assert!(!to.contains(&format!("{UNIT_DIR}/nm-user-settings.service")), "a user unit is not a system unit");
        assert!(to.contains(&format!("{POLICY_DIR}/org.freedesktop.NetworkManager.conf")));
        assert!(to.contains(&format!("{ACTIVATION_DIR}/org.freedesktop.nm_dispatcher.service")));
        assert!(to.contains(&format!("{POLKIT_ACTIONS_DIR}/org.freedesktop.NetworkManager.policy")));
        assert!(to.contains(&"/usr/lib/sysusers.d/nm-dhcp-helper.conf".to_string()));
        assert!(to.iter().all(|t| !t.ends_with(".lab.conf")), "{to:?}");
        // Every unit's ExecStart names an installed binary.
        for e in entries.iter().filter(|e| e.to.starts_with(UNIT_DIR) || e.to.starts_with(USER_UNIT_DIR)) {
            let text = fs::read_to_string(&e.from).expect("unit");
            for line in text.lines().filter_map(|l| l.strip_prefix("ExecStart=")) {
                let program = line.split_whitespace().next().unwrap_or_default();
                assert!(to.iter().any(|t| t == program), "{}: {program} is not installed", e.from.display());
            }
        }
    }
}
