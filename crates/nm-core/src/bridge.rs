//! Bridges: what a `bridge` profile asks of the kernel, and which bridge a
//! port profile (`connection.slave-type=bridge`) belongs to. Pure; the
//! engine creates the link when the profile activates (NetworkManager's
//! software devices exist while their profile is up) and deletes it when it
//! goes down.

use nm_model::{Connection, Value};
use nm_platform::BridgeOptions;

use crate::ipconfig;

/// The interface a `bridge` profile makes; `None` for another type or a
/// profile without `connection.interface-name` (nothing to create).
pub fn interface(conn: &Connection) -> Option<&str> {
    if conn.connection_type() != Some("bridge") {
        return None;
    }
    conn.get_str("connection", "interface-name").filter(|n| !n.is_empty())
}

/// The spanning tree settings of the profile (`bridge.stp`, …), with
/// NetworkManager's defaults for what it leaves out.
pub fn options(conn: &Connection) -> BridgeOptions {
    let d = BridgeOptions::default();
    let num = |key: &str| conn.get("bridge", key).and_then(Value::as_i128);
    let u32_or = |key: &str, default: u32| num(key).and_then(|n| u32::try_from(n).ok()).unwrap_or(default);
    BridgeOptions {
        stp: conn.get("bridge", "stp").and_then(Value::as_bool).unwrap_or(d.stp),
        forward_delay: u32_or("forward-delay", d.forward_delay),
        hello_time: u32_or("hello-time", d.hello_time),
        max_age: u32_or("max-age", d.max_age),
        priority: num("priority").and_then(|n| u16::try_from(n).ok()).unwrap_or(d.priority),
    }
}

/// The MAC address a new bridge takes: `bridge.mac-address`, else one
/// derived from the machine-id and the interface name, locally
/// administered. Fixed at creation because the kernel gives a bridge the
/// address of a port, or none (all zeros) without ports: a DHCP client on
/// it would change identity with its ports, and start with none. The same
/// bridge on the same machine has the same address, so its leases last.
pub fn mac(conn: &Connection, machine_id: Option<&str>) -> Option<[u8; 6]> {
    if let Some(m) =
        conn.get("bridge", "mac-address").and_then(Value::as_bytes).and_then(|b| <[u8; 6]>::try_from(b).ok())
    {
        return Some(m);
    }
    let name = interface(conn)?;
    Some(ipconfig::local_mac(&ipconfig::machine_hash(0x6e6d_2d72_732d_4252_8000_4d41_4321_4252, machine_id, name)))
}

/// The bridge a port profile names (`connection.master`: an interface
/// name or a profile's uuid); `None` when the profile is no bridge port.
pub fn master(conn: &Connection) -> Option<&str> {
    if conn.get_str("connection", "slave-type") != Some("bridge") {
        return None;
    }
    conn.get_str("connection", "master").filter(|m| !m.is_empty())
}

/// `connection.autoconnect-slaves`: the bridge's activation brings its
/// ports up (NetworkManager's default, -1, is no).
pub fn brings_up_ports(conn: &Connection) -> bool {
    conn.get("connection", "autoconnect-slaves").and_then(Value::as_i128) == Some(1)
}

/// Whether the bridge profile `bridge` is the one a port's `master` names.
pub fn is_master_of(bridge: &Connection, master: &str) -> bool {
    interface(bridge).is_some() && (bridge.uuid() == Some(master) || interface(bridge) == Some(master))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nm_model::{keyfile, validate};

    fn conn(text: &str) -> Connection {
        validate::normalize_and_validate(keyfile::parse(text).unwrap()).unwrap()
    }

    const BRIDGE: &str = "[connection]\nid=br\nuuid=2e9ed1ab-55c4-4d0b-9d39-3bd2c5ad0b11\ntype=bridge\ninterface-name=br0\n\n[bridge]\nstp=false\nforward-delay=4\n";

    #[test]
    fn a_bridge_profile_names_its_interface_and_settings() {
        let b = conn(BRIDGE);
        assert_eq!(interface(&b), Some("br0"));
        let o = options(&b);
        assert_eq!((o.stp, o.forward_delay, o.hello_time, o.max_age, o.priority), (false, 4, 2, 20, 0x8000));
        let plain =
            conn("[connection]\nid=b2\nuuid=9c1c3b5e-7ad2-4a51-9a1a-2c1b5f3e4d77\ntype=bridge\ninterface-name=br1\n");
        assert!(options(&plain).stp, "NetworkManager's default: STP on");
        let eth = conn("[connection]\nid=e\nuuid=4f0e9a39-33d1-4c77-8f0c-6d4b2f9d1e10\ntype=ethernet\n");
        assert_eq!((interface(&eth), master(&eth)), (None, None));
    }

    #[test]
    fn a_new_bridge_has_a_stable_local_address_or_the_profiles() {
        let b = conn(BRIDGE);
        let m = mac(&b, Some("4c4c4544004d4410804ab4c04f4d3232")).unwrap();
        assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast: {m:02x?}");
        assert_eq!(Some(m), mac(&b, Some("4c4c4544004d4410804ab4c04f4d3232")), "stable");
        assert_ne!(Some(m), mac(&b, Some("00000000000000000000000000000001")), "per machine");
        let other =
            conn("[connection]\nid=b2\nuuid=9c1c3b5e-7ad2-4a51-9a1a-2c1b5f3e4d77\ntype=bridge\ninterface-name=br1\n");
        assert_ne!(mac(&other, None), mac(&b, None), "per interface");
        let fixed = conn(&format!("{BRIDGE}mac-address=02:11:22:33:44:55\n"));
        assert_eq!(mac(&fixed, None), Some([2, 0x11, 0x22, 0x33, 0x44, 0x55]));
    }

    #[test]
    fn a_port_names_its_bridge_by_interface_or_uuid() {
        let b = conn(BRIDGE);
        let port = |m: &str| {
            conn(&format!(
                "[connection]\nid=p\nuuid=61d6ef40-2a5e-4c8b-8f0e-1a2b3c4d5e6f\ntype=ethernet\ninterface-name=eth1\nmaster={m}\nslave-type=bridge\n"
            ))
        };
        let by_name = port("br0");
        assert_eq!(master(&by_name), Some("br0"));
        assert!(is_master_of(&b, "br0") && is_master_of(&b, "2e9ed1ab-55c4-4d0b-9d39-3bd2c5ad0b11"));
        assert!(!is_master_of(&b, "br9"));
        assert!(master(&port("2e9ed1ab-55c4-4d0b-9d39-3bd2c5ad0b11")).is_some());
    }
}
