//! What differs between the system settings service and a user's settings
//! service: the bus name, the profile folders, whose files are trusted,
//! who may change profiles or read secrets, and whether the hostname is
//! served. Everything else (the store, the files' format, the interfaces)
//! is the same code for both. Pure: the environment and uids come in as
//! arguments.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use nm_dbus::names::{SYSTEM_SETTINGS, USER_SETTINGS};
use nm_runtime::Paths;

use crate::store::DirKind;

/// The system service's folders, as on NetworkManager.
pub const ETC_DIR: &str = "/etc/NetworkManager/system-connections";
pub const RUN_DIR: &str = "/run/NetworkManager/system-connections";
pub const USR_LIB_DIR: &str = "/usr/lib/NetworkManager/system-connections";

/// Below `$XDG_CONFIG_HOME` and `$XDG_RUNTIME_DIR`: a user's profile folder.
pub const USER_SUBDIR: &str = "nm-rs/connections";
/// Below `$XDG_CONFIG_HOME`: a user's configuration file.
pub const USER_CONFIG: &str = "nm-rs/nm-rs.toml";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Root's profiles for everybody: `org.freedesktop.NetworkManagerSystemSettings`.
    System,
    /// One user's own profiles: `org.freedesktop.NetworkManagerUserSettings`.
    User,
}

#[derive(Clone, Debug)]
pub struct Scope {
    pub kind: Kind,
    /// The uid the service runs as (its files are owned by it).
    pub own_uid: u32,
    /// The profile folders, lowest precedence first; a kind that is not
    /// here cannot be written (a user without `$XDG_RUNTIME_DIR` has no
    /// folder for unsaved profiles).
    pub dirs: Vec<(DirKind, PathBuf)>,
    /// The user's session bus, where a Secret Service keeps the user's
    /// secrets (see `keyring.rs`); never on the system scope.
    pub session_bus: Option<String>,
}

impl Scope {
    /// `/usr/lib`, `/etc` and `/run` under the root.
    pub fn system(paths: &Paths, own_uid: u32) -> Scope {
        Scope {
            kind: Kind::System,
            own_uid,
            dirs: vec![
                (DirKind::Vendor, paths.path(USR_LIB_DIR)),
                (DirKind::Saved, paths.path(ETC_DIR)),
                (DirKind::Runtime, paths.path(RUN_DIR)),
            ],
            session_bus: None,
        }
    }

    /// The user's folders (see [`UserDirs`]) under the root, and the
    /// user's session bus if there is one.
    pub fn user(paths: &Paths, own_uid: u32, dirs: &UserDirs, session_bus: Option<String>) -> Scope {
        let mut list = vec![(DirKind::Saved, paths.path(&dirs.saved))];
        if let Some(runtime) = &dirs.runtime {
            list.push((DirKind::Runtime, paths.path(runtime)));
        }
        Scope { kind: Kind::User, own_uid, dirs: list, session_bus }
    }

    pub fn bus_name(&self) -> &'static str {
        match self.kind {
            Kind::System => SYSTEM_SETTINGS,
            Kind::User => USER_SETTINGS,
        }
    }

    /// The folder of one kind, if this scope has it.
    pub fn dir(&self, kind: DirKind) -> Option<&Path> {
        self.dirs.iter().find(|(k, _)| *k == kind).map(|(_, d)| d.as_path())
    }

    /// Whether the service creates this folder when it is missing (the
    /// vendor folder belongs to packages).
    pub fn creates(&self, kind: DirKind) -> bool {
        kind != DirKind::Vendor
    }

    /// The mode of folders the service creates: a user's profiles are
    /// nobody else's business, not even their names.
    pub fn dir_mode(&self) -> u32 {
        match self.kind {
            Kind::System => 0o755,
            Kind::User => 0o700,
        }
    }

    /// Whether a profile file owned by `uid` may be read. The system trusts
    /// root's files (and its own, when it does not run as root); a user's
    /// service only the user's own: a file another uid put in the user's
    /// folder could hand the user somebody else's network.
    pub fn trusts_file_owner(&self, uid: u32) -> bool {
        match self.kind {
            Kind::System => uid == 0 || uid == self.own_uid,
            Kind::User => uid == self.own_uid,
        }
    }

    /// Whether a caller may add, change and delete profiles and read their
    /// secrets: root on the system service; the user and root (nm-core
    /// asks for secrets at activation) on a user's service.
    pub fn may_modify(&self, caller_uid: u32) -> bool {
        match self.kind {
            Kind::System => caller_uid == 0,
            Kind::User => caller_uid == self.own_uid || caller_uid == 0,
        }
    }

    /// Whether a caller may list profiles and read their settings: anyone on
    /// the system service (root's profiles are for everybody; secrets are
    /// never in them); the user and root on a user's service, whose
    /// profiles are nobody else's business.
    pub fn may_read(&self, caller_uid: u32) -> bool {
        match self.kind {
            Kind::System => true,
            Kind::User => self.may_modify(caller_uid),
        }
    }

    /// Who [`may_modify`](Self::may_modify), in words, for refusals.
    pub fn modifiers(&self) -> String {
        match self.kind {
            Kind::System => "root".into(),
            Kind::User if self.own_uid == 0 => "root".into(),
            Kind::User => format!("uid {} (the owner of these profiles) and root", self.own_uid),
        }
    }

    /// Whether `org.freedesktop.NetworkManagerSettings.System` (the hostname)
    /// is served.
    pub fn serves_hostname(&self) -> bool {
        self.kind == Kind::System
    }
}

/// A user's folders, from the environment (XDG base directories), before
/// the root is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDirs {
    /// `$XDG_CONFIG_HOME/nm-rs/connections` (`~/.config/nm-rs/connections`).
    pub saved: PathBuf,
    /// `$XDG_CONFIG_HOME/nm-rs/nm-rs.toml`.
    pub config_file: PathBuf,
    /// `$XDG_RUNTIME_DIR/nm-rs/connections`, when the variable is set.
    pub runtime: Option<PathBuf>,
}

impl UserDirs {
    /// As the XDG base directory specification says: a variable that is
    /// empty or not an absolute path counts as unset; `XDG_CONFIG_HOME`
    /// defaults to `$HOME/.config`, and without `HOME` there is no folder.
    pub fn from_env(var: impl Fn(&str) -> Option<OsString>) -> Result<UserDirs, String> {
        let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
        let config_home = match absolute("XDG_CONFIG_HOME") {
            Some(dir) => dir,
            None => absolute("HOME")
                .map(|home| home.join(".config"))
                .ok_or("neither XDG_CONFIG_HOME nor HOME is an absolute path: no folder for the user's profiles")?,
        };
        Ok(UserDirs {
            saved: config_home.join(USER_SUBDIR),
            config_file: config_home.join(USER_CONFIG),
            runtime: absolute("XDG_RUNTIME_DIR").map(|d| d.join(USER_SUBDIR)),
        })
    }
}

/// The user's session bus, as sd-bus and GDBus find it:
/// `DBUS_SESSION_BUS_ADDRESS` when set and not empty, else
/// `unix:path=$XDG_RUNTIME_DIR/bus` when that socket exists (`runtime_bus`
/// is that path, under the root). `None`: the user has no session bus.
pub fn session_bus_address(
    env_address: Option<OsString>,
    runtime_bus: Option<PathBuf>,
    exists: impl Fn(&Path) -> bool,
) -> Option<String> {
    if let Some(address) = env_address.and_then(|a| a.into_string().ok()).filter(|a| !a.is_empty()) {
        return Some(address);
    }
    let socket = runtime_bus.filter(|p| p.is_absolute() && exists(p))?;
    Some(format!("unix:path={}", escape_address_value(&socket.to_string_lossy())))
}

/// A value in a D-Bus address: bytes other than `[-0-9A-Za-z_/.\*]` as `%xx`.
fn escape_address_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_/.\\*".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// A user's service runs as its user: started as root it would write
/// root-owned files into a home and serve "a user's" profiles as root.
/// `--allow-root` is for tests and rescue shells.
pub fn check_user_service_uid(euid: u32, allow_root: bool) -> Result<(), String> {
    if euid == 0 && !allow_root {
        return Err("nm-user-settings serves one user's profiles and runs as that user (a systemd user unit), \
                    not as root; pass --allow-root to run it as root anyway"
            .into());
    }
    Ok(())
}

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn user_dirs_follow_xdg() {
        let dirs = UserDirs::from_env(env(&[("HOME", "/home/ann")])).expect("dirs");
        assert_eq!(dirs.saved, Path::new("/home/ann/.config/nm-rs/connections"));
        assert_eq!(dirs.config_file, Path::new("/home/ann/.config/nm-rs/nm-rs.toml"));
        assert_eq!(dirs.runtime, None);

        let dirs = UserDirs::from_env(env(&[
            ("HOME", "/home/ann"),
            ("XDG_CONFIG_HOME", "/cfg"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ]))
        .expect("dirs");
        assert_eq!(dirs.saved, Path::new("/cfg/nm-rs/connections"));
        assert_eq!(dirs.runtime.as_deref(), Some(Path::new("/run/user/1000/nm-rs/connections")));

        // Relative or empty values count as unset.
        let dirs = UserDirs::from_env(env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "rel"), ("XDG_RUNTIME_DIR", "")]))
            .expect("dirs");
        assert_eq!(dirs.saved, Path::new("/h/.config/nm-rs/connections"));
        assert_eq!(dirs.runtime, None);
        assert!(UserDirs::from_env(env(&[("HOME", "")])).is_err());
        assert!(UserDirs::from_env(env(&[])).is_err());
    }

    #[test]
    fn system_scope_trusts_and_obeys_root() {
        let s = Scope::system(&Paths::new(Some(Path::new("/lab"))), 0);
        assert_eq!(s.bus_name(), SYSTEM_SETTINGS);
        assert_eq!(s.dir(DirKind::Saved), Some(Path::new("/lab/etc/NetworkManager/system-connections")));
        assert_eq!(s.dir(DirKind::Vendor), Some(Path::new("/lab/usr/lib/NetworkManager/system-connections")));
        assert!(s.serves_hostname());
        assert!(s.trusts_file_owner(0));
        assert!(!s.trusts_file_owner(1000));
        assert!(s.may_modify(0));
        assert!(!s.may_modify(1000));
        assert!(!s.creates(DirKind::Vendor) && s.creates(DirKind::Runtime));
        // Not running as root, it also reads its own files, but only root writes.
        let s = Scope::system(&Paths::new(None), 990);
        assert!(s.trusts_file_owner(990) && s.trusts_file_owner(0));
        assert!(!s.may_modify(990));
    }

    #[test]
    fn user_scope_belongs_to_its_user_and_root() {
        let dirs = UserDirs::from_env(env(&[("HOME", "/home/ann"), ("XDG_RUNTIME_DIR", "/run/user/1000")])).unwrap();
        let s = Scope::user(&Paths::new(Some(Path::new("/lab"))), 1000, &dirs, None);
        assert_eq!(s.bus_name(), USER_SETTINGS);
        assert!(!s.serves_hostname());
        assert_eq!(s.dir(DirKind::Vendor), None);
        assert_eq!(s.dir(DirKind::Saved), Some(Path::new("/lab/home/ann/.config/nm-rs/connections")));
        assert_eq!(s.dir(DirKind::Runtime), Some(Path::new("/lab/run/user/1000/nm-rs/connections")));
        assert_eq!(s.dir_mode(), 0o700);
        // Only the user's own files; root's too would let root plant profiles
        // the user never made, and any other uid's is plainly foreign.
        assert!(s.trusts_file_owner(1000));
        assert!(!s.trusts_file_owner(0));
        assert!(!s.trusts_file_owner(1001));
        // The user and root (nm-core) change profiles and read secrets; nobody else.
        assert!(s.may_modify(1000) && s.may_modify(0));
        assert!(!s.may_modify(1001) && !s.may_modify(65534));
        assert_eq!(s.modifiers(), "uid 1000 (the owner of these profiles) and root");

        let no_runtime = UserDirs::from_env(env(&[("HOME", "/home/ann")])).unwrap();
        let s = Scope::user(&Paths::new(None), 1000, &no_runtime, None);
        assert_eq!(s.dir(DirKind::Runtime), None);
        assert_eq!(s.dirs.len(), 1);
    }

    #[test]
    fn the_session_bus_is_found_as_sd_bus_finds_it() {
        let runtime = || Some(PathBuf::from("/run/user/1000/bus"));
        let env = |a: &str| Some(OsString::from(a));
        assert_eq!(
            session_bus_address(env("unix:path=/tmp/b"), runtime(), |_| true).as_deref(),
            Some("unix:path=/tmp/b")
        );
        assert_eq!(session_bus_address(env(""), runtime(), |_| true).as_deref(), Some("unix:path=/run/user/1000/bus"));
        assert_eq!(session_bus_address(None, runtime(), |_| false), None, "no socket, no bus");
        assert_eq!(session_bus_address(None, None, |_| true), None);
        assert_eq!(
            session_bus_address(None, Some(PathBuf::from("/r/a b,c=d/bus")), |_| true).as_deref(),
            Some("unix:path=/r/a%20b%2cc%3dd/bus")
        );
    }

    #[test]
    fn the_user_service_refuses_root_unless_told() {
        assert!(check_user_service_uid(1000, false).is_ok());
        assert!(check_user_service_uid(0, false).unwrap_err().contains("--allow-root"));
        assert!(check_user_service_uid(0, true).is_ok());
    }
}
