//! The one schema behind every codec: each known setting, its properties,
//! their D-Bus types, defaults and how they look in a keyfile.
//!
//! Facts come from nm-settings-dbus(5) / nm-settings-keyfile(5) of
//! NetworkManager 1.42. The keyfile, TOML and `a{sa{sv}}` codecs walk this
//! table; none of them has code for an individual property.

/// How a property is represented. The D-Bus signature follows from the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Str,
    StrList,
    /// Generic `ay`; a keyfile holds it as a `;`-list of decimal bytes.
    Bytes,
    /// `ay` of 6 (or 20 for infiniband) bytes; keyfile `00:11:22:33:44:55`.
    Mac,
    /// `802-11-wireless.ssid`: text when printable, else a byte list.
    Ssid,
    /// 802.1X certificate or key: `file://PATH\0`, a blob, or a `pkcs11:` URI.
    Cert,
    /// `cloned-mac-address`: stored as text (a MAC or `random`, `stable`,
    /// `preserve`, `permanent`); on D-Bus also as `ay` and as
    /// `assigned-mac-address`.
    ClonedMac,
    /// An `i` enumeration written by name in keyfiles.
    IntNick(&'static [(i32, &'static str)]),
    /// `a{ss}` whose entries are the other keys of the setting's own group
    /// (`bond.options`).
    OptionsInGroup,
    /// `a{ss}` kept in a keyfile group of its own, e.g. `[ethernet-s390-options]`.
    OptionsGroup(&'static str),
    /// `ipvX.address-data` (+ legacy `addresses`, keyfile `addressN`).
    Addresses,
    /// `ipvX.route-data` (+ legacy `routes`, keyfile `routeN`, `routeN_options`).
    Routes,
    /// `ipvX.dns`: stored as text; on D-Bus `dns-data` (`as`) and legacy `au`/`aay`.
    Dns,
    /// `ipvX.routing-rules`: `aa{sv}`, keyfile `routing-ruleN` in `ip rule` syntax.
    RoutingRules,
    /// `bridge.vlans` / `bridge-port.vlans`: `aa{sv}`, keyfile `1-10 pvid untagged,20`.
    BridgeVlans,
    /// `wireguard.peers`: `aa{sv}`, keyfile `[wireguard-peer.<public key>]` groups.
    WireguardPeers,
    /// `tc.qdiscs`: `aa{sv}` (kind, parent, handle and the kind's
    /// attributes), keyfile `qdisc.<parent>=<handle, kind, attributes>`.
    TcQdiscs,
    /// `tc.tfilters`: `aa{sv}` (kind, parent, handle, `action` `a{sv}`),
    /// keyfile `tfilter.<parent>=…`.
    TcFilters,
}

impl Kind {
    /// The D-Bus signature of the stored (new) form.
    pub fn signature(self) -> &'static str {
        match self {
            Kind::Bool => "b",
            Kind::Int32 | Kind::IntNick(_) => "i",
            Kind::UInt32 => "u",
            Kind::Int64 => "x",
            Kind::UInt64 => "t",
            Kind::Str | Kind::ClonedMac => "s",
            Kind::StrList | Kind::Dns => "as",
            Kind::Bytes | Kind::Mac | Kind::Ssid | Kind::Cert => "ay",
            Kind::OptionsInGroup | Kind::OptionsGroup(_) => "a{ss}",
            Kind::Addresses
            | Kind::Routes
            | Kind::RoutingRules
            | Kind::BridgeVlans
            | Kind::WireguardPeers
            | Kind::TcQdiscs
            | Kind::TcFilters => "aa{sv}",
        }
    }
}

/// A property's default, the value the keyfile writer leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// false, 0, "" or empty.
    Zero,
    /// None: a value that is set is meant (an ethtool option set to off
    /// turns the feature off; absent leaves it as the device has it).
    Unset,
    Bool(bool),
    Int(i64),
}

#[derive(Clone, Copy, Debug)]
pub struct PropertySpec {
    pub name: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    /// A secret: left out of `GetSettings`, stored in the file unless its
    /// flags say agent-owned or not-saved.
    pub secret: bool,
}

#[derive(Debug)]
pub struct SettingSpec {
    /// The canonical (D-Bus) name.
    pub name: &'static str,
    /// The short group name keyfiles write (`ethernet`, `wifi`, …).
    pub alias: Option<&'static str>,
    /// Whether a profile of this type carries `ipv4`/`ipv6`/`proxy`.
    pub base_type: Option<BaseType>,
    pub properties: &'static [PropertySpec],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseType {
    /// A device type that carries IP configuration.
    Ip,
    /// A type that never carries IP configuration of its own.
    NoIp,
}

impl SettingSpec {
    pub fn property(&self, name: &str) -> Option<&'static PropertySpec> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// The group name a keyfile uses for this setting.
    pub fn keyfile_group(&self) -> &'static str {
        self.alias.unwrap_or(self.name)
    }
}

const fn p(name: &'static str, kind: Kind) -> PropertySpec {
    PropertySpec { name, kind, default: DefaultValue::Zero, secret: false }
}
const fn pd(name: &'static str, kind: Kind, default: DefaultValue) -> PropertySpec {
    PropertySpec { name, kind, default, secret: false }
}
/// An option whose every value is meaningful (see [`DefaultValue::Unset`]).
const fn opt(name: &'static str, kind: Kind) -> PropertySpec {
    PropertySpec { name, kind, default: DefaultValue::Unset, secret: false }
}
const fn secret(name: &'static str, kind: Kind) -> PropertySpec {
    PropertySpec { name, kind, default: DefaultValue::Zero, secret: true }
}

use DefaultValue::{Bool as B, Int as I};
use Kind::*;

const ADDR_GEN_MODE: &[(i32, &str)] = &[(0, "eui64"), (1, "stable-privacy"), (2, "default-or-eui64"), (3, "default")];

const CONNECTION: &[PropertySpec] = &[
    pd("auth-retries", Int32, I(-1)),
    pd("autoconnect", Bool, B(true)),
    p("autoconnect-priority", Int32),
    pd("autoconnect-retries", Int32, I(-1)),
    pd("autoconnect-slaves", Int32, I(-1)),
    pd("dns-over-tls", Int32, I(-1)),
    p("gateway-ping-timeout", UInt32),
    p("id", Str),
    p("interface-name", Str),
    pd("lldp", Int32, I(-1)),
    pd("llmnr", Int32, I(-1)),
    p("master", Str),
    pd("mdns", Int32, I(-1)),
    p("metered", Int32),
    p("mptcp-flags", UInt32),
    p("mud-url", Str),
    p("multi-connect", Int32),
    p("permissions", StrList),
    p("read-only", Bool),
    p("secondaries", StrList),
    p("slave-type", Str),
    p("stable-id", Str),
    p("timestamp", UInt64),
    p("type", Str),
    p("uuid", Str),
    pd("wait-activation-delay", Int32, I(-1)),
    pd("wait-device-timeout", Int32, I(-1)),
    p("zone", Str),
];

const ETHERNET: &[PropertySpec] = &[
    pd("accept-all-mac-addresses", Int32, I(-1)),
    p("auto-negotiate", Bool),
    p("cloned-mac-address", ClonedMac),
    p("duplex", Str),
    p("generate-mac-address-mask", Str),
    p("mac-address", Mac),
    p("mac-address-blacklist", StrList),
    p("mtu", UInt32),
    p("port", Str),
    p("s390-nettype", Str),
    p("s390-options", OptionsGroup("ethernet-s390-options")),
    p("s390-subchannels", StrList),
    p("speed", UInt32),
    pd("wake-on-lan", UInt32, I(1)),
    p("wake-on-lan-password", Str),
];

/// `ipv4` and `ipv6` share most properties; the macro lists them once.
macro_rules! ip_setting {
    ($($extra:expr),* $(,)?) => {
        &[
            p("address-data", Addresses),
            pd("auto-route-ext-gw", Int32, I(-1)),
            pd("dad-timeout", Int32, I(-1)),
            p("dhcp-hostname", Str),
            p("dhcp-hostname-flags", UInt32),
            p("dhcp-iaid", Str),
            p("dhcp-reject-servers", StrList),
            pd("dhcp-send-hostname", Bool, B(true)),
            p("dhcp-timeout", Int32),
            p("dns", Dns),
            p("dns-options", StrList),
            p("dns-priority", Int32),
            p("dns-search", StrList),
            p("gateway", Str),
            p("ignore-auto-dns", Bool),
            p("ignore-auto-routes", Bool),
            pd("may-fail", Bool, B(true)),
            p("method", Str),
            p("never-default", Bool),
            pd("replace-local-rule", Int32, I(-1)),
            pd("required-timeout", Int32, I(-1)),
            p("route-data", Routes),
            pd("route-metric", Int64, I(-1)),
            p("route-table", UInt32),
            p("routing-rules", RoutingRules),
            $($extra),*
        ]
    };
}

const IPV4: &[PropertySpec] = ip_setting![
    p("dhcp-client-id", Str),
    p("dhcp-fqdn", Str),
    p("dhcp-vendor-class-identifier", Str),
    p("link-local", Int32),
];

const IPV6: &[PropertySpec] = ip_setting![
    pd("addr-gen-mode", IntNick(ADDR_GEN_MODE), I(3)),
    p("dhcp-duid", Str),
    pd("ip6-privacy", Int32, I(-1)),
    p("mtu", UInt32),
    p("ra-timeout", Int32),
    p("token", Str),
];

const PROXY: &[PropertySpec] = &[p("browser-only", Bool), p("method", Int32), p("pac-script", Str), p("pac-url", Str)];

const WIRELESS: &[PropertySpec] = &[
    pd("ap-isolation", Int32, I(-1)),
    p("band", Str),
    p("bssid", Mac),
    p("channel", UInt32),
    p("cloned-mac-address", ClonedMac),
    p("generate-mac-address-mask", Str),
    p("hidden", Bool),
    p("mac-address", Mac),
    p("mac-address-blacklist", StrList),
    p("mac-address-randomization", UInt32),
    p("mode", Str),
    p("mtu", UInt32),
    p("powersave", UInt32),
    p("rate", UInt32),
    p("security", Str),
    p("seen-bssids", StrList),
    p("ssid", Ssid),
    p("tx-power", UInt32),
    pd("wake-on-wlan", UInt32, I(1)),
];

const WIRELESS_SECURITY: &[PropertySpec] = &[
    p("auth-alg", Str),
    p("fils", Int32),
    p("group", StrList),
    p("key-mgmt", Str),
    secret("leap-password", Str),
    p("leap-password-flags", UInt32),
    p("leap-username", Str),
    p("pairwise", StrList),
    p("pmf", Int32),
    p("proto", StrList),
    secret("psk", Str),
    p("psk-flags", UInt32),
    p("wep-key-flags", UInt32),
    p("wep-key-type", UInt32),
    secret("wep-key0", Str),
    secret("wep-key1", Str),
    secret("wep-key2", Str),
    secret("wep-key3", Str),
    p("wep-tx-keyidx", UInt32),
    p("wps-method", UInt32),
];

const IEEE8021X: &[PropertySpec] = &[
    p("altsubject-matches", StrList),
    p("anonymous-identity", Str),
    pd("auth-timeout", Int32, I(0)),
    p("ca-cert", Cert),
    secret("ca-cert-password", Str),
    p("ca-cert-password-flags", UInt32),
    p("ca-path", Str),
    p("client-cert", Cert),
    secret("client-cert-password", Str),
    p("client-cert-password-flags", UInt32),
    p("domain-match", Str),
    p("domain-suffix-match", Str),
    p("eap", StrList),
    p("identity", Str),
    p("optional", Bool),
    p("pac-file", Str),
    secret("password", Str),
    p("password-flags", UInt32),
    secret("password-raw", Bytes),
    p("password-raw-flags", UInt32),
    p("phase1-auth-flags", UInt32),
    p("phase1-fast-provisioning", Str),
    p("phase1-peaplabel", Str),
    p("phase1-peapver", Str),
    p("phase2-altsubject-matches", StrList),
    p("phase2-auth", Str),
    p("phase2-autheap", Str),
    p("phase2-ca-cert", Cert),
    secret("phase2-ca-cert-password", Str),
    p("phase2-ca-cert-password-flags", UInt32),
    p("phase2-ca-path", Str),
    p("phase2-client-cert", Cert),
    secret("phase2-client-cert-password", Str),
    p("phase2-client-cert-password-flags", UInt32),
    p("phase2-domain-match", Str),
    p("phase2-domain-suffix-match", Str),
    p("phase2-private-key", Cert),
    secret("phase2-private-key-password", Str),
    p("phase2-private-key-password-flags", UInt32),
    p("phase2-subject-match", Str),
    secret("pin", Str),
    p("pin-flags", UInt32),
    p("private-key", Cert),
    secret("private-key-password", Str),
    p("private-key-password-flags", UInt32),
    p("subject-match", Str),
    p("system-ca-certs", Bool),
];

const BRIDGE: &[PropertySpec] = &[
    pd("ageing-time", UInt32, I(300)),
    pd("forward-delay", UInt32, I(15)),
    p("group-address", Mac),
    p("group-forward-mask", UInt32),
    pd("hello-time", UInt32, I(2)),
    p("interface-name", Str),
    p("mac-address", Mac),
    pd("max-age", UInt32, I(20)),
    pd("multicast-hash-max", UInt32, I(4096)),
    pd("multicast-last-member-count", UInt32, I(2)),
    pd("multicast-last-member-interval", UInt64, I(100)),
    pd("multicast-membership-interval", UInt64, I(26000)),
    p("multicast-querier", Bool),
    pd("multicast-querier-interval", UInt64, I(25500)),
    pd("multicast-query-interval", UInt64, I(12500)),
    pd("multicast-query-response-interval", UInt64, I(1000)),
    p("multicast-query-use-ifaddr", Bool),
    p("multicast-router", Str),
    pd("multicast-snooping", Bool, B(true)),
    pd("multicast-startup-query-count", UInt32, I(2)),
    pd("multicast-startup-query-interval", UInt64, I(3125)),
    pd("priority", UInt32, I(32768)),
    pd("stp", Bool, B(true)),
    pd("vlan-default-pvid", UInt32, I(1)),
    p("vlan-filtering", Bool),
    p("vlan-protocol", Str),
    p("vlan-stats-enabled", Bool),
    p("vlans", BridgeVlans),
];

const BRIDGE_PORT: &[PropertySpec] =
    &[p("hairpin-mode", Bool), pd("path-cost", UInt32, I(100)), pd("priority", UInt32, I(32)), p("vlans", BridgeVlans)];

const BOND: &[PropertySpec] = &[p("interface-name", Str), p("options", OptionsInGroup)];

const MACVLAN: &[PropertySpec] =
    &[p("mode", UInt32), p("parent", Str), pd("promiscuous", Bool, B(true)), p("tap", Bool)];

const VXLAN: &[PropertySpec] = &[
    pd("ageing", UInt32, I(300)),
    pd("destination-port", UInt32, I(8472)),
    p("id", UInt32),
    p("l2-miss", Bool),
    p("l3-miss", Bool),
    pd("learning", Bool, B(true)),
    p("limit", UInt32),
    p("local", Str),
    p("parent", Str),
    p("proxy", Bool),
    p("remote", Str),
    p("rsc", Bool),
    p("source-port-max", UInt32),
    p("source-port-min", UInt32),
    p("tos", UInt32),
    p("ttl", UInt32),
];

const TUN: &[PropertySpec] = &[
    p("group", Str),
    pd("mode", UInt32, I(1)),
    p("multi-queue", Bool),
    p("owner", Str),
    p("pi", Bool),
    p("vnet-hdr", Bool),
];

const VETH: &[PropertySpec] = &[p("peer", Str)];

const VLAN: &[PropertySpec] = &[
    p("egress-priority-map", StrList),
    p("flags", UInt32),
    p("id", UInt32),
    p("ingress-priority-map", StrList),
    p("interface-name", Str),
    p("parent", Str),
    p("protocol", Str),
];

const WIREGUARD: &[PropertySpec] = &[
    p("fwmark", UInt32),
    pd("ip4-auto-default-route", Int32, I(-1)),
    pd("ip6-auto-default-route", Int32, I(-1)),
    p("listen-port", UInt32),
    p("mtu", UInt32),
    pd("peer-routes", Bool, B(true)),
    p("peers", WireguardPeers),
    secret("private-key", Str),
    p("private-key-flags", UInt32),
];

const LOOPBACK: &[PropertySpec] = &[p("mtu", UInt32)];

/// `ethtool`: NetworkManager 1.42's 87 options and the channel counts of
/// later versions, each a property of its own on D-Bus and in a keyfile
/// (features and pause `b`, coalesce, ring and channels `u`).
const ETHTOOL: &[PropertySpec] = &[
    opt("channels-combined", UInt32),
    opt("channels-other", UInt32),
    opt("channels-rx", UInt32),
    opt("channels-tx", UInt32),
    opt("coalesce-adaptive-rx", UInt32),
    opt("coalesce-adaptive-tx", UInt32),
    opt("coalesce-pkt-rate-high", UInt32),
    opt("coalesce-pkt-rate-low", UInt32),
    opt("coalesce-rx-frames", UInt32),
    opt("coalesce-rx-frames-high", UInt32),
    opt("coalesce-rx-frames-irq", UInt32),
    opt("coalesce-rx-frames-low", UInt32),
    opt("coalesce-rx-usecs", UInt32),
    opt("coalesce-rx-usecs-high", UInt32),
    opt("coalesce-rx-usecs-irq", UInt32),
    opt("coalesce-rx-usecs-low", UInt32),
    opt("coalesce-sample-interval", UInt32),
    opt("coalesce-stats-block-usecs", UInt32),
    opt("coalesce-tx-frames", UInt32),
    opt("coalesce-tx-frames-high", UInt32),
    opt("coalesce-tx-frames-irq", UInt32),
    opt("coalesce-tx-frames-low", UInt32),
    opt("coalesce-tx-usecs", UInt32),
    opt("coalesce-tx-usecs-high", UInt32),
    opt("coalesce-tx-usecs-irq", UInt32),
    opt("coalesce-tx-usecs-low", UInt32),
    opt("feature-esp-hw-offload", Bool),
    opt("feature-esp-tx-csum-hw-offload", Bool),
    opt("feature-fcoe-mtu", Bool),
    opt("feature-gro", Bool),
    opt("feature-gso", Bool),
    opt("feature-highdma", Bool),
    opt("feature-hw-tc-offload", Bool),
    opt("feature-l2-fwd-offload", Bool),
    opt("feature-loopback", Bool),
    opt("feature-lro", Bool),
    opt("feature-macsec-hw-offload", Bool),
    opt("feature-ntuple", Bool),
    opt("feature-rx", Bool),
    opt("feature-rxhash", Bool),
    opt("feature-rxvlan", Bool),
    opt("feature-rx-all", Bool),
    opt("feature-rx-fcs", Bool),
    opt("feature-rx-gro-hw", Bool),
    opt("feature-rx-gro-list", Bool),
    opt("feature-rx-udp-gro-forwarding", Bool),
    opt("feature-rx-udp_tunnel-port-offload", Bool),
    opt("feature-rx-vlan-filter", Bool),
    opt("feature-rx-vlan-stag-filter", Bool),
    opt("feature-rx-vlan-stag-hw-parse", Bool),
    opt("feature-sg", Bool),
    opt("feature-tls-hw-record", Bool),
    opt("feature-tls-hw-rx-offload", Bool),
    opt("feature-tls-hw-tx-offload", Bool),
    opt("feature-tso", Bool),
    opt("feature-tx", Bool),
    opt("feature-txvlan", Bool),
    opt("feature-tx-checksum-fcoe-crc", Bool),
    opt("feature-tx-checksum-ipv4", Bool),
    opt("feature-tx-checksum-ipv6", Bool),
    opt("feature-tx-checksum-ip-generic", Bool),
    opt("feature-tx-checksum-sctp", Bool),
    opt("feature-tx-esp-segmentation", Bool),
    opt("feature-tx-fcoe-segmentation", Bool),
    opt("feature-tx-gre-csum-segmentation", Bool),
    opt("feature-tx-gre-segmentation", Bool),
    opt("feature-tx-gso-list", Bool),
    opt("feature-tx-gso-partial", Bool),
    opt("feature-tx-gso-robust", Bool),
    opt("feature-tx-ipxip4-segmentation", Bool),
    opt("feature-tx-ipxip6-segmentation", Bool),
    opt("feature-tx-nocache-copy", Bool),
    opt("feature-tx-scatter-gather", Bool),
    opt("feature-tx-scatter-gather-fraglist", Bool),
    opt("feature-tx-sctp-segmentation", Bool),
    opt("feature-tx-tcp6-segmentation", Bool),
    opt("feature-tx-tcp-ecn-segmentation", Bool),
    opt("feature-tx-tcp-mangleid-segmentation", Bool),
    opt("feature-tx-tcp-segmentation", Bool),
    opt("feature-tx-tunnel-remcsum-segmentation", Bool),
    opt("feature-tx-udp-segmentation", Bool),
    opt("feature-tx-udp_tnl-csum-segmentation", Bool),
    opt("feature-tx-udp_tnl-segmentation", Bool),
    opt("feature-tx-vlan-stag-hw-insert", Bool),
    opt("pause-autoneg", Bool),
    opt("pause-rx", Bool),
    opt("pause-tx", Bool),
    opt("ring-rx", UInt32),
    opt("ring-rx-jumbo", UInt32),
    opt("ring-rx-mini", UInt32),
    opt("ring-tx", UInt32),
];

/// `user.data`: free `a{ss}` for other programs, entries as the group's keys.
const USER: &[PropertySpec] = &[p("data", OptionsInGroup)];

/// A VPN profile (its plugin's settings in `data`, its secrets in
/// `secrets`, kept in the keyfile's `[vpn]` and `[vpn-secrets]` groups).
/// The secrets' flags are entries of `data` (`password-flags`).
const VPN: &[PropertySpec] = &[
    p("data", OptionsInGroup),
    p("persistent", Bool),
    secret("secrets", OptionsGroup("vpn-secrets")),
    p("service-type", Str),
    p("timeout", UInt32),
    p("user-name", Str),
];

/// SR-IOV virtual functions; the functions themselves (`vfs`, keyfile
/// `vf.N=` lines) stay as the file has them.
const SRIOV: &[PropertySpec] = &[pd("autoprobe-drivers", Int32, I(-1)), p("total-vfs", UInt32)];

/// Traffic control: qdiscs and filters a profile puts on its device (all
/// of them: the device's own go first).
const TC: &[PropertySpec] = &[p("qdiscs", TcQdiscs), p("tfilters", TcFilters)];

/// Where the host name may come from while this profile is up (1.30):
/// NMTernary values, -1 leaving it to the global default.
const HOSTNAME: &[PropertySpec] = &[
    pd("from-dhcp", Int32, I(-1)),
    pd("from-dns-lookup", Int32, I(-1)),
    pd("only-from-default", Int32, I(-1)),
    p("priority", Int32),
];

/// Which devices a profile may run on beyond `connection.interface-name`:
/// lists of shell patterns (see nm-core's `policy::wildcard_match`).
const MATCH: &[PropertySpec] =
    &[p("driver", StrList), p("interface-name", StrList), p("kernel-command-line", StrList), p("path", StrList)];
const GENERIC: &[PropertySpec] = &[];

/// Every setting the model knows, in the order a keyfile writes them
/// (`connection` first, `ipv4`, `ipv6`, `proxy` last; the base type is moved
/// right after `connection` by the writer).
pub static SETTINGS: &[SettingSpec] = &[
    SettingSpec { name: "connection", alias: None, base_type: None, properties: CONNECTION },
    SettingSpec {
        name: "802-3-ethernet",
        alias: Some("ethernet"),
        base_type: Some(BaseType::Ip),
        properties: ETHERNET,
    },
    SettingSpec { name: "802-11-wireless", alias: Some("wifi"), base_type: Some(BaseType::Ip), properties: WIRELESS },
    SettingSpec {
        name: "802-11-wireless-security",
        alias: Some("wifi-security"),
        base_type: None,
        properties: WIRELESS_SECURITY,
    },
    SettingSpec { name: "802-1x", alias: None, base_type: None, properties: IEEE8021X },
    SettingSpec { name: "bond", alias: None, base_type: Some(BaseType::Ip), properties: BOND },
    SettingSpec { name: "bridge", alias: None, base_type: Some(BaseType::Ip), properties: BRIDGE },
    SettingSpec { name: "bridge-port", alias: None, base_type: None, properties: BRIDGE_PORT },
    SettingSpec { name: "ethtool", alias: None, base_type: None, properties: ETHTOOL },
    SettingSpec { name: "generic", alias: None, base_type: Some(BaseType::Ip), properties: GENERIC },
    SettingSpec { name: "hostname", alias: None, base_type: None, properties: HOSTNAME },
    SettingSpec { name: "loopback", alias: None, base_type: Some(BaseType::Ip), properties: LOOPBACK },
    SettingSpec { name: "macvlan", alias: None, base_type: Some(BaseType::Ip), properties: MACVLAN },
    SettingSpec { name: "match", alias: None, base_type: None, properties: MATCH },
    SettingSpec { name: "sriov", alias: None, base_type: None, properties: SRIOV },
    SettingSpec { name: "tc", alias: None, base_type: None, properties: TC },
    SettingSpec { name: "tun", alias: None, base_type: Some(BaseType::Ip), properties: TUN },
    SettingSpec { name: "user", alias: None, base_type: None, properties: USER },
    SettingSpec { name: "veth", alias: None, base_type: Some(BaseType::Ip), properties: VETH },
    SettingSpec { name: "vlan", alias: None, base_type: Some(BaseType::Ip), properties: VLAN },
    SettingSpec { name: "vpn", alias: None, base_type: Some(BaseType::Ip), properties: VPN },
    SettingSpec { name: "vxlan", alias: None, base_type: Some(BaseType::Ip), properties: VXLAN },
    SettingSpec { name: "wireguard", alias: None, base_type: Some(BaseType::Ip), properties: WIREGUARD },
    SettingSpec { name: "ipv4", alias: None, base_type: None, properties: IPV4 },
    SettingSpec { name: "ipv6", alias: None, base_type: None, properties: IPV6 },
    SettingSpec { name: "proxy", alias: None, base_type: None, properties: PROXY },
];

/// Looks a setting up by canonical name.
pub fn setting(name: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// Looks a setting up by canonical name or keyfile alias.
pub fn setting_by_group(group: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.name == group || s.alias == Some(group))
}

/// The property that holds the flags of a secret.
pub fn secret_flags_property(secret: &str) -> String {
    if secret.starts_with("wep-key") { "wep-key-flags".to_string() } else { format!("{secret}-flags") }
}

/// `NMSettingSecretFlags`: the secret is owned by a user's agent.
pub const SECRET_FLAG_AGENT_OWNED: u32 = 0x1;
/// `NMSettingSecretFlags`: the secret is asked for every time, never saved.
pub const SECRET_FLAG_NOT_SAVED: u32 = 0x2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names_are_unique_within_settings() {
        for s in SETTINGS {
            let mut names: Vec<_> = s.properties.iter().map(|p| p.name).collect();
            let before = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), before, "duplicate property in {}", s.name);
        }
    }

    #[test]
    fn aliases_resolve() {
        assert_eq!(setting_by_group("wifi").map(|s| s.name), Some("802-11-wireless"));
        assert_eq!(setting_by_group("802-3-ethernet").map(|s| s.name), Some("802-3-ethernet"));
        assert!(setting_by_group("nonsense").is_none());
        assert_eq!(secret_flags_property("wep-key2"), "wep-key-flags");
        assert_eq!(secret_flags_property("psk"), "psk-flags");
    }

    #[test]
    fn every_secret_has_a_flags_property() {
        for s in SETTINGS {
            // (A VPN's secrets keep their flags in its `data`.)
            for prop in s.properties.iter().filter(|p| p.secret && !matches!(p.kind, Kind::OptionsGroup(_))) {
                let flags = secret_flags_property(prop.name);
                assert!(s.property(&flags).is_some(), "{}.{} lacks {}", s.name, prop.name, flags);
            }
        }
    }
}
