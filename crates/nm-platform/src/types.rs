//! The kernel objects as nm-rs sees them: plain data, no netlink types.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `RTPROT_KERNEL`: routes the kernel made (prefix routes of addresses).
pub const RTPROT_KERNEL: u8 = 2;
/// `RTPROT_BOOT`: the kernel's default for routes added without a protocol.
pub const RTPROT_BOOT: u8 = 3;
/// `RTPROT_STATIC`: routes NetworkManager (and nm-rs) configures from profiles.
pub const RTPROT_STATIC: u8 = 4;
/// `RTPROT_RA`: routes learned from IPv6 router advertisements.
pub const RTPROT_RA: u8 = 9;
/// `RTPROT_DHCP`: routes learned from DHCP.
pub const RTPROT_DHCP: u8 = 16;

/// `RT_TABLE_MAIN`.
pub const RT_TABLE_MAIN: u32 = 254;
/// `RT_TABLE_LOCAL`.
pub const RT_TABLE_LOCAL: u32 = 255;

/// `RT_SCOPE_UNIVERSE`: routes via a gateway, and every IPv6 route.
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// `RT_SCOPE_LINK`: IPv4 routes to directly attached destinations.
pub const RT_SCOPE_LINK: u8 = 253;
/// `RT_SCOPE_HOST`: local addresses.
pub const RT_SCOPE_HOST: u8 = 254;

/// `IFA_F_NOPREFIXROUTE`.
pub const IFA_F_NOPREFIXROUTE: u32 = 0x200;
/// `IFA_F_TENTATIVE` (IPv6 duplicate address detection still running).
pub const IFA_F_TENTATIVE: u32 = 0x40;
/// `IFA_F_PERMANENT` (no lifetime).
pub const IFA_F_PERMANENT: u32 = 0x80;
/// `IFA_F_DADFAILED`.
pub const IFA_F_DADFAILED: u32 = 0x08;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of `addr`.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// `AF_INET` or `AF_INET6`.
    pub fn af(self) -> u8 {
        match self {
            Family::V4 => libc::AF_INET as u8,
            Family::V6 => libc::AF_INET6 as u8,
        }
    }

    /// The family of an `AF_*` number, if it is an IP family.
    pub fn from_af(af: u8) -> Option<Family> {
        match i32::from(af) {
            libc::AF_INET => Some(Family::V4),
            libc::AF_INET6 => Some(Family::V6),
            _ => None,
        }
    }

    /// `0.0.0.0` or `::`.
    pub fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }

    /// 32 or 128.
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// What a link is, from `IFLA_LINKINFO`'s kind and the ARPHRD type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LinkKind {
    Loopback,
    /// An ethernet device without a link kind: a real NIC (or a driver
    /// that registers no rtnl link ops).
    Ethernet,
    /// An ethernet device with a wireless extension (`/sys/class/net/NAME/phy80211`
    /// or `…/wireless` exists).
    Wifi,
    Veth,
    Bridge,
    Macvlan,
    Vxlan,
    /// `tun` and `tap` devices (both report the kind `tun`).
    Tun,
    /// Any other kind: the linkinfo kind (`"bond"`, `"wireguard"`, …), or
    /// `"arphrd:<n>"` for a link without a kind that is not ethernet.
    Other(String),
}

impl LinkKind {
    /// The kind of a link from its `IFLA_INFO_KIND` (if any) and ARPHRD type.
    pub fn classify(info_kind: Option<&str>, arphrd: u16) -> LinkKind {
        match info_kind {
            Some("veth") => LinkKind::Veth,
            Some("bridge") => LinkKind::Bridge,
            Some("macvlan") => LinkKind::Macvlan,
            Some("vxlan") => LinkKind::Vxlan,
            Some("tun") => LinkKind::Tun,
            Some(other) => LinkKind::Other(other.to_owned()),
            None if arphrd == libc::ARPHRD_LOOPBACK => LinkKind::Loopback,
            None if arphrd == libc::ARPHRD_ETHER => LinkKind::Ethernet,
            None => LinkKind::Other(format!("arphrd:{arphrd}")),
        }
    }
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    pub kind: LinkKind,
    /// `IFLA_ADDRESS` (none for links without a hardware address).
    pub mac: Option<Vec<u8>>,
    /// `IFLA_PERM_ADDRESS`, the burnt-in address of real NICs.
    pub perm_mac: Option<Vec<u8>>,
    pub mtu: u32,
    /// `IFF_UP`.
    pub admin_up: bool,
    /// `IFF_LOWER_UP`.
    pub carrier: bool,
    /// `IFF_PROMISC`: the link takes frames for every MAC address.
    pub promisc: bool,
    /// `IFLA_MASTER`: the bridge (or bond, VRF…) this link is a port of.
    pub master: Option<u32>,
    /// The driver of a physical device (`/sys/class/net/NAME/device/driver`),
    /// or the link kind of a virtual one.
    pub driver: Option<String>,
    /// Backed by a device on a bus (the kernel names a parent device, or
    /// `/sys/class/net/NAME/device` exists).
    pub physical: bool,
    /// What the last IPv6 router advertisement asked of hosts.
    pub ra: RaFlags,
    /// `IFLA_LINK`: the link a macvlan sits on (for a veth: its peer, which
    /// may be in another namespace).
    pub parent: Option<u32>,
    /// The settings of a macvlan, vxlan or tun link (`IFLA_INFO_DATA`).
    pub details: Option<LinkDetails>,
}

/// A software link's settings, as created ([`NewLink`]) and as the kernel
/// reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkDetails {
    Macvlan(MacvlanOptions),
    Vxlan(VxlanOptions),
    Tun(TunOptions),
}

/// A software link to create: `ip link add NAME type …`, or for tun and
/// tap devices `ip tuntap add` (the kernel makes those only through
/// `/dev/net/tun`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewLink {
    Bridge(BridgeOptions),
    Macvlan(MacvlanOptions),
    Vxlan(VxlanOptions),
    Tun(TunOptions),
    /// A veth pair: the link and its peer, named `peer`, in this namespace.
    Veth {
        peer: String,
    },
}

/// `MACVLAN_MODE_*`, the kernel's macvlan modes.
pub mod macvlan_mode {
    pub const PRIVATE: u32 = 1;
    pub const VEPA: u32 = 2;
    pub const BRIDGE: u32 = 4;
    pub const PASSTHRU: u32 = 8;
    pub const SOURCE: u32 = 16;
}

/// A macvlan on `parent` (`ip link add NAME link PARENT type macvlan mode …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacvlanOptions {
    /// The parent's index (from `IFLA_LINK` when read back; 0 if unknown).
    pub parent: u32,
    /// One of [`macvlan_mode`].
    pub mode: u32,
    /// `MACVLAN_FLAG_NOPROMISC` unset: passthru mode puts the parent in
    /// promiscuous mode.
    pub promiscuous: bool,
}

/// A VXLAN tunnel endpoint (`ip link add NAME type vxlan id …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanOptions {
    pub id: u32,
    /// The remote end or multicast group.
    pub remote: Option<IpAddr>,
    pub local: Option<IpAddr>,
    /// The link the tunnel's packets leave by.
    pub parent: Option<u32>,
    /// The UDP destination port.
    pub port: u16,
    /// The UDP source port range; (0, 0) is the kernel's choice.
    pub source_ports: (u16, u16),
    pub tos: u8,
    pub ttl: u8,
    pub learning: bool,
    /// Seconds a learned address is kept.
    pub ageing: u32,
    /// Most forwarding entries (0: no limit).
    pub limit: u32,
    pub proxy: bool,
    pub rsc: bool,
    pub l2miss: bool,
    pub l3miss: bool,
}

/// A queueing discipline to put on a device (`tc qdisc add`): `parent`
/// and `handle` as tc handles (`TC_H_ROOT`, `MAJ << 16 | MIN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qdisc {
    pub kind: String,
    pub parent: u32,
    pub handle: u32,
    pub options: QdiscOptions,
}

/// The settings of the qdisc kinds that take any (times in µs, sizes in
/// bytes or packets as tc(8) counts them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QdiscOptions {
    /// The kind's defaults.
    None,
    /// `fq_codel`; 0 leaves a value at the kernel's default.
    FqCodel {
        limit: u32,
        flows: u32,
        target: u32,
        interval: u32,
        quantum: u32,
        ce_threshold: Option<u32>,
        memory_limit: Option<u32>,
        ecn: bool,
    },
    /// `sfq`: `struct tc_sfq_qopt_v1`'s first part.
    Sfq { quantum: u32, perturb: i32, limit: u32, divisor: u32, flows: u32, depth: u32 },
    /// `tbf`: rate in bytes per second, burst in bytes, limit in bytes
    /// (0: from latency, µs).
    Tbf { rate: u64, burst: u32, limit: u32, latency: u32 },
    /// `prio` with tc(8)'s three bands and priority map.
    Prio,
}

/// A traffic filter (`tc filter add … KIND action …`) with at most one
/// action, as NetworkManager's profiles carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcFilter {
    pub kind: String,
    pub parent: u32,
    pub handle: u32,
    pub action: Option<TcAction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcAction {
    /// `simple sdata TEXT`: logs the text for each packet.
    Simple(Vec<u8>),
    /// `mirred`: a copy (`mirror`) or the packet itself (`redirect`) to the
    /// egress or ingress of another device.
    Mirred { ingress: bool, redirect: bool, ifindex: u32 },
    /// Another action kind, with its defaults.
    Other(String),
}

/// A persistent tun or tap device (`ip tuntap add NAME mode tun|tap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunOptions {
    /// A tap device (ethernet frames) rather than tun (IP packets).
    pub tap: bool,
    /// Who may open it besides root (`None`: only privileged processes).
    pub owner: Option<u32>,
    pub group: Option<u32>,
    /// Packets carry the packet information header.
    pub pi: bool,
    pub vnet_hdr: bool,
    pub multi_queue: bool,
}

/// The M and O flags of the last router advertisement the kernel took on a
/// link (RFC 4861): whether addresses (`managed`) or only other
/// configuration such as DNS (`other`) come from DHCPv6.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaFlags {
    pub managed: bool,
    pub other: bool,
}

/// An IP address on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    /// The peer of a point-to-point address.
    pub peer: Option<IpAddr>,
    /// Seconds left; `None` is forever. On a dump this is what remains of it.
    pub valid_lft: Option<u32>,
    /// Seconds left; `None` is forever.
    pub preferred_lft: Option<u32>,
    /// `IFA_F_NOPREFIXROUTE`: the kernel adds no prefix route for it.
    pub noprefixroute: bool,
    /// All `IFA_F_*` flags as the kernel reported them (ignored when adding,
    /// except through `noprefixroute`).
    pub flags: u32,
}

impl Address {
    /// An address with no peer, forever, with a prefix route.
    pub fn new(ifindex: u32, addr: IpAddr, prefix: u8) -> Address {
        Address {
            ifindex,
            addr,
            prefix,
            peer: None,
            valid_lft: None,
            preferred_lft: None,
            noprefixroute: false,
            flags: 0,
        }
    }

    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// Whether `self` and `other` name the same kernel object: IPv4 addresses
    /// are keyed by link, address, prefix and peer, IPv6 ones by link and
    /// address.
    pub fn same_key(&self, other: &Address) -> bool {
        if self.ifindex != other.ifindex || self.addr != other.addr {
            return false;
        }
        match self.family() {
            Family::V4 => self.prefix == other.prefix && self.peer == other.peer,
            Family::V6 => true,
        }
    }

    /// Whether IPv6 duplicate address detection is still running.
    pub fn tentative(&self) -> bool {
        self.flags & IFA_F_TENTATIVE != 0
    }
}

/// Route types (`rtm_type`) a profile may ask for.
pub const RTN_UNICAST: u8 = 1;
pub const RTN_LOCAL: u8 = 2;
pub const RTN_BLACKHOLE: u8 = 6;
pub const RTN_UNREACHABLE: u8 = 7;
pub const RTN_PROHIBIT: u8 = 8;
pub const RTN_THROW: u8 = 9;

/// `RTAX_*` numbers of the route metrics, for [`TcpMetrics::lock`].
pub const RTAX_MTU: u32 = 2;
pub const RTAX_WINDOW: u32 = 3;
pub const RTAX_CWND: u32 = 7;
pub const RTAX_ADVMSS: u32 = 8;
pub const RTAX_INITCWND: u32 = 11;
pub const RTAX_INITRWND: u32 = 14;

/// TCP settings of a route (`ip route … window/cwnd/initcwnd/initrwnd/advmss`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TcpMetrics {
    pub window: Option<u32>,
    pub cwnd: Option<u32>,
    pub initcwnd: Option<u32>,
    pub initrwnd: Option<u32>,
    pub advmss: Option<u32>,
    /// `RTAX_LOCK`: bit `1 << RTAX_x` for each metric the kernel must not
    /// change (`lock mtu`, …).
    pub lock: u32,
}

/// A route (unicast, or one of the typed ones when adding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub family: Family,
    /// The destination network (`0.0.0.0` / `::` with prefix 0 for a default route).
    pub dest: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// `RTA_PRIORITY`. For IPv6 the kernel turns 0 into 1024 when adding.
    pub metric: u32,
    pub table: u32,
    /// `RTPROT_*`.
    pub protocol: u8,
    /// `RT_SCOPE_*`.
    pub scope: u8,
    /// `RTA_PREFSRC`.
    pub src: Option<IpAddr>,
    /// `RTAX_MTU` in `RTA_METRICS`.
    pub mtu: Option<u32>,
    /// `RTN_*`: [`RTN_UNICAST`], or a typed route (`local`, `blackhole`,
    /// `unreachable`, `prohibit`, `throw`), which the cache does not follow.
    pub kind: u8,
    /// `RTNH_F_ONLINK`: the gateway is on the link whatever the addresses say.
    pub onlink: bool,
    /// The other TCP metrics of `RTA_METRICS` (set when adding; not read back).
    pub tcp: TcpMetrics,
    /// The kernel times it out (`rta_expires` of `RTA_CACHEINFO`): a route
    /// a router advertisement made, or the prefix route of an address with
    /// a lifetime. Ignored when adding.
    pub expires: bool,
}

impl Route {
    /// A route to `dest/prefix` in the main table with protocol `static`, no
    /// gateway, no interface, metric 0 and the scope the kernel expects for
    /// a directly attached destination (link for IPv4, universe for IPv6).
    /// Setting a gateway usually wants [`Route::via`].
    pub fn new(dest: IpAddr, prefix: u8) -> Route {
        let family = Family::of(&dest);
        Route {
            family,
            dest,
            prefix,
            gateway: None,
            oif: None,
            metric: 0,
            table: RT_TABLE_MAIN,
            protocol: RTPROT_STATIC,
            scope: match family {
                Family::V4 => RT_SCOPE_LINK,
                Family::V6 => RT_SCOPE_UNIVERSE,
            },
            src: None,
            mtu: None,
            kind: RTN_UNICAST,
            onlink: false,
            tcp: TcpMetrics::default(),
            expires: false,
        }
    }

    /// The same route via `gateway` (scope universe).
    pub fn via(mut self, gateway: IpAddr) -> Route {
        self.gateway = Some(gateway);
        self.scope = RT_SCOPE_UNIVERSE;
        self
    }

    /// Whether this is a default route (`prefix == 0`).
    pub fn is_default(&self) -> bool {
        self.prefix == 0
    }
}

/// A bridge's own settings as the kernel takes them (`IFLA_BR_*`): times
/// in hundredths of a second (`clock_t`), what NetworkManager's `bridge`
/// setting asks with its defaults filled in. Sent when the bridge is made
/// and again on each activation, so a bridge that was there already gets
/// the profile's settings too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeOptions {
    pub stp: bool,
    pub priority: u16,
    pub forward_delay: u32,
    pub hello_time: u32,
    pub max_age: u32,
    pub ageing_time: u32,
    /// Which link-local groups (01:80:C2:00:00:0X, bit X) are forwarded.
    pub group_fwd_mask: u16,
    pub group_address: [u8; 6],
    pub multicast_snooping: bool,
    /// 0 disabled, 1 automatic, 2 always a multicast router port.
    pub multicast_router: u8,
    pub multicast_querier: bool,
    pub multicast_query_use_ifaddr: bool,
    pub multicast_hash_max: u32,
    pub multicast_last_member_count: u32,
    pub multicast_startup_query_count: u32,
    pub multicast_last_member_interval: u64,
    pub multicast_membership_interval: u64,
    pub multicast_querier_interval: u64,
    pub multicast_query_interval: u64,
    pub multicast_query_response_interval: u64,
    pub multicast_startup_query_interval: u64,
    /// The ethertype of VLAN filtering: 0x8100 (802.1Q) or 0x88a8 (802.1ad).
    pub vlan_protocol: u16,
    pub vlan_stats_enabled: bool,
}

impl Default for BridgeOptions {
    /// NetworkManager's defaults (those of a profile that sets nothing).
    fn default() -> Self {
        BridgeOptions {
            stp: true,
            priority: 0x8000,
            forward_delay: 1500,
            hello_time: 200,
            max_age: 2000,
            ageing_time: 30000,
            group_fwd_mask: 0,
            group_address: [0x01, 0x80, 0xc2, 0, 0, 0],
            multicast_snooping: true,
            multicast_router: 1,
            multicast_querier: false,
            multicast_query_use_ifaddr: false,
            multicast_hash_max: 4096,
            multicast_last_member_count: 2,
            multicast_startup_query_count: 2,
            multicast_last_member_interval: 100,
            multicast_membership_interval: 26000,
            multicast_querier_interval: 25500,
            multicast_query_interval: 12500,
            multicast_query_response_interval: 1000,
            multicast_startup_query_interval: 3125,
            vlan_protocol: 0x8100,
            vlan_stats_enabled: false,
        }
    }
}

/// How a link sits in its bridge (`IFLA_BRPORT_*`), set when it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgePortOptions {
    pub cost: u32,
    pub priority: u16,
    /// Frames may go back out of the port they came in by.
    pub hairpin: bool,
}

/// One entry of a bridge's or a port's VLAN table: the ids
/// `start..=end`, with `pvid` (untagged frames coming in belong to it) and
/// `untagged` (frames leave without a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeVlan {
    pub start: u16,
    pub end: u16,
    pub pvid: bool,
    pub untagged: bool,
}

/// `FR_ACT_*`: what a routing rule does with what it matches.
pub const FR_ACT_TO_TBL: u8 = 1;

/// A routing policy rule (`ip rule`): the fields NetworkManager's
/// `ipvX.routing-rules` set. `None` and zero fields are left out of the
/// request (the kernel's "any").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub family: Option<Family>,
    pub priority: Option<u32>,
    /// `from ADDR/LEN`, `to ADDR/LEN`.
    pub from: Option<(IpAddr, u8)>,
    pub to: Option<(IpAddr, u8)>,
    /// The table to look up (`FR_ACT_TO_TBL`); 0 for the other actions.
    pub table: u32,
    /// `FR_ACT_*`.
    pub action: u8,
    /// `not`.
    pub invert: bool,
    pub fwmark: Option<(u32, u32)>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub tos: u8,
    pub ipproto: Option<u8>,
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
    pub uid_range: Option<(u32, u32)>,
    pub suppress_prefixlen: Option<u32>,
    /// `RTPROT_*` of the rule (`proto`).
    pub protocol: u8,
}

/// What [`crate::Platform::routes`] returns: every field that is set must match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteFilter {
    pub family: Option<Family>,
    pub table: Option<u32>,
    pub oif: Option<u32>,
    pub protocol: Option<u8>,
}

impl RouteFilter {
    /// Every unicast route of the main table, both families.
    pub fn main() -> RouteFilter {
        RouteFilter { table: Some(RT_TABLE_MAIN), ..RouteFilter::default() }
    }

    /// Whether `route` passes the filter.
    pub fn matches(&self, route: &Route) -> bool {
        self.family.is_none_or(|f| f == route.family)
            && self.table.is_none_or(|t| t == route.table)
            && self.oif.is_none_or(|o| Some(o) == route.oif)
            && self.protocol.is_none_or(|p| p == route.protocol)
    }
}

/// A change the event task applied to the cache (in that order: the cache
/// already shows it when the event is received).
///
/// Events may repeat what a snapshot taken just before already shows (a link
/// that appeared while the caller was reading [`crate::Platform::links`]);
/// consumers apply them idempotently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformEvent {
    LinkAdded(Link),
    /// Any field of [`Link`] changed (notifications that change none of them
    /// are not forwarded).
    LinkChanged(Link),
    LinkRemoved {
        ifindex: u32,
        name: String,
    },
    /// A new address, or a change of an existing one (lifetimes, flags).
    AddressAdded(Address),
    AddressRemoved(Address),
    /// The event socket overran: links and addresses were dumped again, and
    /// the difference to the old cache was sent as the events above, just
    /// before this one.
    Resynced,
}
