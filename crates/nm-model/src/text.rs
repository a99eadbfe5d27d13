//! Text forms shared by the keyfile and TOML codecs: MAC addresses, SSIDs,
//! certificates, IP addresses and routes, routing rules, bridge VLAN ranges.
//! Each form has one parser and one formatter, used by both codecs.

use std::net::IpAddr;

use base64::Engine as _;

use crate::value::{Value, VarDict};

/// The address family of an `ipv4` or `ipv6` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of_setting(setting: &str) -> Family {
        if setting == "ipv6" { Family::V6 } else { Family::V4 }
    }
    pub fn max_prefix(self) -> u32 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
    pub fn unspecified(self) -> &'static str {
        match self {
            Family::V4 => "0.0.0.0",
            Family::V6 => "::",
        }
    }
    pub fn parse_addr(self, s: &str) -> Result<IpAddr, String> {
        let addr: IpAddr = s.trim().parse().map_err(|_| format!("invalid IP address '{s}'"))?;
        match (self, addr) {
            (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_)) => Ok(addr),
            (Family::V4, _) => Err(format!("'{s}' is not an IPv4 address")),
            (Family::V6, _) => Err(format!("'{s}' is not an IPv6 address")),
        }
    }
}

// ---------------------------------------------------------------- MAC ---

pub fn parse_mac(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bytes = parts
        .iter()
        .map(|p| if p.len() == 2 { u8::from_str_radix(p, 16).ok() } else { None })
        .collect::<Option<Vec<u8>>>();
    match bytes {
        Some(b) if b.len() == 6 || b.len() == 20 => Ok(b),
        _ => {
            // The pre-1.0 keyfile wrote MACs as a list of decimal bytes.
            let legacy = parse_byte_list(s).ok().filter(|b| b.len() == 6 || b.len() == 20);
            legacy.ok_or_else(|| format!("'{s}' is not a valid MAC address"))
        }
    }
}

pub fn format_mac(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect::<Vec<_>>().join(":")
}

/// `1;2;3;` → bytes.
pub fn parse_byte_list(s: &str) -> Result<Vec<u8>, String> {
    s.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u8>().map_err(|_| format!("'{p}' is not a byte value")))
        .collect()
}

pub fn format_byte_list(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x};")).collect()
}

// --------------------------------------------------------------- SSID ---

/// An SSID is written as text when it is printable UTF-8, else as bytes.
pub fn ssid_as_text(b: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(b).ok()?;
    (!s.is_empty() && !s.chars().any(char::is_control)).then_some(s)
}

// -------------------------------------------------------- certificate ---

const FILE_SCHEME: &str = "file://";

/// The keyfile/TOML text of an 802.1X certificate value into its D-Bus bytes.
pub fn parse_cert(s: &str) -> Result<Vec<u8>, String> {
    if let Some(b64) = s.strip_prefix("data:;base64,") {
        return base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| format!("invalid base64 certificate data: {e}"));
    }
    let path = s.strip_prefix(FILE_SCHEME).unwrap_or(s);
    if path.starts_with('/') {
        let mut b = format!("{FILE_SCHEME}{path}").into_bytes();
        b.push(0);
        return Ok(b);
    }
    if s.starts_with("pkcs11:") {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        return Ok(b);
    }
    Err(format!("'{s}' is neither an absolute path, a data: blob nor a pkcs11: URI"))
}

pub fn format_cert(b: &[u8]) -> String {
    let text = b.strip_suffix(&[0]).and_then(|t| std::str::from_utf8(t).ok());
    if let Some(t) = text {
        if let Some(path) = t.strip_prefix(FILE_SCHEME) {
            return path.to_string();
        }
        if t.starts_with("pkcs11:") {
            return t.to_string();
        }
    }
    format!("data:;base64,{}", base64::engine::general_purpose::STANDARD.encode(b))
}

// ----------------------------------------------------- IP addresses ---

/// `192.168.1.5/24` → an `address-data` entry. A missing prefix means a
/// host address, as NetworkManager's reader assumes.
pub fn parse_address(family: Family, s: &str) -> Result<VarDict, String> {
    let (addr, prefix) = split_prefix(family, s)?;
    let mut d = VarDict::new();
    d.insert("address".into(), Value::Str(addr.to_string()));
    d.insert("prefix".into(), Value::UInt32(prefix));
    Ok(d)
}

fn split_prefix(family: Family, s: &str) -> Result<(IpAddr, u32), String> {
    let s = s.trim();
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr = family.parse_addr(a)?;
    let prefix = match p {
        Some(p) => p.trim().parse::<u32>().map_err(|_| format!("invalid prefix '{p}'"))?,
        None => family.max_prefix(),
    };
    if prefix > family.max_prefix() {
        return Err(format!("invalid prefix {prefix}"));
    }
    Ok((addr, prefix))
}

/// An `address-data` entry back to `ADDR/PREFIX`.
pub fn format_address(d: &VarDict) -> Option<String> {
    let addr = d.get("address")?.as_str()?;
    let prefix = d.get("prefix")?.as_i128()?;
    Some(format!("{addr}/{prefix}"))
}

// ----------------------------------------------------------- routes ---

/// The type of each route attribute NetworkManager knows; others stay text.
pub fn route_attribute(name: &str, text: &str) -> Result<Value, String> {
    let bad = || format!("invalid value '{text}' for route attribute '{name}'");
    Ok(match name {
        "table" | "mtu" | "window" | "cwnd" | "initcwnd" | "initrwnd" | "advmss" | "rto_min" | "weight" => {
            Value::UInt32(text.parse().map_err(|_| bad())?)
        }
        "lock-cwnd" | "lock-initcwnd" | "lock-initrwnd" | "lock-mtu" | "lock-window" | "lock-advmss" | "onlink"
        | "quickack" => Value::Bool(parse_bool(text).ok_or_else(bad)?),
        "tos" | "scope" => {
            let n = match text.strip_prefix("0x") {
                Some(hex) => u8::from_str_radix(hex, 16).map_err(|_| bad())?,
                None => text.parse().map_err(|_| bad())?,
            };
            Value::Byte(n)
        }
        _ => Value::Str(text.to_string()),
    })
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// A route's text: `DEST/PREFIX[,NEXT_HOP[,METRIC]]` plus `k=v,k=v` options.
pub fn parse_route(family: Family, s: &str, options: Option<&str>) -> Result<VarDict, String> {
    let mut parts = s.split(',');
    let (dest, prefix) = split_prefix(family, parts.next().unwrap_or(""))?;
    let mut d = VarDict::new();
    d.insert("dest".into(), Value::Str(dest.to_string()));
    d.insert("prefix".into(), Value::UInt32(prefix));
    if let Some(nh) = parts.next().map(str::trim).filter(|s| !s.is_empty()) {
        let nh = family.parse_addr(nh)?;
        if !nh.is_unspecified() {
            d.insert("next-hop".into(), Value::Str(nh.to_string()));
        }
    }
    if let Some(m) = parts.next().map(str::trim).filter(|s| !s.is_empty()) {
        let metric: u32 = m.parse().map_err(|_| format!("invalid route metric '{m}'"))?;
        d.insert("metric".into(), Value::UInt32(metric));
    }
    if parts.next().is_some() {
        return Err(format!("route '{s}' has too many fields"));
    }
    for opt in options.unwrap_or("").split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let (k, v) = opt.split_once('=').ok_or_else(|| format!("invalid route option '{opt}'"))?;
        d.insert(k.trim().to_string(), route_attribute(k.trim(), v.trim())?);
    }
    Ok(d)
}

/// A `route-data` entry back to its text and its options text.
pub fn format_route(family: Family, d: &VarDict) -> Option<(String, Option<String>)> {
    let dest = d.get("dest")?.as_str()?;
    let prefix = d.get("prefix")?.as_i128()?;
    let mut text = format!("{dest}/{prefix}");
    let nh = d.get("next-hop").and_then(Value::as_str);
    let metric = d.get("metric").and_then(Value::as_i128);
    if nh.is_some() || metric.is_some() {
        text.push(',');
        text.push_str(nh.unwrap_or(family.unspecified()));
    }
    if let Some(m) = metric {
        text.push_str(&format!(",{m}"));
    }
    let opts: Vec<String> = d
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "dest" | "prefix" | "next-hop" | "metric"))
        .map(|(k, v)| format!("{k}={}", scalar_text(v)))
        .collect();
    Some((text, (!opts.is_empty()).then(|| opts.join(","))))
}

/// A scalar as plain text (booleans `true`/`false`, numbers in decimal).
pub fn scalar_text(v: &Value) -> String {
    match v.unwrap_variant() {
        Value::Bool(b) => b.to_string(),
        Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => s.clone(),
        Value::Double(d) => d.to_string(),
        other => other.as_i128().map(|n| n.to_string()).unwrap_or_else(|| format!("{other:?}")),
    }
}

// ---------------------------------------------------- routing rules ---

/// Parses a rule in NetworkManager's `ip rule`-like text into its D-Bus form.
pub fn parse_rule(family: Family, s: &str) -> Result<VarDict, String> {
    let mut d = VarDict::new();
    d.insert("family".into(), Value::Int32(if family == Family::V4 { 2 } else { 10 }));
    let toks: Vec<&str> = s.split_whitespace().collect();
    let mut i = 0;
    let arg = |i: usize| toks.get(i + 1).copied().ok_or_else(|| format!("'{}' lacks a value", toks[i]));
    let num = |t: &str| -> Result<u32, String> {
        match t.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16),
            None => t.parse(),
        }
        .map_err(|_| format!("invalid number '{t}'"))
    };
    while i < toks.len() {
        let key = toks[i];
        match key {
            "not" => {
                d.insert("invert".into(), Value::Bool(true));
                i += 1;
                continue;
            }
            "priority" | "table" | "fwmark" | "suppress_prefixlength" | "tos" | "ipproto" => {
                let v = arg(i)?;
                match key {
                    "priority" => d.insert("priority".into(), Value::UInt32(num(v)?)),
                    "table" => d.insert("table".into(), Value::UInt32(num(v)?)),
                    "fwmark" => {
                        let (m, mask) = v.split_once('/').unwrap_or((v, "0xffffffff"));
                        d.insert("fwmask".into(), Value::UInt32(num(mask)?));
                        d.insert("fwmark".into(), Value::UInt32(num(m)?))
                    }
                    "suppress_prefixlength" => d.insert(
                        "suppress-prefixlength".into(),
                        Value::Int32(v.parse().map_err(|_| format!("invalid number '{v}'"))?),
                    ),
                    "tos" => d.insert("tos".into(), Value::Byte(u8::try_from(num(v)?).map_err(|e| e.to_string())?)),
                    _ => d.insert("ipproto".into(), Value::Byte(u8::try_from(num(v)?).map_err(|e| e.to_string())?)),
                };
            }
            "from" | "to" => {
                let v = arg(i)?;
                if v != "all" {
                    let (addr, len) = split_prefix(family, v)?;
                    d.insert(key.into(), Value::Str(addr.to_string()));
                    d.insert(format!("{key}-len"), Value::Byte(len as u8));
                }
            }
            "iif" | "oif" => {
                d.insert(format!("{key}name"), Value::Str(arg(i)?.to_string()));
            }
            "sport" | "dport" => {
                let v = arg(i)?;
                let (a, b) = v.split_once('-').unwrap_or((v, v));
                let port = |p: &str| p.parse::<u16>().map_err(|_| format!("invalid port '{p}'"));
                d.insert(format!("{key}-start"), Value::UInt16(port(a)?));
                d.insert(format!("{key}-end"), Value::UInt16(port(b)?));
            }
            "uidrange" => {
                let v = arg(i)?;
                let (a, b) = v.split_once('-').ok_or_else(|| format!("invalid uid range '{v}'"))?;
                d.insert("uid-range-start".into(), Value::UInt32(num(a)?));
                d.insert("uid-range-end".into(), Value::UInt32(num(b)?));
            }
            "type" => {
                let action = match arg(i)? {
                    "unicast" => 1,
                    "blackhole" => 6,
                    "unreachable" => 7,
                    "prohibit" => 8,
                    other => return Err(format!("unknown rule type '{other}'")),
                };
                d.insert("action".into(), Value::Byte(action));
            }
            other => return Err(format!("unknown routing rule keyword '{other}'")),
        }
        i += 2;
    }
    if !d.contains_key("priority") {
        return Err("a routing rule needs a priority".into());
    }
    Ok(d)
}

pub fn format_rule(d: &VarDict) -> String {
    let get = |k: &str| d.get(k).map(scalar_text);
    let mut out = Vec::new();
    if d.get("invert").and_then(Value::as_bool) == Some(true) {
        out.push("not".to_string());
    }
    if let Some(p) = get("priority") {
        out.push(format!("priority {p}"));
    }
    for key in ["from", "to"] {
        if let Some(a) = get(key) {
            let len = get(&format!("{key}-len")).unwrap_or_default();
            out.push(format!("{key} {a}/{len}"));
        }
    }
    for (key, word) in [("tos", "tos"), ("ipproto", "ipproto")] {
        if let Some(v) = get(key) {
            out.push(format!("{word} {v}"));
        }
    }
    for key in ["sport", "dport"] {
        if let (Some(a), Some(b)) = (get(&format!("{key}-start")), get(&format!("{key}-end"))) {
            out.push(if a == b { format!("{key} {a}") } else { format!("{key} {a}-{b}") });
        }
    }
    if let Some(m) = d.get("fwmark").and_then(Value::as_i128) {
        let mask = d.get("fwmask").and_then(Value::as_i128).unwrap_or(0xffff_ffff);
        out.push(format!("fwmark {m:#x}/{mask:#x}"));
    }
    for key in ["iif", "oif"] {
        if let Some(n) = get(&format!("{key}name")) {
            out.push(format!("{key} {n}"));
        }
    }
    if let (Some(a), Some(b)) = (get("uid-range-start"), get("uid-range-end")) {
        out.push(format!("uidrange {a}-{b}"));
    }
    if let Some(s) = get("suppress-prefixlength") {
        out.push(format!("suppress_prefixlength {s}"));
    }
    if let Some(t) = get("table") {
        out.push(format!("table {t}"));
    }
    if let Some(a) = d.get("action").and_then(Value::as_i128) {
        let word = match a {
            6 => "blackhole",
            7 => "unreachable",
            8 => "prohibit",
            _ => "unicast",
        };
        if word != "unicast" {
            out.push(format!("type {word}"));
        }
    }
    out.join(" ")
}

// ------------------------------------------------ bridge VLAN ranges ---

/// `1-10 pvid untagged` → `{vid-start, vid-end, pvid, untagged}`.
pub fn parse_bridge_vlan(s: &str) -> Result<VarDict, String> {
    let mut toks = s.split_whitespace();
    let range = toks.next().ok_or("empty VLAN entry")?;
    let (a, b) = range.split_once('-').unwrap_or((range, range));
    let vid = |v: &str| -> Result<u16, String> {
        v.parse::<u16>().ok().filter(|n| (1..=4094).contains(n)).ok_or_else(|| format!("invalid VLAN id '{v}'"))
    };
    let mut d = VarDict::new();
    d.insert("vid-start".into(), Value::UInt16(vid(a)?));
    d.insert("vid-end".into(), Value::UInt16(vid(b)?));
    d.insert("pvid".into(), Value::Bool(false));
    d.insert("untagged".into(), Value::Bool(false));
    for t in toks {
        match t {
            "pvid" | "untagged" => {
                d.insert(t.into(), Value::Bool(true));
            }
            other => return Err(format!("unknown VLAN flag '{other}'")),
        }
    }
    Ok(d)
}

pub fn format_bridge_vlan(d: &VarDict) -> String {
    let start = d.get("vid-start").map(scalar_text).unwrap_or_default();
    let end = d.get("vid-end").map(scalar_text).unwrap_or_else(|| start.clone());
    let mut out = if start == end { start } else { format!("{start}-{end}") };
    for flag in ["pvid", "untagged"] {
        if d.get(flag).and_then(Value::as_bool) == Some(true) {
            out.push(' ');
            out.push_str(flag);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_forms() {
        assert_eq!(parse_mac("00:23:5a:47:1f:71").unwrap(), vec![0, 0x23, 0x5a, 0x47, 0x1f, 0x71]);
        assert_eq!(parse_mac("0;35;90;71;31;113;").unwrap(), vec![0, 35, 90, 71, 31, 113]);
        assert_eq!(format_mac(&[0, 0x23, 0x5a, 0x47, 0x1f, 0x71]), "00:23:5A:47:1F:71");
        assert!(parse_mac("00:23:5a").is_err());
        assert!(parse_mac("zz:23:5a:47:1f:71").is_err());
    }

    #[test]
    fn cert_forms_round_trip() {
        for text in ["/etc/pki/ca.pem", "pkcs11:token=x", "data:;base64,AAEC"] {
            assert_eq!(format_cert(&parse_cert(text).unwrap()), text);
        }
        assert_eq!(parse_cert("/a").unwrap(), b"file:///a\0");
        assert!(parse_cert("relative.pem").is_err());
    }

    #[test]
    fn routes_round_trip_with_options() {
        let r = parse_route(Family::V4, "10.10.0.0/16,192.168.1.254,77", Some("table=100,onlink=true")).unwrap();
        assert_eq!(r["table"], Value::UInt32(100));
        assert_eq!(r["onlink"], Value::Bool(true));
        let (t, o) = format_route(Family::V4, &r).unwrap();
        assert_eq!(t, "10.10.0.0/16,192.168.1.254,77");
        assert_eq!(o.as_deref(), Some("onlink=true,table=100"));
        let r = parse_route(Family::V6, "2001:db8::/32,::,5", None).unwrap();
        assert!(!r.contains_key("next-hop"));
        assert_eq!(format_route(Family::V6, &r).unwrap().0, "2001:db8::/32,::,5");
        assert!(parse_route(Family::V4, "10.0.0.0/33", None).is_err());
        assert!(parse_route(Family::V4, "2001:db8::/32", None).is_err());
    }

    #[test]
    fn rules_round_trip() {
        let text = "priority 5 from 10.0.0.0/8 table 100";
        let r = parse_rule(Family::V4, text).unwrap();
        assert_eq!(format_rule(&r), text);
        let text = "not priority 7 to 2001:db8::/32 dport 53-54 iif eth0 table 9";
        assert_eq!(format_rule(&parse_rule(Family::V6, text).unwrap()), text);
        assert!(parse_rule(Family::V4, "from 1.2.3.4/32").is_err());
        assert!(parse_rule(Family::V4, "priority").is_err());
    }

    #[test]
    fn bridge_vlans() {
        let v = parse_bridge_vlan("1-10 pvid untagged").unwrap();
        assert_eq!(format_bridge_vlan(&v), "1-10 pvid untagged");
        assert_eq!(format_bridge_vlan(&parse_bridge_vlan("20").unwrap()), "20");
        assert!(parse_bridge_vlan("0").is_err());
        assert!(parse_bridge_vlan("5 tagged").is_err());
    }
}
