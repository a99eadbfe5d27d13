//! `setting.property value` as `nmcli connection add|modify` takes them: the
//! names (with nmcli's aliases), each value parsed by the property's kind in
//! nm-model's schema, and the same values formatted back for `show`.

use nm_model::schema::{self, Kind, PropertySpec, SettingSpec};
use nm_model::text::{self, Family};
use nm_model::{Connection, Value};

/// What an edit does to a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `ipv4.dns 1.1.1.1`: replace (an empty value resets the property).
    Set,
    /// `+ipv4.dns 1.1.1.1`: append to a list.
    Append,
    /// `-ipv4.dns 1.1.1.1`: remove from a list.
    Remove,
}

/// One `[+|-]setting.property value` pair, names resolved against the schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub setting: &'static str,
    pub property: &'static str,
    pub op: Op,
    pub value: String,
}

/// nmcli's short names for the most used properties.
const ALIASES: &[(&str, &str, &str)] = &[
    ("type", "connection", "type"),
    ("con-name", "connection", "id"),
    ("ifname", "connection", "interface-name"),
    ("autoconnect", "connection", "autoconnect"),
    ("ip4", "ipv4", "address-data"),
    ("gw4", "ipv4", "gateway"),
    ("ip6", "ipv6", "address-data"),
    ("gw6", "ipv6", "gateway"),
];

/// nmcli's property names that differ from the stored (D-Bus) ones.
fn property_alias(setting: &str, prop: &str) -> Option<&'static str> {
    match (setting, prop) {
        ("ipv4" | "ipv6", "addresses") => Some("address-data"),
        ("ipv4" | "ipv6", "routes") => Some("route-data"),
        _ => None,
    }
}

/// The name nmcli shows for a stored property (`address-data` → `addresses`).
pub fn display_name(setting: &str, prop: &str) -> String {
    match (setting, prop) {
        ("ipv4" | "ipv6", "address-data") => "addresses".into(),
        ("ipv4" | "ipv6", "route-data") => "routes".into(),
        _ => prop.to_string(),
    }
}

/// Resolves `ipv4.addresses`, `ethernet.mtu`, `ifname`, … to the schema.
pub fn resolve(name: &str) -> Result<(&'static SettingSpec, &'static PropertySpec), String> {
    if let Some((_, s, p)) = ALIASES.iter().find(|(a, _, _)| *a == name) {
        let spec = schema::setting(s).ok_or_else(|| format!("unknown setting '{s}'"))?;
        let prop = spec.property(p).ok_or_else(|| format!("unknown property '{name}'"))?;
        return Ok((spec, prop));
    }
    let (s, p) = name
        .split_once('.')
        .ok_or_else(|| format!("'{name}' is not a property: expected setting.property (e.g. ipv4.method)"))?;
    let spec = schema::setting_by_group(s).ok_or_else(|| format!("unknown setting '{s}' in '{name}'"))?;
    let p = property_alias(spec.name, p).unwrap_or(p);
    let prop = spec.property(p).ok_or_else(|| format!("unknown property '{name}'"))?;
    Ok((spec, prop))
}

/// Pairs of `[+|-]name value` from the command line.
pub fn parse_pairs(args: &[String]) -> Result<Vec<Edit>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(name) = it.next() {
        let (op, bare) = match name.as_bytes().first() {
            Some(b'+') => (Op::Append, &name[1..]),
            Some(b'-') => (Op::Remove, &name[1..]),
            _ => (Op::Set, name.as_str()),
        };
        let (setting, prop) = resolve(bare)?;
        let value = it.next().ok_or_else(|| format!("'{name}' lacks a value"))?;
        if op != Op::Set && !is_list(prop.kind) {
            return Err(format!("'{name}': {}.{} is not a list", setting.name, display_name(setting.name, prop.name)));
        }
        out.push(Edit { setting: setting.name, property: prop.name, op, value: value.clone() });
    }
    Ok(out)
}

fn is_list(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::StrList
            | Kind::Dns
            | Kind::Addresses
            | Kind::Routes
            | Kind::RoutingRules
            | Kind::BridgeVlans
            | Kind::TcQdiscs
            | Kind::TcFilters
            | Kind::OptionsInGroup
            | Kind::OptionsGroup(_)
    )
}

/// Applies edits in order. Errors name the property and the value.
pub fn apply(conn: &mut Connection, edits: &[Edit]) -> Result<(), String> {
    for e in edits {
        let spec = schema::setting(e.setting).ok_or_else(|| format!("unknown setting '{}'", e.setting))?;
        let prop = spec.property(e.property).ok_or_else(|| format!("unknown property '{}'", e.property))?;
        let shown = format!("{}.{}", e.setting, display_name(e.setting, e.property));
        let bad = |m: String| format!("invalid value '{}' for {shown}: {m}", e.value);
        if e.op == Op::Set && e.value.trim().is_empty() {
            if let Some(s) = conn.settings.get_mut(e.setting) {
                s.props.remove(e.property);
            }
            continue;
        }
        let parsed = parse_value(spec, prop, &e.value).map_err(bad)?;
        let value = match e.op {
            Op::Set => parsed,
            Op::Append | Op::Remove => {
                let old = conn.get(e.setting, e.property).cloned();
                combine(old.as_ref(), &parsed, e.op == Op::Append)
                    .ok_or_else(|| bad("the stored value is not a list".into()))?
            }
        };
        conn.set(e.setting, e.property, value);
    }
    Ok(())
}

/// `old + new` or `old - new` for list values of the same shape.
fn combine(old: Option<&Value>, new: &Value, append: bool) -> Option<Value> {
    match new {
        Value::Array { elem, items } => {
            let mut list = match old.map(Value::unwrap_variant) {
                Some(Value::Array { items, .. }) => items.clone(),
                None => Vec::new(),
                Some(_) => return None,
            };
            if append {
                list.extend(items.iter().filter(|i| !list.contains(i)).cloned().collect::<Vec<_>>());
            } else {
                list.retain(|i| !items.contains(i));
            }
            Some(Value::Array { elem: elem.clone(), items: list })
        }
        Value::Dict { key, value, entries } => {
            let mut list = match old.map(Value::unwrap_variant) {
                Some(Value::Dict { entries, .. }) => entries.clone(),
                None => Vec::new(),
                Some(_) => return None,
            };
            for (k, v) in entries {
                list.retain(|(ok, _)| ok != k);
                if append {
                    list.push((k.clone(), v.clone()));
                }
            }
            Some(Value::Dict { key: key.clone(), value: value.clone(), entries: list })
        }
        _ => None,
    }
}

fn items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

/// One property value from nmcli-style text.
pub fn parse_value(spec: &SettingSpec, prop: &PropertySpec, s: &str) -> Result<Value, String> {
    let t = s.trim();
    let family = Family::of_setting(spec.name);
    let int_err = |_| format!("'{t}' is not a valid number");
    Ok(match prop.kind {
        Kind::Bool => Value::Bool(text::parse_bool(t).ok_or_else(|| format!("'{t}' is not a boolean (yes/no)"))?),
        Kind::Int32 => Value::Int32(t.parse().map_err(int_err)?),
        Kind::UInt32 => Value::UInt32(t.parse().map_err(int_err)?),
        Kind::Int64 => Value::Int64(t.parse().map_err(int_err)?),
        Kind::UInt64 => Value::UInt64(t.parse().map_err(int_err)?),
        Kind::IntNick(nicks) => Value::Int32(
            nicks.iter().find(|(_, n)| *n == t).map(|(v, _)| *v).or_else(|| t.parse().ok()).ok_or_else(|| {
                let names: Vec<&str> = nicks.iter().map(|(_, n)| *n).collect();
                format!("expected one of {}", names.join(", "))
            })?,
        ),
        Kind::Str if spec.name == "connection" && prop.name == "type" => {
            let ty = schema::setting_by_group(t)
                .filter(|s| s.base_type.is_some())
                .ok_or_else(|| format!("unknown connection type '{t}'"))?;
            Value::Str(ty.name.to_string())
        }
        Kind::Str | Kind::ClonedMac => Value::Str(t.to_string()),
        Kind::StrList => Value::str_list(items(t)),
        Kind::Dns => {
            let servers: Vec<&str> = t.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()).collect();
            for server in &servers {
                family.parse_addr(server.split('#').next().unwrap_or(server))?;
            }
            Value::str_list(servers)
        }
        Kind::Bytes => Value::Bytes(text::parse_byte_list(t)?),
        Kind::Mac => Value::Bytes(text::parse_mac(t)?),
        Kind::Ssid => Value::Bytes(t.as_bytes().to_vec()),
        Kind::Cert => Value::Bytes(text::parse_cert(t)?),
        Kind::OptionsInGroup | Kind::OptionsGroup(_) => {
            let map = items(t)
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .ok_or_else(|| format!("'{kv}' is not key=value"))
                })
                .collect::<Result<_, _>>()?;
            Value::str_map(&map)
        }
        Kind::Addresses => {
            Value::dict_list(items(t).map(|a| text::parse_address(family, a)).collect::<Result<_, _>>()?)
        }
        Kind::Routes => Value::dict_list(items(t).map(|r| parse_route(family, r)).collect::<Result<_, _>>()?),
        Kind::RoutingRules => {
            Value::dict_list(items(t).map(|r| text::parse_rule(family, r)).collect::<Result<_, _>>()?)
        }
        Kind::BridgeVlans => Value::dict_list(items(t).map(text::parse_bridge_vlan).collect::<Result<_, _>>()?),
        Kind::TcQdiscs => Value::dict_list(items(t).map(text::parse_tc_qdisc).collect::<Result<_, _>>()?),
        Kind::TcFilters => Value::dict_list(items(t).map(text::parse_tc_tfilter).collect::<Result<_, _>>()?),
        Kind::WireguardPeers => {
            return Err("peers cannot be set on the command line; use `nmctl connection edit`".into());
        }
    })
}

/// nmcli's route text: `DEST/PREFIX [NEXT-HOP] [METRIC] [attr=value …]`.
fn parse_route(family: Family, s: &str) -> Result<nm_model::VarDict, String> {
    let mut toks = s.split_whitespace();
    let dest = toks.next().ok_or("empty route")?;
    let (mut nh, mut metric, mut opts) = (None, None, Vec::new());
    for tok in toks {
        if tok.contains('=') {
            opts.push(tok);
        } else if nh.is_none() && metric.is_none() && family.parse_addr(tok).is_ok() {
            nh = Some(tok);
        } else if metric.is_none() && tok.parse::<u32>().is_ok() {
            metric = Some(tok);
        } else {
            return Err(format!("unexpected '{tok}' in route '{s}'"));
        }
    }
    let mut keyfile = dest.to_string();
    if nh.is_some() || metric.is_some() {
        keyfile.push(',');
        keyfile.push_str(nh.unwrap_or(family.unspecified()));
    }
    if let Some(m) = metric {
        keyfile.push(',');
        keyfile.push_str(m);
    }
    let opts = opts.join(",");
    text::parse_route(family, &keyfile, (!opts.is_empty()).then_some(opts.as_str()))
}

/// A stored value as nmcli-style text (what `parse_value` reads back).
pub fn format_value(setting: &str, prop: &str, v: &Value) -> String {
    let kind = schema::setting(setting).and_then(|s| s.property(prop)).map(|p| p.kind);
    let family = Family::of_setting(setting);
    let dicts = || v.as_dict_list().unwrap_or_default();
    match (kind, v.unwrap_variant()) {
        (_, Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        (Some(Kind::IntNick(nicks)), v) => {
            let n = v.as_i128().unwrap_or_default();
            nicks.iter().find(|(k, _)| i128::from(*k) == n).map_or_else(|| n.to_string(), |(_, s)| s.to_string())
        }
        (Some(Kind::Mac), Value::Bytes(b)) => text::format_mac(b),
        (Some(Kind::Ssid), Value::Bytes(b)) => {
            text::ssid_as_text(b).map_or_else(|| text::format_byte_list(b), str::to_string)
        }
        (Some(Kind::Cert), Value::Bytes(b)) => text::format_cert(b),
        (Some(Kind::Addresses), _) => dicts().iter().filter_map(text::format_address).collect::<Vec<_>>().join(", "),
        (Some(Kind::Routes), _) => dicts().iter().map(|d| format_route(family, d)).collect::<Vec<_>>().join(", "),
        (Some(Kind::RoutingRules), _) => dicts().iter().map(text::format_rule).collect::<Vec<_>>().join(", "),
        (Some(Kind::BridgeVlans), _) => dicts().iter().map(text::format_bridge_vlan).collect::<Vec<_>>().join(", "),
        (Some(Kind::TcQdiscs), _) => {
            dicts().iter().map(|q| text::format_tc_qdisc(q, true)).collect::<Vec<_>>().join(", ")
        }
        (Some(Kind::TcFilters), _) => {
            dicts().iter().map(|f| text::format_tc_tfilter(f, true)).collect::<Vec<_>>().join(", ")
        }
        (Some(Kind::WireguardPeers), _) => dicts()
            .iter()
            .filter_map(|d| d.get("public-key").and_then(Value::as_str).map(str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        (_, Value::Bytes(b)) => text::format_byte_list(b),
        (_, Value::Array { .. }) if v.as_str_list().is_some() => v.as_str_list().unwrap_or_default().join(", "),
        (_, Value::Dict { .. }) if v.as_str_map().is_some() => {
            v.as_str_map().unwrap_or_default().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
        }
        (_, other) => text::scalar_text(other),
    }
}

fn format_route(family: Family, d: &nm_model::VarDict) -> String {
    let Some((text, opts)) = text::format_route(family, d) else {
        return String::new();
    };
    // Keyfile `dest,nh,metric` → nmcli `dest nh metric attr=value`.
    let mut out: Vec<String> = text.split(',').map(str::to_string).collect();
    if out.get(1).is_some_and(|nh| nh == family.unspecified()) && out.len() == 2 {
        out.truncate(1);
    }
    if let Some(o) = opts {
        out.extend(o.split(',').map(str::to_string));
    }
    out.join(" ")
}

/// A stored value for `--json`: booleans and numbers as such, lists as
/// arrays of their text form, everything else as text.
pub fn json_value(setting: &str, prop: &str, v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    let kind = schema::setting(setting).and_then(|s| s.property(prop)).map(|p| p.kind);
    match (kind, v.unwrap_variant()) {
        (Some(Kind::IntNick(_)), _) => J::String(format_value(setting, prop, v)),
        (_, Value::Bool(b)) => J::Bool(*b),
        (_, Value::Double(d)) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        (_, other) if other.as_i128().is_some() => {
            let n = other.as_i128().unwrap_or_default();
            i64::try_from(n)
                .map(J::from)
                .or_else(|_| u64::try_from(n).map(J::from))
                .unwrap_or_else(|_| J::String(n.to_string()))
        }
        (
            Some(
                Kind::Addresses
                | Kind::Routes
                | Kind::RoutingRules
                | Kind::BridgeVlans
                | Kind::TcQdiscs
                | Kind::TcFilters,
            ),
            _,
        ) => {
            let family = Family::of_setting(setting);
            let list = v.as_dict_list().unwrap_or_default();
            J::Array(
                list.iter()
                    .map(|d| match kind {
                        Some(Kind::Addresses) => text::format_address(d).unwrap_or_default(),
                        Some(Kind::Routes) => format_route(family, d),
                        Some(Kind::RoutingRules) => text::format_rule(d),
                        Some(Kind::TcQdiscs) => text::format_tc_qdisc(d, true),
                        Some(Kind::TcFilters) => text::format_tc_tfilter(d, true),
                        _ => text::format_bridge_vlan(d),
                    })
                    .map(J::String)
                    .collect(),
            )
        }
        (_, Value::Array { .. }) if v.as_str_list().is_some() => {
            J::Array(v.as_str_list().unwrap_or_default().into_iter().map(J::String).collect())
        }
        (_, Value::Dict { .. }) if v.as_str_map().is_some() => {
            J::Object(v.as_str_map().unwrap_or_default().into_iter().map(|(k, v)| (k, J::String(v))).collect())
        }
        _ => J::String(format_value(setting, prop, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_and_aliases_resolve_to_the_schema() {
        let edits = parse_pairs(&args(&[
            "type",
            "ethernet",
            "con-name",
            "office",
            "ifname",
            "eth0",
            "ethernet.mtu",
            "1400",
            "ipv4.addresses",
            "192.0.2.10/24",
            "gw4",
            "192.0.2.1",
            "+ipv4.dns",
            "192.0.2.53",
            "-ipv6.dns",
            "2001:db8::53",
        ]))
        .unwrap();
        let names: Vec<(&str, &str, Op)> = edits.iter().map(|e| (e.setting, e.property, e.op)).collect();
        assert_eq!(
            names,
            vec![
                ("connection", "type", Op::Set),
                ("connection", "id", Op::Set),
                ("connection", "interface-name", Op::Set),
                ("802-3-ethernet", "mtu", Op::Set),
                ("ipv4", "address-data", Op::Set),
                ("ipv4", "gateway", Op::Set),
                ("ipv4", "dns", Op::Append),
                ("ipv6", "dns", Op::Remove),
            ]
        );
    }

    #[test]
    fn bad_names_and_missing_values_are_reported() {
        assert_eq!(parse_pairs(&args(&["ipv4.bogus", "1"])).unwrap_err(), "unknown property 'ipv4.bogus'");
        assert_eq!(parse_pairs(&args(&["nosuch.x", "1"])).unwrap_err(), "unknown setting 'nosuch' in 'nosuch.x'");
        assert_eq!(parse_pairs(&args(&["ipv4.method"])).unwrap_err(), "'ipv4.method' lacks a value");
        assert_eq!(
            parse_pairs(&args(&["+ipv4.method", "auto"])).unwrap_err(),
            "'+ipv4.method': ipv4.method is not a list"
        );
        assert!(parse_pairs(&args(&["method", "auto"])).unwrap_err().contains("expected setting.property"));
    }

    #[test]
    fn values_are_parsed_by_kind() {
        let mut c = Connection::default();
        let edits = parse_pairs(&args(&[
            "type",
            "ethernet",
            "connection.autoconnect",
            "no",
            "ipv4.addresses",
            "192.0.2.10/24, 192.0.2.11",
            "ipv4.routes",
            "10.0.0.0/8 192.0.2.254 50 table=100, 198.51.100.0/24",
            "ipv4.dns",
            "192.0.2.53 192.0.2.54",
            "ethernet.mac-address",
            "00:11:22:33:44:55",
            "ipv6.addr-gen-mode",
            "eui64",
        ]))
        .unwrap();
        apply(&mut c, &edits).unwrap();
        assert_eq!(c.get_str("connection", "type"), Some("802-3-ethernet"));
        assert_eq!(c.get("connection", "autoconnect"), Some(&Value::Bool(false)));
        let show = |s: &str, p: &str| format_value(s, p, c.get(s, p).unwrap());
        assert_eq!(show("ipv4", "address-data"), "192.0.2.10/24, 192.0.2.11/32");
        assert_eq!(show("ipv4", "route-data"), "10.0.0.0/8 192.0.2.254 50 table=100, 198.51.100.0/24");
        assert_eq!(show("ipv4", "dns"), "192.0.2.53, 192.0.2.54");
        assert_eq!(show("802-3-ethernet", "mac-address"), "00:11:22:33:44:55");
        assert_eq!(show("ipv6", "addr-gen-mode"), "eui64");
        assert_eq!(show("connection", "autoconnect"), "no");
        assert_eq!(
            json_value("ipv4", "route-data", c.get("ipv4", "route-data").unwrap()),
            serde_json::json!(["10.0.0.0/8 192.0.2.254 50 table=100", "198.51.100.0/24"])
        );
        assert_eq!(json_value("connection", "autoconnect", &Value::Bool(false)), serde_json::json!(false));
    }

    #[test]
    fn lists_append_remove_and_reset() {
        let mut c = Connection::default();
        let run = |c: &mut Connection, a: &[&str]| apply(c, &parse_pairs(&args(a)).unwrap());
        run(&mut c, &["ipv4.dns", "192.0.2.1"]).unwrap();
        run(&mut c, &["+ipv4.dns", "192.0.2.2", "+ipv4.dns", "192.0.2.1"]).unwrap();
        assert_eq!(format_value("ipv4", "dns", c.get("ipv4", "dns").unwrap()), "192.0.2.1, 192.0.2.2");
        run(&mut c, &["-ipv4.dns", "192.0.2.1"]).unwrap();
        assert_eq!(format_value("ipv4", "dns", c.get("ipv4", "dns").unwrap()), "192.0.2.2");
        run(&mut c, &["ipv4.dns", ""]).unwrap();
        assert!(c.get("ipv4", "dns").is_none());
    }

    #[test]
    fn invalid_values_name_the_property() {
        let mut c = Connection::default();
        let err = apply(&mut c, &parse_pairs(&args(&["ipv4.addresses", "300.1.2.3/24"])).unwrap()).unwrap_err();
        assert!(err.starts_with("invalid value '300.1.2.3/24' for ipv4.addresses: "), "{err}");
        let err = apply(&mut c, &parse_pairs(&args(&["ethernet.mtu", "big"])).unwrap()).unwrap_err();
        assert_eq!(err, "invalid value 'big' for 802-3-ethernet.mtu: 'big' is not a valid number");
        let err = apply(&mut c, &parse_pairs(&args(&["type", "warp-drive"])).unwrap()).unwrap_err();
        assert_eq!(err, "invalid value 'warp-drive' for connection.type: unknown connection type 'warp-drive'");
        let err = apply(&mut c, &parse_pairs(&args(&["connection.autoconnect", "maybe"])).unwrap()).unwrap_err();
        assert!(err.ends_with("'maybe' is not a boolean (yes/no)"), "{err}");
    }
}
