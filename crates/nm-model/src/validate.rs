//! NetworkManager's rules for a profile: normalisation (what the daemon adds
//! or fixes silently) followed by verification (what it refuses), with its
//! `setting.property: reason` messages.

use crate::connection::{Connection, PropertyError};
use crate::schema::{self, BaseType, Kind};
use crate::text::{self, Family};
use crate::value::Value;

fn fail<T>(setting: &str, prop: &str, msg: impl Into<String>) -> Result<T, PropertyError> {
    Err(PropertyError::new(setting, prop, msg))
}

/// Whether the profile is a port (slave) of a controller: no IP of its own.
pub fn is_port(conn: &Connection) -> bool {
    conn.get_str("connection", "master").is_some_and(|m| !m.is_empty())
        || conn.get_str("connection", "slave-type").is_some_and(|m| !m.is_empty())
}

/// Fills in what NetworkManager fills in, then verifies the result.
pub fn normalize_and_validate(mut conn: Connection) -> Result<Connection, PropertyError> {
    normalize(&mut conn);
    validate(&conn)?;
    // What passes is what the daemons keep, for as long as the profile
    // exists: without the room the parsers grew (300 profiles: ~0.2 MB).
    conn.shrink_to_fit();
    Ok(conn)
}

/// The silent fixes: a missing uuid generated (as libnm's normalization
/// does: nmcli sends a profile it could not complete without one, for the
/// daemon to name what is really wrong), the base setting,
/// `ipv4`/`ipv6`/`proxy` of IP-capable types, a port's `bridge-port`, no IP
/// settings on ports.
pub fn normalize(conn: &mut Connection) {
    if conn.settings.contains_key("connection") && conn.uuid().is_none() {
        conn.set("connection", "uuid", Value::Str(uuid::Uuid::new_v4().to_string()));
    }
    let Some(ty) = conn.connection_type().map(str::to_string) else {
        return;
    };
    let Some(base) = schema::setting(&ty) else {
        return;
    };
    conn.setting_mut(base.name);
    if is_port(conn) {
        for s in ["ipv4", "ipv6", "proxy"] {
            conn.settings.remove(s);
        }
        if conn.get_str("connection", "slave-type") == Some("bridge") {
            conn.setting_mut("bridge-port");
        }
        return;
    }
    // A token in canonical form (`::0:5` → `::5`), as NetworkManager
    // normalizes it.
    if let Some(token) = conn.get_str("ipv6", "token").and_then(|t| t.parse::<std::net::Ipv6Addr>().ok()) {
        conn.set("ipv6", "token", Value::Str(token.to_string()));
    }
    // A gateway means nothing with never-default: NetworkManager drops it.
    for s in ["ipv4", "ipv6"] {
        let never_default = conn.get(s, "never-default").and_then(Value::as_bool) == Some(true);
        if let Some(setting) = conn.settings.get_mut(s).filter(|_| never_default) {
            setting.props.remove("gateway");
        }
    }
    if base.base_type == Some(BaseType::Ip) {
        for s in ["ipv4", "ipv6"] {
            let setting = conn.setting_mut(s);
            if setting.get("method").is_none() {
                setting.set("method", Value::Str("auto".into()));
            }
        }
        conn.setting_mut("proxy");
    }
}

const IPV4_METHODS: &[&str] = &["auto", "manual", "link-local", "shared", "disabled"];
const IPV6_METHODS: &[&str] = &["auto", "dhcp", "manual", "link-local", "ignore", "shared", "disabled"];

pub fn validate(conn: &Connection) -> Result<(), PropertyError> {
    let c = "connection";
    match conn.id() {
        None | Some("") => fail(c, "id", "property is missing")?,
        _ => {}
    }
    match conn.uuid() {
        None | Some("") => fail(c, "uuid", "property is missing")?,
        Some(u) if uuid::Uuid::parse_str(u).is_err() => fail(c, "uuid", format!("'{u}' is not a valid UUID"))?,
        _ => {}
    }
    let ty = match conn.connection_type() {
        None | Some("") => return fail(c, "type", "property is missing"),
        Some(t) => t,
    };
    match schema::setting(ty) {
        Some(s) if s.base_type.is_some() => {}
        // Types nm-rs does not model yet are kept, not refused, if their
        // setting is present (a newer keyfile must still load).
        None if conn.settings.contains_key(ty) => {}
        _ => fail(c, "type", format!("connection type '{ty}' is not valid"))?,
    }
    if let Some(ifname) = conn.get_str(c, "interface-name").filter(|s| !s.is_empty()) {
        check_ifname(ifname).or_else(|m| fail(c, "interface-name", format!("'{ifname}': {m}")))?;
    }
    for perm in conn.get(c, "permissions").and_then(Value::as_str_list).unwrap_or_default() {
        let ok = perm.strip_prefix("user:").is_some_and(|rest| {
            let user = rest.strip_suffix(':').unwrap_or(rest);
            !user.is_empty() && !user.contains(':')
        });
        if !ok {
            fail(c, "permissions", format!("invalid permission '{perm}'"))?;
        }
    }
    validate_types(conn)?;
    for setting in ["ipv4", "ipv6"] {
        if conn.settings.contains_key(setting) {
            validate_ip(conn, setting)?;
        }
    }
    validate_specific(conn)
}

fn check_ifname(name: &str) -> Result<(), String> {
    if name.len() > 15 {
        return Err("interface name is longer than 15 characters".into());
    }
    if name == "." || name == ".." {
        return Err("interface name is reserved".into());
    }
    if name.chars().any(|ch| ch == '/' || ch == ':' || ch.is_whitespace() || ch.is_control()) {
        return Err("interface name contains an invalid character".into());
    }
    Ok(())
}

/// Every known property must carry its D-Bus type (a keyfile's raw unknown
/// keys are exempt: they are not known).
fn validate_types(conn: &Connection) -> Result<(), PropertyError> {
    for (sname, setting) in &conn.settings {
        let Some(spec) = schema::setting(sname) else {
            continue;
        };
        for (pname, v) in &setting.props {
            let Some(prop) = spec.property(pname) else {
                continue;
            };
            if setting.raw_keyfile_keys.contains(pname) {
                continue;
            }
            let expected = prop.kind.signature();
            if v.signature() != expected {
                fail(
                    sname,
                    pname,
                    format!("can't set property of type '{expected}' from value of type '{}'", v.signature()),
                )?;
            }
            if prop.kind == Kind::Mac && v.as_bytes().is_some_and(|b| !b.is_empty() && b.len() != 6 && b.len() != 20) {
                fail(sname, pname, "property is invalid")?;
            }
            if prop.kind == Kind::ClonedMac {
                let s = v.as_str().unwrap_or_default();
                let special = matches!(s, "" | "preserve" | "permanent" | "random" | "stable");
                if !special && text::parse_mac(s).is_err() {
                    fail(sname, pname, format!("'{s}' is not a valid MAC address"))?;
                }
            }
        }
    }
    Ok(())
}

fn validate_ip(conn: &Connection, s: &str) -> Result<(), PropertyError> {
    let family = Family::of_setting(s);
    let method = conn.get_str(s, "method").unwrap_or("");
    let methods = if family == Family::V4 { IPV4_METHODS } else { IPV6_METHODS };
    if !methods.contains(&method) {
        fail(s, "method", format!("method '{method}' is not valid"))?;
    }
    let addresses = conn.get(s, "address-data").and_then(Value::as_dict_list).unwrap_or_default();
    for a in &addresses {
        let addr = a.get("address").and_then(Value::as_str).unwrap_or("");
        family.parse_addr(addr).or_else(|_| fail(s, "addresses", format!("invalid IP address '{addr}'")))?;
        let prefix = a.get("prefix").and_then(Value::as_i128).unwrap_or(-1);
        if !(0..=family.max_prefix() as i128).contains(&prefix) || (family == Family::V4 && prefix == 0) {
            fail(s, "addresses", format!("invalid prefix '{prefix}'"))?;
        }
    }
    if method == "manual" && addresses.is_empty() {
        fail(s, "addresses", "this property cannot be empty for 'method=manual'")?;
    }
    if family == Family::V4 {
        // ipv4.link-local: default 0, auto 1, disabled 2, enabled 3; it may
        // not contradict the method.
        match conn.get(s, "link-local").and_then(Value::as_i128).unwrap_or(0) {
            0 | 1 => {}
            2 if method == "link-local" => {
                fail(s, "link-local", "cannot disable ipv4.link-local with ipv4.method=link-local")?;
            }
            3 if method == "disabled" => {
                fail(s, "link-local", "cannot enable ipv4.link-local with ipv4.method=disabled")?;
            }
            2 | 3 => {}
            _ => fail(s, "link-local", "property is invalid")?,
        }
        let fqdn = conn.get_str(s, "dhcp-fqdn").filter(|f| !f.is_empty());
        if let Some(f) = fqdn.filter(|f| !f.contains('.')) {
            fail(s, "dhcp-fqdn", format!("'{f}' is not a valid FQDN"))?;
        }
        if fqdn.is_some() && conn.get_str(s, "dhcp-hostname").is_some_and(|h| !h.is_empty()) {
            fail(s, "dhcp-fqdn", "property cannot be set when dhcp-hostname is also set")?;
        }
        // Option 81 is sent only for dhcp-fqdn.
        if fqdn.is_none() && conn.get(s, "dhcp-hostname-flags").and_then(Value::as_i128).is_some_and(|f| f & 0xf != 0) {
            fail(s, "dhcp-hostname-flags", "FQDN flags requires a FQDN set")?;
        }
    }
    if let Some(d) = conn.get_str(s, "dhcp-duid").filter(|d| !d.is_empty() && family == Family::V6)
        && !text::dhcp_duid_valid(d)
    {
        fail(s, "dhcp-duid", "invalid DUID")?;
    }
    if let Some(token) = conn.get_str(s, "token").filter(|t| !t.is_empty() && family == Family::V6) {
        // Only with EUI-64 addresses (eui64, default-or-eui64), and only
        // an identifier: the upper 64 bits zero, the lower not.
        let mode = conn.get(s, "addr-gen-mode").and_then(Value::as_i128).unwrap_or(3);
        if !matches!(mode, 0 | 2) {
            fail(s, "token", "only makes sense with EUI64 address generation mode")?;
        }
        let id = token.parse::<std::net::Ipv6Addr>().map(u128::from).ok();
        if !id.is_some_and(|id| id >> 64 == 0 && id != 0) {
            fail(s, "token", "value is not a valid token")?;
        }
    }
    if matches!(method, "disabled" | "ignore" | "link-local") && !addresses.is_empty() {
        fail(s, "addresses", format!("this property is not allowed for 'method={method}'"))?;
    }
    if let Some(gw) = conn.get_str(s, "gateway").filter(|g| !g.is_empty()) {
        family.parse_addr(gw).or_else(|_| fail(s, "gateway", format!("invalid gateway '{gw}'")))?;
        if addresses.is_empty() {
            fail(s, "gateway", "gateway cannot be set if there are no addresses configured")?;
        }
    }
    for server in conn.get(s, "dns").and_then(Value::as_str_list).unwrap_or_default() {
        let addr = server.split('#').next().unwrap_or("");
        family.parse_addr(addr).or_else(|_| fail(s, "dns", format!("invalid DNS server '{server}'")))?;
    }
    for r in conn.get(s, "route-data").and_then(Value::as_dict_list).unwrap_or_default() {
        let dest = r.get("dest").and_then(Value::as_str).unwrap_or("");
        let prefix = r.get("prefix").and_then(Value::as_i128).unwrap_or(-1);
        text::parse_route(family, &format!("{dest}/{prefix}"), None).or_else(|m| fail(s, "routes", m))?;
        if let Some(nh) = r.get("next-hop") {
            let nh = nh.as_str().unwrap_or("");
            family.parse_addr(nh).or_else(|_| fail(s, "routes", format!("invalid next hop '{nh}'")))?;
        }
        if let Some(t) = r.get("type") {
            let t = t.as_str().unwrap_or("");
            if !ROUTE_TYPES.contains(&t) {
                fail(s, "routes", format!("invalid route type '{t}'"))?;
            }
        }
        if let Some(src) = r.get("src") {
            let src = src.as_str().unwrap_or("");
            family.parse_addr(src).or_else(|_| fail(s, "routes", format!("invalid source address '{src}'")))?;
        }
    }
    Ok(())
}

/// The route types NetworkManager takes (`type=`).
const ROUTE_TYPES: &[&str] = &["unicast", "local", "blackhole", "unreachable", "prohibit", "throw"];

fn validate_specific(conn: &Connection) -> Result<(), PropertyError> {
    if let Some(m) = conn.get("connection", "multi-connect").and_then(Value::as_i128)
        && !(0..=3).contains(&m)
    {
        fail("connection", "multi-connect", format!("value {m} is not valid"))?;
    }
    let w = "802-11-wireless";
    if conn.connection_type() == Some(w) {
        let ssid = conn.get(w, "ssid").and_then(Value::as_bytes).unwrap_or_default();
        if ssid.is_empty() {
            fail(w, "ssid", "property is missing")?;
        }
        if ssid.len() > 32 {
            fail(w, "ssid", "SSID length is out of range <1-32> bytes")?;
        }
        if let Some(mode) = conn.get_str(w, "mode").filter(|m| !m.is_empty())
            && !["infrastructure", "adhoc", "ap", "mesh"].contains(&mode)
        {
            fail(w, "mode", format!("'{mode}' is not a valid value for the property"))?;
        }
    }
    let ws = "802-11-wireless-security";
    if let Some(km) = conn.get_str(ws, "key-mgmt") {
        let valid = ["none", "ieee8021x", "wpa-psk", "sae", "owe", "wpa-eap", "wpa-eap-suite-b-192"];
        if !valid.contains(&km) {
            fail(ws, "key-mgmt", format!("'{km}' is not a valid value for the property"))?;
        }
        if let Some(psk) = conn.get_str(ws, "psk").filter(|p| !p.is_empty()) {
            let hex = psk.len() == 64 && psk.chars().all(|c| c.is_ascii_hexdigit());
            if km == "wpa-psk" && !hex && !(8..=63).contains(&psk.len()) {
                fail(ws, "psk", "property is invalid")?;
            }
        }
    }
    if let Some(id) = conn.get("vlan", "id").and_then(Value::as_i128)
        && id > 4094
    {
        fail("vlan", "id", format!("the vlan id must be in range 0-4094 but is {id}"))?;
    }
    if conn.connection_type() == Some("veth") {
        match conn.get_str("veth", "peer") {
            None | Some("") => fail("veth", "peer", "property is missing")?,
            Some(peer) => check_ifname(peer).or_else(|m| fail("veth", "peer", format!("'{peer}': {m}")))?,
        }
    }
    if let Some(id) = conn.get("vxlan", "id").and_then(Value::as_i128)
        && id > 16_777_215
    {
        fail("vxlan", "id", format!("the vxlan id must be in range 0-16777215 but is {id}"))?;
    }
    for key in ["local", "remote"] {
        if let Some(a) = conn.get_str("vxlan", key).filter(|a| !a.is_empty())
            && a.parse::<std::net::IpAddr>().is_err()
        {
            fail("vxlan", key, format!("'{a}' is not a valid IP address"))?;
        }
    }
    for key in ["destination-port", "source-port-min", "source-port-max"] {
        if let Some(p) = conn.get("vxlan", key).and_then(Value::as_i128)
            && p > 65535
        {
            fail("vxlan", key, format!("{p} is not a valid port"))?;
        }
    }
    if let Some(m) = conn.get("tun", "mode").and_then(Value::as_i128)
        && !(1..=2).contains(&m)
    {
        fail("tun", "mode", format!("'{m}' is not a valid value for the property"))?;
    }
    validate_bridge(conn)?;
    validate_ethtool(conn)?;
    validate_user_data(conn)?;
    validate_tc(conn)
}

/// `tc`: each qdisc and filter with a kind, a parent and only the
/// attributes its kind takes (anything else could not be written to a
/// keyfile, nor applied), and none twice.
fn validate_tc(conn: &Connection) -> Result<(), PropertyError> {
    for (prop, object, duplicates) in [
        ("qdiscs", "qdisc", "there are duplicate TC qdiscs"),
        ("tfilters", "tfilter", "there are duplicate TC filters"),
    ] {
        let list = conn.get("tc", prop).and_then(Value::as_dict_list).unwrap_or_default();
        for d in &list {
            let kind = d.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind.is_empty() {
                return fail("tc", prop, "kind is missing");
            }
            if kind.contains(char::is_whitespace) {
                return fail("tc", prop, format!("'{kind}' is not a valid kind"));
            }
            if d.get("parent").and_then(Value::as_i128).unwrap_or(0) == 0 {
                return fail("tc", prop, "parent handle missing");
            }
            for key in d.keys().filter(|k| !matches!(k.as_str(), "kind" | "parent" | "handle")) {
                let known = match (object, key.as_str()) {
                    ("tfilter", "action") => true,
                    ("qdisc", _) => text::tc_attribute_known(false, kind, key),
                    _ => false,
                };
                if !known {
                    return fail("tc", prop, format!("{object} '{kind}' has no attribute '{key}'"));
                }
            }
            if let Some(action) = d.get("action").and_then(Value::as_var_dict) {
                let akind = action.get("kind").and_then(Value::as_str).unwrap_or_default();
                if akind.is_empty() {
                    return fail("tc", prop, "invalid action: action name missing.");
                }
                if let Some(key) = action.keys().find(|k| *k != "kind" && !text::tc_attribute_known(true, akind, k)) {
                    return fail("tc", prop, format!("invalid action: action '{akind}' has no attribute '{key}'"));
                }
            }
        }
        if list.iter().enumerate().any(|(i, d)| list[..i].contains(d)) {
            return fail("tc", prop, duplicates);
        }
    }
    Ok(())
}

/// `ethtool`: only NetworkManager's options, its rules for the adaptive
/// coalescing switches and for pause autonegotiation.
fn validate_ethtool(conn: &Connection) -> Result<(), PropertyError> {
    let Some(setting) = conn.settings.get("ethtool") else { return Ok(()) };
    let spec = schema::setting("ethtool");
    for name in setting.props.keys() {
        if spec.and_then(|s| s.property(name)).is_none() {
            return fail("ethtool", name, "unsupported ethtool setting");
        }
    }
    for key in ["coalesce-adaptive-rx", "coalesce-adaptive-tx"] {
        if conn.get("ethtool", key).and_then(Value::as_i128).is_some_and(|v| v > 1) {
            fail("ethtool", key, "coalesce option must be either 0 or 1")?;
        }
    }
    let pause_set = setting.props.contains_key("pause-rx") || setting.props.contains_key("pause-tx");
    if pause_set && conn.get("ethtool", "pause-autoneg").and_then(Value::as_bool) == Some(true) {
        fail("ethtool", "pause-autoneg", "pause-autoneg cannot be enabled when setting rx/tx options")?;
    }
    Ok(())
}

/// `user.data`: namespaced keys of `[a-zA-Z0-9-_+/=]` words (at most 255
/// bytes), values up to 8 KiB, 256 entries; NetworkManager's messages.
fn validate_user_data(conn: &Connection) -> Result<(), PropertyError> {
    let Some(data) = conn.get("user", "data").and_then(Value::as_str_map) else { return Ok(()) };
    if data.len() > 256 {
        let n = data.len();
        return fail("user", "data", format!("maximum number of user data entries reached ({n} instead of 256)"));
    }
    let word_char = |c: char| c.is_ascii_alphanumeric() || "-_+/=".contains(c);
    for (key, value) in &data {
        let why = if key.is_empty() {
            Some("missing key")
        } else if key.len() > 255 {
            Some("key is too long")
        } else if key.contains("..") {
            Some("key cannot contain \"..\"")
        } else if key.starts_with('.') || key.ends_with('.') || !key.chars().all(|c| c == '.' || word_char(c)) {
            Some("key contains invalid characters")
        } else if !key.contains('.') {
            Some("key requires a '.' for a namespace")
        } else {
            None
        };
        if let Some(why) = why {
            return fail("user", "data", format!("invalid key \"{key}\": {why}"));
        }
        if value.len() > 8 * 1024 {
            return fail("user", "data", format!("invalid value for \"{key}\": value is too large"));
        }
    }
    Ok(())
}

/// The `bridge` and `bridge-port` settings, with NetworkManager's limits
/// and messages (and what the kernel would refuse anyway).
fn validate_bridge(conn: &Connection) -> Result<(), PropertyError> {
    let num = |setting: &str, key: &str| conn.get(setting, key).and_then(Value::as_i128);
    let in_range =
        |setting: &str, key: &str, range: std::ops::RangeInclusive<i128>, zero_ok: bool| match num(setting, key) {
            Some(v) if !(range.contains(&v) || zero_ok && v == 0) => {
                fail(setting, key, format!("value '{v}' is out of range <{}-{}>", range.start(), range.end()))
            }
            _ => Ok(()),
        };
    // With the spanning tree off its times may be 0 (the default then).
    let stp_off = conn.get("bridge", "stp").and_then(Value::as_bool) == Some(false);
    in_range("bridge", "forward-delay", 2..=30, stp_off)?;
    in_range("bridge", "hello-time", 1..=10, stp_off)?;
    in_range("bridge", "max-age", 6..=40, stp_off)?;
    in_range("bridge", "ageing-time", 0..=1_000_000, stp_off)?;
    in_range("bridge", "priority", 0..=65535, false)?;
    in_range("bridge", "group-forward-mask", 0..=65535, false)?;
    in_range("bridge", "vlan-default-pvid", 0..=4094, false)?;
    in_range("bridge-port", "path-cost", 0..=65535, false)?;
    in_range("bridge-port", "priority", 0..=63, false)?;
    if num("bridge", "group-forward-mask").is_some_and(|m| m & 7 != 0) {
        fail("bridge", "group-forward-mask", "the mask can't contain bits 0 (STP), 1 (MAC) or 2 (LACP)")?;
    }
    if let Some(a) = conn.get("bridge", "group-address").and_then(Value::as_bytes) {
        // 01:80:C2:00:00:0X, but the kernel's own 01 (pause), 02 (LACP), 03 (802.1X).
        let link_local = a.len() == 6 && a[..5] == [0x01, 0x80, 0xc2, 0, 0] && a[5] <= 0x0f && !(1..=3).contains(&a[5]);
        if !link_local {
            fail("bridge", "group-address", "is not a valid link local MAC address")?;
        }
    }
    if let Some(p) = conn.get_str("bridge", "vlan-protocol").filter(|p| !p.is_empty())
        && p != "802.1Q"
        && p != "802.1ad"
    {
        fail("bridge", "vlan-protocol", "is not a valid VLAN filtering protocol")?;
    }
    if let Some(r) = conn.get_str("bridge", "multicast-router").filter(|r| !r.is_empty())
        && !["auto", "enabled", "disabled"].contains(&r)
    {
        fail("bridge", "multicast-router", "is not a valid option")?;
    }
    if let Some(h) = num("bridge", "multicast-hash-max")
        && (h <= 0 || h & (h - 1) != 0)
    {
        fail("bridge", "multicast-hash-max", "'multicast-hash-max' option must be a power of 2")?;
    }
    for setting in ["bridge", "bridge-port"] {
        validate_bridge_vlans(conn, setting)?;
    }
    Ok(())
}

/// A VLAN table: ids 1–4094, ranges in order, no id twice, one PVID at
/// most and that one a single id (the kernel refuses a range as PVID).
fn validate_bridge_vlans(conn: &Connection, setting: &str) -> Result<(), PropertyError> {
    let Some(entries) = conn.get(setting, "vlans").and_then(Value::as_dict_list) else { return Ok(()) };
    let mut seen: Vec<(i128, i128)> = Vec::new();
    let mut pvids = 0;
    for e in &entries {
        let start = e.get("vid-start").and_then(Value::as_i128);
        let Some(start) = start.filter(|v| (1..=4094).contains(v)) else {
            return fail(setting, "vlans", "a VLAN id must be between 1 and 4094");
        };
        let end = e.get("vid-end").and_then(Value::as_i128).unwrap_or(start);
        if !(start..=4094).contains(&end) {
            return fail(setting, "vlans", format!("invalid VLAN range {start}-{end}"));
        }
        if let Some((a, _)) = seen.iter().find(|(a, b)| start <= *b && *a <= end) {
            return fail(setting, "vlans", format!("duplicate VLAN id {}", start.max(*a)));
        }
        seen.push((start, end));
        if e.get("pvid").and_then(Value::as_bool) == Some(true) {
            if start != end {
                return fail(setting, "vlans", format!("the VLAN range {start}-{end} can't be the PVID"));
            }
            pvids += 1;
            if pvids > 1 {
                return fail(setting, "vlans", "only one VLAN can be the PVID");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyfile;

    fn kf(body: &str) -> Connection {
        keyfile::parse(&format!("[connection]\nid=t\nuuid=8fb923ad-bd8a-48c8-b85e-737628bb673a\ntype=ethernet\n{body}"))
            .unwrap()
    }

    #[test]
    fn normalisation_adds_ip_and_proxy() {
        let c = normalize_and_validate(kf("")).unwrap();
        assert_eq!(c.get_str("ipv4", "method"), Some("auto"));
        assert_eq!(c.get_str("ipv6", "method"), Some("auto"));
        assert!(c.settings.contains_key("proxy"));
        assert!(c.settings.contains_key("802-3-ethernet"));
    }

    #[test]
    fn ports_lose_ip_settings() {
        let c = normalize_and_validate(kf("master=br0\nslave-type=bridge\n[ipv4]\nmethod=auto\n")).unwrap();
        assert!(!c.settings.contains_key("ipv4"));
        assert!(c.settings.contains_key("bridge-port"));
    }

    #[test]
    fn refusals_carry_networkmanager_messages() {
        let e = normalize_and_validate(kf("[ipv4]\nmethod=manual\n")).unwrap_err();
        assert_eq!(e.to_string(), "ipv4.addresses: this property cannot be empty for 'method=manual'");
        let e = normalize_and_validate(kf("[ipv4]\nmethod=link-local\nlink-local=2\n")).unwrap_err();
        assert_eq!(e.to_string(), "ipv4.link-local: cannot disable ipv4.link-local with ipv4.method=link-local");
        let e = normalize_and_validate(kf("[ipv4]\nmethod=disabled\nlink-local=3\n")).unwrap_err();
        assert_eq!(e.to_string(), "ipv4.link-local: cannot enable ipv4.link-local with ipv4.method=disabled");
        let e = normalize_and_validate(kf("[ipv4]\nmethod=auto\nlink-local=7\n")).unwrap_err();
        assert_eq!(e.to_string(), "ipv4.link-local: property is invalid");
        assert!(normalize_and_validate(kf("[ipv4]\nmethod=auto\nlink-local=3\n")).is_ok());
        let e = normalize_and_validate(kf("[ipv4]\nmethod=bogus\n")).unwrap_err();
        assert_eq!(e.to_string(), "ipv4.method: method 'bogus' is not valid");
        let e = normalize_and_validate(kf("interface-name=waytoolonginterfacename\n")).unwrap_err();
        assert_eq!(e.property, "interface-name");
        let e = normalize_and_validate(kf("permissions=alice;\n")).unwrap_err();
        assert_eq!(e.property, "permissions");
        let veth = |peer: &str| {
            let mut c = kf("interface-name=v0\n");
            c.set("connection", "type", Value::Str("veth".into()));
            c.set("veth", "peer", Value::Str(peer.into()));
            normalize_and_validate(c)
        };
        assert_eq!(veth("").unwrap_err().to_string(), "veth.peer: property is missing");
        assert_eq!(veth("way/too/long/a/name").unwrap_err().property, "peer");
        assert!(veth("v1").is_ok());
        let e = normalize_and_validate(kf("multi-connect=7\n")).unwrap_err();
        assert_eq!(e.to_string(), "connection.multi-connect: value 7 is not valid");
        assert!(normalize_and_validate(kf("multi-connect=3\n")).is_ok());
        let mut c = kf("");
        c.set("connection", "uuid", Value::Str("not-a-uuid".into()));
        assert_eq!(normalize_and_validate(c).unwrap_err().property, "uuid");
        let mut c = kf("");
        c.set("connection", "type", Value::Str("ethernet".into()));
        assert_eq!(
            normalize_and_validate(c).unwrap_err().to_string(),
            "connection.type: connection type 'ethernet' is not valid"
        );
        let routed = |options: &str| {
            kf(&format!("[ipv4]\nmethod=manual\naddress1=192.0.2.5/24\nroute1=10.0.0.0/8\nroute1_options={options}\n"))
        };
        assert!(normalize_and_validate(routed("type=blackhole,src=192.0.2.5,onlink=true")).is_ok());
        let e = normalize_and_validate(routed("type=wormhole")).unwrap_err();
        assert_eq!(e.to_string(), "ipv4.routes: invalid route type 'wormhole'");
        let e = normalize_and_validate(routed("src=2001:db8::1")).unwrap_err();
        assert_eq!(e.to_string(), "ipv4.routes: invalid source address '2001:db8::1'");
    }

    #[test]
    fn wifi_rules() {
        let mut c = kf("");
        c.set("connection", "type", Value::Str("802-11-wireless".into()));
        assert_eq!(
            normalize_and_validate(c.clone()).unwrap_err().to_string(),
            "802-11-wireless.ssid: property is missing"
        );
        c.set("802-11-wireless", "ssid", Value::Bytes(b"net".to_vec()));
        c.set("802-11-wireless-security", "key-mgmt", Value::Str("wpa-psk".into()));
        c.set("802-11-wireless-security", "psk", Value::Str("short".into()));
        assert_eq!(normalize_and_validate(c.clone()).unwrap_err().property, "psk");
        c.set("802-11-wireless-security", "psk", Value::Str("long enough".into()));
        assert!(normalize_and_validate(c).is_ok());
    }

    #[test]
    fn bridge_rules() {
        let bridge = |body: &str| {
            let text = format!(
                "[connection]\nid=b\nuuid=1c0f2a3b-4d5e-4f60-8172-93a4b5c6d7e8\ntype=bridge\ninterface-name=br0\n[bridge]\n{body}"
            );
            normalize_and_validate(keyfile::parse(&text).unwrap()).map(drop).map_err(|e| e.to_string())
        };
        assert_eq!(bridge("stp=false\nforward-delay=0\nhello-time=0\n"), Ok(()), "0 is the default without STP");
        assert_eq!(bridge("forward-delay=0\n"), Err("bridge.forward-delay: value '0' is out of range <2-30>".into()));
        assert_eq!(
            bridge("group-forward-mask=8\nmulticast-hash-max=512\nmulticast-router=enabled\nvlan-protocol=802.1ad\n"),
            Ok(())
        );
        assert_eq!(
            bridge("group-forward-mask=5\n"),
            Err("bridge.group-forward-mask: the mask can't contain bits 0 (STP), 1 (MAC) or 2 (LACP)".into())
        );
        assert_eq!(bridge("group-address=01:80:C2:00:00:0E\n"), Ok(()));
        assert_eq!(
            bridge("group-address=01:80:C2:00:00:02\n"),
            Err("bridge.group-address: is not a valid link local MAC address".into())
        );
        assert_eq!(
            bridge("multicast-router=sometimes\n"),
            Err("bridge.multicast-router: is not a valid option".into())
        );
        assert_eq!(
            bridge("multicast-hash-max=1000\n"),
            Err("bridge.multicast-hash-max: 'multicast-hash-max' option must be a power of 2".into())
        );
        assert_eq!(
            bridge("vlan-protocol=802.1x\n"),
            Err("bridge.vlan-protocol: is not a valid VLAN filtering protocol".into())
        );
        assert_eq!(
            bridge("vlan-default-pvid=4095\n"),
            Err("bridge.vlan-default-pvid: value '4095' is out of range <0-4094>".into())
        );
        assert_eq!(bridge("vlan-filtering=true\nvlans=1 pvid untagged,10-20,30\n"), Ok(()));
        assert_eq!(bridge("vlans=10-20,15\n"), Err("bridge.vlans: duplicate VLAN id 15".into()));
        assert_eq!(bridge("vlans=10 pvid,20 pvid\n"), Err("bridge.vlans: only one VLAN can be the PVID".into()));
        assert_eq!(bridge("vlans=10-20 pvid\n"), Err("bridge.vlans: the VLAN range 10-20 can't be the PVID".into()));
        let port = |body: &str| {
            normalize_and_validate(kf(&format!("master=br0\nslave-type=bridge\n[bridge-port]\n{body}")))
                .map(drop)
                .map_err(|e| e.to_string())
        };
        assert_eq!(port("path-cost=5\npriority=10\nhairpin-mode=true\nvlans=100 pvid untagged\n"), Ok(()));
        assert_eq!(port("priority=64\n"), Err("bridge-port.priority: value '64' is out of range <0-63>".into()));
    }

    #[test]
    fn ethtool_and_user_rules() {
        let check = |body: &str| normalize_and_validate(kf(body)).map(drop).map_err(|e| e.to_string());
        assert_eq!(check("[ethtool]\nfeature-tso=false\ncoalesce-rx-usecs=50\nring-rx=512\npause-rx=true\n"), Ok(()));
        let c = normalize_and_validate(kf("[ethtool]\nfeature-tso=false\nring-rx=512\n")).unwrap();
        assert_eq!(c.get("ethtool", "feature-tso"), Some(&Value::Bool(false)), "typed");
        assert_eq!(c.get("ethtool", "ring-rx"), Some(&Value::UInt32(512)));
        let mut odd = kf("");
        odd.set("ethtool", "feature-warp", Value::Bool(true));
        assert_eq!(
            normalize_and_validate(odd).map(drop).map_err(|e| e.to_string()),
            Err("ethtool.feature-warp: unsupported ethtool setting".into())
        );
        assert_eq!(
            check("[ethtool]\ncoalesce-adaptive-rx=2\n"),
            Err("ethtool.coalesce-adaptive-rx: coalesce option must be either 0 or 1".into())
        );
        assert_eq!(
            check("[ethtool]\npause-autoneg=true\npause-tx=false\n"),
            Err("ethtool.pause-autoneg: pause-autoneg cannot be enabled when setting rx/tx options".into())
        );
        assert_eq!(check("[user]\norg.example.owner=alice\n"), Ok(()));
        assert_eq!(
            check("[user]\nowner=alice\n"),
            Err("user.data: invalid key \"owner\": key requires a '.' for a namespace".into())
        );
        assert_eq!(
            check("[user]\norg..owner=alice\n"),
            Err("user.data: invalid key \"org..owner\": key cannot contain \"..\"".into())
        );
        assert_eq!(
            check("[user]\norg.own er=alice\n"),
            Err("user.data: invalid key \"org.own er\": key contains invalid characters".into())
        );
    }

    #[test]
    fn tc_rules() {
        use crate::value::VarDict;
        let check = |body: &str| normalize_and_validate(kf(body)).map(drop).map_err(|e| e.to_string());
        assert_eq!(check("[tc]\nqdisc.root=fq_codel limit 10\nqdisc.ffff:fff1=ingress\n"), Ok(()));
        let mut c = kf("");
        let mut q = VarDict::new();
        q.insert("kind".into(), Value::Str("sfq".into()));
        q.insert("parent".into(), Value::UInt32(text::TC_H_ROOT));
        c.set("tc", "qdiscs", Value::dict_list(vec![q.clone(), q.clone()]));
        assert_eq!(
            normalize_and_validate(c.clone()).map(drop).map_err(|e| e.to_string()),
            Err("tc.qdiscs: there are duplicate TC qdiscs".into())
        );
        let mut odd = q.clone();
        odd.insert("speed".into(), Value::UInt32(5));
        c.set("tc", "qdiscs", Value::dict_list(vec![odd]));
        assert_eq!(
            normalize_and_validate(c.clone()).map(drop).map_err(|e| e.to_string()),
            Err("tc.qdiscs: qdisc 'sfq' has no attribute 'speed'".into())
        );
        q.remove("parent");
        c.set("tc", "qdiscs", Value::dict_list(vec![q]));
        assert_eq!(
            normalize_and_validate(c).map(drop).map_err(|e| e.to_string()),
            Err("tc.qdiscs: parent handle missing".into())
        );
    }

    #[test]
    fn dhcp_duids() {
        let check = |v: &str| normalize_and_validate(kf(&format!("[ipv6]\nmethod=dhcp\ndhcp-duid={v}\n"))).map(drop);
        for ok in ["lease", "ll", "llt", "stable-ll", "stable-llt", "stable-uuid", "00:04:aa:bb"] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in ["llx", "00:4", "zz:zz:zz", "00:01:02"] {
            assert_eq!(check(bad).map_err(|e| e.to_string()), Err("ipv6.dhcp-duid: invalid DUID".into()), "{bad}");
        }
    }

    #[test]
    fn ipv6_tokens() {
        let check = |body: &str| normalize_and_validate(kf(body)).map_err(|e| e.to_string());
        let c = check("[ipv6]\nmethod=auto\naddr-gen-mode=eui64\ntoken=::0:5\n").unwrap();
        assert_eq!(c.get_str("ipv6", "token"), Some("::5"), "canonical form");
        // A keyfile without addr-gen-mode means default-or-eui64.
        assert!(check("[ipv6]\nmethod=auto\ntoken=::5\n").is_ok());
        assert_eq!(
            check("[ipv6]\nmethod=auto\naddr-gen-mode=stable-privacy\ntoken=::5\n").map(drop),
            Err("ipv6.token: only makes sense with EUI64 address generation mode".into())
        );
        assert_eq!(
            check("[ipv6]\nmethod=auto\naddr-gen-mode=eui64\ntoken=2001:db8::5\n").map(drop),
            Err("ipv6.token: value is not a valid token".into())
        );
        assert_eq!(
            check("[ipv6]\nmethod=auto\naddr-gen-mode=eui64\ntoken=::\n").map(drop),
            Err("ipv6.token: value is not a valid token".into())
        );
    }

    #[test]
    fn dhcp_fqdn_rules() {
        let check = |body: &str| normalize_and_validate(kf(body)).map(drop).map_err(|e| e.to_string());
        assert_eq!(check("[ipv4]\nmethod=auto\ndhcp-fqdn=box.lab.test\ndhcp-hostname-flags=3\n"), Ok(()));
        assert_eq!(
            check("[ipv4]\nmethod=auto\ndhcp-fqdn=box\n"),
            Err("ipv4.dhcp-fqdn: 'box' is not a valid FQDN".into())
        );
        assert_eq!(
            check("[ipv4]\nmethod=auto\ndhcp-fqdn=box.lab.test\ndhcp-hostname=box\n"),
            Err("ipv4.dhcp-fqdn: property cannot be set when dhcp-hostname is also set".into())
        );
        assert_eq!(
            check("[ipv4]\nmethod=auto\ndhcp-hostname-flags=1\n"),
            Err("ipv4.dhcp-hostname-flags: FQDN flags requires a FQDN set".into())
        );
    }
}
