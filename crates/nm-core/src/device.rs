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

/// Shell-style glob with `*` and `?`.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Whether nm-core manages a link: configuration first (`unmanaged` wins
/// over `managed`), then the default of DESIGN.md §4: physical devices yes,
/// virtual links other software made no. Loopback is never managed.
pub fn is_managed(link: &LinkFacts, managed: &[String], unmanaged: &[String]) -> bool {
    if link.kind == DeviceType::Loopback || unmanaged.iter().any(|s| spec_matches(s, link)) {
        return false;
    }
    managed.iter().any(|s| spec_matches(s, link)) || link.physical
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
}
