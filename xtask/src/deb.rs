//! `cargo xtask deb [--debug] [--out DIR]`: a Debian package of what
//! `install` lays out, with maintainer scripts that take over from
//! network-manager's daemon where the two would fight, and give it back on
//! removal.
//!
//! Debian ships `nmcli`, `nm-online` and libnm's clients in the same package
//! as NetworkManager's daemon, and those clients are what nm-rs is a drop-in
//! for, so the package does not conflict with `network-manager` as a whole:
//! - the files both packages ship (the dispatcher's activation file, the
//!   main bus policy and the polkit actions) are diverted while nm-rs is
//!   installed;
//! - `nm-core.service` has `Conflicts=NetworkManager.service`, and on first
//!   install the NetworkManager units that were enabled are disabled (and
//!   recorded, so removal enables them again).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::install;
use crate::util::{check, header, target_dir};

pub const PACKAGE: &str = "nm-rs";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Paths network-manager also ships; ours replace them while installed.
pub const DIVERTED: &[&str] = &[
    "/usr/share/dbus-1/system-services/org.freedesktop.nm_dispatcher.service",
    "/usr/share/dbus-1/system.d/org.freedesktop.NetworkManager.conf",
    "/usr/share/polkit-1/actions/org.freedesktop.NetworkManager.policy",
];
/// Enabled on install.
pub const ENABLED_UNITS: &[&str] = &["nm-core.service", "nm-system-settings.service", "nm-wait-online.service"];
/// Stopped before removal.
pub const ALL_UNITS: &[&str] = &[
    "nm-wait-online.service",
    "nm-core.service",
    "nm-dispatcher.service",
    "nm-dhcp-helper.service",
    "nm-system-settings.service",
];
/// NetworkManager's units that would fight nm-core's.
pub const NETWORK_MANAGER_UNITS: &[&str] =
    &["NetworkManager.service", "NetworkManager-wait-online.service", "NetworkManager-dispatcher.service"];
const RECORD: &str = "/var/lib/nm-rs/network-manager-units-disabled";

fn words(list: &[&str]) -> String {
    list.join(" ")
}

fn preinst() -> String {
    format!(
        r#"#!/bin/sh
set -e
# network-manager ships these paths too: nm-rs's take their place while it is installed.
case "$1" in
install|upgrade)
    for f in {diverted}; do
        dpkg-divert --package {PACKAGE} --add --rename --divert "$f.network-manager" "$f" >/dev/null
    done
    ;;
esac
"#,
        diverted = words(DIVERTED)
    )
}

fn postinst() -> String {
    format!(
        r#"#!/bin/sh
set -e
if [ "$1" = configure ]; then
    systemd-sysusers nm-dhcp-helper.conf
    systemd-tmpfiles --create nm-rs.conf nm-dhcp-helper.conf
    if [ -z "$2" ]; then
        # First install: NetworkManager's enabled units make way (recorded for removal).
        mkdir -p /var/lib/nm-rs
        : > {RECORD}
        for u in {nm_units}; do
            if systemctl -q is-enabled "$u" 2>/dev/null; then
                echo "$u" >> {RECORD}
                systemctl -q disable "$u" 2>/dev/null || true
            fi
        done
    fi
    systemctl -q enable {enabled}
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl reload dbus.service 2>/dev/null || true
        # Do not cut a running NetworkManager off under the administrator's feet.
        if systemctl -q is-active NetworkManager.service; then
            echo "nm-rs: NetworkManager is running; nm-core starts at the next boot (or: systemctl start nm-core)"
        else
            systemctl start nm-core.service
        fi
    fi
fi
"#,
        nm_units = words(NETWORK_MANAGER_UNITS),
        enabled = words(ENABLED_UNITS)
    )
}

fn prerm() -> String {
    format!(
        r#"#!/bin/sh
set -e
if [ "$1" = remove ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop {all} || true
    fi
    systemctl -q disable {enabled} || true
fi
"#,
        all = words(ALL_UNITS),
        enabled = words(ENABLED_UNITS)
    )
}

fn postrm() -> String {
    format!(
        r#"#!/bin/sh
set -e
case "$1" in
remove|abort-install|abort-upgrade)
    for f in {diverted}; do
        dpkg-divert --package {PACKAGE} --remove --rename --divert "$f.network-manager" "$f" >/dev/null
    done
    if [ "$1" = remove ] && [ -f {RECORD} ]; then
        while read -r u; do
            systemctl -q enable "$u" 2>/dev/null || true
        done < {RECORD}
        rm -f {RECORD}
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
    fi
    ;;
purge)
    rm -rf /var/lib/nm-rs
    ;;
esac
"#,
        diverted = words(DIVERTED)
    )
}

fn architecture() -> Result<String> {
    let out = Command::new("dpkg").arg("--print-architecture").output().context("running dpkg")?;
    if !out.status.success() {
        bail!("dpkg --print-architecture failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn control(arch: &str, installed_kib: u64) -> String {
    format!(
        "Package: {PACKAGE}\n\
         Version: {VERSION}\n\
         Architecture: {arch}\n\
         Maintainer: nm-rs developers <nm-rs@users.noreply.example>\n\
         Installed-Size: {installed_kib}\n\
         Depends: dbus (>= 1.12), systemd (>= 247), libc6 (>= 2.34)\n\
         Suggests: network-manager\n\
         Section: net\n\
         Priority: optional\n\
         Description: network manager re-made in Rust as small cooperating daemons\n \
         nm-rs keeps every network device up with the best profile it may use,\n \
         configures addresses, routes and DNS, and speaks NetworkManager's own\n \
         D-Bus API, so nmcli, nm-online, GNOME and KDE clients work against it\n \
         unchanged. It reads and writes NetworkManager keyfiles and runs\n \
         NetworkManager dispatcher scripts. DHCP runs in an unprivileged process.\n"
    )
}

fn size_kib(dir: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => {
                fs::read_dir(p).map(|entries| entries.flatten().map(|e| walk(&e.path())).sum()).unwrap_or(0)
            }
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    walk(dir).div_ceil(1024)
}

fn write_script(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Builds the package into `out` (default `target/deb/`); returns its path.
pub fn build(out: Option<&Path>, release: bool, no_build: bool) -> Result<PathBuf> {
    let arch = architecture()?;
    let out = out.map_or_else(|| target_dir().join("deb"), Path::to_path_buf);
    let staging = target_dir().join("deb-staging").join(format!("{PACKAGE}_{VERSION}_{arch}"));
    let _ = fs::remove_dir_all(&staging);
    install::install(&staging, release, no_build)?;
    let debian = staging.join("DEBIAN");
    fs::create_dir_all(&debian)?;
    let kib = size_kib(&staging);
    fs::write(debian.join("control"), control(&arch, kib))?;
    write_script(&debian, "preinst", &preinst())?;
    write_script(&debian, "postinst", &postinst())?;
    write_script(&debian, "prerm", &prerm())?;
    write_script(&debian, "postrm", &postrm())?;
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let deb = out.join(format!("{PACKAGE}_{VERSION}_{arch}.deb"));
    header(&format!("dpkg-deb --build {}", deb.display()));
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("--root-owner-group");
    // Debug binaries are large: fast compression for them.
    if !release {
        cmd.args(["-Zgzip", "-z1"]);
    }
    cmd.arg("--build").arg(&staging).arg(&deb);
    check(cmd)?;
    Ok(deb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintainer_scripts_are_valid_sh_and_undo_what_they_do() {
        for (name, text) in [("preinst", preinst()), ("postinst", postinst()), ("prerm", prerm()), ("postrm", postrm())]
        {
            let out = Command::new("sh").arg("-n").arg("-c").arg(&text).output().expect("sh runs");
            assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        for f in DIVERTED {
            assert!(preinst().contains(f) && postrm().contains(f), "{f} diverted and given back");
        }
        assert!(postinst().contains(RECORD) && postrm().contains(RECORD));
        let c = control("amd64", 1);
        assert!(c.lines().all(|l| !l.is_empty()), "no empty line inside the control stanza:\n{c}");
    }
}
