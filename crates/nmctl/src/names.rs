//! NetworkManager's numbers in words (nm-dbus-api.md §1.4): states, reasons,
//! device types, connectivity. Words follow nmcli where nmcli has them.

/// `NMState` (`Manager.State`).
pub fn nm_state(n: u32) -> &'static str {
    match n {
        10 => "asleep",
        20 => "disconnected",
        30 => "disconnecting",
        40 => "connecting",
        50 => "connected (local only)",
        60 => "connected (site only)",
        70 => "connected",
        _ => "unknown",
    }
}

/// `NMConnectivityState`.
pub fn connectivity(n: u32) -> &'static str {
    match n {
        1 => "none",
        2 => "portal",
        3 => "limited",
        4 => "full",
        _ => "unknown",
    }
}

pub const DEVICE_UNMANAGED: u32 = 10;
pub const DEVICE_UNAVAILABLE: u32 = 20;
pub const DEVICE_DISCONNECTED: u32 = 30;
pub const DEVICE_ACTIVATED: u32 = 100;
pub const DEVICE_FAILED: u32 = 120;

/// `NMDeviceState`, as `nmcli device status` words it.
pub fn device_state(n: u32) -> &'static str {
    match n {
        10 => "unmanaged",
        20 => "unavailable",
        30 => "disconnected",
        40 => "connecting (prepare)",
        50 => "connecting (configuring)",
        60 => "connecting (need authentication)",
        70 => "connecting (getting IP configuration)",
        80 => "connecting (checking IP connectivity)",
        90 => "connecting (starting secondary connections)",
        100 => "connected",
        110 => "deactivating",
        120 => "connection failed",
        _ => "unknown",
    }
}

/// How a device state should look: good, in progress, bad or idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Good,
    Busy,
    Bad,
    Idle,
    Plain,
}

pub fn device_tone(n: u32) -> Tone {
    match n {
        100 => Tone::Good,
        40..=90 | 110 => Tone::Busy,
        120 | 20 => Tone::Bad,
        10 => Tone::Idle,
        _ => Tone::Plain,
    }
}

pub fn nm_state_tone(n: u32) -> Tone {
    match n {
        70 => Tone::Good,
        30 | 40 | 50 | 60 => Tone::Busy,
        20 => Tone::Bad,
        _ => Tone::Plain,
    }
}

pub const AC_ACTIVATING: u32 = 1;
pub const AC_ACTIVATED: u32 = 2;
pub const AC_DEACTIVATED: u32 = 4;

/// `NMActiveConnectionState`.
pub fn active_state(n: u32) -> &'static str {
    match n {
        1 => "activating",
        2 => "activated",
        3 => "deactivating",
        4 => "deactivated",
        _ => "unknown",
    }
}

/// `NMDeviceType`.
pub fn device_type(n: u32) -> &'static str {
    match n {
        1 => "ethernet",
        2 => "wifi",
        5 => "bt",
        6 => "olpc-mesh",
        7 => "wimax",
        8 => "modem",
        9 => "infiniband",
        10 => "bond",
        11 => "vlan",
        12 => "adsl",
        13 => "bridge",
        14 => "generic",
        15 => "team",
        16 => "tun",
        17 => "ip-tunnel",
        18 => "macvlan",
        19 => "vxlan",
        20 => "veth",
        21 => "macsec",
        22 => "dummy",
        23 => "ppp",
        24 => "ovs-interface",
        25 => "ovs-port",
        26 => "ovs-bridge",
        27 => "wpan",
        28 => "6lowpan",
        29 => "wireguard",
        30 => "wifi-p2p",
        31 => "vrf",
        32 => "loopback",
        _ => "unknown",
    }
}

pub const DEVICE_TYPE_LOOPBACK: u32 = 32;

const DEVICE_REASONS: &[&str] = &[
    "NONE",
    "UNKNOWN",
    "NOW_MANAGED",
    "NOW_UNMANAGED",
    "CONFIG_FAILED",
    "IP_CONFIG_UNAVAILABLE",
    "IP_CONFIG_EXPIRED",
    "NO_SECRETS",
    "SUPPLICANT_DISCONNECT",
    "SUPPLICANT_CONFIG_FAILED",
    "SUPPLICANT_FAILED",
    "SUPPLICANT_TIMEOUT",
    "PPP_START_FAILED",
    "PPP_DISCONNECT",
    "PPP_FAILED",
    "DHCP_START_FAILED",
    "DHCP_ERROR",
    "DHCP_FAILED",
    "SHARED_START_FAILED",
    "SHARED_FAILED",
    "AUTOIP_START_FAILED",
    "AUTOIP_ERROR",
    "AUTOIP_FAILED",
    "MODEM_BUSY",
    "MODEM_NO_DIAL_TONE",
    "MODEM_NO_CARRIER",
    "MODEM_DIAL_TIMEOUT",
    "MODEM_DIAL_FAILED",
    "MODEM_INIT_FAILED",
    "GSM_APN_FAILED",
    "GSM_REGISTRATION_NOT_SEARCHING",
    "GSM_REGISTRATION_DENIED",
    "GSM_REGISTRATION_TIMEOUT",
    "GSM_REGISTRATION_FAILED",
    "GSM_PIN_CHECK_FAILED",
    "FIRMWARE_MISSING",
    "REMOVED",
    "SLEEPING",
    "CONNECTION_REMOVED",
    "USER_REQUESTED",
    "CARRIER",
    "CONNECTION_ASSUMED",
    "SUPPLICANT_AVAILABLE",
    "MODEM_NOT_FOUND",
    "BT_FAILED",
    "GSM_SIM_NOT_INSERTED",
    "GSM_SIM_PIN_REQUIRED",
    "GSM_SIM_PUK_REQUIRED",
    "GSM_SIM_WRONG",
    "INFINIBAND_MODE",
    "DEPENDENCY_FAILED",
    "BR2684_FAILED",
    "MODEM_MANAGER_UNAVAILABLE",
    "SSID_NOT_FOUND",
    "SECONDARY_CONNECTION_FAILED",
    "DCB_FCOE_FAILED",
    "TEAMD_CONTROL_FAILED",
    "MODEM_FAILED",
    "MODEM_AVAILABLE",
    "SIM_PIN_INCORRECT",
    "NEW_ACTIVATION",
    "PARENT_CHANGED",
    "PARENT_MANAGED_CHANGED",
    "OVSDB_FAILED",
    "IP_ADDRESS_DUPLICATE",
    "IP_METHOD_UNSUPPORTED",
    "SRIOV_CONFIGURATION_FAILED",
    "PEER_NOT_FOUND",
];

/// `NMDeviceStateReason` by its C name (`IP_CONFIG_UNAVAILABLE`).
pub fn device_reason_name(n: u32) -> String {
    DEVICE_REASONS.get(n as usize).map_or_else(|| format!("REASON_{n}"), |s| s.to_string())
}

/// `NMDeviceStateReason` in words, for people.
pub fn device_reason(n: u32) -> String {
    let text = match n {
        4 => "the device could not be configured",
        5 => "no IP configuration could be obtained (no address, DHCP timed out, …)",
        6 => "the IP configuration expired",
        7 => "secrets were required but not provided",
        15 => "the DHCP client could not be started",
        16 => "a DHCP client error",
        17 => "the DHCP client failed",
        35 => "the firmware is missing",
        36 => "the device was removed",
        38 => "the connection profile was removed",
        39 => "disconnected by the user",
        40 => "the carrier went away (cable unplugged?)",
        50 => "a dependency failed",
        60 => "a new activation replaced it",
        64 => "an IP address is already in use on the network",
        65 => "the IP method is not supported",
        _ => return words(&device_reason_name(n)),
    };
    text.to_string()
}

const AC_REASONS: &[&str] = &[
    "UNKNOWN",
    "NONE",
    "USER_DISCONNECTED",
    "DEVICE_DISCONNECTED",
    "SERVICE_STOPPED",
    "IP_CONFIG_INVALID",
    "CONNECT_TIMEOUT",
    "SERVICE_START_TIMEOUT",
    "SERVICE_START_FAILED",
    "NO_SECRETS",
    "LOGIN_FAILED",
    "CONNECTION_REMOVED",
    "DEPENDENCY_FAILED",
    "DEVICE_REALIZE_FAILED",
    "DEVICE_REMOVED",
];

/// `NMActiveConnectionStateReason` by its C name.
pub fn active_reason_name(n: u32) -> String {
    AC_REASONS.get(n as usize).map_or_else(|| format!("REASON_{n}"), |s| s.to_string())
}

/// `NMActiveConnectionStateReason` in words.
pub fn active_reason(n: u32) -> String {
    let text = match n {
        2 => "disconnected by the user",
        3 => "the device was disconnected",
        5 => "the IP configuration was invalid",
        6 => "the activation timed out",
        9 => "secrets were required but not provided",
        11 => "the connection profile was removed",
        12 => "a dependency failed",
        14 => "the device was removed",
        _ => return words(&active_reason_name(n)),
    };
    text.to_string()
}

/// `IP_CONFIG_UNAVAILABLE` → `ip config unavailable`.
fn words(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_names_and_words() {
        assert_eq!(device_reason_name(5), "IP_CONFIG_UNAVAILABLE");
        assert_eq!(device_reason_name(67), "PEER_NOT_FOUND");
        assert_eq!(device_reason_name(999), "REASON_999");
        assert_eq!(device_reason(40), "the carrier went away (cable unplugged?)");
        assert_eq!(device_reason(23), "modem busy");
        assert_eq!(active_reason_name(14), "DEVICE_REMOVED");
        assert_eq!(active_reason(7), "service start timeout");
    }

    #[test]
    fn states_read_like_nmcli() {
        assert_eq!(device_state(100), "connected");
        assert_eq!(device_state(70), "connecting (getting IP configuration)");
        assert_eq!(nm_state(70), "connected");
        assert_eq!(device_type(32), "loopback");
        assert_eq!(connectivity(4), "full");
    }
}
