//! Software devices: the links that `bridge`, `macvlan`, `vxlan`, `tun` and
//! `veth` profiles make. NetworkManager creates such a link when its profile
//! activates and deletes it when the profile goes down; this module says
//! what to create. Pure (the engine resolves parents and talks to the
//! kernel).

use std::net::IpAddr;

use nm_model::{Connection, Value};
use nm_platform::{MacvlanOptions, NewLink, TunOptions, VxlanOptions, macvlan_mode};

use crate::bridge;
use crate::device::DeviceType;

/// The device type a software profile makes; `None` for other profiles.
pub fn kind(conn: &Connection) -> Option<DeviceType> {
    kind_of_type(conn.connection_type()?)
}

/// The device type profiles of `connection.type` `ctype` make, if they
/// make one.
pub fn kind_of_type(ctype: &str) -> Option<DeviceType> {
    match ctype {
        "bridge" => Some(DeviceType::Bridge),
        "macvlan" => Some(DeviceType::Macvlan),
        "vxlan" => Some(DeviceType::Vxlan),
        "tun" => Some(DeviceType::Tun),
        "veth" => Some(DeviceType::Veth),
        _ => None,
    }
}

/// The interface a software profile makes; `None` for another type or a
/// profile without `connection.interface-name` (nothing to create).
pub fn interface(conn: &Connection) -> Option<&str> {
    kind(conn)?;
    conn.get_str("connection", "interface-name").filter(|n| !n.is_empty())
}

/// The parent a `macvlan` or `vxlan` profile names (`X.parent`: an
/// interface name or a profile's uuid).
pub fn parent(conn: &Connection) -> Option<&str> {
    let setting = match kind(conn)? {
        DeviceType::Macvlan => "macvlan",
        DeviceType::Vxlan => "vxlan",
        _ => return None,
    };
    conn.get_str(setting, "parent").filter(|p| !p.is_empty())
}

/// NetworkManager's `NMSettingMacvlanMode` as the kernel's mode.
fn macvlan_mode(nm: i128) -> Option<u32> {
    Some(match nm {
        1 => macvlan_mode::VEPA,
        2 => macvlan_mode::BRIDGE,
        3 => macvlan_mode::PRIVATE,
        4 => macvlan_mode::PASSTHRU,
        5 => macvlan_mode::SOURCE,
        _ => return None,
    })
}

/// The kernel's macvlan mode in NetworkManager's words (`.Device.Macvlan`'s `Mode`).
pub fn macvlan_mode_name(kernel: u32) -> &'static str {
    match kernel {
        macvlan_mode::VEPA => "vepa",
        macvlan_mode::BRIDGE => "bridge",
        macvlan_mode::PRIVATE => "private",
        macvlan_mode::PASSTHRU => "passthru",
        macvlan_mode::SOURCE => "source",
        _ => "unknown",
    }
}

/// What to create for a software profile. `parent_index` is the index of
/// the parent link the profile names (`None`: there is none). Errors say
/// what in the profile stands in the way.
pub fn new_link(conn: &Connection, parent_index: Option<u32>) -> Result<NewLink, String> {
    let num = |setting: &str, key: &str| conn.get(setting, key).and_then(Value::as_i128);
    let flag =
        |setting: &str, key: &str, default: bool| conn.get(setting, key).and_then(Value::as_bool).unwrap_or(default);
    let parent_needed = |setting: &str| match (parent(conn), parent_index) {
        (_, Some(i)) => Ok(Some(i)),
        (Some(p), None) => Err(format!("{setting}.parent: parent device '{p}' not found")),
        (None, None) => Ok(None),
    };
    match kind(conn) {
        Some(DeviceType::Bridge) => Ok(NewLink::Bridge(bridge::options(conn))),
        Some(DeviceType::Macvlan) => {
            if flag("macvlan", "tap", false) {
                return Err("macvlan.tap: macvtap devices are not supported".into());
            }
            let nm_mode = num("macvlan", "mode").unwrap_or(0);
            let mode = macvlan_mode(nm_mode).ok_or_else(|| format!("macvlan.mode: unsupported mode {nm_mode}"))?;
            let parent = parent_needed("macvlan")?
                .ok_or_else(|| "macvlan.parent: a macvlan needs a parent device".to_string())?;
            Ok(NewLink::Macvlan(MacvlanOptions { parent, mode, promiscuous: flag("macvlan", "promiscuous", true) }))
        }
        Some(DeviceType::Vxlan) => {
            let ip = |key: &str| -> Result<Option<IpAddr>, String> {
                match conn.get_str("vxlan", key).filter(|s| !s.is_empty()) {
                    None => Ok(None),
                    Some(s) => s.parse().map(Some).map_err(|_| format!("vxlan.{key}: '{s}' is not an IP address")),
                }
            };
            let (remote, local) = (ip("remote")?, ip("local")?);
            if let (Some(r), Some(l)) = (remote, local)
                && r.is_ipv4() != l.is_ipv4()
            {
                return Err("vxlan.local: not of the same family as vxlan.remote".into());
            }
            let ranged = |key: &str, default: i128, max: i128| -> Result<i128, String> {
                let v = num("vxlan", key).unwrap_or(default);
                if (0..=max).contains(&v) { Ok(v) } else { Err(format!("vxlan.{key}: {v} is out of range <0-{max}>")) }
            };
            let id = ranged("id", 0, 0x00ff_ffff)?;
            let port = |key: &str, default: i128| ranged(key, default, 65535).map(|v| v as u16);
            let source_ports = (port("source-port-min", 0)?, port("source-port-max", 0)?);
            if source_ports.0 > source_ports.1 {
                return Err("vxlan.source-port-min: greater than vxlan.source-port-max".into());
            }
            Ok(NewLink::Vxlan(VxlanOptions {
                id: id as u32,
                remote,
                local,
                parent: parent_needed("vxlan")?,
                port: port("destination-port", 8472)?,
                source_ports,
                tos: ranged("tos", 0, 255)? as u8,
                ttl: ranged("ttl", 0, 255)? as u8,
                learning: flag("vxlan", "learning", true),
                ageing: ranged("ageing", 300, i128::from(u32::MAX))? as u32,
                limit: ranged("limit", 0, i128::from(u32::MAX))? as u32,
                proxy: flag("vxlan", "proxy", false),
                rsc: flag("vxlan", "rsc", false),
                l2miss: flag("vxlan", "l2-miss", false),
                l3miss: flag("vxlan", "l3-miss", false),
            }))
        }
        Some(DeviceType::Tun) => {
            let tap = match num("tun", "mode").unwrap_or(1) {
                1 => false,
                2 => true,
                m => return Err(format!("tun.mode: unsupported mode {m}")),
            };
            let id = |key: &str| -> Result<Option<u32>, String> {
                match conn.get_str("tun", key).map(str::trim).filter(|s| !s.is_empty() && *s != "-1") {
                    None => Ok(None),
                    Some(s) => s.parse().map(Some).map_err(|_| format!("tun.{key}: '{s}' is not a number")),
                }
            };
            Ok(NewLink::Tun(TunOptions {
                tap,
                owner: id("owner")?,
                group: id("group")?,
                pi: flag("tun", "pi", false),
                vnet_hdr: flag("tun", "vnet-hdr", false),
                multi_queue: flag("tun", "multi-queue", false),
            }))
        }
        Some(DeviceType::Veth) => match conn.get_str("veth", "peer").filter(|p| !p.is_empty()) {
            Some(peer) => Ok(NewLink::Veth { peer: peer.to_string() }),
            None => Err("veth.peer: a veth needs the name of its peer".into()),
        },
        _ => Err("not a software device's profile".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nm_model::{keyfile, validate};

    fn conn(text: &str) -> Connection {
        validate::normalize_and_validate(keyfile::parse(text).unwrap()).unwrap()
    }

    fn profile(kind: &str, setting: &str) -> Connection {
        conn(&format!(
            "[connection]\nid=x\nuuid=7f3c5a54-93a4-4c1f-9a63-0e1b8c2d4f10\ntype={kind}\ninterface-name=sw0\n\n[{kind}]\n{setting}\n"
        ))
    }

    #[test]
    fn a_macvlan_needs_its_parent_and_a_mode() {
        let m = profile("macvlan", "parent=eth0\nmode=2\npromiscuous=false");
        assert_eq!((kind(&m), interface(&m), parent(&m)), (Some(DeviceType::Macvlan), Some("sw0"), Some("eth0")));
        assert_eq!(
            new_link(&m, Some(7)),
            Ok(NewLink::Macvlan(MacvlanOptions { parent: 7, mode: macvlan_mode::BRIDGE, promiscuous: false }))
        );
        assert_eq!(new_link(&m, None), Err("macvlan.parent: parent device 'eth0' not found".to_string()));
        let tap = profile("macvlan", "parent=eth0\nmode=2\ntap=true");
        assert!(new_link(&tap, Some(7)).unwrap_err().contains("macvtap"));
        assert_eq!(macvlan_mode_name(macvlan_mode::PASSTHRU), "passthru");
    }

    #[test]
    fn a_veth_needs_its_peer_and_runs_on_veth_devices() {
        let v = profile("veth", "peer=sw1");
        assert_eq!((kind(&v), interface(&v)), (Some(DeviceType::Veth), Some("sw0")));
        assert_eq!(new_link(&v, None), Ok(NewLink::Veth { peer: "sw1".into() }));
        // Validation refuses a veth without its peer; one that got past it
        // is still not made.
        let text = "[connection]\nid=x\nuuid=7f3c5a54-93a4-4c1f-9a63-0e1b8c2d4f10\ntype=veth\ninterface-name=sw0\n";
        assert!(validate::normalize_and_validate(keyfile::parse(text).unwrap()).is_err());
        assert!(new_link(&keyfile::parse(text).unwrap(), None).unwrap_err().starts_with("veth.peer:"));
        assert!(DeviceType::Veth.takes("veth") && DeviceType::Veth.takes("802-3-ethernet"));
        assert!(!DeviceType::Ethernet.takes("veth"));
    }

    #[test]
    fn a_vxlan_takes_the_profiles_settings_and_networkmanagers_defaults() {
        let v =
            profile("vxlan", "id=42\nremote=192.0.2.2\nlocal=192.0.2.1\nsource-port-min=1000\nsource-port-max=2000");
        let Ok(NewLink::Vxlan(o)) = new_link(&v, None) else { panic!("{:?}", new_link(&v, None)) };
        assert_eq!((o.id, o.remote, o.local), (42, "192.0.2.2".parse().ok(), "192.0.2.1".parse().ok()));
        assert_eq!((o.port, o.source_ports, o.learning, o.ageing, o.parent), (8472, (1000, 2000), true, 300, None));
        let mixed = profile("vxlan", "id=1\nremote=2001:db8::2\nlocal=192.0.2.1");
        assert!(new_link(&mixed, None).unwrap_err().contains("same family"));
        // (An address that is none never gets this far: the profile is refused.)
        let text = "[connection]\nid=x\nuuid=7f3c5a54-93a4-4c1f-9a63-0e1b8c2d4f10\ntype=vxlan\ninterface-name=v\n\n[vxlan]\nid=1\nremote=nowhere\n";
        assert!(validate::normalize_and_validate(keyfile::parse(text).unwrap()).is_err());
    }

    #[test]
    fn a_tun_profile_is_tun_or_tap_with_an_owner() {
        let t = profile("tun", "mode=2\nowner=1000\nvnet-hdr=true");
        assert_eq!(
            new_link(&t, None),
            Ok(NewLink::Tun(TunOptions {
                tap: true,
                owner: Some(1000),
                group: None,
                pi: false,
                vnet_hdr: true,
                multi_queue: false
            }))
        );
        let plain = profile("tun", "mode=1");
        assert!(matches!(new_link(&plain, None), Ok(NewLink::Tun(TunOptions { tap: false, owner: None, .. }))));
        let eth =
            conn("[connection]\nid=e\nuuid=4f0e9a39-33d1-4c77-8f0c-6d4b2f9d1e10\ntype=ethernet\ninterface-name=e0\n");
        assert_eq!((kind(&eth), interface(&eth)), (None, None));
    }
}
