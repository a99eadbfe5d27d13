//! Devices as NetworkManager numbers them: states, reasons, types, which
//! links are managed, default route metrics. Pure.

/// `NMDeviceState` (the whole table; some states arrive with later issues).
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum DeviceState {
    Unknown = 0,
    Unmanaged = 10,
    Unavailable = 20,
    Disconnected = 30,
    Prepare = 40,
    Config = 50,
    NeedAuth = 60,
    IpConfig = 70,
    IpCheck = 80,
    Secondaries = 90,
    Activated = 100,
    Deactivating = 110,
    Failed = 120,
}

/// `NMDeviceStateReason` values nm-core uses.
pub mod reason {
    pub const NONE: u32 = 0;
    pub const NOW_MANAGED: u32 = 2;
    pub const NOW_UNMANAGED: u32 = 3;
    /// The device could not be configured (a bridge's options refused).
    pub const CONFIG_FAILED: u32 = 4;
    pub const IP_CONFIG_UNAVAILABLE: u32 = 5;
    pub const NO_SECRETS: u32 = 7;
    pub const SUPPLICANT_CONFIG_FAILED: u32 = 9;
    pub const SUPPLICANT_FAILED: u32 = 10;
    pub const SUPPLICANT_TIMEOUT: u32 = 11;
    pub const REMOVED: u32 = 36;
    /// The manager sleeps (suspend, or networking switched off).
    pub const SLEEPING: u32 = 37;
    pub const CONNECTION_REMOVED: u32 = 38;
    pub const USER_REQUESTED: u32 = 39;
    pub const CARRIER: u32 = 40;
    /// Connection sharing could not start (dnsmasq, the firewall rules).
    pub const SHARED_START_FAILED: u32 = 42;
    pub const CONNECTION_ASSUMED: u32 = 41;
    /// A bridge port's bridge went down.
    pub const DEPENDENCY_FAILED: u32 = 50;
    pub const NEW_ACTIVATION: u32 = 60;
}

/// `NMActiveConnectionState` (the whole table).
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum AcState {
    Unknown = 0,
    Activating = 1,
    Activated = 2,
    Deactivating = 3,
    Deactivated = 4,
}

/// `NMActiveConnectionStateReason` values nm-core uses.
pub mod ac_reason {
    pub const NONE: u32 = 1;
    pub const USER_DISCONNECTED: u32 = 2;
    pub const DEVICE_DISCONNECTED: u32 = 3;
    pub const CONNECTION_REMOVED: u32 = 11;
    pub const DEPENDENCY_FAILED: u32 = 12;
    pub const DEVICE_REMOVED: u32 = 14;
}

/// `NMDeviceType` of the kinds nm-core knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceType {
    Ethernet,
    Veth,
    Bridge,
    Macvlan,
    Vxlan,
    Tun,
    Loopback,
    Generic,
}

impl DeviceType {
    pub fn number(self) -> u32 {
        match self {
            DeviceType::Ethernet => 1,
            DeviceType::Bridge => 13,
            DeviceType::Generic => 14,
            DeviceType::Tun => 16,
            DeviceType::Macvlan => 18,
            DeviceType::Vxlan => 19,
            DeviceType::Veth => 20,
            DeviceType::Loopback => 32,
        }
    }

    /// The `connection.type` of profiles that fit this device.
    pub fn connection_type(self) -> &'static str {
        match self {
            DeviceType::Ethernet | DeviceType::Veth => "802-3-ethernet",
            DeviceType::Bridge => "bridge",
            DeviceType::Macvlan => "macvlan",
            DeviceType::Vxlan => "vxlan",
            DeviceType::Tun => "tun",
            DeviceType::Loopback => "loopback",
            DeviceType::Generic => "generic",
        }
    }

    /// Whether profiles of `connection.type` `ctype` may run on the type:
    /// its own, and for a veth also `veth` (the profile that makes it).
    pub fn takes(self, ctype: &str) -> bool {
        ctype == self.connection_type() || (self == DeviceType::Veth && ctype == "veth")
    }

    /// The default route metric of the type (NetworkManager's table).
    pub fn default_route_metric(self) -> u32 {
        match self {
            DeviceType::Loopback => 30,
            DeviceType::Ethernet | DeviceType::Veth => 100,
            DeviceType::Macvlan => 410,
            DeviceType::Bridge => 425,
            DeviceType::Tun => 450,
            DeviceType::Vxlan => 500,
            DeviceType::Generic => 950,
        }
    }

    /// A device a profile makes (and nm-core deletes with its activation).
    pub fn is_software(self) -> bool {
        matches!(self, DeviceType::Bridge | DeviceType::Macvlan | DeviceType::Vxlan | DeviceType::Tun)
    }

    /// Whether the device needs a carrier before it can activate.
    pub fn needs_carrier(self) -> bool {
        matches!(self, DeviceType::Ethernet | DeviceType::Veth)
    }

    /// The type word nmcli shows for a `.Device.Generic` device.
    pub fn description(self) -> &'static str {
        match self {
            DeviceType::Ethernet | DeviceType::Veth => "ethernet",
            DeviceType::Bridge => "bridge",
            DeviceType::Macvlan => "macvlan",
            DeviceType::Vxlan => "vxlan",
            DeviceType::Tun => "tun",
            DeviceType::Loopback => "loopback",
            DeviceType::Generic => "generic",
        }
    }
}

/// What the platform tells us about a link, reduced to what the decisions need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    pub name: String,
    pub kind: DeviceType,
    pub driver: Option<String>,
    pub mac: Option<String>,
    pub physical: bool,
}

/// A match spec as NetworkManager writes them: `interface-name:GLOB`,
/// `type:KIND`, `driver:NAME`, `mac:AA:BB:…`, or a bare interface glob.
pub fn spec_matches(spec: &str, link: &LinkFacts) -> bool {
    let (key, value) = spec.split_once(':').unwrap_or(("interface-name", spec));
    match key {
        // `=NAME` is the name itself (no glob), `~GLOB` the same as GLOB.
        "interface-name" => match value.strip_prefix('=') {
            Some(exact) => exact == link.name,
            None => glob(value.strip_prefix('~').unwrap_or(value), &link.name),
        },
        "type" => value == link.kind.description() || (value == "veth" && link.kind == DeviceType::Veth),
        "driver" => link.driver.as_deref() == Some(value),
        "mac" => link.mac.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(value)),
        // A MAC spec may also be written without the key.
        _ => glob(spec, &link.name),
    }
}

/// Shell wildcards as fnmatch(3) without flags (what NetworkManager
/// matches device specs and `match.*` patterns with): `*`, `?`, `[…]`
/// with `!`/`^` negation and ranges, and `\` taking the next character
/// as it is. Backtracks only to the last `*`, so a pattern costs at most
/// its length times the text's.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where to go on after the last `*`: its pattern index, and the text
    // index it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if p.get(pi) == Some(&'*') {
            pi += 1;
            star = Some((pi, ti));
            continue;
        }
        if let Some(next) = one_char(&p, pi, t[ti]) {
            pi = next;
            ti += 1;
            continue;
        }
        let Some((after_star, swallowed)) = star else { return false };
        pi = after_star;
        ti = swallowed + 1;
        star = Some((after_star, ti));
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether the pattern's element at `pi` (not `*`) matches `c`; if so, the
/// index after the element.
fn one_char(p: &[char], pi: usize, c: char) -> Option<usize> {
    match *p.get(pi)? {
        '?' => Some(pi + 1),
        '[' => match bracket(&p[pi..], c) {
            Some((hit, len)) => hit.then(|| pi + len),
            // Unterminated: a literal '['.
            None => (c == '[').then_some(pi + 1),
        },
        // A pattern ending in a lone backslash matches nothing (POSIX).
        '\\' => (*p.get(pi + 1)? == c).then_some(pi + 2),
        lit => (lit == c).then_some(pi + 1),
    }
}

/// A bracket expression at the start of `p`: whether `c` is in it, and its
/// length; `None` when it has no closing `]` (a literal `[` then). As in
/// glibc, a range or escape running into the pattern's end matches
/// nothing at all.
fn bracket(p: &[char], c: char) -> Option<(bool, usize)> {
    const NOTHING: Option<(bool, usize)> = Some((false, usize::MAX));
    let mut i = 1;
    let negated = matches!(p.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let mut lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((hit != negated, i + 1));
        }
        first = false;
        if lo == '\\' {
            i += 1;
            let Some(&escaped) = p.get(i) else { return NOTHING };
            lo = escaped;
        }
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') && p.get(i + 1) != Some(&']') {
            let Some(&end) = p.get(i + 1) else { return NOTHING };
            hi = end;
            if hi == '\\' {
                let Some(&escaped) = p.get(i + 2) else { return NOTHING };
                hi = escaped;
                i += 1;
            }
            i += 2;
        }
        hit |= lo <= c && c <= hi;
    }
}

/// Whether nm-core manages a link: configuration first (`unmanaged` wins
/// over `managed`), then the default of DESIGN.md §4: physical devices yes,
/// virtual links other software made no. Loopback is never managed.
pub fn is_managed(link: &LinkFacts, managed: &[String], unmanaged: &[String]) -> bool {
    if link.kind == DeviceType::Loopback || unmanaged.iter().any(|s| spec_list_matches(s, link)) {
        return false;
    }
    managed.iter().any(|s| spec_list_matches(s, link)) || link.physical
}

/// One entry of a managed, unmanaged or no-auto-default list: a spec, or
/// a NetworkManager device spec list (`;` or `,` between specs, as
/// NetworkManager.conf writes them) with its rules: an `except:` spec
/// that matches wins over the others, and a list of `except:` specs
/// alone matches every device they do not.
pub fn spec_list_matches(list: &str, link: &LinkFacts) -> bool {
    let specs = list.split([';', ',']).map(str::trim).filter(|s| !s.is_empty());
    let (except, plain): (Vec<&str>, Vec<&str>) = specs.partition(|s| s.starts_with("except:"));
    if except.iter().any(|s| spec_matches(&s["except:".len()..], link)) {
        return false;
    }
    if plain.is_empty() {
        return !except.is_empty();
    }
    plain.iter().any(|s| spec_matches(s, link))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, kind: DeviceType, physical: bool) -> LinkFacts {
        LinkFacts { name: name.into(), kind, driver: None, mac: Some("52:54:00:12:34:56".into()), physical }
    }

    #[test]
    fn globs() {
        assert!(glob("eth*", "eth0"));
        assert!(glob("nmt*c?", "nmt12x0c1"));
        assert!(!glob("eth?", "eth10"));
        assert!(glob("*", ""));
        assert!(glob("*c1", "nmt12x0c1") && !glob("*c1", "nmt12x0c0"));
        assert!(glob("a*b*c", "aXbYbZc") && !glob("a*b*c", "aXbYbZ"));
        assert!(glob("eth[0-2]", "eth1") && !glob("eth[0-2]", "eth3"));
        assert!(glob("eth[!0]", "eth1") && !glob("eth[^0]", "eth0"));
        assert!(glob("[]x]", "]") && glob("a[", "a[") && glob("\\*", "*") && !glob("\\*", "x"));
        // A long run of stars costs little (no exponential backtracking).
        assert!(!glob(&"a*".repeat(40), &"a".repeat(39)));
    }

    /// `glob` answers as glibc's fnmatch(3) without flags, over many
    /// small random patterns and names built from the characters that
    /// matter.
    #[test]
    fn glob_agrees_with_fnmatch() {
        use std::ffi::CString;
        let alphabet: Vec<char> = "ab-*?[]!^\\".chars().collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..200_000 {
            let pattern: String = (0..next(10)).map(|_| alphabet[next(alphabet.len())]).collect();
            let text: String = (0..next(8)).map(|_| alphabet[next(alphabet.len())]).collect();
            let (p, t) = (CString::new(pattern.clone()).unwrap(), CString::new(text.clone()).unwrap());
            // SAFETY: two NUL-terminated strings that outlive the call.
            let libc_says = unsafe { libc::fnmatch(p.as_ptr(), t.as_ptr(), 0) } == 0;
            assert_eq!(glob(&pattern, &text), libc_says, "pattern {pattern:?} text {text:?}");
        }
    }

    #[test]
    fn managed_defaults_and_specs() {
        let eth = link("eth0", DeviceType::Ethernet, true);
        let veth = link("veth1", DeviceType::Veth, false);
        let lo = link("lo", DeviceType::Loopback, false);
        assert!(is_managed(&eth, &[], &[]));
        assert!(!is_managed(&veth, &[], &[]));
        assert!(is_managed(&veth, &["interface-name:veth*".into()], &[]));
        assert!(is_managed(&veth, &["type:veth".into()], &[]));
        assert!(is_managed(&veth, &["mac:52:54:00:12:34:56".into()], &[]));
        assert!(!is_managed(&eth, &[], &["eth0".into()]));
        assert!(!is_managed(&lo, &["*".into()], &[]));
    }

    #[test]
    fn exact_names_and_tilde_globs() {
        let eth = link("eth0", DeviceType::Ethernet, true);
        assert!(spec_matches("interface-name:=eth0", &eth));
        assert!(!spec_matches("interface-name:=eth*", &eth));
        assert!(spec_matches("interface-name:~eth*", &eth));
    }

    #[test]
    fn networkmanager_spec_lists() {
        let eth = link("eth0", DeviceType::Ethernet, true);
        let veth = link("veth9", DeviceType::Veth, false);
        // Ubuntu's default: everything but Wi-Fi and modems is left alone.
        let ubuntu = "*,except:type:wifi,except:type:gsm,except:type:cdma";
        assert!(spec_list_matches(ubuntu, &eth) && !is_managed(&eth, &[], &[ubuntu.into()]));
        assert!(spec_list_matches("except:interface-name:eth0", &veth));
        assert!(!spec_list_matches("except:interface-name:eth0", &eth));
        assert!(spec_list_matches("interface-name:docker*;interface-name:veth*", &veth));
        assert!(!spec_list_matches("interface-name:veth*,except:type:veth", &veth), "except: wins");
        assert!(!spec_list_matches("", &eth));
    }
}
