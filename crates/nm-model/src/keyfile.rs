//! NetworkManager keyfiles (`*.nmconnection`): a GLib key file whose groups
//! are settings. The syntax layer (groups, escapes, lists) is at the top; the
//! mapping to the model walks [`crate::schema`] and handles the few kinds that
//! keyfiles spell differently from D-Bus (numbered `addressN`/`routeN` keys,
//! aliases, byte lists, wireguard peer groups).

use std::collections::BTreeMap;

use crate::connection::{Connection, RawGroup, Setting};
use crate::schema::{self, Kind, PropertySpec, SettingSpec};
use crate::text::{self, Family};
use crate::value::{Value, VarDict};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct KeyfileError {
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> KeyfileError {
    KeyfileError { line, message: message.into() }
}

// ------------------------------------------------------------ syntax ---

struct Entry {
    key: String,
    value: String,
    line: usize,
}

struct Group {
    name: String,
    entries: Vec<Entry>,
}

fn parse_syntax(text: &str) -> Result<Vec<Group>, KeyfileError> {
    let mut groups: Vec<Group> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let l = raw.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(rest) = l.strip_prefix('[') {
            let name = rest
                .trim_end()
                .strip_suffix(']')
                .ok_or_else(|| err(line, format!("invalid group header '{}'", l.trim_end())))?;
            if name.is_empty() || name.contains(['[', ']']) || name.chars().any(char::is_control) {
                return Err(err(line, format!("invalid group name '{name}'")));
            }
            // A repeated group continues the first one, as GLib does.
            if !groups.iter().any(|g| g.name == name) {
                groups.push(Group { name: name.to_string(), entries: Vec::new() });
            }
            let pos = groups.iter().position(|g| g.name == name).unwrap_or(0);
            let g = groups.remove(pos);
            groups.push(g);
            continue;
        }
        let (key, value) = l
            .split_once('=')
            .ok_or_else(|| err(line, format!("'{}' is not a group, a key=value pair or a comment", l.trim_end())))?;
        let key = key.trim_end();
        if key.is_empty() {
            return Err(err(line, "empty key"));
        }
        let group = groups.last_mut().ok_or_else(|| err(line, "key outside of any group"))?;
        let value = value.trim_start().trim_end_matches(['\n', '\r']).to_string();
        group.entries.retain(|e| e.key != key);
        group.entries.push(Entry { key: key.to_string(), value, line });
    }
    Ok(groups)
}

/// GLib string unescaping: `\s \n \t \r \\`; `\;` and `\,` are kept literal
/// characters. An unknown escape keeps its backslash.
pub fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(';') => out.push(';'),
            Some(',') => out.push(','),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A `;`-separated list; `\;` inside an item is a literal semicolon.
pub fn split_list(raw: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ';' => items.push(unescape(&std::mem::take(&mut cur))),
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        items.push(unescape(&cur));
    }
    items
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            ' ' if i == 0 => out.push_str("\\s"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out
}

/// A free-form key (`user.data`'s, `bond.options`') as a keyfile key:
/// control bytes, bytes past ASCII, `=`, `[`, `]`, a `\` that would read
/// as an escape, and a leading or trailing space as `\XX`; the empty key
/// as `\00`. As NetworkManager writes them.
pub fn encode_key(key: &str) -> String {
    if key.is_empty() {
        return "\\00".to_string();
    }
    let bytes = key.as_bytes();
    let mut out = String::with_capacity(key.len());
    for (i, &b) in bytes.iter().enumerate() {
        let escape_like = b == b'\\' && bytes.len() > i + 2 && bytes[i + 1..i + 3].iter().all(u8::is_ascii_hexdigit);
        let edge_space = b == b' ' && (i == 0 || i + 1 == bytes.len());
        if !(0x20..0x7f).contains(&b) || matches!(b, b'=' | b'[' | b']') || escape_like || edge_space {
            out.push_str(&format!("\\{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// The key [`encode_key`] wrote.
pub fn decode_key(key: &str) -> String {
    if key == "\\00" {
        return String::new();
    }
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'\\', Some(v)) if v != 0 => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

pub fn escape_list<S: AsRef<str>>(items: &[S]) -> String {
    items.iter().map(|s| format!("{};", escape(s.as_ref()).replace(';', "\\;"))).collect()
}

// ----------------------------------------------------------- reading ---

/// Parses a keyfile into a profile. The result is not yet validated.
pub fn parse(text: &str) -> Result<Connection, KeyfileError> {
    let mut conn = Connection::default();
    let mut peers: Vec<VarDict> = Vec::new();
    for group in parse_syntax(text)? {
        if let Some(spec) = schema::setting_by_group(&group.name) {
            read_setting(spec, &group, &mut conn)?;
        } else if let Some(key) = group.name.strip_prefix("wireguard-peer.") {
            peers.push(read_peer(key, &group)?);
        } else if let Some((setting, prop)) = options_group(&group.name) {
            // `[ethernet-s390-options]`, `[vpn-secrets]`: one property's map.
            let map = group.entries.iter().map(|e| (decode_key(&e.key), unescape(&e.value))).collect();
            conn.set(setting, prop, Value::str_map(&map));
        } else if is_setting_name(&group.name) {
            let setting = conn.setting_mut(&group.name);
            for e in &group.entries {
                setting.props.insert(e.key.clone(), Value::Str(e.value.clone()));
                setting.raw_keyfile_keys.insert(e.key.clone());
            }
        } else {
            let entries = group.entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
            conn.raw_groups.push(RawGroup { name: group.name.clone(), entries });
        }
    }
    if !peers.is_empty() {
        conn.set("wireguard", "peers", Value::dict_list(peers));
    }
    Ok(conn)
}

/// The setting and property a keyfile group of its own holds
/// ([`Kind::OptionsGroup`]).
fn options_group(group: &str) -> Option<(&'static str, &'static str)> {
    schema::SETTINGS.iter().find_map(|s| {
        s.properties.iter().find(|p| matches!(p.kind, Kind::OptionsGroup(g) if g == group)).map(|p| (s.name, p.name))
    })
}

/// Groups that may be settings NetworkManager knows and nm-rs does not
/// (`match`, `ethtool`, …), as opposed to internal groups like `.nmmeta`.
fn is_setting_name(name: &str) -> bool {
    name != "vpn-secrets" && !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Splits `address12` into (`address`, 12); an absent number sorts first.
fn numbered<'a>(key: &'a str, bases: &[&str]) -> Option<(&'a str, u64)> {
    for base in bases {
        if let Some(rest) = key.strip_prefix(base) {
            if rest.is_empty() {
                return Some((&key[..base.len()], 0));
            }
            if rest.chars().all(|c| c.is_ascii_digit()) {
                return Some((&key[..base.len()], rest.parse::<u64>().ok()?.saturating_add(1)));
            }
        }
    }
    None
}

fn read_setting(spec: &SettingSpec, group: &Group, conn: &mut Connection) -> Result<(), KeyfileError> {
    let is_ip = matches!(spec.name, "ipv4" | "ipv6");
    let family = Family::of_setting(spec.name);
    let mut addresses: Vec<(u64, usize, String)> = Vec::new();
    let mut routes: Vec<(u64, usize, String)> = Vec::new();
    let mut route_options: BTreeMap<u64, String> = BTreeMap::new();
    let mut rules: Vec<(u64, usize, String)> = Vec::new();
    let mut options = BTreeMap::new();
    let options_prop = spec.properties.iter().find(|p| p.kind == Kind::OptionsInGroup);
    let mut tc: BTreeMap<&str, Vec<VarDict>> = BTreeMap::new();
    let setting = conn.setting_mut(spec.name);

    for e in &group.entries {
        let bad = |m: String| err(e.line, format!("{}.{}: {m}", spec.name, e.key));
        if let Some(prop) = spec.property(&e.key).filter(|p| !matches!(p.kind, Kind::OptionsInGroup)) {
            let v = decode(spec, prop, &e.value).map_err(bad)?;
            setting.props.insert(prop.name.to_string(), v);
            continue;
        }
        if is_ip {
            if let Some(rest) = e.key.strip_suffix("_options")
                && let Some((_, n)) = numbered(rest, &["routes", "route"])
            {
                route_options.insert(n, e.value.clone());
                continue;
            }
            if let Some((_, n)) = numbered(&e.key, &["addresses", "address"]) {
                addresses.push((n, e.line, e.value.clone()));
                continue;
            }
            if let Some((_, n)) = numbered(&e.key, &["routes", "route"]) {
                routes.push((n, e.line, e.value.clone()));
                continue;
            }
            if let Some((_, n)) = numbered(&e.key, &["routing-rule"]) {
                rules.push((n, e.line, e.value.clone()));
                continue;
            }
        }
        if options_prop.is_some() {
            options.insert(decode_key(&e.key), unescape(&e.value));
            continue;
        }
        if let Some((prop, parent)) = tc_key(spec, &e.key) {
            // The key holds the parent: a handle, or `root`.
            let value = unescape(&e.value);
            let line = match text::parse_tc_handle(parent) {
                Ok(_) => format!("parent {parent} {value}"),
                Err(_) => format!("{parent} {value}"),
            };
            let parsed = match prop.kind {
                Kind::TcQdiscs => text::parse_tc_qdisc(&line),
                _ => text::parse_tc_tfilter(&line),
            };
            tc.entry(prop.name)
                .or_default()
                .push(parsed.map_err(|m| err(e.line, format!("{}.{}: {m}", spec.name, prop.name)))?);
            continue;
        }
        setting.props.insert(e.key.clone(), Value::Str(e.value.clone()));
        setting.raw_keyfile_keys.insert(e.key.clone());
    }

    if let Some(prop) = options_prop
        && !options.is_empty()
    {
        setting.props.insert(prop.name.to_string(), Value::str_map(&options));
    }
    for (prop, list) in tc {
        setting.props.insert(prop.to_string(), Value::dict_list(list));
    }
    if is_ip {
        read_ip_lists(spec.name, family, setting, addresses, routes, route_options, rules)?;
        if spec.name == "ipv6" && !setting.props.contains_key("addr-gen-mode") {
            // A keyfile without the key predates the "default" mode.
            setting.props.insert("addr-gen-mode".into(), Value::Int32(ADDR_GEN_MODE_KEYFILE_DEFAULT));
        }
    }
    Ok(())
}

/// `ipv6.addr-gen-mode` when a keyfile does not say: `default-or-eui64`.
const ADDR_GEN_MODE_KEYFILE_DEFAULT: i32 = 2;

fn read_ip_lists(
    name: &str,
    family: Family,
    setting: &mut Setting,
    mut addresses: Vec<(u64, usize, String)>,
    mut routes: Vec<(u64, usize, String)>,
    route_options: BTreeMap<u64, String>,
    mut rules: Vec<(u64, usize, String)>,
) -> Result<(), KeyfileError> {
    addresses.sort_by_key(|a| a.0);
    routes.sort_by_key(|r| r.0);
    rules.sort_by_key(|r| r.0);
    let mut data = Vec::new();
    for (_, line, raw) in &addresses {
        let bad = |m: String| err(*line, format!("{name}.addresses: {m}"));
        let value = unescape(raw);
        let mut parts = value.split(',');
        data.push(text::parse_address(family, parts.next().unwrap_or("")).map_err(bad)?);
        if let Some(gw) = parts.next().map(str::trim).filter(|g| !g.is_empty()) {
            let gw = family.parse_addr(gw).map_err(bad)?;
            // The legacy gateway after an address is the setting's gateway.
            if !setting.props.contains_key("gateway") && !gw.is_unspecified() {
                setting.props.insert("gateway".into(), Value::Str(gw.to_string()));
            }
        }
    }
    if !data.is_empty() {
        setting.props.insert("address-data".into(), Value::dict_list(data));
    }
    let mut data = Vec::new();
    for (n, line, raw) in &routes {
        let opts = route_options.get(n).map(|o| unescape(o));
        let r = text::parse_route(family, &unescape(raw), opts.as_deref())
            .map_err(|m| err(*line, format!("{name}.routes: {m}")))?;
        data.push(r);
    }
    if !data.is_empty() {
        setting.props.insert("route-data".into(), Value::dict_list(data));
    }
    let mut data = Vec::new();
    for (_, line, raw) in &rules {
        let r =
            text::parse_rule(family, &unescape(raw)).map_err(|m| err(*line, format!("{name}.routing-rules: {m}")))?;
        data.push(r);
    }
    if !data.is_empty() {
        setting.props.insert("routing-rules".into(), Value::dict_list(data));
    }
    Ok(())
}

/// A `[tc]` key (`qdisc.root`, `tfilter.ffff:`): its property and the
/// parent part.
fn tc_key<'a>(spec: &SettingSpec, key: &'a str) -> Option<(&'static PropertySpec, &'a str)> {
    spec.properties.iter().find_map(|p| match p.kind {
        Kind::TcQdiscs => key.strip_prefix("qdisc.").map(|rest| (p, rest)),
        Kind::TcFilters => key.strip_prefix("tfilter.").map(|rest| (p, rest)),
        _ => None,
    })
}

/// The key part naming a tc object's parent: `root` or its handle.
fn tc_parent_key(d: &VarDict) -> String {
    match d.get("parent").and_then(Value::as_i128).and_then(|p| u32::try_from(p).ok()) {
        Some(text::TC_H_ROOT) => "root".to_string(),
        Some(p) => text::format_tc_handle(p),
        None => String::new(),
    }
}

fn read_peer(public_key: &str, group: &Group) -> Result<VarDict, KeyfileError> {
    let mut peer = VarDict::new();
    peer.insert("public-key".into(), Value::Str(public_key.to_string()));
    for e in &group.entries {
        let bad = |m: &str| err(e.line, format!("wireguard.peers: {m} '{}'", e.value));
        let v = match e.key.as_str() {
            "allowed-ips" => Value::str_list(split_list(&e.value)),
            "preshared-key-flags" | "persistent-keepalive" => {
                Value::UInt32(e.value.trim().parse().map_err(|_| bad("invalid number"))?)
            }
            _ => Value::Str(unescape(&e.value)),
        };
        peer.insert(e.key.clone(), v);
    }
    Ok(peer)
}

/// Decodes one keyfile value of a known property.
fn decode(spec: &SettingSpec, prop: &PropertySpec, raw: &str) -> Result<Value, String> {
    let s = unescape(raw);
    let t = s.trim();
    let int_err = |_| format!("invalid integer value '{t}'");
    Ok(match prop.kind {
        Kind::Bool => Value::Bool(text::parse_bool(t).ok_or_else(|| format!("invalid boolean value '{t}'"))?),
        Kind::Int32 => Value::Int32(t.parse().map_err(int_err)?),
        Kind::UInt32 => Value::UInt32(t.parse().map_err(int_err)?),
        Kind::Int64 => Value::Int64(t.parse().map_err(int_err)?),
        Kind::UInt64 => Value::UInt64(t.parse().map_err(int_err)?),
        Kind::Str if spec.name == "connection" && prop.name == "type" => {
            // Keyfiles write the short aliases.
            Value::Str(schema::setting_by_group(t).map_or(t, |s| s.name).to_string())
        }
        Kind::Str | Kind::ClonedMac => Value::Str(s),
        Kind::StrList | Kind::Dns => Value::str_list(split_list(raw)),
        Kind::Bytes => Value::Bytes(text::parse_byte_list(t)?),
        Kind::Mac => Value::Bytes(text::parse_mac(t)?),
        Kind::Ssid => {
            let looks_like_bytes = raw.contains(';') && text::parse_byte_list(raw).is_ok();
            // NetworkManager escapes ';' as '\;' before GLib escapes the
            // backslash, so the file holds '\\;'.
            Value::Bytes(if looks_like_bytes {
                text::parse_byte_list(raw)?
            } else {
                s.replace("\\;", ";").into_bytes()
            })
        }
        Kind::Cert => Value::Bytes(text::parse_cert(t)?),
        Kind::IntNick(nicks) => Value::Int32(parse_nick(nicks, t)?),
        Kind::BridgeVlans => Value::dict_list(
            t.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(text::parse_bridge_vlan)
                .collect::<Result<_, _>>()?,
        ),
        Kind::OptionsInGroup
        | Kind::OptionsGroup(_)
        | Kind::Addresses
        | Kind::Routes
        | Kind::RoutingRules
        | Kind::WireguardPeers
        | Kind::TcQdiscs
        | Kind::TcFilters => return Err("this property cannot be set by this key".into()),
    })
}

pub(crate) fn parse_nick(nicks: &[(i32, &str)], t: &str) -> Result<i32, String> {
    nicks
        .iter()
        .find(|(_, n)| *n == t)
        .map(|(v, _)| *v)
        .or_else(|| t.parse().ok())
        .ok_or_else(|| format!("invalid value '{t}'"))
}

pub(crate) fn nick_of(nicks: &[(i32, &str)], v: i32) -> String {
    nicks.iter().find(|(n, _)| *n == v).map_or_else(|| v.to_string(), |(_, s)| s.to_string())
}

// ----------------------------------------------------------- writing ---

/// Whether `v` equals the property's default (the writer leaves it out).
pub fn is_default(prop: &PropertySpec, v: &Value) -> bool {
    match prop.default {
        schema::DefaultValue::Bool(b) => v.as_bool() == Some(b),
        schema::DefaultValue::Int(n) => v.as_i128() == Some(n as i128),
        schema::DefaultValue::Unset => false,
        schema::DefaultValue::Zero => match v.unwrap_variant() {
            Value::Bool(b) => !b,
            Value::Str(s) => s.is_empty(),
            Value::Bytes(b) => b.is_empty(),
            Value::Array { items, .. } => items.is_empty(),
            Value::Dict { entries, .. } => entries.is_empty(),
            other => other.as_i128() == Some(0),
        },
    }
}

/// Renders a profile as a keyfile, in NetworkManager's layout.
pub fn write(conn: &Connection) -> String {
    // NetworkManager orders settings by a fixed priority (connection, the
    // hardware settings, …, ipv4, ipv6, proxy), which the schema's order
    // follows; it does not move the base type first (a VLAN writes
    // [ethernet] before [vlan]).
    let mut order: Vec<&str> = Vec::new();
    let known = |n: &str| conn.settings.contains_key(n);
    let tail = ["ipv4", "ipv6", "proxy"];
    for s in schema::SETTINGS {
        if known(s.name) && !order.contains(&s.name) && !tail.contains(&s.name) {
            order.push(s.name);
        }
    }
    for name in conn.settings.keys() {
        if schema::setting(name).is_none() {
            order.push(name);
        }
    }
    order.extend(tail.iter().filter(|n| known(n)));

    let mut out = String::new();
    let mut first = true;
    let mut emit = |out: &mut String, group: &str, entries: &[(String, String)]| {
        if !first {
            out.push('\n');
        }
        first = false;
        out.push('[');
        out.push_str(group);
        out.push_str("]\n");
        for (k, v) in entries {
            out.push_str(k);
            out.push('=');
            out.push_str(v);
            out.push('\n');
        }
    };
    for name in order {
        let Some(setting) = conn.settings.get(name) else {
            continue;
        };
        let spec = schema::setting(name);
        let group = spec.map_or(name, |s| s.keyfile_group());
        emit(&mut out, group, &setting_entries(conn, name, spec, setting));
        if let Some(spec) = spec {
            for prop in spec.properties {
                let Some(v) = setting.get(prop.name) else {
                    continue;
                };
                match prop.kind {
                    Kind::OptionsGroup(g) => {
                        let map = v.as_str_map().unwrap_or_default();
                        if !map.is_empty() {
                            let entries: Vec<_> = map.iter().map(|(k, v)| (encode_key(k), escape(v))).collect();
                            emit(&mut out, g, &entries);
                        }
                    }
                    Kind::WireguardPeers => {
                        for peer in v.as_dict_list().unwrap_or_default() {
                            let (group, entries) = peer_entries(&peer);
                            emit(&mut out, &group, &entries);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    for g in &conn.raw_groups {
        emit(&mut out, &g.name, &g.entries);
    }
    out
}

fn setting_entries(
    conn: &Connection,
    name: &str,
    spec: Option<&SettingSpec>,
    setting: &Setting,
) -> Vec<(String, String)> {
    let family = Family::of_setting(name);
    // (sort key, key, value). NetworkManager writes properties in name order,
    // the numbered keys at the place of their legacy property (`addresses`,
    // `routes`), so `route-metric` comes before `route1`.
    let mut entries: Vec<(String, String, String)> = Vec::new();
    let mut push = |sort: &str, k: String, v: String| entries.push((sort.to_string(), k, v));
    // An unset `addr-gen-mode` is the property's default (`default`), but a
    // keyfile without the key reads as `default-or-eui64`: written out.
    if name == "ipv6" && !setting.props.contains_key("addr-gen-mode") {
        push("addr-gen-mode", "addr-gen-mode".into(), "default".into());
    }
    for (pname, v) in &setting.props {
        let prop = spec.and_then(|s| s.property(pname));
        let Some(prop) = prop else {
            let text = if setting.raw_keyfile_keys.contains(pname) {
                v.as_str().unwrap_or_default().to_string()
            } else {
                // An empty list or map a client sent for a property nm-rs
                // does not know says nothing a keyfile would hold.
                if matches!(v.unwrap_variant(), Value::Array { items, .. } if items.is_empty())
                    || matches!(v.unwrap_variant(), Value::Dict { entries, .. } if entries.is_empty())
                {
                    continue;
                }
                generic_text(v)
            };
            push(pname, pname.clone(), text);
            continue;
        };
        if prop.secret && !conn.secret_is_system_owned(name, pname) {
            continue;
        }
        let keyfile_default = name == "ipv6" && pname == "addr-gen-mode";
        if keyfile_default {
            if v.as_i128() != Some(ADDR_GEN_MODE_KEYFILE_DEFAULT as i128) {
                push(pname, pname.clone(), encode(name, prop, v));
            }
            continue;
        }
        if is_default(prop, v) && !(name == "connection" && matches!(pname.as_str(), "id" | "uuid" | "type")) {
            continue;
        }
        match prop.kind {
            Kind::Addresses => {
                let gw = setting.get("gateway").and_then(Value::as_str).filter(|g| !g.is_empty());
                for (i, a) in v.as_dict_list().unwrap_or_default().iter().enumerate() {
                    let Some(mut t) = text::format_address(a) else {
                        continue;
                    };
                    if let (0, Some(gw)) = (i, gw) {
                        t = format!("{t},{gw}");
                    }
                    push("addresses", format!("address{}", i + 1), t);
                }
            }
            Kind::Routes => {
                for (i, r) in v.as_dict_list().unwrap_or_default().iter().enumerate() {
                    let Some((t, opts)) = text::format_route(family, r) else {
                        continue;
                    };
                    push("routes", format!("route{}", i + 1), t);
                    if let Some(o) = opts {
                        push("routes", format!("route{}_options", i + 1), o);
                    }
                }
            }
            Kind::RoutingRules => {
                for (i, r) in v.as_dict_list().unwrap_or_default().iter().enumerate() {
                    push("routing-rules", format!("routing-rule{}", i + 1), escape(&text::format_rule(r)));
                }
            }
            Kind::Str if pname == "gateway" && setting.get("address-data").is_some_and(|a| !is_default(prop, a)) => {
                // Written into address1.
            }
            Kind::OptionsInGroup => {
                for (k, val) in v.as_str_map().unwrap_or_default() {
                    push(&k, encode_key(&k), escape(&val));
                }
            }
            Kind::TcQdiscs | Kind::TcFilters => {
                let (prefix, format): (&str, fn(&VarDict, bool) -> String) = match prop.kind {
                    Kind::TcQdiscs => ("qdisc.", text::format_tc_qdisc),
                    _ => ("tfilter.", text::format_tc_tfilter),
                };
                // In list order (a parent qdisc before its children), at
                // the place of the property.
                for (i, d) in v.as_dict_list().unwrap_or_default().iter().enumerate() {
                    let key = format!("{prefix}{}", tc_parent_key(d));
                    push(&format!("{pname}{i:05}"), key, escape(&format(d, false)));
                }
            }
            Kind::OptionsGroup(_) | Kind::WireguardPeers => {}
            _ => push(pname, pname.clone(), encode(name, prop, v)),
        }
    }
    if name == "connection" {
        let rank = |k: &str| ["id", "uuid", "type"].iter().position(|x| *x == k).unwrap_or(3);
        entries.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then_with(|| a.0.cmp(&b.0)));
    } else {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
    }
    entries.into_iter().map(|(_, k, v)| (k, v)).collect()
}

fn peer_entries(peer: &VarDict) -> (String, Vec<(String, String)>) {
    let key = peer.get("public-key").and_then(Value::as_str).unwrap_or_default();
    let flags = peer.get("preshared-key-flags").and_then(Value::as_i128).unwrap_or(0);
    let mut entries = Vec::new();
    for (k, v) in peer {
        match k.as_str() {
            "public-key" => {}
            "preshared-key"
                if flags as u32 & (schema::SECRET_FLAG_AGENT_OWNED | schema::SECRET_FLAG_NOT_SAVED) != 0 => {}
            "allowed-ips" => entries.push((k.clone(), escape_list(&v.as_str_list().unwrap_or_default()))),
            _ => entries.push((k.clone(), escape(&text::scalar_text(v)))),
        }
    }
    (format!("wireguard-peer.{key}"), entries)
}

/// Encodes a known property's value as keyfile text.
fn encode(setting: &str, prop: &PropertySpec, v: &Value) -> String {
    match prop.kind {
        Kind::Str if setting == "connection" && prop.name == "type" => {
            let t = v.as_str().unwrap_or_default();
            schema::setting(t).and_then(|s| s.alias).unwrap_or(t).to_string()
        }
        Kind::StrList | Kind::Dns => escape_list(&v.as_str_list().unwrap_or_default()),
        Kind::Bytes => text::format_byte_list(v.as_bytes().unwrap_or_default()),
        Kind::Mac => text::format_mac(v.as_bytes().unwrap_or_default()),
        Kind::Ssid => {
            let b = v.as_bytes().unwrap_or_default();
            match text::ssid_as_text(b) {
                Some(t) => escape(&t.replace(';', "\\;")),
                None => text::format_byte_list(b),
            }
        }
        Kind::Cert => escape(&text::format_cert(v.as_bytes().unwrap_or_default())),
        Kind::IntNick(nicks) => nick_of(nicks, v.as_i128().unwrap_or(0) as i32),
        Kind::BridgeVlans => {
            v.as_dict_list().unwrap_or_default().iter().map(text::format_bridge_vlan).collect::<Vec<_>>().join(",")
        }
        _ => generic_text(v),
    }
}

/// Text for a value whose property the schema does not describe.
fn generic_text(v: &Value) -> String {
    if let Some(list) = v.as_str_list() {
        return escape_list(&list);
    }
    match v.unwrap_variant() {
        Value::Bytes(b) => text::format_byte_list(b),
        other => escape(&text::scalar_text(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        for s in [" lead", "a\\b", "tab\there", "semi;colon", "new\nline"] {
            assert_eq!(unescape(&escape(s)), s);
            assert_eq!(split_list(&escape_list(&[s, "x"])), vec![s.to_string(), "x".into()]);
        }
        assert_eq!(split_list("a;b;"), vec!["a", "b"]);
        assert_eq!(split_list("a\\;b;c"), vec!["a;b", "c"]);
    }

    /// A profile that leaves `addr-gen-mode` unset (as nmcli sends a new
    /// one) means `default`; its file says so, since a file without the key
    /// means `default-or-eui64`.
    #[test]
    fn an_unset_addr_gen_mode_is_written_as_default() {
        let mut dict = crate::dbus_dict::SettingsDict::new();
        let conn: std::collections::BTreeMap<String, Value> = [
            ("id".to_string(), Value::Str("x".into())),
            ("uuid".to_string(), Value::Str("8fb923ad-bd8a-48c8-b85e-737628bb673a".into())),
            ("type".to_string(), Value::Str("802-3-ethernet".into())),
        ]
        .into_iter()
        .collect();
        dict.insert("connection".into(), conn);
        dict.insert("ipv6".into(), [("method".to_string(), Value::Str("auto".into()))].into_iter().collect());
        let text = write(&crate::dbus_dict::from_dbus(&dict).unwrap());
        assert!(text.contains("\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n"), "{text}");
        assert_eq!(parse(&text).unwrap().get("ipv6", "addr-gen-mode").and_then(Value::as_i128), Some(3));
        let old = parse("[connection]\nid=x\n\n[ipv6]\nmethod=auto\n").unwrap();
        assert_eq!(old.get("ipv6", "addr-gen-mode").and_then(Value::as_i128), Some(2));
        assert!(!write(&old).contains("addr-gen-mode"), "and stays so");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse("[connection]\nid=x\nnot a pair\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse("id=x\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("[connection\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("[connection]\nautoconnect=maybe\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: connection.autoconnect: invalid boolean value 'maybe'");
    }

    #[test]
    fn numbered_keys_and_gateway() {
        let c = parse("[ipv4]\naddress2=10.0.0.2/8\naddress1=192.168.1.5/24,192.168.1.1\nroute1=10.10.0.0/16,192.168.1.254,77\nroute1_options=table=5\nmethod=manual\n").unwrap();
        let addrs = c.get("ipv4", "address-data").unwrap().as_dict_list().unwrap();
        assert_eq!(addrs[0]["address"], Value::Str("192.168.1.5".into()));
        assert_eq!(addrs[1]["prefix"], Value::UInt32(8));
        assert_eq!(c.get_str("ipv4", "gateway"), Some("192.168.1.1"));
        let routes = c.get("ipv4", "route-data").unwrap().as_dict_list().unwrap();
        assert_eq!(routes[0]["table"], Value::UInt32(5));
        let out = write(&c);
        assert!(out.contains("address1=192.168.1.5/24,192.168.1.1\naddress2=10.0.0.2/8\n"), "{out}");
        assert!(out.contains("route1=10.10.0.0/16,192.168.1.254,77\nroute1_options=table=5\n"), "{out}");
        assert!(!out.contains("gateway="));
    }

    #[test]
    fn unknown_keys_and_groups_survive() {
        let text = "[connection]\nid=x\nuuid=4b4c0e2e-8b8e-4b8e-9b8e-4b8e4b8e4b8e\ntype=ethernet\nfuture-key=a\\;b\n\n[ethernet]\n\n[match]\ninterface-name=eth*;\n\n[.nmmeta]\nnm-generated=true\n";
        let c = parse(text).unwrap();
        assert_eq!(write(&c), text);
    }

    #[test]
    fn the_hostname_setting_is_typed() {
        let text = "[connection]\nid=x\nuuid=4b4c0e2e-8b8e-4b8e-9b8e-4b8e4b8e4b8e\ntype=ethernet\n\n[ethernet]\n\n[hostname]\nfrom-dhcp=0\npriority=50\n";
        let c = parse(text).unwrap();
        assert_eq!(c.get("hostname", "priority"), Some(&Value::Int32(50)));
        assert_eq!(c.get("hostname", "from-dhcp"), Some(&Value::Int32(0)));
        assert_eq!(write(&c), text);
    }

    #[test]
    fn user_data_keys_are_encoded_as_networkmanager_writes_them() {
        assert_eq!(encode_key("a.b=c"), "a.b\\3Dc");
        assert_eq!(encode_key(" x[1] "), "\\20x\\5B1\\5D\\20");
        assert_eq!(encode_key("a\\41b"), "a\\5C41b", "a backslash that reads as an escape");
        assert_eq!(encode_key(""), "\\00");
        for k in ["a.b=c", " x[1] ", "a\\41b", "", "é.ü", "plain.key"] {
            assert_eq!(decode_key(&encode_key(k)), k);
        }
        let text = "[connection]\nid=x\nuuid=4b4c0e2e-8b8e-4b8e-9b8e-4b8e4b8e4b8e\ntype=ethernet\n\n[ethernet]\n\n[user]\na.b\\3Dc=v\norg.example.owner=alice\n";
        let c = parse(text).unwrap();
        let data = c.get("user", "data").and_then(Value::as_str_map).unwrap();
        assert_eq!(data.get("a.b=c").map(String::as_str), Some("v"));
        assert_eq!(data.get("org.example.owner").map(String::as_str), Some("alice"));
        assert_eq!(write(&c), text);
    }

    #[test]
    fn traffic_control_objects_keep_their_networkmanager_form() {
        // A parent qdisc before its children, in the file's order.
        let text = "[connection]\nid=x\nuuid=4b4c0e2e-8b8e-4b8e-9b8e-4b8e4b8e4b8e\ntype=ethernet\n\n[ethernet]\n\n[tc]\nqdisc.root=handle 1234: fq_codel limit 1000\nqdisc.1234:1=sfq perturb 10\nqdisc.ffff:fff1=ingress\ntfilter.ffff:=matchall action simple sdata Hello\n";
        let c = parse(text).unwrap();
        let qdiscs = c.get("tc", "qdiscs").and_then(Value::as_dict_list).unwrap();
        assert_eq!(qdiscs.len(), 3);
        assert_eq!(qdiscs[0].get("parent"), Some(&Value::UInt32(text::TC_H_ROOT)));
        assert_eq!(qdiscs[2].get("kind"), Some(&Value::Str("ingress".into())));
        assert_eq!(c.get("tc", "tfilters").and_then(Value::as_dict_list).map(|f| f.len()), Some(1));
        assert_eq!(write(&c), text);
        let bad = parse(
            "[connection]\nid=x\nuuid=4b4c0e2e-8b8e-4b8e-9b8e-4b8e4b8e4b8e\ntype=ethernet\n[tc]\nqdisc.root=pfifo limit 5\n",
        );
        assert!(bad.unwrap_err().to_string().contains("tc.qdiscs: unsupported qdisc option: 'limit'."));
    }

    #[test]
    fn a_vpn_profile_keeps_its_data_and_secrets() {
        let text = "[connection]\nid=work\nuuid=0d5a9a47-6d65-4e8f-9b3c-2f1e0a9b8c7d\ntype=vpn\n\n[vpn]\ngateway=vpn.example.com\npassword-flags=0\nservice-type=org.freedesktop.NetworkManager.openvpn\nuser-name=alice\n\n[vpn-secrets]\npassword=s3cret\n\n[ipv4]\nmethod=auto\n";
        let c = parse(text).unwrap();
        let data = c.get("vpn", "data").and_then(Value::as_str_map).unwrap();
        assert_eq!(data.get("gateway").map(String::as_str), Some("vpn.example.com"));
        assert_eq!(c.get_str("vpn", "service-type"), Some("org.freedesktop.NetworkManager.openvpn"));
        assert_eq!(c.get_str("vpn", "user-name"), Some("alice"));
        let secrets = c.get("vpn", "secrets").and_then(Value::as_str_map).unwrap();
        assert_eq!(secrets.get("password").map(String::as_str), Some("s3cret"));
        // Not in what GetSettings shows; in GetSecrets.
        assert!(c.without_secrets().get("vpn", "secrets").is_none());
        assert!(c.secrets("vpn").get("vpn").is_some_and(|s| s.contains_key("secrets")));
        assert_eq!(write(&c), text);
    }

    #[test]
    fn what_a_client_cannot_send_back_survives_an_update() {
        let text = "[connection]\nid=tm\nuuid=1d5a9a47-6d65-4e8f-9b3c-2f1e0a9b8c7d\ntype=ethernet\nfuture-key=abc\n\n[ethernet]\n\n[sriov]\ntotal-vfs=4\nvf.0=mac=00:11:22:33:44:55\n\n[future]\nknob=1\n\n[.nmmeta]\nnm-generated=true\n";
        let old = parse(text).unwrap();
        assert_eq!(old.get("sriov", "total-vfs"), Some(&Value::UInt32(4)));
        // What libnm sends back: the typed part only, and an empty list.
        let mut new = Connection::default();
        for (k, v) in [("id", "tm"), ("uuid", "1d5a9a47-6d65-4e8f-9b3c-2f1e0a9b8c7d"), ("type", "802-3-ethernet")] {
            new.set("connection", k, Value::Str(v.into()));
        }
        new.setting_mut("802-3-ethernet");
        new.set("sriov", "total-vfs", Value::UInt32(8));
        new.set("sriov", "vfs", Value::Array { elem: "a{sv}".into(), items: vec![] });
        new.keep_unknown_from(&old);
        let written = write(&new);
        assert!(written.contains("future-key=abc"), "{written}");
        assert!(
            written.contains("[sriov]\ntotal-vfs=8\nvf.0=mac=00:11:22:33:44:55\n"),
            "the update's value wins: {written}"
        );
        assert!(written.contains("[future]\nknob=1\n"), "{written}");
        assert!(written.contains("[.nmmeta]\nnm-generated=true\n"), "{written}");
        assert!(!written.contains("\nvfs="), "{written}");
    }
}
