//! Debian's real polkitd on the lab bus (reference `polkit-in-the-lab.md`).
//!
//! polkitd reads its actions and rules from fixed paths, so it runs inside
//! its own mount namespace (`unshare --mount --propagation private`, inside
//! the one `ip netns exec` already gives it) where the lab's directories are
//! bind-mounted over them:
//!
//! - `<lab>/polkit/actions` over `/usr/share/polkit-1/actions` (the actions
//!   files the test names, e.g. the project's `polkit/*.policy`);
//! - `<lab>/polkit/etc-rules.d` over `/etc/polkit-1/rules.d` (the test's
//!   rules) and an empty `<lab>/polkit/usr-rules.d` over
//!   `/usr/share/polkit-1/rules.d`, which hides the host's rules;
//! - `<lab>/polkit/varlib` over `/var/lib/polkit-1`, and a lab `/etc/group`
//!   when the test gives one;
//! - an empty tmpfs over `/run/dbus` (no host system bus is reachable) and
//!   over `/run/systemd` (no logind session: only `allow_any` and the
//!   rules count, the same on every host).
//!
//! polkitd starts as root (it drops to user `polkitd` itself) with
//! `DBUS_SYSTEM_BUS_ADDRESS` set to the lab bus; the launcher waits for
//! `org.freedesktop.PolicyKit1`, and dropping the handle kills it by PID,
//! which ends the mount namespace: the host's mounts are never touched.
//! The lab bus must carry polkit's own bus policy (only user `polkitd` may
//! own the name): build the lab with [`LabBuilder::polkit`](crate::LabBuilder::polkit).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::process::run;
use crate::{DaemonHandle, Lab, LabError};

/// Debian's polkitd.
pub const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
/// polkit's bus policy, shipped by the polkitd package.
pub const POLKIT_BUS_POLICY: &str = "/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf";
pub const POLKIT_NAME: &str = "org.freedesktop.PolicyKit1";

/// Everything polkitd gets in its namespace, then `exec polkitd`. `$1` is
/// the lab's polkit directory. Mount points that do not exist on the host
/// are left alone (never created: that would change the host).
const WRAPPER: &str = r#"set -e
d=$1
mount --bind "$d/actions" /usr/share/polkit-1/actions
mount --bind "$d/etc-rules.d" /etc/polkit-1/rules.d
mount --bind "$d/usr-rules.d" /usr/share/polkit-1/rules.d
if [ -d /var/lib/polkit-1 ]; then mount --bind "$d/varlib" /var/lib/polkit-1; fi
if [ -f "$d/group" ]; then mount --bind "$d/group" /etc/group; fi
if [ -d /run/dbus ]; then mount -t tmpfs -o mode=755 tmpfs /run/dbus; fi
if [ -d /run/systemd ]; then
    mount -t tmpfs -o mode=755 tmpfs /run/systemd
    mkdir /run/systemd/sessions /run/systemd/users /run/systemd/seats /run/systemd/machines
fi
exec "$2"
"#;

/// A directory with a copy of polkit's bus policy, for the lab bus to
/// include (written into the lab's own directory).
pub(crate) fn bus_policy_dir(lab_dir: &Path) -> Result<PathBuf, LabError> {
    let src = Path::new(POLKIT_BUS_POLICY);
    if !src.is_file() {
        return Err(LabError::Invalid(format!("{POLKIT_BUS_POLICY} is missing: install the polkitd package")));
    }
    let dir = lab_dir.join("polkit-bus-policy");
    fs::create_dir_all(&dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    let to = dir.join("org.freedesktop.PolicyKit1.conf");
    fs::copy(src, &to).map_err(|e| LabError::io(format!("copying {POLKIT_BUS_POLICY}"), e))?;
    Ok(dir)
}

/// polkitd about to be started; see [`Lab::polkitd`].
#[must_use = "a PolkitSpec does nothing until spawn() is awaited"]
pub struct PolkitSpec<'lab> {
    lab: &'lab Lab,
    actions: Vec<PathBuf>,
    rules: Vec<(String, String)>,
    group: Option<String>,
}

impl<'lab> PolkitSpec<'lab> {
    pub(crate) fn new(lab: &'lab Lab) -> Self {
        PolkitSpec { lab, actions: Vec::new(), rules: Vec::new(), group: None }
    }

    /// An actions file (`*.policy`) polkitd should know.
    pub fn action_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.actions.push(path.into());
        self
    }

    /// A JavaScript rules file, as `/etc/polkit-1/rules.d/<name>`.
    pub fn rule(mut self, name: &str, text: &str) -> Self {
        self.rules.push((name.to_owned(), text.to_owned()));
        self
    }

    /// polkitd sees this text as `/etc/group` (for `subject.isInGroup`).
    pub fn group_file(mut self, text: &str) -> Self {
        self.group = Some(text.to_owned());
        self
    }

    /// Lays the files out and starts polkitd; returns once it owns
    /// `org.freedesktop.PolicyKit1` on the lab bus.
    pub async fn spawn(self) -> Result<DaemonHandle, LabError> {
        if !Path::new(POLKITD).is_file() {
            return Err(LabError::Invalid(format!("{POLKITD} is missing: install the polkitd package")));
        }
        let dir = self.lab.dir().join("polkit");
        if dir.exists() {
            return Err(LabError::Invalid("polkitd was already started in this lab".into()));
        }
        let uid = id_of("-u")?;
        let gid = id_of("-g")?;
        let mk = |rel: &str, mode: u32, polkitd_owns: bool| -> Result<PathBuf, LabError> {
            let p = dir.join(rel);
            fs::create_dir_all(&p).map_err(|e| LabError::io(format!("creating {}", p.display()), e))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                .map_err(|e| LabError::io(format!("chmod {}", p.display()), e))?;
            if polkitd_owns {
                std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                    .map_err(|e| LabError::io(format!("chown {}", p.display()), e))?;
            }
            Ok(p)
        };
        let actions = mk("actions", 0o755, false)?;
        let rules = mk("etc-rules.d", 0o700, true)?;
        mk("usr-rules.d", 0o700, true)?;
        mk("varlib", 0o700, true)?;
        for file in &self.actions {
            let name = file.file_name().ok_or_else(|| LabError::Invalid(format!("{} has no name", file.display())))?;
            fs::copy(file, actions.join(name)).map_err(|e| LabError::io(format!("copying {}", file.display()), e))?;
        }
        for (name, text) in &self.rules {
            let p = rules.join(name);
            fs::write(&p, text).map_err(|e| LabError::io(format!("writing {}", p.display()), e))?;
            std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                .map_err(|e| LabError::io(format!("chown {}", p.display()), e))?;
        }
        if let Some(text) = &self.group {
            let p = dir.join("group");
            fs::write(&p, text).map_err(|e| LabError::io(format!("writing {}", p.display()), e))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644))
                .map_err(|e| LabError::io(format!("chmod {}", p.display()), e))?;
        }
        // ip netns exec → unshare → sh → polkitd: each execs in place, so the
        // launcher's PID is polkitd's, and the bus name check holds.
        self.lab
            .daemon("polkitd")
            .program("/usr/bin/unshare")
            .no_root_arg()
            .bus_name(POLKIT_NAME)
            .args(["--mount", "--propagation", "private", "/bin/sh", "-c", WRAPPER, "polkitd-lab"])
            .arg(&dir)
            .arg(POLKITD)
            .spawn()
            .await
    }
}

/// `id -u polkitd` / `id -g polkitd`.
fn id_of(flag: &str) -> Result<u32, LabError> {
    let out = run("id", [flag, "polkitd"])?;
    out.trim().parse().map_err(|_| LabError::Invalid(format!("`id {flag} polkitd` said {out:?}")))
}

#[cfg(test)]
mod tests {
    use super::WRAPPER;

    #[test]
    fn the_wrapper_hides_the_hosts_policy_and_never_creates_host_paths() {
        for target in [
            "/usr/share/polkit-1/actions",
            "/etc/polkit-1/rules.d",
            "/usr/share/polkit-1/rules.d",
            "/var/lib/polkit-1",
            "/run/dbus",
            "/run/systemd",
        ] {
            assert!(WRAPPER.contains(target), "{target}");
        }
        // mkdir only under the tmpfs just mounted.
        for line in WRAPPER.lines().filter(|l| l.contains("mkdir")) {
            assert!(line.trim_start().starts_with("mkdir /run/systemd/"), "{line}");
        }
        assert!(WRAPPER.trim_end().ends_with("exec \"$2\""));
    }
}
