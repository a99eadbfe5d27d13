//! Reading rtnetlink messages into [`Link`], [`Address`] and [`Route`].
//!
//! Pure functions over the bytes the kernel sent. Only the attributes nm-rs
//! uses are looked at (a link message is mostly statistics and per-family
//! configuration nobody here needs), nothing is allocated for a message that
//! is skipped, and nothing the kernel sends can make them panic: a message
//! that does not hold together is an error, an attribute of the wrong size is
//! ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::PlatformError;
use crate::types::{
    Address, Family, Link, LinkDetails, LinkKind, MacvlanOptions, RTN_UNICAST, RaFlags, Route, RouteFilter, TunOptions,
    VxlanOptions,
};

/// `sizeof(struct nlmsghdr)`.
pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const NLMSG_NOOP: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_OVERRUN: u16 = 4;
pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_DELADDR: u16 = 21;
pub(crate) const RTM_NEWROUTE: u16 = 24;
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
/// In an `NLMSG_ERROR`: the request was not copied back (`NETLINK_CAP_ACK`).
pub(crate) const NLM_F_CAPPED: u16 = 0x100;
/// In an `NLMSG_ERROR`: extended ack attributes follow.
pub(crate) const NLM_F_ACK_TLVS: u16 = 0x200;

const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_WIRELESS: u16 = 11;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_LINK: u16 = 5;
/// The namespace `IFLA_LINK` is an index in, when not this one (a veth
/// whose peer is elsewhere).
const IFLA_LINK_NETNSID: u16 = 37;
/// `IFLA_MACVLAN_*`.
const IFLA_MACVLAN_MODE: u16 = 1;
const IFLA_MACVLAN_FLAGS: u16 = 2;
const MACVLAN_FLAG_NOPROMISC: u16 = 1;
/// `IFLA_VXLAN_*`.
const IFLA_VXLAN_ID: u16 = 1;
const IFLA_VXLAN_GROUP: u16 = 2;
const IFLA_VXLAN_LINK: u16 = 3;
const IFLA_VXLAN_LOCAL: u16 = 4;
const IFLA_VXLAN_TTL: u16 = 5;
const IFLA_VXLAN_TOS: u16 = 6;
const IFLA_VXLAN_LEARNING: u16 = 7;
const IFLA_VXLAN_AGEING: u16 = 8;
const IFLA_VXLAN_LIMIT: u16 = 9;
const IFLA_VXLAN_PORT_RANGE: u16 = 10;
const IFLA_VXLAN_PROXY: u16 = 11;
const IFLA_VXLAN_RSC: u16 = 12;
const IFLA_VXLAN_L2MISS: u16 = 13;
const IFLA_VXLAN_L3MISS: u16 = 14;
const IFLA_VXLAN_PORT: u16 = 15;
const IFLA_VXLAN_GROUP6: u16 = 16;
const IFLA_VXLAN_LOCAL6: u16 = 17;
/// `IFLA_TUN_*`.
const IFLA_TUN_OWNER: u16 = 1;
const IFLA_TUN_GROUP: u16 = 2;
const IFLA_TUN_TYPE: u16 = 3;
const IFLA_TUN_PI: u16 = 4;
const IFLA_TUN_VNET_HDR: u16 = 5;
const IFLA_TUN_MULTI_QUEUE: u16 = 7;
/// `IFF_TAP` in `IFLA_TUN_TYPE`.
const IFF_TAP: u8 = 2;
const IFLA_PERM_ADDRESS: u16 = 54;
const IFLA_PARENT_DEV_NAME: u16 = 56;
/// Per-family link data (`IFLA_AF_SPEC`), nested by address family.
const IFLA_AF_SPEC: u16 = 26;
/// IPv6's link data in the kernel's `RTNLGRP_IPV6_IFINFO` messages.
const IFLA_PROTINFO: u16 = 12;
/// `IFLA_INET6_FLAGS` inside either: the interface's `if_flags`.
const IFLA_INET6_FLAGS: u16 = 1;
/// `IF_RA_OTHERCONF` and `IF_RA_MANAGED`: the O and M flags of the last
/// router advertisement.
const IF_RA_OTHERCONF: u32 = 0x80;
const IF_RA_MANAGED: u32 = 0x40;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_METRICS: u16 = 8;
const RTA_MULTIPATH: u16 = 9;
const RTA_CACHEINFO: u16 = 12;
const RTA_TABLE: u16 = 15;
const RTAX_MTU: u16 = 2;
const RTM_F_CLONED: u32 = 0x200;
/// `rtm_flags`: the gateway is on the link.
const RTNH_F_ONLINK: u32 = 4;

const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x1_0000;
const IFF_PROMISC: u32 = 0x100;
/// `INFINITY_LIFE_TIME`.
pub(crate) const INFINITY_LIFE_TIME: u32 = u32::MAX;

/// The header of one netlink message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MsgHeader {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub port: u32,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The netlink messages in one datagram: each header and its payload.
pub(crate) fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { buf, pos: 0 }
}

pub(crate) struct Messages<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<(MsgHeader, &'a [u8]), PlatformError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let parsed = (|| {
            let len = u32_at(rest, 0)? as usize;
            if len < NLMSG_HDRLEN || len > rest.len() {
                return None;
            }
            let header = MsgHeader {
                kind: u16_at(rest, 4)?,
                flags: u16_at(rest, 6)?,
                seq: u32_at(rest, 8)?,
                port: u32_at(rest, 12)?,
            };
            Some((len, header, rest.get(NLMSG_HDRLEN..len)?))
        })();
        match parsed {
            Some((len, header, payload)) => {
                self.pos += align4(len);
                Some(Ok((header, payload)))
            }
            None => {
                self.pos = self.buf.len();
                Some(Err(PlatformError::Malformed(format!(
                    "a netlink message header does not fit the {} bytes left",
                    rest.len()
                ))))
            }
        }
    }
}

/// The attributes (type without the nested/byte-order bits, value) in `buf`.
/// Stops at the first one that does not fit.
pub(crate) fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs { buf, pos: 0 }
}

pub(crate) struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        let len = usize::from(u16_at(rest, 0)?);
        let kind = u16_at(rest, 2)? & 0x3fff;
        if len < 4 {
            self.pos = self.buf.len();
            return None;
        }
        let value = rest.get(4..len)?;
        self.pos += align4(len);
        Some((kind, value))
    }
}

fn attr_u32(v: &[u8]) -> Option<u32> {
    (v.len() == 4).then(|| u32_at(v, 0)).flatten()
}

/// A NUL-terminated (or not) string attribute.
fn attr_str(v: &[u8]) -> Option<String> {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    std::str::from_utf8(&v[..end]).ok().map(str::to_owned)
}

fn attr_ip(family: Family, v: &[u8]) -> Option<IpAddr> {
    match family {
        Family::V4 => <[u8; 4]>::try_from(v).ok().map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        Family::V6 => <[u8; 16]>::try_from(v).ok().map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    }
}

/// A link message without what only the host can tell (sysfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkMsg {
    pub ifindex: u32,
    pub name: String,
    pub arphrd: u16,
    pub info_kind: Option<String>,
    pub mac: Option<Vec<u8>>,
    pub perm_mac: Option<Vec<u8>>,
    pub mtu: u32,
    pub flags: u32,
    pub master: Option<u32>,
    pub parent_dev: Option<String>,
    pub ra: RaFlags,
    pub parent: Option<u32>,
    pub details: Option<LinkDetails>,
}

/// What the host says about a link beyond netlink (see `sysfs.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostInfo {
    /// `/sys/class/net/NAME/device` exists.
    pub device: bool,
    /// Basename of `/sys/class/net/NAME/device/driver`.
    pub driver: Option<String>,
    /// `/sys/class/net/NAME/phy80211` or `…/wireless` exists.
    pub wireless: bool,
}

impl LinkMsg {
    /// Whether the host should be asked about this link: virtual links (with
    /// a kind) and loopback never have a device behind them.
    pub fn wants_host_info(&self) -> bool {
        self.parent_dev.is_some() || (self.info_kind.is_none() && self.arphrd != libc::ARPHRD_LOOPBACK)
    }

    pub fn into_link(self, host: &HostInfo) -> Link {
        let physical = self.parent_dev.is_some() || host.device;
        let mut kind = LinkKind::classify(self.info_kind.as_deref(), self.arphrd);
        if kind == LinkKind::Ethernet && host.wireless {
            kind = LinkKind::Wifi;
        }
        let driver = if physical { host.driver.clone() } else { self.info_kind };
        Link {
            ifindex: self.ifindex,
            name: self.name,
            kind,
            mac: self.mac,
            perm_mac: self.perm_mac,
            mtu: self.mtu,
            admin_up: self.flags & IFF_UP != 0,
            carrier: self.flags & IFF_LOWER_UP != 0,
            promisc: self.flags & IFF_PROMISC != 0,
            master: self.master,
            driver,
            physical,
            ra: self.ra,
            parent: self.parent,
            details: self.details,
        }
    }
}

/// The index of a link message (`RTM_NEWLINK`/`RTM_DELLINK` payload) that
/// describes a whole link, and `None` for one that does not: the bridge's
/// per-port messages (family `AF_BRIDGE`) and wireless events.
fn link_header(payload: &[u8]) -> Result<Option<(u16, u32, u32)>, PlatformError> {
    if payload.len() < IFINFOMSG_LEN {
        return Err(PlatformError::Malformed(format!("link message of {} bytes", payload.len())));
    }
    if payload[0] != libc::AF_UNSPEC as u8 {
        return Ok(None);
    }
    let arphrd = u16_at(payload, 2).unwrap_or(0);
    let index = u32_at(payload, 4).unwrap_or(0);
    let flags = u32_at(payload, 8).unwrap_or(0);
    Ok(Some((arphrd, index, flags)))
}

/// Reads an `RTM_NEWLINK` payload; `None` for messages that are not a
/// whole link (see [`link_header`]).
pub(crate) fn parse_link(payload: &[u8]) -> Result<Option<LinkMsg>, PlatformError> {
    let Some((arphrd, ifindex, flags)) = link_header(payload)? else {
        return Ok(None);
    };
    let mut msg = LinkMsg {
        ifindex,
        name: String::new(),
        arphrd,
        info_kind: None,
        mac: None,
        perm_mac: None,
        mtu: 0,
        flags,
        master: None,
        parent_dev: None,
        ra: RaFlags::default(),
        parent: None,
        details: None,
    };
    let mut named = false;
    let mut link_elsewhere = false;
    for (kind, value) in attrs(&payload[IFINFOMSG_LEN..]) {
        match kind {
            IFLA_LINK_NETNSID => link_elsewhere = true,
            IFLA_IFNAME => {
                if let Some(name) = attr_str(value) {
                    msg.name = name;
                    named = true;
                }
            }
            IFLA_ADDRESS => msg.mac = Some(value.to_vec()),
            IFLA_PERM_ADDRESS => msg.perm_mac = Some(value.to_vec()),
            IFLA_MTU => msg.mtu = attr_u32(value).unwrap_or(0),
            IFLA_MASTER => msg.master = attr_u32(value).filter(|&m| m != 0),
            IFLA_LINK => msg.parent = attr_u32(value).filter(|&l| l != 0),
            IFLA_LINKINFO => {
                msg.info_kind = attrs(value).find(|(k, _)| *k == IFLA_INFO_KIND).and_then(|(_, v)| attr_str(v));
                let data = attrs(value).find(|(k, _)| *k == IFLA_INFO_DATA).map(|(_, v)| v);
                msg.details = msg.info_kind.as_deref().zip(data).and_then(|(kind, data)| link_details(kind, data));
            }
            IFLA_PARENT_DEV_NAME => msg.parent_dev = attr_str(value),
            IFLA_WIRELESS => return Ok(None),
            IFLA_AF_SPEC => {
                if let Some((_, inet6)) = attrs(value).find(|(k, _)| *k == libc::AF_INET6 as u16) {
                    msg.ra = ra_flags(inet6);
                }
            }
            _ => {}
        }
    }
    if ifindex == 0 || !named {
        return Err(PlatformError::Malformed(format!("link message without index or name (index {ifindex})")));
    }
    // An index in another namespace names no link here.
    if link_elsewhere {
        msg.parent = None;
    }
    if let Some(LinkDetails::Macvlan(m)) = &mut msg.details {
        m.parent = msg.parent.unwrap_or(0);
    }
    Ok(Some(msg))
}

/// The settings in `IFLA_INFO_DATA` of the kinds nm-rs creates (a bridge's
/// are not read back).
fn link_details(kind: &str, data: &[u8]) -> Option<LinkDetails> {
    let u8_of = |v: &[u8]| (v.len() == 1).then(|| v[0]);
    let flag = |v: &[u8]| u8_of(v).is_some_and(|b| b != 0);
    match kind {
        "macvlan" => {
            let mut o = MacvlanOptions { parent: 0, mode: 0, promiscuous: true };
            for (k, v) in attrs(data) {
                match k {
                    IFLA_MACVLAN_MODE => o.mode = attr_u32(v).unwrap_or(0),
                    IFLA_MACVLAN_FLAGS => o.promiscuous = u16_at(v, 0).is_none_or(|f| f & MACVLAN_FLAG_NOPROMISC == 0),
                    _ => {}
                }
            }
            Some(LinkDetails::Macvlan(o))
        }
        "vxlan" => {
            let mut o = VxlanOptions {
                id: 0,
                remote: None,
                local: None,
                parent: None,
                port: 0,
                source_ports: (0, 0),
                tos: 0,
                ttl: 0,
                learning: false,
                ageing: 0,
                limit: 0,
                proxy: false,
                rsc: false,
                l2miss: false,
                l3miss: false,
            };
            // Ports are in network byte order.
            let be16 = |v: &[u8], at: usize| v.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            for (k, v) in attrs(data) {
                match k {
                    IFLA_VXLAN_ID => o.id = attr_u32(v).unwrap_or(0),
                    IFLA_VXLAN_GROUP => o.remote = o.remote.or(attr_ip(Family::V4, v)),
                    IFLA_VXLAN_GROUP6 => o.remote = o.remote.or(attr_ip(Family::V6, v)),
                    IFLA_VXLAN_LOCAL => o.local = o.local.or(attr_ip(Family::V4, v)),
                    IFLA_VXLAN_LOCAL6 => o.local = o.local.or(attr_ip(Family::V6, v)),
                    IFLA_VXLAN_LINK => o.parent = attr_u32(v).filter(|&l| l != 0),
                    IFLA_VXLAN_PORT => o.port = be16(v, 0).unwrap_or(0),
                    IFLA_VXLAN_PORT_RANGE => o.source_ports = (be16(v, 0).unwrap_or(0), be16(v, 2).unwrap_or(0)),
                    IFLA_VXLAN_TOS => o.tos = u8_of(v).unwrap_or(0),
                    IFLA_VXLAN_TTL => o.ttl = u8_of(v).unwrap_or(0),
                    IFLA_VXLAN_LEARNING => o.learning = flag(v),
                    IFLA_VXLAN_AGEING => o.ageing = attr_u32(v).unwrap_or(0),
                    IFLA_VXLAN_LIMIT => o.limit = attr_u32(v).unwrap_or(0),
                    IFLA_VXLAN_PROXY => o.proxy = flag(v),
                    IFLA_VXLAN_RSC => o.rsc = flag(v),
                    IFLA_VXLAN_L2MISS => o.l2miss = flag(v),
                    IFLA_VXLAN_L3MISS => o.l3miss = flag(v),
                    _ => {}
                }
            }
            Some(LinkDetails::Vxlan(o))
        }
        "tun" => {
            let mut o =
                TunOptions { tap: false, owner: None, group: None, pi: false, vnet_hdr: false, multi_queue: false };
            // An owner or group of -1 is none.
            let id = |v: &[u8]| attr_u32(v).filter(|&n| n != u32::MAX);
            for (k, v) in attrs(data) {
                match k {
                    IFLA_TUN_TYPE => o.tap = u8_of(v) == Some(IFF_TAP),
                    IFLA_TUN_OWNER => o.owner = id(v),
                    IFLA_TUN_GROUP => o.group = id(v),
                    IFLA_TUN_PI => o.pi = flag(v),
                    IFLA_TUN_VNET_HDR => o.vnet_hdr = flag(v),
                    IFLA_TUN_MULTI_QUEUE => o.multi_queue = flag(v),
                    _ => {}
                }
            }
            Some(LinkDetails::Tun(o))
        }
        _ => None,
    }
}

/// The router advertisement flags in IPv6's link attributes.
fn ra_flags(inet6: &[u8]) -> RaFlags {
    let flags = attrs(inet6).find(|(k, _)| *k == IFLA_INET6_FLAGS).and_then(|(_, v)| attr_u32(v)).unwrap_or(0);
    RaFlags { managed: flags & IF_RA_MANAGED != 0, other: flags & IF_RA_OTHERCONF != 0 }
}

/// Reads the `RTM_NEWLINK` of family `AF_INET6` that the kernel sends to
/// `RTNLGRP_IPV6_IFINFO` when a router advertisement changed the link's
/// flags (it says nothing else about the link that [`parse_link`] reads);
/// `None` for any other link message.
pub(crate) fn parse_inet6_link(payload: &[u8]) -> Option<(u32, RaFlags)> {
    if payload.len() < IFINFOMSG_LEN || payload[0] != libc::AF_INET6 as u8 {
        return None;
    }
    let ifindex = u32_at(payload, 4).filter(|&i| i != 0)?;
    let (_, inet6) = attrs(&payload[IFINFOMSG_LEN..]).find(|(k, _)| *k == IFLA_PROTINFO)?;
    Some((ifindex, ra_flags(inet6)))
}

/// Reads an `RTM_DELLINK` payload: the index and name of the link gone.
pub(crate) fn parse_link_removed(payload: &[u8]) -> Result<Option<(u32, String)>, PlatformError> {
    let Some((_, ifindex, _)) = link_header(payload)? else {
        return Ok(None);
    };
    let name = attrs(&payload[IFINFOMSG_LEN..])
        .find(|(k, _)| *k == IFLA_IFNAME)
        .and_then(|(_, v)| attr_str(v))
        .unwrap_or_default();
    Ok(Some((ifindex, name)))
}

fn lifetime(secs: u32) -> Option<u32> {
    (secs != INFINITY_LIFE_TIME).then_some(secs)
}

/// Reads an `RTM_NEWADDR`/`RTM_DELADDR` payload; `None` for families other
/// than IPv4 and IPv6.
pub(crate) fn parse_address(payload: &[u8]) -> Result<Option<Address>, PlatformError> {
    if payload.len() < IFADDRMSG_LEN {
        return Err(PlatformError::Malformed(format!("address message of {} bytes", payload.len())));
    }
    let Some(family) = Family::from_af(payload[0]) else {
        return Ok(None);
    };
    let prefix = payload[1];
    let mut flags = u32::from(payload[2]);
    let ifindex = u32_at(payload, 4).unwrap_or(0);
    let (mut address, mut local) = (None, None);
    let (mut valid, mut preferred) = (None, None);
    for (kind, value) in attrs(&payload[IFADDRMSG_LEN..]) {
        match kind {
            IFA_ADDRESS => address = attr_ip(family, value),
            IFA_LOCAL => local = attr_ip(family, value),
            IFA_FLAGS => flags = attr_u32(value).unwrap_or(flags),
            IFA_CACHEINFO if value.len() >= 8 => {
                preferred = u32_at(value, 0).and_then(lifetime);
                valid = u32_at(value, 4).and_then(lifetime);
            }
            _ => {}
        }
    }
    // IFA_LOCAL is the address of this host when the kernel gives it (IPv4
    // always, IPv6 only with a peer); IFA_ADDRESS is then the peer.
    let (addr, peer) = match (local, address) {
        (Some(l), Some(a)) if l != a => (l, Some(a)),
        (Some(l), _) => (l, None),
        (None, Some(a)) => (a, None),
        (None, None) => {
            return Err(PlatformError::Malformed(format!("address message for link {ifindex} without an address")));
        }
    };
    if prefix > family.max_prefix() {
        return Err(PlatformError::Malformed(format!("address {addr} with prefix {prefix}")));
    }
    Ok(Some(Address {
        ifindex,
        addr,
        prefix,
        peer,
        valid_lft: valid,
        preferred_lft: preferred,
        noprefixroute: flags & crate::types::IFA_F_NOPREFIXROUTE != 0,
        flags,
    }))
}

/// Reads an `RTM_NEWROUTE` payload. `None` for what [`Route`] does not
/// describe (other families, non-unicast types, cached clones,
/// source-specific IPv6 routes) and for routes `filter` rejects. A
/// multipath route is described by its first next hop.
pub(crate) fn parse_route(payload: &[u8], filter: &RouteFilter) -> Result<Option<Route>, PlatformError> {
    if payload.len() < RTMSG_LEN {
        return Err(PlatformError::Malformed(format!("route message of {} bytes", payload.len())));
    }
    let Some(family) = Family::from_af(payload[0]) else {
        return Ok(None);
    };
    let (dst_len, src_len, header_table) = (payload[1], payload[2], payload[4]);
    let (protocol, scope, rtype) = (payload[5], payload[6], payload[7]);
    let rflags = u32_at(payload, 8).unwrap_or(0);
    if rtype != RTN_UNICAST
        || src_len != 0
        || rflags & RTM_F_CLONED != 0
        || filter.family.is_some_and(|f| f != family)
        || filter.protocol.is_some_and(|p| p != protocol)
        || dst_len > family.max_prefix()
    {
        return Ok(None);
    }
    let mut route = Route {
        family,
        dest: family.unspecified(),
        prefix: dst_len,
        gateway: None,
        oif: None,
        metric: 0,
        table: u32::from(header_table),
        protocol,
        scope,
        src: None,
        mtu: None,
        kind: RTN_UNICAST,
        onlink: rflags & RTNH_F_ONLINK != 0,
        tcp: Default::default(),
        expires: false,
    };
    for (kind, value) in attrs(&payload[RTMSG_LEN..]) {
        match kind {
            RTA_DST => route.dest = attr_ip(family, value).unwrap_or(route.dest),
            RTA_OIF => route.oif = attr_u32(value),
            RTA_GATEWAY => route.gateway = attr_ip(family, value),
            RTA_PRIORITY => route.metric = attr_u32(value).unwrap_or(0),
            RTA_PREFSRC => route.src = attr_ip(family, value),
            RTA_TABLE => route.table = attr_u32(value).unwrap_or(route.table),
            // struct rta_cacheinfo { u32 clntref, lastuse; s32 expires; … }
            RTA_CACHEINFO => route.expires = i32_at(value, 8).is_some_and(|e| e != 0),
            RTA_METRICS => route.mtu = attrs(value).find(|(k, _)| *k == RTAX_MTU).and_then(|(_, v)| attr_u32(v)),
            RTA_MULTIPATH if route.oif.is_none() => {
                // struct rtnexthop { u16 len; u8 flags; u8 hops; i32 ifindex; } + attributes
                let first_len = usize::from(u16_at(value, 0).unwrap_or(0));
                if let Some(nh) = value.get(..first_len).filter(|nh| nh.len() >= 8) {
                    route.oif = i32_at(nh, 4).and_then(|i| u32::try_from(i).ok()).filter(|&i| i != 0);
                    route.gateway =
                        attrs(&nh[8..]).find(|(k, _)| *k == RTA_GATEWAY).and_then(|(_, v)| attr_ip(family, v));
                }
            }
            _ => {}
        }
    }
    Ok(filter.matches(&route).then_some(route))
}

/// The error code and the kernel's extended ack message of an `NLMSG_ERROR`
/// payload (`flags` from its header). Code 0 is an acknowledgement.
pub(crate) fn parse_error(flags: u16, payload: &[u8]) -> Result<(i32, Option<String>), PlatformError> {
    let code = i32_at(payload, 0).ok_or_else(|| PlatformError::Malformed("NLMSG_ERROR without a code".into()))?;
    if flags & NLM_F_ACK_TLVS == 0 {
        return Ok((code, None));
    }
    // After the code: the request's header, and the whole request unless
    // the kernel capped it; then the attributes.
    let request_len =
        if flags & NLM_F_CAPPED != 0 { NLMSG_HDRLEN } else { u32_at(payload, 4).map_or(NLMSG_HDRLEN, |l| l as usize) };
    let tlvs = payload.get(4 + align4(request_len)..).unwrap_or_default();
    const NLMSGERR_ATTR_MSG: u16 = 1;
    let message =
        attrs(tlvs).find(|(k, _)| *k == NLMSGERR_ATTR_MSG).and_then(|(_, v)| attr_str(v)).filter(|m| !m.is_empty());
    Ok((code, message))
}

/// The error code and extended ack message of an `NLMSG_DONE` payload: a
/// dump may end with an error instead of 0.
pub(crate) fn parse_done(flags: u16, payload: &[u8]) -> (i32, Option<String>) {
    let code = i32_at(payload, 0).unwrap_or(0);
    if flags & NLM_F_ACK_TLVS == 0 {
        return (code, None);
    }
    const NLMSGERR_ATTR_MSG: u16 = 1;
    let message = attrs(payload.get(4..).unwrap_or_default())
        .find(|(k, _)| *k == NLMSGERR_ATTR_MSG)
        .and_then(|(_, v)| attr_str(v))
        .filter(|m| !m.is_empty());
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::{address_message, link_message, route_message};
    use crate::types::{RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RTPROT_KERNEL, RTPROT_STATIC};
    use netlink_packet_route::AddressFamily;
    use netlink_packet_route::address::{AddressAttribute, CacheInfo};
    use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType};
    use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteCacheInfo, RouteMetric, RouteType};

    fn veth(index: u32, name: &str) -> Vec<LinkAttribute> {
        vec![
            LinkAttribute::IfName(name.into()),
            LinkAttribute::Mtu(1500),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, index as u8]),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
            LinkAttribute::TxQueueLen(1000),
        ]
    }

    /// A veth's peer (`IFLA_LINK`) is a link here only when no other
    /// namespace is named for it.
    #[test]
    fn a_peer_in_another_namespace_is_no_parent_here() {
        let mut here = veth(4, "va");
        here.push(LinkAttribute::Link(5));
        let bytes = link_message(4, LinkLayerType::Ether, LinkFlags::empty(), here.clone());
        assert_eq!(parse_link(&bytes).unwrap().unwrap().parent, Some(5));
        here.push(LinkAttribute::LinkNetNsId(0));
        let bytes = link_message(4, LinkLayerType::Ether, LinkFlags::empty(), here);
        assert_eq!(parse_link(&bytes).unwrap().unwrap().parent, None);
    }

    /// The settings nm-rs creates a software link with are the ones read
    /// back from the kernel's message about it.
    #[test]
    fn software_link_settings_read_back_as_made() {
        use crate::build::new_link;
        use crate::types::{NewLink, macvlan_mode};
        let vxlan = VxlanOptions {
            id: 42,
            remote: "192.0.2.2".parse().ok(),
            local: "192.0.2.1".parse().ok(),
            parent: Some(3),
            port: 4789,
            source_ports: (1000, 2000),
            tos: 1,
            ttl: 64,
            learning: true,
            ageing: 300,
            limit: 0,
            proxy: false,
            rsc: true,
            l2miss: false,
            l3miss: true,
        };
        let macvlan = MacvlanOptions { parent: 3, mode: macvlan_mode::BRIDGE, promiscuous: false };
        for (what, details) in [
            (NewLink::Vxlan(vxlan.clone()), LinkDetails::Vxlan(vxlan)),
            (NewLink::Macvlan(macvlan), LinkDetails::Macvlan(macvlan)),
        ] {
            let req = new_link("sw0", &what).unwrap();
            let netlink_packet_route::RouteNetlinkMessage::NewLink(msg) = req.msg else { panic!("not a link") };
            let bytes = link_message(9, LinkLayerType::Ether, LinkFlags::empty(), msg.attributes);
            let link = parse_link(&bytes).unwrap().unwrap();
            assert_eq!(link.details, Some(details));
        }
        assert!(new_link("sw0", &NewLink::Macvlan(MacvlanOptions { parent: 0, ..macvlan })).is_err(), "no parent");
        assert!(new_link("a/b", &NewLink::Macvlan(macvlan)).is_err());
        assert!(new_link("v0", &NewLink::Veth { peer: "v1".into() }).is_ok());
        assert!(new_link("v0", &NewLink::Veth { peer: "a peer".into() }).is_err(), "the peer's name is checked too");
    }

    #[test]
    fn a_veth_link_message_is_read() {
        let bytes = link_message(7, LinkLayerType::Ether, LinkFlags::Up | LinkFlags::LowerUp, veth(7, "v0"));
        let msg = parse_link(&bytes).unwrap().unwrap();
        assert_eq!(msg.info_kind.as_deref(), Some("veth"));
        assert!(!msg.wants_host_info());
        let link = msg.into_link(&HostInfo::default());
        assert_eq!(
            link,
            Link {
                ifindex: 7,
                name: "v0".into(),
                kind: LinkKind::Veth,
                mac: Some(vec![2, 0, 0, 0, 0, 7]),
                perm_mac: None,
                mtu: 1500,
                admin_up: true,
                promisc: false,
                carrier: true,
                master: None,
                driver: Some("veth".into()),
                physical: false,
                ra: RaFlags::default(),
                parent: None,
                details: None,
            }
        );
    }

    /// A netlink attribute: length, type, payload, padding to 4 bytes.
    fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = ((4 + payload.len()) as u16).to_ne_bytes().to_vec();
        out.extend(kind.to_ne_bytes());
        out.extend(payload);
        out.resize(out.len().div_ceil(4) * 4, 0);
        out
    }

    /// An ifinfomsg of `family` for link 7 followed by `attributes`.
    fn ifinfo(family: u8, attributes: &[u8]) -> Vec<u8> {
        let mut out = vec![family, 0, 1, 0];
        out.extend(7i32.to_ne_bytes());
        out.extend([0u8; 8]);
        out.extend(attributes);
        out
    }

    #[test]
    fn router_advertisement_flags_are_read_from_both_kinds_of_link_message() {
        let inet6_flags = |flags: u32| nla(IFLA_INET6_FLAGS, &flags.to_ne_bytes());
        // RTNLGRP_IPV6_IFINFO: family AF_INET6, the flags in IFLA_PROTINFO
        let ifinfo6 = ifinfo(libc::AF_INET6 as u8, &nla(IFLA_PROTINFO, &inet6_flags(IF_RA_MANAGED | 0x8000_0000)));
        assert_eq!(parse_inet6_link(&ifinfo6), Some((7, RaFlags { managed: true, other: false })));
        assert_eq!(parse_link(&ifinfo6).unwrap(), None, "not a whole link");
        // a whole link: the flags in IFLA_AF_SPEC's AF_INET6 part
        let mut attributes = nla(IFLA_IFNAME, b"v0\0");
        let af_spec =
            [nla(libc::AF_INET as u16, &[]), nla(libc::AF_INET6 as u16, &inet6_flags(IF_RA_OTHERCONF))].concat();
        attributes.extend(nla(IFLA_AF_SPEC, &af_spec));
        let link = parse_link(&ifinfo(0, &attributes)).unwrap().unwrap();
        assert_eq!(link.ra, RaFlags { managed: false, other: true });
        assert_eq!(parse_inet6_link(&ifinfo(0, &attributes)), None);
        // cut short anywhere: no panic
        for cut in 0..ifinfo6.len() {
            let _ = parse_inet6_link(&ifinfo6[..cut]);
        }
    }

    #[test]
    fn a_nic_is_physical_with_its_driver_and_a_wifi_card_is_wifi() {
        let attrs = vec![
            LinkAttribute::IfName("enp1s0".into()),
            LinkAttribute::Mtu(9000),
            LinkAttribute::Address(vec![0x52, 0x54, 0, 1, 2, 3]),
            LinkAttribute::PermAddress(vec![0x52, 0x54, 0, 1, 2, 4]),
            LinkAttribute::Controller(9),
            LinkAttribute::ParentDevName("0000:01:00.0".into()),
        ];
        let bytes = link_message(2, LinkLayerType::Ether, LinkFlags::Up, attrs);
        let msg = parse_link(&bytes).unwrap().unwrap();
        assert!(msg.wants_host_info());
        let host = HostInfo { device: true, driver: Some("virtio_net".into()), wireless: false };
        let link = msg.clone().into_link(&host);
        assert_eq!(link.kind, LinkKind::Ethernet);
        assert!(link.physical && link.admin_up && !link.carrier);
        assert_eq!(link.driver.as_deref(), Some("virtio_net"));
        assert_eq!(link.master, Some(9));
        assert_eq!(link.mtu, 9000);
        assert_eq!(link.perm_mac, Some(vec![0x52, 0x54, 0, 1, 2, 4]));
        // The kernel's parent device alone makes it physical.
        assert!(msg.clone().into_link(&HostInfo::default()).physical);
        let wifi = HostInfo { wireless: true, ..host };
        assert_eq!(msg.into_link(&wifi).kind, LinkKind::Wifi);
    }

    #[test]
    fn loopback_tun_and_unknown_kinds_are_classified() {
        let lo = link_message(
            1,
            LinkLayerType::Loopback,
            LinkFlags::Up | LinkFlags::Loopback,
            vec![LinkAttribute::IfName("lo".into()), LinkAttribute::Mtu(65536)],
        );
        let lo = parse_link(&lo).unwrap().unwrap();
        assert!(!lo.wants_host_info());
        let lo = lo.into_link(&HostInfo::default());
        assert_eq!((lo.kind, lo.driver, lo.physical), (LinkKind::Loopback, None, false));

        let tun = link_message(
            5,
            LinkLayerType::None,
            LinkFlags::empty(),
            vec![LinkAttribute::IfName("tun0".into()), LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Tun)])],
        );
        let tun = parse_link(&tun).unwrap().unwrap().into_link(&HostInfo::default());
        assert_eq!((tun.kind, tun.driver.as_deref()), (LinkKind::Tun, Some("tun")));

        let wg = link_message(
            6,
            LinkLayerType::None,
            LinkFlags::empty(),
            vec![
                LinkAttribute::IfName("wg0".into()),
                LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Other("wireguard".into()))]),
            ],
        );
        let wg = parse_link(&wg).unwrap().unwrap().into_link(&HostInfo::default());
        assert_eq!(wg.kind, LinkKind::Other("wireguard".into()));

        let sit = link_message(8, LinkLayerType::Sit, LinkFlags::empty(), vec![LinkAttribute::IfName("sit0".into())]);
        let sit = parse_link(&sit).unwrap().unwrap().into_link(&HostInfo::default());
        assert_eq!(sit.kind, LinkKind::Other("arphrd:776".into()));

        for (kind, want) in [
            (InfoKind::Bridge, LinkKind::Bridge),
            (InfoKind::MacVlan, LinkKind::Macvlan),
            (InfoKind::Vxlan, LinkKind::Vxlan),
        ] {
            let m = link_message(
                9,
                LinkLayerType::Ether,
                LinkFlags::empty(),
                vec![LinkAttribute::IfName("x".into()), LinkAttribute::LinkInfo(vec![LinkInfo::Kind(kind)])],
            );
            assert_eq!(parse_link(&m).unwrap().unwrap().into_link(&HostInfo::default()).kind, want);
        }
    }

    #[test]
    fn bridge_port_messages_and_wireless_events_are_not_links() {
        let mut port = link_message(3, LinkLayerType::Ether, LinkFlags::Up, veth(3, "p"));
        port[0] = libc::AF_BRIDGE as u8;
        assert_eq!(parse_link(&port).unwrap(), None);
        assert_eq!(parse_link_removed(&port).unwrap(), None);
        let wireless = link_message(
            3,
            LinkLayerType::Ether,
            LinkFlags::Up,
            vec![
                LinkAttribute::IfName("wl".into()),
                LinkAttribute::Other(netlink_packet_core::DefaultNla::new(IFLA_WIRELESS, vec![0; 8])),
            ],
        );
        assert_eq!(parse_link(&wireless).unwrap(), None);
    }

    #[test]
    fn broken_link_messages_are_errors_not_panics() {
        let good = link_message(7, LinkLayerType::Ether, LinkFlags::Up, veth(7, "v0"));
        for cut in 0..good.len() {
            // Any prefix either parses or is an error.
            let _ = parse_link(&good[..cut]);
            let _ = parse_link_removed(&good[..cut]);
        }
        assert!(parse_link(&good[..10]).is_err());
        let nameless = link_message(7, LinkLayerType::Ether, LinkFlags::Up, vec![LinkAttribute::Mtu(1)]);
        assert!(parse_link(&nameless).is_err());
        // An attribute claiming more than there is ends the walk.
        let mut bad = good.clone();
        bad[IFINFOMSG_LEN] = 0xff;
        let _ = parse_link(&bad);
    }

    #[test]
    fn link_removal_gives_index_and_name() {
        let bytes = link_message(7, LinkLayerType::Ether, LinkFlags::empty(), veth(7, "gone"));
        assert_eq!(parse_link_removed(&bytes).unwrap(), Some((7, "gone".into())));
    }

    #[test]
    fn ipv4_addresses_with_lifetimes_and_peers() {
        let bytes = address_message(
            AddressFamily::Inet,
            24,
            4,
            vec![
                AddressAttribute::Address("198.18.0.5".parse().unwrap()),
                AddressAttribute::Local("198.18.0.5".parse().unwrap()),
                AddressAttribute::CacheInfo(cache_info(100, 300)),
                AddressAttribute::Flags(netlink_packet_route::address::AddressFlags::Noprefixroute),
            ],
        );
        let a = parse_address(&bytes).unwrap().unwrap();
        assert_eq!(a.ifindex, 4);
        assert_eq!(a.addr, "198.18.0.5".parse::<IpAddr>().unwrap());
        assert_eq!((a.prefix, a.peer), (24, None));
        assert_eq!((a.valid_lft, a.preferred_lft), (Some(300), Some(100)));
        assert!(a.noprefixroute);
        assert_eq!(a.flags, IFA_F_NOPREFIXROUTE_FLAG);

        let ptp = address_message(
            AddressFamily::Inet,
            32,
            4,
            vec![
                AddressAttribute::Address("10.0.0.2".parse().unwrap()),
                AddressAttribute::Local("10.0.0.1".parse().unwrap()),
                AddressAttribute::CacheInfo(cache_info(INFINITY_LIFE_TIME, INFINITY_LIFE_TIME)),
            ],
        );
        let p = parse_address(&ptp).unwrap().unwrap();
        assert_eq!(p.addr, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.peer, Some("10.0.0.2".parse().unwrap()));
        assert_eq!((p.valid_lft, p.preferred_lft, p.noprefixroute), (None, None, false));
    }

    const IFA_F_NOPREFIXROUTE_FLAG: u32 = crate::types::IFA_F_NOPREFIXROUTE;

    fn cache_info(preferred: u32, valid: u32) -> CacheInfo {
        let mut c = CacheInfo::default();
        c.ifa_preferred = preferred;
        c.ifa_valid = valid;
        c
    }

    #[test]
    fn ipv6_addresses_and_other_families() {
        let bytes = address_message(
            AddressFamily::Inet6,
            64,
            3,
            vec![
                AddressAttribute::Address("fd4c:6162::5".parse().unwrap()),
                AddressAttribute::Flags(
                    netlink_packet_route::address::AddressFlags::Tentative
                        | netlink_packet_route::address::AddressFlags::Permanent,
                ),
            ],
        );
        let a = parse_address(&bytes).unwrap().unwrap();
        assert_eq!(a.addr, "fd4c:6162::5".parse::<IpAddr>().unwrap());
        assert_eq!((a.prefix, a.peer, a.valid_lft), (64, None, None));
        assert!(a.tentative());
        assert_eq!(a.flags, crate::types::IFA_F_TENTATIVE | crate::types::IFA_F_PERMANENT);

        let mut other = bytes.clone();
        other[0] = libc::AF_PACKET as u8;
        assert_eq!(parse_address(&other).unwrap(), None);
        let empty = address_message(AddressFamily::Inet, 24, 3, vec![]);
        assert!(parse_address(&empty).is_err());
        let wide =
            address_message(AddressFamily::Inet, 33, 3, vec![AddressAttribute::Local("1.2.3.4".parse().unwrap())]);
        assert!(parse_address(&wide).is_err());
        for cut in 0..bytes.len() {
            let _ = parse_address(&bytes[..cut]);
        }
    }

    fn main_route() -> Vec<u8> {
        route_message(
            AddressFamily::Inet,
            16,
            RTPROT_STATIC,
            RT_SCOPE_UNIVERSE,
            RouteType::Unicast,
            vec![
                RouteAttribute::Table(RT_TABLE_MAIN),
                RouteAttribute::Destination(RouteAddress::Inet("10.20.0.0".parse().unwrap())),
                RouteAttribute::Gateway(RouteAddress::Inet("198.18.0.1".parse().unwrap())),
                RouteAttribute::Oif(3),
                RouteAttribute::Priority(100),
                RouteAttribute::PrefSource(RouteAddress::Inet("198.18.0.5".parse().unwrap())),
                RouteAttribute::Metrics(vec![RouteMetric::Mtu(1400)]),
            ],
        )
    }

    #[test]
    fn routes_are_read_with_every_field() {
        let r = parse_route(&main_route(), &RouteFilter::default()).unwrap().unwrap();
        assert_eq!(
            r,
            Route {
                family: Family::V4,
                dest: "10.20.0.0".parse().unwrap(),
                prefix: 16,
                gateway: Some("198.18.0.1".parse().unwrap()),
                oif: Some(3),
                metric: 100,
                table: RT_TABLE_MAIN,
                protocol: RTPROT_STATIC,
                scope: RT_SCOPE_UNIVERSE,
                src: Some("198.18.0.5".parse().unwrap()),
                mtu: Some(1400),
                kind: RTN_UNICAST,
                onlink: false,
                tcp: Default::default(),
                expires: false,
            }
        );
    }

    #[test]
    fn routes_are_filtered_while_reading() {
        let bytes = main_route();
        let keep = |f: RouteFilter| parse_route(&bytes, &f).unwrap().is_some();
        assert!(keep(RouteFilter::main()));
        assert!(keep(RouteFilter {
            oif: Some(3),
            protocol: Some(RTPROT_STATIC),
            family: Some(Family::V4),
            table: Some(254)
        }));
        assert!(!keep(RouteFilter { table: Some(1000), ..RouteFilter::default() }));
        assert!(!keep(RouteFilter { oif: Some(4), ..RouteFilter::default() }));
        assert!(!keep(RouteFilter { protocol: Some(RTPROT_KERNEL), ..RouteFilter::default() }));
        assert!(!keep(RouteFilter { family: Some(Family::V6), ..RouteFilter::default() }));
    }

    /// `struct rta_cacheinfo` with only `rta_expires` set.
    fn route_cache_info(expires: u32) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[8..12].copy_from_slice(&expires.to_ne_bytes());
        b
    }

    #[test]
    fn default_routes_big_tables_and_ipv6() {
        let bytes = route_message(
            AddressFamily::Inet6,
            0,
            RTPROT_STATIC,
            RT_SCOPE_UNIVERSE,
            RouteType::Unicast,
            vec![
                RouteAttribute::Table(100_000),
                RouteAttribute::Gateway(RouteAddress::Inet6("fe80::1".parse().unwrap())),
                RouteAttribute::Oif(2),
                RouteAttribute::Priority(1024),
                // A router's route: the kernel times it out.
                RouteAttribute::CacheInfo(RouteCacheInfo::parse(&route_cache_info(179_900)).unwrap()),
            ],
        );
        let r = parse_route(&bytes, &RouteFilter::default()).unwrap().unwrap();
        assert_eq!(r.family, Family::V6);
        assert!(r.is_default());
        assert_eq!(r.dest, "::".parse::<IpAddr>().unwrap());
        assert_eq!((r.table, r.metric, r.oif, r.mtu, r.expires), (100_000, 1024, Some(2), None, true));
    }

    #[test]
    fn what_a_route_cannot_describe_is_skipped() {
        let all = RouteFilter::default();
        let local = route_message(
            AddressFamily::Inet,
            32,
            RTPROT_KERNEL,
            254,
            RouteType::Local,
            vec![RouteAttribute::Table(255)],
        );
        assert_eq!(parse_route(&local, &all).unwrap(), None);
        let mut cloned = main_route();
        cloned[8..12].copy_from_slice(&RTM_F_CLONED.to_ne_bytes());
        assert_eq!(parse_route(&cloned, &all).unwrap(), None);
        let mut source_specific = main_route();
        source_specific[2] = 64;
        assert_eq!(parse_route(&source_specific, &all).unwrap(), None);
        let mut mpls = main_route();
        mpls[0] = 28; // AF_MPLS
        assert_eq!(parse_route(&mpls, &all).unwrap(), None);
        let good = main_route();
        for cut in 0..good.len() {
            let _ = parse_route(&good[..cut], &all);
        }
        assert!(parse_route(&good[..4], &all).is_err());
    }

    #[test]
    fn a_multipath_route_is_described_by_its_first_hop() {
        use netlink_packet_route::route::RouteNextHop;
        let mut hop1 = RouteNextHop::default();
        hop1.interface_index = 4;
        hop1.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet("10.0.0.1".parse().unwrap()))];
        let mut hop2 = RouteNextHop::default();
        hop2.interface_index = 5;
        let bytes = route_message(
            AddressFamily::Inet,
            0,
            RTPROT_STATIC,
            RT_SCOPE_UNIVERSE,
            RouteType::Unicast,
            vec![RouteAttribute::Table(254), RouteAttribute::MultiPath(vec![hop1, hop2])],
        );
        let r = parse_route(&bytes, &RouteFilter::default()).unwrap().unwrap();
        assert_eq!((r.oif, r.gateway), (Some(4), Some("10.0.0.1".parse().unwrap())));
        assert_eq!(r.scope, RT_SCOPE_UNIVERSE);
    }

    #[test]
    fn datagrams_split_into_messages() {
        let mut dgram = Vec::new();
        for (seq, kind) in [(1u32, RTM_NEWLINK), (2, NLMSG_DONE)] {
            let payload = [0u8; 5]; // padded to 8
            dgram.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
            dgram.extend_from_slice(&kind.to_ne_bytes());
            dgram.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
            dgram.extend_from_slice(&seq.to_ne_bytes());
            dgram.extend_from_slice(&77u32.to_ne_bytes());
            dgram.extend_from_slice(&payload);
            dgram.extend_from_slice(&[0; 3]);
        }
        let got: Vec<_> = messages(&dgram).map(|m| m.unwrap()).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, MsgHeader { kind: RTM_NEWLINK, flags: 2, seq: 1, port: 77 });
        assert_eq!(got[0].1.len(), 5);
        assert_eq!(got[1].0.kind, NLMSG_DONE);
        // A length beyond the datagram is an error, once.
        dgram[0] = 200;
        let got: Vec<_> = messages(&dgram).collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
    }

    #[test]
    fn error_messages_carry_the_kernel_text() {
        // code, the request's header (capped), then NLMSGERR_ATTR_MSG.
        let mut payload = Vec::new();
        payload.extend_from_slice(&(-libc::EINVAL).to_ne_bytes());
        payload.extend_from_slice(&[0u8; NLMSG_HDRLEN]);
        let text = b"Invalid prefix length\0";
        payload.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        payload.extend_from_slice(&1u16.to_ne_bytes());
        payload.extend_from_slice(text);
        let (code, msg) = parse_error(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload).unwrap();
        assert_eq!(code, -libc::EINVAL);
        assert_eq!(msg.as_deref(), Some("Invalid prefix length"));
        assert_eq!(parse_error(0, &payload).unwrap(), (-libc::EINVAL, None));
        assert_eq!(parse_error(0, &0i32.to_ne_bytes()).unwrap(), (0, None));
        assert!(parse_error(0, &[1, 2]).is_err());
        for cut in 0..payload.len() {
            let _ = parse_error(NLM_F_ACK_TLVS, &payload[..cut]);
        }
    }
}
