//! The lab kit against the real kernel, dbus-daemon and dnsmasq (needs root).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;

use nm_lab::{Lab, LabError, NOBODY, pid_running};
use zbus::fdo::DBusProxy;

const SETTINGS_NAME: &str = "org.freedesktop.NetworkManagerSystemSettings";
const FAKE_DAEMON: &str = env!("CARGO_BIN_EXE_nm-lab-fake-daemon");

fn ip(args: &[&str]) -> String {
    let out = std::process::Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 from ip")
}

fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// What a lab leaves behind to check after it is gone.
struct Traces {
    namespaces: Vec<String>,
    pids: Vec<u32>,
    dir: PathBuf,
    base: String,
}

fn traces(lab: &Lab) -> Traces {
    let mut namespaces = vec![lab.client_netns().to_owned()];
    namespaces.extend(lab.server_netns().map(str::to_owned));
    Traces {
        namespaces,
        pids: lab.bus_pid().into_iter().chain(lab.dnsmasq_pid()).collect(),
        dir: lab.dir().to_owned(),
        base: lab.names().base(),
    }
}

fn assert_gone(t: &Traces) {
    for ns in &t.namespaces {
        assert!(!netns_path(ns).exists(), "namespace {ns} still exists");
    }
    assert!(!ip(&["netns", "list"]).contains(&t.base), "a lab namespace is still listed");
    for pid in &t.pids {
        assert!(!pid_running(*pid), "PID {pid} still runs");
    }
}

#[tokio::test]
async fn two_uplinks_with_dnsmasq_come_up_and_go_away() {
    let mut lab = Lab::builder().uplinks(2).build().expect("lab");
    let cli = lab.client_netns().to_owned();
    let srv = lab.server_netns().expect("server namespace").to_owned();
    assert!(netns_path(&cli).exists() && netns_path(&srv).exists());

    // Client side: both veth ends exist, down, waiting for a daemon.
    let links = ip(&["-n", &cli, "-o", "link", "show"]);
    for up in lab.uplinks() {
        let line = links
            .lines()
            .find(|l| l.contains(&format!(" {}@", up.client_if)))
            .unwrap_or_else(|| panic!("{} missing in:\n{links}", up.client_if));
        assert!(line.contains("state DOWN"), "{line}");
        assert!(line.contains(&format!("link-netns {srv}")), "{line}");
    }
    // Server side: up, with the addresses dnsmasq serves from.
    for up in lab.uplinks() {
        let addrs = ip(&["-n", &srv, "-o", "addr", "show", "dev", &up.server_if]);
        assert!(addrs.contains(&format!("inet {}/24", up.server_v4)), "{addrs}");
        assert!(addrs.contains(&format!("inet6 {}/64", up.server_v6)), "{addrs}");
        assert!(addrs.contains("inet6 fe80::1/64"), "{addrs}");
    }
    // Nothing of the lab in the root namespace.
    assert!(!ip(&["-o", "link", "show"]).contains(&lab.names().base()));

    // dnsmasq runs in the server namespace and listens for DHCPv4, DHCPv6, DNS.
    assert!(lab.dnsmasq_running());
    let sockets = lab.command("ss").args(["-H", "-u", "-l", "-n", "-p"]).in_server_netns().checked().await.expect("ss");
    for port in [":67 ", ":547 ", ":53 "] {
        assert!(sockets.stdout.contains(port), "no {port} in:\n{}", sockets.stdout);
    }
    assert!(sockets.stdout.contains("dnsmasq"), "{}", sockets.stdout);
    let log = std::fs::read_to_string(lab.dnsmasq_log().expect("log")).expect("dnsmasq log");
    assert!(log.contains("DHCP, IP range 198.18.1.100 -- 198.18.1.199"), "{log}");

    // The bus answers, from inside the client namespace too.
    let conn = lab.bus().await.expect("bus");
    let names = DBusProxy::new(&conn).await.expect("proxy").list_names().await.expect("names");
    assert!(names.iter().any(|n| n.as_str() == "org.freedesktop.DBus"));
    let busctl = lab.command("dbus-send").args([
        "--system",
        "--print-reply",
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ListNames",
    ]);
    let out = busctl.checked().await.expect("dbus-send in the client namespace");
    assert!(out.stdout.contains("org.freedesktop.DBus"), "{}", out.stdout);

    // A process left running in the lab does not outlive it.
    let stray = lab
        .command("sh")
        .args(["-c", "sleep 300 >/dev/null 2>&1 & echo $!"])
        .checked()
        .await
        .expect("start a stray process");
    let stray: u32 = stray.stdout.trim().parse().expect("pid");
    assert!(pid_running(stray));

    // The lab root mirrors the host.
    assert!(lab.root_path("/etc/NetworkManager/system-connections").is_dir());

    let mut t = traces(&lab);
    t.pids.push(stray);
    drop(conn);
    drop(lab);
    assert_gone(&t);
    assert!(!t.dir.exists(), "{} still exists", t.dir.display());
}

#[test]
fn teardown_happens_after_a_panic_too() {
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::builder().uplinks(1).build().expect("lab");
        seen = Some(traces(&lab));
        panic!("a test failing with a lab up");
    }));
    assert!(result.is_err());
    let t = seen.expect("the lab came up");
    assert_gone(&t);
    // After a panic the temp dir is kept for inspection; this test cleans it.
    std::fs::remove_dir_all(&t.dir).expect("remove kept lab dir");
}

#[tokio::test]
async fn launcher_waits_for_the_name_and_stops_on_sigterm() {
    let lab = Lab::builder().uplinks(0).build().expect("lab");
    assert!(lab.server_netns().is_none() && lab.dnsmasq_pid().is_none());

    let mut daemon = lab
        .daemon("nm-lab-fake-daemon")
        .program(FAKE_DAEMON)
        .bus_name(SETTINGS_NAME)
        .spawn()
        .await
        .expect("fake daemon owns the name");

    // It is the owner, and it runs in the client namespace with --root.
    let conn = lab.bus().await.expect("bus");
    let dbus = DBusProxy::new(&conn).await.expect("proxy");
    let owner = dbus.get_connection_unix_process_id(SETTINGS_NAME.try_into().expect("name")).await.expect("owner pid");
    assert_eq!(owner, daemon.pid());
    let proc_ns = std::fs::metadata(format!("/proc/{}/ns/net", daemon.pid())).expect("ns");
    let lab_ns = std::fs::metadata(netns_path(lab.client_netns())).expect("netns");
    assert_eq!(proc_ns.ino(), lab_ns.ino(), "daemon is not in the client namespace");
    let log = daemon.log();
    assert!(log.contains("fake-daemon: ready as"), "{log}");
    assert!(log.contains(&format!("root={}", lab.root().display())), "{log}");
    assert!(daemon.ready_after() > Duration::ZERO);

    // The bus learns of the exit from the closed socket, a moment after the
    // process is reaped: wait for its NameOwnerChanged (subscribed first).
    let mut changes =
        dbus.receive_name_owner_changed_with_args(&[(0, SETTINGS_NAME)]).await.expect("subscribe NameOwnerChanged");
    let status = daemon.stop().await.expect("stop");
    assert!(status.success(), "{status}");
    assert!(daemon.log().contains("SIGTERM, stopping"));
    if dbus.name_has_owner(SETTINGS_NAME.try_into().expect("name")).await.expect("ask") {
        let change = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("the name is released within 5 s")
            .expect("signal stream");
        assert!(change.args().expect("args").new_owner().is_none(), "the name went to someone else");
    }
}

#[tokio::test]
async fn launcher_reports_a_daemon_that_dies_with_its_log() {
    let lab = Lab::builder().uplinks(0).build().expect("lab");
    // The project's policy lets only root own the system settings name.
    let err = lab
        .daemon("nm-lab-fake-daemon")
        .program(FAKE_DAEMON)
        .bus_name(SETTINGS_NAME)
        .uid(NOBODY)
        .spawn()
        .await
        .expect_err("nobody must not own the name");
    match &err {
        LabError::Exited { log_tail, .. } => {
            assert!(log_tail.contains("uid=65534"), "{log_tail}");
            assert!(log_tail.contains("AccessDenied"), "{log_tail}");
        }
        other => panic!("expected Exited, got {other}"),
    }

    let missing = lab.spawn_daemon("nm-no-such-daemon", &[]).await;
    assert!(matches!(missing, Err(LabError::Invalid(_))));
}

#[tokio::test]
async fn system_settings_policy_is_enforced_by_the_bus() {
    let lab = Lab::builder().uplinks(0).build().expect("lab");
    let request_name = [
        "--system",
        "--print-reply",
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.RequestName",
        "string:org.freedesktop.NetworkManagerSystemSettings",
        "uint32:0",
    ];
    let as_nobody = lab.command("dbus-send").args(request_name).uid(NOBODY).output().await;
    let as_nobody = as_nobody.expect("dbus-send as nobody");
    assert!(!as_nobody.success());
    assert!(as_nobody.stderr.contains("AccessDenied"), "{}", as_nobody.stderr);
    let as_root = lab.command("dbus-send").args(request_name).checked().await.expect("root");
    assert!(as_root.stdout.contains("uint32 1"), "{}", as_root.stdout);

    // With the name owned (by a root daemon), nobody may call the settings
    // interfaces - the call reaches the daemon, which knows no such object -
    // but not anything else.
    let _daemon =
        lab.daemon("nm-lab-fake-daemon").program(FAKE_DAEMON).bus_name(SETTINGS_NAME).spawn().await.expect("daemon");
    let call = |method: &'static str| {
        lab.command("dbus-send")
            .args([
                "--system",
                "--print-reply",
                "--dest=org.freedesktop.NetworkManagerSystemSettings",
                "/org/freedesktop/NetworkManagerSettings",
                method,
            ])
            .uid(NOBODY)
            .output()
    };
    for allowed in [
        "org.freedesktop.NetworkManagerSettings.ListConnections",
        "org.freedesktop.NetworkManagerSettings.Connection.GetSettings",
        "org.freedesktop.NetworkManagerSettings.Connection.Secrets.GetSecrets",
        "org.freedesktop.DBus.Introspectable.Introspect",
    ] {
        let out = call(allowed).await.expect("dbus-send");
        assert!(!out.stderr.contains("AccessDenied"), "{allowed}: {}", out.stderr);
    }
    let out = call("org.example.NotOurs.Poke").await.expect("dbus-send");
    assert!(out.stderr.contains("AccessDenied"), "{}", out.stderr);
}
