//! Keyfile compatibility against the real thing: Debian's `nmcli --offline
//! connection add` prints a keyfile without any daemon. Each must parse, and
//! writing it back must give the same keyfile; the TOML and `a{sa{sv}}`
//! forms must carry the same profile there and back.

use std::process::Command;

use nm_model::{dbus_dict, keyfile, toml_codec, validate};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `nmcli --offline connection add ARGS` and returns the keyfile.
fn nmcli_keyfile(args: &[&str]) -> String {
    let out = Command::new("nmcli")
        .args(["--offline", "connection", "add"])
        .args(args)
        .output()
        .expect("nmcli (Debian's network-manager) must be installed: `cargo xtask test` installs it");
    assert!(out.status.success(), "nmcli {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    // nmcli prints warnings about other profiles on stdout before the file.
    String::from_utf8(out.stdout)
        .expect("nmcli prints UTF-8")
        .lines()
        .skip_while(|l| !l.starts_with('['))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn cases() -> Vec<(&'static str, Vec<String>)> {
    let ca = fixture("ca.pem");
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        ("ethernet dhcp", owned(&["type", "ethernet", "ifname", "eth0", "con-name", "dhcp", "ipv4.method", "auto"])),
        (
            "static with routes and dns",
            owned(&[
                "type",
                "ethernet",
                "ifname",
                "eth1",
                "con-name",
                "static",
                "ipv4.method",
                "manual",
                "ipv4.addresses",
                "192.168.1.5/24,10.0.0.2/8",
                "ipv4.gateway",
                "192.168.1.1",
                "ipv4.dns",
                "8.8.8.8,1.1.1.1",
                "ipv4.dns-search",
                "example.com",
                "ipv4.routes",
                "10.10.0.0/16 192.168.1.254 77, 10.20.0.0/16 192.168.1.253 table=100 onlink=true",
                "ipv4.routing-rules",
                "priority 5 from 10.0.0.0/8 table 100",
                "ipv6.method",
                "manual",
                "ipv6.addresses",
                "2001:db8::5/64",
                "ipv6.gateway",
                "2001:db8::1",
                "connection.autoconnect-priority",
                "10",
                "connection.autoconnect",
                "no",
                "ethernet.mtu",
                "1400",
                "ethernet.cloned-mac-address",
                "00:11:22:33:44:55",
                "ethernet.mac-address",
                "52:54:00:ab:cd:ef",
            ]),
        ),
        (
            "ipv6",
            owned(&[
                "type",
                "ethernet",
                "ifname",
                "eth2",
                "con-name",
                "v6",
                "ipv4.method",
                "disabled",
                "ipv6.method",
                "auto",
                "ipv6.addr-gen-mode",
                "eui64",
                "ipv6.ip6-privacy",
                "2",
                "ipv6.routes",
                "2001:db8:1::/48 2001:db8::fe 5",
                "ipv6.dns",
                "2001:db8::53",
                "ipv6.may-fail",
                "no",
                "ipv6.route-metric",
                "50",
            ]),
        ),
        (
            "wifi with psk and permissions",
            owned(&[
                "type",
                "wifi",
                "ifname",
                "wlan0",
                "con-name",
                "W",
                "ssid",
                "My Net;2",
                "wifi-sec.key-mgmt",
                "wpa-psk",
                "wifi-sec.psk",
                "secret123",
                "connection.permissions",
                "user:alice",
            ]),
        ),
        (
            "wifi with an agent-owned psk",
            owned(&[
                "type",
                "wifi",
                "ifname",
                "wlan1",
                "con-name",
                "W2",
                "ssid",
                "cafe",
                "wifi-sec.key-mgmt",
                "wpa-psk",
                "wifi-sec.psk-flags",
                "1",
                "wifi.cloned-mac-address",
                "random",
            ]),
        ),
        (
            "bridge",
            owned(&[
                "type",
                "bridge",
                "ifname",
                "br0",
                "con-name",
                "br0",
                "bridge.stp",
                "no",
                "bridge.priority",
                "100",
                "bridge.vlan-filtering",
                "yes",
                "bridge.vlans",
                "1 pvid untagged,10-20",
            ]),
        ),
        (
            "bridge port",
            owned(&[
                "type",
                "ethernet",
                "ifname",
                "eth3",
                "con-name",
                "br0-port",
                "master",
                "br0",
                "slave-type",
                "bridge",
                "bridge-port.path-cost",
                "50",
            ]),
        ),
        ("vlan", owned(&["type", "vlan", "ifname", "eth0.10", "con-name", "vlan10", "dev", "eth0", "id", "10"])),
        (
            "802.1x",
            vec![
                "type",
                "ethernet",
                "ifname",
                "eth4",
                "con-name",
                "dot1x",
                "802-1x.eap",
                "peap,ttls",
                "802-1x.identity",
                "bob",
                "802-1x.password",
                "p w;x",
                "802-1x.phase2-auth",
                "mschapv2",
                "802-1x.ca-cert",
                &ca,
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        ),
        (
            "bond",
            owned(&[
                "type",
                "bond",
                "ifname",
                "bond0",
                "con-name",
                "bond0",
                "bond.options",
                "mode=active-backup,miimon=100",
            ]),
        ),
        (
            "macvlan",
            owned(&[
                "type", "macvlan", "ifname", "mv0", "con-name", "mv0", "dev", "eth0", "mode", "bridge", "tap", "no",
            ]),
        ),
        (
            "vxlan",
            owned(&[
                "type",
                "vxlan",
                "ifname",
                "vx0",
                "con-name",
                "vx0",
                "id",
                "42",
                "remote",
                "198.51.100.1",
                "destination-port",
                "4789",
            ]),
        ),
        ("tun", owned(&["type", "tun", "ifname", "tap0", "con-name", "tap0", "mode", "tap", "owner", "1000"])),
    ]
}

#[test]
fn nmcli_keyfiles_round_trip_through_every_codec() {
    for (what, args) in cases() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = nmcli_keyfile(&args);
        assert!(text.starts_with("[connection]"), "{what}: unexpected nmcli output:\n{text}");
        let conn = keyfile::parse(&text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
        validate::validate(&conn).unwrap_or_else(|e| panic!("{what}: does not validate: {e}\n{text}"));

        // keyfile → model → keyfile gives the same file.
        assert_eq!(keyfile::write(&conn), text, "{what}: keyfile round trip");

        // model → TOML → model and model → a{sa{sv}} → model keep everything.
        let toml = toml_codec::write(&conn);
        let from_toml = toml_codec::parse(&toml).unwrap_or_else(|e| panic!("{what}: {e}\n{toml}"));
        assert_eq!(keyfile::write(&from_toml), text, "{what}: TOML round trip\n{toml}");

        let dict = dbus_dict::to_dbus(&conn, true);
        let from_dbus = dbus_dict::from_dbus(&dict).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(keyfile::write(&from_dbus), text, "{what}: a{{sa{{sv}}}} round trip");
    }
}

#[test]
fn secrets_follow_their_flags() {
    let text = nmcli_keyfile(&[
        "type",
        "wifi",
        "ifname",
        "wlan0",
        "con-name",
        "W",
        "ssid",
        "net",
        "wifi-sec.key-mgmt",
        "wpa-psk",
        "wifi-sec.psk",
        "secret123",
    ]);
    let conn = keyfile::parse(&text).expect("nmcli's keyfile parses");
    let public = dbus_dict::to_dbus(&conn, false);
    assert!(!public["802-11-wireless-security"].contains_key("psk"));
    assert_eq!(conn.secrets("802-11-wireless-security")["802-11-wireless-security"]["psk"].as_str(), Some("secret123"));
}
