//! One `Action` call as plain data: what the scripts' arguments and
//! environment are made of. Parsing is forgiving where NetworkManager's is
//! (a missing or mistyped entry is left out) and strict where a mistake
//! would run the wrong scripts (an unknown action is refused).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use zbus::{OwnedVariant, Variant};

/// Every action NetworkManager 1.42 sends (reference §5.1).
pub const ACTIONS: &[&str] = &[
    "pre-up",
    "up",
    "pre-down",
    "down",
    "vpn-pre-up",
    "vpn-up",
    "vpn-pre-down",
    "vpn-down",
    "hostname",
    "dhcp4-change",
    "dhcp6-change",
    "connectivity-change",
    "reapply",
];

/// NMDeviceState ACTIVATED.
pub const DEVICE_ACTIVATED: u32 = 100;

pub type VarDict = HashMap<String, OwnedVariant>;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Device {
    pub iface: String,
    pub ip_iface: String,
    pub state: u32,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Address {
    pub addr: Option<IpAddr>,
    pub prefix: u32,
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Route {
    pub dest: Option<IpAddr>,
    pub prefix: u32,
    pub next_hop: Option<IpAddr>,
    pub metric: u32,
}

/// An IP4Config/IP6Config in the dispatcher's legacy encoding.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IpConfig {
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub nameservers: Vec<IpAddr>,
    pub domains: Vec<String>,
    pub wins_servers: Vec<IpAddr>,
}

impl IpConfig {
    /// The gateway of the first address, as NetworkManager reports it.
    pub fn gateway(&self) -> Option<IpAddr> {
        self.addresses.first().and_then(|a| a.gateway)
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Request {
    pub action: String,
    pub connection_id: Option<String>,
    pub connection_uuid: Option<String>,
    pub connection_path: Option<String>,
    pub connection_filename: Option<String>,
    pub connection_external: bool,
    pub device: Option<Device>,
    pub proxy: Vec<(String, String)>,
    pub ip4: Option<IpConfig>,
    pub ip6: Option<IpConfig>,
    pub dhcp4: Vec<(String, String)>,
    pub dhcp6: Vec<(String, String)>,
    pub connectivity: String,
    pub vpn_ip_iface: String,
    pub vpn_proxy: Vec<(String, String)>,
    pub vpn_ip4: Option<IpConfig>,
    pub vpn_ip6: Option<IpConfig>,
}

/// The fifteen arguments of `Action`, as they come off the bus.
pub struct Wire {
    pub action: String,
    pub connection: HashMap<String, VarDict>,
    pub connection_properties: VarDict,
    pub device_properties: VarDict,
    pub device_proxy_properties: VarDict,
    pub device_ip4_config: VarDict,
    pub device_ip6_config: VarDict,
    pub device_dhcp4_config: VarDict,
    pub device_dhcp6_config: VarDict,
    pub connectivity_state: String,
    pub vpn_ip_iface: String,
    pub vpn_proxy_properties: VarDict,
    pub vpn_ip4_config: VarDict,
    pub vpn_ip6_config: VarDict,
}

/// A variant inside a variant is looked through once, as NetworkManager does.
fn inner<'a>(v: &'a Variant<'a>) -> &'a Variant<'a> {
    match v {
        Variant::Variant(i) => i.as_ref(),
        v => v,
    }
}

fn string(d: &VarDict, key: &str) -> Option<String> {
    match d.get(key).map(|v| inner(v)) {
        Some(Variant::Str(s)) => Some(s.as_str().to_owned()),
        Some(Variant::ObjectPath(p)) => Some(p.as_str().to_owned()),
        _ => None,
    }
}

fn get<'a, T>(d: &'a VarDict, key: &str) -> Option<T>
where
    T: TryFrom<Variant<'a>>,
{
    let v = d.get(key)?;
    let v = inner(v).try_clone().ok()?;
    T::try_from(v).ok()
}

fn v4(n: u32) -> Option<IpAddr> {
    // The legacy encoding keeps the address in network byte order in a u32.
    (n != 0).then(|| IpAddr::V4(Ipv4Addr::from(n.to_ne_bytes())))
}

fn v6(bytes: &[u8]) -> Option<IpAddr> {
    let octets: [u8; 16] = bytes.try_into().ok()?;
    let a = Ipv6Addr::from(octets);
    (!a.is_unspecified()).then_some(IpAddr::V6(a))
}

fn ip4_config(d: &VarDict) -> Option<IpConfig> {
    if d.is_empty() {
        return None;
    }
    let addresses = get::<Vec<Vec<u32>>>(d, "addresses")
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.len() >= 2)
        .map(|a| Address { addr: v4(a[0]), prefix: a[1], gateway: a.get(2).copied().and_then(v4) })
        .collect();
    let routes = get::<Vec<Vec<u32>>>(d, "routes")
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.len() >= 4)
        .map(|r| Route {
            dest: v4(r[0]).or(Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))),
            prefix: r[1],
            next_hop: v4(r[2]),
            metric: r[3],
        })
        .collect();
    let list = |key| get::<Vec<u32>>(d, key).unwrap_or_default().into_iter().filter_map(v4).collect();
    Some(IpConfig {
        addresses,
        routes,
        nameservers: list("nameservers"),
        domains: get::<Vec<String>>(d, "domains").unwrap_or_default(),
        wins_servers: list("wins-servers"),
    })
}

fn ip6_config(d: &VarDict) -> Option<IpConfig> {
    if d.is_empty() {
        return None;
    }
    let addresses = get::<Vec<(Vec<u8>, u32, Vec<u8>)>>(d, "addresses")
        .unwrap_or_default()
        .into_iter()
        .map(|(a, prefix, gw)| Address { addr: v6(&a), prefix, gateway: v6(&gw) })
        .collect();
    let routes = get::<Vec<(Vec<u8>, u32, Vec<u8>, u32)>>(d, "routes")
        .unwrap_or_default()
        .into_iter()
        .map(|(dest, prefix, nh, metric)| Route {
            dest: v6(&dest).or(Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED))),
            prefix,
            next_hop: v6(&nh),
            metric,
        })
        .collect();
    let nameservers = get::<Vec<Vec<u8>>>(d, "nameservers").unwrap_or_default().iter().filter_map(|a| v6(a)).collect();
    Some(IpConfig {
        addresses,
        routes,
        nameservers,
        domains: get::<Vec<String>>(d, "domains").unwrap_or_default(),
        wins_servers: vec![],
    })
}

/// String-valued entries, sorted by key (lease options, proxy settings).
fn strings(d: &VarDict) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = d.keys().filter_map(|k| string(d, k).map(|v| (k.clone(), v))).collect();
    out.sort();
    out
}

impl Request {
    pub fn from_wire(w: Wire) -> Result<Request, String> {
        if !ACTIONS.contains(&w.action.as_str()) {
            return Err(format!("unknown action {:?}", w.action));
        }
        let base = w.connection.get("connection");
        let device = (!w.device_properties.is_empty()).then(|| {
            let iface = string(&w.device_properties, "interface").unwrap_or_default();
            Device {
                ip_iface: string(&w.device_properties, "ip-interface")
                    .filter(|s| !s.is_empty())
                    .unwrap_or(iface.clone()),
                iface,
                state: get::<u32>(&w.device_properties, "state").unwrap_or_default(),
            }
        });
        Ok(Request {
            action: w.action,
            connection_id: base.and_then(|c| string(c, "id")),
            connection_uuid: base.and_then(|c| string(c, "uuid")),
            connection_path: string(&w.connection_properties, "path").filter(|p| p != "/"),
            connection_filename: string(&w.connection_properties, "filename").filter(|f| !f.is_empty()),
            connection_external: get::<bool>(&w.connection_properties, "external").unwrap_or(false),
            device,
            proxy: strings(&w.device_proxy_properties),
            ip4: ip4_config(&w.device_ip4_config),
            ip6: ip6_config(&w.device_ip6_config),
            dhcp4: strings(&w.device_dhcp4_config),
            dhcp6: strings(&w.device_dhcp6_config),
            connectivity: w.connectivity_state,
            vpn_ip_iface: w.vpn_ip_iface,
            vpn_proxy: strings(&w.vpn_proxy_properties),
            vpn_ip4: ip4_config(&w.vpn_ip4_config),
            vpn_ip6: ip6_config(&w.vpn_ip6_config),
        })
    }

    pub fn is_vpn(&self) -> bool {
        self.action.starts_with("vpn-")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn dict(entries: Vec<(&str, Variant<'static>)>) -> VarDict {
        entries.into_iter().map(|(k, v)| (k.to_owned(), OwnedVariant::try_from(v).expect("owned"))).collect()
    }

    pub fn wire(action: &str) -> Wire {
        Wire {
            action: action.into(),
            connection: HashMap::new(),
            connection_properties: VarDict::new(),
            device_properties: VarDict::new(),
            device_proxy_properties: VarDict::new(),
            device_ip4_config: VarDict::new(),
            device_ip6_config: VarDict::new(),
            device_dhcp4_config: VarDict::new(),
            device_dhcp6_config: VarDict::new(),
            connectivity_state: "FULL".into(),
            vpn_ip_iface: String::new(),
            vpn_proxy_properties: VarDict::new(),
            vpn_ip4_config: VarDict::new(),
            vpn_ip6_config: VarDict::new(),
        }
    }

    fn ne(a: [u8; 4]) -> u32 {
        u32::from_ne_bytes(a)
    }

    #[test]
    fn legacy_ip4_encoding_is_read() {
        let mut w = wire("up");
        w.device_ip4_config = dict(vec![
            ("addresses", Variant::from(vec![vec![ne([192, 0, 2, 5]), 24, ne([192, 0, 2, 1])]])),
            ("routes", Variant::from(vec![vec![ne([10, 1, 0, 0]), 16, ne([192, 0, 2, 254]), 50], vec![0, 0, 0, 7]])),
            ("nameservers", Variant::from(vec![ne([192, 0, 2, 53])])),
            ("domains", Variant::from(vec!["lab.test".to_string()])),
        ]);
        let r = Request::from_wire(w).expect("request");
        let ip4 = r.ip4.expect("ip4");
        assert_eq!(ip4.addresses.len(), 1);
        assert_eq!(ip4.addresses[0].addr, Some("192.0.2.5".parse().unwrap()));
        assert_eq!(ip4.gateway(), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(ip4.routes[0].next_hop, Some("192.0.2.254".parse().unwrap()));
        assert_eq!(ip4.routes[1].dest, Some("0.0.0.0".parse().unwrap()));
        assert_eq!(ip4.nameservers, vec!["192.0.2.53".parse::<IpAddr>().unwrap()]);
        assert_eq!(ip4.domains, vec!["lab.test"]);
    }

    #[test]
    fn mistyped_entries_are_left_out_and_unknown_actions_refused() {
        let mut w = wire("up");
        w.device_ip4_config = dict(vec![("addresses", Variant::from("not a list"))]);
        w.device_dhcp4_config = dict(vec![("ip_address", Variant::from("192.0.2.5")), ("odd", Variant::from(5u32))]);
        let r = Request::from_wire(w).expect("request");
        assert_eq!(r.ip4.expect("ip4").addresses, vec![]);
        assert_eq!(r.dhcp4, vec![("ip_address".to_string(), "192.0.2.5".to_string())]);
        assert!(Request::from_wire(wire("format-disk")).is_err());
    }
}
