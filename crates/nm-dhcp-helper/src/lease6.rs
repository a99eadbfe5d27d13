//! A DHCPv6 lease as the helper hands it to nm-core: the `a{sv}` of the
//! `Event` signal and NetworkManager's `DHCP6Config.Options` view.
//!
//! There is no lease file for DHCPv6: a restarted helper solicits again and
//! the server gives the same address for the same DUID and IAID (RFC 8415
//! §6.2), so a file would save one round trip at the price of a write.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::time::Duration;

use zbus::{OwnedVariant, Variant};

use crate::lease::hex_colon;

/// A lease from a Reply. Every string in it passed [`crate::sanitize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease6 {
    /// The IA_NA address (`None` in stateless mode).
    pub address: Option<Ipv6Addr>,
    /// Seconds; `u32::MAX` is infinite.
    pub preferred: u32,
    pub valid: u32,
    /// T1/T2 as used (after the defaults); in stateless mode T1 is the
    /// information refresh time and T2 is 0.
    pub t1: u32,
    pub t2: u32,
    pub dns: Vec<Ipv6Addr>,
    pub search: Vec<String>,
    pub server_id: Vec<u8>,
    /// When the Reply arrived, on the machine's clock.
    pub acquired: Duration,
}

/// What the client adds: its DUID and IAID, and when the lease began on the
/// wall clock.
#[derive(Debug, Clone, Default)]
pub struct ClientView6 {
    pub duid: Vec<u8>,
    pub iaid: u32,
    pub life_starts: u64,
}

fn join<T: ToString>(list: &[T]) -> String {
    list.iter().map(T::to_string).collect::<Vec<_>>().join(" ")
}

/// `DHCP6Config.Options` as NetworkManager fills it (only keys with values).
pub fn options_view(l: &Lease6, c: &ClientView6) -> HashMap<String, String> {
    let mut o = HashMap::new();
    let mut put = |k: &str, v: String| {
        o.insert(k.to_owned(), v);
    };
    if let Some(a) = l.address {
        put("ip6_address", a.to_string());
        put("iaid", format!("0x{:08x}", c.iaid));
        put("preferred_life", l.preferred.to_string());
        put("max_life", l.valid.to_string());
        put("rebind", l.t2.to_string());
    }
    if !l.dns.is_empty() {
        put("dhcp6_name_servers", join(&l.dns));
    }
    if !l.search.is_empty() {
        put("dhcp6_domain_search", l.search.join(" "));
    }
    if !c.duid.is_empty() {
        put("dhcp6_client_id", hex_colon(&c.duid));
    }
    put("dhcp6_server_id", hex_colon(&l.server_id));
    put("life_starts", c.life_starts.to_string());
    put("renew", l.t1.to_string());
    o
}

/// The `a{sv}` of the `Event` signal (an empty dict for no lease).
pub fn to_dbus(lease: Option<&Lease6>, c: &ClientView6) -> HashMap<String, OwnedVariant> {
    let mut d = HashMap::new();
    let Some(l) = lease else {
        return d;
    };
    let mut put = |k: &str, v: Variant<'_>| {
        if let Ok(v) = OwnedVariant::try_from(v) {
            d.insert(k.to_owned(), v);
        }
    };
    put("family", Variant::from("ipv6"));
    if let Some(a) = l.address {
        put("address", Variant::from(a.to_string()));
        put("prefix", Variant::from(128u32));
        put("preferred-lifetime", Variant::from(l.preferred));
        put("valid-lifetime", Variant::from(l.valid));
        put("rebinding-time", Variant::from(l.t2));
    }
    put("renewal-time", Variant::from(l.t1));
    put("dns", Variant::from(l.dns.iter().map(Ipv6Addr::to_string).collect::<Vec<_>>()));
    put("search", Variant::from(l.search.clone()));
    put("server-id", Variant::from(hex_colon(&l.server_id)));
    put("options", Variant::from(options_view(l, c)));
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(address: Option<Ipv6Addr>) -> Lease6 {
        Lease6 {
            address,
            preferred: 3000,
            valid: 3600,
            t1: 1500,
            t2: 2400,
            dns: vec!["fd4c:6162::1".parse().unwrap()],
            search: vec!["lab.test".into()],
            server_id: vec![0, 3, 0xab],
            acquired: Duration::ZERO,
        }
    }

    #[test]
    fn dict_has_the_contract_keys() {
        let c = ClientView6 { duid: vec![0, 4, 1], iaid: 0x1a2b3c4d, life_starts: 99 };
        let d = to_dbus(Some(&sample(Some("fd4c:6162::150".parse().unwrap()))), &c);
        for k in [
            "family",
            "address",
            "prefix",
            "preferred-lifetime",
            "valid-lifetime",
            "renewal-time",
            "rebinding-time",
            "dns",
            "search",
            "server-id",
            "options",
        ] {
            assert!(d.contains_key(k), "{k}");
        }
        assert_eq!(d["prefix"].value_signature().to_string(), "u");
        assert_eq!(d["dns"].value_signature().to_string(), "as");
        assert_eq!(d["options"].value_signature().to_string(), "a{ss}");
        assert_eq!(String::try_from(d["server-id"].try_clone().unwrap()).unwrap(), "00:03:ab");
        let o = options_view(&sample(Some("fd4c:6162::150".parse().unwrap())), &c);
        assert_eq!(o["ip6_address"], "fd4c:6162::150");
        assert_eq!(o["iaid"], "0x1a2b3c4d");
        assert_eq!(o["dhcp6_client_id"], "00:04:01");
        assert_eq!(o["dhcp6_name_servers"], "fd4c:6162::1");
        assert_eq!(o["life_starts"], "99");
        assert_eq!((o["renew"].as_str(), o["rebind"].as_str(), o["max_life"].as_str()), ("1500", "2400", "3600"));

        let stateless = to_dbus(Some(&sample(None)), &c);
        assert!(!stateless.contains_key("address") && !stateless.contains_key("prefix"));
        assert!(!options_view(&sample(None), &c).contains_key("ip6_address"));
        assert!(to_dbus(None, &c).is_empty());
    }
}
