//! The profiles nm-core makes itself, as NetworkManager does. The
//! auto-default ethernet profile ("Wired connection N"):
//! an ethernet device that is managed and that no profile may use gets an
//! in-memory DHCP profile of its own, once, unless `no-auto-default`
//! names it. A user who deletes that profile adds the device to
//! `/var/lib/NetworkManager/no-auto-default.state`, so it is not made
//! again. And the profile of an external activation: what someone else
//! configured on a device, described. Pure: the engine decides when and
//! talks to the settings service.

use std::net::IpAddr;

use nm_model::{Connection, Value};

/// NetworkManager's state file of devices whose auto-default was deleted.
pub const STATE_FILE: &str = "/var/lib/NetworkManager/no-auto-default.state";

/// `connection.autoconnect-priority` of the profile: the lowest, so any
/// profile the user made wins.
const PRIORITY: i32 = -999;

/// The first "Wired connection N" no profile is called.
pub fn name<'a>(existing: impl Iterator<Item = &'a str>) -> String {
    let taken: std::collections::HashSet<&str> = existing.collect();
    (1..)
        .map(|n| format!("Wired connection {n}"))
        .find(|name| !taken.contains(name.as_str()))
        .unwrap_or_else(|| "Wired connection".into())
}

/// The profile for `iface`: DHCP and IPv6 auto (normalisation fills those
/// in), bound to the interface. Its uuid is stable for the machine, the
/// name and the device (`device_id`: its permanent MAC, else its name), as
/// NetworkManager's, so a stable-privacy IPv6 address stays the same.
pub fn profile(name: &str, iface: &str, machine_id: Option<&str>, device_id: &str) -> Connection {
    // A fixed namespace of ours for these uuids.
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6e6d_2d72_732d_4457_8000_6465_6677_6972);
    let seed = ["default-wired", machine_id.map(str::trim).unwrap_or(""), name, device_id].join("\0");
    let mut conn = ethernet(name, uuid::Uuid::new_v5(&NAMESPACE, seed.as_bytes()), iface);
    conn.set("connection", "autoconnect-priority", Value::Int32(PRIORITY));
    conn
}

/// The in-memory profile of an external activation, as NetworkManager
/// makes it: named after the interface, never autoconnecting, the
/// addresses the device has (`manual`) and the IPv4 default gateway; IPv6
/// left alone without addresses. (Link-local IPv6 addresses are not
/// passed in.)
pub fn external(iface: &str, addresses: &[nm_platform::Address], gateway: Option<IpAddr>) -> Connection {
    // Unique per interface and moment; nothing needs it stable.
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6e6d_2d72_732d_4558_8000_6578_7465_726e);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut conn = ethernet(iface, uuid::Uuid::new_v5(&NAMESPACE, format!("{iface}\0{now}").as_bytes()), iface);
    conn.set("connection", "autoconnect", Value::Bool(false));
    for (family, v6) in [("ipv4", false), ("ipv6", true)] {
        let list: Vec<Value> = addresses
            .iter()
            .filter(|a| a.addr.is_ipv6() == v6)
            .map(|a| Value::Dict {
                key: "s".into(),
                value: "v".into(),
                entries: vec![
                    (Value::Str("address".into()), Value::Variant(Box::new(Value::Str(a.addr.to_string())))),
                    (Value::Str("prefix".into()), Value::Variant(Box::new(Value::UInt32(a.prefix.into())))),
                ],
            })
            .collect();
        let method = match (list.is_empty(), v6) {
            (false, _) => "manual",
            (true, false) => "disabled",
            (true, true) => "ignore",
        };
        conn.set(family, "method", Value::Str(method.into()));
        if !list.is_empty() {
            conn.set(family, "address-data", Value::Array { elem: "a{sv}".into(), items: list });
        }
    }
    if let Some(gw) = gateway.filter(|g| g.is_ipv4() && addresses.iter().any(|a| a.addr.is_ipv4())) {
        conn.set("ipv4", "gateway", Value::Str(gw.to_string()));
    }
    conn
}

/// An ethernet profile bound to `iface`.
fn ethernet(id: &str, uuid: uuid::Uuid, iface: &str) -> Connection {
    let mut conn = Connection::default();
    conn.set("connection", "id", Value::Str(id.into()));
    conn.set("connection", "uuid", Value::Str(uuid.to_string()));
    conn.set("connection", "type", Value::Str("802-3-ethernet".into()));
    conn.set("connection", "interface-name", Value::Str(iface.into()));
    conn
}

/// The device specs of the state file: one per line, a bare MAC (what
/// NetworkManager writes for a device with a permanent address) or a
/// spec such as `interface-name:=eth0`.
pub fn parse_state(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| if is_mac(l) { format!("mac:{l}") } else { l.to_string() })
        .collect()
}

/// The line for a device: its permanent MAC, or its name when it has none
/// of its own (a veth's MAC is made anew with every link).
pub fn state_line(perm_mac: Option<&str>, iface: &str) -> String {
    match perm_mac {
        Some(mac) => mac.to_ascii_uppercase(),
        None => format!("interface-name:={iface}"),
    }
}

/// `text` (the file as it is) with `line` added once.
pub fn add_to_state(text: &str, line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if !lines.iter().any(|l| l.eq_ignore_ascii_case(line)) {
        lines.push(line);
    }
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn is_mac(s: &str) -> bool {
    s.split(':').count() == 6 && s.split(':').all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_free_name_is_taken() {
        assert_eq!(name(["home", "office"].into_iter()), "Wired connection 1");
        assert_eq!(name(["Wired connection 1", "Wired connection 3"].into_iter()), "Wired connection 2");
    }

    #[test]
    fn the_profile_is_dhcp_on_the_interface_at_the_lowest_priority_with_a_stable_uuid() {
        let mut conn = profile("Wired connection 1", "eth0", Some("0123456789abcdef0123456789abcdef\n"), "eth0");
        nm_model::validate::normalize(&mut conn);
        assert_eq!(conn.get_str("connection", "interface-name"), Some("eth0"));
        assert_eq!(conn.get("connection", "autoconnect-priority"), Some(&Value::Int32(-999)));
        assert_eq!(conn.get_str("ipv4", "method"), Some("auto"));
        assert_eq!(conn.get_str("ipv6", "method"), Some("auto"));
        let again = profile("Wired connection 1", "eth0", Some("0123456789abcdef0123456789abcdef"), "eth0");
        assert_eq!(conn.uuid(), again.uuid());
        let other = profile("Wired connection 1", "eth1", Some("0123456789abcdef0123456789abcdef"), "eth1");
        assert_ne!(conn.uuid(), other.uuid());
        assert!(conn.uuid().is_some_and(|u| uuid::Uuid::parse_str(u).is_ok()));
    }

    #[test]
    fn an_external_profile_describes_the_addresses_and_the_gateway() {
        let addr = |a: &str, prefix| nm_platform::Address::new(3, a.parse().unwrap(), prefix);
        let gw = "192.0.2.1".parse().ok();
        let mut conn = external("eth0", &[addr("192.0.2.9", 24), addr("2001:db8::9", 64)], gw);
        nm_model::validate::normalize(&mut conn);
        assert_eq!((conn.id(), conn.get_str("connection", "interface-name")), (Some("eth0"), Some("eth0")));
        assert_eq!(conn.get("connection", "autoconnect").and_then(Value::as_bool), Some(false));
        assert_eq!((conn.get_str("ipv4", "method"), conn.get_str("ipv6", "method")), (Some("manual"), Some("manual")));
        assert_eq!(conn.get_str("ipv4", "gateway"), Some("192.0.2.1"));
        let only4 = external("eth0", &[addr("192.0.2.9", 24)], None);
        assert_eq!((only4.get_str("ipv6", "method"), only4.get_str("ipv4", "gateway")), (Some("ignore"), None));
        assert!(nm_model::validate::normalize_and_validate(only4).is_ok());
    }

    #[test]
    fn the_state_file_reads_macs_and_specs_and_gains_a_line_once() {
        let text = "52:54:00:12:34:56\n\ninterface-name:=veth0\n";
        assert_eq!(parse_state(text), ["mac:52:54:00:12:34:56", "interface-name:=veth0"]);
        let line = state_line(Some("aa:bb:cc:dd:ee:ff"), "eth0");
        assert_eq!(line, "AA:BB:CC:DD:EE:FF");
        let once = add_to_state(text, &line);
        assert_eq!(once, "52:54:00:12:34:56\nAA:BB:CC:DD:EE:FF\ninterface-name:=veth0\n");
        assert_eq!(add_to_state(&once, &line), once);
        assert_eq!(state_line(None, "veth1"), "interface-name:=veth1");
    }
}
