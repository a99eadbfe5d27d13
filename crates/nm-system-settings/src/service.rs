//! The settings-service interface on the bus (DESIGN.md §1, reference §4):
//! `org.freedesktop.NetworkManagerSettings` (+ `.System` on the system
//! service) at `/org/freedesktop/NetworkManagerSettings`, and one object per
//! visible profile with `.Connection` and `.Connection.Secrets`. The same
//! code serves both scopes; what differs is asked from `Daemon::scope`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use nm_dbus::errors::{ConnectionError, SettingsError};
use nm_dbus::names::SETTINGS_PATH;
use nm_dbus::settings_service::ProfileEntry;
use nm_dbus::{WireSettings, settings_from_wire, settings_to_wire};
use nm_model::{Connection, dbus_dict, validate};
use nm_runtime::Paths;
use tracing::{info, warn};
use zbus::message::Header;
use zbus::object_server::{IntoDBusError, SignalEmitter};
use zbus::{BoxDBusError, Connection as Bus, OwnedObjectPath, interface};

use crate::config::Config;
use crate::files;
use crate::keyring::{self, Entry, Keyring, Unavailable};
use crate::scope::{Kind, Scope};
use crate::store::{Change, DirKind, FileProfile, Format, Store, file_name_for};

/// State shared by every interface object and the file watcher.
pub struct Daemon {
    pub scope: Scope,
    pub store: Mutex<Store>,
    pub paths: Paths,
    pub config: Config,
    /// The user's keyring (a user's service only).
    pub keyring: Keyring,
}

impl Daemon {
    pub fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock must not take the service down.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new file for a profile in one of the writable directories, named
    /// after its id as NetworkManager names them.
    fn new_file(
        &self,
        store: &Store,
        conn: &Connection,
        dir: DirKind,
        format: Format,
    ) -> Result<FileProfile, BoxDBusError> {
        let folder = self.scope.dir(dir).ok_or_else(|| {
            fail(SettingsError::NotSupported(match dir {
                DirKind::Runtime => "no folder for unsaved profiles: the service was started without \
                                     XDG_RUNTIME_DIR"
                    .into(),
                _ => format!("this service has no {dir:?} profile folder"),
            }))
        })?;
        let uuid = conn.uuid().unwrap_or_default();
        let name = file_name_for(conn.id().unwrap_or_default(), uuid, format, |n| {
            store.has_path(&folder.join(n)) || folder.join(n).exists()
        });
        Ok(FileProfile::new(folder.join(name), dir, format, conn))
    }

    /// Refuses callers the scope does not let change profiles or read
    /// secrets with `org.freedesktop.DBus.Error.AccessDenied`.
    async fn require_modifier(&self, bus: &Bus, hdr: &Header<'_>, what: &str) -> Result<(), BoxDBusError> {
        self.require(bus, hdr, what, Scope::may_modify).await
    }

    /// Refuses callers the scope does not let read profiles (nobody is
    /// asked about on the system service, whose reads are open).
    async fn require_reader(&self, bus: &Bus, hdr: &Header<'_>, what: &str) -> Result<(), BoxDBusError> {
        if self.scope.may_read(u32::MAX) {
            return Ok(());
        }
        self.require(bus, hdr, what, Scope::may_read).await
    }

    async fn require(
        &self,
        bus: &Bus,
        hdr: &Header<'_>,
        what: &str,
        allowed: fn(&Scope, u32) -> bool,
    ) -> Result<(), BoxDBusError> {
        let uid = nm_dbus::caller_uid(bus, hdr).await.map_err(fail)?;
        if !allowed(&self.scope, uid) {
            let who = self.scope.modifiers();
            warn!(uid, "refused: {what} is for {who} only");
            return Err(fail(zbus::fdo::Error::AccessDenied(format!("only {who} may {what}"))));
        }
        Ok(())
    }

    /// Whether secrets may go to a keyring at all (the user's service).
    fn uses_keyring(&self) -> bool {
        self.scope.kind == Kind::User
    }

    /// The profile as its file in `dir` should hold it: without the secrets
    /// the user's keyring now holds (`Some`: what was stored), or whole when
    /// the keyring is not used (`None`; one warning if secrets meant for it
    /// stay in the file).
    async fn stash_secrets(&self, conn: Connection, dir: DirKind) -> (Connection, Option<Vec<Entry>>) {
        if !self.uses_keyring() {
            return (conn, None);
        }
        let (file, entries) = keyring::split(&conn, dir);
        if entries.is_empty() {
            return (conn, Some(entries));
        }
        let uuid = conn.uuid().unwrap_or_default();
        match self.keyring.store(uuid, conn.id().unwrap_or_default(), &entries).await {
            Ok(()) => {
                info!(uuid, secrets = entries.len(), "secrets stored in the user's keyring");
                (file, Some(entries))
            }
            Err(e) => {
                warn!(uuid, "{e}; the profile's secrets stay in its 0600 file");
                (conn, None)
            }
        }
    }

    /// The keyring's secrets of a profile (of one setting, or all when
    /// empty); none without a keyring.
    async fn keyring_secrets(&self, uuid: &str, setting: &str) -> Vec<Entry> {
        if !self.uses_keyring() {
            return Vec::new();
        }
        match self.keyring.load(uuid, setting).await {
            Ok(entries) => entries,
            Err(Unavailable::Absent(_)) => Vec::new(),
            Err(e) => {
                warn!(uuid, "reading secrets from the keyring: {e}");
                Vec::new()
            }
        }
    }

    /// Deletes a profile's keyring items: all of them, or those `doomed` names.
    async fn forget_secrets(&self, uuid: &str, doomed: Option<&[(String, String)]>) {
        if !self.uses_keyring() || doomed.is_some_and(<[_]>::is_empty) {
            return;
        }
        match self.keyring.delete(uuid, doomed).await {
            Ok(0) | Err(Unavailable::Absent(_)) => {}
            Ok(n) => info!(uuid, items = n, "secrets deleted from the user's keyring"),
            Err(e) => warn!(uuid, "deleting secrets from the keyring: {e}"),
        }
    }

    fn hostname_path(&self) -> PathBuf {
        self.paths.path(&self.config.settings.hostname_file)
    }
}

pub fn object_path(id: u32) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("{SETTINGS_PATH}/{id}")).expect("a number makes a valid object path")
}

/// Any D-Bus error as what a method returns; it is replied with its own name.
fn fail<E: IntoDBusError>(e: E) -> BoxDBusError {
    e.into_dbus_error()
}

fn wire_settings(conn: &Connection, secrets: bool) -> Result<WireSettings, BoxDBusError> {
    settings_to_wire(&dbus_dict::to_dbus(conn, secrets)).map_err(|e| fail(ConnectionError::Failed(e.to_string())))
}

/// A stored profile parsed back (it was written by us, so this only fails
/// if memory is corrupt; still an error, not a panic).
fn parsed(profile: &FileProfile) -> Result<Connection, BoxDBusError> {
    profile.connection().map_err(|e| fail(ConnectionError::Failed(format!("{}: {e}", profile.path.display()))))
}

fn profile_settings(profile: &FileProfile, secrets: bool) -> Result<WireSettings, BoxDBusError> {
    wire_settings(&parsed(profile)?, secrets)
}

fn gone() -> BoxDBusError {
    fail(zbus::fdo::Error::UnknownObject("the profile is gone".into()))
}

/// Parses and validates a dictionary from a client; a bad one is refused
/// with `…Settings.Connection.InvalidProperty` and `setting.property: reason`.
fn connection_from_wire(wire: &WireSettings) -> Result<Connection, ConnectionError> {
    let dict = settings_from_wire(wire).map_err(|e| ConnectionError::InvalidProperty(e.to_string()))?;
    let conn = dbus_dict::from_dbus(&dict)?;
    Ok(validate::normalize_and_validate(conn)?)
}

/// Exports the objects of one profile.
pub async fn export(bus: &Bus, daemon: &Arc<Daemon>, id: u32) -> zbus::Result<OwnedObjectPath> {
    let server = bus.object_server();
    let path = object_path(id);
    server.at(&path, ConnectionIface { id, daemon: daemon.clone() }).await?;
    server.at(&path, SecretsIface { id, daemon: daemon.clone() }).await?;
    Ok(path)
}

/// Puts the store's changes on the bus: objects added or removed, signals.
pub async fn publish(bus: &Bus, daemon: &Arc<Daemon>, changes: Vec<Change>) {
    let server = bus.object_server();
    for change in changes {
        let result = match change {
            Change::Added(id) => {
                let added = async {
                    let path = export(bus, daemon, id).await?;
                    let emitter = SignalEmitter::new(bus, SETTINGS_PATH)?;
                    SettingsIface::new_connection(&emitter, path).await
                };
                added.await
            }
            Change::Updated(id) => {
                let profile = daemon.store().get(id).cloned();
                let settings = profile.map(|p| profile_settings(&p, false));
                match settings {
                    Some(Ok(s)) => match SignalEmitter::new(bus, object_path(id)) {
                        Ok(emitter) => ConnectionIface::updated(&emitter, s).await,
                        Err(e) => Err(e),
                    },
                    _ => Ok(()),
                }
            }
            Change::Removed(id) => {
                let path = object_path(id);
                let removed = async {
                    let emitter = SignalEmitter::new(bus, &path)?;
                    ConnectionIface::removed(&emitter).await?;
                    server.remove::<ConnectionIface, _>(&path).await?;
                    server.remove::<SecretsIface, _>(&path).await?;
                    Ok::<_, zbus::Error>(())
                };
                removed.await
            }
        };
        if let Err(e) = result {
            warn!("publishing {change:?} on the bus failed: {e}");
        }
    }
}

pub struct SettingsIface {
    pub daemon: Arc<Daemon>,
}

#[interface(name = "org.freedesktop.NetworkManagerSettings")]
impl SettingsIface {
    async fn list_connections(
        &self,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Vec<OwnedObjectPath>, BoxDBusError> {
        self.daemon.require_reader(bus, &hdr, "list profiles").await?;
        Ok(self.daemon.store().ids().map(object_path).collect())
    }

    /// Every visible profile with what its `GetSettings`, `Filename` and
    /// `Unsaved` say, in one answer. Not in the 0.8 interface: nm-core reads
    /// a service's profiles with it in one round trip (300 profiles took 600
    /// calls and answers before), and uses the 0.8 calls with a service
    /// that does not have it.
    async fn get_all_connections(
        &self,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Vec<ProfileEntry>, BoxDBusError> {
        self.daemon.require_reader(bus, &hdr, "read profiles").await?;
        let store = self.daemon.store();
        let mut all = Vec::new();
        for id in store.ids() {
            let Some(profile) = store.get(id) else { continue };
            match profile_settings(profile, false) {
                Ok(wire) => all.push((
                    object_path(id),
                    wire,
                    profile.path.display().to_string(),
                    profile.dir == DirKind::Runtime,
                )),
                // Its own GetSettings fails the same way; the others are fine.
                Err(e) => warn!("{}: left out of GetAllConnections: {e}", profile.path.display()),
            }
        }
        // The answer and the maps it is made of (hundreds of kB for
        // hundreds of profiles) are freed once zbus has sent it; give that
        // heap back then, as after loading the files.
        tokio::spawn(async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            nm_runtime::trim_heap();
        });
        Ok(all)
    }

    async fn add_connection(
        &self,
        connection: WireSettings,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<OwnedObjectPath, BoxDBusError> {
        self.add(connection, DirKind::Saved, bus, &hdr).await
    }

    /// NetworkManager's `LoadConnections` (`nmcli connection load FILE…`):
    /// (re)reads the named files now rather than when the directory watch
    /// sees them, so the profiles are there when the call returns. Only
    /// files in the profile directories; the others, and files that are no
    /// profile, are the failures.
    async fn load_connections(
        &self,
        filenames: Vec<String>,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(bool, Vec<String>), BoxDBusError> {
        self.daemon.require_modifier(bus, &hdr, "load profiles").await?;
        let mut failures = Vec::new();
        for name in filenames {
            let path = std::path::PathBuf::from(&name);
            let kind =
                self.daemon.scope.dirs.iter().find(|(_, dir)| path.parent() == Some(dir.as_path())).map(|(k, _)| *k);
            let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            match kind {
                Some(kind) if path.is_file() && crate::files::is_profile_name(file) => {
                    crate::watch::reload(bus, &self.daemon, kind, path.clone()).await;
                    if !self.daemon.store().has_file(&path) {
                        failures.push(name);
                    }
                }
                _ => failures.push(name),
            }
        }
        Ok((failures.is_empty(), failures))
    }

    /// An nm-rs extension of the 0.8 interface (NetworkManager 1.x has it on
    /// its own Settings): the profile lives in /run, in memory until reboot.
    async fn add_connection_unsaved(
        &self,
        connection: WireSettings,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<OwnedObjectPath, BoxDBusError> {
        self.add(connection, DirKind::Runtime, bus, &hdr).await
    }

    #[zbus(signal)]
    pub async fn new_connection(emitter: &SignalEmitter<'_>, connection: OwnedObjectPath) -> zbus::Result<()>;
}

impl SettingsIface {
    async fn add(
        &self,
        connection: WireSettings,
        dir: DirKind,
        bus: &Bus,
        hdr: &Header<'_>,
    ) -> Result<OwnedObjectPath, BoxDBusError> {
        self.daemon.require_modifier(bus, hdr, "add profiles").await?;
        let conn = connection_from_wire(&connection).map_err(fail)?;
        let uuid = conn.uuid().unwrap_or_default().to_string();
        let exists = || fail(SettingsError::UuidExists(format!("a profile with uuid {uuid} already exists")));
        // Checked before the keyring is written: its items are keyed by uuid.
        if self.daemon.store().id_of_uuid(&uuid).is_some() {
            return Err(exists());
        }
        let (conn, _) = self.daemon.stash_secrets(conn, dir).await;
        let (id, changes) = {
            let mut store = self.daemon.store();
            if store.id_of_uuid(&uuid).is_some() {
                return Err(exists());
            }
            // /run holds keyfiles only, as in NetworkManager.
            let format = if dir == DirKind::Runtime { Format::Keyfile } else { self.daemon.config.settings.format };
            let profile = self.daemon.new_file(&store, &conn, dir, format)?;
            files::save(&profile)
                .map_err(|e| fail(SettingsError::Failed(format!("writing {}: {e}", profile.path.display()))))?;
            info!(uuid = %uuid, file = %profile.path.display(), "profile added");
            let path = profile.path.clone();
            let changes = store.set_file(&path, Some(profile));
            (store.id_of_uuid(&uuid), changes)
        };
        publish(bus, &self.daemon, changes).await;
        id.map(object_path).ok_or_else(|| fail(SettingsError::Failed("the new profile is shadowed".into())))
    }
}

pub struct SystemIface {
    pub daemon: Arc<Daemon>,
}

#[interface(name = "org.freedesktop.NetworkManagerSettings.System")]
impl SystemIface {
    async fn save_hostname(
        &self,
        hostname: &str,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), BoxDBusError> {
        self.daemon.require_modifier(bus, &hdr, "set the hostname").await?;
        let path = self.daemon.hostname_path();
        // An empty name clears the static hostname, as with NetworkManager
        // (and systemd-hostnamed): the file goes.
        if hostname.is_empty() {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(fail(SettingsError::Failed(format!("removing {}: {e}", path.display())))),
            }
            info!("static hostname cleared");
            return Ok(self.hostname_changed(&emitter).await?);
        }
        if !valid_hostname(hostname) {
            return Err(fail(SettingsError::InvalidHostname(format!("'{hostname}' is not a valid hostname"))));
        }
        nm_runtime::write_atomic(&path, format!("{hostname}\n").as_bytes(), 0o644)
            .map_err(|e| fail(SettingsError::Failed(format!("writing {}: {e}", path.display()))))?;
        info!(hostname, "hostname saved");
        Ok(self.hostname_changed(&emitter).await?)
    }

    #[zbus(property)]
    fn hostname(&self) -> String {
        std::fs::read_to_string(self.daemon.hostname_path())
            .ok()
            .and_then(|t| t.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).map(String::from))
            .unwrap_or_default()
    }

    #[zbus(property)]
    fn can_modify(&self) -> bool {
        true
    }
}

/// RFC 1123 host names: labels of letters, digits and inner hyphens.
pub fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

pub struct ConnectionIface {
    pub id: u32,
    pub daemon: Arc<Daemon>,
}

impl ConnectionIface {
    fn current(&self) -> Result<FileProfile, BoxDBusError> {
        self.daemon.store().get(self.id).cloned().ok_or_else(gone)
    }
}

#[interface(name = "org.freedesktop.NetworkManagerSettings.Connection")]
impl ConnectionIface {
    async fn get_settings(
        &self,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<WireSettings, BoxDBusError> {
        self.daemon.require_reader(bus, &hdr, "read profiles").await?;
        profile_settings(&self.current()?, false)
    }

    async fn update(
        &self,
        properties: WireSettings,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), BoxDBusError> {
        self.store_update(properties, true, bus, &hdr).await
    }

    /// An nm-rs extension: the change goes to /run (in memory), shadowing
    /// the file in /etc until reboot or the next saved update.
    async fn update_unsaved(
        &self,
        properties: WireSettings,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), BoxDBusError> {
        self.store_update(properties, false, bus, &hdr).await
    }

    async fn delete(&self, #[zbus(connection)] bus: &Bus, #[zbus(header)] hdr: Header<'_>) -> Result<(), BoxDBusError> {
        self.daemon.require_modifier(bus, &hdr, "delete profiles").await?;
        let (uuid, changes) = {
            let mut store = self.daemon.store();
            let current = store.get(self.id).cloned().ok_or_else(gone)?;
            let files: Vec<FileProfile> = store.files_of(current.uuid()).into_iter().cloned().collect();
            if files.iter().any(|f| f.dir == DirKind::Vendor) {
                return Err(fail(SettingsError::ReadOnlyConnection(format!(
                    "{} is a read-only vendor profile and cannot be deleted",
                    current.path.display()
                ))));
            }
            let mut changes = Vec::new();
            for f in files {
                nm_runtime::remove_durable(&f.path)
                    .map_err(|e| fail(ConnectionError::Failed(format!("removing {}: {e}", f.path.display()))))?;
                info!(uuid = %f.uuid(), file = %f.path.display(), "profile deleted");
                changes.extend(store.set_file(&f.path, None));
            }
            (current.uuid().to_string(), changes)
        };
        self.daemon.forget_secrets(&uuid, None).await;
        publish(bus, &self.daemon, changes).await;
        Ok(())
    }

    /// The file the profile is read from. Not in the 0.8 interface: nm-core
    /// shows it as the modern `Settings.Connection.Filename` (nmcli's
    /// FILENAME, the dispatcher's CONNECTION_FILENAME). A change of file
    /// comes with `Updated`.
    #[zbus(property)]
    fn filename(&self) -> Result<String, BoxDBusError> {
        Ok(self.current()?.path.display().to_string())
    }

    /// Whether the profile lives in the runtime folder only (added or
    /// updated unsaved): the modern `Unsaved`.
    #[zbus(property)]
    fn unsaved(&self) -> Result<bool, BoxDBusError> {
        Ok(self.current()?.dir == DirKind::Runtime)
    }

    #[zbus(signal)]
    pub async fn updated(emitter: &SignalEmitter<'_>, settings: WireSettings) -> zbus::Result<()>;

    #[zbus(signal)]
    pub async fn removed(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
}

impl ConnectionIface {
    /// Writes a changed profile: to its own file, or (`to_disk` false) to
    /// /run. A saved change of a /run or read-only /usr/lib profile goes to
    /// /etc, and the in-memory copies of it go away.
    async fn store_update(
        &self,
        properties: WireSettings,
        to_disk: bool,
        bus: &Bus,
        hdr: &Header<'_>,
    ) -> Result<(), BoxDBusError> {
        self.daemon.require_modifier(bus, hdr, "change profiles").await?;
        let mut conn = {
            let dict =
                settings_from_wire(&properties).map_err(|e| fail(ConnectionError::InvalidProperty(e.to_string())))?;
            dbus_dict::from_dbus(&dict).map_err(|e| fail(ConnectionError::from(e)))?
        };
        // The stored secrets (the file's, then the keyring's) stay unless
        // the update carries new ones.
        let old = self.daemon.store().get(self.id).cloned().ok_or_else(gone)?;
        let mut old_conn = parsed(&old)?;
        let in_keyring = self.daemon.keyring_secrets(old.uuid(), "").await;
        keyring::merge(&mut old_conn, &in_keyring);
        conn.keep_secrets_from(&old_conn);
        conn.keep_unknown_from(&old_conn);
        let conn = validate::normalize_and_validate(conn).map_err(|e| fail(ConnectionError::from(e)))?;
        if conn.uuid() != Some(old.uuid()) {
            return Err(fail(ConnectionError::InvalidProperty(
                "connection.uuid: the uuid of a profile cannot change".into(),
            )));
        }
        // A saved change stays in /etc or moves there (from /run or /usr/lib);
        // an unsaved one goes to /run.
        let target = if to_disk { DirKind::Saved } else { DirKind::Runtime };
        let (file_conn, stored) = self.daemon.stash_secrets(conn.clone(), target).await;
        if let Some(stored) = stored {
            // Items no longer the service's (a setting gone, a secret now
            // not saved) go; a file that held secrets loses them below.
            let found: Vec<(String, String)> = in_keyring.into_iter().map(|e| (e.setting, e.key)).collect();
            self.daemon.forget_secrets(old.uuid(), Some(&keyring::stale(&found, &stored, &conn))).await;
        }
        let conn = file_conn;
        let changes = {
            let mut store = self.daemon.store();
            let old = store.get(self.id).cloned().ok_or_else(gone)?;
            let profile = if target == old.dir {
                old.with_connection(&conn)
            } else {
                let existing = store.files_of(old.uuid()).into_iter().find(|f| f.dir == target).cloned();
                match existing {
                    Some(f) => f.with_connection(&conn),
                    None => self.daemon.new_file(
                        &store,
                        &conn,
                        target,
                        if target == DirKind::Runtime { Format::Keyfile } else { old.format },
                    )?,
                }
            };
            files::save(&profile)
                .map_err(|e| fail(ConnectionError::Failed(format!("writing {}: {e}", profile.path.display()))))?;
            info!(uuid = %profile.uuid(), file = %profile.path.display(), "profile updated");
            let path = profile.path.clone();
            let mut changes = store.set_file(&path, Some(profile));
            if to_disk {
                let in_memory: Vec<PathBuf> = store
                    .files_of(old.uuid())
                    .into_iter()
                    .filter(|f| f.dir == DirKind::Runtime)
                    .map(|f| f.path.clone())
                    .collect();
                for p in in_memory {
                    nm_runtime::remove_durable(&p)
                        .map_err(|e| fail(ConnectionError::Failed(format!("removing {}: {e}", p.display()))))?;
                    changes.extend(store.set_file(&p, None));
                }
            }
            changes
        };
        publish(bus, &self.daemon, changes).await;
        Ok(())
    }
}

pub struct SecretsIface {
    pub id: u32,
    pub daemon: Arc<Daemon>,
}

#[interface(name = "org.freedesktop.NetworkManagerSettings.Connection.Secrets")]
impl SecretsIface {
    async fn get_secrets(
        &self,
        setting_name: &str,
        _hints: Vec<String>,
        _request_new: bool,
        #[zbus(connection)] bus: &Bus,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<WireSettings, BoxDBusError> {
        self.daemon.require_modifier(bus, &hdr, "read secrets").await?;
        let profile = self.daemon.store().get(self.id).cloned().ok_or_else(gone)?;
        let mut conn = parsed(&profile)?;
        keyring::merge(&mut conn, &self.daemon.keyring_secrets(profile.uuid(), setting_name).await);
        settings_to_wire(&conn.secrets(setting_name)).map_err(|e| fail(ConnectionError::Failed(e.to_string())))
    }
}
