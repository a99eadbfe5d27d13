//! Snapshot tests: a hand-made set of NetworkManager objects, rendered by
//! every view, compared byte for byte with `tests/snapshots/*`. After an
//! intended change, `UPDATE_SNAPSHOTS=1 cargo test -p nmctl --test render`
//! rewrites them (review the diff).

use std::collections::BTreeMap;
use std::path::PathBuf;

use nm_model::{Value, VarDict};
use nmctl::objects::*;
use nmctl::table::Style;
use nmctl::view::{self, Profile};
use nmctl::{render, wait};

fn props(entries: Vec<(&str, Value)>) -> Props {
    entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn o(v: &str) -> Value {
    Value::ObjectPath(v.into())
}

fn paths(v: &[&str]) -> Value {
    Value::Array { elem: "o".into(), items: v.iter().map(|p| o(p)).collect() }
}

fn dict(entries: Vec<(&str, Value)>) -> VarDict {
    entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

const ETH0: &str = "/org/freedesktop/NetworkManager/Devices/2";
const ETH1: &str = "/org/freedesktop/NetworkManager/Devices/3";
const LO: &str = "/org/freedesktop/NetworkManager/Devices/1";
const AC: &str = "/org/freedesktop/NetworkManager/ActiveConnection/1";
const IP4_PATH: &str = "/org/freedesktop/NetworkManager/IP4Config/1";
const IP6_PATH: &str = "/org/freedesktop/NetworkManager/IP6Config/1";
const PROFILE: &str = "/org/freedesktop/NetworkManager/Settings/1";
const PROFILE2: &str = "/org/freedesktop/NetworkManager/Settings/2";

fn device(iface: &str, kind: u32, state: u32, reason: u32, ac: &str, ip4: &str, ip6: &str) -> Interfaces {
    let mut i = Interfaces::new();
    i.insert(
        DEVICE.into(),
        props(vec![
            ("Interface", s(iface)),
            ("DeviceType", Value::UInt32(kind)),
            ("State", Value::UInt32(state)),
            ("StateReason", Value::Struct(vec![Value::UInt32(state), Value::UInt32(reason)])),
            ("ActiveConnection", o(ac)),
            ("Ip4Config", o(ip4)),
            ("Ip6Config", o(ip6)),
            ("Dhcp4Config", o("/")),
            ("Managed", Value::Bool(kind != 32)),
            ("Autoconnect", Value::Bool(true)),
            ("HwAddress", s(if kind == 32 { "00:00:00:00:00:00" } else { "52:54:00:12:34:56" })),
            ("Mtu", Value::UInt32(1500)),
        ]),
    );
    if kind == 1 {
        i.insert(WIRED.into(), props(vec![("Carrier", Value::Bool(state != 20))]));
    }
    i
}

fn store() -> ObjectStore {
    let mut st = ObjectStore::default();
    let mut m = Interfaces::new();
    m.insert(
        MANAGER.into(),
        props(vec![
            ("Devices", paths(&[LO, ETH0, ETH1])),
            ("ActiveConnections", paths(&[AC])),
            ("PrimaryConnection", o(AC)),
            ("State", Value::UInt32(70)),
            ("Connectivity", Value::UInt32(4)),
            ("Startup", Value::Bool(false)),
            ("NetworkingEnabled", Value::Bool(true)),
            ("Version", s("1.42.4")),
        ]),
    );
    st.add(MANAGER_PATH, m);
    let mut set = Interfaces::new();
    set.insert(SETTINGS.into(), props(vec![("Hostname", s("lab-host"))]));
    st.add(SETTINGS_PATH, set);
    st.add(LO, device("lo", 32, 10, 0, "/", "/", "/"));
    st.add(ETH0, device("eth0", 1, 100, 0, AC, IP4_PATH, IP6_PATH));
    st.add(ETH1, device("eth1", 1, 20, 40, "/", "/", "/"));
    let mut ac = Interfaces::new();
    ac.insert(
        ACTIVE.into(),
        props(vec![
            ("Id", s("office")),
            ("Uuid", s("0b5c1a2e-4b8f-4a6e-9c51-3f1f3f7f2a10")),
            ("Connection", o(PROFILE)),
            ("Devices", paths(&[ETH0])),
            ("State", Value::UInt32(2)),
            ("StateFlags", Value::UInt32(0)),
            ("Default", Value::Bool(true)),
            ("Default6", Value::Bool(false)),
            ("Ip4Config", o(IP4_PATH)),
            ("Ip6Config", o(IP6_PATH)),
        ]),
    );
    st.add(AC, ac);
    let mut ip4 = Interfaces::new();
    ip4.insert(
        IP4.into(),
        props(vec![
            (
                "AddressData",
                Value::dict_list(vec![dict(vec![("address", s("192.0.2.10")), ("prefix", Value::UInt32(24))])]),
            ),
            ("Gateway", s("192.0.2.1")),
            (
                "RouteData",
                Value::dict_list(vec![
                    dict(vec![("dest", s("192.0.2.0")), ("prefix", Value::UInt32(24)), ("metric", Value::UInt32(100))]),
                    dict(vec![
                        ("dest", s("0.0.0.0")),
                        ("prefix", Value::UInt32(0)),
                        ("next-hop", s("192.0.2.1")),
                        ("metric", Value::UInt32(100)),
                        ("table", Value::UInt32(254)),
                    ]),
                ]),
            ),
            ("NameserverData", Value::dict_list(vec![dict(vec![("address", s("192.0.2.53"))])])),
            ("Searches", Value::str_list(["lab.test"])),
        ]),
    );
    st.add(IP4_PATH, ip4);
    let mut ip6 = Interfaces::new();
    ip6.insert(
        IP6.into(),
        props(vec![
            (
                "AddressData",
                Value::dict_list(vec![dict(vec![("address", s("2001:db8::10")), ("prefix", Value::UInt32(64))])]),
            ),
            ("Gateway", s("")),
            ("Nameservers", Value::Array { elem: "ay".into(), items: vec![] }),
        ]),
    );
    st.add(IP6_PATH, ip6);
    st
}

fn profiles() -> Vec<Profile> {
    let mut office = BTreeMap::new();
    let mut c = BTreeMap::new();
    c.insert("id".to_string(), s("office"));
    c.insert("uuid".to_string(), s("0b5c1a2e-4b8f-4a6e-9c51-3f1f3f7f2a10"));
    c.insert("type".to_string(), s("802-3-ethernet"));
    c.insert("interface-name".to_string(), s("eth0"));
    c.insert("autoconnect".to_string(), Value::Bool(false));
    office.insert("connection".to_string(), c);
    office.insert("802-3-ethernet".to_string(), BTreeMap::new());
    let mut ip4 = BTreeMap::new();
    ip4.insert("method".to_string(), s("manual"));
    ip4.insert(
        "address-data".to_string(),
        Value::dict_list(vec![dict(vec![("address", s("192.0.2.10")), ("prefix", Value::UInt32(24))])]),
    );
    ip4.insert("gateway".to_string(), s("192.0.2.1"));
    ip4.insert("dns-data".to_string(), Value::str_list(["192.0.2.53"]));
    office.insert("ipv4".to_string(), ip4);
    let mut ip6 = BTreeMap::new();
    ip6.insert("method".to_string(), s("disabled"));
    office.insert("ipv6".to_string(), ip6);
    let mut spare = office.clone();
    if let Some(c) = spare.get_mut("connection") {
        c.insert("id".to_string(), s("spare"));
        c.insert("uuid".to_string(), s("9e1d0c6b-2f0a-4d55-8a57-6c3c9f0b1e22"));
    }
    vec![
        Profile {
            path: PROFILE.into(),
            settings: office,
            filename: "/etc/NetworkManager/system-connections/office.nmconnection".into(),
        },
        Profile {
            path: PROFILE2.into(),
            settings: spare,
            filename: "/etc/NetworkManager/system-connections/spare.nmconnection".into(),
        },
    ]
}

fn check(name: &str, got: &str) {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&file, got).expect("write snapshot");
        return;
    }
    let want = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(got, want, "{name} differs from its snapshot (UPDATE_SNAPSHOTS=1 rewrites it)");
}

const PLAIN: Style = Style::PLAIN;

#[test]
fn overview() {
    let o = view::overview(&store());
    check("overview.txt", &render::overview(&o, PLAIN));
    check("overview.json", &render::json(&o));
}

#[test]
fn general() {
    let g = view::general(&store());
    check("general.txt", &render::general(&g, PLAIN));
    check("general.json", &render::json(&g));
}

#[test]
fn device_status_and_show() {
    let st = store();
    let list = view::device_list(&st);
    check("device-status.txt", &render::devices(&list, PLAIN));
    check("device-status.json", &render::json(&list));
    let eth0 = view::device_detail(&st, ETH0);
    check("device-show-eth0.txt", &render::device_detail(&eth0, PLAIN));
    check("device-show-eth0.json", &render::json(&eth0));
}

#[test]
fn device_status_in_colour() {
    let list = view::device_list(&store());
    check("device-status-colour.txt", &render::devices(&list, Style { colour: true }));
}

#[test]
fn connection_show() {
    let st = store();
    let p = profiles();
    let list = view::connection_list(&st, &p, false);
    check("connection-show.txt", &render::connections(&list, PLAIN));
    check("connection-show.json", &render::json(&list));
    let active = view::connection_list(&st, &p, true);
    assert_eq!(active.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["office"]);
    let detail = view::connection_detail(&st, &p[0]);
    check("connection-show-office.txt", &render::connection_detail(&detail, PLAIN));
    check("connection-show-office.json", &render::json(&detail));
}

#[test]
fn wait_online_observes_the_store() {
    let obs = wait::online_obs(true, &store());
    assert_eq!(
        obs.devices.iter().map(|d| (d.iface.as_str(), d.state, d.ipv4, d.ipv6)).collect::<Vec<_>>(),
        [("lo", 10, false, false), ("eth0", 100, true, true), ("eth1", 20, false, false)]
    );
    assert_eq!(wait::online(&wait::OnlineQuery { ipv4: true, ipv6: true, ..Default::default() }, &obs), Ok(()));
}
