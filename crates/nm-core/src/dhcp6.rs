//! DHCPv6 from nm-core's side, as NetworkManager runs it: `ipv6.method=dhcp`
//! asks for an address at once; `auto` asks when a router advertisement
//! says so (M flag: an address and DNS; only the O flag: DNS alone). What
//! to ask nm-dhcp-helper for, and what a lease puts in the kernel: the
//! address as a /128 with the lease's lifetimes (the on-link prefix comes
//! from the router, as with NetworkManager) and DNS servers and domains.
//! Pure; the engine talks to the helper.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use nm_model::{Connection, Value};

use crate::ipconfig::PlannedAddress;

/// What the helper is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// An address (IA_NA) and DNS.
    Managed,
    /// DNS only (Information-request).
    Other,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Managed => "managed",
            Mode::Other => "other",
        }
    }
}

/// Whether (and how) an `auto` activation asks DHCPv6, from the flags of the
/// last router advertisement.
pub fn mode_for_router(managed: bool, other: bool) -> Option<Mode> {
    if managed {
        Some(Mode::Managed)
    } else if other {
        Some(Mode::Other)
    } else {
        None
    }
}

/// The client's DUID as NetworkManager makes it by default: a DUID-UUID
/// (RFC 6355, type 4) stable for the machine, derived from the machine-id
/// (hashed, so the id itself never goes on the wire); with no machine-id,
/// a DUID-LL (type 3) of the device's MAC.
pub fn duid(machine_id: Option<&str>, mac: Option<&[u8]>) -> Option<Vec<u8>> {
    let id = machine_id.map(str::trim).filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    if let Some(id) = id {
        // A fixed namespace of ours: the same machine-id gives the same DUID.
        const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6e6d_2d72_732d_4455_8000_4455_4944_3634);
        let uuid = uuid::Uuid::new_v5(&NAMESPACE, id.as_bytes());
        let mut duid = vec![0, 4];
        duid.extend(uuid.as_bytes());
        return Some(duid);
    }
    let mac = mac.filter(|m| m.len() == 6)?;
    let mut duid = vec![0, 3, 0, 1];
    duid.extend(mac);
    Some(duid)
}

/// The DUID `ipv6.dhcp-duid` asks for: `ll` (DUID-LL of the device's
/// MAC), `llt` (DUID-LLT, with the time now), `stable-ll`, `stable-llt`,
/// `stable-uuid` (from a MAC, time or UUID hashed from the profile's
/// stable id and the machine, the same at every activation), the DUID
/// itself as hex bytes (`00:04:…`), or `lease`/unset: the machine's
/// default ([`duid`]). `now` is seconds since the Unix epoch.
pub fn duid_for(conn: &Connection, machine_id: Option<&str>, mac: Option<&[u8]>, now: u64) -> Option<Vec<u8>> {
    // DUID-LLT counts seconds from 2000-01-01 UTC.
    const Y2K: u64 = 946_684_800;
    let stable = |ns: u128| crate::ipconfig::machine_hash(ns, machine_id, crate::ipconfig::stable_id(conn));
    let ll = |mac: &[u8]| [&[0u8, 3, 0, 1][..], mac].concat();
    let llt = |time: u32, mac: &[u8]| [&[0u8, 1, 0, 1][..], &time.to_be_bytes(), mac].concat();
    let mac6 = mac.filter(|m| m.len() == 6);
    match conn.get_str("ipv6", "dhcp-duid").unwrap_or("lease") {
        "ll" => mac6.map(ll),
        "llt" => mac6.map(|m| llt(u32::try_from(now.saturating_sub(Y2K) % (1 << 32)).unwrap_or(0), m)),
        "stable-ll" => Some(ll(&crate::ipconfig::local_mac(&stable(0x6e6d_2d72_732d_4455_8000_5354_4c4c_0001)))),
        "stable-llt" => {
            let h = stable(0x6e6d_2d72_732d_4455_8000_5354_4c4c_0002);
            // A time within the last three years, fixed for the profile.
            let time = u32::from_be_bytes([h[12], h[13], h[14], h[15]]) % (3 * 365 * 86_400);
            let base = u32::try_from(now.saturating_sub(Y2K) % (1 << 32)).unwrap_or(0);
            Some(llt(base.saturating_sub(time), &crate::ipconfig::local_mac(&h)))
        }
        "stable-uuid" => Some([&[0u8, 4][..], &stable(0x6e6d_2d72_732d_4455_8000_5354_5555_0003)].concat()),
        "lease" | "" => duid(machine_id, mac),
        hex => nm_model::text::parse_hex_bytes(hex).filter(|b| b.len() >= 4).or_else(|| duid(machine_id, mac)),
    }
}

/// The helper's `Start` options for a profile.
pub fn start_options(conn: &Connection, mode: Mode, duid: &[u8]) -> BTreeMap<String, Value> {
    let mut o = BTreeMap::new();
    o.insert("family".to_string(), Value::Str("ipv6".into()));
    o.insert("mode".to_string(), Value::Str(mode.as_str().into()));
    o.insert("duid".to_string(), Value::Bytes(duid.to_vec()));
    if let Some(uuid) = conn.uuid() {
        o.insert("uuid".to_string(), Value::Str(uuid.to_string()));
    }
    o.insert("timeout".to_string(), Value::UInt32(timeout(conn)));
    o
}

/// `ipv6.dhcp-timeout` (0: NetworkManager's default of 45 s).
pub fn timeout(conn: &Connection) -> u32 {
    match conn.get("ipv6", "dhcp-timeout").and_then(Value::as_i128) {
        Some(t) if t > 0 => u32::try_from(t).unwrap_or(u32::MAX),
        _ => crate::dhcp::DEFAULT_TIMEOUT,
    }
}

/// A DHCPv6 lease as the helper reports it (checked again here; anything
/// malformed is left out).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lease {
    pub address: Option<Ipv6Addr>,
    pub preferred: Option<u32>,
    pub valid: Option<u32>,
    pub dns: Vec<Ipv6Addr>,
    pub search: Vec<String>,
    /// Every option as DHCP6Config shows it.
    pub options: BTreeMap<String, String>,
}

impl Lease {
    /// From the helper's `a{sv}`; `None` when it is not a DHCPv6 lease.
    pub fn from_dict(d: &BTreeMap<String, Value>) -> Option<Lease> {
        if d.get("family").and_then(Value::as_str) != Some("ipv6") {
            return None;
        }
        let list = |k: &str| d.get(k).and_then(Value::as_str_list).unwrap_or_default();
        let u32_of = |k: &str| d.get(k).and_then(Value::as_i128).and_then(|n| u32::try_from(n).ok());
        Some(Lease {
            address: d.get("address").and_then(Value::as_str).and_then(|a| a.parse().ok()).filter(usable),
            preferred: u32_of("preferred-lifetime"),
            valid: u32_of("valid-lifetime"),
            dns: list("dns").iter().filter_map(|s| s.parse().ok()).filter(usable).collect(),
            search: list("search").into_iter().filter(|s| !s.is_empty()).collect(),
            options: d.get("options").and_then(Value::as_str_map).unwrap_or_default(),
        })
    }
}

/// A global or unique-local unicast address (not ::, loopback, multicast).
fn usable(a: &Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast())
}

/// What a lease puts in the kernel and the resolver under a profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeasePlan {
    pub addresses: Vec<PlannedAddress>,
    pub dns: Vec<String>,
    pub searches: Vec<String>,
}

/// The address as a /128 (NetworkManager's form: the prefix is the
/// router's to announce) with the lease's valid lifetime, and DNS unless
/// `ipv6.ignore-auto-dns`.
pub fn lease_plan(lease: &Lease, conn: &Connection) -> LeasePlan {
    let mut plan = LeasePlan::default();
    if let Some(addr) = lease.address {
        let lifetime = lease.valid.filter(|v| *v != u32::MAX);
        plan.addresses.push(PlannedAddress { addr: IpAddr::V6(addr), prefix: 128, lifetime });
    }
    if !conn.get("ipv6", "ignore-auto-dns").and_then(Value::as_bool).unwrap_or(false) {
        plan.dns = lease.dns.iter().map(ToString::to_string).collect();
        plan.searches = lease.search.clone();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(extra: &str) -> Connection {
        let text = format!(
            "[connection]\nid=c\nuuid=5b0c2a62-1e8f-4a59-8d5e-2f6f3b7f0c11\ntype=ethernet\n\n[ipv6]\nmethod=auto\n{extra}\n"
        );
        nm_model::keyfile::parse(&text).expect("keyfile")
    }

    #[test]
    fn the_router_decides_for_auto() {
        assert_eq!(mode_for_router(true, false), Some(Mode::Managed));
        assert_eq!(mode_for_router(true, true), Some(Mode::Managed));
        assert_eq!(mode_for_router(false, true), Some(Mode::Other));
        assert_eq!(mode_for_router(false, false), None);
    }

    #[test]
    fn the_duid_is_stable_and_hides_the_machine_id() {
        let id = "0123456789abcdef0123456789abcdef\n";
        let a = duid(Some(id), None).expect("duid");
        assert_eq!(a.len(), 18);
        assert_eq!(a[..2], [0, 4]);
        assert_eq!(duid(Some(id), Some(&[2, 0, 0, 0, 0, 1])), Some(a.clone()), "the same for every device");
        assert_ne!(duid(Some("fedcba9876543210fedcba9876543210"), None), Some(a.clone()));
        assert!(!a.windows(4).any(|w| w == [0x01, 0x23, 0x45, 0x67]), "not the id itself");
        assert_eq!(duid(Some("not an id"), Some(&[2, 0, 0, 0, 0, 1])), Some(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]));
        assert_eq!(duid(None, None), None);
    }

    #[test]
    fn start_options_name_the_family_mode_duid_and_timeout() {
        let o = start_options(&conn("dhcp-timeout=7"), Mode::Other, &[0, 4, 1]);
        assert_eq!(o["family"], Value::Str("ipv6".into()));
        assert_eq!(o["mode"], Value::Str("other".into()));
        assert_eq!(o["duid"], Value::Bytes(vec![0, 4, 1]));
        assert_eq!(o["timeout"], Value::UInt32(7));
        assert_eq!(o["uuid"], Value::Str("5b0c2a62-1e8f-4a59-8d5e-2f6f3b7f0c11".into()));
        assert_eq!(timeout(&conn("")), 45);
    }

    fn dict(pairs: Vec<(&str, Value)>) -> BTreeMap<String, Value> {
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn a_lease_is_read_checked_and_planned_as_a_128() {
        let d = dict(vec![
            ("family", Value::Str("ipv6".into())),
            ("address", Value::Str("fd4c:6162:0:1::123".into())),
            ("prefix", Value::UInt32(128)),
            ("preferred-lifetime", Value::UInt32(1800)),
            ("valid-lifetime", Value::UInt32(3600)),
            ("dns", Value::str_list(["fd4c:6162:0:1::1", "ff02::1", "junk"])),
            ("search", Value::str_list(["lab.test"])),
        ]);
        let lease = Lease::from_dict(&d).expect("v6");
        assert_eq!(lease.address, Some("fd4c:6162:0:1::123".parse().unwrap()));
        assert_eq!(lease.dns, vec!["fd4c:6162:0:1::1".parse::<Ipv6Addr>().unwrap()], "multicast and junk dropped");
        let plan = lease_plan(&lease, &conn(""));
        assert_eq!(
            plan.addresses,
            vec![PlannedAddress { addr: "fd4c:6162:0:1::123".parse().unwrap(), prefix: 128, lifetime: Some(3600) }]
        );
        assert_eq!(plan.dns, ["fd4c:6162:0:1::1"]);
        assert_eq!(plan.searches, ["lab.test"]);
        let no_dns = lease_plan(&lease, &conn("ignore-auto-dns=true"));
        assert!(no_dns.dns.is_empty() && no_dns.searches.is_empty() && no_dns.addresses.len() == 1);
        // infinite lifetime, the v4 family, a bad address
        let forever = Lease { valid: Some(u32::MAX), ..lease.clone() };
        assert_eq!(lease_plan(&forever, &conn("")).addresses[0].lifetime, None);
        assert_eq!(Lease::from_dict(&dict(vec![("address", Value::Str("10.0.0.1".into()))])), None);
        let bad = dict(vec![("family", Value::Str("ipv6".into())), ("address", Value::Str("::".into()))]);
        assert_eq!(Lease::from_dict(&bad).and_then(|l| l.address), None);
    }

    #[test]
    fn the_duid_a_profile_asks_for() {
        use nm_model::{keyfile, validate};
        let mac = [0x02, 0, 0, 0, 0, 0x01];
        let with = |v: &str, uuid: &str| {
            let text = format!("[connection]\nid=d\nuuid={uuid}\ntype=ethernet\n\n[ipv6]\nmethod=dhcp\n{v}");
            validate::normalize_and_validate(keyfile::parse(&text).unwrap()).unwrap()
        };
        let id = Some("0123456789abcdef0123456789abcdef");
        let one = "8fb923ad-bd8a-48c8-b85e-737628bb673a";
        let at = |v: &str, now: u64| duid_for(&with(v, one), id, Some(&mac), now);
        assert_eq!(at("", 0), duid(id, Some(&mac)), "lease: the machine's default");
        assert_eq!(at("dhcp-duid=ll\n", 0), Some(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]));
        let llt = at("dhcp-duid=llt\n", 946_684_800 + 1000).unwrap();
        assert_eq!(llt, [&[0u8, 1, 0, 1][..], &1000u32.to_be_bytes(), &mac].concat());
        let s1 = at("dhcp-duid=stable-uuid\n", 0).unwrap();
        assert_eq!((s1.len(), &s1[..2]), (18, &[0u8, 4][..]));
        assert_eq!(Some(s1.clone()), at("dhcp-duid=stable-uuid\n", 99), "the same at every activation");
        let other = with("dhcp-duid=stable-uuid\n", "9fb923ad-bd8a-48c8-b85e-737628bb673a");
        assert_ne!(Some(s1), duid_for(&other, id, Some(&mac), 0), "per profile");
        let sll = at("dhcp-duid=stable-ll\n", 0).unwrap();
        assert_eq!((&sll[..4], sll[4] & 0x03), (&[0u8, 3, 0, 1][..], 0x02), "a local unicast MAC");
        assert_eq!(at("dhcp-duid=00:04:aa:bb\n", 0), Some(vec![0, 4, 0xaa, 0xbb]), "the DUID itself");
    }
}
