//! nm-user-settings on the lab bus, run as `nobody` with its own home: the
//! user's calls (busctl as that uid), the files in the user's folder, what
//! root (nm-core's uid) and another uid may do, who may own the name, and
//! that secrets stay out of GetSettings and the log. Needs root.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use nm_dbus::names::USER_SETTINGS;
use nm_dbus::settings_from_wire;
use nm_dbus::settings_service::{SettingsConnectionProxy, SettingsProxy, SettingsSecretsProxy, SettingsSystemProxy};
use nm_lab::{DaemonHandle, Lab, LabError, NOBODY, Output};
use nm_model::{Value, dbus_dict};
use zbus::OwnedObjectPath;

const FAKE_DAEMON: &str = env!("CARGO_BIN_EXE_nm-lab-fake-daemon");
const SETTINGS_PATH: &str = "/org/freedesktop/NetworkManagerSettings";
const SETTINGS_IFACE: &str = "org.freedesktop.NetworkManagerSettings";
const CONN_IFACE: &str = "org.freedesktop.NetworkManagerSettings.Connection";
const SECRETS_IFACE: &str = "org.freedesktop.NetworkManagerSettings.Connection.Secrets";
/// uid 1 (`daemon`): some other local account.
const OTHER_UID: u32 = 1;
const HOME: &str = "/home/nobody";
const RUNTIME: &str = "/run/user/65534";
/// The user's profile folder as the daemon sees it (HOME, no XDG_CONFIG_HOME).
const USER_DIR: &str = "/home/nobody/.config/nm-rs/connections";
const SECRET: &str = "user-secret-4711";
const SIGNAL_WAIT: Duration = Duration::from_secs(1);

/// A folder of the lab root owned by nobody, 0700, as a home or a runtime dir.
fn nobodys_dir(lab: &Lab, path: &str) -> PathBuf {
    let dir = lab.root_path(path);
    fs::create_dir_all(&dir).expect("mkdir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).expect("chown");
    dir
}

/// nm-user-settings as nobody, with `env` (HOME, XDG_…) and a fresh home.
async fn start(lab: &Lab, env: &[(&str, &str)]) -> DaemonHandle {
    nobodys_dir(lab, HOME);
    nobodys_dir(lab, RUNTIME);
    let mut spec = lab.daemon("nm-user-settings").uid(NOBODY);
    for (k, v) in env {
        spec = spec.env(k, v);
    }
    spec.spawn().await.expect("nm-user-settings starts as nobody")
}

/// One D-Bus value in busctl's argument syntax.
enum V<'a> {
    S(&'a str),
    Ay(&'a [u8]),
}

/// busctl arguments of an `a{sa{sv}}`.
fn dict(settings: &[(&str, &[(&str, V)])]) -> Vec<String> {
    let mut out = vec!["a{sa{sv}}".to_string(), settings.len().to_string()];
    for (name, props) in settings {
        out.push(name.to_string());
        out.push(props.len().to_string());
        for (key, value) in props.iter() {
            out.push(key.to_string());
            match value {
                V::S(s) => out.extend(["s".to_string(), s.to_string()]),
                V::Ay(bytes) => {
                    out.extend(["ay".to_string(), bytes.len().to_string()]);
                    out.extend(bytes.iter().map(u8::to_string));
                }
            }
        }
    }
    out
}

fn wifi(id: &str, uuid: &str) -> Vec<String> {
    dict(&[
        ("connection", &[("id", V::S(id)), ("uuid", V::S(uuid)), ("type", V::S("802-11-wireless"))]),
        ("802-11-wireless", &[("ssid", V::Ay(b"cafe")), ("mode", V::S("infrastructure"))]),
        ("802-11-wireless-security", &[("key-mgmt", V::S("wpa-psk")), ("psk", V::S(SECRET))]),
    ])
}

fn ethernet(id: &str, uuid: &str) -> Vec<String> {
    dict(&[("connection", &[("id", V::S(id)), ("uuid", V::S(uuid)), ("type", V::S("802-3-ethernet"))])])
}

/// `busctl call org.freedesktop.NetworkManagerUserSettings <args>` as `uid`.
async fn call(lab: &Lab, uid: u32, path: &str, iface: &str, method: &str, args: &[String]) -> Output {
    lab.command("busctl")
        .uid(uid)
        .args(["call", USER_SETTINGS, path, iface, method])
        .args(args)
        .output()
        .await
        .expect("busctl runs")
}

/// The object path a successful `AddConnection` printed (`o "/…/N"`).
fn path_of(out: &Output) -> OwnedObjectPath {
    assert!(out.success(), "{}", out.stderr);
    let quoted = out.stdout.trim().strip_prefix("o ").expect("an object path");
    OwnedObjectPath::try_from(quoted.trim_matches('"').to_string()).expect("valid path")
}

/// busctl shows org.freedesktop.DBus.Error.AccessDenied as "Access denied"
/// (the errno's text), not the daemon's message; the daemon's log has it.
fn refused(out: &Output, what: &str) {
    assert!(!out.success(), "{what} must be refused");
    assert!(out.stderr.contains("Access denied"), "{what}: {}", out.stderr);
}

async fn user_settings(bus: &zbus::Connection) -> SettingsProxy<'static> {
    SettingsProxy::builder(bus).destination(USER_SETTINGS).build().await.expect("proxy")
}

async fn connection(bus: &zbus::Connection, path: &OwnedObjectPath) -> SettingsConnectionProxy<'static> {
    SettingsConnectionProxy::builder(bus).destination(USER_SETTINGS).path(path.clone()).build().await.expect("proxy")
}

async fn secrets(bus: &zbus::Connection, path: &OwnedObjectPath) -> SettingsSecretsProxy<'static> {
    SettingsSecretsProxy::builder(bus).destination(USER_SETTINGS).path(path.clone()).build().await.expect("proxy")
}

fn mode_and_owner(path: &Path) -> (u32, u32) {
    let meta = fs::metadata(path).expect("stat");
    (meta.permissions().mode() & 0o777, meta.uid())
}

async fn next<S: futures_util::Stream + Unpin>(stream: &mut S, what: &str) -> S::Item {
    tokio::time::timeout(SIGNAL_WAIT, stream.next())
        .await
        .unwrap_or_else(|_| panic!("no {what} signal within {SIGNAL_WAIT:?}"))
        .unwrap_or_else(|| panic!("{what} stream ended"))
}

#[tokio::test]
async fn the_user_keeps_private_profiles_that_root_reads_and_others_cannot_touch() {
    let lab = Lab::builder().uplinks(0).build().expect("lab");
    let daemon = start(&lab, &[("HOME", HOME), ("XDG_RUNTIME_DIR", RUNTIME)]).await;
    let bus = lab.bus().await.expect("lab bus");
    let settings = user_settings(&bus).await;
    let mut added = settings.receive_new_connection().await.expect("subscribe");

    // The user adds a wifi profile with its psk (flags 0: the service keeps it).
    let uuid = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6";
    let out = call(&lab, NOBODY, SETTINGS_PATH, SETTINGS_IFACE, "AddConnection", &wifi("cafe", uuid)).await;
    let path = path_of(&out);
    assert_eq!(next(&mut added, "NewConnection").await.args().expect("args").connection, path);

    // In the user's folder (0700), 0600, owned by the user, with the secret.
    let folder = lab.root_path(USER_DIR);
    assert_eq!(mode_and_owner(&folder), (0o700, NOBODY));
    let file = folder.join("cafe.nmconnection");
    assert_eq!(mode_and_owner(&file), (0o600, NOBODY));
    assert!(fs::read_to_string(&file).expect("read").contains(&format!("psk={SECRET}")));

    // Root (nm-core) lists it and reads it without secrets, then asks for them.
    assert_eq!(settings.list_connections().await.expect("list"), vec![path.clone()]);
    let wire = connection(&bus, &path).await.get_settings().await.expect("GetSettings");
    assert!(!wire["802-11-wireless-security"].contains_key("psk"), "GetSettings carries no secret");
    let got = dbus_dict::from_dbus(&settings_from_wire(&wire).expect("wire")).expect("dict");
    assert_eq!(got.uuid(), Some(uuid));
    let wire = secrets(&bus, &path).await.get_secrets("802-11-wireless-security", vec![], false).await.expect("root");
    let psk = settings_from_wire(&wire).expect("wire")["802-11-wireless-security"]["psk"].clone();
    assert_eq!(psk, Value::Str(SECRET.into()));

    // The user reads its own secrets; GetSettings as the user has none either.
    let p = path.as_str();
    let secret_args = ["sasb", "802-11-wireless-security", "0", "false"].map(String::from);
    let out = call(&lab, NOBODY, p, SECRETS_IFACE, "GetSecrets", &secret_args).await;
    assert!(out.success() && out.stdout.contains(SECRET), "{}{}", out.stdout, out.stderr);
    let out = call(&lab, NOBODY, p, CONN_IFACE, "GetSettings", &[]).await;
    assert!(out.success() && !out.stdout.contains(SECRET), "{}{}", out.stdout, out.stderr);

    // The user updates it; root hears Updated (without the secret); the psk
    // given before is kept when an update does not carry it.
    let proxy = connection(&bus, &path).await;
    let mut updated = proxy.receive_updated().await.expect("subscribe");
    let renamed = dict(&[
        ("connection", &[("id", V::S("cafe-2")), ("uuid", V::S(uuid)), ("type", V::S("802-11-wireless"))]),
        ("802-11-wireless", &[("ssid", V::Ay(b"cafe")), ("mode", V::S("infrastructure"))]),
        ("802-11-wireless-security", &[("key-mgmt", V::S("wpa-psk"))]),
    ]);
    let out = call(&lab, NOBODY, p, CONN_IFACE, "Update", &renamed).await;
    assert!(out.success(), "{}", out.stderr);
    let signal = next(&mut updated, "Updated").await;
    let carried = settings_from_wire(&signal.args().expect("args").settings).expect("wire");
    assert!(!carried["802-11-wireless-security"].contains_key("psk"));
    assert_eq!(dbus_dict::from_dbus(&carried).expect("dict").id(), Some("cafe-2"));
    let text = fs::read_to_string(&file).expect("read");
    assert!(text.contains("id=cafe-2\n") && text.contains(&format!("psk={SECRET}")), "{text}");
    assert_eq!(mode_and_owner(&file), (0o600, NOBODY));

    // Another local user may neither read nor write nor get secrets.
    let other_uuid = "8e2f3a4b-5c6d-4e7f-9081-92a3b4c5d6e7";
    refused(&call(&lab, OTHER_UID, p, SECRETS_IFACE, "GetSecrets", &secret_args).await, "GetSecrets");
    refused(&call(&lab, OTHER_UID, p, CONN_IFACE, "Update", &ethernet("hijacked", uuid)).await, "Update");
    refused(&call(&lab, OTHER_UID, p, CONN_IFACE, "Delete", &[]).await, "Delete");
    let add = ethernet("planted", other_uuid);
    refused(&call(&lab, OTHER_UID, SETTINGS_PATH, SETTINGS_IFACE, "AddConnection", &add).await, "AddConnection");
    refused(&call(&lab, OTHER_UID, p, CONN_IFACE, "GetSettings", &[]).await, "GetSettings");
    refused(&call(&lab, OTHER_UID, SETTINGS_PATH, SETTINGS_IFACE, "ListConnections", &[]).await, "ListConnections");
    assert_eq!(settings.list_connections().await.expect("list").len(), 1);

    // The user service has no hostname interface.
    let system = SettingsSystemProxy::builder(&bus).destination(USER_SETTINGS).build().await.expect("proxy");
    assert!(system.hostname().await.is_err(), "the user service serves no Hostname");

    // Unsaved profiles go to the runtime folder.
    let out = call(&lab, NOBODY, SETTINGS_PATH, SETTINGS_IFACE, "AddConnectionUnsaved", &add).await;
    let unsaved = path_of(&out);
    let runtime_file = lab.root_path(RUNTIME).join("nm-rs/connections/planted.nmconnection");
    assert_eq!(mode_and_owner(&runtime_file), (0o600, NOBODY));
    assert!(!folder.join("planted.nmconnection").exists());

    // The user deletes both; the files go, Removed is heard.
    let mut removed = proxy.receive_removed().await.expect("subscribe");
    let out = call(&lab, NOBODY, p, CONN_IFACE, "Delete", &[]).await;
    assert!(out.success(), "{}", out.stderr);
    next(&mut removed, "Removed").await;
    assert!(!file.exists());
    let out = call(&lab, NOBODY, unsaved.as_str(), CONN_IFACE, "Delete", &[]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(!runtime_file.exists());
    assert!(settings.list_connections().await.expect("list").is_empty());

    // Root may change the user's profiles too (nm-core forwards the user's edits).
    let add = ethernet("by-root", "9f3a4b5c-6d7e-4f80-a192-a3b4c5d6e7f8");
    path_of(&call(&lab, 0, SETTINGS_PATH, SETTINGS_IFACE, "AddConnection", &add).await);
    // Written by the service: still the user's file.
    assert_eq!(mode_and_owner(&folder.join("by-root.nmconnection")), (0o600, NOBODY));

    let log = daemon.log();
    assert!(log.contains("ready on the bus as org.freedesktop.NetworkManagerUserSettings"), "{log}");
    let refusals = log.lines().filter(|l| l.contains("refused") && l.contains("uid=1")).count();
    assert_eq!(refusals, 6, "the six refusals of uid 1 are logged:\n{log}");
    assert!(log.contains("refused: read secrets is for uid 65534 (the owner of these profiles) and root only"));
    assert!(!log.contains(SECRET), "the secret leaked into the log:\n{log}");
}

#[tokio::test]
async fn only_the_users_own_files_load_and_unsaved_needs_a_runtime_dir() {
    let lab = Lab::builder().uplinks(0).build().expect("lab");
    // XDG_CONFIG_HOME instead of HOME; no XDG_RUNTIME_DIR.
    let config_home = "/home/nobody/cfg";
    let folder = lab.root_path(config_home).join("nm-rs/connections");
    let put = |name: &str, id: &str, uuid: &str, mode: u32, owner: u32| {
        fs::create_dir_all(&folder).expect("mkdir");
        let file = folder.join(name);
        let text = format!("[connection]\nid={id}\nuuid={uuid}\ntype=ethernet\n\n[ipv4]\nmethod=auto\n");
        fs::write(&file, text).expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).expect("chmod");
        std::os::unix::fs::chown(&file, Some(owner), Some(owner)).expect("chown");
    };
    put("mine.nmconnection", "mine", "0a1b2c3d-1111-4222-8333-444455556666", 0o600, NOBODY);
    put("roots.nmconnection", "roots", "0a1b2c3d-2222-4222-8333-444455556666", 0o600, 0);
    put("others.nmconnection", "others", "0a1b2c3d-3333-4222-8333-444455556666", 0o600, OTHER_UID);
    put("open.nmconnection", "open", "0a1b2c3d-4444-4222-8333-444455556666", 0o644, NOBODY);
    for dir in ["/home/nobody/cfg", "/home/nobody/cfg/nm-rs", "/home/nobody/cfg/nm-rs/connections"] {
        std::os::unix::fs::chown(lab.root_path(dir), Some(NOBODY), Some(NOBODY)).expect("chown");
    }
    let daemon = start(&lab, &[("HOME", "/nonexistent"), ("XDG_CONFIG_HOME", config_home)]).await;
    let bus = lab.bus().await.expect("lab bus");
    let settings = user_settings(&bus).await;

    let listed = settings.list_connections().await.expect("list");
    assert_eq!(listed.len(), 1, "only the user's own 0600 file loads");
    let got = connection(&bus, &listed[0]).await.get_settings().await.expect("get");
    assert_eq!(dbus_dict::from_dbus(&settings_from_wire(&got).expect("wire")).expect("dict").id(), Some("mine"));
    let log = daemon.log();
    assert!(log.contains("roots.nmconnection: File owner (0) is insecure"), "{log}");
    assert!(log.contains("others.nmconnection: File owner (1) is insecure"), "{log}");
    assert!(log.contains("open.nmconnection: File permissions (0644) are insecure"), "{log}");

    // A file the user drops in later is picked up.
    let mut added = settings.receive_new_connection().await.expect("subscribe");
    put("later.nmconnection", "later", "0a1b2c3d-5555-4222-8333-444455556666", 0o600, NOBODY);
    next(&mut added, "NewConnection").await;

    // Without XDG_RUNTIME_DIR there is nowhere for unsaved profiles.
    let add = ethernet("temp", "0a1b2c3d-6666-4222-8333-444455556666");
    let out = call(&lab, NOBODY, SETTINGS_PATH, SETTINGS_IFACE, "AddConnectionUnsaved", &add).await;
    assert!(!out.success());
    assert!(out.stderr.contains("XDG_RUNTIME_DIR"), "{}", out.stderr);
}

#[tokio::test]
async fn the_name_is_owned_only_as_the_policy_allows_and_never_by_root_by_accident() {
    let lab = Lab::builder().uplinks(0).build().expect("lab");
    // Another uid, neither at a console nor in netdev: the bus refuses it.
    let err = lab
        .daemon("nm-lab-fake-daemon")
        .program(FAKE_DAEMON)
        .args(["--name", USER_SETTINGS])
        .bus_name(USER_SETTINGS)
        .uid(OTHER_UID)
        .spawn()
        .await
        .expect_err("uid 1 must not own the user settings name");
    match &err {
        LabError::Exited { log_tail, .. } => assert!(log_tail.contains("AccessDenied"), "{log_tail}"),
        other => panic!("expected Exited, got {other}"),
    }

    // The service itself will not run as root unless told to.
    let err =
        lab.daemon("nm-user-settings").env("HOME", HOME).spawn().await.expect_err("nm-user-settings refuses root");
    match &err {
        // The whole log: with RUST_BACKTRACE set, a backtrace follows the message.
        LabError::Exited { log, .. } => {
            let log = fs::read_to_string(log).expect("the daemon's log");
            assert!(log.contains("runs as that user") && log.contains("--allow-root"), "{log}");
        }
        other => panic!("expected Exited, got {other}"),
    }

    // nobody may (the lab policy), and then owns it alone.
    let _daemon = start(&lab, &[("HOME", HOME)]).await;
    let dbus = zbus::fdo::DBusProxy::new(&lab.bus().await.expect("bus")).await.expect("proxy");
    let owner = dbus.get_connection_unix_user(USER_SETTINGS.try_into().expect("name")).await.expect("owner uid");
    assert_eq!(owner, NOBODY);
}

/// The Secret Service as the test sees it (root on the user's session bus).
struct Keyring {
    bus: zbus::Connection,
    session: OwnedObjectPath,
}

const SECRETS: &str = "org.freedesktop.secrets";

impl Keyring {
    async fn open(session_bus: &nm_lab::SessionBus) -> Keyring {
        let bus = session_bus.connect().await.expect("session bus");
        let reply = bus
            .call_method(
                Some(SECRETS),
                "/org/freedesktop/secrets",
                Some("org.freedesktop.Secret.Service"),
                "OpenSession",
                &("plain", zbus::Variant::from("")),
            )
            .await
            .expect("OpenSession");
        let (_, session): (zbus::OwnedVariant, OwnedObjectPath) = reply.body().deserialize().expect("reply");
        Keyring { bus, session }
    }

    /// The items of a profile (unlocked ones: the login keyring is).
    async fn items(&self, uuid: &str) -> Vec<OwnedObjectPath> {
        let query = std::collections::HashMap::from([("connection-uuid", uuid)]);
        let reply = self
            .bus
            .call_method(
                Some(SECRETS),
                "/org/freedesktop/secrets",
                Some("org.freedesktop.Secret.Service"),
                "SearchItems",
                &(query,),
            )
            .await
            .expect("SearchItems");
        let (unlocked, locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) =
            reply.body().deserialize().expect("reply");
        assert!(locked.is_empty(), "the login keyring is unlocked");
        unlocked
    }

    async fn property<T: TryFrom<zbus::OwnedVariant>>(&self, item: &OwnedObjectPath, name: &str) -> T {
        let props = zbus::fdo::PropertiesProxy::builder(&self.bus)
            .destination(SECRETS)
            .path(item.clone())
            .build()
            .await
            .expect("proxy");
        let iface = zbus::names::InterfaceName::try_from("org.freedesktop.Secret.Item").expect("name");
        let value = props.get(iface, name).await.expect("Get");
        T::try_from(value).unwrap_or_else(|_| panic!("{name} has another type"))
    }

    async fn secret(&self, item: &OwnedObjectPath) -> String {
        let reply = self
            .bus
            .call_method(Some(SECRETS), item, Some("org.freedesktop.Secret.Item"), "GetSecret", &(&self.session,))
            .await
            .expect("GetSecret");
        let ((_, _, value, _),): ((OwnedObjectPath, Vec<u8>, Vec<u8>, String),) =
            reply.body().deserialize().expect("reply");
        String::from_utf8(value).expect("text")
    }
}

async fn get_secret(bus: &zbus::Connection, path: &OwnedObjectPath, setting: &str) -> Option<Value> {
    let wire = secrets(bus, path).await.get_secrets(setting, vec![], false).await.expect("GetSecrets");
    settings_from_wire(&wire).expect("wire").get(setting).and_then(|s| s.get("psk")).cloned()
}

#[tokio::test]
async fn with_a_secret_service_the_users_secrets_live_in_the_keyring() {
    let lab = Lab::builder().uplinks(0).build().expect("lab");
    let home = nobodys_dir(&lab, HOME);
    let session_bus = lab.session_bus_for(NOBODY).expect("nobody's session bus");
    let secret_service = session_bus.secret_service(&home).await.expect("gnome-keyring runs as nobody");
    let daemon = start(
        &lab,
        &[("HOME", HOME), ("XDG_RUNTIME_DIR", RUNTIME), ("DBUS_SESSION_BUS_ADDRESS", session_bus.address())],
    )
    .await;
    let bus = lab.bus().await.expect("lab bus");
    let keyring = Keyring::open(&session_bus).await;
    let wsec = "802-11-wireless-security";

    // The user adds a wifi profile; the psk (flags 0) goes to the keyring.
    let uuid = "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f";
    let out = call(&lab, NOBODY, SETTINGS_PATH, SETTINGS_IFACE, "AddConnection", &wifi("cafe", uuid)).await;
    let path = path_of(&out);
    let file = lab.root_path(USER_DIR).join("cafe.nmconnection");
    let text = fs::read_to_string(&file).expect("read");
    assert!(!text.contains(SECRET) && !text.contains("psk="), "the file holds no secret:\n{text}");
    assert!(text.contains("key-mgmt=wpa-psk"), "{text}");
    let items = keyring.items(uuid).await;
    assert_eq!(items.len(), 1, "one item for the psk");
    let attrs: std::collections::HashMap<String, String> = keyring.property(&items[0], "Attributes").await;
    assert_eq!(attrs.get("xdg:schema").map(String::as_str), Some("org.freedesktop.NetworkManager.Connection"));
    assert_eq!(attrs.get("connection-uuid").map(String::as_str), Some(uuid));
    assert_eq!(attrs.get("setting-name").map(String::as_str), Some(wsec));
    assert_eq!(attrs.get("setting-key").map(String::as_str), Some("psk"));
    let label: String = keyring.property(&items[0], "Label").await;
    assert_eq!(label, format!("Network secret for cafe/{wsec}/psk"));
    assert_eq!(keyring.secret(&items[0]).await, SECRET);

    // GetSecrets answers from the keyring; GetSettings carries no secret.
    assert_eq!(get_secret(&bus, &path, wsec).await, Some(Value::Str(SECRET.into())));
    let wire = connection(&bus, &path).await.get_settings().await.expect("GetSettings");
    assert!(!wire[wsec].contains_key("psk"));

    // An update without the psk keeps it; the item is replaced, not doubled.
    let renamed = dict(&[
        ("connection", &[("id", V::S("cafe-2")), ("uuid", V::S(uuid)), ("type", V::S("802-11-wireless"))]),
        ("802-11-wireless", &[("ssid", V::Ay(b"cafe")), ("mode", V::S("infrastructure"))]),
        (wsec, &[("key-mgmt", V::S("wpa-psk"))]),
    ]);
    let out = call(&lab, NOBODY, path.as_str(), CONN_IFACE, "Update", &renamed).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(!fs::read_to_string(&file).expect("read").contains(SECRET));
    let items = keyring.items(uuid).await;
    assert_eq!(items.len(), 1);
    let label: String = keyring.property(&items[0], "Label").await;
    assert_eq!(label, format!("Network secret for cafe-2/{wsec}/psk"));
    assert_eq!(get_secret(&bus, &path, wsec).await, Some(Value::Str(SECRET.into())));

    // A file written before the keyring ran keeps its secret until the next
    // write, which moves it to the keyring.
    let old_uuid = "6d7e8f9a-0b1c-4d2e-8f3a-4b5c6d7e8f9a";
    let old_secret = "written-before-4712";
    let mut added = user_settings(&bus).await.receive_new_connection().await.expect("subscribe");
    let old_file = lab.root_path(USER_DIR).join("old.nmconnection");
    let old_text = format!(
        "[connection]\nid=old\nuuid={old_uuid}\ntype=wifi\n\n[wifi]\nssid=old\n\n[wifi-security]\nkey-mgmt=wpa-psk\npsk={old_secret}\n"
    );
    fs::write(&old_file, old_text).expect("write");
    fs::set_permissions(&old_file, fs::Permissions::from_mode(0o600)).expect("chmod");
    std::os::unix::fs::chown(&old_file, Some(NOBODY), Some(NOBODY)).expect("chown");
    let old_path = next(&mut added, "NewConnection").await.args().expect("args").connection;
    assert!(keyring.items(old_uuid).await.is_empty(), "loading does not move secrets");
    assert_eq!(get_secret(&bus, &old_path, wsec).await, Some(Value::Str(old_secret.into())));
    let update = dict(&[
        ("connection", &[("id", V::S("old")), ("uuid", V::S(old_uuid)), ("type", V::S("802-11-wireless"))]),
        ("802-11-wireless", &[("ssid", V::Ay(b"old")), ("mode", V::S("infrastructure"))]),
        (wsec, &[("key-mgmt", V::S("wpa-psk"))]),
    ]);
    let out = call(&lab, NOBODY, old_path.as_str(), CONN_IFACE, "Update", &update).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(!fs::read_to_string(&old_file).expect("read").contains(old_secret), "moved out of the file");
    let items = keyring.items(old_uuid).await;
    assert_eq!(items.len(), 1);
    assert_eq!(keyring.secret(&items[0]).await, old_secret);
    assert_eq!(get_secret(&bus, &old_path, wsec).await, Some(Value::Str(old_secret.into())));

    // Delete takes the items with the profile.
    for (p, u) in [(&path, uuid), (&old_path, old_uuid)] {
        let out = call(&lab, NOBODY, p.as_str(), CONN_IFACE, "Delete", &[]).await;
        assert!(out.success(), "{}", out.stderr);
        assert!(keyring.items(u).await.is_empty(), "the items of {u} are gone");
    }

    // Without the Secret Service, secrets go to the file again (one warning).
    let dbus = zbus::fdo::DBusProxy::new(&keyring.bus).await.expect("proxy");
    let mut owners = dbus.receive_name_owner_changed_with_args(&[(0, SECRETS)]).await.expect("subscribe");
    drop(secret_service);
    loop {
        let signal = next(&mut owners, "NameOwnerChanged").await;
        if signal.args().expect("args").new_owner().is_none() {
            break;
        }
    }
    let plain_uuid = "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b";
    let out = call(&lab, NOBODY, SETTINGS_PATH, SETTINGS_IFACE, "AddConnection", &wifi("plain", plain_uuid)).await;
    let plain = path_of(&out);
    let plain_file = lab.root_path(USER_DIR).join("plain.nmconnection");
    assert!(fs::read_to_string(&plain_file).expect("read").contains(&format!("psk={SECRET}")));
    assert_eq!(mode_and_owner(&plain_file), (0o600, NOBODY));
    assert_eq!(get_secret(&bus, &plain, wsec).await, Some(Value::Str(SECRET.into())));

    let log = daemon.log();
    assert!(log.contains("secrets stored in the user's keyring"), "{log}");
    assert!(log.contains("secrets deleted from the user's keyring"), "{log}");
    assert_eq!(log.matches("the profile's secrets stay in its 0600 file").count(), 1, "{log}");
    assert!(!log.contains(SECRET) && !log.contains(old_secret), "a secret leaked into the log:\n{log}");
}
