//! The requests nm-rs sends, as `netlink-packet-route` messages. Pure: the
//! socket layer adds the sequence number and sends them.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    DefaultNla, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope, CacheInfo,
};
use netlink_packet_route::link::{
    AfSpecBridge, AfSpecInet6, AfSpecUnspec, BridgeFlag, BridgeMulticastRouterType, BridgeStpState, BridgeVlanInfo,
    BridgeVlanInfoFlags, InfoBridge, InfoBridgePort, InfoData, InfoKind, InfoMacVlan, InfoPortData, InfoPortKind,
    InfoVeth, InfoVxlan, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage, MacVlanFlags, MacVlanMode,
    VlanProtocol,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteMetric, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage, RulePortRange, RuleUidRange};
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption, TcQdiscFqCodelOption};
use netlink_packet_route::{AddressFamily, IpProtocol, RouteNetlinkMessage};

use crate::error::PlatformError;
use crate::parse::INFINITY_LIFE_TIME;
use crate::types::{
    Address, BridgeOptions, BridgePortOptions, BridgeVlan, Family, IFA_F_NOPREFIXROUTE, NewLink, Qdisc, QdiscOptions,
    Route, RouteFilter, Rule, TcAction, TcFilter,
};

/// `RT_SCOPE_NOWHERE`: in a delete request, "any scope".
const RT_SCOPE_NOWHERE: u8 = 255;

/// One request: the message and its `NLM_F_*` flags.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub msg: RouteNetlinkMessage,
    pub flags: u16,
}

impl Request {
    fn dump(msg: RouteNetlinkMessage) -> Request {
        Request { msg, flags: NLM_F_REQUEST | NLM_F_DUMP }
    }

    fn change(msg: RouteNetlinkMessage, extra: u16) -> Request {
        Request { msg, flags: NLM_F_REQUEST | NLM_F_ACK | extra }
    }

    /// The bytes to send, with sequence number `seq`.
    pub fn emit(&self, seq: u32) -> Vec<u8> {
        let mut nl = NetlinkMessage::from(self.msg.clone());
        nl.header.flags = self.flags;
        nl.header.sequence_number = seq;
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        buf
    }
}

fn af(family: Family) -> AddressFamily {
    match family {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    }
}

fn route_address(addr: IpAddr) -> RouteAddress {
    match addr {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

/// Every link, without statistics (`RTEXT_FILTER_SKIP_STATS`: a third of
/// each message).
pub(crate) fn dump_links() -> Request {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    Request::dump(RouteNetlinkMessage::GetLink(msg))
}

/// One link by name: its `RTM_NEWLINK` comes before the acknowledgement.
pub(crate) fn get_link(name: &str) -> Request {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    Request::change(RouteNetlinkMessage::GetLink(msg), 0)
}

/// Every IPv4 and IPv6 address.
pub(crate) fn dump_addresses() -> Request {
    Request::dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))
}

/// The unicast routes of one family, filtered by the kernel (with
/// `NETLINK_GET_STRICT_CHK`) by table, interface and protocol.
pub(crate) fn dump_routes(family: Family, filter: &RouteFilter) -> Request {
    let mut msg = RouteMessage::default();
    msg.header.address_family = af(family);
    msg.header.kind = RouteType::Unicast;
    if let Some(p) = filter.protocol {
        msg.header.protocol = RouteProtocol::from(p);
    }
    if let Some(t) = filter.table {
        msg.header.table = u8::try_from(t).unwrap_or(0);
        msg.attributes.push(RouteAttribute::Table(t));
    }
    if let Some(oif) = filter.oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    Request::dump(RouteNetlinkMessage::GetRoute(msg))
}

/// What to change on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkChange {
    Up(bool),
    /// `IFF_PROMISC` on or off.
    Promisc(bool),
    Mtu(u32),
    Mac([u8; 6]),
    /// `IFLA_MASTER`: the bridge to be a port of; 0 for none.
    Master(u32),
    /// `IFLA_INET6_TOKEN`: the interface identifier of SLAAC addresses
    /// (`::` for none).
    Ipv6Token(std::net::Ipv6Addr),
}

/// The `IFLA_BR_*` attributes of a bridge's settings.
fn bridge_data(o: &BridgeOptions) -> Vec<InfoBridge> {
    let stp = if o.stp { BridgeStpState::KernelStp } else { BridgeStpState::Disabled };
    vec![
        InfoBridge::ForwardDelay(o.forward_delay),
        InfoBridge::HelloTime(o.hello_time),
        InfoBridge::MaxAge(o.max_age),
        InfoBridge::AgeingTime(o.ageing_time),
        InfoBridge::StpState(stp),
        InfoBridge::Priority(o.priority),
        InfoBridge::VlanProtocol(VlanProtocol::from(o.vlan_protocol)),
        InfoBridge::GroupFwdMask(o.group_fwd_mask),
        InfoBridge::GroupAddr(o.group_address),
        InfoBridge::MulticastRouter(BridgeMulticastRouterType::from(o.multicast_router)),
        InfoBridge::MulticastSnooping(o.multicast_snooping),
        InfoBridge::MulticastQueryUseIfaddr(o.multicast_query_use_ifaddr),
        InfoBridge::MulticastQuerier(o.multicast_querier),
        InfoBridge::MulticastHashMax(o.multicast_hash_max),
        InfoBridge::MulticastLastMemberCount(o.multicast_last_member_count),
        InfoBridge::MulticastStartupQueryCount(o.multicast_startup_query_count),
        InfoBridge::MulticastLastMemberInterval(o.multicast_last_member_interval),
        InfoBridge::MulticastMembershipInterval(o.multicast_membership_interval),
        InfoBridge::MulticastQuerierInterval(o.multicast_querier_interval),
        InfoBridge::MulticastQueryInterval(o.multicast_query_interval),
        InfoBridge::MulticastQueryResponseInterval(o.multicast_query_response_interval),
        InfoBridge::MulticastStartupQueryInterval(o.multicast_startup_query_interval),
        InfoBridge::VlanStatsEnabled(o.vlan_stats_enabled),
    ]
}

/// `RTM_NEWLINK` on an existing link with only `IFLA_LINKINFO`.
fn change_link_info(ifindex: u32, info: Vec<LinkInfo>) -> Request {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::LinkInfo(info));
    Request::change(RouteNetlinkMessage::NewLink(msg), 0)
}

/// Gives an existing bridge the settings `o`.
pub(crate) fn change_bridge(ifindex: u32, o: &BridgeOptions) -> Request {
    change_link_info(ifindex, vec![LinkInfo::Kind(InfoKind::Bridge), LinkInfo::Data(InfoData::Bridge(bridge_data(o)))])
}

/// A bridge's VLAN filtering and the VLAN its ports start in
/// (`vlan_default_pvid`, 0 for none), each when given. The kernel changes
/// the default only while filtering is off, and takes the attributes in
/// this order.
pub(crate) fn bridge_vlan_filtering(ifindex: u32, filtering: Option<bool>, default_pvid: Option<u16>) -> Request {
    let mut data = Vec::new();
    if let Some(f) = filtering {
        data.push(InfoBridge::VlanFiltering(f));
    }
    if let Some(p) = default_pvid {
        data.push(InfoBridge::VlanDefaultPvid(p));
    }
    change_link_info(ifindex, vec![LinkInfo::Kind(InfoKind::Bridge), LinkInfo::Data(InfoData::Bridge(data))])
}

/// How a port sits in its bridge (`IFLA_INFO_SLAVE_DATA` of kind bridge).
pub(crate) fn change_bridge_port(ifindex: u32, o: &BridgePortOptions) -> Request {
    let data = vec![
        InfoBridgePort::Cost(o.cost),
        InfoBridgePort::Priority(o.priority),
        InfoBridgePort::HairpinMode(o.hairpin),
    ];
    change_link_info(
        ifindex,
        vec![LinkInfo::PortKind(InfoPortKind::Bridge), LinkInfo::PortData(InfoPortData::BridgePort(data))],
    )
}

/// Adds (`add`) or removes VLAN entries of a bridge (`of_bridge`: its own
/// table) or of a port (`RTM_SETLINK`/`RTM_DELLINK` of family
/// `AF_BRIDGE`); ranges as a begin and an end entry.
pub(crate) fn bridge_vlans(ifindex: u32, of_bridge: bool, add: bool, vlans: &[BridgeVlan]) -> Request {
    let mut spec = Vec::new();
    if of_bridge {
        // `BRIDGE_FLAGS_SELF` (the library's `LowerDev`): the bridge
        // device's own table; without it the request is about a port and
        // goes to its bridge.
        spec.push(AfSpecBridge::Flags(BridgeFlag::LowerDev));
    }
    for v in vlans {
        let mut flags = BridgeVlanInfoFlags::empty();
        if v.pvid {
            flags |= BridgeVlanInfoFlags::Pvid;
        }
        if v.untagged {
            flags |= BridgeVlanInfoFlags::Untagged;
        }
        if v.start == v.end {
            spec.push(AfSpecBridge::VlanInfo(BridgeVlanInfo { flags, vid: v.start }));
        } else {
            spec.push(AfSpecBridge::VlanInfo(BridgeVlanInfo {
                flags: flags | BridgeVlanInfoFlags::RangeBegin,
                vid: v.start,
            }));
            spec.push(AfSpecBridge::VlanInfo(BridgeVlanInfo {
                flags: flags | BridgeVlanInfoFlags::RangeEnd,
                vid: v.end,
            }));
        }
    }
    let mut msg = LinkMessage::default();
    msg.header.interface_family = AddressFamily::Bridge;
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::AfSpecBridge(spec));
    let msg = if add { RouteNetlinkMessage::SetLink(msg) } else { RouteNetlinkMessage::DelLink(msg) };
    Request::change(msg, 0)
}

/// `TCA_OPTIONS`, and the nested attributes of filters and actions.
const TCA_OPTIONS: u16 = 2;
const TCA_MATCHALL_ACT: u16 = 2;
const TCA_ACT_KIND: u16 = 1;
const TCA_ACT_OPTIONS: u16 = 2;
const TCA_DEF_PARMS: u16 = 2;
const TCA_DEF_DATA: u16 = 3;
const TCA_MIRRED_PARMS: u16 = 2;
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
/// Every protocol, in a filter's `tcm_info` (in network order there).
const ETH_P_ALL: u16 = 0x0003;
/// `TC_ACT_PIPE` (go on with the next action) and `TC_ACT_STOLEN`.
const TC_ACT_PIPE: i32 = 3;
const TC_ACT_STOLEN: i32 = 4;

/// One netlink attribute: header, payload, padding to 4 bytes.
fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

fn tc_message(ifindex: u32, parent: u32, handle: u32) -> TcMessage {
    let mut msg = TcMessage::default();
    msg.header.family = AddressFamily::Unspec;
    msg.header.index = i32::try_from(ifindex).unwrap_or(0);
    msg.header.parent = TcHandle::from(parent);
    msg.header.handle = TcHandle::from(handle);
    msg
}

/// Removes the qdisc at `parent` (`TC_H_ROOT`: the device's root one,
/// back to the kernel's default; `TC_H_INGRESS`: ingress or clsact).
pub(crate) fn delete_qdisc(ifindex: u32, parent: u32) -> Request {
    Request::change(RouteNetlinkMessage::DelQueueDiscipline(tc_message(ifindex, parent, 0)), 0)
}

/// Removes every filter attached at `parent`.
pub(crate) fn delete_filters(ifindex: u32, parent: u32) -> Request {
    Request::change(RouteNetlinkMessage::DelTrafficFilter(tc_message(ifindex, parent, 0)), 0)
}

/// Adds a qdisc (`NLM_F_EXCL`: one already at its place is an error).
pub(crate) fn new_qdisc(ifindex: u32, q: &Qdisc) -> Request {
    let mut msg = tc_message(ifindex, q.parent, q.handle);
    msg.attributes.push(TcAttribute::Kind(q.kind.clone()));
    match &q.options {
        QdiscOptions::None => {}
        QdiscOptions::FqCodel { limit, flows, target, interval, quantum, ce_threshold, memory_limit, ecn } => {
            let mut o = Vec::new();
            for (v, make) in [
                (*limit, TcQdiscFqCodelOption::Limit as fn(u32) -> TcQdiscFqCodelOption),
                (*flows, TcQdiscFqCodelOption::Flows),
                (*target, TcQdiscFqCodelOption::Target),
                (*interval, TcQdiscFqCodelOption::Interval),
                (*quantum, TcQdiscFqCodelOption::Quantum),
            ] {
                if v != 0 {
                    o.push(TcOption::FqCodel(make(v)));
                }
            }
            if let Some(t) = ce_threshold {
                o.push(TcOption::FqCodel(TcQdiscFqCodelOption::CeThreshold(*t)));
            }
            if let Some(m) = memory_limit {
                o.push(TcOption::FqCodel(TcQdiscFqCodelOption::MemoryLimit(*m)));
            }
            if *ecn {
                o.push(TcOption::FqCodel(TcQdiscFqCodelOption::Ecn(1)));
            }
            msg.attributes.push(TcAttribute::Options(o));
        }
        QdiscOptions::Sfq { quantum, perturb, limit, divisor, flows, depth } => {
            // struct tc_sfq_qopt_v1: the v0 part (5 words), depth, then the
            // RED fields (unused) and statistics: 72 bytes, or the kernel
            // reads it as v0 and ignores the depth.
            let mut raw = words(&[*quantum, perturb.cast_unsigned(), *limit, *divisor, *flows, *depth]);
            raw.resize(72, 0);
            msg.attributes.push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, raw)));
        }
        QdiscOptions::Tbf { rate, burst, limit, latency } => {
            let rate32 = u32::try_from(*rate).unwrap_or(u32::MAX);
            // The byte limit from the latency when not given: what the
            // rate sends in that time, plus the burst.
            let limit = if *limit != 0 {
                *limit
            } else {
                let l = rate.saturating_mul(u64::from(*latency)) / 1_000_000 + u64::from(*burst);
                u32::try_from(l).unwrap_or(u32::MAX)
            };
            // struct tc_tbf_qopt: rate and peak rate (struct tc_ratespec:
            // cell_log, linklayer = ethernet, overhead, cell_align, mpu,
            // rate), limit, buffer, mtu.
            let mut ratespec = vec![0u8, 1, 0, 0, 0, 0, 0, 0];
            ratespec.extend_from_slice(&rate32.to_ne_bytes());
            let mut parms = ratespec;
            parms.extend_from_slice(&[0u8; 12]);
            parms.extend_from_slice(&words(&[limit, 0, 0]));
            let mut nested = nla(TCA_TBF_PARMS, &parms);
            if *rate > u64::from(u32::MAX - 1) {
                nested.extend(nla(TCA_TBF_RATE64, &rate.to_ne_bytes()));
            }
            nested.extend(nla(TCA_TBF_BURST, &burst.to_ne_bytes()));
            msg.attributes.push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, nested)));
        }
        QdiscOptions::Prio => {
            // struct tc_prio_qopt: 3 bands and tc(8)'s priority map.
            let mut raw = 3i32.to_ne_bytes().to_vec();
            raw.extend_from_slice(&[1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
            msg.attributes.push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, raw)));
        }
    }
    Request::change(RouteNetlinkMessage::NewQueueDiscipline(msg), NLM_F_CREATE | NLM_F_EXCL)
}

/// Adds a filter matching every protocol, its action (when it has one)
/// in the action table of `TCA_OPTIONS` (matchall's place for it).
pub(crate) fn new_filter(ifindex: u32, f: &TcFilter) -> Request {
    let mut msg = tc_message(ifindex, f.parent, f.handle);
    // Priority 0 (the kernel picks one), protocol ETH_P_ALL in network order.
    msg.header.info = u32::from(ETH_P_ALL.to_be());
    msg.attributes.push(TcAttribute::Kind(f.kind.clone()));
    let mut options = Vec::new();
    if let Some(action) = &f.action {
        // struct tc_gen: index, capab, action, refcnt, bindcnt.
        let tc_gen = |act: i32| words(&[0, 0, act.cast_unsigned(), 0, 0]);
        let (kind, params) = match action {
            TcAction::Simple(data) => {
                let mut text = data.clone();
                text.push(0);
                let mut p = nla(TCA_DEF_PARMS, &tc_gen(TC_ACT_PIPE));
                p.extend(nla(TCA_DEF_DATA, &text));
                ("simple", p)
            }
            TcAction::Mirred { ingress, redirect, ifindex } => {
                // TCA_EGRESS_REDIR 1, TCA_EGRESS_MIRROR 2, TCA_INGRESS_REDIR 3, TCA_INGRESS_MIRROR 4.
                let eaction: u32 = match (ingress, redirect) {
                    (false, true) => 1,
                    (false, false) => 2,
                    (true, true) => 3,
                    (true, false) => 4,
                };
                let mut parms = tc_gen(if *redirect { TC_ACT_STOLEN } else { TC_ACT_PIPE });
                parms.extend(words(&[eaction, *ifindex]));
                ("mirred", nla(TCA_MIRRED_PARMS, &parms))
            }
            TcAction::Other(kind) => (kind.as_str(), Vec::new()),
        };
        let mut kind_z = kind.as_bytes().to_vec();
        kind_z.push(0);
        let mut act = nla(TCA_ACT_KIND, &kind_z);
        act.extend(nla(TCA_ACT_OPTIONS, &params));
        options.extend(nla(TCA_MATCHALL_ACT, &nla(1, &act)));
    }
    msg.attributes.push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, options)));
    Request::change(RouteNetlinkMessage::NewTrafficFilter(msg), NLM_F_CREATE | NLM_F_EXCL)
}

pub(crate) fn set_link(ifindex: u32, change: LinkChange) -> Request {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    match change {
        LinkChange::Up(up) => {
            msg.header.change_mask = LinkFlags::Up;
            msg.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
        }
        LinkChange::Promisc(on) => {
            msg.header.change_mask = LinkFlags::Promisc;
            msg.header.flags = if on { LinkFlags::Promisc } else { LinkFlags::empty() };
        }
        LinkChange::Mtu(mtu) => msg.attributes.push(LinkAttribute::Mtu(mtu)),
        LinkChange::Mac(mac) => msg.attributes.push(LinkAttribute::Address(mac.to_vec())),
        LinkChange::Master(m) => msg.attributes.push(LinkAttribute::Controller(m)),
        LinkChange::Ipv6Token(t) => {
            msg.attributes.push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::Token(t)])]))
        }
    }
    Request::change(RouteNetlinkMessage::SetLink(msg), 0)
}

/// `RTM_NEWLINK` creating `name` as `what` asks (not tun devices: see
/// `Platform::create_link`).
pub(crate) fn new_link(name: &str, what: &NewLink) -> Result<Request, PlatformError> {
    check_ifname(name)?;
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    let (kind, data) = match what {
        NewLink::Bridge(o) => (InfoKind::Bridge, InfoData::Bridge(bridge_data(o))),
        NewLink::Macvlan(o) => {
            if o.parent == 0 {
                return Err(PlatformError::Invalid(format!("macvlan {name}: no parent link")));
            }
            msg.attributes.push(LinkAttribute::Link(o.parent));
            let mut data = vec![InfoMacVlan::Mode(MacVlanMode::from(o.mode))];
            if !o.promiscuous {
                data.push(InfoMacVlan::Flags(MacVlanFlags::NoPromisc));
            }
            (InfoKind::MacVlan, InfoData::MacVlan(data))
        }
        NewLink::Vxlan(o) => {
            if o.id > 0x00ff_ffff {
                return Err(PlatformError::Invalid(format!("vxlan {name}: id {} is above 16777215", o.id)));
            }
            let mut data = vec![InfoVxlan::Id(o.id)];
            match o.remote {
                Some(IpAddr::V4(a)) => data.push(InfoVxlan::Group(a)),
                Some(IpAddr::V6(a)) => data.push(InfoVxlan::Group6(a)),
                None => {}
            }
            match o.local {
                Some(IpAddr::V4(a)) => data.push(InfoVxlan::Local(a)),
                Some(IpAddr::V6(a)) => data.push(InfoVxlan::Local6(a)),
                None => {}
            }
            if let Some(parent) = o.parent {
                data.push(InfoVxlan::Link(parent));
            }
            data.extend([
                InfoVxlan::Port(o.port),
                InfoVxlan::Tos(o.tos),
                InfoVxlan::Ttl(o.ttl),
                InfoVxlan::Learning(o.learning),
                InfoVxlan::Ageing(o.ageing),
                InfoVxlan::Limit(o.limit),
                InfoVxlan::Proxy(o.proxy),
                InfoVxlan::Rsc(o.rsc),
                InfoVxlan::L2Miss(o.l2miss),
                InfoVxlan::L3Miss(o.l3miss),
            ]);
            if o.source_ports != (0, 0) {
                data.push(InfoVxlan::PortRange(o.source_ports));
            }
            (InfoKind::Vxlan, InfoData::Vxlan(data))
        }
        NewLink::Veth { peer } => {
            check_ifname(peer)?;
            let mut end = LinkMessage::default();
            end.attributes.push(LinkAttribute::IfName(peer.clone()));
            (InfoKind::Veth, InfoData::Veth(InfoVeth::Peer(end)))
        }
        NewLink::Tun(_) => {
            return Err(PlatformError::Invalid(format!("{name}: tun devices are not made by netlink")));
        }
    };
    msg.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(kind), LinkInfo::Data(data)]));
    Ok(Request::change(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL))
}

/// What the kernel takes as an interface name.
pub(crate) fn check_ifname(name: &str) -> Result<(), PlatformError> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']) || name == "." || name == ".." {
        return Err(PlatformError::Invalid(format!("'{name}' is not an interface name")));
    }
    Ok(())
}

pub(crate) fn del_link(ifindex: u32) -> Request {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    Request::change(RouteNetlinkMessage::DelLink(msg), 0)
}

fn check_address(a: &Address) -> Result<(), PlatformError> {
    let family = a.family();
    if a.prefix > family.max_prefix() {
        return Err(PlatformError::Invalid(format!(
            "address {}/{}: prefix longer than {}",
            a.addr,
            a.prefix,
            family.max_prefix()
        )));
    }
    if let Some(peer) = a.peer.filter(|p| Family::of(p) != family) {
        return Err(PlatformError::Invalid(format!("address {}: peer {peer} is of another family", a.addr)));
    }
    if a.ifindex == 0 {
        return Err(PlatformError::Invalid(format!("address {}: no interface", a.addr)));
    }
    Ok(())
}

/// The IPv4 broadcast address of `addr/prefix` (none for /31 and /32).
fn broadcast(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    (prefix <= 30).then(|| {
        let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
        Ipv4Addr::from(u32::from(addr) | host_bits)
    })
}

fn address_message(a: &Address) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = af(a.family());
    msg.header.prefix_len = a.prefix;
    msg.header.index = a.ifindex;
    // As NetworkManager: 169.254/16 addresses reach only the link.
    msg.header.scope = match a.addr {
        IpAddr::V4(v4) if v4.is_loopback() => AddressScope::Host,
        IpAddr::V4(v4) if v4.is_link_local() => AddressScope::Link,
        _ => AddressScope::Universe,
    };
    // IFA_LOCAL is this host's address, IFA_ADDRESS the peer (or the same
    // address); IPv6 without a peer takes IFA_ADDRESS only.
    match (a.addr, a.peer) {
        (IpAddr::V6(_), None) => msg.attributes.push(AddressAttribute::Address(a.addr)),
        (_, peer) => {
            msg.attributes.push(AddressAttribute::Local(a.addr));
            msg.attributes.push(AddressAttribute::Address(peer.unwrap_or(a.addr)));
        }
    }
    msg
}

/// Adds `a`, or refreshes it (lifetimes, flags) when it exists
/// (`NLM_F_CREATE | NLM_F_REPLACE`).
pub(crate) fn new_address(a: &Address) -> Result<Request, PlatformError> {
    check_address(a)?;
    let mut msg = address_message(a);
    if let (IpAddr::V4(v4), None) = (a.addr, a.peer)
        && let Some(brd) = broadcast(v4, a.prefix)
    {
        msg.attributes.push(AddressAttribute::Broadcast(brd));
    }
    let valid = a.valid_lft.unwrap_or(INFINITY_LIFE_TIME);
    let mut cache = CacheInfo::default();
    cache.ifa_valid = valid;
    cache.ifa_preferred = a.preferred_lft.unwrap_or(INFINITY_LIFE_TIME).min(valid);
    msg.attributes.push(AddressAttribute::CacheInfo(cache));
    let flags = if a.noprefixroute { IFA_F_NOPREFIXROUTE } else { 0 };
    msg.header.flags = AddressHeaderFlags::from_bits_retain(flags as u8);
    msg.attributes.push(AddressAttribute::Flags(AddressFlags::from_bits_retain(flags)));
    Ok(Request::change(RouteNetlinkMessage::NewAddress(msg), NLM_F_CREATE | NLM_F_REPLACE))
}

pub(crate) fn del_address(a: &Address) -> Result<Request, PlatformError> {
    check_address(a)?;
    Ok(Request::change(RouteNetlinkMessage::DelAddress(address_message(a)), 0))
}

fn check_route(r: &Route) -> Result<(), PlatformError> {
    let bad = |why: &str| Err(PlatformError::Invalid(format!("route {}/{}: {why}", r.dest, r.prefix)));
    if Family::of(&r.dest) != r.family {
        return bad("destination of another family than the route");
    }
    if r.prefix > r.family.max_prefix() {
        return bad("prefix too long");
    }
    if r.gateway.is_some_and(|g| Family::of(&g) != r.family) {
        return bad("gateway of another family");
    }
    if r.src.is_some_and(|s| Family::of(&s) != r.family) {
        return bad("source of another family");
    }
    if r.table == 0 {
        return bad("table 0");
    }
    if r.oif == Some(0) {
        return bad("interface index 0");
    }
    Ok(())
}

fn route_message(r: &Route, scope: u8, with_extras: bool) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = af(r.family);
    msg.header.destination_prefix_length = r.prefix;
    msg.header.table = u8::try_from(r.table).unwrap_or(0);
    msg.header.protocol = RouteProtocol::from(r.protocol);
    msg.header.scope = RouteScope::from(scope);
    msg.header.kind = RouteType::from(r.kind);
    if r.onlink {
        msg.header.flags |= RouteFlags::Onlink;
    }
    msg.attributes.push(RouteAttribute::Table(r.table));
    if r.prefix > 0 {
        msg.attributes.push(RouteAttribute::Destination(route_address(r.dest)));
    }
    if let Some(gw) = r.gateway {
        msg.attributes.push(RouteAttribute::Gateway(route_address(gw)));
    }
    if let Some(oif) = r.oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    msg.attributes.push(RouteAttribute::Priority(r.metric));
    if with_extras {
        if let Some(src) = r.src {
            msg.attributes.push(RouteAttribute::PrefSource(route_address(src)));
        }
        let t = &r.tcp;
        let metrics: Vec<RouteMetric> = [
            (t.lock != 0).then_some(RouteMetric::Lock(t.lock)),
            r.mtu.map(RouteMetric::Mtu),
            t.window.map(RouteMetric::Window),
            t.cwnd.map(RouteMetric::Cwnd),
            t.advmss.map(RouteMetric::Advmss),
            t.initcwnd.map(RouteMetric::InitCwnd),
            t.initrwnd.map(RouteMetric::InitRwnd),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !metrics.is_empty() {
            msg.attributes.push(RouteAttribute::Metrics(metrics));
        }
    }
    msg
}

/// Adds `r`, or replaces the route with the same destination, table and
/// metric (`NLM_F_CREATE | NLM_F_REPLACE`).
pub(crate) fn new_route(r: &Route) -> Result<Request, PlatformError> {
    check_route(r)?;
    Ok(Request::change(RouteNetlinkMessage::NewRoute(route_message(r, r.scope, true)), NLM_F_CREATE | NLM_F_REPLACE))
}

/// Deletes the route matching destination, table, metric, protocol,
/// gateway and interface of `r` (any scope).
pub(crate) fn del_route(r: &Route) -> Result<Request, PlatformError> {
    check_route(r)?;
    Ok(Request::change(RouteNetlinkMessage::DelRoute(route_message(r, RT_SCOPE_NOWHERE, false)), 0))
}

fn rule_message(r: &Rule) -> Result<RuleMessage, PlatformError> {
    let bad = |why: &str| Err(PlatformError::Invalid(format!("routing rule: {why}")));
    let family = match r.family {
        Some(f) => f,
        None => return bad("no family"),
    };
    let same = |a: &IpAddr| Family::of(a) == family;
    if r.from.is_some_and(|(a, l)| !same(&a) || l > family.max_prefix())
        || r.to.is_some_and(|(a, l)| !same(&a) || l > family.max_prefix())
    {
        return bad("an address of another family or too long a prefix");
    }
    let mut msg = RuleMessage::default();
    msg.header.family = af(family);
    msg.header.tos = r.tos;
    msg.header.action = RuleAction::from(r.action);
    msg.header.table = u8::try_from(r.table).unwrap_or(0);
    if r.invert {
        msg.header.flags = RuleFlags::Invert;
    }
    let attrs = &mut msg.attributes;
    if let Some(p) = r.priority {
        attrs.push(RuleAttribute::Priority(p));
    }
    if let Some((a, len)) = r.from {
        msg.header.src_len = len;
        attrs.push(RuleAttribute::Source(a));
    }
    if let Some((a, len)) = r.to {
        msg.header.dst_len = len;
        attrs.push(RuleAttribute::Destination(a));
    }
    if r.table != 0 {
        attrs.push(RuleAttribute::Table(r.table));
    }
    if let Some((mark, mask)) = r.fwmark {
        attrs.push(RuleAttribute::FwMark(mark));
        attrs.push(RuleAttribute::FwMask(mask));
    }
    if let Some(i) = &r.iif {
        attrs.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &r.oif {
        attrs.push(RuleAttribute::Oifname(o.clone()));
    }
    if let Some(p) = r.ipproto {
        attrs.push(RuleAttribute::IpProtocol(IpProtocol::from(p)));
    }
    if let Some((start, end)) = r.sport {
        attrs.push(RuleAttribute::SourcePortRange(RulePortRange { start, end }));
    }
    if let Some((start, end)) = r.dport {
        attrs.push(RuleAttribute::DestinationPortRange(RulePortRange { start, end }));
    }
    if let Some((start, end)) = r.uid_range {
        attrs.push(RuleAttribute::UidRange(RuleUidRange { start, end }));
    }
    if let Some(n) = r.suppress_prefixlen {
        attrs.push(RuleAttribute::SuppressPrefixLen(n));
    }
    attrs.push(RuleAttribute::Protocol(RouteProtocol::from(r.protocol)));
    Ok(msg)
}

/// Adds `r`; the same rule already there is `EEXIST` (`NLM_F_EXCL`: the
/// kernel would otherwise add it twice).
pub(crate) fn new_rule(r: &Rule) -> Result<Request, PlatformError> {
    Ok(Request::change(RouteNetlinkMessage::NewRule(rule_message(r)?), NLM_F_CREATE | NLM_F_EXCL))
}

/// Deletes the rule that matches `r` in every field it sets.
pub(crate) fn del_rule(r: &Rule) -> Result<Request, PlatformError> {
    Ok(Request::change(RouteNetlinkMessage::DelRule(rule_message(r)?), 0))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::types::{RT_SCOPE_LINK, RT_TABLE_MAIN, RTPROT_DHCP, RTPROT_STATIC};
    use netlink_packet_core::{Emitable, NetlinkPayload};
    use netlink_packet_route::link::{LinkLayerType, LinkMessage};

    /// The payload of a kernel link message (after the netlink header).
    pub(crate) fn link_message(
        index: u32,
        arphrd: LinkLayerType,
        flags: LinkFlags,
        attributes: Vec<LinkAttribute>,
    ) -> Vec<u8> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.link_layer_type = arphrd;
        msg.header.flags = flags;
        msg.attributes = attributes;
        emit(&msg)
    }

    pub(crate) fn address_message(
        family: AddressFamily,
        prefix: u8,
        index: u32,
        attributes: Vec<AddressAttribute>,
    ) -> Vec<u8> {
        let mut msg = AddressMessage::default();
        msg.header.family = family;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes = attributes;
        emit(&msg)
    }

    pub(crate) fn route_message(
        family: AddressFamily,
        prefix: u8,
        protocol: u8,
        scope: u8,
        kind: RouteType,
        attributes: Vec<RouteAttribute>,
    ) -> Vec<u8> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family;
        msg.header.destination_prefix_length = prefix;
        msg.header.protocol = protocol.into();
        msg.header.scope = scope.into();
        msg.header.kind = kind;
        msg.header.table = RT_TABLE_COMPAT;
        msg.attributes = attributes;
        emit(&msg)
    }

    /// `RT_TABLE_COMPAT`, what the kernel puts in the header for tables
    /// above 255 (and what the parser must look past to `RTA_TABLE`).
    const RT_TABLE_COMPAT: u8 = 252;

    pub(crate) fn emit<T: Emitable>(msg: &T) -> Vec<u8> {
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        buf
    }

    /// What the kernel would read from a request.
    fn decode(req: &Request) -> (u16, RouteNetlinkMessage) {
        let bytes = req.emit(42);
        let nl = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).unwrap();
        assert_eq!(nl.header.sequence_number, 42);
        assert_eq!(nl.header.length as usize, bytes.len());
        match nl.payload {
            NetlinkPayload::InnerMessage(m) => (nl.header.flags, m),
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn rules_carry_what_they_set_and_refuse_mixed_families() {
        use crate::types::FR_ACT_TO_TBL;
        let r = Rule {
            family: Some(Family::V4),
            priority: Some(5),
            from: Some(("192.0.2.10".parse().unwrap(), 32)),
            table: 100,
            action: FR_ACT_TO_TBL,
            protocol: RTPROT_STATIC,
            ..Rule::default()
        };
        let req = new_rule(&r).unwrap();
        assert_eq!(req.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        let RouteNetlinkMessage::NewRule(m) = &req.msg else { panic!("{:?}", req.msg) };
        assert_eq!((m.header.family, m.header.src_len, m.header.table), (AddressFamily::Inet, 32, 100));
        assert_eq!(m.header.action, RuleAction::ToTable);
        assert!(m.attributes.contains(&RuleAttribute::Priority(5)));
        assert!(m.attributes.contains(&RuleAttribute::Source("192.0.2.10".parse().unwrap())));
        assert!(m.attributes.contains(&RuleAttribute::Table(100)));
        assert!(del_rule(&r).is_ok());
        assert!(new_rule(&Rule { family: None, ..r.clone() }).is_err());
        assert!(new_rule(&Rule { from: Some(("2001:db8::1".parse().unwrap(), 64)), ..r.clone() }).is_err());
        assert!(new_rule(&Rule { from: Some(("192.0.2.10".parse().unwrap(), 33)), ..r }).is_err());
    }

    #[test]
    fn dumps_are_filtered_in_the_kernel() {
        let (flags, msg) = decode(&dump_links());
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_DUMP);
        let RouteNetlinkMessage::GetLink(l) = msg else { panic!() };
        assert_eq!(l.header.index, 0);
        assert_eq!(l.attributes, vec![LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats])]);
        assert_eq!(decode(&dump_addresses()).0, NLM_F_REQUEST | NLM_F_DUMP);

        let filter = RouteFilter { table: Some(1000), oif: Some(3), protocol: Some(RTPROT_DHCP), family: None };
        let (_, msg) = decode(&dump_routes(Family::V6, &filter));
        let RouteNetlinkMessage::GetRoute(r) = msg else { panic!() };
        assert_eq!(r.header.address_family, AddressFamily::Inet6);
        assert_eq!(u8::from(r.header.protocol), RTPROT_DHCP);
        assert_eq!(r.header.kind, RouteType::Unicast);
        assert_eq!(r.header.table, 0);
        assert!(r.attributes.contains(&RouteAttribute::Table(1000)));
        assert!(r.attributes.contains(&RouteAttribute::Oif(3)));

        let (_, msg) = decode(&dump_routes(Family::V4, &RouteFilter::main()));
        let RouteNetlinkMessage::GetRoute(r) = msg else { panic!() };
        assert_eq!((r.header.table, u8::from(r.header.protocol)), (254, 0));
        assert_eq!(r.attributes, vec![RouteAttribute::Table(254)]);
    }

    #[test]
    fn bridge_vlan_tables_and_port_settings() {
        let vlans = [
            BridgeVlan { start: 5, end: 5, pvid: true, untagged: true },
            BridgeVlan { start: 10, end: 12, pvid: false, untagged: false },
        ];
        let (flags, msg) = decode(&bridge_vlans(7, true, true, &vlans));
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK);
        let RouteNetlinkMessage::SetLink(l) = msg else { panic!() };
        assert_eq!((l.header.index, l.header.interface_family), (7, AddressFamily::Bridge));
        let info = |flags, vid| AfSpecBridge::VlanInfo(BridgeVlanInfo { flags, vid });
        use BridgeVlanInfoFlags as F;
        assert_eq!(
            l.attributes,
            vec![LinkAttribute::AfSpecBridge(vec![
                AfSpecBridge::Flags(BridgeFlag::LowerDev),
                info(F::Pvid | F::Untagged, 5),
                info(F::RangeBegin, 10),
                info(F::RangeEnd, 12),
            ])]
        );
        // A port's table goes through its bridge: no flags; removal is RTM_DELLINK.
        let (_, msg) = decode(&bridge_vlans(8, false, false, &vlans[1..]));
        let RouteNetlinkMessage::DelLink(l) = msg else { panic!() };
        assert_eq!(
            l.attributes,
            vec![LinkAttribute::AfSpecBridge(vec![info(F::RangeBegin, 10), info(F::RangeEnd, 12)])]
        );

        let (_, msg) = decode(&change_bridge_port(8, &BridgePortOptions { cost: 7, priority: 10, hairpin: true }));
        let RouteNetlinkMessage::NewLink(l) = msg else { panic!() };
        assert_eq!(
            l.attributes,
            vec![LinkAttribute::LinkInfo(vec![
                LinkInfo::PortKind(InfoPortKind::Bridge),
                LinkInfo::PortData(InfoPortData::BridgePort(vec![
                    InfoBridgePort::Cost(7),
                    InfoBridgePort::Priority(10),
                    InfoBridgePort::HairpinMode(true),
                ])),
            ])]
        );
        // Filtering and the default port VLAN, in the kernel's order.
        let (_, msg) = decode(&bridge_vlan_filtering(7, Some(false), Some(0)));
        let RouteNetlinkMessage::NewLink(l) = msg else { panic!() };
        assert_eq!(
            l.attributes,
            vec![LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Bridge),
                LinkInfo::Data(InfoData::Bridge(vec![
                    InfoBridge::VlanFiltering(false),
                    InfoBridge::VlanDefaultPvid(0)
                ])),
            ])]
        );
    }

    #[test]
    fn link_changes() {
        let (flags, msg) = decode(&set_link(5, LinkChange::Up(true)));
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK);
        let RouteNetlinkMessage::SetLink(l) = msg else { panic!() };
        assert_eq!((l.header.index, l.header.flags, l.header.change_mask), (5, LinkFlags::Up, LinkFlags::Up));
        let (_, msg) = decode(&set_link(5, LinkChange::Up(false)));
        let RouteNetlinkMessage::SetLink(l) = msg else { panic!() };
        assert_eq!((l.header.flags, l.header.change_mask), (LinkFlags::empty(), LinkFlags::Up));
        let (_, msg) = decode(&set_link(5, LinkChange::Mtu(1280)));
        let RouteNetlinkMessage::SetLink(l) = msg else { panic!() };
        assert_eq!(l.header.change_mask, LinkFlags::empty());
        assert_eq!(l.attributes, vec![LinkAttribute::Mtu(1280)]);
        let (_, msg) = decode(&set_link(5, LinkChange::Mac([2, 1, 2, 3, 4, 5])));
        let RouteNetlinkMessage::SetLink(l) = msg else { panic!() };
        assert_eq!(l.attributes, vec![LinkAttribute::Address(vec![2, 1, 2, 3, 4, 5])]);
    }

    fn attrs_of(req: &Request) -> (AddressMessage, u16) {
        let (flags, msg) = decode(req);
        match msg {
            RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a) => (a, flags),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ipv4_addresses_carry_lifetimes_broadcast_and_flags() {
        let mut a = Address::new(4, "198.18.0.5".parse().unwrap(), 24);
        a.valid_lft = Some(300);
        a.preferred_lft = Some(500); // more than valid: capped
        a.noprefixroute = true;
        let (msg, flags) = attrs_of(&new_address(&a).unwrap());
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
        assert_eq!((msg.header.family, msg.header.prefix_len, msg.header.index), (AddressFamily::Inet, 24, 4));
        let mut cache = CacheInfo::default();
        cache.ifa_valid = 300;
        cache.ifa_preferred = 300;
        assert_eq!(
            msg.attributes,
            vec![
                AddressAttribute::Local(a.addr),
                AddressAttribute::Address(a.addr),
                AddressAttribute::Broadcast("198.18.0.255".parse().unwrap()),
                AddressAttribute::CacheInfo(cache),
                AddressAttribute::Flags(AddressFlags::Noprefixroute),
            ]
        );
        let (del, flags) = attrs_of(&del_address(&a).unwrap());
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(del.attributes, vec![AddressAttribute::Local(a.addr), AddressAttribute::Address(a.addr)]);
    }

    #[test]
    fn forever_peers_and_ipv6() {
        let mut a = Address::new(4, "10.0.0.1".parse().unwrap(), 32);
        a.peer = Some("10.0.0.2".parse().unwrap());
        let (msg, _) = attrs_of(&new_address(&a).unwrap());
        let mut forever = CacheInfo::default();
        forever.ifa_valid = INFINITY_LIFE_TIME;
        forever.ifa_preferred = INFINITY_LIFE_TIME;
        assert_eq!(
            msg.attributes[..3],
            [
                AddressAttribute::Local(a.addr),
                AddressAttribute::Address("10.0.0.2".parse().unwrap()),
                AddressAttribute::CacheInfo(forever),
            ]
        );
        let six = Address::new(3, "fd4c:6162::5".parse().unwrap(), 64);
        let (msg, _) = attrs_of(&new_address(&six).unwrap());
        assert_eq!(msg.header.family, AddressFamily::Inet6);
        assert_eq!(msg.attributes[0], AddressAttribute::Address(six.addr));
        assert!(
            !msg.attributes.iter().any(|a| matches!(a, AddressAttribute::Local(_) | AddressAttribute::Broadcast(_)))
        );
        let lo = Address::new(1, "127.0.0.2".parse().unwrap(), 8);
        assert_eq!(attrs_of(&new_address(&lo).unwrap()).0.header.scope, AddressScope::Host);
    }

    #[test]
    fn impossible_addresses_are_refused_before_the_kernel() {
        let mut a = Address::new(4, "10.0.0.1".parse().unwrap(), 33);
        assert!(new_address(&a).is_err());
        a.prefix = 24;
        a.peer = Some("::1".parse().unwrap());
        assert!(new_address(&a).is_err());
        assert!(del_address(&Address::new(0, "10.0.0.1".parse().unwrap(), 8)).is_err());
    }

    #[test]
    fn broadcast_addresses() {
        let b = |a: &str, p| broadcast(a.parse().unwrap(), p).map(|b| b.to_string());
        assert_eq!(b("198.18.0.5", 24).as_deref(), Some("198.18.0.255"));
        assert_eq!(b("10.1.2.3", 8).as_deref(), Some("10.255.255.255"));
        assert_eq!(b("10.1.2.3", 0).as_deref(), Some("255.255.255.255"));
        assert_eq!(b("10.1.2.3", 31), None);
        assert_eq!(b("10.1.2.3", 32), None);
    }

    #[test]
    fn routes_replace_with_every_field() {
        let mut r = Route::new("10.20.0.0".parse().unwrap(), 16).via("198.18.0.1".parse().unwrap());
        r.oif = Some(3);
        r.metric = 100;
        r.table = 1000;
        r.src = Some("198.18.0.5".parse().unwrap());
        r.mtu = Some(1400);
        let (flags, msg) = decode(&new_route(&r).unwrap());
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
        let RouteNetlinkMessage::NewRoute(m) = msg else { panic!() };
        assert_eq!(m.header.destination_prefix_length, 16);
        assert_eq!((m.header.table, u8::from(m.header.protocol), u8::from(m.header.scope)), (0, RTPROT_STATIC, 0));
        assert_eq!(m.header.kind, RouteType::Unicast);
        assert_eq!(
            m.attributes,
            vec![
                RouteAttribute::Table(1000),
                RouteAttribute::Destination(RouteAddress::Inet("10.20.0.0".parse().unwrap())),
                RouteAttribute::Gateway(RouteAddress::Inet("198.18.0.1".parse().unwrap())),
                RouteAttribute::Oif(3),
                RouteAttribute::Priority(100),
                RouteAttribute::PrefSource(RouteAddress::Inet("198.18.0.5".parse().unwrap())),
                RouteAttribute::Metrics(vec![RouteMetric::Mtu(1400)]),
            ]
        );
        let (flags, msg) = decode(&del_route(&r).unwrap());
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK);
        let RouteNetlinkMessage::DelRoute(m) = msg else { panic!() };
        assert_eq!(u8::from(m.header.scope), RT_SCOPE_NOWHERE);
        assert_eq!(u8::from(m.header.protocol), RTPROT_STATIC);
        assert_eq!(m.attributes.len(), 5, "{:?}", m.attributes);
    }

    #[test]
    fn route_types_onlink_and_tcp_metrics() {
        let mut r = Route::new("10.30.0.0".parse().unwrap(), 16).via("203.0.113.1".parse().unwrap());
        r.onlink = true;
        r.tcp =
            crate::types::TcpMetrics { initcwnd: Some(20), lock: 1 << crate::types::RTAX_MTU, ..Default::default() };
        r.mtu = Some(1300);
        let (_, msg) = decode(&new_route(&r).unwrap());
        let RouteNetlinkMessage::NewRoute(m) = msg else { panic!() };
        assert!(m.header.flags.contains(RouteFlags::Onlink));
        let metrics = vec![RouteMetric::Lock(4), RouteMetric::Mtu(1300), RouteMetric::InitCwnd(20)];
        assert!(m.attributes.contains(&RouteAttribute::Metrics(metrics)), "{:?}", m.attributes);
        let mut hole = Route::new("10.31.0.0".parse().unwrap(), 16);
        hole.kind = crate::types::RTN_BLACKHOLE;
        let (_, msg) = decode(&new_route(&hole).unwrap());
        let RouteNetlinkMessage::NewRoute(m) = msg else { panic!() };
        assert_eq!(m.header.kind, RouteType::BlackHole);
    }

    #[test]
    fn default_routes_have_no_destination_attribute() {
        let mut r = Route::new("0.0.0.0".parse().unwrap(), 0);
        r.oif = Some(2);
        assert_eq!(r.scope, RT_SCOPE_LINK);
        let (_, msg) = decode(&new_route(&r).unwrap());
        let RouteNetlinkMessage::NewRoute(m) = msg else { panic!() };
        assert_eq!(m.header.table, RT_TABLE_MAIN as u8);
        assert!(!m.attributes.iter().any(|a| matches!(a, RouteAttribute::Destination(_))));
    }

    #[test]
    fn impossible_routes_are_refused_before_the_kernel() {
        let base = Route::new("10.0.0.0".parse().unwrap(), 8);
        let mut r = base.clone();
        r.prefix = 40;
        assert!(new_route(&r).is_err());
        let r = base.clone().via("fe80::1".parse().unwrap());
        assert!(new_route(&r).is_err());
        let mut r = base.clone();
        r.family = Family::V6;
        assert!(del_route(&r).is_err());
        let mut r = base.clone();
        r.table = 0;
        assert!(new_route(&r).is_err());
        let mut r = base;
        r.src = Some("::1".parse().unwrap());
        assert!(new_route(&r).is_err());
    }

    #[test]
    fn an_sfq_qdisc_carries_the_whole_v1_struct() {
        let q = Qdisc {
            kind: "sfq".into(),
            parent: 0xffff_ffff,
            handle: 0,
            options: QdiscOptions::Sfq { quantum: 1514, perturb: 10, limit: 127, divisor: 1024, flows: 128, depth: 64 },
        };
        let req = new_qdisc(7, &q);
        assert_eq!(req.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        let bytes = req.emit(1);
        // TCA_OPTIONS with sizeof(struct tc_sfq_qopt_v1) = 72 bytes: the
        // v0 part, then the depth.
        let header = [&76u16.to_ne_bytes()[..], &TCA_OPTIONS.to_ne_bytes()].concat();
        let at = bytes.windows(4).position(|w| w == header.as_slice()).expect("TCA_OPTIONS of 72 bytes");
        let value = &bytes[at + 4..at + 76];
        assert_eq!(&value[..4], &1514u32.to_ne_bytes());
        assert_eq!(&value[20..24], &64u32.to_ne_bytes(), "depth after the v0 part");
    }
}
