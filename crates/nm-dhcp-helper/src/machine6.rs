//! The DHCPv6 client state machine (RFC 8415 §18), pure like `machine.rs`:
//! (state, input, now) → actions, randomness from a seeded generator, so a
//! test with a virtual clock sees exactly what the daemon would.
//!
//! ```text
//!  managed:   Start ─▶ SOLICIT ─Advertise─▶ REQUEST ─Reply─▶ BOUND ─T1─▶ RENEW ─T2─▶ REBIND
//!                        ▲  └──Reply + Rapid Commit──────────▲  ▲ Reply  │     Reply   │
//!                        │                                   │  └────────┴─────────────┘
//!                        └──── NoAddrsAvail/NotOnLink, REQ_MAX_RC, valid lifetime over ─┘
//!             BOUND/RENEW/REBIND ─address failed DAD─▶ DECLINE ─Reply or DEC_MAX_RC─▶ SOLICIT
//!  stateless: Start ─▶ INFORMATION-REQUEST ─Reply─▶ BOUND ─refresh time─▶ (again)
//! ```
//!
//! All messages go to All_DHCP_Relay_Agents_and_Servers, so there is no
//! `Via`. No initial random delay before the first Solicit (RFC 8415 §18.2.1
//! says SHOULD; nm-core waits for the link-local address already).

use std::net::Ipv6Addr;
use std::time::Duration;

use dhcproto::v6::MessageType;
use tracing::{debug, warn};

use crate::lease6::Lease6;
use crate::machine::{EventKind, Time};
use crate::packet6::{
    self, INFINITE, Out6, Params6, Reply6, STATUS_NO_BINDING, STATUS_NOT_ON_LINK, STATUS_SUCCESS, status_name,
};

/// Retransmission parameters (RFC 8415 §7.6), in milliseconds; `mrc` 0 is
/// no limit.
#[derive(Debug, Clone, Copy)]
struct Rt {
    irt: u64,
    mrt: u64,
    mrc: u32,
}

const SOL: Rt = Rt { irt: 1_000, mrt: 3_600_000, mrc: 0 };
const REQ: Rt = Rt { irt: 1_000, mrt: 30_000, mrc: 10 };
const REN: Rt = Rt { irt: 10_000, mrt: 600_000, mrc: 0 };
const REB: Rt = Rt { irt: 10_000, mrt: 600_000, mrc: 0 };
const INF: Rt = Rt { irt: 1_000, mrt: 3_600_000, mrc: 0 };
/// DEC_TIMEOUT and DEC_MAX_RC; RFC 8415 gives no MRT (four tries stay far below this one).
const DEC: Rt = Rt { irt: 1_000, mrt: 3_600_000, mrc: 4 };
/// Information Refresh Time: default and least (RFC 8415 §21.23).
const IRT_DEFAULT: u32 = 86_400;
const IRT_MINIMUM: u32 = 600;

/// A transaction's settings.
#[derive(Debug, Clone)]
pub struct Config6 {
    pub params: Params6,
    /// Mode "other": Information-request only, no address.
    pub stateless: bool,
    /// Give up (event `timeout`) without a first lease in this time.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
pub enum Input6<'a> {
    Start,
    /// A UDP payload that arrived on port 546.
    Packet(&'a [u8]),
    Timer,
    Stop {
        release: bool,
    },
    /// nm-core found the leased address in use on the link (its DAD failed).
    Decline {
        address: Ipv6Addr,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action6 {
    /// A message to All_DHCP_Relay_Agents_and_Servers.
    Send {
        payload: Vec<u8>,
        what: &'static str,
    },
    Event {
        kind: EventKind,
        lease: Option<Lease6>,
    },
    Finished,
}

/// One exchange: its transaction id, start (for Elapsed Time) and the next
/// retransmission.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    xid: u32,
    start: Time,
    at: Time,
    rt: Duration,
    sent: u32,
}

#[derive(Debug, Clone)]
enum Phase {
    Idle,
    /// `best`: the preferred Advertise so far (preference, server, address).
    Soliciting {
        ex: Exchange,
        best: Option<(u8, Vec<u8>, Ipv6Addr)>,
    },
    Requesting {
        ex: Exchange,
        server: Vec<u8>,
        address: Ipv6Addr,
    },
    Bound {
        lease: Box<Lease6>,
    },
    Renewing {
        ex: Exchange,
        lease: Box<Lease6>,
    },
    Rebinding {
        ex: Exchange,
        lease: Box<Lease6>,
    },
    /// Telling `server` that `address` is in use by another host.
    Declining {
        ex: Exchange,
        server: Vec<u8>,
        address: Ipv6Addr,
    },
    /// Stateless; `held` is the information being refreshed.
    Informing {
        ex: Exchange,
        held: Option<Box<Lease6>>,
    },
    Stopped,
}

pub struct Machine6 {
    cfg: Config6,
    phase: Phase,
    rng: u64,
    started: Option<Time>,
    bound_once: bool,
}

fn secs(s: u32) -> Option<Duration> {
    (s != INFINITE).then(|| Duration::from_secs(u64::from(s)))
}

/// `s * num / 10`, infinity staying infinity.
fn tenths(s: u32, num: u64) -> u32 {
    if s == INFINITE { INFINITE } else { (u64::from(s) * num / 10) as u32 }
}

impl Machine6 {
    pub fn new(cfg: Config6, seed: u64) -> Machine6 {
        Machine6 { cfg, phase: Phase::Idle, rng: seed | 1, started: None, bound_once: false }
    }

    /// The `State` property.
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Idle => "init",
            Phase::Soliciting { .. } => "soliciting",
            Phase::Requesting { .. } => "requesting",
            Phase::Bound { .. } => "bound",
            Phase::Renewing { .. } => "renewing",
            Phase::Rebinding { .. } => "rebinding",
            Phase::Declining { .. } => "declining",
            Phase::Informing { .. } => "informing",
            Phase::Stopped => "stopped",
        }
    }

    /// The lease the client holds now.
    pub fn lease(&self) -> Option<&Lease6> {
        match &self.phase {
            Phase::Bound { lease } | Phase::Renewing { lease, .. } | Phase::Rebinding { lease, .. } => Some(lease),
            Phase::Informing { held, .. } => held.as_deref(),
            _ => None,
        }
    }

    /// When the machine wants [`Input6::Timer`].
    pub fn deadline(&self) -> Option<Time> {
        let at = |l: &Lease6, s: u32| secs(s).map(|d| l.acquired + d);
        let min = |a: Option<Time>, b: Option<Time>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let phase = match &self.phase {
            Phase::Idle | Phase::Stopped => None,
            Phase::Soliciting { ex, .. }
            | Phase::Requesting { ex, .. }
            | Phase::Declining { ex, .. }
            | Phase::Informing { ex, .. } => Some(ex.at),
            Phase::Bound { lease } if lease.address.is_none() => at(lease, lease.t1),
            Phase::Bound { lease } => min(at(lease, lease.t1), at(lease, lease.valid)),
            Phase::Renewing { ex, lease } => min(Some(ex.at), min(at(lease, lease.t2), at(lease, lease.valid))),
            Phase::Rebinding { ex, lease } => min(Some(ex.at), at(lease, lease.valid)),
        };
        min(phase, self.timeout_at())
    }

    fn timeout_at(&self) -> Option<Time> {
        if self.bound_once || matches!(self.phase, Phase::Stopped | Phase::Idle) {
            return None;
        }
        Some(self.started? + self.cfg.timeout?)
    }

    pub fn handle(&mut self, input: Input6<'_>, now: Time) -> Vec<Action6> {
        let mut out = Vec::new();
        match input {
            Input6::Start if matches!(self.phase, Phase::Idle) => {
                self.started = Some(now);
                if self.cfg.stateless {
                    self.inform(None, now, &mut out);
                } else {
                    self.solicit(now, &mut out);
                }
            }
            Input6::Start => {}
            Input6::Stop { release } => self.stop(release, now, &mut out),
            Input6::Decline { address } => self.decline(address, now, &mut out),
            Input6::Timer => self.on_timer(now, &mut out),
            Input6::Packet(payload) => self.on_packet(payload, now, &mut out),
        }
        out
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*, as in machine.rs.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// RAND of RFC 8415 §15 in thousandths: uniform in [-100, 100], or in
    /// [1, 100] when `positive`.
    fn rand(&mut self, positive: bool) -> i64 {
        let r = ((self.next_rand() >> 33) % 201) as i64;
        if positive { r % 100 + 1 } else { r - 100 }
    }

    /// `base + RAND * base` milliseconds.
    fn jitter(&mut self, base: u64, positive: bool) -> Duration {
        let b = base as i64;
        Duration::from_millis((b + b * self.rand(positive) / 1000).max(1) as u64)
    }

    /// A new exchange: RT = IRT + RAND*IRT (RFC 8415 §15); the first
    /// Solicit's RAND is strictly positive (§18.2.1).
    fn exchange(&mut self, p: Rt, now: Time, positive: bool) -> Exchange {
        let xid = (self.next_rand() >> 40) as u32 & 0x00ff_ffff;
        let rt = self.jitter(p.irt, positive);
        Exchange { xid, start: now, at: now + rt, rt, sent: 1 }
    }

    /// The next retransmission: RT = 2*RTprev + RAND*RTprev, and
    /// MRT + RAND*MRT past MRT.
    fn backoff(&mut self, p: Rt, ex: Exchange, now: Time) -> Exchange {
        let prev = ex.rt.as_millis() as i64;
        let mut rt = Duration::from_millis((2 * prev + prev * self.rand(false) / 1000).max(1) as u64);
        if rt.as_millis() as u64 > p.mrt {
            rt = self.jitter(p.mrt, false);
        }
        Exchange { at: now + rt, rt, sent: ex.sent + 1, ..ex }
    }

    fn send(&self, what: &Out6<'_>, ex: &Exchange, now: Time, out: &mut Vec<Action6>) {
        let elapsed = u16::try_from(now.saturating_sub(ex.start).as_millis() / 10).unwrap_or(u16::MAX);
        let payload = packet6::build(&self.cfg.params, what, ex.xid, elapsed);
        if !payload.is_empty() {
            out.push(Action6::Send { payload, what: what.name() });
        }
    }

    fn solicit(&mut self, now: Time, out: &mut Vec<Action6>) {
        let ex = self.exchange(SOL, now, true);
        self.send(&Out6::Solicit, &ex, now, out);
        self.phase = Phase::Soliciting { ex, best: None };
    }

    fn request(&mut self, server: Vec<u8>, address: Ipv6Addr, now: Time, out: &mut Vec<Action6>) {
        let ex = self.exchange(REQ, now, false);
        self.send(&Out6::Request { server: &server, address }, &ex, now, out);
        self.phase = Phase::Requesting { ex, server, address };
    }

    fn inform(&mut self, held: Option<Box<Lease6>>, now: Time, out: &mut Vec<Action6>) {
        let ex = self.exchange(INF, now, false);
        self.send(&Out6::InformationRequest, &ex, now, out);
        self.phase = Phase::Informing { ex, held };
    }

    fn stop(&mut self, release: bool, now: Time, out: &mut Vec<Action6>) {
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        // Sent once, as the v4 client sends its DHCPRELEASE: the server
        // reclaims an address that is not released when its lifetime ends.
        if release
            && let Some(lease) = self.lease().cloned()
            && let Some(address) = lease.address
        {
            let ex = self.exchange(REQ, now, false);
            self.send(&Out6::Release { server: &lease.server_id, address }, &ex, now, out);
            out.push(Action6::Event { kind: EventKind::Release, lease: Some(lease) });
        }
        self.phase = Phase::Stopped;
        out.push(Action6::Finished);
    }

    /// RFC 8415 §18.2.8: the held address is in use by another host; the
    /// server hears so (it will not give it out again for a while), and the
    /// client solicits anew. Another address than the lease's is no news.
    fn decline(&mut self, address: Ipv6Addr, now: Time, out: &mut Vec<Action6>) {
        let Some(lease) = self.lease().filter(|l| l.address == Some(address)).cloned() else {
            debug!(%address, "asked to decline an address not held; ignored");
            return;
        };
        warn!(%address, "the address is in use on the link; declining it");
        let ex = self.exchange(DEC, now, false);
        let server = lease.server_id;
        self.send(&Out6::Decline { server: &server, address }, &ex, now, out);
        self.phase = Phase::Declining { ex, server, address };
    }

    fn on_timer(&mut self, now: Time, out: &mut Vec<Action6>) {
        if let Some(at) = self.timeout_at()
            && now >= at
        {
            self.phase = Phase::Stopped;
            out.push(Action6::Event { kind: EventKind::Timeout, lease: None });
            out.push(Action6::Finished);
            return;
        }
        let passed = |l: &Lease6, s: u32| secs(s).is_some_and(|d| now >= l.acquired + d);
        match self.phase.clone() {
            Phase::Idle | Phase::Stopped => {}
            Phase::Soliciting { ex, .. }
            | Phase::Requesting { ex, .. }
            | Phase::Declining { ex, .. }
            | Phase::Informing { ex, .. }
                if now < ex.at => {}
            Phase::Soliciting { ex, best } => match best {
                // The first RT is over: the best Advertise wins (§18.2.1).
                Some((_, server, address)) => self.request(server, address, now, out),
                None => {
                    let ex = self.backoff(SOL, ex, now);
                    self.send(&Out6::Solicit, &ex, now, out);
                    self.phase = Phase::Soliciting { ex, best: None };
                }
            },
            Phase::Requesting { ex, server, address } => {
                if ex.sent >= REQ.mrc {
                    debug!("no Reply to {} Requests, soliciting again", REQ.mrc);
                    self.solicit(now, out);
                } else {
                    let ex = self.backoff(REQ, ex, now);
                    self.send(&Out6::Request { server: &server, address }, &ex, now, out);
                    self.phase = Phase::Requesting { ex, server, address };
                }
            }
            Phase::Declining { ex, server, address } => {
                if ex.sent >= DEC.mrc {
                    debug!("no Reply to {} Declines, soliciting", DEC.mrc);
                    self.solicit(now, out);
                } else {
                    let ex = self.backoff(DEC, ex, now);
                    self.send(&Out6::Decline { server: &server, address }, &ex, now, out);
                    self.phase = Phase::Declining { ex, server, address };
                }
            }
            Phase::Informing { ex, held } => {
                let ex = self.backoff(INF, ex, now);
                self.send(&Out6::InformationRequest, &ex, now, out);
                self.phase = Phase::Informing { ex, held };
            }
            Phase::Bound { lease } if lease.address.is_none() => {
                if passed(&lease, lease.t1) {
                    self.inform(Some(lease), now, out);
                }
            }
            Phase::Bound { lease } | Phase::Renewing { lease, .. } | Phase::Rebinding { lease, .. }
                if passed(&lease, lease.valid) =>
            {
                out.push(Action6::Event { kind: EventKind::Expire, lease: Some(*lease) });
                self.solicit(now, out);
            }
            Phase::Bound { lease } | Phase::Renewing { lease, .. } if passed(&lease, lease.t2) => {
                let ex = self.exchange(REB, now, false);
                if let Some(address) = lease.address {
                    self.send(&Out6::Rebind { address }, &ex, now, out);
                }
                out.push(Action6::Event { kind: EventKind::Rebind, lease: Some((*lease).clone()) });
                self.phase = Phase::Rebinding { ex, lease };
            }
            Phase::Bound { lease } => {
                if passed(&lease, lease.t1)
                    && let Some(address) = lease.address
                {
                    let ex = self.exchange(REN, now, false);
                    self.send(&Out6::Renew { server: &lease.server_id, address }, &ex, now, out);
                    self.phase = Phase::Renewing { ex, lease };
                }
            }
            Phase::Renewing { ex, lease } if now >= ex.at => {
                let ex = self.backoff(REN, ex, now);
                if let Some(address) = lease.address {
                    self.send(&Out6::Renew { server: &lease.server_id, address }, &ex, now, out);
                }
                self.phase = Phase::Renewing { ex, lease };
            }
            Phase::Rebinding { ex, lease } if now >= ex.at => {
                let ex = self.backoff(REB, ex, now);
                if let Some(address) = lease.address {
                    self.send(&Out6::Rebind { address }, &ex, now, out);
                }
                self.phase = Phase::Rebinding { ex, lease };
            }
            Phase::Renewing { .. } | Phase::Rebinding { .. } => {}
        }
    }

    fn on_packet(&mut self, payload: &[u8], now: Time, out: &mut Vec<Action6>) {
        let xid = match &self.phase {
            Phase::Soliciting { ex, .. }
            | Phase::Requesting { ex, .. }
            | Phase::Renewing { ex, .. }
            | Phase::Rebinding { ex, .. }
            | Phase::Declining { ex, .. }
            | Phase::Informing { ex, .. } => ex.xid,
            _ => return,
        };
        let r = match packet6::parse_reply(payload, self.cfg.params.iaid) {
            Ok(r) => r,
            Err(e) => {
                debug!("ignoring a packet: {e:?}");
                return;
            }
        };
        // RFC 8415 §16.3, §16.10: ours (transaction id and Client
        // Identifier) and from a server that says who it is.
        if r.xid != xid || r.client_id.as_deref() != Some(&self.cfg.params.duid[..]) {
            return;
        }
        let Some(server) = r.server_id.clone() else {
            debug!("ignoring a {:?} without Server Identifier", r.kind);
            return;
        };
        // Escaped by packet6 already.
        for d in &r.dropped {
            warn!("dropped a value from the DHCPv6 server: {d}");
        }
        match (self.phase.clone(), r.kind) {
            (Phase::Soliciting { .. }, MessageType::Reply) if r.rapid_commit => {
                if let Some(lease) = self.managed_lease(&r, server, now) {
                    self.bind(lease, EventKind::Bound, out);
                }
            }
            (Phase::Soliciting { ex, best }, MessageType::Advertise) => {
                let offered = r.ia.as_ref().filter(|ia| ia.status == STATUS_SUCCESS).and_then(|ia| ia.address);
                let (true, Some(a)) = (r.status == STATUS_SUCCESS, offered) else {
                    debug!(
                        status = status_name(r.ia.as_ref().map_or(r.status, |ia| ia.status)),
                        "ignoring an Advertise without address"
                    );
                    return;
                };
                // Preference 255, or an Advertise after the first RT: take it now.
                if r.preference == 255 || ex.sent > 1 {
                    self.request(server, a.address, now, out);
                } else if best.as_ref().is_none_or(|(p, _, _)| r.preference > *p) {
                    self.phase = Phase::Soliciting { ex, best: Some((r.preference, server, a.address)) };
                }
            }
            (Phase::Requesting { server: chosen, .. }, MessageType::Reply) if chosen == server => {
                match self.managed_lease(&r, server, now) {
                    Some(lease) => self.bind(lease, EventKind::Bound, out),
                    None => {
                        let status = r.ia.as_ref().map_or(r.status, |ia| ia.status);
                        warn!(status = status_name(status), "the server gave no address; soliciting again");
                        self.solicit(now, out);
                    }
                }
            }
            (Phase::Renewing { lease: old, .. } | Phase::Rebinding { lease: old, .. }, MessageType::Reply) => {
                match self.managed_lease(&r, server.clone(), now) {
                    Some(lease) => {
                        let kind = if lease.address == old.address { EventKind::Renew } else { EventKind::Bound };
                        self.bind(lease, kind, out);
                    }
                    None => {
                        // RFC 8415 §18.2.10.1: the server that lost the
                        // binding (dnsmasq restarted without its lease file)
                        // is asked for it again; a wrong link starts over;
                        // anything else is retried until T2 or the valid
                        // lifetime.
                        let status =
                            r.ia.as_ref().map(|ia| ia.status).filter(|s| *s != STATUS_SUCCESS).unwrap_or(r.status);
                        match (status, old.address) {
                            (STATUS_NO_BINDING, Some(address)) => {
                                warn!("the server lost our binding; requesting {address} again");
                                self.request(server, address, now, out);
                            }
                            (STATUS_NOT_ON_LINK, _) => {
                                warn!("the address is not on this link; soliciting again");
                                self.solicit(now, out);
                            }
                            _ => debug!(status = status_name(status), "a Reply without our address; still trying"),
                        }
                    }
                }
            }
            // §18.2.10.1: the exchange is complete whatever the status.
            (Phase::Declining { server: told, .. }, MessageType::Reply) if told == server => self.solicit(now, out),
            (Phase::Informing { held, .. }, MessageType::Reply) => {
                let refresh = r.refresh.unwrap_or(IRT_DEFAULT).max(IRT_MINIMUM);
                let lease = Lease6 {
                    address: None,
                    preferred: 0,
                    valid: 0,
                    t1: refresh,
                    t2: 0,
                    dns: r.dns,
                    search: r.search,
                    server_id: server,
                    acquired: now,
                };
                self.bind(lease, if held.is_some() { EventKind::Renew } else { EventKind::Bound }, out);
            }
            _ => {}
        }
    }

    /// The lease of a Reply: our IA_NA's address with T1/T2 (0: 0.5 and
    /// 0.8 of the preferred lifetime, RFC 8415 §18.2.4), or `None` when the
    /// server gave none (status NoAddrsAvail, NotOnLink, …).
    fn managed_lease(&self, r: &Reply6, server: Vec<u8>, now: Time) -> Option<Lease6> {
        let ia = r.ia.as_ref().filter(|ia| ia.status == STATUS_SUCCESS && r.status == STATUS_SUCCESS)?;
        let a = ia.address?;
        // §21.4: T1 > T2 (both set) makes the IA_NA invalid.
        if ia.t1 > 0 && ia.t2 > 0 && ia.t1 > ia.t2 {
            return None;
        }
        let t2 = if ia.t2 == 0 { tenths(a.preferred, 8).max(ia.t1) } else { ia.t2 };
        // A chosen T1 never comes after the server's T2.
        let t1 = if ia.t1 == 0 { tenths(a.preferred, 5).min(t2) } else { ia.t1 };
        Some(Lease6 {
            address: Some(a.address),
            preferred: a.preferred,
            valid: a.valid,
            t1,
            t2,
            dns: r.dns.clone(),
            search: r.search.clone(),
            server_id: server,
            acquired: now,
        })
    }

    fn bind(&mut self, lease: Lease6, kind: EventKind, out: &mut Vec<Action6>) {
        self.bound_once = true;
        out.push(Action6::Event { kind, lease: Some(lease.clone()) });
        self.phase = Phase::Bound { lease: Box::new(lease) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet6::fixtures::*;
    use dhcproto::v6::{DhcpOption, Message, OptionCode, Status, StatusCode};
    use dhcproto::{Decodable, Decoder};

    fn cfg(stateless: bool) -> Config6 {
        Config6 { params: params(), stateless, timeout: Some(Duration::from_secs(45)) }
    }

    fn sent(acts: &[Action6]) -> Vec<Message> {
        acts.iter()
            .filter_map(|a| match a {
                Action6::Send { payload, .. } => Some(Message::decode(&mut Decoder::new(payload)).unwrap()),
                _ => None,
            })
            .collect()
    }

    fn events(acts: &[Action6]) -> Vec<(EventKind, Option<Lease6>)> {
        acts.iter()
            .filter_map(|a| match a {
                Action6::Event { kind, lease } => Some((*kind, lease.clone())),
                _ => None,
            })
            .collect()
    }

    fn start(m: &mut Machine6) -> Message {
        let s = sent(&m.handle(Input6::Start, Duration::ZERO));
        assert_eq!(s.len(), 1);
        s[0].clone()
    }

    fn feed(m: &mut Machine6, msg: &Message, now: Time) -> Vec<Action6> {
        m.handle(Input6::Packet(&bytes(msg)), now)
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// A machine bound to ADDR at 0 s with T1 100, T2 160, preferred 200, valid 300.
    fn bound() -> (Machine6, u32) {
        let mut m = Machine6::new(cfg(false), 7);
        let sol = start(&mut m);
        let mut r = reply(MessageType::Reply, sol.xid_num(), Some((ADDR, 200, 300)), (100, 160));
        r.opts_mut().insert(DhcpOption::RapidCommit);
        let ev = events(&feed(&mut m, &r, Duration::ZERO));
        assert_eq!(ev[0].0, EventKind::Bound);
        (m, sol.xid_num())
    }

    #[test]
    fn solicit_contents() {
        let mut m = Machine6::new(cfg(false), 1);
        let sol = start(&mut m);
        assert_eq!(sol.msg_type(), MessageType::Solicit);
        assert_eq!(sol.opts().get(OptionCode::ClientId), Some(&DhcpOption::ClientId(DUID.to_vec())));
        assert_eq!(sol.opts().get(OptionCode::ElapsedTime), Some(&DhcpOption::ElapsedTime(0)));
        assert!(sol.opts().get(OptionCode::RapidCommit).is_some());
        assert!(matches!(sol.opts().get(OptionCode::IANA), Some(DhcpOption::IANA(ia)) if ia.id == IAID));
        assert_eq!(m.state_name(), "soliciting");
        // The retransmission says how long the exchange has been going.
        let at = m.deadline().unwrap();
        let again = sent(&m.handle(Input6::Timer, at));
        assert_eq!(again[0].xid(), sol.xid(), "same transaction");
        let Some(DhcpOption::ElapsedTime(cs)) = again[0].opts().get(OptionCode::ElapsedTime) else { panic!() };
        assert_eq!(u128::from(*cs), at.as_millis() / 10);
    }

    #[test]
    fn rapid_commit_reply_binds_with_default_t1_t2() {
        let mut m = Machine6::new(cfg(false), 2);
        let sol = start(&mut m);
        // Without Rapid Commit a Reply to a Solicit is not taken.
        let r = reply(MessageType::Reply, sol.xid_num(), Some((ADDR, 1000, 2000)), (0, 0));
        assert!(feed(&mut m, &r, S(0)).is_empty());
        let mut r = r;
        r.opts_mut().insert(DhcpOption::RapidCommit);
        let ev = events(&feed(&mut m, &r, S(0)));
        let (kind, Some(l)) = &ev[0] else { panic!("{ev:?}") };
        assert_eq!(*kind, EventKind::Bound);
        assert_eq!(l.address, Some(ADDR));
        assert_eq!((l.preferred, l.valid, l.t1, l.t2), (1000, 2000, 500, 800));
        assert_eq!(l.dns, [DNS]);
        assert_eq!(l.search, ["lab.test"]);
        assert_eq!(l.server_id, SERVER_DUID);
        assert_eq!(m.state_name(), "bound");
        assert_eq!(m.deadline(), Some(S(500)), "T1, no more timeout");
    }

    #[test]
    fn t1_t2_defaults_and_checks() {
        let lease = |pv: (u32, u32), t: (u32, u32)| {
            let mut m = Machine6::new(cfg(false), 13);
            let sol = start(&mut m);
            let mut r = reply(MessageType::Reply, sol.xid_num(), Some((ADDR, pv.0, pv.1)), t);
            r.opts_mut().insert(DhcpOption::RapidCommit);
            events(&feed(&mut m, &r, S(0))).first().and_then(|e| e.1.clone()).map(|l| (l.t1, l.t2))
        };
        assert_eq!(lease((1000, 2000), (0, 0)), Some((500, 800)));
        assert_eq!(lease((1000, 2000), (300, 0)), Some((300, 800)));
        assert_eq!(lease((1000, 2000), (0, 200)), Some((200, 200)), "T1 not after the server's T2");
        assert_eq!(lease((1000, 2000), (900, 0)), Some((900, 900)));
        assert_eq!(lease((INFINITE, INFINITE), (0, 0)), Some((INFINITE, INFINITE)));
        assert_eq!(lease((1000, 2000), (700, 600)), None, "T1 > T2: the IA_NA is invalid");
        assert_eq!(lease((3000, 2000), (0, 0)), None, "preferred > valid: the address is ignored");
    }

    #[test]
    fn advertise_255_requests_at_once() {
        let mut m = Machine6::new(cfg(false), 3);
        let sol = start(&mut m);
        let mut adv = reply(MessageType::Advertise, sol.xid_num(), Some((ADDR, 1000, 2000)), (0, 0));
        adv.opts_mut().insert(DhcpOption::Preference(255));
        let req = sent(&feed(&mut m, &adv, Duration::from_millis(50)));
        assert_eq!(req[0].msg_type(), MessageType::Request);
        assert_ne!(req[0].xid(), sol.xid(), "a new transaction");
        assert_eq!(req[0].opts().get(OptionCode::ServerId), Some(&DhcpOption::ServerId(SERVER_DUID.to_vec())));
        let Some(DhcpOption::IANA(ia)) = req[0].opts().get(OptionCode::IANA) else { panic!() };
        assert!(matches!(ia.opts.get(OptionCode::IAAddr), Some(DhcpOption::IAAddr(a)) if a.addr == ADDR));
        assert_eq!(m.state_name(), "requesting");
        // The Reply from another server is not ours; from the chosen one it binds.
        let mut other = reply(MessageType::Reply, req[0].xid_num(), Some((ADDR, 1000, 2000)), (0, 0));
        other.opts_mut().remove(OptionCode::ServerId);
        other.opts_mut().insert(DhcpOption::ServerId(vec![0, 3, 9, 9]));
        assert!(feed(&mut m, &other, S(1)).is_empty());
        let ok = reply(MessageType::Reply, req[0].xid_num(), Some((ADDR, 1000, 2000)), (400, 700));
        let ev = events(&feed(&mut m, &ok, S(1)));
        assert_eq!(ev[0].0, EventKind::Bound);
        assert_eq!(ev[0].1.as_ref().map(|l| (l.t1, l.t2)), Some((400, 700)));
    }

    #[test]
    fn lower_preference_waits_for_the_first_rt_and_takes_the_best() {
        let mut m = Machine6::new(cfg(false), 4);
        let sol = start(&mut m);
        let first_rt = m.deadline().unwrap();
        let mut a5 = reply(MessageType::Advertise, sol.xid_num(), Some((ADDR, 1000, 2000)), (0, 0));
        a5.opts_mut().insert(DhcpOption::Preference(5));
        assert!(feed(&mut m, &a5, Duration::from_millis(10)).is_empty());
        let better = Ipv6Addr::new(0xfd4c, 0x6162, 0, 0, 0, 0, 0, 0x199);
        let mut a9 = reply(MessageType::Advertise, sol.xid_num(), Some((better, 1000, 2000)), (0, 0));
        a9.opts_mut().insert(DhcpOption::Preference(9));
        assert!(feed(&mut m, &a9, Duration::from_millis(20)).is_empty());
        assert!(feed(&mut m, &a5, Duration::from_millis(30)).is_empty());
        assert_eq!(m.state_name(), "soliciting");
        assert_eq!(m.deadline(), Some(first_rt));
        let req = sent(&m.handle(Input6::Timer, first_rt));
        assert_eq!(req[0].msg_type(), MessageType::Request);
        let Some(DhcpOption::IANA(ia)) = req[0].opts().get(OptionCode::IANA) else { panic!() };
        assert!(matches!(ia.opts.get(OptionCode::IAAddr), Some(DhcpOption::IAAddr(a)) if a.addr == better));
    }

    #[test]
    fn no_addrs_avail_is_ignored_then_sends_back_to_solicit() {
        let mut m = Machine6::new(cfg(false), 5);
        let sol = start(&mut m);
        let mut none = reply(MessageType::Advertise, sol.xid_num(), None, (0, 0));
        none.opts_mut().insert(DhcpOption::Preference(255));
        assert!(feed(&mut m, &none, S(0)).is_empty());
        let mut top = reply(MessageType::Advertise, sol.xid_num(), Some((ADDR, 10, 20)), (0, 0));
        top.opts_mut().insert(DhcpOption::StatusCode(StatusCode { status: Status::NoAddrsAvail, msg: String::new() }));
        assert!(feed(&mut m, &top, S(0)).is_empty());
        assert_eq!(m.state_name(), "soliciting");
        let mut adv = reply(MessageType::Advertise, sol.xid_num(), Some((ADDR, 1000, 2000)), (0, 0));
        adv.opts_mut().insert(DhcpOption::Preference(255));
        let req = sent(&feed(&mut m, &adv, S(0)));
        let nope = reply(MessageType::Reply, req[0].xid_num(), None, (0, 0));
        let again = sent(&feed(&mut m, &nope, S(1)));
        assert_eq!(again[0].msg_type(), MessageType::Solicit);
        assert_eq!(m.state_name(), "soliciting");
    }

    #[test]
    fn retransmissions_follow_rfc8415() {
        let mut m = Machine6::new(cfg(false), 6);
        m.cfg.timeout = None;
        start(&mut m);
        let mut now = Duration::ZERO;
        let mut prev: Option<Duration> = None;
        for _ in 0..25 {
            let at = m.deadline().unwrap();
            let rt = at - now;
            match prev {
                None => assert!(rt > S(1) && rt <= Duration::from_millis(1100), "{rt:?}"),
                Some(p) => {
                    let doubled = rt >= p * 19 / 10 && rt <= p * 21 / 10 && rt <= S(3600);
                    let capped = rt >= S(3240) && rt <= S(3960);
                    assert!(doubled || capped, "{rt:?} after {p:?}");
                }
            }
            now = at;
            prev = Some(rt);
            assert_eq!(sent(&m.handle(Input6::Timer, now)).len(), 1);
        }
        assert!(prev.unwrap() >= S(3240), "capped near SOL_MAX_RT");

        // Requests: REQ_MAX_RC transmissions, then Solicit.
        let mut m = Machine6::new(cfg(false), 6);
        m.cfg.timeout = None;
        let sol = start(&mut m);
        let mut adv = reply(MessageType::Advertise, sol.xid_num(), Some((ADDR, 1000, 2000)), (0, 0));
        adv.opts_mut().insert(DhcpOption::Preference(255));
        assert_eq!(sent(&feed(&mut m, &adv, S(0)))[0].msg_type(), MessageType::Request);
        for n in 2..=10 {
            let at = m.deadline().unwrap();
            let s = sent(&m.handle(Input6::Timer, at));
            assert_eq!(s[0].msg_type(), MessageType::Request, "transmission {n}");
        }
        let at = m.deadline().unwrap();
        let acts = m.handle(Input6::Timer, at);
        assert_eq!(sent(&acts)[0].msg_type(), MessageType::Solicit, "{acts:?}");
    }

    #[test]
    fn renew_rebind_expire_timeline() {
        let (mut m, _) = bound();
        assert_eq!(m.deadline(), Some(S(100)));
        assert!(m.handle(Input6::Timer, S(99)).is_empty());
        let ren = sent(&m.handle(Input6::Timer, S(100)));
        assert_eq!(ren[0].msg_type(), MessageType::Renew);
        assert!(ren[0].opts().get(OptionCode::ServerId).is_some());
        assert_eq!(m.state_name(), "renewing");
        // REN_TIMEOUT 10 s ± 10 %.
        let at = m.deadline().unwrap();
        assert!(at >= S(109) && at <= S(111), "{at:?}");
        assert_eq!(sent(&m.handle(Input6::Timer, at))[0].msg_type(), MessageType::Renew);
        // T2: Rebind, event rebind with the lease.
        let mut now = at;
        loop {
            let at = m.deadline().unwrap();
            now = at.max(now);
            let acts = m.handle(Input6::Timer, now);
            if m.state_name() == "rebinding" {
                assert_eq!(now, S(160));
                assert_eq!(sent(&acts)[0].msg_type(), MessageType::Rebind);
                assert!(sent(&acts)[0].opts().get(OptionCode::ServerId).is_none());
                assert_eq!(events(&acts)[0].0, EventKind::Rebind);
                break;
            }
        }
        // Valid lifetime over: expire and Solicit.
        loop {
            let at = m.deadline().unwrap();
            let acts = m.handle(Input6::Timer, at);
            if !events(&acts).is_empty() {
                assert_eq!(at, S(300));
                assert_eq!(events(&acts)[0].0, EventKind::Expire);
                assert_eq!(sent(&acts)[0].msg_type(), MessageType::Solicit);
                break;
            }
            assert_eq!(sent(&acts)[0].msg_type(), MessageType::Rebind);
        }
        assert_eq!(m.state_name(), "soliciting");
        assert_eq!(m.deadline().map(|d| d < S(302)), Some(true), "no timeout after the first lease");
    }

    #[test]
    fn renew_reply_renews_or_rebinds_to_a_new_address() {
        let (mut m, _) = bound();
        let ren = sent(&m.handle(Input6::Timer, S(100)));
        let r = reply(MessageType::Reply, ren[0].xid_num(), Some((ADDR, 400, 500)), (0, 0));
        let ev = events(&feed(&mut m, &r, S(101)));
        assert_eq!(ev[0].0, EventKind::Renew);
        assert_eq!(ev[0].1.as_ref().map(|l| (l.valid, l.t1, l.acquired)), Some((500, 200, S(101))));
        assert_eq!(m.deadline(), Some(S(301)));
        let ren = sent(&m.handle(Input6::Timer, S(301)));
        let other = Ipv6Addr::new(0xfd4c, 0x6162, 0, 0, 0, 0, 0, 0x151);
        let r = reply(MessageType::Reply, ren[0].xid_num(), Some((other, 400, 500)), (0, 0));
        let ev = events(&feed(&mut m, &r, S(302)));
        assert_eq!(ev[0].0, EventKind::Bound);
        assert_eq!(m.lease().and_then(|l| l.address), Some(other));
    }

    #[test]
    fn a_lost_binding_is_requested_again_and_a_wrong_link_solicits() {
        let status = |m: &mut Machine6, code: Status, at: u64| {
            let ren = sent(&m.handle(Input6::Timer, m.deadline().unwrap()));
            let mut r = reply(MessageType::Reply, ren[0].xid_num(), None, (0, 0));
            // the status for the whole message (the IA's own is read first)
            r.opts_mut().remove(OptionCode::IANA);
            r.opts_mut().insert(DhcpOption::StatusCode(StatusCode { status: code, msg: String::new() }));
            sent(&feed(m, &r, S(at)))
        };
        let (mut m, _) = bound();
        let req = status(&mut m, Status::NoBinding, 101);
        assert_eq!(req[0].msg_type(), MessageType::Request, "RFC 8415 §18.2.10.1");
        assert_eq!(req[0].opts().get(OptionCode::ServerId), Some(&DhcpOption::ServerId(SERVER_DUID.to_vec())));
        let Some(DhcpOption::IANA(ia)) = req[0].opts().get(OptionCode::IANA) else { panic!() };
        assert!(matches!(ia.opts.get(OptionCode::IAAddr), Some(DhcpOption::IAAddr(a)) if a.addr == ADDR));
        assert_eq!(m.state_name(), "requesting");

        let (mut m, _) = bound();
        let sol = status(&mut m, Status::NotOnLink, 101);
        assert_eq!(sol[0].msg_type(), MessageType::Solicit);

        let (mut m, _) = bound();
        assert!(status(&mut m, Status::UnspecFail, 101).is_empty(), "retried on its schedule");
        assert_eq!(m.state_name(), "renewing");
    }

    #[test]
    fn release_on_stop_true_only() {
        let (mut m, _) = bound();
        let acts = m.handle(Input6::Stop { release: true }, S(5));
        let rel = sent(&acts);
        assert_eq!(rel[0].msg_type(), MessageType::Release);
        assert_eq!(rel[0].opts().get(OptionCode::ServerId), Some(&DhcpOption::ServerId(SERVER_DUID.to_vec())));
        assert_eq!(events(&acts)[0].0, EventKind::Release);
        assert_eq!(acts.last(), Some(&Action6::Finished));
        assert_eq!(m.deadline(), None);

        let (mut m, _) = bound();
        let acts = m.handle(Input6::Stop { release: false }, S(5));
        assert_eq!(acts, [Action6::Finished]);
        // Nothing to release without a lease.
        let mut m = Machine6::new(cfg(false), 9);
        start(&mut m);
        assert_eq!(m.handle(Input6::Stop { release: true }, S(0)), [Action6::Finished]);
    }

    #[test]
    fn a_duplicate_address_is_declined_then_solicited_anew() {
        let (mut m, _) = bound();
        let other: Ipv6Addr = "fd00::99".parse().unwrap();
        assert!(m.handle(Input6::Decline { address: other }, S(1)).is_empty(), "not ours: no news");
        assert_eq!(m.state_name(), "bound");
        let dec = sent(&m.handle(Input6::Decline { address: ADDR }, S(1)));
        assert_eq!(dec[0].msg_type(), MessageType::Decline);
        assert_eq!(dec[0].opts().get(OptionCode::ServerId), Some(&DhcpOption::ServerId(SERVER_DUID.to_vec())));
        let Some(DhcpOption::IANA(ia)) = dec[0].opts().get(OptionCode::IANA) else { panic!("no IA_NA") };
        assert!(matches!(ia.opts.get(OptionCode::IAAddr), Some(DhcpOption::IAAddr(a)) if a.addr == ADDR));
        assert!(dec[0].opts().get(OptionCode::ORO).is_none(), "no Option Request in a Decline");
        assert_eq!(m.state_name(), "declining");
        assert!(m.lease().is_none(), "the address is not ours any more");
        // Retransmitted in the same transaction; the server's Reply ends it.
        let at = m.deadline().unwrap();
        assert!(at >= S(1) + Duration::from_millis(900) && at <= S(1) + Duration::from_millis(1100), "{at:?}");
        let again = sent(&m.handle(Input6::Timer, at));
        assert_eq!((again[0].msg_type(), again[0].xid()), (MessageType::Decline, dec[0].xid()));
        let r = reply(MessageType::Reply, dec[0].xid_num(), None, (0, 0));
        let sol = sent(&feed(&mut m, &r, at));
        assert_eq!(sol[0].msg_type(), MessageType::Solicit);
        assert_eq!(m.state_name(), "soliciting");
    }

    #[test]
    fn unanswered_declines_end_after_four() {
        let (mut m, _) = bound();
        let mut declines = sent(&m.handle(Input6::Decline { address: ADDR }, S(1))).len();
        loop {
            let at = m.deadline().unwrap();
            let s = sent(&m.handle(Input6::Timer, at));
            if s[0].msg_type() == MessageType::Solicit {
                break;
            }
            assert_eq!(s[0].msg_type(), MessageType::Decline);
            declines += 1;
        }
        assert_eq!(declines, 4, "DEC_MAX_RC");
    }

    #[test]
    fn stateless_information_request_and_refresh() {
        let mut m = Machine6::new(cfg(true), 10);
        let inf = start(&mut m);
        assert_eq!(inf.msg_type(), MessageType::InformationRequest);
        assert!(inf.opts().get(OptionCode::IANA).is_none());
        assert_eq!(m.state_name(), "informing");
        let mut r = reply(MessageType::Reply, inf.xid_num(), None, (0, 0));
        r.opts_mut().remove(OptionCode::IANA);
        let ev = events(&feed(&mut m, &r, S(1)));
        let (EventKind::Bound, Some(l)) = &ev[0] else { panic!("{ev:?}") };
        assert_eq!((l.address, l.t1), (None, IRT_DEFAULT));
        assert_eq!(l.dns, [DNS]);
        assert_eq!(m.deadline(), Some(S(1 + 86_400)));
        // A short refresh time is raised to 600 s.
        let inf = sent(&m.handle(Input6::Timer, S(1 + 86_400)));
        assert_eq!(inf[0].msg_type(), MessageType::InformationRequest);
        assert!(m.lease().is_some(), "the old information stays until the new");
        r.set_xid_num(inf[0].xid_num());
        r.opts_mut()
            .insert(DhcpOption::Unknown(dhcproto::v6::UnknownOption::new(OptionCode::from(32), vec![0, 0, 0, 5])));
        let ev = events(&feed(&mut m, &r, S(86_402)));
        assert_eq!(ev[0].0, EventKind::Renew);
        assert_eq!(ev[0].1.as_ref().map(|l| l.t1), Some(600));
        // No release in stateless mode.
        assert_eq!(m.handle(Input6::Stop { release: true }, S(86_403)), [Action6::Finished]);
    }

    #[test]
    fn foreign_and_garbage_packets_are_ignored() {
        let mut m = Machine6::new(cfg(false), 11);
        let sol = start(&mut m);
        let mut good = reply(MessageType::Reply, sol.xid_num(), Some((ADDR, 1000, 2000)), (0, 0));
        good.opts_mut().insert(DhcpOption::RapidCommit);
        let mut wrong_xid = good.clone();
        wrong_xid.set_xid_num(sol.xid_num() ^ 1);
        assert!(feed(&mut m, &wrong_xid, S(0)).is_empty());
        let mut wrong_client = good.clone();
        wrong_client.opts_mut().remove(OptionCode::ClientId);
        assert!(feed(&mut m, &wrong_client, S(0)).is_empty());
        wrong_client.opts_mut().insert(DhcpOption::ClientId(vec![0, 4, 9]));
        assert!(feed(&mut m, &wrong_client, S(0)).is_empty());
        let mut no_server = good.clone();
        no_server.opts_mut().remove(OptionCode::ServerId);
        assert!(feed(&mut m, &no_server, S(0)).is_empty());
        for g in [&b""[..], &[2], &[7, 1, 2, 3, 0, 1, 0, 200], &[0xff; 64]] {
            assert!(m.handle(Input6::Packet(g), S(0)).is_empty());
        }
        assert_eq!(m.state_name(), "soliciting");
        assert_eq!(events(&feed(&mut m, &good, S(0)))[0].0, EventKind::Bound);
    }

    #[test]
    fn timeout_without_a_first_lease() {
        let mut m = Machine6::new(Config6 { timeout: Some(S(5)), ..cfg(false) }, 12);
        start(&mut m);
        loop {
            let now = m.deadline().unwrap();
            let acts = m.handle(Input6::Timer, now);
            if acts.contains(&Action6::Finished) {
                assert_eq!(events(&acts)[0].0, EventKind::Timeout);
                assert_eq!(now, S(5));
                break;
            }
        }
    }
}
