//! Bridges: what a `bridge` profile asks of the kernel, and which bridge a
//! port profile (`connection.slave-type=bridge`) belongs to. Pure; the
//! engine creates the link when the profile activates (NetworkManager's
//! software devices exist while their profile is up) and deletes it when it
//! goes down.

use nm_model::{Connection, Value};
use nm_platform::BridgeOptions;

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

/// The bridge a port profile names (`connection.master`: an interface
/// name or a profile's uuid); `None` when the profile is no bridge port.
pub fn master(conn: &Connection) -> Option<&str> {
    if conn.get_str("connection", "slave-type") != Some("bridge") {
        return None;
    }
    conn.get_str("connection", "master").filter(|m| !m.is_empty())
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
