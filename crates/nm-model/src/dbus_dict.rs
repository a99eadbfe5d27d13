//! The D-Bus connection dictionary, `a{sa{sv}}`.
//!
//! Properties are stored in their new D-Bus form, so most travel as they
//! are. This module adds the legacy twins NetworkManager still emits
//! (`addresses`, `routes`, `dns` as integers/bytes, `cloned-mac-address` as
//! bytes next to `assigned-mac-address`) and accepts either form on input,
//! the new form winning when both are present, as libnm does.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::connection::{Connection, PropertyError};
use crate::schema::{self, Kind};
use crate::text::{self, Family};
use crate::value::{Value, VarDict};

/// The wire dictionary: setting name → property name → value.
pub type SettingsDict = BTreeMap<String, BTreeMap<String, Value>>;

/// Legacy property names and the stored property they stand for.
const LEGACY: &[(&str, &str)] = &[
    ("addresses", "address-data"),
    ("routes", "route-data"),
    ("dns-data", "dns"),
    ("assigned-mac-address", "cloned-mac-address"),
];

/// Renders a profile for the bus. Secrets are included only when asked.
pub fn to_dbus(conn: &Connection, with_secrets: bool) -> SettingsDict {
    let conn = if with_secrets { conn.clone() } else { conn.without_secrets() };
    let mut out = SettingsDict::new();
    for (sname, setting) in &conn.settings {
        let spec = schema::setting(sname);
        let family = Family::of_setting(sname);
        let dict = out.entry(sname.clone()).or_default();
        for (pname, v) in &setting.props {
            let kind = spec.and_then(|s| s.property(pname)).map(|p| p.kind);
            match kind {
                Some(Kind::Addresses) => {
                    let gw = setting.get("gateway").and_then(Value::as_str);
                    if let Some(list) = v.as_dict_list() {
                        dict.insert("addresses".into(), legacy_addresses(family, &list, gw));
                    }
                    dict.insert(pname.clone(), v.clone());
                }
                Some(Kind::Routes) => {
                    if let Some(list) = v.as_dict_list() {
                        dict.insert("routes".into(), legacy_routes(family, &list));
                    }
                    dict.insert(pname.clone(), v.clone());
                }
                Some(Kind::Dns) => {
                    let servers = v.as_str_list().unwrap_or_default();
                    dict.insert("dns".into(), legacy_dns(family, &servers));
                    dict.insert("dns-data".into(), v.clone());
                }
                Some(Kind::ClonedMac) => {
                    let s = v.as_str().unwrap_or_default();
                    if let Ok(mac) = text::parse_mac(s) {
                        dict.insert("cloned-mac-address".into(), Value::Bytes(mac));
                    }
                    dict.insert("assigned-mac-address".into(), v.clone());
                }
                _ => {
                    // Unknown keys read from a keyfile travel as their text.
                    let v = if setting.raw_keyfile_keys.contains(pname) {
                        Value::Str(crate::keyfile::unescape(v.as_str().unwrap_or_default()))
                    } else {
                        v.clone()
                    };
                    dict.insert(pname.clone(), v);
                }
            }
        }
    }
    out
}

/// Builds a profile from the bus. Known properties must have their D-Bus
/// type; unknown settings and properties are kept as given.
pub fn from_dbus(dict: &SettingsDict) -> Result<Connection, PropertyError> {
    let mut conn = Connection::default();
    for (sname, props) in dict {
        let spec = schema::setting(sname);
        let family = Family::of_setting(sname);
        let setting = conn.setting_mut(sname);
        for (pname, v) in props {
            let v = v.unwrap_variant();
            let bad = |m: String| PropertyError::new(sname, pname, m);
            let Some(spec) = spec else {
                setting.props.insert(pname.clone(), v.clone());
                continue;
            };
            // A legacy name stands for a stored property; it is used only
            // when the new form is absent.
            let (stored, newer) = match LEGACY.iter().find(|(legacy, _)| legacy == pname) {
                Some((_, stored)) if spec.property(stored).is_some() => (*stored, None),
                _ => match spec.property(pname).map(|p| p.kind) {
                    Some(Kind::Addresses | Kind::Routes) | None => (pname.as_str(), None),
                    Some(Kind::Dns) => ("dns", Some("dns-data")),
                    Some(Kind::ClonedMac) => (pname.as_str(), Some("assigned-mac-address")),
                    Some(_) => (pname.as_str(), None),
                },
            };
            if newer.is_some_and(|n| props.contains_key(n)) {
                continue;
            }
            let value = match (pname.as_str(), spec.property(stored).map(|p| p.kind)) {
                (_, None) => v.clone(),
                ("addresses", Some(Kind::Addresses)) | ("routes", Some(Kind::Routes)) => {
                    if props.contains_key(stored) {
                        continue;
                    }
                    let (value, gw) = from_legacy(family, pname, v).map_err(bad)?;
                    if let Some(gw) = gw {
                        setting.props.get_or_insert_with("gateway", || Value::Str(gw));
                    }
                    value
                }
                (_, Some(Kind::Dns)) => from_legacy(family, pname, v).map_err(bad)?.0,
                ("cloned-mac-address", Some(Kind::ClonedMac)) => {
                    let b = v.as_bytes().ok_or_else(|| bad(type_error("ay", v)))?;
                    Value::Str(if b.is_empty() { String::new() } else { text::format_mac(b) })
                }
                (_, Some(kind)) => {
                    let expected = if kind == Kind::ClonedMac { "s" } else { kind.signature() };
                    if v.signature() != expected {
                        return Err(bad(type_error(expected, v)));
                    }
                    v.clone()
                }
            };
            setting.props.insert(stored.to_string(), value);
        }
    }
    Ok(conn)
}

fn type_error(expected: &str, v: &Value) -> String {
    format!("can't set property of type '{expected}' from value of type '{}'", v.signature())
}

fn ip_bytes(family: Family, s: &str) -> Option<Vec<u8>> {
    match (family, s.parse::<IpAddr>().ok()?) {
        (Family::V4, IpAddr::V4(a)) => Some(a.octets().to_vec()),
        (Family::V6, IpAddr::V6(a)) => Some(a.octets().to_vec()),
        _ => None,
    }
}

/// An IPv4 address as NetworkManager's legacy `u` (network byte order).
fn v4_u32(s: &str) -> u32 {
    s.parse::<Ipv4Addr>().map(|a| u32::from_ne_bytes(a.octets())).unwrap_or(0)
}

fn v4_text(n: u32) -> String {
    Ipv4Addr::from(n.to_ne_bytes()).to_string()
}

fn v6_bytes(s: Option<&str>) -> Value {
    Value::Bytes(s.and_then(|s| ip_bytes(Family::V6, s)).unwrap_or_else(|| vec![0; 16]))
}

fn legacy_addresses(family: Family, list: &[VarDict], gateway: Option<&str>) -> Value {
    let items = list.iter().enumerate().filter_map(|(i, a)| {
        let addr = a.get("address")?.as_str()?;
        let prefix = a.get("prefix")?.as_i128()? as u32;
        let gw = if i == 0 { gateway } else { None };
        Some(match family {
            Family::V4 => Value::Array {
                elem: "u".into(),
                items: vec![Value::UInt32(v4_u32(addr)), Value::UInt32(prefix), Value::UInt32(gw.map_or(0, v4_u32))],
            },
            Family::V6 => Value::Struct(vec![v6_bytes(Some(addr)), Value::UInt32(prefix), v6_bytes(gw)]),
        })
    });
    match family {
        Family::V4 => Value::Array { elem: "au".into(), items: items.collect() },
        Family::V6 => Value::Array { elem: "(ayuay)".into(), items: items.collect() },
    }
}

fn legacy_routes(family: Family, list: &[VarDict]) -> Value {
    let items = list.iter().filter_map(|r| {
        let dest = r.get("dest")?.as_str()?;
        let prefix = r.get("prefix")?.as_i128()? as u32;
        let nh = r.get("next-hop").and_then(Value::as_str);
        let metric = r.get("metric").and_then(Value::as_i128).unwrap_or(0) as u32;
        Some(match family {
            Family::V4 => Value::Array {
                elem: "u".into(),
                items: vec![
                    Value::UInt32(v4_u32(dest)),
                    Value::UInt32(prefix),
                    Value::UInt32(nh.map_or(0, v4_u32)),
                    Value::UInt32(metric),
                ],
            },
            Family::V6 => {
                Value::Struct(vec![v6_bytes(Some(dest)), Value::UInt32(prefix), v6_bytes(nh), Value::UInt32(metric)])
            }
        })
    });
    match family {
        Family::V4 => Value::Array { elem: "au".into(), items: items.collect() },
        Family::V6 => Value::Array { elem: "(ayuayu)".into(), items: items.collect() },
    }
}

fn legacy_dns(family: Family, servers: &[String]) -> Value {
    // A DNS-over-TLS server name after '#' has no legacy form.
    let addrs = servers.iter().map(|s| s.split('#').next().unwrap_or(""));
    match family {
        Family::V4 => Value::Array { elem: "u".into(), items: addrs.map(|a| Value::UInt32(v4_u32(a))).collect() },
        Family::V6 => Value::Array {
            elem: "ay".into(),
            items: addrs.filter_map(|a| ip_bytes(Family::V6, a)).map(Value::Bytes).collect(),
        },
    }
}

/// Converts a legacy (or text) IP property into the stored form; returns
/// the gateway carried by the first legacy address, if any.
fn from_legacy(family: Family, name: &str, v: &Value) -> Result<(Value, Option<String>), String> {
    let items = || v.array_items().ok_or_else(|| type_error("array", v));
    let addr_of = |x: &Value| -> Result<String, String> {
        match (family, x.unwrap_variant()) {
            (Family::V4, Value::UInt32(n)) => Ok(v4_text(*n)),
            (Family::V6, Value::Bytes(b)) if b.len() == 16 => {
                let arr: [u8; 16] = b.as_slice().try_into().map_err(|_| "invalid IPv6 address".to_string())?;
                Ok(Ipv6Addr::from(arr).to_string())
            }
            _ => Err(format!("invalid address of type '{}'", x.signature())),
        }
    };
    let u32_of = |x: &Value| x.as_i128().and_then(|n| u32::try_from(n).ok()).ok_or("invalid number".to_string());
    let fields = |x: &Value| -> Result<Vec<Value>, String> {
        match x.unwrap_variant() {
            Value::Struct(f) => Ok(f.clone()),
            other => other.array_items().ok_or_else(|| "invalid entry".to_string()),
        }
    };
    match name {
        "dns" => {
            let list: Vec<String> = items()?.iter().map(addr_of).collect::<Result<_, _>>()?;
            Ok((Value::str_list(list), None))
        }
        "dns-data" | "assigned-mac-address" => {
            let expected = if name == "dns-data" { "as" } else { "s" };
            if v.signature() != expected {
                return Err(type_error(expected, v));
            }
            if name == "dns-data" {
                for s in v.as_str_list().unwrap_or_default() {
                    family.parse_addr(s.split('#').next().unwrap_or(""))?;
                }
            }
            Ok((v.clone(), None))
        }
        "addresses" => {
            let mut gw = None;
            let mut out = Vec::new();
            for (i, entry) in items()?.iter().enumerate() {
                let f = fields(entry)?;
                if f.len() < 2 {
                    return Err("an address needs an address and a prefix".into());
                }
                let addr = addr_of(&f[0])?;
                let prefix = u32_of(&f[1])?;
                if prefix > family.max_prefix() {
                    return Err(format!("invalid prefix {prefix}"));
                }
                if i == 0
                    && let Some(g) = f.get(2)
                {
                    let g = addr_of(g)?;
                    if g.parse::<IpAddr>().is_ok_and(|a| !a.is_unspecified()) {
                        gw = Some(g);
                    }
                }
                out.push(text::parse_address(family, &format!("{addr}/{prefix}"))?);
            }
            Ok((Value::dict_list(out), gw))
        }
        "routes" => {
            let mut out = Vec::new();
            for entry in items()? {
                let f = fields(&entry)?;
                if f.len() < 4 {
                    return Err("a route needs destination, prefix, next hop and metric".into());
                }
                let mut r = text::parse_route(family, &format!("{}/{}", addr_of(&f[0])?, u32_of(&f[1])?), None)?;
                let nh = addr_of(&f[2])?;
                if nh.parse::<IpAddr>().is_ok_and(|a| !a.is_unspecified()) {
                    r.insert("next-hop".into(), Value::Str(nh));
                }
                let metric = u32_of(&f[3])?;
                if metric != 0 {
                    r.insert("metric".into(), Value::UInt32(metric));
                }
                out.push(r);
            }
            Ok((Value::dict_list(out), None))
        }
        _ => Err(format!("unknown legacy property '{name}'")),
    }
}

/// Fuzzing entry point: decodes bytes into a dictionary shape and runs the
/// converter both ways. It must never panic.
pub fn fuzz_entry(data: &[u8]) {
    let mut dict = SettingsDict::new();
    let mut chunks = data.chunks(6);
    while let Some(chunk) = chunks.next() {
        let spec = &schema::SETTINGS[chunk[0] as usize % schema::SETTINGS.len()];
        let mut names: Vec<&str> = spec.properties.iter().map(|p| p.name).collect();
        names.extend(LEGACY.iter().map(|(l, _)| *l));
        let name = names[chunk.get(1).copied().unwrap_or(0) as usize % names.len()];
        let payload = chunks.next().unwrap_or_default();
        let v = fuzz_value(chunk.get(2).copied().unwrap_or(0), payload, 0);
        dict.entry(spec.name.to_string()).or_default().insert(name.to_string(), v);
    }
    if let Ok(conn) = from_dbus(&dict) {
        let _ = crate::validate::normalize_and_validate(conn.clone());
        let back = to_dbus(&conn, true);
        let _ = from_dbus(&back);
        let _ = crate::keyfile::parse(&crate::keyfile::write(&conn));
    }
}

fn fuzz_value(tag: u8, payload: &[u8], depth: u8) -> Value {
    let text = String::from_utf8_lossy(payload).into_owned();
    let n = payload.iter().fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(*b)));
    match (tag % 12, depth) {
        (0, _) => Value::Bool(n % 2 == 0),
        (1, _) => Value::Int32(n as i32),
        (2, _) => Value::UInt32(n as u32),
        (3, _) => Value::Int64(n as i64),
        (4, _) => Value::Str(text),
        (5, _) => Value::Bytes(payload.to_vec()),
        (6, _) => Value::str_list(text.split(',').map(String::from)),
        (7, d) if d < 3 => Value::Array {
            elem: "u".into(),
            items: payload.iter().map(|b| Value::UInt32(u32::from(*b) * 16_843_009)).collect(),
        },
        (8, d) if d < 3 => {
            Value::Array { elem: "au".into(), items: payload.chunks(3).map(|c| fuzz_value(7, c, d + 1)).collect() }
        }
        (9, d) if d < 3 => {
            let mut m = VarDict::new();
            for (i, part) in text.split(',').enumerate() {
                let key = ["address", "prefix", "dest", "next-hop", "metric", "table"][i % 6];
                m.insert(key.into(), fuzz_value(part.len() as u8, part.as_bytes(), d + 1));
            }
            Value::dict_list(vec![m])
        }
        (10, d) if d < 3 => Value::Array {
            elem: "(ayuay)".into(),
            items: vec![Value::Struct(vec![
                Value::Bytes(payload.to_vec()),
                Value::UInt32(n as u32),
                Value::Bytes(vec![]),
            ])],
        },
        _ => Value::UInt64(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual_profile() -> Connection {
        crate::keyfile::parse(
            "[connection]\nid=S\nuuid=efca3932-3bc6-470b-be98-4787f0508e01\ntype=ethernet\n\n[ethernet]\ncloned-mac-address=random\n\n\
             [ipv4]\naddress1=192.168.1.5/24,192.168.1.1\naddress2=10.0.0.2/8\ndns=8.8.8.8;1.1.1.1;\nmethod=manual\nroute1=10.10.0.0/16,192.168.1.254,77\n\n\
             [ipv6]\naddr-gen-mode=default\naddress1=2001:db8::5/64,2001:db8::1\ndns=2001:db8::53;\nmethod=manual\n",
        )
        .unwrap()
    }

    #[test]
    fn emits_new_and_legacy_forms() {
        let d = to_dbus(&manual_profile(), false);
        let v4 = &d["ipv4"];
        let addrs = v4["addresses"].array_items().unwrap();
        let first = addrs[0].array_items().unwrap();
        assert_eq!(first[0], Value::UInt32(u32::from_ne_bytes([192, 168, 1, 5])));
        assert_eq!(first[2], Value::UInt32(u32::from_ne_bytes([192, 168, 1, 1])));
        assert_eq!(v4["dns"].signature(), "au");
        assert_eq!(v4["dns-data"], Value::str_list(["8.8.8.8", "1.1.1.1"]));
        assert_eq!(v4["routes"].signature(), "aau");
        assert_eq!(d["ipv6"]["addresses"].signature(), "a(ayuay)");
        assert_eq!(d["ipv6"]["dns"].signature(), "aay");
        assert_eq!(d["802-3-ethernet"]["assigned-mac-address"], Value::Str("random".into()));
        assert!(!d["802-3-ethernet"].contains_key("cloned-mac-address"));
    }

    #[test]
    fn round_trips_and_accepts_legacy_alone() {
        let c = manual_profile();
        assert_eq!(from_dbus(&to_dbus(&c, true)).unwrap(), c);

        // Only the legacy forms, as a pre-1.0 client sends them.
        let mut d = to_dbus(&c, true);
        for s in ["ipv4", "ipv6"] {
            let set = d.get_mut(s).unwrap();
            set.remove("address-data");
            set.remove("route-data");
            set.remove("dns-data");
        }
        assert_eq!(from_dbus(&d).unwrap(), c);
    }

    #[test]
    fn wrong_types_are_refused_with_names() {
        let mut d = SettingsDict::new();
        d.entry("connection".into()).or_default().insert("autoconnect".into(), Value::Str("yes".into()));
        let e = from_dbus(&d).unwrap_err();
        assert_eq!(e.to_string(), "connection.autoconnect: can't set property of type 'b' from value of type 's'");
        let mut d = SettingsDict::new();
        d.entry("ipv4".into()).or_default().insert("dns-data".into(), Value::str_list(["nonsense"]));
        assert_eq!(from_dbus(&d).unwrap_err().property, "dns-data");
    }

    #[test]
    fn secrets_stay_out_unless_asked() {
        let mut c = manual_profile();
        c.set("802-11-wireless-security", "psk", Value::Str("secret123".into()));
        assert!(!to_dbus(&c, false)["802-11-wireless-security"].contains_key("psk"));
        assert!(to_dbus(&c, true)["802-11-wireless-security"].contains_key("psk"));
    }

    #[test]
    fn fuzz_entry_survives_samples() {
        for seed in 0u8..=255 {
            let data: Vec<u8> = (0..64).map(|i| seed.wrapping_mul(i).wrapping_add(i)).collect();
            fuzz_entry(&data);
        }
    }
}
