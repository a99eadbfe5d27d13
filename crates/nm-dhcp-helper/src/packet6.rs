//! DHCPv6 messages (RFC 8415), built and read by dhcproto's `v6` module
//! (never by hand).
//!
//! Reading is defensive on top of the codec, as `packet.rs` is for v4:
//! the codec's option loop is not used on a whole message. Its `Decoder`
//! walks the option list one option at a time, and an option is handed to
//! the codec's option decoder only when its code is one we use and its
//! length passes what that decoder assumes (some subtract from the length
//! and would panic on short options; IA_NA and IA Address decode nested
//! options, so their contents are checked the same way first). A malformed
//! option costs only itself.

use std::net::Ipv6Addr;

use dhcproto::v6::{DhcpOption, IAAddr, IANA, Message, MessageType, ORO, OptionCode, Status};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

use crate::sanitize;

pub const CLIENT_PORT: u16 = 546;
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1).
pub const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// Lifetimes and times of "infinity" (RFC 8415 §7.7).
pub const INFINITE: u32 = u32::MAX;

const OPT_DNS: u16 = 23;
const OPT_SEARCH: u16 = 24;
const OPT_REFRESH: u16 = 32;
/// Deepest nesting we check (IA_NA > IA Address > Status Code is 3).
const MAX_DEPTH: u8 = 3;

/// The client's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params6 {
    pub duid: Vec<u8>,
    pub iaid: u32,
}

/// What the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out6<'a> {
    Solicit,
    Request { server: &'a [u8], address: Ipv6Addr },
    Renew { server: &'a [u8], address: Ipv6Addr },
    Rebind { address: Ipv6Addr },
    Release { server: &'a [u8], address: Ipv6Addr },
    Decline { server: &'a [u8], address: Ipv6Addr },
    InformationRequest,
}

impl Out6<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Out6::Solicit => "SOLICIT",
            Out6::Request { .. } => "REQUEST",
            Out6::Renew { .. } => "RENEW",
            Out6::Rebind { .. } => "REBIND",
            Out6::Release { .. } => "RELEASE",
            Out6::Decline { .. } => "DECLINE",
            Out6::InformationRequest => "INFORMATION-REQUEST",
        }
    }
}

fn ia_na(p: &Params6, address: Option<Ipv6Addr>) -> DhcpOption {
    let mut opts = dhcproto::v6::DhcpOptions::new();
    // RFC 8415 §21.6: lifetimes from a client are 0 (a hint, not a wish);
    // §21.4: T1 and T2 are 0 too, the server decides.
    if let Some(addr) = address {
        opts.insert(DhcpOption::IAAddr(IAAddr { addr, preferred_life: 0, valid_life: 0, opts: Default::default() }));
    }
    DhcpOption::IANA(IANA { id: p.iaid, t1: 0, t2: 0, opts })
}

/// A message of ours; `elapsed` in hundredths of a second (RFC 8415 §21.9).
pub fn build(p: &Params6, what: &Out6<'_>, xid: u32, elapsed: u16) -> Vec<u8> {
    let kind = match what {
        Out6::Solicit => MessageType::Solicit,
        Out6::Request { .. } => MessageType::Request,
        Out6::Renew { .. } => MessageType::Renew,
        Out6::Rebind { .. } => MessageType::Rebind,
        Out6::Release { .. } => MessageType::Release,
        Out6::Decline { .. } => MessageType::Decline,
        Out6::InformationRequest => MessageType::InformationRequest,
    };
    let mut m = Message::new(kind);
    m.set_xid_num(xid & 0x00ff_ffff);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClientId(p.duid.clone()));
    o.insert(DhcpOption::ElapsedTime(elapsed));
    let mut oro = vec![OptionCode::from(OPT_DNS), OptionCode::from(OPT_SEARCH)];
    match what {
        Out6::Solicit => {
            o.insert(ia_na(p, None));
            // dnsmasq and most servers then answer with a Reply at once.
            o.insert(DhcpOption::RapidCommit);
        }
        Out6::Request { server, address }
        | Out6::Renew { server, address }
        | Out6::Release { server, address }
        | Out6::Decline { server, address } => {
            o.insert(DhcpOption::ServerId(server.to_vec()));
            o.insert(ia_na(p, Some(*address)));
        }
        Out6::Rebind { address } => o.insert(ia_na(p, Some(*address))),
        // RFC 8415 §18.2.6: ask for the Information Refresh Time.
        Out6::InformationRequest => oro.push(OptionCode::from(OPT_REFRESH)),
    }
    // RFC 8415 §18.2.7, §18.2.8: a Release or Decline carries no Option Request.
    if !matches!(what, Out6::Release { .. } | Out6::Decline { .. }) {
        o.insert(DhcpOption::ORO(ORO { opts: oro }));
    }
    let mut buf = Vec::with_capacity(128);
    if let Err(e) = m.encode(&mut Encoder::new(&mut buf)) {
        tracing::error!("encoding a DHCPv6 message failed: {e}");
        return Vec::new();
    }
    buf
}

/// The address of an IA_NA, as the server gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IaAddress {
    pub address: Ipv6Addr,
    pub preferred: u32,
    pub valid: u32,
}

/// Our IA_NA in a server's message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ia {
    pub t1: u32,
    pub t2: u32,
    /// The first usable address (valid lifetime > 0, preferred ≤ valid).
    pub address: Option<IaAddress>,
    /// The IA's status code (0, success, when absent).
    pub status: u16,
}

/// A server's message, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply6 {
    pub kind: MessageType,
    pub xid: u32,
    pub client_id: Option<Vec<u8>>,
    pub server_id: Option<Vec<u8>>,
    pub preference: u8,
    pub rapid_commit: bool,
    /// The message's status code (0 when absent).
    pub status: u16,
    /// The IA_NA with our IAID, if any.
    pub ia: Option<Ia>,
    pub dns: Vec<Ipv6Addr>,
    pub search: Vec<String>,
    pub refresh: Option<u32>,
    /// Values the checks dropped, for the log.
    pub dropped: Vec<String>,
}

pub const STATUS_SUCCESS: u16 = 0;
/// The server no longer knows the binding (RFC 8415 §21.13): ask again.
pub const STATUS_NO_BINDING: u16 = 3;
/// The address is not right for this link: start over.
pub const STATUS_NOT_ON_LINK: u16 = 4;

/// Whether the codec may decode the option `code` with these `data`: its
/// decoders subtract from the length or decode nested lists.
fn decodable(code: u16, data: &[u8], depth: u8) -> bool {
    let nested = |at: usize| data.len() >= at && depth < MAX_DEPTH && list_ok(&data[at..], depth + 1);
    match code {
        3 | 25 => nested(12),
        4 => nested(4),
        5 => nested(24),
        26 => nested(25),
        13 => data.len() >= 2,
        // Rapid Commit and Reconfigure Accept carry nothing; the codec
        // would read any data as further options, unchecked.
        14 | 20 => data.is_empty(),
        7 | 19 => data.len() == 1,
        8 => data.len() == 2,
        12 => data.len() == 16,
        // Relay messages, authentication, vendor class/options, NTP: not
        // for a client, and their decoders assume too much.
        9 | 11 | 16 | 17 | 56 => false,
        _ => true,
    }
}

/// Whether every option of a nested list may go to the codec, which
/// decodes such a list whole: it must end with a whole option. (The codec
/// reads some options by their type, not their length, so from a truncated
/// option on it would read other bytes as options than these checks saw.)
fn list_ok(bytes: &[u8], depth: u8) -> bool {
    let mut seen = 0;
    let all_ok = options(bytes).all(|(code, data, whole)| {
        seen += whole.len();
        decodable(code, data, depth)
    });
    all_ok && seen == bytes.len()
}

/// The options of a list: (code, data, the whole option), by the codec's
/// `Decoder`. A truncated last option ends the list.
fn options(bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8], &[u8])> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let mut d = Decoder::new(rest);
        let code = d.read_u16().ok()?;
        let len = d.read_u16().ok()?;
        let data = d.read_slice(usize::from(len)).ok()?;
        let (whole, next) = rest.split_at(4 + data.len());
        rest = next;
        Some((code, data, whole))
    })
}

/// One option decoded by the codec, if it is safe to.
fn decode_option(code: u16, data: &[u8], whole: &[u8]) -> Option<DhcpOption> {
    if !decodable(code, data, 0) {
        return None;
    }
    DhcpOption::decode(&mut Decoder::new(whole)).ok()
}

/// Why a packet was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored6 {
    Short,
    NotForClients,
}

/// Decodes and checks a server's message (the UDP payload). Only our IA_NA
/// (`iaid`) is read.
pub fn parse_reply(bytes: &[u8], iaid: u32) -> Result<Reply6, Ignored6> {
    let mut d = Decoder::new(bytes);
    let kind = MessageType::from(d.read_u8().map_err(|_| Ignored6::Short)?);
    let xid = d.read::<3>().map_err(|_| Ignored6::Short)?;
    let opts = bytes.get(4..).unwrap_or_default();
    if !matches!(kind, MessageType::Advertise | MessageType::Reply) {
        return Err(Ignored6::NotForClients);
    }
    let mut r = Reply6 {
        kind,
        xid: u32::from_be_bytes([0, xid[0], xid[1], xid[2]]),
        client_id: None,
        server_id: None,
        preference: 0,
        rapid_commit: false,
        status: STATUS_SUCCESS,
        ia: None,
        dns: Vec::new(),
        search: Vec::new(),
        refresh: None,
        dropped: Vec::new(),
    };
    for (code, data, whole) in options(opts) {
        if !matches!(code, 1 | 2 | 3 | 7 | 13 | 14 | OPT_DNS | OPT_SEARCH | OPT_REFRESH) {
            continue;
        }
        let Some(opt) = decode_option(code, data, whole) else {
            r.dropped.push(format!("option {code}: malformed"));
            continue;
        };
        match opt {
            // The first of a kind counts (RFC 8415 §21: at most one each).
            DhcpOption::ClientId(id) if r.client_id.is_none() => r.client_id = Some(id),
            DhcpOption::ServerId(id) if r.server_id.is_none() && !id.is_empty() => r.server_id = Some(id),
            DhcpOption::Preference(p) => r.preference = p,
            DhcpOption::RapidCommit => r.rapid_commit = true,
            DhcpOption::StatusCode(s) => r.status = u16::from(s.status),
            DhcpOption::IANA(ia) if ia.id == iaid && r.ia.is_none() => r.ia = Some(read_ia(&ia)),
            DhcpOption::DomainNameServers(list) => {
                for a in list {
                    if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                        r.dropped.push(format!("DNS server {a}: not usable"));
                    } else if !r.dns.contains(&a) {
                        r.dns.push(a);
                    }
                }
            }
            DhcpOption::DomainSearchList(names) => {
                for n in names {
                    let text = n.to_ascii();
                    match sanitize::dns_name(&text) {
                        Ok(n) if !r.search.contains(&n) => r.search.push(n),
                        Ok(_) => {}
                        Err(e) => r.dropped.push(format!("search {}: {e}", sanitize::for_log(text.as_bytes()))),
                    }
                }
            }
            // The codec has no decoder for option 32: four bytes, read by
            // its decoder.
            DhcpOption::Unknown(u) if u16::from(u.code()) == OPT_REFRESH && u.data().len() == 4 => {
                r.refresh = Decoder::new(u.data()).read_u32().ok();
            }
            _ => {}
        }
    }
    Ok(r)
}

fn read_ia(ia: &IANA) -> Ia {
    let mut out = Ia { t1: ia.t1, t2: ia.t2, address: None, status: STATUS_SUCCESS };
    for o in ia.opts.iter() {
        match o {
            DhcpOption::StatusCode(s) => out.status = u16::from(s.status),
            DhcpOption::IAAddr(a) if out.address.is_none() => {
                let usable = a.valid_life > 0
                    && a.preferred_life <= a.valid_life
                    && !a.addr.is_unspecified()
                    && !a.addr.is_multicast()
                    && !a.addr.is_loopback();
                // An address with its own non-success status is not given.
                let failed =
                    a.opts.iter().any(|o| matches!(o, DhcpOption::StatusCode(s) if s.status != Status::Success));
                if usable && !failed {
                    out.address = Some(IaAddress { address: a.addr, preferred: a.preferred_life, valid: a.valid_life });
                }
            }
            _ => {}
        }
    }
    out
}

/// A status code's name, for the log.
pub fn status_name(code: u16) -> &'static str {
    match Status::from(code) {
        Status::Success => "Success",
        Status::UnspecFail => "UnspecFail",
        Status::NoAddrsAvail => "NoAddrsAvail",
        Status::NoBinding => "NoBinding",
        Status::NotOnLink => "NotOnLink",
        Status::UseMulticast => "UseMulticast",
        _ => "other",
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fixtures {
    use super::*;
    use dhcproto::v6::StatusCode;

    pub(crate) const DUID: [u8; 18] = [0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
    pub(crate) const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
    pub(crate) const IAID: u32 = 0x1a2b_3c4d;
    pub(crate) const ADDR: Ipv6Addr = Ipv6Addr::new(0xfd4c, 0x6162, 0, 0, 0, 0, 0, 0x150);
    pub(crate) const DNS: Ipv6Addr = Ipv6Addr::new(0xfd4c, 0x6162, 0, 0, 0, 0, 0, 1);

    pub(crate) fn params() -> Params6 {
        Params6 { duid: DUID.to_vec(), iaid: IAID }
    }

    /// A server's `kind` to `xid` for our client with `address` (lifetimes
    /// `preferred`/`valid`, T1/T2 `t1`/`t2`), DNS and a search domain.
    pub(crate) fn reply(kind: MessageType, xid: u32, address: Option<(Ipv6Addr, u32, u32)>, t: (u32, u32)) -> Message {
        let mut m = Message::new(kind);
        m.set_xid_num(xid);
        let o = m.opts_mut();
        o.insert(DhcpOption::ClientId(DUID.to_vec()));
        o.insert(DhcpOption::ServerId(SERVER_DUID.to_vec()));
        let mut ia = dhcproto::v6::DhcpOptions::new();
        match address {
            Some((addr, preferred_life, valid_life)) => {
                ia.insert(DhcpOption::IAAddr(IAAddr { addr, preferred_life, valid_life, opts: Default::default() }))
            }
            None => ia.insert(DhcpOption::StatusCode(StatusCode { status: Status::NoAddrsAvail, msg: "none".into() })),
        }
        o.insert(DhcpOption::IANA(IANA { id: IAID, t1: t.0, t2: t.1, opts: ia }));
        o.insert(DhcpOption::DomainNameServers(vec![DNS]));
        o.insert(DhcpOption::DomainSearchList(vec!["lab.test".parse().expect("a name")]));
        m
    }

    pub(crate) fn bytes(m: &Message) -> Vec<u8> {
        let mut buf = Vec::new();
        m.encode(&mut Encoder::new(&mut buf)).expect("encode");
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn solicit_carries_what_rfc8415_asks() {
        let b = build(&params(), &Out6::Solicit, 0x00ab_cdef, 0);
        let m = Message::decode(&mut Decoder::new(&b)).unwrap();
        assert_eq!(m.msg_type(), MessageType::Solicit);
        assert_eq!(m.xid(), [0xab, 0xcd, 0xef]);
        let o = m.opts();
        assert_eq!(o.get(OptionCode::ClientId), Some(&DhcpOption::ClientId(DUID.to_vec())));
        assert_eq!(o.get(OptionCode::ElapsedTime), Some(&DhcpOption::ElapsedTime(0)));
        assert!(o.get(OptionCode::RapidCommit).is_some());
        assert!(o.get(OptionCode::ServerId).is_none());
        let Some(DhcpOption::IANA(ia)) = o.get(OptionCode::IANA) else { panic!("no IA_NA") };
        assert_eq!((ia.id, ia.t1, ia.t2), (IAID, 0, 0));
        let Some(DhcpOption::ORO(oro)) = o.get(OptionCode::ORO) else { panic!("no ORO") };
        assert_eq!(oro.opts, [OptionCode::from(23), OptionCode::from(24)]);
    }

    #[test]
    fn request_renew_rebind_release_information_request() {
        let p = params();
        let req = build(&p, &Out6::Request { server: &SERVER_DUID, address: ADDR }, 1, 100);
        let m = Message::decode(&mut Decoder::new(&req)).unwrap();
        assert_eq!(m.msg_type(), MessageType::Request);
        assert_eq!(m.opts().get(OptionCode::ServerId), Some(&DhcpOption::ServerId(SERVER_DUID.to_vec())));
        assert_eq!(m.opts().get(OptionCode::ElapsedTime), Some(&DhcpOption::ElapsedTime(100)));
        let Some(DhcpOption::IANA(ia)) = m.opts().get(OptionCode::IANA) else { panic!("no IA_NA") };
        assert!(matches!(ia.opts.get(OptionCode::IAAddr), Some(DhcpOption::IAAddr(a)) if a.addr == ADDR));
        let reb = Message::decode(&mut Decoder::new(&build(&p, &Out6::Rebind { address: ADDR }, 1, 0))).unwrap();
        assert_eq!(reb.msg_type(), MessageType::Rebind);
        assert!(reb.opts().get(OptionCode::ServerId).is_none());
        let rel = build(&p, &Out6::Release { server: &SERVER_DUID, address: ADDR }, 1, 0);
        let rel = Message::decode(&mut Decoder::new(&rel)).unwrap();
        assert_eq!(rel.msg_type(), MessageType::Release);
        assert!(rel.opts().get(OptionCode::ORO).is_none());
        let inf = Message::decode(&mut Decoder::new(&build(&p, &Out6::InformationRequest, 1, 0))).unwrap();
        assert_eq!(inf.msg_type(), MessageType::InformationRequest);
        assert!(inf.opts().get(OptionCode::IANA).is_none());
        let Some(DhcpOption::ORO(oro)) = inf.opts().get(OptionCode::ORO) else { panic!("no ORO") };
        assert!(oro.opts.contains(&OptionCode::from(32)));
    }

    #[test]
    fn reply_is_read() {
        let mut m = reply(MessageType::Reply, 7, Some((ADDR, 3000, 3600)), (1000, 2000));
        m.opts_mut().insert(DhcpOption::RapidCommit);
        m.opts_mut().insert(DhcpOption::Preference(9));
        m.opts_mut().insert(DhcpOption::DomainSearchList(vec![
            "ok.test".parse().unwrap(),
            dhcproto::Name::from_labels(vec![&b"$(id)"[..], b"test"]).unwrap(),
        ]));
        let r = parse_reply(&bytes(&m), IAID).unwrap();
        assert_eq!((r.kind, r.xid, r.preference, r.rapid_commit), (MessageType::Reply, 7, 9, true));
        assert_eq!(r.client_id.as_deref(), Some(&DUID[..]));
        assert_eq!(r.server_id.as_deref(), Some(&SERVER_DUID[..]));
        let ia = r.ia.unwrap();
        assert_eq!((ia.t1, ia.t2, ia.status), (1000, 2000, 0));
        assert_eq!(ia.address, Some(IaAddress { address: ADDR, preferred: 3000, valid: 3600 }));
        assert_eq!(r.dns, [DNS]);
        assert_eq!(r.search, ["ok.test", "lab.test"], "both options 24, in order");
        assert_eq!(r.dropped.len(), 1, "{:?}", r.dropped);
        // Another IAID is not ours; an address with preferred > valid is not usable.
        assert_eq!(parse_reply(&bytes(&m), 1).unwrap().ia, None);
        let bad = reply(MessageType::Reply, 7, Some((ADDR, 4000, 3600)), (0, 0));
        assert_eq!(parse_reply(&bytes(&bad), IAID).unwrap().ia.unwrap().address, None);
        let none = reply(MessageType::Advertise, 7, None, (0, 0));
        let ia = parse_reply(&bytes(&none), IAID).unwrap().ia.unwrap();
        assert_eq!((ia.address, ia.status), (None, 2));
    }

    #[test]
    fn garbage_is_refused_or_skipped_without_panic() {
        assert_eq!(parse_reply(&[], IAID), Err(Ignored6::Short));
        assert_eq!(parse_reply(&[7, 0], IAID), Err(Ignored6::Short));
        assert_eq!(parse_reply(&[1, 0, 0, 0], IAID), Err(Ignored6::NotForClients));
        // A status code of length 0 (the codec would subtract 2 from it),
        // nested in an IA_NA, and at the top; truncated options.
        let mut p = vec![7, 0, 0, 1];
        p.extend_from_slice(&[0, 13, 0, 0]);
        p.extend_from_slice(&[0, 3, 0, 16, 0x1a, 0x2b, 0x3c, 0x4d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, 0, 0]);
        p.extend_from_slice(&[0, 11, 0, 1, 0]);
        p.extend_from_slice(&[0, 23, 0, 40, 1]);
        let r = parse_reply(&p, IAID).unwrap();
        assert_eq!(r.ia, None);
        assert_eq!(r.xid, 1);
        for n in 0..p.len() {
            let _ = parse_reply(&p[..n], IAID);
        }
        // Rapid Commit with data inside an IA_NA: the codec would read the
        // data as a status code of length 0.
        let mut p = vec![7, 0, 0, 1];
        p.extend_from_slice(&[0, 3, 0, 22, 0x1a, 0x2b, 0x3c, 0x4d, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0, 14, 0, 6, 0, 13, 0, 0, 0, 0]);
        let r = parse_reply(&p, IAID).unwrap();
        assert_eq!(r.ia, None);
        assert!(!r.rapid_commit);
        // A truncated option in an IA_NA whose type the codec reads by
        // size (Preference: one byte, whatever its length says), then a
        // status code of length 0: found by `cargo xtask fuzz dhcp6`.
        let mut p = vec![7, 0, 0, 1];
        p.extend_from_slice(&[0, 3, 0, 23, 0x1a, 0x2b, 0x3c, 0x4d, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0, 7, 0, 9, 255, 0, 13, 0, 0, 1, 2]);
        let r = parse_reply(&p, IAID).unwrap();
        assert_eq!(r.ia, None);
        assert_eq!(r.dropped, ["option 3: malformed"]);
    }
}
