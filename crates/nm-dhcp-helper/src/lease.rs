//! A lease as the helper hands it to nm-core: the values it may apply (all
//! checked by [`crate::packet`]), NetworkManager's `DHCP4Config.Options` view,
//! the `a{sv}` of the `Event` signal, and the lease file.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::Duration;

use zbus::{OwnedVariant, Variant};

/// `lease-time` of a lease that never expires (RFC 2131 §3.3).
pub const INFINITE: u32 = u32::MAX;

/// A classless static route (option 121).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dest: Ipv4Addr,
    pub prefix: u8,
    pub next_hop: Ipv4Addr,
}

/// A bound lease. Every string in it passed [`crate::sanitize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub server_id: Ipv4Addr,
    /// Seconds; [`INFINITE`] for an infinite lease.
    pub lease_time: u32,
    /// T1 and T2 in seconds (RFC 2131 defaults when the server sent none).
    pub renewal_time: u32,
    pub rebinding_time: u32,
    pub routers: Vec<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    /// One or more domain names, separated by single spaces.
    pub domain_name: Option<String>,
    pub search: Vec<String>,
    pub hostname: Option<String>,
    pub mtu: Option<u16>,
    pub classless_routes: Vec<Route>,
    pub ntp: Vec<Ipv4Addr>,
    /// Every option of the ACK in NetworkManager's names and text forms
    /// (`subnet_mask`, `routers`, …), without the ones that depend on the
    /// client (`ip_address`, `expiry`, `requested_*`, the client id).
    pub options: BTreeMap<String, String>,
    /// When the ACK arrived, on the machine's clock.
    pub acquired: Duration,
}

impl Lease {
    /// Whether the lease never expires.
    pub fn infinite(&self) -> bool {
        self.lease_time == INFINITE
    }
}

/// What the client adds to the options view: the requested options, the
/// client id it sent, and the wall-clock expiry.
#[derive(Debug, Clone, Default)]
pub struct ClientView {
    /// NetworkManager names of the options in the parameter request list.
    pub requested: Vec<&'static str>,
    pub client_id: Vec<u8>,
    /// Unix time the lease expires at (`None`: infinite).
    pub expiry: Option<u64>,
}

fn owned(v: Variant<'_>) -> Option<OwnedVariant> {
    OwnedVariant::try_from(v).ok()
}

fn strings(list: &[Ipv4Addr]) -> Vec<String> {
    list.iter().map(Ipv4Addr::to_string).collect()
}

/// Hex bytes joined by colons, as NetworkManager shows client ids.
pub fn hex_colon(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The full options view (`DHCP4Config.Options` as NetworkManager fills it).
pub fn options_view(lease: &Lease, client: &ClientView) -> BTreeMap<String, String> {
    let mut out = lease.options.clone();
    out.insert("ip_address".into(), lease.address.to_string());
    if !client.client_id.is_empty() {
        out.insert("dhcp_client_identifier".into(), hex_colon(&client.client_id));
    }
    if let Some(expiry) = client.expiry {
        out.insert("expiry".into(), expiry.to_string());
    }
    for name in &client.requested {
        out.insert(format!("requested_{name}"), "1".into());
    }
    out
}

/// The `a{sv}` of the `Event` signal (an empty dict for no lease).
pub fn to_dbus(lease: Option<&Lease>, client: &ClientView) -> HashMap<String, OwnedVariant> {
    let mut d = HashMap::new();
    let Some(l) = lease else {
        return d;
    };
    let mut put = |k: &str, v: Variant<'_>| {
        if let Some(v) = owned(v) {
            d.insert(k.to_owned(), v);
        }
    };
    put("address", Variant::from(l.address.to_string()));
    put("prefix", Variant::from(u32::from(l.prefix)));
    put("routers", Variant::from(strings(&l.routers)));
    put("dns", Variant::from(strings(&l.dns)));
    if let Some(v) = &l.domain_name {
        put("domain-name", Variant::from(v.clone()));
    }
    put("search", Variant::from(l.search.clone()));
    if let Some(v) = &l.hostname {
        put("hostname", Variant::from(v.clone()));
    }
    if let Some(mtu) = l.mtu {
        put("mtu", Variant::from(u32::from(mtu)));
    }
    put("lease-time", Variant::from(l.lease_time));
    put("renewal-time", Variant::from(l.renewal_time));
    put("rebinding-time", Variant::from(l.rebinding_time));
    put("server-id", Variant::from(l.server_id.to_string()));
    let routes: Vec<HashMap<String, OwnedVariant>> = l
        .classless_routes
        .iter()
        .map(|r| {
            let mut m = HashMap::new();
            for (k, v) in [
                ("dest", Variant::from(r.dest.to_string())),
                ("prefix", Variant::from(u32::from(r.prefix))),
                ("next-hop", Variant::from(r.next_hop.to_string())),
            ] {
                if let Some(v) = owned(v) {
                    m.insert(k.to_owned(), v);
                }
            }
            m
        })
        .collect();
    put("classless-routes", Variant::from(routes));
    put("ntp", Variant::from(strings(&l.ntp)));
    let opts: HashMap<String, String> = options_view(l, client).into_iter().collect();
    put("options", Variant::from(opts));
    d
}

/// The lease file: `KEY=value` lines, written by us (0600) and read back only
/// for INIT-REBOOT.
pub fn file_text(lease: &Lease, client: &ClientView) -> String {
    let mut s = String::from("# nm-dhcp-helper lease; written by the helper, read back for INIT-REBOOT\n");
    s.push_str(&format!("ADDRESS={}\nPREFIX={}\nSERVER_ID={}\n", lease.address, lease.prefix, lease.server_id));
    s.push_str(&format!("LEASE_TIME={}\n", lease.lease_time));
    if let Some(expiry) = client.expiry {
        s.push_str(&format!("EXPIRY={expiry}\n"));
    }
    for (k, v) in options_view(lease, client) {
        if !k.starts_with("requested_") {
            s.push_str(&format!("OPTION_{k}={v}\n"));
        }
    }
    s
}

/// What INIT-REBOOT needs from a lease file: the address and its expiry
/// (`None`: infinite). Anything odd makes the file worthless, not an error.
pub fn parse_file(text: &str) -> Option<(Ipv4Addr, Option<u64>)> {
    let mut address = None;
    let mut expiry = None;
    let mut infinite = false;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "ADDRESS" => address = v.parse::<Ipv4Addr>().ok(),
            "EXPIRY" => expiry = v.parse::<u64>().ok(),
            "LEASE_TIME" => infinite = v.parse::<u32>().ok() == Some(INFINITE),
            _ => {}
        }
    }
    let address = address.filter(|a| crate::packet::usable_address(*a))?;
    if infinite {
        return Some((address, None));
    }
    Some((address, Some(expiry?)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Lease {
        let mut options = BTreeMap::new();
        options.insert("routers".into(), "198.18.0.1".into());
        Lease {
            address: Ipv4Addr::new(198, 18, 0, 150),
            prefix: 24,
            server_id: Ipv4Addr::new(198, 18, 0, 1),
            lease_time: 3600,
            renewal_time: 1800,
            rebinding_time: 3150,
            routers: vec![Ipv4Addr::new(198, 18, 0, 1)],
            dns: vec![Ipv4Addr::new(198, 18, 0, 1)],
            domain_name: Some("lab.test".into()),
            search: vec!["lab.test".into()],
            hostname: None,
            mtu: Some(1400),
            classless_routes: vec![Route {
                dest: Ipv4Addr::new(10, 0, 0, 0),
                prefix: 8,
                next_hop: Ipv4Addr::new(198, 18, 0, 2),
            }],
            ntp: vec![],
            options,
            acquired: Duration::ZERO,
        }
    }

    #[test]
    fn dbus_dict_has_the_contract_keys() {
        let client = ClientView { requested: vec!["subnet_mask"], client_id: vec![1, 2, 3], expiry: Some(99) };
        let d = to_dbus(Some(&sample()), &client);
        for k in [
            "address",
            "prefix",
            "routers",
            "dns",
            "domain-name",
            "search",
            "mtu",
            "lease-time",
            "renewal-time",
            "rebinding-time",
            "server-id",
            "classless-routes",
            "ntp",
            "options",
        ] {
            assert!(d.contains_key(k), "{k}");
        }
        assert!(!d.contains_key("hostname"));
        assert_eq!(d["prefix"].value_signature().to_string(), "u");
        assert_eq!(d["routers"].value_signature().to_string(), "as");
        assert_eq!(d["classless-routes"].value_signature().to_string(), "aa{sv}");
        assert_eq!(d["options"].value_signature().to_string(), "a{ss}");
        let view = options_view(&sample(), &client);
        assert_eq!(view["ip_address"], "198.18.0.150");
        assert_eq!(view["dhcp_client_identifier"], "01:02:03");
        assert_eq!(view["expiry"], "99");
        assert_eq!(view["requested_subnet_mask"], "1");
        assert!(to_dbus(None, &client).is_empty());
    }

    #[test]
    fn lease_file_round_trip() {
        let client = ClientView { expiry: Some(1_700_000_000), ..Default::default() };
        let text = file_text(&sample(), &client);
        assert_eq!(parse_file(&text), Some((Ipv4Addr::new(198, 18, 0, 150), Some(1_700_000_000))));
        let mut inf = sample();
        inf.lease_time = INFINITE;
        let text = file_text(&inf, &ClientView::default());
        assert_eq!(parse_file(&text), Some((Ipv4Addr::new(198, 18, 0, 150), None)));
        assert_eq!(parse_file("ADDRESS=0.0.0.0\nEXPIRY=5\n"), None);
        assert_eq!(parse_file("ADDRESS=1.2.3.4\n"), None);
        assert_eq!(parse_file("garbage"), None);
    }
}
