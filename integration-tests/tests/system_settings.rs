//! nm-system-settings on the lab bus: the settings-service interface, the
//! files it writes and reads, its watch of the directories, and who may do
//! what. Needs root (namespaces, a private system bus, file ownership).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use nm_dbus::names::SYSTEM_SETTINGS;
use nm_dbus::settings_service::{SettingsConnectionProxy, SettingsProxy, SettingsSecretsProxy, SettingsSystemProxy};
use nm_dbus::{WireSettings, settings_from_wire, settings_to_wire};
use nm_lab::{DaemonHandle, Lab, NOBODY};
use nm_model::{Value, dbus_dict, keyfile};
use zbus::OwnedObjectPath;

const ETC: &str = "/etc/NetworkManager/system-connections";
const RUN: &str = "/run/NetworkManager/system-connections";
const USR_LIB: &str = "/usr/lib/NetworkManager/system-connections";
/// How long a signal may take: the issue asks for "within a second".
const SIGNAL_WAIT: Duration = Duration::from_secs(1);

fn keyfile_text(id: &str, uuid: &str, extra: &str) -> String {
    format!(
        "[connection]\nid={id}\nuuid={uuid}\ntype=ethernet\n{extra}\n[ethernet]\n\n[ipv4]\nmethod=auto\n\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n\n[proxy]\n"
    )
}

fn write_profile(lab: &Lab, dir: &str, name: &str, text: &str, mode: u32) -> PathBuf {
    let dir = lab.root_path(dir);
    fs::create_dir_all(&dir).expect("profile dir");
    let path = dir.join(name);
    fs::write(&path, text).expect("write profile");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod profile");
    path
}

async fn start(lab: &Lab) -> (DaemonHandle, zbus::Connection) {
    let daemon = lab.spawn_daemon("nm-system-settings", &[]).await.expect("nm-system-settings starts");
    let bus = lab.bus().await.expect("lab bus");
    (daemon, bus)
}

async fn settings(bus: &zbus::Connection) -> SettingsProxy<'static> {
    SettingsProxy::builder(bus).destination(SYSTEM_SETTINGS).build().await.expect("proxy")
}

async fn connection(bus: &zbus::Connection, path: &OwnedObjectPath) -> SettingsConnectionProxy<'static> {
    SettingsConnectionProxy::builder(bus).destination(SYSTEM_SETTINGS).path(path.clone()).build().await.expect("proxy")
}

/// Everything listed, by connection.id.
async fn list_by_id(bus: &zbus::Connection) -> HashMap<String, OwnedObjectPath> {
    let mut out = HashMap::new();
    for path in settings(bus).await.list_connections().await.expect("ListConnections") {
        let wire = connection(bus, &path).await.get_settings().await.expect("GetSettings");
        let conn = dbus_dict::from_dbus(&settings_from_wire(&wire).expect("wire")).expect("dict");
        out.insert(conn.id().expect("id").to_string(), path);
    }
    out
}

fn wire_of(text: &str) -> WireSettings {
    settings_to_wire(&dbus_dict::to_dbus(&keyfile::parse(text).expect("keyfile"), true)).expect("wire")
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

async fn next<S: futures_util::Stream + Unpin>(stream: &mut S, what: &str) -> S::Item {
    tokio::time::timeout(SIGNAL_WAIT, stream.next())
        .await
        .unwrap_or_else(|_| panic!("no {what} signal within {SIGNAL_WAIT:?}"))
        .unwrap_or_else(|| panic!("{what} stream ended"))
}

#[tokio::test]
async fn add_list_get_update_delete_with_signals() {
    let lab = Lab::builder().build().expect("lab");
    let (daemon, bus) = start(&lab).await;
    let settings = settings(&bus).await;
    let mut added = settings.receive_new_connection().await.expect("subscribe");

    let uuid = "3f0bf0a8-4c38-4fa5-9a8d-0d7f8d3b0a11";
    let text = keyfile_text("office/lan", uuid, "interface-name=eth0\n")
        .replace("[ipv4]\nmethod=auto\n", "[ipv4]\naddress1=192.0.2.5/24,192.0.2.1\ndns=192.0.2.53;\nmethod=manual\n");
    let path = settings.add_connection(wire_of(&text)).await.expect("AddConnection");
    let signal = next(&mut added, "NewConnection").await;
    assert_eq!(signal.args().expect("args").connection, path);

    // Written as a keyfile named after the id ('/' made '_'), 0600, whole.
    let file = lab.root_path(ETC).join("office_lan.nmconnection");
    assert_eq!(mode_of(&file), 0o600);
    assert_eq!(fs::metadata(&file).expect("stat").uid(), 0);
    let on_disk = keyfile::parse(&fs::read_to_string(&file).expect("read")).expect("parses");
    assert_eq!(on_disk.get_str("ipv4", "gateway"), Some("192.0.2.1"));

    assert!(list_by_id(&bus).await.contains_key("office/lan"));
    let proxy = connection(&bus, &path).await;
    let wire = proxy.get_settings().await.expect("get");
    let got = dbus_dict::from_dbus(&settings_from_wire(&wire).expect("wire")).expect("dict");
    // GetAllConnections: every profile with its settings and where it is kept, at once.
    let all = settings.get_all_connections().await.expect("GetAllConnections");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0], (path.clone(), wire, file.display().to_string(), false));
    assert_eq!(got.uuid(), Some(uuid));
    assert_eq!(got.get("ipv4", "dns"), Some(&Value::str_list(["192.0.2.53"])));

    // Update: signal carries the new settings; the same file is rewritten.
    let mut updated = proxy.receive_updated().await.expect("subscribe");
    let changed = text.replace("192.0.2.53", "192.0.2.54");
    proxy.update(wire_of(&changed)).await.expect("Update");
    let signal = next(&mut updated, "Updated").await;
    let carried = settings_from_wire(&signal.args().expect("args").settings).expect("wire");
    assert_eq!(
        dbus_dict::from_dbus(&carried).expect("dict").get("ipv4", "dns"),
        Some(&Value::str_list(["192.0.2.54"]))
    );
    assert!(fs::read_to_string(&file).expect("read").contains("dns=192.0.2.54;"));
    assert_eq!(mode_of(&file), 0o600);

    // A second profile with the same uuid is refused.
    let err = settings.add_connection(wire_of(&changed)).await.expect_err("duplicate uuid");
    assert!(err.to_string().contains("UuidExists"), "{err}");

    // Delete: Removed, the file is gone, the list no longer has it.
    let mut removed = proxy.receive_removed().await.expect("subscribe");
    proxy.delete().await.expect("Delete");
    next(&mut removed, "Removed").await;
    assert!(!file.exists());
    assert!(!list_by_id(&bus).await.contains_key("office/lan"));
    let leftovers: Vec<_> = fs::read_dir(lab.root_path(ETC)).expect("dir").collect();
    assert!(leftovers.is_empty(), "no temporary files stay behind: {leftovers:?}");
    drop(daemon);
}

#[tokio::test]
async fn invalid_dictionaries_are_refused_and_nothing_is_written() {
    let lab = Lab::builder().build().expect("lab");
    let (_daemon, bus) = start(&lab).await;
    let settings = settings(&bus).await;

    let manual_without_address = keyfile_text("bad", "0b9d1c5e-4b8f-4c57-8d7b-6b1b8f0c1e22", "")
        .replace("[ipv4]\nmethod=auto\n", "[ipv4]\nmethod=manual\n");
    let err = settings.add_connection(wire_of(&manual_without_address)).await.expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("org.freedesktop.NetworkManager.Settings.Connection.InvalidProperty"), "{text}");
    assert!(text.contains("ipv4.addresses: this property cannot be empty for 'method=manual'"), "{text}");

    // A property of the wrong D-Bus type.
    let mut wire = wire_of(&keyfile_text("typed", "6a1f7d0e-8c4b-4a3e-9e55-7f0e0b9d1c33", ""));
    let value = zbus::OwnedVariant::try_from(zbus::Variant::from("yes")).expect("variant");
    wire.get_mut("connection").expect("connection").insert("autoconnect".into(), value);
    let err = settings.add_connection(wire).await.expect_err("refused");
    assert!(err.to_string().contains("connection.autoconnect: can't set property of type 'b'"), "{err}");

    let written: Vec<_> = fs::read_dir(lab.root_path(ETC)).expect("dir").collect();
    assert!(written.is_empty(), "nothing is written for refused input: {written:?}");
    assert!(settings.list_connections().await.expect("list").is_empty());
}

#[tokio::test]
async fn bad_files_are_skipped_with_reasons_while_the_rest_load() {
    let lab = Lab::builder().build().expect("lab");
    write_profile(
        &lab,
        ETC,
        "good.nmconnection",
        &keyfile_text("good", "a3c8f6de-2b1d-4f0e-9d7c-1e2f3a4b5c66", ""),
        0o600,
    );
    write_profile(
        &lab,
        ETC,
        "open.nmconnection",
        &keyfile_text("open", "b4d9a7ef-3c2e-4a1f-8e8d-2f3a4b5c6d77", ""),
        0o644,
    );
    write_profile(&lab, ETC, "corrupt.nmconnection", "[connection]\nid=corrupt\nthis line is not a key\n", 0o600);
    write_profile(
        &lab,
        ETC,
        "good.toml",
        "[connection]\nid = \"native\"\nuuid = \"c5e0b8f0-4d3f-4b2a-9f9e-3a4b5c6d7e88\"\ntype = \"ethernet\"\n",
        0o600,
    );
    let stranger = write_profile(
        &lab,
        ETC,
        "stranger.nmconnection",
        &keyfile_text("stranger", "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e55", ""),
        0o600,
    );
    std::os::unix::fs::chown(&stranger, Some(NOBODY), Some(NOBODY)).expect("chown");
    write_profile(
        &lab,
        USR_LIB,
        "vendor.nmconnection",
        &keyfile_text("vendor", "d6f1c9a1-5e4a-4c3b-8a0f-4b5c6d7e8f99", ""),
        0o600,
    );
    let (daemon, bus) = start(&lab).await;

    let ids = list_by_id(&bus).await;
    let mut names: Vec<_> = ids.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["good", "native", "vendor"]);
    let log = daemon.log();
    assert!(log.contains("open.nmconnection: File permissions (0644) are insecure"), "{log}");
    assert!(log.contains("corrupt.nmconnection: line 3:"), "{log}");
    assert!(log.contains("stranger.nmconnection: File owner (65534) is insecure"), "{log}");
    assert_eq!(log.matches("skipping").count(), 3, "one line per bad file:\n{log}");
}

#[tokio::test]
async fn edits_by_others_arrive_as_signals_and_run_shadows_etc() {
    let lab = Lab::builder().build().expect("lab");
    let uuid = "e7a2d0b2-6f5b-4d4c-9b1a-5c6d7e8f9aaa";
    let etc_file = write_profile(&lab, ETC, "watched.nmconnection", &keyfile_text("watched", uuid, ""), 0o600);
    let (_daemon, bus) = start(&lab).await;
    let settings = settings(&bus).await;
    let path = list_by_id(&bus).await.remove("watched").expect("loaded");
    let proxy = connection(&bus, &path).await;
    let mut updated = proxy.receive_updated().await.expect("subscribe");
    let mut added = settings.receive_new_connection().await.expect("subscribe");

    // An editor rewrites the file in place.
    write_profile(&lab, ETC, "watched.nmconnection", &keyfile_text("watched-edited", uuid, ""), 0o600);
    next(&mut updated, "Updated").await;
    assert!(list_by_id(&bus).await.contains_key("watched-edited"));

    // A /run copy of the same uuid shadows /etc.
    write_profile(&lab, RUN, "watched.nmconnection", &keyfile_text("watched-run", uuid, ""), 0o600);
    next(&mut updated, "Updated").await;
    assert!(list_by_id(&bus).await.contains_key("watched-run"));

    // A new file appears.
    write_profile(
        &lab,
        ETC,
        "new.nmconnection",
        &keyfile_text("new", "f8b3e1c3-7a6c-4e5d-8c2b-6d7e8f9a0bbb", ""),
        0o600,
    );
    next(&mut added, "NewConnection").await;

    // Removing every file of the profile removes it.
    let mut removed = proxy.receive_removed().await.expect("subscribe");
    fs::remove_file(lab.root_path(RUN).join("watched.nmconnection")).expect("rm run");
    next(&mut updated, "Updated").await;
    fs::remove_file(&etc_file).expect("rm etc");
    next(&mut removed, "Removed").await;
    assert!(!list_by_id(&bus).await.contains_key("watched-edited"));
}

#[tokio::test]
async fn only_root_writes_or_reads_secrets() {
    let lab = Lab::builder().build().expect("lab");
    let uuid = "09c4f2d4-8b7d-4f6e-9d3c-7e8f9a0b1ccc";
    let wifi = format!(
        "[connection]\nid=cafe\nuuid={uuid}\ntype=wifi\n\n[wifi]\nmode=infrastructure\nssid=cafe\n\n[wifi-security]\nkey-mgmt=wpa-psk\npsk=secret123\n\n[ipv4]\nmethod=auto\n\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n\n[proxy]\n"
    );
    write_profile(&lab, ETC, "cafe.nmconnection", &wifi, 0o600);
    let (_daemon, bus) = start(&lab).await;
    let path = list_by_id(&bus).await.remove("cafe").expect("loaded");

    // GetSettings never carries secrets; GetSecrets gives root the psk.
    let wire = connection(&bus, &path).await.get_settings().await.expect("get");
    assert!(!wire["802-11-wireless-security"].contains_key("psk"));
    let secrets = SettingsSecretsProxy::builder(&bus)
        .destination(SYSTEM_SETTINGS)
        .path(path.clone())
        .build()
        .await
        .expect("proxy")
        .get_secrets("802-11-wireless-security", vec![], false)
        .await
        .expect("root reads secrets");
    let psk = settings_from_wire(&secrets).expect("wire")["802-11-wireless-security"]["psk"].clone();
    assert_eq!(psk, Value::Str("secret123".into()));

    // The same calls from an unprivileged uid.
    let busctl = |args: &[&str]| {
        let mut cmd = lab.command("busctl").uid(NOBODY).gid(NOBODY).arg("call").arg(SYSTEM_SETTINGS);
        for a in args {
            cmd = cmd.arg(*a);
        }
        cmd
    };
    let p = path.as_str();
    let secrets_iface = "org.freedesktop.NetworkManagerSettings.Connection.Secrets";
    let conn_iface = "org.freedesktop.NetworkManagerSettings.Connection";
    let calls: Vec<Vec<&str>> = vec![
        vec![p, secrets_iface, "GetSecrets", "sasb", "802-11-wireless-security", "0", "false"],
        vec![p, conn_iface, "Delete"],
        vec![p, conn_iface, "Update", "a{sa{sv}}", "1", "connection", "1", "id", "s", "hijacked"],
        vec![
            "/org/freedesktop/NetworkManagerSettings",
            "org.freedesktop.NetworkManagerSettings",
            "AddConnection",
            "a{sa{sv}}",
            "1",
            "connection",
            "3",
            "id",
            "s",
            "x",
            "uuid",
            "s",
            "1a2b3c4d-0000-4000-8000-000000000001",
            "type",
            "s",
            "802-3-ethernet",
        ],
        vec![
            "/org/freedesktop/NetworkManagerSettings",
            "org.freedesktop.NetworkManagerSettings.System",
            "SaveHostname",
            "s",
            "evil",
        ],
    ];
    for call in calls {
        let out = busctl(&call).output().await.expect("busctl runs");
        assert!(!out.success(), "{call:?} must fail for a non-root caller");
        assert!(
            out.stderr.contains("only root may") || out.stderr.contains("Access denied"),
            "{call:?}: {}",
            out.stderr
        );
    }
    // Reading is open to everybody, and nothing changed.
    let out = busctl(&[p, conn_iface, "GetSettings"]).output().await.expect("busctl runs");
    assert!(out.success(), "{}", out.stderr);
    assert!(!out.stdout.contains("secret123"));
    assert_eq!(list_by_id(&bus).await.len(), 1);
    assert!(fs::read_to_string(lab.root_path(ETC).join("cafe.nmconnection")).expect("read").contains("id=cafe\n"));
}

#[tokio::test]
async fn hostname_is_read_and_saved() {
    let lab = Lab::builder().build().expect("lab");
    fs::create_dir_all(lab.root_path("/etc")).expect("etc");
    fs::write(lab.root_path("/etc/hostname"), "# comment\nlabhost\n").expect("hostname");
    let (_daemon, bus) = start(&lab).await;
    let system = SettingsSystemProxy::builder(&bus).destination(SYSTEM_SETTINGS).build().await.expect("proxy");
    assert_eq!(system.hostname().await.expect("Hostname"), "labhost");
    assert!(system.can_modify().await.expect("CanModify"));
    system.save_hostname("new-host").await.expect("SaveHostname");
    assert_eq!(fs::read_to_string(lab.root_path("/etc/hostname")).expect("read"), "new-host\n");
    let err = system.save_hostname("bad host!").await.expect_err("refused");
    assert!(err.to_string().contains("InvalidHostname"), "{err}");
}

#[tokio::test]
async fn concurrent_readers_never_see_half_a_file() {
    let lab = Lab::builder().build().expect("lab");
    let uuid = "2b3c4d5e-1111-4222-8333-944455566677";
    let path_on_disk = write_profile(&lab, ETC, "busy.nmconnection", &keyfile_text("busy", uuid, ""), 0o600);
    let (_daemon, bus) = start(&lab).await;
    let path = list_by_id(&bus).await.remove("busy").expect("loaded");
    let proxy = connection(&bus, &path).await;

    let reader_path = path_on_disk.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let mut reads = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < deadline && reads < 2000 {
            let text = fs::read_to_string(&reader_path).expect("the file always exists");
            let conn = keyfile::parse(&text).expect("every read is a whole keyfile");
            assert_eq!(conn.uuid(), Some(uuid));
            assert!(text.ends_with("[proxy]\n"), "truncated read:\n{text}");
            reads += 1;
        }
        reads
    });
    for i in 0..40 {
        let text = keyfile_text("busy", uuid, &format!("autoconnect-priority={i}\n"));
        proxy.update(wire_of(&text)).await.expect("Update");
    }
    assert!(reader.await.expect("reader") > 0);
}

#[tokio::test]
async fn new_profiles_may_be_toml_and_profiles_keep_their_format() {
    let lab = Lab::builder().build().expect("lab");
    let config = lab.root_path("/etc/NetworkManager/nm-rs.toml");
    fs::create_dir_all(config.parent().expect("dir")).expect("config dir");
    fs::write(&config, "[settings]\nformat = \"toml\"\n").expect("config");
    let kept = write_profile(
        &lab,
        ETC,
        "kept.nmconnection",
        &keyfile_text("kept", "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a88", ""),
        0o600,
    );
    let (_daemon, bus) = start(&lab).await;
    let settings = settings(&bus).await;

    let text = keyfile_text("native", "6f7a8b9c-0d1e-4f2a-9b3c-4d5e6f7a8b99", "");
    settings.add_connection(wire_of(&text)).await.expect("AddConnection");
    let toml_file = lab.root_path(ETC).join("native.toml");
    let written = fs::read_to_string(&toml_file).expect("a TOML file");
    assert!(written.contains("id = \"native\""), "{written}");
    assert_eq!(mode_of(&toml_file), 0o600);

    // The keyfile profile stays a keyfile when updated.
    let path = list_by_id(&bus).await.remove("kept").expect("loaded");
    let changed = keyfile_text("kept", "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a88", "autoconnect=false\n");
    connection(&bus, &path).await.update(wire_of(&changed)).await.expect("Update");
    assert!(fs::read_to_string(&kept).expect("read").contains("autoconnect=false\n"));
}
