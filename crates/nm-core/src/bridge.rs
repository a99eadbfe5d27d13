//! Bridges: what a `bridge` profile asks of the kernel, and which bridge a
//! port profile (`connection.slave-type=bridge`) belongs to. Pure; the
//! engine creates the link when the profile activates (NetworkManager's
//! software devices exist while their profile is up) and deletes it when it
//! goes down.

use nm_model::{Connection, Value};
use nm_platform::{BridgeOptions, BridgePortOptions, BridgeVlan};

use crate::ipconfig;

/// The interface a `bridge` profile makes; `None` for another type or a
/// profile without `connection.interface-name` (nothing to create).
pub fn interface(conn: &Connection) -> Option<&str> {
    if conn.connection_type() != Some("bridge") {
        return None;
    }
    conn.get_str("connection", "interface-name").filter(|n| !n.is_empty())
}

/// What a `bridge` profile asks of the bridge itself, in the kernel's
/// units, with NetworkManager's defaults for what it leaves out (as
/// NetworkManager, a spanning tree time of 0 means the default: with STP
/// off the profile may leave them 0).
pub fn options(conn: &Connection) -> BridgeOptions {
    let d = BridgeOptions::default();
    let num = |key: &str| conn.get("bridge", key).and_then(Value::as_i128);
    let flag = |key: &str, default: bool| conn.get("bridge", key).and_then(Value::as_bool).unwrap_or(default);
    let u32_or = |key: &str, default: u32| num(key).and_then(|n| u32::try_from(n).ok()).unwrap_or(default);
    let u64_or = |key: &str, default: u64| num(key).and_then(|n| u64::try_from(n).ok()).unwrap_or(default);
    // Seconds in the profile, hundredths of a second in the kernel.
    let centis = |key: &str, default: u32| match num(key).and_then(|n| u32::try_from(n).ok()) {
        Some(0) | None => default,
        Some(s) => s.saturating_mul(100),
    };
    BridgeOptions {
        stp: flag("stp", d.stp),
        priority: num("priority").and_then(|n| u16::try_from(n).ok()).unwrap_or(d.priority),
        forward_delay: centis("forward-delay", d.forward_delay),
        hello_time: centis("hello-time", d.hello_time),
        max_age: centis("max-age", d.max_age),
        ageing_time: num("ageing-time")
            .and_then(|n| u32::try_from(n).ok())
            .map_or(d.ageing_time, |s| s.saturating_mul(100)),
        group_fwd_mask: num("group-forward-mask").and_then(|n| u16::try_from(n).ok()).unwrap_or(d.group_fwd_mask),
        group_address: conn
            .get("bridge", "group-address")
            .and_then(Value::as_bytes)
            .and_then(|b| <[u8; 6]>::try_from(b).ok())
            .unwrap_or(d.group_address),
        multicast_snooping: flag("multicast-snooping", d.multicast_snooping),
        multicast_router: match conn.get_str("bridge", "multicast-router") {
            Some("disabled") => 0,
            Some("enabled") => 2,
            _ => 1,
        },
        multicast_querier: flag("multicast-querier", d.multicast_querier),
        multicast_query_use_ifaddr: flag("multicast-query-use-ifaddr", d.multicast_query_use_ifaddr),
        multicast_hash_max: u32_or("multicast-hash-max", d.multicast_hash_max),
        multicast_last_member_count: u32_or("multicast-last-member-count", d.multicast_last_member_count),
        multicast_startup_query_count: u32_or("multicast-startup-query-count", d.multicast_startup_query_count),
        multicast_last_member_interval: u64_or("multicast-last-member-interval", d.multicast_last_member_interval),
        multicast_membership_interval: u64_or("multicast-membership-interval", d.multicast_membership_interval),
        multicast_querier_interval: u64_or("multicast-querier-interval", d.multicast_querier_interval),
        multicast_query_interval: u64_or("multicast-query-interval", d.multicast_query_interval),
        multicast_query_response_interval: u64_or(
            "multicast-query-response-interval",
            d.multicast_query_response_interval,
        ),
        multicast_startup_query_interval: u64_or(
            "multicast-startup-query-interval",
            d.multicast_startup_query_interval,
        ),
        vlan_protocol: if conn.get_str("bridge", "vlan-protocol") == Some("802.1ad") { 0x88a8 } else { 0x8100 },
        vlan_stats_enabled: flag("vlan-stats-enabled", d.vlan_stats_enabled),
    }
}

/// A bridge's VLAN filtering (`bridge.vlan-filtering`): `None` when off,
/// else the VLAN ports start in (`bridge.vlan-default-pvid`, default 1;
/// 0 for none).
pub fn vlan_filtering(conn: &Connection) -> Option<u16> {
    if conn.get("bridge", "vlan-filtering").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let pvid = conn.get("bridge", "vlan-default-pvid").and_then(Value::as_i128);
    Some(pvid.and_then(|p| u16::try_from(p).ok()).unwrap_or(1))
}

/// The VLAN table `setting.vlans` asks for (`bridge` for the bridge
/// itself, `bridge-port` for a port).
pub fn vlans(conn: &Connection, setting: &str) -> Vec<BridgeVlan> {
    let entries = conn.get(setting, "vlans").and_then(Value::as_dict_list).unwrap_or_default();
    entries
        .iter()
        .filter_map(|e| {
            let vid = |key: &str| e.get(key).and_then(Value::as_i128).and_then(|v| u16::try_from(v).ok());
            let flag = |key: &str| e.get(key).and_then(Value::as_bool).unwrap_or(false);
            let start = vid("vid-start")?;
            Some(BridgeVlan {
                start,
                end: vid("vid-end").unwrap_or(start),
                pvid: flag("pvid"),
                untagged: flag("untagged"),
            })
        })
        .collect()
}

/// A port's VLANs with the bridge's default one (`default_pvid`, 0 for
/// none) added when none of them covers it: untagged, and the port's PVID
/// unless another entry is.
pub fn with_default_pvid(mut vlans: Vec<BridgeVlan>, default_pvid: u16) -> Vec<BridgeVlan> {
    if default_pvid != 0 && !vlans.iter().any(|v| (v.start..=v.end).contains(&default_pvid)) {
        let pvid = !vlans.iter().any(|v| v.pvid);
        vlans.push(BridgeVlan { start: default_pvid, end: default_pvid, pvid, untagged: true });
    }
    vlans
}

/// How a port profile's link sits in its bridge (`bridge-port.*`; 0 cost
/// or priority means NetworkManager's default, as in NetworkManager).
pub fn port_options(conn: &Connection) -> BridgePortOptions {
    let num = |key: &str| conn.get("bridge-port", key).and_then(Value::as_i128).filter(|n| *n != 0);
    BridgePortOptions {
        cost: num("path-cost").and_then(|n| u32::try_from(n).ok()).unwrap_or(100),
        priority: num("priority").and_then(|n| u16::try_from(n).ok()).unwrap_or(32),
        hairpin: conn.get("bridge-port", "hairpin-mode").and_then(Value::as_bool).unwrap_or(false),
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
        // The kernel counts in hundredths of a second.
        assert_eq!((o.stp, o.forward_delay, o.hello_time, o.max_age, o.priority), (false, 400, 200, 2000, 0x8000));
        assert_eq!(o.ageing_time, 30000);
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

    #[test]
    fn every_bridge_setting_reaches_the_kernels_units() {
        let b = conn(&format!(
            "{BRIDGE}ageing-time=10\ngroup-forward-mask=8\ngroup-address=01:80:C2:00:00:0E\nmulticast-snooping=false\n\
             multicast-router=enabled\nmulticast-querier=true\nmulticast-hash-max=512\nmulticast-query-interval=200\n\
             vlan-protocol=802.1ad\nvlan-stats-enabled=true\npriority=4096\n"
        ));
        let o = options(&b);
        assert_eq!((o.ageing_time, o.group_fwd_mask, o.group_address), (1000, 8, [1, 0x80, 0xc2, 0, 0, 0x0e]));
        assert_eq!((o.multicast_snooping, o.multicast_router, o.multicast_querier), (false, 2, true));
        assert_eq!((o.multicast_hash_max, o.multicast_query_interval), (512, 200));
        assert_eq!((o.vlan_protocol, o.vlan_stats_enabled, o.priority), (0x88a8, true, 4096));
        // STP off with its times left 0: the defaults go to the kernel.
        let off = conn(&format!("{BRIDGE}hello-time=0\n"));
        assert_eq!((options(&off).hello_time, options(&off).max_age), (200, 2000));
        assert_eq!(options(&conn(BRIDGE)).multicast_router, 1, "automatic unless asked");
        assert_eq!(vlan_filtering(&b), None);
    }

    #[test]
    fn vlan_tables_and_port_settings() {
        let b = conn(&format!("{BRIDGE}vlan-filtering=true\nvlan-default-pvid=5\nvlans=1 pvid untagged,10-20\n"));
        assert_eq!(vlan_filtering(&b), Some(5));
        assert_eq!(
            vlans(&b, "bridge"),
            vec![
                BridgeVlan { start: 1, end: 1, pvid: true, untagged: true },
                BridgeVlan { start: 10, end: 20, pvid: false, untagged: false }
            ]
        );
        assert_eq!(vlan_filtering(&conn(&format!("{BRIDGE}vlan-filtering=true\n"))), Some(1), "default PVID 1");
        let port = conn(
            "[connection]\nid=p\nuuid=61d6ef40-2a5e-4c8b-8f0e-1a2b3c4d5e6f\ntype=ethernet\ninterface-name=eth1\nmaster=br0\nslave-type=bridge\n\
             [bridge-port]\npath-cost=7\nhairpin-mode=true\nvlans=100 untagged\n",
        );
        assert_eq!(port_options(&port), BridgePortOptions { cost: 7, priority: 32, hairpin: true });
        let tagged = vlans(&port, "bridge-port");
        let v100 = BridgeVlan { start: 100, end: 100, pvid: false, untagged: true };
        assert_eq!(tagged, vec![v100]);
        // The bridge's default joins as the port's PVID unless covered.
        let pvid5 = BridgeVlan { start: 5, end: 5, pvid: true, untagged: true };
        assert_eq!(with_default_pvid(tagged.clone(), 5), vec![v100, pvid5]);
        assert_eq!(with_default_pvid(tagged.clone(), 100), vec![v100]);
        assert_eq!(with_default_pvid(tagged, 0), vec![v100]);
        let plain = conn(
            "[connection]\nid=q\nuuid=71d6ef40-2a5e-4c8b-8f0e-1a2b3c4d5e6f\ntype=ethernet\nmaster=br0\nslave-type=bridge\n",
        );
        assert_eq!(port_options(&plain), BridgePortOptions { cost: 100, priority: 32, hairpin: false });
    }
}
