//! DHCPv4 from nm-core's side: what to ask nm-dhcp-helper for (from the
//! profile), and what a lease puts in the kernel (addresses with lifetimes,
//! routes, DNS). Pure; the engine talks to the helper.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use nm_model::{Connection, Value};

use crate::ipconfig::{PlannedAddress, PlannedRoute, SCOPE_LINK, SCOPE_UNIVERSE};

/// `RTPROT_DHCP`: routes from a lease.
pub const PROTO_DHCP: u8 = 16;
/// NetworkManager's default `ipv4.dhcp-timeout`.
pub const DEFAULT_TIMEOUT: u32 = 45;
/// `ipv4.dad-timeout`'s maximum (ms).
pub const MAX_DAD_TIMEOUT: u32 = 30_000;

/// A lease as the helper reports it (already checked by the helper; the
/// types are checked again here, and anything malformed is left out).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lease {
    pub address: Option<Ipv4Addr>,
    pub prefix: u8,
    pub routers: Vec<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub mtu: Option<u32>,
    pub lease_time: Option<u32>,
    /// When the lease ends (seconds since the epoch), as the helper computed
    /// it when the lease was granted: a `rebind` event repeats the old lease.
    pub expiry: Option<u64>,
    /// Classless static routes (option 121): (destination, prefix, next hop).
    pub classless: Vec<(Ipv4Addr, u8, Ipv4Addr)>,
    /// Every option as DHCP4Config shows it.
    pub options: BTreeMap<String, String>,
}

fn ip4(v: &Value) -> Option<Ipv4Addr> {
    v.as_str()?.parse().ok()
}

impl Lease {
    /// The address lifetime left at `now` (seconds since the epoch); `None`
    /// for an infinite lease.
    pub fn lifetime(&self, now: u64) -> Option<u32> {
        match (self.lease_time, self.expiry) {
            (Some(u32::MAX), _) => None,
            (_, Some(end)) => Some(u32::try_from(end.saturating_sub(now)).unwrap_or(u32::MAX - 1)),
            (t, None) => t,
        }
    }

    /// From the helper's `a{sv}`.
    pub fn from_dict(d: &BTreeMap<String, Value>) -> Lease {
        let list = |k: &str| d.get(k).and_then(Value::as_str_list).unwrap_or_default();
        let u32_of = |k: &str| d.get(k).and_then(Value::as_i128).and_then(|n| u32::try_from(n).ok());
        Lease {
            address: d.get("address").and_then(ip4),
            prefix: u32_of("prefix").and_then(|p| u8::try_from(p).ok()).filter(|p| *p <= 32).unwrap_or(32),
            routers: list("routers").iter().filter_map(|s| s.parse().ok()).collect(),
            dns: list("dns").iter().filter_map(|s| s.parse().ok()).collect(),
            domain: d.get("domain-name").and_then(Value::as_str).map(String::from).filter(|s| !s.is_empty()),
            search: list("search"),
            mtu: u32_of("mtu").filter(|m| (576..=65535).contains(m)),
            lease_time: u32_of("lease-time"),
            expiry: d
                .get("options")
                .and_then(Value::as_str_map)
                .and_then(|o| o.get("expiry").and_then(|e| e.parse().ok())),
            classless: d
                .get("classless-routes")
                .and_then(Value::as_dict_list)
                .unwrap_or_default()
                .iter()
                .filter_map(|r| {
                    let dest: Ipv4Addr = r.get("dest")?.as_str()?.parse().ok()?;
                    let prefix = u8::try_from(r.get("prefix")?.as_i128()?).ok().filter(|p| *p <= 32)?;
                    let nh: Ipv4Addr = r.get("next-hop")?.as_str()?.parse().ok()?;
                    Some((dest, prefix, nh))
                })
                .collect(),
            options: d.get("options").and_then(Value::as_str_map).unwrap_or_default().into_iter().collect(),
        }
    }
}

/// What a lease adds to an activation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeasePlan {
    pub addresses: Vec<PlannedAddress>,
    pub routes: Vec<PlannedRoute>,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<String>,
    pub searches: Vec<String>,
    pub mtu: Option<u32>,
}

fn flag(conn: &Connection, p: &str) -> bool {
    conn.get("ipv4", p).and_then(Value::as_bool).unwrap_or(false)
}

/// The kernel configuration of a lease under a profile: the address with
/// the lease's lifetime, its prefix route, the default route (unless
/// `never-default`; classless routes replace the router option, RFC 3442),
/// DNS and search domains (unless `ignore-auto-dns`).
pub fn lease_plan(lease: &Lease, conn: &Connection, device_metric: u32, now: u64) -> LeasePlan {
    let mut plan = LeasePlan::default();
    let Some(addr) = lease.address else { return plan };
    let metric = crate::ipconfig::route_metric(conn, "ipv4", device_metric);
    plan.addresses.push(PlannedAddress { addr: IpAddr::V4(addr), prefix: lease.prefix, lifetime: lease.lifetime(now) });
    let table = crate::ipconfig::route_table(conn, "ipv4");
    let route = |dest: Ipv4Addr, prefix: u8, gateway: Option<Ipv4Addr>, protocol: u8| PlannedRoute {
        dest: IpAddr::V4(dest),
        prefix,
        gateway: gateway.map(IpAddr::V4),
        metric,
        table,
        protocol,
        scope: if gateway.is_none() { SCOPE_LINK } else { SCOPE_UNIVERSE },
        mtu: None,
        extra: Default::default(),
    };
    if lease.prefix < 32 {
        let mask = if lease.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(lease.prefix)) };
        plan.routes.push(route(
            Ipv4Addr::from(u32::from(addr) & mask),
            lease.prefix,
            None,
            crate::ipconfig::PROTO_KERNEL,
        ));
    }
    let ignore_routes = flag(conn, "ignore-auto-routes");
    let never_default = flag(conn, "never-default");
    if !ignore_routes {
        for (dest, prefix, nh) in &lease.classless {
            if *prefix == 0 && never_default {
                continue;
            }
            let gw = (!nh.is_unspecified()).then_some(*nh);
            plan.routes.push(route(*dest, *prefix, gw, PROTO_DHCP));
            if *prefix == 0 {
                plan.gateway = gw;
            }
        }
    }
    if lease.classless.is_empty()
        && !never_default
        && let Some(gw) = lease.routers.first()
    {
        plan.routes.push(route(Ipv4Addr::UNSPECIFIED, 0, Some(*gw), PROTO_DHCP));
        plan.gateway = Some(*gw);
    }
    if !flag(conn, "ignore-auto-dns") {
        plan.dns = lease.dns.iter().map(|d| d.to_string()).collect();
        plan.searches =
            if lease.search.is_empty() { lease.domain.iter().cloned().collect() } else { lease.search.clone() };
    }
    plan.mtu = lease.mtu;
    plan
}

/// `ipv4.dhcp-timeout` in seconds (0 or unset: NetworkManager's default).
pub fn timeout(conn: &Connection) -> u32 {
    match conn.get("ipv4", "dhcp-timeout").and_then(Value::as_i128) {
        Some(t) if t > 0 => u32::try_from(t).unwrap_or(u32::MAX),
        _ => DEFAULT_TIMEOUT,
    }
}

/// Whether the profile's IPv4 address is link-local (RFC 3927): the helper
/// probes for one in 169.254/16 instead of asking a server; no
/// DHCP4Config, no `dhcp4-change`.
pub fn is_link_local(conn: &Connection) -> bool {
    conn.get_str("ipv4", "method") == Some("link-local")
}

/// The flags byte of DHCP option 81 (RFC 4702: S 0x1, E 0x4, N 0x8) for
/// NetworkManager's `dhcp-hostname-flags` (fqdn-serv-update 0x1,
/// fqdn-encoded 0x2, fqdn-no-update 0x4, fqdn-clear-flags 0x8; none set:
/// serv-update and encoded).
pub fn fqdn_wire_flags(nm_flags: i128) -> u32 {
    let f = if nm_flags & 0xf == 0 { 0x3 } else { nm_flags };
    if f & 0x8 != 0 {
        return 0;
    }
    (if f & 0x1 != 0 { 0x1 } else { 0 }) | (if f & 0x2 != 0 { 0x4 } else { 0 }) | (if f & 0x4 != 0 { 0x8 } else { 0 })
}

/// Whether an IPv4 link-local address comes beside what the method gives
/// (`ipv4.link-local=enabled`, NetworkManager 1.40): with `method=auto`,
/// `manual` or `shared` it is a transaction of its own next to the rest;
/// `method=link-local` has it as its method, `disabled` none at all.
pub fn link_local_beside(conn: &Connection) -> bool {
    const ENABLED: i128 = 3;
    conn.get("ipv4", "link-local").and_then(Value::as_i128) == Some(ENABLED)
        && matches!(conn.get_str("ipv4", "method"), Some("auto" | "manual" | "shared"))
}

/// The `Start` options of an IPv4 link-local transaction.
pub fn link_local_options(conn: &Connection) -> BTreeMap<String, Value> {
    let mut o = BTreeMap::new();
    o.insert("family".into(), Value::Str("ipv4ll".into()));
    // The probe time: ipv4.dad-timeout when set, else the helper's.
    if let Some(t) = conn.get("ipv4", "dad-timeout").and_then(Value::as_i128).filter(|t| *t > 0) {
        let ms = u32::try_from(t).unwrap_or(u32::MAX).min(MAX_DAD_TIMEOUT);
        o.insert("acd-timeout".into(), Value::UInt32(ms));
    }
    o
}

/// The `Start` options for a profile.
pub fn start_options(conn: &Connection, system_hostname: &str) -> BTreeMap<String, Value> {
    if is_link_local(conn) {
        return link_local_options(conn);
    }
    let mut o = BTreeMap::new();
    let s = |p: &str| conn.get_str("ipv4", p).filter(|v| !v.is_empty()).map(String::from);
    if let Some(uuid) = conn.uuid() {
        o.insert("uuid".into(), Value::Str(uuid.into()));
    }
    let send_hostname = conn.get("ipv4", "dhcp-send-hostname").and_then(Value::as_bool).unwrap_or(true);
    o.insert("send-hostname".into(), Value::Bool(send_hostname));
    // NetworkManager sends the profile's dhcp-hostname, else the system's
    // (without its domain), unless it is unset or "localhost".
    let hostname = s("dhcp-hostname").or_else(|| {
        let short = system_hostname.split('.').next().unwrap_or("").trim();
        (!short.is_empty() && short != "localhost").then(|| short.to_string())
    });
    // `ipv4.dhcp-fqdn` goes as option 81 instead (the two are exclusive),
    // with the flags `dhcp-hostname-flags` asks (NetworkManager's default
    // for IPv4: the server updates DNS, the name is wire-encoded).
    if let (true, Some(fqdn)) = (send_hostname, s("dhcp-fqdn")) {
        o.insert("fqdn".into(), Value::Str(fqdn));
        let flags = conn.get("ipv4", "dhcp-hostname-flags").and_then(Value::as_i128).unwrap_or(0);
        o.insert("fqdn-flags".into(), Value::UInt32(fqdn_wire_flags(flags)));
    } else if let (true, Some(h)) = (send_hostname, hostname) {
        o.insert("hostname".into(), Value::Str(h));
    }
    o.insert("timeout".into(), Value::UInt32(timeout(conn)));
    // Address conflict detection (RFC 5227) before a lease is taken: only
    // when ipv4.dad-timeout asks for it (-1, NetworkManager's default
    // without configuration, means off, as 0 does).
    if let Some(t) = conn.get("ipv4", "dad-timeout").and_then(Value::as_i128).filter(|t| *t > 0) {
        let ms = u32::try_from(t).unwrap_or(u32::MAX).min(MAX_DAD_TIMEOUT);
        o.insert("acd-timeout".into(), Value::UInt32(ms));
    }
    if let Some(v) = s("dhcp-vendor-class-identifier") {
        o.insert("vendor-class".into(), Value::Str(v));
    }
    let reject = conn.get("ipv4", "dhcp-reject-servers").and_then(Value::as_str_list).unwrap_or_default();
    if !reject.is_empty() {
        o.insert("reject-servers".into(), Value::str_list(reject));
    }
    // A client-id given as hex bytes ("01:02:…") goes as bytes; "mac" and
    // unset leave the helper's default (type 1 + MAC, as NetworkManager).
    if let Some(id) = s("dhcp-client-id").filter(|id| id.contains(':')) {
        let bytes: Option<Vec<u8>> = id.split(':').map(|b| u8::from_str_radix(b, 16).ok()).collect();
        if let Some(b) = bytes {
            o.insert("client-id".into(), Value::Bytes(b));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use nm_model::{keyfile, validate};

    fn conn(ipv4: &str) -> Connection {
        validate::normalize_and_validate(
            keyfile::parse(&format!(
                "[connection]\nid=d\nuuid=8fb923ad-bd8a-48c8-b85e-737628bb673a\ntype=ethernet\n\n[ipv4]\nmethod=auto\n{ipv4}\n"
            ))
            .unwrap(),
        )
        .unwrap()
    }

    fn lease() -> Lease {
        Lease {
            address: Some("198.18.0.150".parse().unwrap()),
            prefix: 24,
            routers: vec!["198.18.0.1".parse().unwrap()],
            dns: vec!["198.18.0.1".parse().unwrap()],
            domain: Some("lab.test".into()),
            lease_time: Some(120),
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_becomes_address_routes_and_dns() {
        let p = lease_plan(&lease(), &conn(""), 100, 0);
        assert_eq!(p.addresses[0].lifetime, Some(120));
        assert!(
            p.routes
                .iter()
                .any(|r| r.prefix == 0 && r.gateway == Some("198.18.0.1".parse().unwrap()) && r.protocol == PROTO_DHCP)
        );
        assert!(p.routes.iter().any(|r| r.prefix == 24 && r.scope == SCOPE_LINK && r.metric == 100));
        assert_eq!(p.dns, vec!["198.18.0.1"]);
        assert_eq!(p.searches, vec!["lab.test"]);
    }

    #[test]
    fn lifetimes_count_down_to_the_expiry() {
        let mut l = lease();
        assert_eq!(l.lifetime(1000), Some(120));
        l.expiry = Some(1100);
        assert_eq!(l.lifetime(1000), Some(100), "a repeated (rebind) lease keeps its end");
        assert_eq!(l.lifetime(2000), Some(0));
        l.lease_time = Some(u32::MAX);
        assert_eq!(l.lifetime(1000), None, "infinite");
    }

    #[test]
    fn profile_switches_apply() {
        let p = lease_plan(&lease(), &conn("never-default=true\nignore-auto-dns=true\n"), 100, 0);
        assert!(p.routes.iter().all(|r| r.prefix != 0));
        assert!(p.dns.is_empty() && p.searches.is_empty());
        let p = lease_plan(&lease(), &conn("route-metric=50\n"), 100, 0);
        assert!(!p.routes.is_empty() && p.routes.iter().all(|r| r.metric == 50), "the profile's metric: {p:?}");
    }

    #[test]
    fn classless_routes_replace_the_router_option() {
        let mut l = lease();
        l.classless = vec![
            ("10.0.0.0".parse().unwrap(), 8, "198.18.0.2".parse().unwrap()),
            ("0.0.0.0".parse().unwrap(), 0, "198.18.0.3".parse().unwrap()),
        ];
        let p = lease_plan(&l, &conn(""), 100, 0);
        let defaults: Vec<_> = p.routes.iter().filter(|r| r.prefix == 0).collect();
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults[0].gateway, Some("198.18.0.3".parse().unwrap()));
    }

    #[test]
    fn start_options_follow_the_profile() {
        let o = start_options(&conn("dhcp-timeout=10\ndhcp-client-id=01:aa:bb\n"), "host.example.com");
        assert_eq!(o["timeout"], Value::UInt32(10));
        assert_eq!(o["hostname"], Value::Str("host".into()));
        assert_eq!(o["client-id"], Value::Bytes(vec![1, 0xaa, 0xbb]));
        let o = start_options(&conn("dhcp-send-hostname=false\n"), "host");
        assert!(!o.contains_key("hostname"));
        assert_eq!(o["timeout"], Value::UInt32(DEFAULT_TIMEOUT));
    }

    #[test]
    fn link_local_comes_beside_the_method_only_when_enabled() {
        let beside = |ipv4: &str| link_local_beside(&conn(ipv4));
        assert!(beside("method=auto\nlink-local=3\n"));
        assert!(beside("method=manual\naddress1=192.0.2.5/24\nlink-local=3\n"));
        assert!(!beside("method=auto\n"), "default: as the method says");
        assert!(!beside("method=auto\nlink-local=1\n"));
        assert!(!beside("method=link-local\nlink-local=3\n"), "the method's own");
        // (method=disabled with link-local=3 is refused by validation.)
        let o = link_local_options(&conn("method=auto\nlink-local=3\ndad-timeout=500\n"));
        assert_eq!(o["family"], Value::Str("ipv4ll".into()));
        assert_eq!(o["acd-timeout"], Value::UInt32(500));
    }

    #[test]
    fn dad_timeout_asks_for_conflict_detection() {
        let acd = |ipv4: &str| start_options(&conn(ipv4), "host").get("acd-timeout").cloned();
        assert_eq!(acd("dad-timeout=300\n"), Some(Value::UInt32(300)));
        assert_eq!(acd(""), None, "-1 (default) is off");
        assert_eq!(acd("dad-timeout=-1\n"), None);
        assert_eq!(acd("dad-timeout=0\n"), None);
        assert_eq!(acd("dad-timeout=90000\n"), Some(Value::UInt32(MAX_DAD_TIMEOUT)));
    }

    #[test]
    fn an_fqdn_goes_as_option_81_with_networkmanagers_flags() {
        let o = start_options(&conn("dhcp-fqdn=box.lab.test\n"), "host");
        assert_eq!(o["fqdn"], Value::Str("box.lab.test".into()));
        assert_eq!(o["fqdn-flags"], Value::UInt32(0x5), "S and E by default");
        assert!(!o.contains_key("hostname"), "option 12 is not sent with it");
        let o = start_options(&conn("dhcp-fqdn=box.lab.test\ndhcp-hostname-flags=4\n"), "host");
        assert_eq!(o["fqdn-flags"], Value::UInt32(0x8), "no-update alone");
        assert_eq!(fqdn_wire_flags(0x8 | 0x1), 0, "clear-flags");
        let o = start_options(&conn("dhcp-fqdn=box.lab.test\ndhcp-send-hostname=false\n"), "host");
        assert!(!o.contains_key("fqdn"));
    }
}
