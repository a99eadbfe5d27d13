//! The native TOML form of a profile (`*.toml`): the same settings and
//! properties as a keyfile, with TOML's own types instead of GLib's string
//! escapes. Group names may be canonical or the keyfile aliases; the writer
//! uses the aliases.
//!
//! ```toml
//! [connection]
//! id = "office"
//! uuid = "efca3932-3bc6-470b-be98-4787f0508e01"
//! type = "ethernet"
//!
//! [ipv4]
//! method = "manual"
//! addresses = ["192.168.1.5/24"]
//! gateway = "192.168.1.1"
//! routes = [{ dest = "10.10.0.0/16", next-hop = "192.168.1.254", metric = 77 }]
//! ```

use std::collections::BTreeMap;

use toml::Value as T;

use crate::connection::Connection;
use crate::schema::{self, Kind, PropertySpec};
use crate::text::{self, Family};
use crate::value::{Value, VarDict};

/// TOML spells the stored D-Bus names the way people write them.
const TOML_NAMES: &[(&str, &str)] = &[("address-data", "addresses"), ("route-data", "routes")];

fn toml_key(prop: &str) -> &str {
    TOML_NAMES.iter().find(|(p, _)| *p == prop).map_or(prop, |(_, t)| t)
}

fn prop_of_key(key: &str) -> &str {
    TOML_NAMES.iter().find(|(_, t)| *t == key).map_or(key, |(p, _)| p)
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TomlError {
    pub line: usize,
    pub message: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Best-effort line of `key` inside `[group]`, for messages about values.
fn line_of_key(text: &str, group: &str, key: &str) -> usize {
    let mut in_group = false;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            in_group = t.trim_matches(|c| c == '[' || c == ']').trim() == group;
        } else if in_group && t.split('=').next().is_some_and(|k| k.trim().trim_matches('"') == key) {
            return i + 1;
        }
    }
    1
}

pub fn parse(text: &str) -> Result<Connection, TomlError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| TomlError {
        line: e.span().map_or(1, |s| line_of(text, s.start)),
        message: e.message().trim().to_string(),
    })?;
    let mut conn = Connection::default();
    for (group, body) in &table {
        let T::Table(body) = body else {
            return Err(TomlError {
                line: line_of_key(text, "", group),
                message: format!("'{group}' must be a table"),
            });
        };
        let spec = schema::setting_by_group(group);
        let sname = spec.map_or(group.as_str(), |s| s.name);
        let setting = conn.setting_mut(sname);
        for (key, v) in body {
            let bad =
                |m: String| TomlError { line: line_of_key(text, group, key), message: format!("{sname}.{key}: {m}") };
            let pname = if spec.is_some() { prop_of_key(key) } else { key.as_str() };
            let value = match spec.and_then(|s| s.property(pname)) {
                Some(prop) => decode(sname, prop, v).map_err(bad)?,
                None => generic_from_toml(v).map_err(bad)?,
            };
            setting.props.insert(pname.to_string(), value);
        }
    }
    Ok(conn)
}

pub fn write(conn: &Connection) -> String {
    let mut root = toml::Table::new();
    // The keyfile writer's group order also reads best in TOML.
    let mut order: Vec<&String> = conn.settings.keys().collect();
    let rank = |n: &str| match n {
        "connection" => 0,
        "ipv4" => 3,
        "ipv6" => 4,
        "proxy" => 5,
        _ if Some(n) == conn.connection_type() => 1,
        _ => 2,
    };
    order.sort_by_key(|n| rank(n));
    for name in order {
        let setting = &conn.settings[name];
        let spec = schema::setting(name);
        let mut body = toml::Table::new();
        for (pname, v) in &setting.props {
            let t = match spec.and_then(|s| s.property(pname)) {
                Some(_) if setting.raw_keyfile_keys.contains(pname) => T::String(v.as_str().unwrap_or_default().into()),
                Some(prop) => {
                    if prop.secret && !conn.secret_is_system_owned(name, pname) {
                        continue;
                    }
                    encode(name, prop, v)
                }
                None if setting.raw_keyfile_keys.contains(pname) => {
                    T::String(crate::keyfile::unescape(v.as_str().unwrap_or_default()))
                }
                None => generic_to_toml(v),
            };
            let key = if spec.is_some() { toml_key(pname) } else { pname.as_str() };
            body.insert(key.to_string(), t);
        }
        root.insert(spec.map_or(name.as_str(), |s| s.keyfile_group()).to_string(), T::Table(body));
    }
    toml::to_string(&root).unwrap_or_default()
}

fn want(what: &str, v: &T) -> String {
    format!("expected {what}, found {}", v.type_str())
}

fn int<N: TryFrom<i64>>(v: &T) -> Result<N, String> {
    let n = v.as_integer().ok_or_else(|| want("an integer", v))?;
    N::try_from(n).map_err(|_| format!("{n} is out of range"))
}

fn string(v: &T) -> Result<&str, String> {
    v.as_str().ok_or_else(|| want("a string", v))
}

fn strings(v: &T) -> Result<Vec<String>, String> {
    let arr = v.as_array().ok_or_else(|| want("an array of strings", v))?;
    arr.iter().map(|x| string(x).map(String::from)).collect()
}

fn decode(setting: &str, prop: &PropertySpec, v: &T) -> Result<Value, String> {
    let family = Family::of_setting(setting);
    Ok(match prop.kind {
        Kind::Bool => Value::Bool(v.as_bool().ok_or_else(|| want("a boolean", v))?),
        Kind::Int32 => Value::Int32(int(v)?),
        Kind::UInt32 => Value::UInt32(int(v)?),
        Kind::Int64 => Value::Int64(int(v)?),
        Kind::UInt64 => Value::UInt64(int(v)?),
        Kind::Str if setting == "connection" && prop.name == "type" => {
            let t = string(v)?;
            Value::Str(schema::setting_by_group(t).map_or(t, |s| s.name).to_string())
        }
        Kind::Str | Kind::ClonedMac => Value::Str(string(v)?.to_string()),
        Kind::StrList | Kind::Dns => Value::str_list(strings(v)?),
        Kind::Bytes => Value::Bytes(bytes(v)?),
        Kind::Mac => Value::Bytes(text::parse_mac(string(v)?)?),
        Kind::Ssid => Value::Bytes(match v.as_str() {
            Some(s) => s.as_bytes().to_vec(),
            None => bytes(v)?,
        }),
        Kind::Cert => Value::Bytes(text::parse_cert(string(v)?)?),
        Kind::IntNick(nicks) => Value::Int32(match v {
            T::String(s) => crate::keyfile::parse_nick(nicks, s)?,
            _ => int(v)?,
        }),
        Kind::OptionsInGroup | Kind::OptionsGroup(_) => {
            let t = v.as_table().ok_or_else(|| want("a table of strings", v))?;
            let map: BTreeMap<String, String> =
                t.iter().map(|(k, x)| Ok((k.clone(), string(x)?.to_string()))).collect::<Result<_, String>>()?;
            Value::str_map(&map)
        }
        Kind::Addresses => Value::dict_list(list(v, |x| match x {
            T::String(s) => text::parse_address(family, s),
            T::Table(t) => {
                let mut d =
                    text::parse_address(family, string(t.get("address").ok_or("an address needs 'address'")?)?)?;
                for (k, x) in t.iter().filter(|(k, _)| *k != "address") {
                    d.insert(k.clone(), generic_from_toml(x)?);
                }
                Ok(d)
            }
            other => Err(want("a string or a table", other)),
        })?),
        Kind::Routes => Value::dict_list(list(v, |x| match x {
            T::String(s) => text::parse_route(family, s, None),
            T::Table(t) => route_from_table(family, t),
            other => Err(want("a string or a table", other)),
        })?),
        Kind::RoutingRules => Value::dict_list(list(v, |x| text::parse_rule(family, string(x)?))?),
        Kind::BridgeVlans => Value::dict_list(list(v, |x| text::parse_bridge_vlan(string(x)?))?),
        Kind::TcQdiscs => Value::dict_list(list(v, |x| text::parse_tc_qdisc(string(x)?))?),
        Kind::TcFilters => Value::dict_list(list(v, |x| text::parse_tc_tfilter(string(x)?))?),
        Kind::WireguardPeers => Value::dict_list(list(v, |x| {
            let t = x.as_table().ok_or_else(|| want("a table", x))?;
            t.iter()
                .map(|(k, x)| {
                    let val = match k.as_str() {
                        "allowed-ips" => Value::str_list(strings(x)?),
                        "preshared-key-flags" | "persistent-keepalive" => Value::UInt32(int(x)?),
                        _ => Value::Str(string(x)?.to_string()),
                    };
                    Ok((k.clone(), val))
                })
                .collect()
        })?),
    })
}

fn list(v: &T, each: impl Fn(&T) -> Result<VarDict, String>) -> Result<Vec<VarDict>, String> {
    v.as_array().ok_or_else(|| want("an array", v))?.iter().map(each).collect()
}

fn bytes(v: &T) -> Result<Vec<u8>, String> {
    let arr = v.as_array().ok_or_else(|| want("an array of bytes", v))?;
    arr.iter().map(int::<u8>).collect()
}

fn route_from_table(family: Family, t: &toml::Table) -> Result<VarDict, String> {
    let dest = string(t.get("dest").ok_or("a route needs 'dest'")?)?;
    let mut d = text::parse_route(family, dest, None)?;
    for (k, x) in t.iter().filter(|(k, _)| *k != "dest") {
        let textual = match x {
            T::String(s) => s.clone(),
            T::Integer(n) => n.to_string(),
            T::Boolean(b) => b.to_string(),
            other => return Err(want("a scalar", other)),
        };
        let val = match k.as_str() {
            "next-hop" => Value::Str(family.parse_addr(&textual)?.to_string()),
            "metric" => Value::UInt32(textual.parse().map_err(|_| format!("invalid metric '{textual}'"))?),
            _ => text::route_attribute(k, &textual)?,
        };
        d.insert(k.clone(), val);
    }
    Ok(d)
}

fn encode(setting: &str, prop: &PropertySpec, v: &Value) -> T {
    let family = Family::of_setting(setting);
    let dicts = || v.as_dict_list().unwrap_or_default();
    match prop.kind {
        Kind::Str if setting == "connection" && prop.name == "type" => {
            let t = v.as_str().unwrap_or_default();
            T::String(schema::setting(t).and_then(|s| s.alias).unwrap_or(t).to_string())
        }
        Kind::Mac => T::String(text::format_mac(v.as_bytes().unwrap_or_default())),
        Kind::Ssid => {
            let b = v.as_bytes().unwrap_or_default();
            text::ssid_as_text(b).map_or_else(|| generic_to_toml(v), |s| T::String(s.to_string()))
        }
        Kind::Cert => T::String(text::format_cert(v.as_bytes().unwrap_or_default())),
        Kind::IntNick(nicks) => T::String(crate::keyfile::nick_of(nicks, v.as_i128().unwrap_or(0) as i32)),
        Kind::Addresses => T::Array(
            dicts()
                .iter()
                .map(|a| {
                    let text = text::format_address(a).unwrap_or_default();
                    if a.len() <= 2 {
                        return T::String(text);
                    }
                    let mut t = toml::Table::new();
                    t.insert("address".into(), T::String(text));
                    for (k, x) in a.iter().filter(|(k, _)| !matches!(k.as_str(), "address" | "prefix")) {
                        t.insert(k.clone(), generic_to_toml(x));
                    }
                    T::Table(t)
                })
                .collect(),
        ),
        Kind::Routes => T::Array(
            dicts()
                .iter()
                .map(|r| {
                    let mut t = toml::Table::new();
                    let dest = r.get("dest").and_then(Value::as_str).unwrap_or_default();
                    let prefix = r.get("prefix").and_then(Value::as_i128).unwrap_or(family.max_prefix() as i128);
                    t.insert("dest".into(), T::String(format!("{dest}/{prefix}")));
                    for (k, x) in r.iter().filter(|(k, _)| !matches!(k.as_str(), "dest" | "prefix")) {
                        t.insert(k.clone(), generic_to_toml(x));
                    }
                    T::Table(t)
                })
                .collect(),
        ),
        Kind::RoutingRules => T::Array(dicts().iter().map(|r| T::String(text::format_rule(r))).collect()),
        Kind::BridgeVlans => T::Array(dicts().iter().map(|r| T::String(text::format_bridge_vlan(r))).collect()),
        Kind::TcQdiscs => T::Array(dicts().iter().map(|q| T::String(text::format_tc_qdisc(q, true))).collect()),
        Kind::TcFilters => T::Array(dicts().iter().map(|f| T::String(text::format_tc_tfilter(f, true))).collect()),
        _ => generic_to_toml(v),
    }
}

/// Any value, by its shape (used for properties the schema does not know).
fn generic_to_toml(v: &Value) -> T {
    match v.unwrap_variant() {
        Value::Bool(b) => T::Boolean(*b),
        Value::Double(d) => T::Float(*d),
        Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => T::String(s.clone()),
        Value::UInt64(n) if *n > i64::MAX as u64 => T::String(n.to_string()),
        Value::Bytes(b) => T::Array(b.iter().map(|x| T::Integer(i64::from(*x))).collect()),
        Value::Array { items, .. } | Value::Struct(items) => T::Array(items.iter().map(generic_to_toml).collect()),
        Value::Dict { entries, .. } => {
            T::Table(entries.iter().map(|(k, x)| (text::scalar_text(k), generic_to_toml(x))).collect())
        }
        other => T::Integer(other.as_i128().unwrap_or(0) as i64),
    }
}

fn generic_from_toml(v: &T) -> Result<Value, String> {
    Ok(match v {
        T::Boolean(b) => Value::Bool(*b),
        T::Integer(n) => Value::Int64(*n),
        T::Float(f) => Value::Double(*f),
        T::String(s) => Value::Str(s.clone()),
        T::Array(a) if a.iter().all(T::is_str) => Value::str_list(a.iter().filter_map(T::as_str)),
        T::Array(a) if a.iter().all(T::is_table) => {
            Value::dict_list(a.iter().map(generic_dict).collect::<Result<_, _>>()?)
        }
        T::Table(_) => Value::var_dict(generic_dict(v)?),
        other => return Err(format!("unsupported value of type {}", other.type_str())),
    })
}

fn generic_dict(v: &T) -> Result<VarDict, String> {
    let t = v.as_table().ok_or_else(|| want("a table", v))?;
    t.iter().map(|(k, x)| Ok((k.clone(), generic_from_toml(x)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyfile_to_toml_and_back() {
        let kf = "[connection]\nid=S\nuuid=efca3932-3bc6-470b-be98-4787f0508e01\ntype=ethernet\nautoconnect-priority=10\n\n\
                  [ethernet]\nmac-address=00:11:22:33:44:55\n\n[ipv4]\naddress1=192.168.1.5/24,192.168.1.1\ndns=8.8.8.8;\nmethod=manual\n\
                  route1=10.10.0.0/16,192.168.1.254,77\nroute1_options=table=100\n\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n\n[proxy]\n";
        let c = crate::keyfile::parse(kf).unwrap();
        let t = write(&c);
        assert!(t.contains("type = \"ethernet\""), "{t}");
        assert!(t.contains("addresses = [\"192.168.1.5/24\"]"), "{t}");
        let back = parse(&t).unwrap();
        assert_eq!(back, c);
        assert_eq!(crate::keyfile::write(&back), kf);
    }

    #[test]
    fn errors_name_line_and_property() {
        let e = parse("[connection]\nid = \"x\"\nautoconnect = \"yes\"\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.message, "connection.autoconnect: expected a boolean, found string");
        let e = parse("[connection]\nid = \n").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
