//! What a profile asks of the kernel: addresses, routes, MTU, MAC and DNS,
//! computed from the profile and the device's route metric. Pure; the engine
//! applies the plan through nm-platform.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nm_model::text::parse_mac;
use nm_model::{Connection, Value};

/// `RTPROT_KERNEL`: NetworkManager marks prefix routes of its addresses so.
pub const PROTO_KERNEL: u8 = 2;
/// `RTPROT_STATIC`: routes nm-core adds from a profile.
pub const PROTO_STATIC: u8 = 4;
pub const TABLE_MAIN: u32 = 254;
pub const SCOPE_UNIVERSE: u8 = 0;
pub const SCOPE_LINK: u8 = 253;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlannedAddress {
    pub addr: IpAddr,
    pub prefix: u8,
    /// Valid and preferred lifetime in seconds (a DHCP lease); `None`: forever.
    pub lifetime: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlannedRoute {
    pub dest: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub metric: u32,
    pub table: u32,
    pub protocol: u8,
    pub scope: u8,
    pub mtu: Option<u32>,
    /// A profile route's other attributes (`type`, `src`, `onlink`, TCP).
    pub extra: RouteExtras,
}

/// The route attributes of NetworkManager's `ipvX.routes` beyond metric,
/// table and MTU.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteExtras {
    /// `RTN_*`; 0 is unicast.
    pub kind: u8,
    pub src: Option<IpAddr>,
    pub onlink: bool,
    pub tcp: nm_platform::TcpMetrics,
}

/// The route types a profile may name (`type=`), as `RTN_*`.
pub fn route_type(name: &str) -> Option<u8> {
    Some(match name {
        "unicast" => nm_platform::RTN_UNICAST,
        "local" => nm_platform::RTN_LOCAL,
        "blackhole" => nm_platform::RTN_BLACKHOLE,
        "unreachable" => nm_platform::RTN_UNREACHABLE,
        "prohibit" => nm_platform::RTN_PROHIBIT,
        "throw" => nm_platform::RTN_THROW,
        _ => return None,
    })
}

/// A profile route's attributes from its `route-data` entry.
fn route_extras(r: &std::collections::BTreeMap<String, Value>, family: &str) -> RouteExtras {
    let get_u32 = |k: &str| r.get(k).and_then(Value::as_i128).and_then(|n| u32::try_from(n).ok());
    let get_bool = |k: &str| r.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut tcp = nm_platform::TcpMetrics {
        window: get_u32("window"),
        cwnd: get_u32("cwnd"),
        initcwnd: get_u32("initcwnd"),
        initrwnd: get_u32("initrwnd"),
        advmss: get_u32("advmss"),
        lock: 0,
    };
    for (key, rtax) in [
        ("lock-mtu", nm_platform::RTAX_MTU),
        ("lock-window", nm_platform::RTAX_WINDOW),
        ("lock-cwnd", nm_platform::RTAX_CWND),
        ("lock-advmss", nm_platform::RTAX_ADVMSS),
        ("lock-initcwnd", nm_platform::RTAX_INITCWND),
        ("lock-initrwnd", nm_platform::RTAX_INITRWND),
    ] {
        if get_bool(key) {
            tcp.lock |= 1 << rtax;
        }
    }
    RouteExtras {
        kind: r.get("type").and_then(Value::as_str).and_then(route_type).unwrap_or(0),
        src: r
            .get("src")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<IpAddr>().ok())
            .filter(|a| a.is_ipv4() == (family == "ipv4")),
        onlink: get_bool("onlink"),
        tcp,
    }
}

impl PlannedRoute {
    pub fn is_default(&self) -> bool {
        self.prefix == 0
    }
}

/// How one address family ends its ip-config stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyMethod {
    /// Static addresses (or none needed): ready at once.
    Static,
    /// Needs an address from nm-dhcp-helper: a DHCP lease, or for IPv4
    /// link-local one it probed for (the same transaction and events, see
    /// `dhcp::start_options`). Not ready until bound.
    Dhcp,
    /// `ipv4.method=shared`: the profile's address or one the engine
    /// picks, and the device shared (`shared.rs`): ready at once.
    Shared,
    /// A method nm-rs does not do (IPv6 `shared`): the family fails, and
    /// `may-fail` decides.
    Unsupported,
    /// The kernel does it (IPv6 SLAAC and link-local): ready at once.
    Kernel,
    /// IPv6 switched off on the link.
    Disabled,
    /// Left alone.
    Ignore,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
    /// Lower is more important; NetworkManager's default for a device is 100.
    pub priority: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub v4: FamilyMethod,
    pub v6: FamilyMethod,
    pub v4_may_fail: bool,
    pub v6_may_fail: bool,
    pub addresses: Vec<PlannedAddress>,
    pub routes: Vec<PlannedRoute>,
    pub gateway4: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
    pub mtu: Option<u32>,
    pub mac: MacChoice,
    pub dns4: DnsConfig,
    pub dns6: DnsConfig,
    /// The kernel's IPv6 settings of the device for this profile: see
    /// [`ipv6_sysctls`].
    pub v6_sysctls: Vec<(&'static str, String)>,
    /// How the kernel makes the link's IPv6 interface identifiers
    /// (`ipv6.addr-gen-mode`); `None` when IPv6 is off or left alone.
    pub v6_addr_gen: Option<AddrGen>,
    /// `ipv6.token`: the interface identifier SLAAC addresses take (the
    /// kernel's `ip token`), with `auto`.
    pub v6_token: Option<Ipv6Addr>,
    /// `ipv6.method=auto`: the kernel takes addresses and routes from router
    /// advertisements, and they go again when the activation ends.
    pub v6_slaac: bool,
}

/// A plan that configures nothing: both families left alone.
impl Default for Plan {
    fn default() -> Plan {
        Plan {
            v4: FamilyMethod::Ignore,
            v6: FamilyMethod::Ignore,
            v4_may_fail: true,
            v6_may_fail: true,
            addresses: Vec::new(),
            routes: Vec::new(),
            gateway4: None,
            gateway6: None,
            mtu: None,
            mac: MacChoice::Keep,
            dns4: DnsConfig::default(),
            dns6: DnsConfig::default(),
            v6_sysctls: Vec::new(),
            v6_addr_gen: None,
            v6_token: None,
            v6_slaac: false,
        }
    }
}

impl Plan {
    /// These addresses and routes alone, none of the link's own settings
    /// (IPv6 sysctls, token, SLAAC) that applying or removing a whole plan
    /// also touches: what a lease adds to a device or takes away from it.
    pub fn addresses_and_routes(addresses: Vec<PlannedAddress>, routes: Vec<PlannedRoute>) -> Plan {
        Plan { addresses, routes, ..Plan::default() }
    }
}

fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

/// The profile's routing rules (`ipv4.routing-rules`, `ipv6.routing-rules`)
/// for the families it configures, as the kernel takes them. They carry
/// protocol `static`, as NetworkManager's own rules do.
pub fn routing_rules(conn: &Connection) -> Vec<nm_platform::Rule> {
    let mut out = Vec::new();
    for (family, setting) in [(nm_platform::Family::V4, "ipv4"), (nm_platform::Family::V6, "ipv6")] {
        if matches!(conn.get_str(setting, "method"), Some("disabled") | Some("ignore")) {
            continue;
        }
        for r in conn.get(setting, "routing-rules").and_then(Value::as_dict_list).unwrap_or_default() {
            let num = |k: &str| r.get(k).and_then(Value::as_i128);
            let u32_of = |k: &str| num(k).and_then(|n| u32::try_from(n).ok());
            let u16_of = |k: &str| num(k).and_then(|n| u16::try_from(n).ok());
            let u8_of = |k: &str| num(k).and_then(|n| u8::try_from(n).ok());
            let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
            let net = |k: &str| {
                let addr = text(k)?.parse::<IpAddr>().ok()?;
                Some((addr, u8_of(&format!("{k}-len")).unwrap_or(if addr.is_ipv4() { 32 } else { 128 })))
            };
            let pair16 = |a: &str, b: &str| Some((u16_of(a)?, u16_of(b).or(u16_of(a))?));
            let action = u8_of("action").unwrap_or(nm_platform::FR_ACT_TO_TBL);
            out.push(nm_platform::Rule {
                family: Some(family),
                priority: u32_of("priority"),
                from: net("from"),
                to: net("to"),
                table: if action == nm_platform::FR_ACT_TO_TBL { u32_of("table").unwrap_or(TABLE_MAIN) } else { 0 },
                action,
                invert: r.get("invert").and_then(Value::as_bool).unwrap_or(false),
                fwmark: u32_of("fwmark").filter(|m| *m != 0).map(|m| (m, u32_of("fwmask").unwrap_or(u32::MAX))),
                iif: text("iifname"),
                oif: text("oifname"),
                tos: u8_of("tos").unwrap_or(0),
                ipproto: u8_of("ipproto").filter(|p| *p != 0),
                sport: pair16("sport-start", "sport-end"),
                dport: pair16("dport-start", "dport-end"),
                uid_range: u32_of("uid-range-start").zip(u32_of("uid-range-end")),
                suppress_prefixlen: num("suppress-prefixlength").and_then(|n| u32::try_from(n).ok()),
                protocol: nm_platform::RTPROT_STATIC,
            });
        }
    }
    out
}

fn int(conn: &Connection, s: &str, p: &str) -> Option<i128> {
    conn.get(s, p).and_then(Value::as_i128)
}

fn flag(conn: &Connection, s: &str, p: &str, default: bool) -> bool {
    conn.get(s, p).and_then(Value::as_bool).unwrap_or(default)
}

fn strings(conn: &Connection, s: &str, p: &str) -> Vec<String> {
    conn.get(s, p).and_then(Value::as_str_list).unwrap_or_default()
}

/// The table of a family's routes: the profile's `route-table`, else main.
pub fn route_table(conn: &Connection, family: &str) -> u32 {
    match int(conn, family, "route-table") {
        Some(t) if t > 0 => u32::try_from(t).unwrap_or(TABLE_MAIN),
        _ => TABLE_MAIN,
    }
}

/// A permanent address into the plan with its prefix route (nm-core adds
/// the addresses without one; NetworkManager marks it `kernel`). Two
/// addresses in one subnet share the route; a host address has none.
pub fn add_address(plan: &mut Plan, addr: IpAddr, prefix: u8, metric: u32, table: u32) {
    plan.addresses.push(PlannedAddress { addr, prefix, lifetime: None });
    let full = if addr.is_ipv4() { 32 } else { 128 };
    let route = PlannedRoute {
        dest: network(addr, prefix),
        prefix,
        gateway: None,
        metric,
        table,
        protocol: PROTO_KERNEL,
        scope: if addr.is_ipv4() { SCOPE_LINK } else { SCOPE_UNIVERSE },
        mtu: None,
        extra: RouteExtras::default(),
    };
    if prefix < full && !plan.routes.contains(&route) {
        plan.routes.push(route);
    }
}

/// The route metric of a family: the profile's `route-metric`, else the
/// device's (default by type, bumped on collision).
pub fn route_metric(conn: &Connection, family: &str, device_metric: u32) -> u32 {
    match int(conn, family, "route-metric") {
        Some(m) if m >= 0 => u32::try_from(m).unwrap_or(device_metric),
        _ => device_metric,
    }
}

/// The kernel's per-device IPv6 settings (`/proc/sys/net/ipv6/conf/IF/KEY`)
/// for an IPv6 method. NetworkManager reads router advertisements itself;
/// nm-rs lets the kernel do it, set up to end the same way: `auto` takes
/// them (also on a host that forwards) with the default route at the
/// profile's IPv6 metric (none with `never-default`) and privacy addresses
/// as `ip6-privacy` says (-1: left as they are); `manual` and `link-local`
/// take nothing from a router. `disabled` and `ignore` are not here
/// (`disable_ipv6`, and nothing).
pub fn ipv6_sysctls(conn: &Connection, method: &str, device_metric: u32) -> Vec<(&'static str, String)> {
    match method {
        "auto" => {
            let default_route = !flag(conn, "ipv6", "never-default", false);
            let mut out = vec![
                ("accept_ra", "2".to_string()),
                ("autoconf", "1".to_string()),
                ("accept_ra_pinfo", "1".to_string()),
                ("accept_ra_defrtr", if default_route { "1" } else { "0" }.to_string()),
                ("ra_defrtr_metric", route_metric(conn, "ipv6", device_metric).to_string()),
            ];
            if let Some(p) = int(conn, "ipv6", "ip6-privacy").filter(|p| (0..=2).contains(p)) {
                out.push(("use_tempaddr", p.to_string()));
            }
            out
        }
        // `dhcp` is DHCPv6 alone, as with NetworkManager: no SLAAC and no
        // default route from routers.
        "manual" | "link-local" | "dhcp" => vec![("accept_ra", "0".to_string())],
        _ => Vec::new(),
    }
}

/// Plans the static configuration of a (valid, normalised) profile.
pub fn plan(conn: &Connection, device_metric: u32) -> Plan {
    let mut plan = Plan {
        v4_may_fail: flag(conn, "ipv4", "may-fail", true),
        v6_may_fail: flag(conn, "ipv6", "may-fail", true),
        ..Plan::default()
    };
    for family in ["ipv4", "ipv6"] {
        if conn.setting(family).is_none() {
            continue;
        }
        let method = conn.get_str(family, "method").unwrap_or("auto");
        let fm = match (family, method) {
            (_, "manual") => FamilyMethod::Static,
            ("ipv4", "disabled") | ("ipv6", "ignore") => FamilyMethod::Ignore,
            ("ipv6", "disabled") => FamilyMethod::Disabled,
            ("ipv4", "auto" | "link-local") | ("ipv6", "dhcp") => FamilyMethod::Dhcp,
            ("ipv6", "auto" | "link-local") => FamilyMethod::Kernel,
            ("ipv4", "shared") => FamilyMethod::Shared,
            _ => FamilyMethod::Unsupported,
        };
        if family == "ipv4" {
            plan.v4 = fm;
        } else {
            plan.v6 = fm;
            plan.v6_sysctls = ipv6_sysctls(conn, method, device_metric);
            plan.v6_addr_gen = addr_gen(conn, method);
            if method == "auto" {
                plan.v6_token = conn.get_str("ipv6", "token").and_then(|t| t.parse().ok());
            }
            plan.v6_slaac = method == "auto";
        }
        if matches!(fm, FamilyMethod::Ignore | FamilyMethod::Disabled) {
            continue;
        }
        let metric = route_metric(conn, family, device_metric);
        let table = route_table(conn, family);
        for a in conn.get(family, "address-data").and_then(Value::as_dict_list).unwrap_or_default() {
            let Some(addr) = a.get("address").and_then(Value::as_str).and_then(|s| s.parse::<IpAddr>().ok()) else {
                continue;
            };
            let prefix = a.get("prefix").and_then(Value::as_i128).unwrap_or(0) as u8;
            add_address(&mut plan, addr, prefix, metric, table);
        }
        let gateway = conn.get_str(family, "gateway").and_then(|g| g.parse::<IpAddr>().ok());
        match gateway {
            Some(IpAddr::V4(g)) => plan.gateway4 = Some(g),
            Some(IpAddr::V6(g)) => plan.gateway6 = Some(g),
            None => {}
        }
        if let Some(gw) = gateway.filter(|_| !flag(conn, family, "never-default", false)) {
            let dest =
                if family == "ipv4" { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
            plan.routes.push(PlannedRoute {
                dest,
                prefix: 0,
                gateway: Some(gw),
                metric,
                table,
                protocol: PROTO_STATIC,
                scope: SCOPE_UNIVERSE,
                mtu: None,
                extra: RouteExtras::default(),
            });
        }
        for r in conn.get(family, "route-data").and_then(Value::as_dict_list).unwrap_or_default() {
            let Some(dest) = r.get("dest").and_then(Value::as_str).and_then(|s| s.parse::<IpAddr>().ok()) else {
                continue;
            };
            let prefix = r.get("prefix").and_then(Value::as_i128).unwrap_or(0) as u8;
            let gateway = r.get("next-hop").and_then(Value::as_str).and_then(|s| s.parse().ok());
            let get_u32 = |k: &str| r.get(k).and_then(Value::as_i128).and_then(|n| u32::try_from(n).ok());
            plan.routes.push(PlannedRoute {
                dest: network(dest, prefix),
                prefix,
                gateway,
                metric: get_u32("metric").unwrap_or(metric),
                table: get_u32("table").filter(|t| *t > 0).unwrap_or(table),
                protocol: PROTO_STATIC,
                scope: if gateway.is_none() && dest.is_ipv4() { SCOPE_LINK } else { SCOPE_UNIVERSE },
                mtu: get_u32("mtu"),
                extra: route_extras(&r, family),
            });
        }
        let dns = DnsConfig {
            servers: strings(conn, family, "dns"),
            searches: strings(conn, family, "dns-search"),
            options: strings(conn, family, "dns-options"),
            priority: match int(conn, family, "dns-priority") {
                Some(p) if p != 0 => p as i32,
                _ => 100,
            },
        };
        if family == "ipv4" {
            plan.dns4 = dns;
        } else {
            plan.dns6 = dns;
        }
    }
    let eth = "802-3-ethernet";
    plan.mtu = int(conn, eth, "mtu").and_then(|m| u32::try_from(m).ok()).filter(|m| *m > 0);
    plan.mac = match conn.get_str(eth, "cloned-mac-address").unwrap_or("preserve") {
        "preserve" => MacChoice::Keep,
        "permanent" => MacChoice::Permanent,
        "random" => MacChoice::Random,
        "stable" => MacChoice::Stable,
        m => parse_mac(m)
            .ok()
            .and_then(|b| <[u8; 6]>::try_from(b.as_slice()).ok())
            .map_or(MacChoice::Keep, MacChoice::Fixed),
    };
    plan.addresses.sort();
    plan.routes.sort();
    plan
}

/// `ipv6.addr-gen-mode` as the kernel does it: EUI-64 (from the MAC) or
/// stable privacy (RFC 7217: from a secret, the same on the same network,
/// telling nothing of the hardware).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrGen {
    Eui64,
    /// The profile's `connection.stable-id` (else its uuid), which the
    /// secret is derived from.
    StablePrivacy {
        stable_id: String,
    },
}

/// The interface identifiers a profile asks for: `eui64` and
/// `default-or-eui64` are EUI-64, `stable-privacy` and `default`
/// (NetworkManager's default without configuration) stable privacy.
pub fn addr_gen(conn: &Connection, method: &str) -> Option<AddrGen> {
    if matches!(method, "disabled" | "ignore") {
        return None;
    }
    Some(match conn.get("ipv6", "addr-gen-mode").and_then(Value::as_i128).unwrap_or(3) {
        0 | 2 => AddrGen::Eui64,
        _ => AddrGen::StablePrivacy { stable_id: stable_id(conn).to_string() },
    })
}

/// The id a profile's generated identities derive from:
/// `connection.stable-id`, else its uuid.
pub fn stable_id(conn: &Connection) -> &str {
    conn.get_str("connection", "stable-id").filter(|s| !s.is_empty()).or(conn.uuid()).unwrap_or_default()
}

/// A hash of this machine and `what`, in a namespace of ours per use: the
/// same for the same machine and input, and the machine id never shows in
/// it. What generated addresses and secrets are made of.
pub fn machine_hash(namespace: u128, machine_id: Option<&str>, what: &str) -> [u8; 16] {
    let seed = format!("{}:{what}", machine_id.map(str::trim).unwrap_or_default());
    *uuid::Uuid::new_v5(&uuid::Uuid::from_u128(namespace), seed.as_bytes()).as_bytes()
}

/// The kernel's `stable_secret` for a profile on an interface: each
/// network sees its own stable addresses.
pub fn stable_secret(machine_id: Option<&str>, stable_id: &str, ifname: &str) -> std::net::Ipv6Addr {
    let h = machine_hash(0x6e6d_2d72_732d_5350_8000_4950_7636_5353, machine_id, &format!("{stable_id}:{ifname}"));
    std::net::Ipv6Addr::from(h)
}

/// What `ethernet.cloned-mac-address` asks of the link's MAC address when
/// the profile activates (NetworkManager's default is `preserve`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum MacChoice {
    /// Unset or `preserve`: as it is.
    #[default]
    Keep,
    Fixed([u8; 6]),
    /// `permanent`: the device's own address.
    Permanent,
    /// `random`: a new one at each activation.
    Random,
    /// `stable`: the same one for this profile on this device and machine.
    Stable,
}

/// The first six of `bytes` made a locally administered unicast address,
/// as NetworkManager makes its generated ones.
pub fn local_mac(bytes: &[u8; 16]) -> [u8; 6] {
    [(bytes[0] & 0xfe) | 0x02, bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]]
}

/// The `stable` address of a profile (its [`stable_id`]) on an interface.
pub fn stable_mac(machine_id: Option<&str>, stable_id: &str, ifname: &str) -> [u8; 6] {
    local_mac(&machine_hash(0x6e6d_2d72_732d_4d41_8000_5354_4142_4c45, machine_id, &format!("{stable_id}:{ifname}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nm_model::{keyfile, validate};

    #[test]
    fn addr_gen_mode_defaults_to_stable_privacy() {
        let with = |v6: &str| {
            let c = conn("method=disabled", v6);
            addr_gen(&c, c.get_str("ipv6", "method").unwrap_or("auto"))
        };
        let stable = with("method=auto\naddr-gen-mode=default");
        assert!(
            matches!(&stable, Some(AddrGen::StablePrivacy { stable_id }) if stable_id == "8fb923ad-bd8a-48c8-b85e-737628bb673a"),
            "{stable:?}"
        );
        assert!(matches!(with("method=auto\naddr-gen-mode=stable-privacy"), Some(AddrGen::StablePrivacy { .. })));
        // A keyfile without the key is an old one: default-or-eui64.
        assert_eq!(with("method=auto"), Some(AddrGen::Eui64));
        assert_eq!(with("method=auto\naddr-gen-mode=eui64"), Some(AddrGen::Eui64));
        assert_eq!(with("method=link-local\naddr-gen-mode=default-or-eui64"), Some(AddrGen::Eui64));
        assert_eq!(with("method=disabled"), None);
        let a = stable_secret(Some("m1"), "s", "eth0");
        assert_eq!(a, stable_secret(Some("m1"), "s", "eth0"));
        assert_ne!(a, stable_secret(Some("m1"), "s", "eth1"));
        assert_ne!(a, stable_secret(Some("m2"), "s", "eth0"));
    }

    #[test]
    fn generated_macs_are_local_unicast_and_stable_ones_stay() {
        assert_eq!(local_mac(&[0xff; 16]), [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let a = stable_mac(Some("4c4c4544"), "uuid-1", "eth0");
        assert_eq!(a[0] & 0x03, 0x02, "{a:02x?}");
        assert_eq!(a, stable_mac(Some("4c4c4544"), "uuid-1", "eth0"));
        assert_ne!(a, stable_mac(Some("4c4c4544"), "uuid-1", "eth1"));
        assert_ne!(a, stable_mac(Some("4c4c4545"), "uuid-1", "eth0"));
        let choice = |v: &str| {
            let c = validate::normalize_and_validate(
                keyfile::parse(&format!(
                    "[connection]\nid=t\nuuid=8fb923ad-bd8a-48c8-b85e-737628bb673a\ntype=ethernet\n\n[ethernet]\ncloned-mac-address={v}\n"
                ))
                .unwrap(),
            )
            .unwrap();
            plan(&c, 100).mac
        };
        assert_eq!(choice("random"), MacChoice::Random);
        assert_eq!(choice("stable"), MacChoice::Stable);
        assert_eq!(choice("permanent"), MacChoice::Permanent);
        assert_eq!(choice("preserve"), MacChoice::Keep);
    }

    fn conn(ipv4: &str, ipv6: &str) -> Connection {
        let text = format!(
            "[connection]\nid=t\nuuid=8fb923ad-bd8a-48c8-b85e-737628bb673a\ntype=ethernet\n\n[ethernet]\nmtu=1400\ncloned-mac-address=02:00:00:00:00:01\n\n[ipv4]\n{ipv4}\n\n[ipv6]\n{ipv6}\n"
        );
        validate::normalize_and_validate(keyfile::parse(&text).unwrap()).unwrap()
    }

    #[test]
    fn routing_rules_become_kernel_rules() {
        let c = conn(
            "method=manual\naddress1=192.0.2.10/24\nrouting-rule1=priority 5 from 192.0.2.10 table 100\n\
             routing-rule2=priority 6 not to 198.51.100.0/24 fwmark 0x10/0xff iif lo type blackhole\n",
            "method=manual\naddress1=2001:db8::5/64\nrouting-rule1=priority 7 from 2001:db8::/64 table 200\n",
        );
        let rules = routing_rules(&c);
        assert_eq!(rules.len(), 3, "{rules:?}");
        let (a, b, v6) = (&rules[0], &rules[1], &rules[2]);
        assert_eq!(a.family, Some(nm_platform::Family::V4));
        assert_eq!((a.priority, a.table, a.action, a.invert), (Some(5), 100, nm_platform::FR_ACT_TO_TBL, false));
        assert_eq!(a.from, Some(("192.0.2.10".parse().unwrap(), 32)));
        assert_eq!(a.protocol, nm_platform::RTPROT_STATIC);
        assert_eq!((b.priority, b.table, b.action, b.invert), (Some(6), 0, 6, true));
        assert_eq!(b.to, Some(("198.51.100.0".parse().unwrap(), 24)));
        assert_eq!((b.fwmark, b.iif.as_deref()), (Some((0x10, 0xff)), Some("lo")));
        assert_eq!((v6.family, v6.table), (Some(nm_platform::Family::V6), 200));
        assert_eq!(v6.from, Some(("2001:db8::".parse().unwrap(), 64)));
        // A family that is off takes none.
        let off = conn("method=disabled\nrouting-rule1=priority 5 table 100\n", "method=ignore\n");
        assert!(routing_rules(&off).is_empty());
    }

    #[test]
    fn ipv6_methods_set_the_kernel_up_as_networkmanager_behaves() {
        let auto = plan(&conn("method=disabled", "method=auto"), 100);
        assert!(auto.v6_slaac);
        assert_eq!(
            auto.v6_sysctls,
            [
                ("accept_ra", "2".to_string()),
                ("autoconf", "1".to_string()),
                ("accept_ra_pinfo", "1".to_string()),
                ("accept_ra_defrtr", "1".to_string()),
                ("ra_defrtr_metric", "100".to_string()),
            ]
        );
        let own =
            plan(&conn("method=disabled", "method=auto\nnever-default=true\nroute-metric=42\nip6-privacy=2"), 100);
        let get = |k: &str| own.v6_sysctls.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
        assert_eq!(
            (get("accept_ra_defrtr"), get("ra_defrtr_metric"), get("use_tempaddr")),
            (Some("0"), Some("42"), Some("2"))
        );
        for method in ["method=link-local", "method=dhcp", "method=manual\naddress1=2001:db8::5/64"] {
            let p = plan(&conn("method=disabled", method), 100);
            assert_eq!(p.v6_sysctls, [("accept_ra", "0".to_string())], "{method}");
            assert!(!p.v6_slaac);
        }
        for method in ["method=disabled", "method=ignore"] {
            assert!(plan(&conn("method=disabled", method), 100).v6_sysctls.is_empty(), "{method}");
        }
    }

    #[test]
    fn static_ipv4_with_gateway_and_routes() {
        let p = plan(
            &conn(
                "method=manual\naddress1=192.0.2.5/24,192.0.2.1\nroute1=198.51.100.0/24,192.0.2.254,7\nroute2=203.0.113.0/24\nroute2_options=table=50\ndns=192.0.2.53;\ndns-search=lab.test;",
                "method=ignore",
            ),
            101,
        );
        assert_eq!(p.v4, FamilyMethod::Static);
        assert_eq!(
            p.addresses,
            vec![PlannedAddress { addr: "192.0.2.5".parse().unwrap(), prefix: 24, lifetime: None }]
        );
        let dflt = p.routes.iter().find(|r| r.is_default()).unwrap();
        assert_eq!((dflt.gateway, dflt.metric, dflt.table), (Some("192.0.2.1".parse().unwrap()), 101, 254));
        let prefix = p.routes.iter().find(|r| r.dest == "192.0.2.0".parse::<IpAddr>().unwrap()).unwrap();
        assert_eq!((prefix.prefix, prefix.scope, prefix.protocol), (24, SCOPE_LINK, PROTO_KERNEL));
        // two addresses in one subnet: one prefix route
        let two = plan(&conn("method=manual\naddress1=192.0.2.10/24\naddress2=192.0.2.11/24", "method=ignore"), 100);
        assert_eq!((two.addresses.len(), two.routes.len()), (2, 1), "{:?}", two.routes);
        let r1 = p.routes.iter().find(|r| r.dest == "198.51.100.0".parse::<IpAddr>().unwrap()).unwrap();
        assert_eq!(r1.metric, 7);
        let r2 = p.routes.iter().find(|r| r.dest == "203.0.113.0".parse::<IpAddr>().unwrap()).unwrap();
        assert_eq!((r2.metric, r2.table), (101, 50));
        assert_eq!(p.dns4.servers, vec!["192.0.2.53"]);
        assert_eq!(p.dns4.priority, 100);
        assert_eq!(p.mtu, Some(1400));
        assert_eq!(p.mac, MacChoice::Fixed([2, 0, 0, 0, 0, 1]));
        assert_eq!(p.v6, FamilyMethod::Ignore);
    }

    #[test]
    fn never_default_and_profile_metric() {
        let p = plan(
            &conn(
                "method=manual\naddress1=192.0.2.5/24,192.0.2.1\nnever-default=true\nroute-metric=20",
                "method=disabled",
            ),
            100,
        );
        assert!(!p.routes.iter().any(PlannedRoute::is_default));
        assert!(p.routes.iter().all(|r| r.metric == 20));
        assert_eq!(p.v6, FamilyMethod::Disabled);
        assert_eq!(p.gateway4, None, "normalisation drops a gateway with never-default");
    }

    #[test]
    fn ipv6_manual_and_auto() {
        let p = plan(&conn("method=disabled", "method=manual\naddress1=2001:db8::5/64,2001:db8::1"), 100);
        assert_eq!(p.v4, FamilyMethod::Ignore);
        assert!(p.routes.iter().any(|r| r.is_default() && r.gateway == Some("2001:db8::1".parse().unwrap())));
        let p = plan(&conn("method=auto", "method=auto"), 100);
        assert_eq!((p.v4, p.v6), (FamilyMethod::Dhcp, FamilyMethod::Kernel));
    }
}
