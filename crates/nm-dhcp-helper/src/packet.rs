//! DHCPv4 messages, built and read by dhcproto (never by hand).
//!
//! Reading is defensive on top of the codec:
//! - the fixed header is decoded on its own, and `chaddr` is read only when
//!   `hlen` fits its 16 bytes (the codec would index past it otherwise);
//! - options are walked with the codec's lazy iterator over the options
//!   field and, when option 52 says so, the `file` and `sname` fields
//!   (RFC 2131 §4.1 overload), concatenating repeated codes (RFC 3396);
//! - each option is then decoded on its own, so one malformed option costs
//!   only itself, and only options from a fixed list are decoded at all
//!   (some of the codec's decoders assert on lengths in debug builds);
//! - every string goes through [`crate::sanitize`]; what fails is dropped
//!   and reported in [`Reply::dropped`] for the log.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::borrowed::{DhcpOptionIterator, Message as RawMessage};
use dhcproto::v4::{
    DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode, UnknownOption, encode_long_opt_bytes,
};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

use crate::lease::{INFINITE, Lease, Route, hex_colon};
use crate::sanitize::{self, Reject};

pub const CLIENT_PORT: u16 = 68;
pub const SERVER_PORT: u16 = 67;
/// Length of the fixed BOOTP header including the magic cookie.
const HEADER_LEN: usize = 240;
/// `sname` and `file` in the fixed header (RFC 2131 §2), for option overload.
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;
/// BOOTP's minimum message size (RFC 1542 §2.1): some relays drop less.
const MIN_LEN: usize = 300;
/// Shortest lease we act on: a server handing out less would have us renew
/// in a loop.
pub const MIN_LEASE: u32 = 10;
/// Most bytes one (concatenated) option may hold before we stop adding.
const MAX_OPTION: usize = 4096;

/// The options the client asks for (option 55) with NetworkManager's names.
pub const REQUESTED: &[(u8, &str)] = &[
    (1, "subnet_mask"),
    (2, "time_offset"),
    (3, "routers"),
    (6, "domain_name_servers"),
    (12, "host_name"),
    (15, "domain_name"),
    (26, "interface_mtu"),
    (28, "broadcast_address"),
    (42, "ntp_servers"),
    (51, "dhcp_lease_time"),
    (58, "dhcp_renewal_time"),
    (59, "dhcp_rebinding_time"),
    (119, "domain_search"),
    (121, "rfc3442_classless_static_routes"),
];

/// NetworkManager's (dhclient's) name of each option we decode and show.
/// Only these are ever handed to the codec's option decoder.
fn option_name(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "subnet_mask",
        2 => "time_offset",
        3 => "routers",
        4 => "time_servers",
        5 => "ien116_name_servers",
        6 => "domain_name_servers",
        7 => "log_servers",
        9 => "lpr_servers",
        12 => "host_name",
        13 => "boot_size",
        14 => "merit_dump",
        15 => "domain_name",
        16 => "swap_server",
        17 => "root_path",
        18 => "extensions_path",
        19 => "ip_forwarding",
        22 => "max_dgram_reassembly",
        23 => "default_ip_ttl",
        24 => "path_mtu_aging_timeout",
        26 => "interface_mtu",
        27 => "all_subnets_local",
        28 => "broadcast_address",
        33 => "static_routes",
        35 => "arp_cache_timeout",
        37 => "tcp_ttl",
        38 => "tcp_keepalive_interval",
        40 => "nis_domain",
        41 => "nis_servers",
        42 => "ntp_servers",
        44 => "netbios_name_servers",
        45 => "netbios_dd_server",
        46 => "netbios_node_type",
        47 => "netbios_scope",
        48 => "font_servers",
        49 => "x_display_manager",
        51 => "dhcp_lease_time",
        54 => "dhcp_server_identifier",
        56 => "dhcp_message",
        58 => "dhcp_renewal_time",
        59 => "dhcp_rebinding_time",
        60 => "vendor_class_identifier",
        62 => "nwip_domain",
        64 => "nisplus_domain",
        65 => "nisplus_servers",
        66 => "tftp_server_name",
        67 => "bootfile_name",
        69 => "smtp_server",
        70 => "pop_server",
        71 => "nntp_server",
        72 => "www_server",
        74 => "irc_server",
        100 => "pcode",
        101 => "tcode",
        114 => "captive_portal",
        119 => "domain_search",
        121 => "rfc3442_classless_static_routes",
        _ => return None,
    })
}

/// Whether an address may be a lease, router, server or DNS server: not
/// `0.0.0.0/8`, loopback, multicast, reserved or broadcast.
pub fn usable_address(a: Ipv4Addr) -> bool {
    let first = a.octets()[0];
    first != 0 && !a.is_loopback() && !a.is_multicast() && first < 240
}

/// The data of option 81: flags, the two obsolete RCODE bytes (0), and the
/// name, in DNS wire form when the E flag says so, else as ASCII.
pub(crate) fn fqdn_option(flags: u8, name: &str) -> Vec<u8> {
    let mut out = vec![flags, 0, 0];
    if flags & 0x04 != 0 {
        for label in name.trim_end_matches('.').split('.') {
            // Labels are checked (1..=63 bytes) before they get here.
            out.push(u8::try_from(label.len()).unwrap_or(63));
            out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
        }
        out.push(0);
    } else {
        out.extend_from_slice(name.as_bytes());
    }
    out
}

/// What every message the client sends carries.
#[derive(Debug, Clone)]
pub struct ClientParams {
    pub mac: [u8; 6],
    pub client_id: Vec<u8>,
    /// Option 12, already checked and cut at the first dot.
    pub hostname: Option<String>,
    /// Option 81 (RFC 4702), already checked: the flags byte (S, E, N)
    /// and the fully qualified name.
    pub fqdn: Option<(u8, String)>,
    pub vendor_class: Option<Vec<u8>>,
    pub request_broadcast: bool,
    pub rapid_commit: bool,
    /// Option 57 (at least 576).
    pub max_message_size: u16,
}

/// The kinds of message the client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    /// DISCOVER, asking for `requested` if known.
    Discover {
        requested: Option<Ipv4Addr>,
    },
    /// REQUEST in SELECTING: the offered address from that server.
    Select {
        address: Ipv4Addr,
        server: Ipv4Addr,
    },
    /// REQUEST in INIT-REBOOT.
    Reboot {
        address: Ipv4Addr,
    },
    /// REQUEST in RENEWING or REBINDING (`ciaddr` set).
    Extend {
        address: Ipv4Addr,
    },
    Release {
        address: Ipv4Addr,
        server: Ipv4Addr,
    },
    Decline {
        address: Ipv4Addr,
        server: Ipv4Addr,
    },
}

/// Encodes one client message.
pub fn build(p: &ClientParams, what: Outgoing, xid: u32, secs: u16) -> Vec<u8> {
    let unspecified = Ipv4Addr::UNSPECIFIED;
    let ciaddr = match what {
        Outgoing::Extend { address } | Outgoing::Release { address, .. } => address,
        _ => unspecified,
    };
    let mut msg = Message::new_with_id(xid, ciaddr, unspecified, unspecified, unspecified, &p.mac);
    msg.set_opcode(Opcode::BootRequest).set_htype(HType::Eth);
    let broadcast = p.request_broadcast && !matches!(what, Outgoing::Release { .. } | Outgoing::Extend { .. });
    msg.set_flags(if broadcast { Flags::default().set_broadcast() } else { Flags::default() });
    if !matches!(what, Outgoing::Release { .. } | Outgoing::Decline { .. }) {
        msg.set_secs(secs);
    }
    let kind = match what {
        Outgoing::Discover { .. } => MessageType::Discover,
        Outgoing::Select { .. } | Outgoing::Reboot { .. } | Outgoing::Extend { .. } => MessageType::Request,
        Outgoing::Release { .. } => MessageType::Release,
        Outgoing::Decline { .. } => MessageType::Decline,
    };
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    if !p.client_id.is_empty() {
        opts.insert(DhcpOption::ClientIdentifier(p.client_id.clone()));
    }
    match what {
        Outgoing::Discover { requested } => {
            if let Some(a) = requested {
                opts.insert(DhcpOption::RequestedIpAddress(a));
            }
            if p.rapid_commit {
                opts.insert(DhcpOption::RapidCommit);
            }
        }
        Outgoing::Select { address, server } => {
            opts.insert(DhcpOption::RequestedIpAddress(address));
            opts.insert(DhcpOption::ServerIdentifier(server));
        }
        Outgoing::Reboot { address } => {
            opts.insert(DhcpOption::RequestedIpAddress(address));
        }
        Outgoing::Extend { .. } => {}
        Outgoing::Release { server, .. } => {
            opts.insert(DhcpOption::ServerIdentifier(server));
        }
        Outgoing::Decline { address, server } => {
            opts.insert(DhcpOption::RequestedIpAddress(address));
            opts.insert(DhcpOption::ServerIdentifier(server));
        }
    }
    if matches!(
        what,
        Outgoing::Discover { .. } | Outgoing::Select { .. } | Outgoing::Reboot { .. } | Outgoing::Extend { .. }
    ) {
        opts.insert(DhcpOption::MaxMessageSize(p.max_message_size.max(576)));
        opts.insert(DhcpOption::ParameterRequestList(REQUESTED.iter().map(|(c, _)| OptionCode::from(*c)).collect()));
        if let Some(h) = &p.hostname {
            opts.insert(DhcpOption::Hostname(h.clone()));
        }
        if let Some((flags, name)) = &p.fqdn {
            opts.insert(DhcpOption::Unknown(UnknownOption::new(OptionCode::ClientFQDN, fqdn_option(*flags, name))));
        }
        if let Some(v) = &p.vendor_class {
            opts.insert(DhcpOption::ClassIdentifier(v.clone()));
        }
    }
    let mut buf = Vec::with_capacity(MIN_LEN);
    if let Err(e) = msg.encode(&mut Encoder::new(&mut buf)) {
        // Only our own values go in; this cannot fail short of a codec bug.
        tracing::error!("encoding a DHCP message failed: {e}");
        return Vec::new();
    }
    if buf.len() < MIN_LEN {
        buf.resize(MIN_LEN, 0);
    }
    buf
}

/// Why a packet was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    Malformed(String),
    NotAReply,
    NoMessageType,
}

/// A value the checks dropped, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub option: u8,
    pub value: String,
    pub reason: String,
}

/// A server's message, decoded and checked.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub kind: Option<MessageType>,
    pub xid: u32,
    /// The first `hlen` bytes of `chaddr` (`hlen` ≤ 16).
    pub chaddr: Vec<u8>,
    pub yiaddr: Option<Ipv4Addr>,
    pub siaddr: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
    pub rapid_commit: bool,
    pub lease_time: Option<u32>,
    pub renewal_time: Option<u32>,
    pub rebinding_time: Option<u32>,
    pub subnet_mask: Option<Ipv4Addr>,
    pub routers: Vec<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub ntp: Vec<Ipv4Addr>,
    pub domain_name: Option<String>,
    pub search: Vec<String>,
    pub hostname: Option<String>,
    pub mtu: Option<u16>,
    pub classless_routes: Vec<Route>,
    /// NetworkManager's view of every option that passed.
    pub options: BTreeMap<String, String>,
    /// A NAK's message (option 56), checked.
    pub message: Option<String>,
    pub dropped: Vec<Dropped>,
}

/// The options of a message: code → data, repeated codes concatenated, with
/// the `file` and `sname` fields when option 52 says they hold options.
fn raw_options(bytes: &[u8]) -> Result<BTreeMap<u8, Vec<u8>>, Ignored> {
    let raw = RawMessage::new(bytes).map_err(|e| Ignored::Malformed(e.to_string()))?;
    let mut map: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let add = |iter: DhcpOptionIterator<'_>, map: &mut BTreeMap<u8, Vec<u8>>| {
        for opt in iter {
            let data = map.entry(u8::from(opt.code())).or_default();
            if data.len() + opt.data().len() <= MAX_OPTION {
                data.extend_from_slice(opt.data());
            }
        }
    };
    add(raw.opts(), &mut map);
    let overload = map.get(&52).and_then(|d| d.first()).copied().unwrap_or(0);
    map.remove(&52);
    // RFC 3396 §6: options field, then file, then sname.
    if overload & 1 != 0
        && let Some(file) = bytes.get(FILE)
    {
        add(DhcpOptionIterator::new(file), &mut map);
    }
    if overload & 2 != 0
        && let Some(sname) = bytes.get(SNAME)
    {
        add(DhcpOptionIterator::new(sname), &mut map);
    }
    map.remove(&52);
    Ok(map)
}

/// One option decoded by the codec from its (concatenated) data.
fn decode_option(code: u8, data: &[u8]) -> Option<DhcpOption> {
    if data.is_empty() || option_name(code).is_none() {
        return None;
    }
    let mut buf = Vec::with_capacity(data.len() + 2 * (data.len() / 255 + 1));
    encode_long_opt_bytes(OptionCode::from(code), data, &mut Encoder::new(&mut buf)).ok()?;
    DhcpOption::decode(&mut Decoder::new(&buf)).ok()
}

fn join(list: &[Ipv4Addr]) -> String {
    list.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>().join(" ")
}

fn usable(list: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = Vec::new();
    for a in list.iter().copied().filter(|a| usable_address(*a) && !a.is_broadcast()) {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// Decodes and checks a server's message (the UDP payload).
pub fn parse_reply(bytes: &[u8]) -> Result<Reply, Ignored> {
    let header = bytes.get(..HEADER_LEN).ok_or(Ignored::Malformed("shorter than a BOOTP header".into()))?;
    let msg = Message::from_bytes(header).map_err(|e| Ignored::Malformed(e.to_string()))?;
    if msg.opcode() != Opcode::BootReply {
        return Err(Ignored::NotAReply);
    }
    if msg.hlen() > 16 {
        return Err(Ignored::Malformed(format!("hlen {}", msg.hlen())));
    }
    let mut r = Reply {
        xid: msg.xid(),
        chaddr: msg.chaddr().to_vec(),
        yiaddr: Some(msg.yiaddr()).filter(|a| !a.is_unspecified()),
        siaddr: Some(msg.siaddr()).filter(|a| !a.is_unspecified()),
        ..Reply::default()
    };
    let raw = raw_options(bytes)?;
    r.kind = raw.get(&53).and_then(|d| (d.len() == 1).then(|| MessageType::from(d[0])));
    if r.kind.is_none() {
        return Err(Ignored::NoMessageType);
    }
    // Rapid Commit has no data; its presence is all (never decoded: the
    // codec asserts on its length).
    r.rapid_commit = raw.contains_key(&80);
    if let Some(next) = r.siaddr {
        r.options.insert("next_server".into(), next.to_string());
    }
    for (code, data) in &raw {
        let code = *code;
        if code == 53 || code == 80 {
            continue;
        }
        if (224..=254).contains(&code) {
            r.options.insert(format!("private_{code}"), hex_colon(data));
            continue;
        }
        let Some(name) = option_name(code) else {
            continue;
        };
        let Some(opt) = decode_option(code, data) else {
            r.dropped.push(Dropped { option: code, value: sanitize::for_log(data), reason: "malformed".into() });
            continue;
        };
        match take(&mut r, code, opt, data.len()) {
            Ok(Some(text)) => {
                r.options.insert(name.to_owned(), text);
            }
            Ok(None) => {}
            Err((value, reason)) => r.dropped.push(Dropped { option: code, value, reason: reason.to_string() }),
        }
    }
    Ok(r)
}

/// Stores one decoded option in `r` and returns its text for the options
/// view, or the dropped value and the reason.
fn take(r: &mut Reply, code: u8, opt: DhcpOption, len: usize) -> Result<Option<String>, (String, Reject)> {
    use DhcpOption as O;
    let bad = |v: &str, e: Reject| (sanitize::for_log(v.as_bytes()), e);
    let text = match opt {
        O::SubnetMask(a) => {
            r.subnet_mask = Some(a);
            a.to_string()
        }
        O::ServerIdentifier(a) => {
            if !usable_address(a) || a.is_broadcast() {
                return Err(bad(&a.to_string(), Reject::BadValue));
            }
            r.server_id = Some(a);
            a.to_string()
        }
        O::BroadcastAddr(a) | O::SwapServer(a) => a.to_string(),
        O::Router(l) => {
            r.routers = usable(&l);
            join(&r.routers)
        }
        O::DomainNameServer(l) => {
            r.dns = usable(&l);
            join(&r.dns)
        }
        O::NtpServers(l) => {
            r.ntp = usable(&l);
            join(&r.ntp)
        }
        O::TimeServer(l)
        | O::NameServer(l)
        | O::LogServer(l)
        | O::LprServer(l)
        | O::NisServers(l)
        | O::NetBiosNameServers(l)
        | O::NetBiosDatagramDistributionServer(l)
        | O::XFontServer(l)
        | O::XDisplayManager(l)
        | O::NispServers(l)
        | O::SmtpServer(l)
        | O::Pop3Server(l)
        | O::NntpServer(l)
        | O::WwwServer(l)
        | O::IrcServer(l) => join(&l),
        O::Hostname(s) => {
            let name = sanitize::dns_name(&s).map_err(|e| bad(&s, e))?;
            r.hostname = Some(name.clone());
            name
        }
        O::DomainName(s) => {
            let (ok, bad_parts) = sanitize::dns_name_list(&s);
            if ok.is_empty() {
                return Err(bad(&s, bad_parts.first().copied().unwrap_or(Reject::Empty)));
            }
            if !bad_parts.is_empty() {
                r.dropped.push(Dropped {
                    option: code,
                    value: sanitize::for_log(s.as_bytes()),
                    reason: format!("{} name(s) left out", bad_parts.len()),
                });
            }
            let joined = ok.join(" ");
            r.domain_name = Some(joined.clone());
            joined
        }
        O::DomainSearch(names) => {
            for name in &names {
                match sanitize::dns_labels(name.iter()) {
                    Ok(n) if !r.search.contains(&n) => r.search.push(n),
                    Ok(_) => {}
                    Err(e) => r.dropped.push(Dropped {
                        option: code,
                        value: sanitize::for_log(name.to_string().as_bytes()),
                        reason: e.to_string(),
                    }),
                }
            }
            if r.search.is_empty() {
                return Ok(None);
            }
            r.search.join(" ")
        }
        O::MeritDumpFile(s)
        | O::RootPath(s)
        | O::ExtensionsPath(s)
        | O::NisDomain(s)
        | O::NetBiosScope(s)
        | O::Message(s)
        | O::NwipDomainName(s)
        | O::NispServiceDomain(s)
        | O::TimezonePosixString(s)
        | O::TimezoneDatabaseString(s)
        | O::CaptivePortal(s) => {
            let t = sanitize::text(&s).map_err(|e| bad(&s, e))?;
            if code == 56 {
                r.message = Some(t.clone());
            }
            t
        }
        O::ClassIdentifier(b) | O::TFTPServerName(b) | O::BootfileName(b) => {
            sanitize::text_bytes(&b).map_err(|e| (sanitize::for_log(&b), e))?
        }
        O::InterfaceMtu(m) => {
            // RFC 2132 §5.1: 68 is the smallest legal MTU.
            if m < 68 {
                return Err(bad(&m.to_string(), Reject::BadValue));
            }
            r.mtu = Some(m);
            m.to_string()
        }
        O::AddressLeaseTime(t) => {
            r.lease_time = Some(t);
            t.to_string()
        }
        O::Renewal(t) => {
            r.renewal_time = Some(t);
            t.to_string()
        }
        O::Rebinding(t) => {
            r.rebinding_time = Some(t);
            t.to_string()
        }
        O::ClasslessStaticRoute(routes) => {
            // RFC 3442 §4: an option the codec did not take whole is
            // malformed and ignored as a whole.
            let used: usize = routes.iter().map(|(net, _)| 1 + usize::from(net.prefix_len()).div_ceil(8) + 4).sum();
            if used != len {
                return Err((format!("{len} bytes"), Reject::BadValue));
            }
            let list = routes.iter().map(|(net, gw)| Route {
                dest: net.trunc().network(),
                prefix: net.prefix_len(),
                next_hop: *gw,
            });
            let list: Vec<Route> = list
                .filter(|rt| {
                    rt.next_hop.is_unspecified() || (usable_address(rt.next_hop) && !rt.next_hop.is_broadcast())
                })
                .collect();
            let text = list.iter().map(|rt| format!("{}/{} {}", rt.dest, rt.prefix, rt.next_hop)).collect::<Vec<_>>();
            r.classless_routes = list;
            text.join(" ")
        }
        O::StaticRoutingTable(pairs) => pairs.iter().map(|(d, g)| format!("{d} {g}")).collect::<Vec<_>>().join(" "),
        O::TimeOffset(n) => n.to_string(),
        O::BootFileSize(n) | O::MaxDatagramSize(n) => n.to_string(),
        O::DefaultIpTtl(n) | O::DefaultTcpTtl(n) => n.to_string(),
        O::PathMtuAgingTimeout(n) | O::ArpCacheTimeout(n) | O::TcpKeepaliveInterval(n) => n.to_string(),
        O::IpForwarding(b) | O::AllSubnetsLocal(b) => u8::from(b).to_string(),
        O::NetBiosNodeType(t) => u8::from(t).to_string(),
        _ => return Ok(None),
    };
    Ok(Some(text))
}

/// The prefix length of a contiguous netmask.
pub fn mask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// The classful prefix (RFC 791) for a lease without a usable netmask.
fn classful(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

impl Reply {
    /// The lease in this OFFER or ACK, acquired at `now`. `known_server` is
    /// used when the message has no server identifier (a renewal ACK).
    pub fn lease(&self, now: Duration, known_server: Option<Ipv4Addr>) -> Result<Lease, &'static str> {
        let address = self.yiaddr.ok_or("no address offered")?;
        if !usable_address(address) || address.is_broadcast() {
            return Err("unusable address offered");
        }
        let server_id = self.server_id.or(known_server).ok_or("no server identifier")?;
        let lease_time = match self.lease_time.ok_or("no lease time")? {
            INFINITE => INFINITE,
            t => t.max(MIN_LEASE),
        };
        let (renewal_time, rebinding_time) = if lease_time == INFINITE {
            (INFINITE, INFINITE)
        } else {
            // RFC 2131 §4.4.5 defaults: 0.5 and 0.875 of the lease.
            let t2_default = (u64::from(lease_time) * 7 / 8) as u32;
            let t2 = self.rebinding_time.filter(|t| *t <= lease_time).unwrap_or(t2_default).max(1);
            let t1 = self.renewal_time.filter(|t| *t <= t2).unwrap_or((lease_time / 2).min(t2)).max(1);
            (t1, t2.max(t1))
        };
        let prefix = self.subnet_mask.and_then(mask_prefix).filter(|p| *p <= 32).unwrap_or_else(|| classful(address));
        Ok(Lease {
            address,
            prefix,
            server_id,
            lease_time,
            renewal_time,
            rebinding_time,
            routers: self.routers.clone(),
            dns: self.dns.clone(),
            domain_name: self.domain_name.clone(),
            search: self.search.clone(),
            hostname: self.hostname.clone(),
            mtu: self.mtu,
            classless_routes: self.classless_routes.clone(),
            ntp: self.ntp.clone(),
            options: self.options.clone(),
            acquired: now,
        })
    }
}

/// A server's message, for tests: dhcproto builds it.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use dhcproto::v4;

    pub(crate) const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    pub(crate) const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    pub(crate) const ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 150);

    /// A reply of `kind` to `xid` with a one-hour lease and the usual options.
    pub(crate) fn reply(kind: MessageType, xid: u32) -> Message {
        let mut m =
            Message::new_with_id(xid, Ipv4Addr::UNSPECIFIED, ADDR, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &MAC);
        m.set_opcode(Opcode::BootReply);
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(kind));
        o.insert(DhcpOption::ServerIdentifier(SERVER));
        if kind != MessageType::Nak {
            o.insert(DhcpOption::AddressLeaseTime(3600));
            o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
            o.insert(DhcpOption::Router(vec![SERVER]));
            o.insert(DhcpOption::DomainNameServer(vec![SERVER]));
            o.insert(DhcpOption::DomainName("lab.test".into()));
        } else {
            m.set_yiaddr(Ipv4Addr::UNSPECIFIED);
        }
        m
    }

    pub(crate) fn bytes(m: &Message) -> Vec<u8> {
        let mut buf = Vec::new();
        m.encode(&mut Encoder::new(&mut buf)).expect("encode");
        buf
    }

    pub(crate) fn with(mut m: Message, opts: impl IntoIterator<Item = DhcpOption>) -> Message {
        for o in opts {
            m.opts_mut().insert(o);
        }
        m
    }

    pub(crate) fn without(mut m: Message, code: OptionCode) -> Message {
        m.opts_mut().remove(code);
        m
    }

    pub(crate) fn replace_opts(mut m: Message, opts: v4::DhcpOptions) -> Message {
        m.set_opts(opts);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use dhcproto::Name;
    use dhcproto::v4::{self, DhcpOptions};
    use std::str::FromStr;

    fn params() -> ClientParams {
        ClientParams {
            mac: MAC,
            client_id: [&[1u8][..], &MAC].concat(),
            hostname: Some("box".into()),
            fqdn: None,
            vendor_class: None,
            request_broadcast: false,
            rapid_commit: true,
            max_message_size: 1500,
        }
    }

    #[test]
    fn discover_carries_what_networkmanager_sends() {
        let b = build(&params(), Outgoing::Discover { requested: Some(ADDR) }, 7, 3);
        assert!(b.len() >= 300);
        let m = Message::from_bytes(&b).unwrap();
        assert_eq!(m.opcode(), Opcode::BootRequest);
        assert_eq!(m.xid(), 7);
        assert_eq!(m.secs(), 3);
        assert_eq!(m.chaddr(), &MAC);
        let o = m.opts();
        assert_eq!(o.msg_type(), Some(MessageType::Discover));
        assert_eq!(o.get(OptionCode::ClientIdentifier), Some(&DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 0, 1])));
        assert_eq!(o.get(OptionCode::Hostname), Some(&DhcpOption::Hostname("box".into())));
        assert_eq!(o.get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress(ADDR)));
        assert!(o.get(OptionCode::RapidCommit).is_some());
        let Some(DhcpOption::ParameterRequestList(prl)) = o.get(OptionCode::ParameterRequestList) else {
            panic!("no PRL")
        };
        for c in [1u8, 3, 6, 12, 15, 26, 42, 119, 121, 51, 58, 59] {
            assert!(prl.contains(&OptionCode::from(c)), "{c}");
        }
    }

    #[test]
    fn requests_per_state() {
        let p = params();
        let sel = Message::from_bytes(&build(&p, Outgoing::Select { address: ADDR, server: SERVER }, 1, 0)).unwrap();
        assert_eq!(sel.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(sel.opts().get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(SERVER)));
        assert!(sel.opts().get(OptionCode::RapidCommit).is_none());
        let reboot = Message::from_bytes(&build(&p, Outgoing::Reboot { address: ADDR }, 1, 0)).unwrap();
        assert!(reboot.opts().get(OptionCode::ServerIdentifier).is_none());
        assert_eq!(reboot.opts().get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress(ADDR)));
        let ext = Message::from_bytes(&build(&p, Outgoing::Extend { address: ADDR }, 1, 0)).unwrap();
        assert_eq!(ext.ciaddr(), ADDR);
        assert!(ext.opts().get(OptionCode::RequestedIpAddress).is_none());
        assert!(ext.opts().get(OptionCode::ServerIdentifier).is_none());
        let rel = Message::from_bytes(&build(&p, Outgoing::Release { address: ADDR, server: SERVER }, 1, 0)).unwrap();
        assert_eq!(rel.opts().msg_type(), Some(MessageType::Release));
        assert_eq!(rel.ciaddr(), ADDR);
        assert!(rel.opts().get(OptionCode::Hostname).is_none());
        let dec = Message::from_bytes(&build(&p, Outgoing::Decline { address: ADDR, server: SERVER }, 1, 0)).unwrap();
        assert_eq!(dec.opts().msg_type(), Some(MessageType::Decline));
        assert_eq!(dec.ciaddr(), Ipv4Addr::UNSPECIFIED);
        let mut bp = p.clone();
        bp.request_broadcast = true;
        let d = Message::from_bytes(&build(&bp, Outgoing::Discover { requested: None }, 1, 0)).unwrap();
        assert!(d.flags().broadcast());
    }

    #[test]
    fn a_good_ack_becomes_a_lease() {
        let m = with(
            reply(MessageType::Ack, 9),
            [
                DhcpOption::Renewal(100),
                DhcpOption::Rebinding(200),
                DhcpOption::InterfaceMtu(1400),
                DhcpOption::NtpServers(vec![Ipv4Addr::new(198, 18, 0, 5)]),
                DhcpOption::Hostname("client7".into()),
                DhcpOption::DomainSearch(vec![Name::from_str("lab.test").unwrap(), Name::from_str("b.test").unwrap()]),
                DhcpOption::ClasslessStaticRoute(vec![
                    ("10.0.0.0/8".parse().unwrap(), Ipv4Addr::new(198, 18, 0, 2)),
                    ("0.0.0.0/0".parse().unwrap(), SERVER),
                ]),
                DhcpOption::RootPath("198.18.0.1:/srv".into()),
                DhcpOption::Unknown(v4::UnknownOption::new(OptionCode::from(250), vec![1, 2])),
            ],
        );
        let r = parse_reply(&bytes(&m)).unwrap();
        assert!(r.dropped.is_empty(), "{:?}", r.dropped);
        assert_eq!(r.kind, Some(MessageType::Ack));
        let l = r.lease(Duration::from_secs(5), None).unwrap();
        assert_eq!((l.address, l.prefix, l.server_id), (ADDR, 24, SERVER));
        assert_eq!((l.lease_time, l.renewal_time, l.rebinding_time), (3600, 100, 200));
        assert_eq!(l.routers, [SERVER]);
        assert_eq!(l.dns, [SERVER]);
        assert_eq!(l.domain_name.as_deref(), Some("lab.test"));
        assert_eq!(l.search, ["lab.test", "b.test"]);
        assert_eq!(l.hostname.as_deref(), Some("client7"));
        assert_eq!(l.mtu, Some(1400));
        assert_eq!(l.classless_routes.len(), 2);
        assert_eq!(
            l.classless_routes[0],
            Route { dest: Ipv4Addr::new(10, 0, 0, 0), prefix: 8, next_hop: Ipv4Addr::new(198, 18, 0, 2) }
        );
        assert_eq!(l.options["subnet_mask"], "255.255.255.0");
        assert_eq!(l.options["dhcp_lease_time"], "3600");
        assert_eq!(l.options["dhcp_server_identifier"], "198.18.0.1");
        assert_eq!(l.options["rfc3442_classless_static_routes"], "10.0.0.0/8 198.18.0.2 0.0.0.0/0 198.18.0.1");
        assert_eq!(l.options["domain_search"], "lab.test b.test");
        assert_eq!(l.options["root_path"], "198.18.0.1:/srv");
        assert_eq!(l.options["private_250"], "01:02");
        assert_eq!(l.acquired, Duration::from_secs(5));
    }

    #[test]
    fn lease_times_default_and_clamp() {
        let r = parse_reply(&bytes(&reply(MessageType::Ack, 1))).unwrap();
        let l = r.lease(Duration::ZERO, None).unwrap();
        assert_eq!((l.renewal_time, l.rebinding_time), (1800, 3150));
        let m = with(reply(MessageType::Ack, 1), [DhcpOption::AddressLeaseTime(0), DhcpOption::Renewal(50)]);
        let l = parse_reply(&bytes(&m)).unwrap().lease(Duration::ZERO, None).unwrap();
        assert_eq!(l.lease_time, MIN_LEASE);
        assert!(l.renewal_time <= l.rebinding_time && l.rebinding_time <= l.lease_time);
        let m = with(reply(MessageType::Ack, 1), [DhcpOption::AddressLeaseTime(INFINITE)]);
        let l = parse_reply(&bytes(&m)).unwrap().lease(Duration::ZERO, None).unwrap();
        assert!(l.infinite());
        let m = without(reply(MessageType::Ack, 1), OptionCode::AddressLeaseTime);
        assert!(parse_reply(&bytes(&m)).unwrap().lease(Duration::ZERO, None).is_err());
        let m = without(reply(MessageType::Ack, 1), OptionCode::SubnetMask);
        let l = parse_reply(&bytes(&m)).unwrap().lease(Duration::ZERO, None).unwrap();
        assert_eq!(l.prefix, 24, "198/8 is class C");
    }

    #[test]
    fn hostile_strings_are_dropped() {
        let evil = "$(touch /tmp/pwned)";
        let m = with(
            reply(MessageType::Ack, 1),
            [
                DhcpOption::Hostname(evil.into()),
                DhcpOption::DomainName(format!("lab.test {evil};reboot")),
                DhcpOption::RootPath(format!("`{evil}`")),
                DhcpOption::NisDomain("a\nb".into()),
                DhcpOption::DomainSearch(vec![
                    Name::from_labels(vec![&b"$(id)"[..], b"test"]).unwrap(),
                    Name::from_str("ok.test").unwrap(),
                ]),
                DhcpOption::TFTPServerName(b"tftp|sh".to_vec()),
                DhcpOption::InterfaceMtu(10),
            ],
        );
        let r = parse_reply(&bytes(&m)).unwrap();
        let l = r.lease(Duration::ZERO, None).unwrap();
        assert_eq!(l.hostname, None);
        assert_eq!(l.domain_name.as_deref(), Some("lab.test"));
        assert_eq!(l.search, ["ok.test"]);
        assert_eq!(l.mtu, None);
        let all = format!("{:?}", l);
        for bad in ["touch", "$(", "`", "reboot", "tftp|sh", "a\nb"] {
            assert!(!all.contains(bad), "{bad} in {all}");
        }
        assert!(r.dropped.len() >= 6, "{:?}", r.dropped);
    }

    #[test]
    fn overlong_names_are_dropped() {
        let long = vec!["a".repeat(63); 5].join(".");
        let m = with(reply(MessageType::Ack, 1), [DhcpOption::Hostname(long.clone()), DhcpOption::DomainName(long)]);
        let l = parse_reply(&bytes(&m)).unwrap().lease(Duration::ZERO, None).unwrap();
        assert_eq!(l.hostname, None);
        assert_eq!(l.domain_name, None);
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        assert!(parse_reply(&[]).is_err());
        assert!(parse_reply(&[2; 100]).is_err());
        let good = bytes(&reply(MessageType::Offer, 5));
        for cut in 0..good.len() {
            let _ = parse_reply(&good[..cut]);
        }
        // A request is not a reply.
        let req = build(&ClientParamsForTest::get(), Outgoing::Discover { requested: None }, 1, 0);
        assert_eq!(parse_reply(&req).unwrap_err(), Ignored::NotAReply);
        // hlen beyond chaddr.
        let mut bad = good.clone();
        bad[2] = 200;
        assert!(matches!(parse_reply(&bad), Err(Ignored::Malformed(_))));
        // Wrong magic cookie: no options, no message type.
        let mut bad = good.clone();
        bad[236] = 0;
        assert_eq!(parse_reply(&bad).unwrap_err(), Ignored::NoMessageType);
        // Option lengths past the end, rapid commit with data, FQDN too short,
        // status code with no data: none may panic (the codec asserts on some).
        for tail in [
            &[53u8, 1, 2, 51, 200, 1][..],
            &[53, 1, 5, 80, 3, 1, 2, 3, 255],
            &[53, 1, 5, 81, 1, 0, 255],
            &[53, 1, 5, 151, 0, 255],
            &[53, 1, 5, 94, 1, 1, 255],
            &[53, 1, 5, 121, 5, 40, 1, 2, 3, 4, 255],
            &[53, 1, 5, 121, 3, 8, 10, 1, 255],
            &[53, 1, 5, 119, 4, 0xc0, 0x00, 0xc0, 0x00, 255],
            &[53, 1, 5, 12, 3, 0xff, 0xfe, 0xfd, 255],
            &[53, 1, 5, 52, 1, 3, 255],
            &[53, 2, 5, 5, 255],
        ] {
            let mut p = good[..240].to_vec();
            p.extend_from_slice(tail);
            let _ = parse_reply(&p);
        }
    }

    struct ClientParamsForTest;
    impl ClientParamsForTest {
        fn get() -> ClientParams {
            ClientParams {
                mac: MAC,
                client_id: vec![],
                hostname: None,
                fqdn: None,
                vendor_class: None,
                request_broadcast: false,
                rapid_commit: false,
                max_message_size: 576,
            }
        }
    }

    #[test]
    fn option_overload_is_read_and_checked() {
        // Options field: type, overload = both; file: hostname; sname: domain.
        let base = bytes(&replace_opts(reply(MessageType::Ack, 3), DhcpOptions::new()));
        let mut p = base[..240].to_vec();
        p.extend_from_slice(&[53, 1, 5, 52, 1, 3, 54, 4, 198, 18, 0, 1, 51, 4, 0, 0, 14, 16, 255]);
        let mut file = vec![12u8, 4];
        file.extend_from_slice(b"node");
        file.push(255);
        p[108..108 + file.len()].copy_from_slice(&file);
        let mut sname = vec![15u8, 6];
        sname.extend_from_slice(b"x;y.zz");
        sname.push(255);
        p[44..44 + sname.len()].copy_from_slice(&sname);
        let r = parse_reply(&p).unwrap();
        assert_eq!(r.hostname.as_deref(), Some("node"));
        assert_eq!(r.domain_name, None);
        assert_eq!(r.lease_time, Some(3600));
        assert_eq!(r.dropped.len(), 1);
    }

    #[test]
    fn concatenated_options_are_joined() {
        // RFC 3396: a search list split over two option instances.
        let base = bytes(&replace_opts(reply(MessageType::Ack, 3), DhcpOptions::new()));
        let mut p = base[..240].to_vec();
        p.extend_from_slice(&[53, 1, 5, 119, 4, 3, b'l', b'a', b'b', 119, 6, 4, b't', b'e', b's', b't', 0, 255]);
        let r = parse_reply(&p).unwrap();
        assert_eq!(r.search, ["lab.test"]);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let good = bytes(&with(
            reply(MessageType::Ack, 1),
            [DhcpOption::DomainSearch(vec![Name::from_str("a.b").unwrap()]), DhcpOption::Hostname("h".into())],
        ));
        for round in 0..20_000 {
            let len = (next() % 600) as usize;
            let mut p: Vec<u8> = if round % 2 == 0 { good.clone() } else { (0..len).map(|_| next() as u8).collect() };
            if round % 2 == 0 {
                // Flip some bytes of a valid packet, mostly in the options.
                for _ in 0..(next() % 8 + 1) {
                    let i = (next() as usize) % p.len();
                    p[i] = next() as u8;
                }
                p.truncate(240 + (next() as usize) % (p.len() - 239));
            }
            if let Ok(r) = parse_reply(&p) {
                let _ = r.lease(Duration::ZERO, Some(SERVER));
            }
        }
    }

    #[test]
    fn masks() {
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(mask_prefix(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(mask_prefix(Ipv4Addr::new(255, 0, 255, 0)), None);
    }

    #[test]
    fn option_81_carries_the_fqdn_in_wire_form() {
        assert_eq!(
            fqdn_option(0x05, "box.lab.test"),
            [&[0x05, 0, 0, 3][..], b"box", &[3], b"lab", &[4], b"test", &[0]].concat()
        );
        assert_eq!(fqdn_option(0x01, "box.lab.test"), [&[0x01, 0, 0][..], b"box.lab.test"].concat(), "ASCII without E");
    }
}
