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

/// Bytes written as hex pairs separated by colons (`00:04:ab`), as
/// NetworkManager writes a DUID.
pub fn parse_hex_bytes(s: &str) -> Option<Vec<u8>> {
    s.split(':').map(|b| if b.len() == 2 { u8::from_str_radix(b, 16).ok() } else { None }).collect()
}

/// `ipv6.dhcp-duid`: one of NetworkManager's ways to make a DUID, or a
/// DUID itself (4 to 130 bytes: a type and its data, RFC 8415 §11.1).
pub fn dhcp_duid_valid(s: &str) -> bool {
    matches!(s, "lease" | "ll" | "llt" | "stable-ll" | "stable-llt" | "stable-uuid")
        || parse_hex_bytes(s).is_some_and(|b| (4..=130).contains(&b.len()))
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

// ------------------------------------------------- traffic control ---

/// `TC_H_ROOT`: a qdisc or filter at the root of the device.
pub const TC_H_ROOT: u32 = 0xffff_ffff;
/// `TC_H_INGRESS` (also `TC_H_CLSACT`): the ingress/clsact qdisc's parent.
pub const TC_H_INGRESS: u32 = 0xffff_fff1;

/// A tc handle, `MAJ:MIN` in hex (`1234:`, `1:10`, `ffff:fff1`; `MAJ`
/// alone is `MAJ:0`).
pub fn parse_tc_handle(s: &str) -> Result<u32, String> {
    let bad = || format!("'{s}' is not a valid handle.");
    let (maj, min) = s.split_once(':').unwrap_or((s, ""));
    let hex = |t: &str, empty_ok: bool| -> Result<u32, String> {
        if t.is_empty() && empty_ok {
            return Ok(0);
        }
        if t.is_empty() || t.len() > 4 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        u32::from_str_radix(t, 16).map_err(|_| bad())
    };
    let (maj, min) = (hex(maj, false)?, hex(min, true)?);
    if maj == 0 {
        return Err(bad());
    }
    Ok(maj << 16 | min)
}

/// `MAJ:` or `MAJ:MIN`, in lower-case hex.
pub fn format_tc_handle(h: u32) -> String {
    match h & 0xffff {
        0 => format!("{:x}:", h >> 16),
        min => format!("{:x}:{min:x}", h >> 16),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TcAttr {
    U32,
    I32,
    U64,
    /// A word without a value (`ecn`), `b` on D-Bus.
    Flag,
    Str,
    /// Text kept as bytes (`sdata`), `ay` on D-Bus.
    Bytes,
}

/// The attributes NetworkManager knows for a qdisc kind.
fn qdisc_attrs(kind: &str) -> &'static [(&'static str, TcAttr)] {
    use TcAttr::*;
    match kind {
        "fq_codel" => &[
            ("ce_threshold", U32),
            ("ecn", Flag),
            ("flows", U32),
            ("interval", U32),
            ("limit", U32),
            ("memory_limit", U32),
            ("quantum", U32),
            ("target", U32),
        ],
        "sfq" => {
            &[("depth", U32), ("divisor", U32), ("flows", U32), ("limit", U32), ("perturb", I32), ("quantum", U32)]
        }
        "tbf" => &[("burst", U32), ("latency", U32), ("limit", U32), ("rate", U64)],
        _ => &[],
    }
}

/// The attributes NetworkManager knows for a filter action kind.
fn action_attrs(kind: &str) -> &'static [(&'static str, TcAttr)] {
    use TcAttr::*;
    match kind {
        "mirred" => &[("dev", Str), ("egress", Flag), ("ingress", Flag), ("mirror", Flag), ("redirect", Flag)],
        "simple" => &[("sdata", Bytes)],
        _ => &[],
    }
}

/// Whether a qdisc (`action: false`) or a filter action of `kind` takes
/// the attribute `name`.
pub fn tc_attribute_known(action: bool, kind: &str, name: &str) -> bool {
    let spec = if action { action_attrs(kind) } else { qdisc_attrs(kind) };
    spec.iter().any(|(n, _)| *n == name)
}

/// `name value` pairs (a flag alone) of a kind's attributes into `d`;
/// `what` names the object in the error for an attribute the kind lacks.
fn parse_tc_attrs<'a>(
    toks: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
    spec: &[(&str, TcAttr)],
    what: &str,
    d: &mut VarDict,
    stop_at: Option<&str>,
) -> Result<(), String> {
    while let Some(name) = toks.peek().copied() {
        if Some(name) == stop_at {
            return Ok(());
        }
        toks.next();
        let Some((_, ty)) = spec.iter().find(|(n, _)| *n == name) else {
            return Err(if spec.is_empty() {
                format!("unsupported {what} option: '{name}'.")
            } else {
                format!("unknown attribute '{name}'")
            });
        };
        if *ty == TcAttr::Flag {
            d.insert(name.to_string(), Value::Bool(true));
            continue;
        }
        let Some(v) = toks.next() else {
            return Err(format!("missing value for attribute '{name}'"));
        };
        let bad = |t: &str| format!("invalid {t} value '{v}' for attribute '{name}'");
        let value = match ty {
            TcAttr::U32 => Value::UInt32(v.parse().map_err(|_| bad("uint32"))?),
            TcAttr::I32 => Value::Int32(v.parse().map_err(|_| bad("int32"))?),
            TcAttr::U64 => Value::UInt64(v.parse().map_err(|_| bad("uint64"))?),
            TcAttr::Str => Value::Str(v.to_string()),
            TcAttr::Bytes => Value::Bytes(v.as_bytes().to_vec()),
            TcAttr::Flag => Value::Bool(true),
        };
        d.insert(name.to_string(), value);
    }
    Ok(())
}

/// The attributes of `d` in `spec` as text, by name.
fn format_tc_attrs(d: &VarDict, spec: &[(&str, TcAttr)], out: &mut String) {
    for (name, ty) in spec {
        let Some(v) = d.get(*name).map(Value::unwrap_variant) else { continue };
        match (ty, v) {
            (TcAttr::Flag, Value::Bool(true)) => out.push_str(&format!(" {name}")),
            (TcAttr::Flag, _) => {}
            (TcAttr::Bytes, Value::Bytes(b)) => out.push_str(&format!(" {name} {}", String::from_utf8_lossy(b))),
            (TcAttr::Str, Value::Str(t)) => out.push_str(&format!(" {name} {t}")),
            _ => out.push_str(&format!(" {name} {}", scalar_text(v))),
        }
    }
}

/// The part every tc object starts with: `root` or `parent H`, `handle
/// H`, then the kind. Fills `kind`, `parent` (when given) and `handle`.
fn parse_tc_head<'a>(
    toks: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
    d: &mut VarDict,
) -> Result<String, String> {
    let mut parent = None;
    let mut handle = None;
    loop {
        match toks.next() {
            Some(t @ ("root" | "parent")) => {
                if parent.is_some() {
                    return Err(format!("'{t}' unexpected: parent already specified."));
                }
                parent = Some(if t == "root" {
                    TC_H_ROOT
                } else {
                    parse_tc_handle(toks.next().ok_or("parent handle missing")?)?
                });
            }
            Some("handle") => {
                let h = toks.next().ok_or("handle missing")?;
                let v = parse_tc_handle(h)?;
                if v & 0xffff != 0 {
                    return Err(format!("invalid handle: '{h}'"));
                }
                handle = Some(v);
            }
            Some(kind) => {
                let ingress = matches!(kind, "ingress" | "clsact");
                let parent = parent.or(ingress.then_some(TC_H_INGRESS)).ok_or("parent not specified.")?;
                let handle = handle.unwrap_or(if ingress { 0xffff_0000 } else { 0 });
                d.insert("kind".into(), Value::Str(kind.to_string()));
                d.insert("parent".into(), Value::UInt32(parent));
                d.insert("handle".into(), Value::UInt32(handle));
                return Ok(kind.to_string());
            }
            None => return Err("kind is missing".into()),
        }
    }
}

fn format_tc_head(d: &VarDict, with_parent: bool) -> (String, String) {
    let num = |k: &str| d.get(k).and_then(Value::as_i128).and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    let kind = d.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut out = String::new();
    if with_parent {
        match num("parent") {
            TC_H_ROOT => out.push_str("root "),
            TC_H_INGRESS => {}
            p => out.push_str(&format!("parent {} ", format_tc_handle(p))),
        }
    }
    if num("handle") != 0 && !matches!(kind.as_str(), "ingress" | "clsact") {
        out.push_str(&format!("handle {} ", format_tc_handle(num("handle"))));
    }
    out.push_str(&kind);
    (out, kind)
}

/// `[root | parent H] [handle H:] KIND [attributes]`, NetworkManager's
/// text of a qdisc, into its D-Bus dictionary.
pub fn parse_tc_qdisc(s: &str) -> Result<VarDict, String> {
    let mut d = VarDict::new();
    let mut toks = s.split_whitespace().peekable();
    let kind = parse_tc_head(&mut toks, &mut d)?;
    parse_tc_attrs(&mut toks, qdisc_attrs(&kind), "qdisc", &mut d, None)?;
    Ok(d)
}

/// The text of a qdisc; without its parent for a keyfile (whose key has it).
pub fn format_tc_qdisc(d: &VarDict, with_parent: bool) -> String {
    let (mut out, kind) = format_tc_head(d, with_parent);
    format_tc_attrs(d, qdisc_attrs(&kind), &mut out);
    out
}

/// `[root | parent H] [handle H:] KIND [action AKIND [attributes]]`, a
/// filter, into its D-Bus dictionary (the action as a nested `a{sv}`).
pub fn parse_tc_tfilter(s: &str) -> Result<VarDict, String> {
    let mut d = VarDict::new();
    let mut toks = s.split_whitespace().peekable();
    parse_tc_head(&mut toks, &mut d)?;
    match toks.next() {
        None => {}
        Some("action") => {
            let kind = toks.next().ok_or("invalid action: action name missing.")?;
            let mut action = VarDict::new();
            action.insert("kind".into(), Value::Str(kind.to_string()));
            parse_tc_attrs(&mut toks, action_attrs(kind), "action", &mut action, None)
                .map_err(|e| format!("invalid action: {e}"))?;
            d.insert("action".into(), Value::var_dict(action));
        }
        Some(other) => return Err(format!("unsupported tfilter option: '{other}'.")),
    }
    Ok(d)
}

/// The text of a filter; without its parent for a keyfile.
pub fn format_tc_tfilter(d: &VarDict, with_parent: bool) -> String {
    let (mut out, _) = format_tc_head(d, with_parent);
    if let Some(action) = d.get("action").and_then(Value::as_var_dict) {
        let kind = action.get("kind").and_then(Value::as_str).unwrap_or_default();
        out.push_str(&format!(" action {kind}"));
        format_tc_attrs(&action, action_attrs(kind), &mut out);
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

    #[test]
    fn tc_objects_as_networkmanager_writes_them() {
        assert_eq!(parse_tc_handle("1234:"), Ok(0x1234_0000));
        assert_eq!(parse_tc_handle("1:10"), Ok(0x0001_0010));
        assert_eq!(parse_tc_handle("ffff:fff1"), Ok(TC_H_INGRESS));
        assert_eq!(parse_tc_handle("x:"), Err("'x:' is not a valid handle.".into()));
        assert_eq!(format_tc_handle(0x1234_0000), "1234:");
        assert_eq!(format_tc_handle(0x0001_0010), "1:10");

        let q = parse_tc_qdisc("root handle 1234: fq_codel limit 1000 ecn").unwrap();
        assert_eq!(q.get("kind"), Some(&Value::Str("fq_codel".into())));
        assert_eq!(q.get("parent"), Some(&Value::UInt32(TC_H_ROOT)));
        assert_eq!(q.get("handle"), Some(&Value::UInt32(0x1234_0000)));
        assert_eq!(q.get("limit"), Some(&Value::UInt32(1000)));
        assert_eq!(q.get("ecn"), Some(&Value::Bool(true)));
        assert_eq!(format_tc_qdisc(&q, true), "root handle 1234: fq_codel ecn limit 1000");
        assert_eq!(format_tc_qdisc(&q, false), "handle 1234: fq_codel ecn limit 1000");
        let sfq = parse_tc_qdisc("parent 1234:1 sfq perturb -1").unwrap();
        assert_eq!(sfq.get("perturb"), Some(&Value::Int32(-1)));
        assert_eq!(format_tc_qdisc(&sfq, true), "parent 1234:1 sfq perturb -1");
        let tbf = parse_tc_qdisc("root tbf rate 10000000000 burst 5000 latency 10").unwrap();
        assert_eq!(tbf.get("rate"), Some(&Value::UInt64(10_000_000_000)));
        let ingress = parse_tc_qdisc("ingress").unwrap();
        assert_eq!(ingress.get("parent"), Some(&Value::UInt32(TC_H_INGRESS)));
        assert_eq!(format_tc_qdisc(&ingress, true), "ingress");
        assert_eq!(parse_tc_qdisc("pfifo_fast"), Err("parent not specified.".into()));
        assert_eq!(parse_tc_qdisc("root pfifo limit 5"), Err("unsupported qdisc option: 'limit'.".into()));
        assert_eq!(parse_tc_qdisc("root sfq speed 5"), Err("unknown attribute 'speed'".into()));
        assert_eq!(parse_tc_qdisc("root parent 1: sfq"), Err("'parent' unexpected: parent already specified.".into()));
        assert_eq!(parse_tc_qdisc("root handle 1:2 sfq"), Err("invalid handle: '1:2'".into()));

        let f = parse_tc_tfilter("parent ffff: matchall action simple sdata Hello").unwrap();
        assert_eq!(f.get("parent"), Some(&Value::UInt32(0xffff_0000)));
        let action = f.get("action").and_then(Value::as_var_dict).unwrap();
        assert_eq!(action.get("sdata").map(Value::unwrap_variant), Some(&Value::Bytes(b"Hello".to_vec())));
        assert_eq!(format_tc_tfilter(&f, true), "parent ffff: matchall action simple sdata Hello");
        assert_eq!(format_tc_tfilter(&f, false), "matchall action simple sdata Hello");
        let m = parse_tc_tfilter("root matchall action mirred egress redirect dev eth1").unwrap();
        assert_eq!(format_tc_tfilter(&m, true), "root matchall action mirred dev eth1 egress redirect");
        assert_eq!(parse_tc_tfilter("root matchall now"), Err("unsupported tfilter option: 'now'.".into()));
    }
}
