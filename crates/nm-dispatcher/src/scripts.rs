//! Which scripts run for an action, in which order, and which are refused
//! (reference §5.3). The rules are pure functions; [`discover`] applies
//! them to the directories.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

/// The script folders, lowest precedence first: a name in /etc hides the
/// same name in /usr/lib.
pub const DIRECTORIES: [&str; 2] = ["/usr/lib/NetworkManager/dispatcher.d", "/etc/NetworkManager/dispatcher.d"];

/// The subfolder an action's scripts live in, if not the top folder.
pub fn subdirectory(action: &str) -> Option<&'static str> {
    match action {
        "pre-up" | "vpn-pre-up" => Some("pre-up.d"),
        "pre-down" | "vpn-pre-down" => Some("pre-down.d"),
        _ => None,
    }
}

/// Names skipped without a word: hidden files, editor and package-manager
/// leftovers.
pub fn ignored_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [".rpmsave", ".rpmorig", ".rpmnew", ".swp"].iter().any(|s| name.ends_with(s))
        || name.contains(".dpkg-")
}

/// What the permission rules look at, from `stat` of the script's target.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub uid: u32,
    pub mode: u32,
}

/// Why a script may not run (it is logged and skipped), or `None`.
pub fn refusal(f: Facts) -> Option<&'static str> {
    if f.uid != 0 {
        Some("not owned by root")
    } else if f.mode & 0o022 != 0 {
        Some("writable by group or other")
    } else if f.mode & 0o4000 != 0 {
        Some("setuid")
    } else if f.mode & 0o100 == 0 {
        Some("not executable by its owner")
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub path: PathBuf,
    /// False for a script linked into a `no-wait.d` folder: started, not waited for.
    pub wait: bool,
}

/// The scripts for `action` under `root`, in name order.
pub fn discover(root: &nm_runtime::Paths, action: &str) -> Vec<Script> {
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in DIRECTORIES {
        let mut dir = root.path(dir);
        if let Some(sub) = subdirectory(action) {
            dir.push(sub);
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !ignored_name(&name) {
                by_name.insert(name, entry.path());
            }
        }
    }
    by_name.into_values().filter_map(|path| check(&path)).collect()
}

fn check(path: &Path) -> Option<Script> {
    // A link to /dev/null masks a script of the same name in /usr/lib.
    if fs::read_link(path).is_ok_and(|t| t == Path::new("/dev/null")) {
        debug!("{} is masked", path.display());
        return None;
    }
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    if let Some(why) = refusal(Facts { uid: meta.uid(), mode: meta.mode() }) {
        warn!("refusing to run {}: {why}", path.display());
        return None;
    }
    let target = fs::canonicalize(path).ok()?;
    let wait = target.parent().and_then(Path::file_name).is_none_or(|d| d != "no-wait.d");
    Some(Script { path: path.to_path_buf(), wait })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    #[test]
    fn permission_rules() {
        assert_eq!(refusal(Facts { uid: 0, mode: 0o100755 }), None);
        assert_eq!(refusal(Facts { uid: 0, mode: 0o100700 }), None);
        assert_eq!(refusal(Facts { uid: 1000, mode: 0o100755 }), Some("not owned by root"));
        assert_eq!(refusal(Facts { uid: 0, mode: 0o100775 }), Some("writable by group or other"));
        assert_eq!(refusal(Facts { uid: 0, mode: 0o100757 }), Some("writable by group or other"));
        assert_eq!(refusal(Facts { uid: 0, mode: 0o104755 }), Some("setuid"));
        assert_eq!(refusal(Facts { uid: 0, mode: 0o100644 }), Some("not executable by its owner"));
    }

    #[test]
    fn leftovers_are_ignored() {
        for name in [".hidden", "a~", "a.rpmnew", "a.rpmsave", "a.rpmorig", "a.swp", "a.dpkg-old", "a.dpkg-dist"] {
            assert!(ignored_name(name), "{name}");
        }
        assert!(!ignored_name("10-ifup"));
    }

    #[test]
    fn etc_overrides_usr_lib_by_name_and_order_is_by_name() {
        let dir = std::env::temp_dir().join(format!("nm-dispatcher-scripts-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let root = nm_runtime::Paths::new(Some(&dir));
        let lib = root.path(DIRECTORIES[0]);
        let etc = root.path(DIRECTORIES[1]);
        fs::create_dir_all(etc.join("no-wait.d")).unwrap();
        fs::create_dir_all(lib.join("pre-up.d")).unwrap();
        let script = |p: PathBuf, mode: u32| {
            fs::write(&p, "#!/bin/sh\n").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        };
        script(lib.join("20-lib"), 0o755);
        script(lib.join("10-shadowed"), 0o755);
        script(lib.join("30-masked"), 0o755);
        script(etc.join("10-shadowed"), 0o700);
        script(etc.join("05-writable"), 0o777);
        script(etc.join("no-wait.d/40-later"), 0o755);
        symlink("no-wait.d/40-later", etc.join("40-later")).unwrap();
        symlink("/dev/null", etc.join("30-masked")).unwrap();
        script(lib.join("pre-up.d/01-pre"), 0o755);
        fs::write(etc.join("50-empty"), "").unwrap();
        fs::set_permissions(etc.join("50-empty"), fs::Permissions::from_mode(0o755)).unwrap();

        let found = discover(&root, "up");
        // Running as root in CI; elsewhere ownership refuses everything.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(
                found,
                vec![
                    Script { path: etc.join("10-shadowed"), wait: true },
                    Script { path: lib.join("20-lib"), wait: true },
                    Script { path: etc.join("40-later"), wait: false },
                ]
            );
            assert_eq!(discover(&root, "pre-up"), vec![Script { path: lib.join("pre-up.d/01-pre"), wait: true }]);
        } else {
            assert!(found.is_empty());
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
