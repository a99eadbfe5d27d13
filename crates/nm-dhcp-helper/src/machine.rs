//! The DHCPv4 client state machine (RFC 2131 §4.4), a pure function of
//! (state, input, now): no sockets, no clock, no bus. The driver feeds it
//! packets, timer expiries and commands and carries out the [`Action`]s it
//! returns; [`Machine::deadline`] says when to call it next. Randomness
//! (transaction ids, jitter) comes from a seeded generator, so a test with
//! a virtual clock sees exactly what the daemon would.
//!
//! ```text
//!  Start ─┬─ saved lease ─▶ INIT-REBOOT ──ACK──▶ BOUND ──T1──▶ RENEWING ──T2──▶ REBINDING
//!         │                  │ NAK/no answer       ▲  ▲  ACK      │      ACK      │
//!         └──────────────▶ SELECTING ─OFFER─▶ REQUESTING          └──────────────┘
//!                            ▲   └─ACK+Rapid Commit──┘│            expiry │ NAK
//!                            └────────── NAK ─────────┴───────────────────┘
//! ```
//!
//! With address conflict detection on (`acd`), an ACK that brings a new
//! address goes through CHECKING first (RFC 5227 probes, [`Sockets::Arp`]):
//! silence until the end of the timeout binds as above; another host
//! answering for the address makes the client DECLINE it, wait 10 s and
//! discover again.

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::MessageType;
use tracing::{debug, warn};

use crate::arp;
use crate::lease::Lease;
use crate::packet::{self, ClientParams, Outgoing, Reply};

/// The machine's clock: time since an arbitrary start (the daemon's
/// monotonic clock, or a test's virtual one).
pub type Time = Duration;

/// First retransmission interval and the cap (RFC 2131 §4.1: 4 s doubling
/// to 64 s, each randomised by ±1 s).
const FIRST_RETX: u32 = 4;
const MAX_RETX: u32 = 64;
/// REQUESTs sent in REQUESTING before going back to INIT.
const REQUEST_TRIES: u32 = 4;
/// REQUESTs sent in INIT-REBOOT before discovering (with the old address
/// as a hint): a server that does not know the address stays silent, and
/// the DISCOVER costs one round trip more, not a lease.
const REBOOT_TRIES: u32 = 1;
/// Least wait between retransmissions in RENEWING/REBINDING (RFC 2131 §4.4.5).
const MIN_EXTEND_RETX: Duration = Duration::from_secs(60);
/// Wait after a DECLINE before starting again (RFC 2131 §3.1.5).
const DECLINE_WAIT: Duration = Duration::from_secs(10);
/// ARP probes sent while checking an address, spread evenly over the
/// timeout (RFC 5227's PROBE_NUM; like n-acd, the timing scales with it).
const PROBES: u32 = 3;

/// A transaction's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub params: ClientParams,
    /// Give up (event `timeout`) when no lease came within this time of the
    /// start. Only the first lease is timed: after a lease was lost the
    /// machine retries without end.
    pub timeout: Option<Duration>,
    /// Offers and answers from these servers (address, prefix) are ignored.
    pub reject_servers: Vec<(Ipv4Addr, u8)>,
    pub previous: Option<Previous>,
    /// Address conflict detection (RFC 5227): probe a new address for this
    /// long before taking it (`ipv4.dad-timeout`); `None`: off.
    pub acd: Option<Duration>,
}

/// What the client knows from before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Previous {
    /// An unexpired lease (or the address nm-core had): INIT-REBOOT.
    Reboot(Ipv4Addr),
    /// An expired lease: DISCOVER asking for that address.
    Hint(Ipv4Addr),
}

#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Start,
    /// A UDP payload that arrived on port 68, and its IP source.
    Packet {
        payload: &'a [u8],
        from: Ipv4Addr,
    },
    /// The payload of an ARP frame that arrived on the interface.
    Arp {
        payload: &'a [u8],
    },
    /// The deadline passed.
    Timer,
    Stop {
        release: bool,
    },
}

/// How a message leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Raw packet socket, from 0.0.0.0 to 255.255.255.255 (no address yet).
    RawBroadcast,
    /// The UDP socket bound to the device, to the server.
    UdpUnicast(Ipv4Addr),
    /// The UDP socket bound to the device, to 255.255.255.255.
    UdpBroadcast,
}

/// The `Event` signal's states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Bound,
    Renew,
    Rebind,
    Expire,
    Nak,
    Timeout,
    Fail,
    Release,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Bound => "bound",
            EventKind::Renew => "renew",
            EventKind::Rebind => "rebind",
            EventKind::Expire => "expire",
            EventKind::Nak => "nak",
            EventKind::Timeout => "timeout",
            EventKind::Fail => "fail",
            EventKind::Release => "release",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send {
        payload: Vec<u8>,
        via: Via,
        what: &'static str,
    },
    Event {
        kind: EventKind,
        lease: Option<Lease>,
    },
    /// An ARP packet to broadcast on the link.
    Arp {
        payload: Vec<u8>,
        what: &'static str,
    },
    SaveLease(Lease),
    RemoveLease,
    /// The transaction is over; nothing more will come.
    Finished,
}

/// Which socket the driver keeps open to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sockets {
    None,
    /// Raw AF_PACKET with the port-68 filter: no address yet.
    Packet,
    /// UDP on port 68 bound to the device: the address is ours.
    Udp,
    /// An ARP packet socket: an address is being checked (RFC 5227).
    Arp,
}

#[derive(Debug, Clone, Copy)]
struct Retx {
    at: Time,
    interval: u32,
}

/// Where the client is. In `Checking` it probes for `lease.address` until
/// `until` before binding; `old` is the lease held when a renewal brought
/// another address.
#[derive(Debug, Clone)]
enum Phase {
    Idle,
    Selecting { xid: u32, hint: Option<Ipv4Addr>, retx: Retx },
    Requesting { xid: u32, offer: Box<Lease>, retx: Retx, sent: u32 },
    Rebooting { xid: u32, address: Ipv4Addr, retx: Retx, sent: u32 },
    Bound { lease: Box<Lease> },
    Renewing { lease: Box<Lease>, xid: u32, next: Time },
    Rebinding { lease: Box<Lease>, xid: u32, next: Time },
    Checking { lease: Box<Lease>, old: Option<Box<Lease>>, until: Time, probes: u32, next: Time },
    Waiting { until: Time },
    Stopped,
}

pub struct Machine {
    cfg: Config,
    phase: Phase,
    rng: u64,
    started: Option<Time>,
    /// Start of the current exchange (the `secs` field).
    exchange_start: Time,
    bound_once: bool,
    naks: u32,
}

impl Machine {
    pub fn new(cfg: Config, seed: u64) -> Machine {
        Machine {
            cfg,
            phase: Phase::Idle,
            rng: seed | 1,
            started: None,
            exchange_start: Duration::ZERO,
            bound_once: false,
            naks: 0,
        }
    }

    /// The `State` property.
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Idle | Phase::Waiting { .. } => "init",
            Phase::Selecting { .. } => "selecting",
            Phase::Requesting { .. } => "requesting",
            Phase::Rebooting { .. } => "init-reboot",
            Phase::Bound { .. } => "bound",
            Phase::Renewing { .. } => "renewing",
            Phase::Rebinding { .. } => "rebinding",
            Phase::Checking { .. } => "checking",
            Phase::Stopped => "stopped",
        }
    }

    pub fn sockets(&self) -> Sockets {
        match self.phase {
            Phase::Selecting { .. } | Phase::Requesting { .. } | Phase::Rebooting { .. } => Sockets::Packet,
            Phase::Bound { .. } | Phase::Renewing { .. } | Phase::Rebinding { .. } => Sockets::Udp,
            Phase::Checking { .. } => Sockets::Arp,
            Phase::Idle | Phase::Waiting { .. } | Phase::Stopped => Sockets::None,
        }
    }

    /// The lease the client holds now.
    pub fn lease(&self) -> Option<&Lease> {
        match &self.phase {
            Phase::Bound { lease } | Phase::Renewing { lease, .. } | Phase::Rebinding { lease, .. } => Some(lease),
            Phase::Checking { old, .. } => old.as_deref(),
            _ => None,
        }
    }

    /// When the machine wants [`Input::Timer`].
    pub fn deadline(&self) -> Option<Time> {
        let phase = match &self.phase {
            Phase::Idle | Phase::Stopped => return None,
            Phase::Selecting { retx, .. } | Phase::Requesting { retx, .. } | Phase::Rebooting { retx, .. } => {
                Some(retx.at)
            }
            Phase::Bound { lease } => lease_times(lease).map(|(t1, _, _)| t1),
            Phase::Renewing { lease, next, .. } => lease_times(lease).map(|(_, t2, _)| t2.min(*next)),
            Phase::Rebinding { lease, next, .. } => lease_times(lease).map(|(_, _, exp)| exp.min(*next)),
            Phase::Checking { next, until, .. } => Some((*next).min(*until)),
            Phase::Waiting { until } => Some(*until),
        };
        let timeout = self.timeout_at();
        match (phase, timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn timeout_at(&self) -> Option<Time> {
        if self.bound_once || matches!(self.phase, Phase::Stopped | Phase::Idle) {
            return None;
        }
        Some(self.started? + self.cfg.timeout?)
    }

    pub fn handle(&mut self, input: Input<'_>, now: Time) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Start => {
                if matches!(self.phase, Phase::Idle) {
                    self.started = Some(now);
                    match self.cfg.previous {
                        Some(Previous::Reboot(a)) => self.enter_reboot(a, now, &mut out),
                        Some(Previous::Hint(a)) => self.enter_init(Some(a), now, &mut out),
                        None => self.enter_init(None, now, &mut out),
                    }
                }
            }
            Input::Stop { release } => self.stop(release, now, &mut out),
            Input::Arp { payload } => self.on_arp(payload, now, &mut out),
            Input::Timer => self.on_timer(now, &mut out),
            Input::Packet { payload, from } => self.on_packet(payload, from, now, &mut out),
        }
        out
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: plenty for transaction ids and jitter.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn new_xid(&mut self) -> u32 {
        (self.next_rand() >> 32) as u32
    }

    /// `now + interval` randomised by ±1 s.
    fn retx_after(&mut self, now: Time, interval: u32) -> Retx {
        let jitter = (self.next_rand() % 2001) as i64 - 1000;
        let ms = i64::from(interval) * 1000 + jitter;
        Retx { at: now + Duration::from_millis(ms.max(0) as u64), interval }
    }

    fn next_retx(&mut self, now: Time, prev: Retx) -> Retx {
        self.retx_after(now, (prev.interval * 2).min(MAX_RETX))
    }

    fn secs(&self, now: Time) -> u16 {
        u16::try_from(now.saturating_sub(self.exchange_start).as_secs()).unwrap_or(u16::MAX)
    }

    fn send(&self, what: Outgoing, xid: u32, now: Time, via: Via, out: &mut Vec<Action>) {
        let payload = packet::build(&self.cfg.params, what, xid, self.secs(now));
        let name = match what {
            Outgoing::Discover { .. } => "DISCOVER",
            Outgoing::Select { .. } | Outgoing::Reboot { .. } | Outgoing::Extend { .. } => "REQUEST",
            Outgoing::Release { .. } => "RELEASE",
            Outgoing::Decline { .. } => "DECLINE",
        };
        if !payload.is_empty() {
            out.push(Action::Send { payload, via, what: name });
        }
    }

    fn enter_init(&mut self, hint: Option<Ipv4Addr>, now: Time, out: &mut Vec<Action>) {
        self.exchange_start = now;
        let xid = self.new_xid();
        self.send(Outgoing::Discover { requested: hint }, xid, now, Via::RawBroadcast, out);
        let retx = self.retx_after(now, FIRST_RETX);
        self.phase = Phase::Selecting { xid, hint, retx };
    }

    fn enter_reboot(&mut self, address: Ipv4Addr, now: Time, out: &mut Vec<Action>) {
        self.exchange_start = now;
        let xid = self.new_xid();
        self.send(Outgoing::Reboot { address }, xid, now, Via::RawBroadcast, out);
        let retx = self.retx_after(now, FIRST_RETX);
        self.phase = Phase::Rebooting { xid, address, retx, sent: 1 };
    }

    fn stop(&mut self, release: bool, now: Time, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Stopped) {
            return;
        }
        if release && let Some(lease) = self.lease().cloned() {
            let xid = self.new_xid();
            let what = Outgoing::Release { address: lease.address, server: lease.server_id };
            self.send(what, xid, now, Via::UdpUnicast(lease.server_id), out);
            out.push(Action::RemoveLease);
            out.push(Action::Event { kind: EventKind::Release, lease: Some(lease) });
        }
        self.phase = Phase::Stopped;
        out.push(Action::Finished);
    }

    /// DHCPDECLINE for an address in use, then INIT after 10 s
    /// (RFC 2131 §3.1.5).
    fn decline(&mut self, lease: &Lease, now: Time, out: &mut Vec<Action>) {
        let xid = self.new_xid();
        let what = Outgoing::Decline { address: lease.address, server: lease.server_id };
        self.send(what, xid, now, Via::RawBroadcast, out);
        out.push(Action::RemoveLease);
        self.phase = Phase::Waiting { until: now + DECLINE_WAIT };
    }

    fn probe(&self, address: Ipv4Addr, out: &mut Vec<Action>) {
        out.push(Action::Arp { payload: arp::probe(self.cfg.params.mac, address), what: "ARP probe" });
    }

    /// An ARP packet: while checking, one that says another host uses the
    /// address (RFC 5227 §2.1.1) makes the client decline it.
    fn on_arp(&mut self, payload: &[u8], now: Time, out: &mut Vec<Action>) {
        let Phase::Checking { lease, old, .. } = &self.phase else {
            return;
        };
        let Some(a) = arp::parse(payload) else {
            return;
        };
        let address = lease.address;
        let ours = a.sender_mac == self.cfg.params.mac;
        let answers = a.sender_ip == address;
        let probes_too = a.sender_ip.is_unspecified() && a.op == arp::OP_REQUEST && a.target_ip == address;
        if ours || !(answers || probes_too) {
            return;
        }
        let (lease, old) = (lease.clone(), old.clone());
        warn!(
            address = %address,
            mac = %arp::mac_string(&a.sender_mac),
            "address conflict: {address} is in use by {}; declining the lease",
            arp::mac_string(&a.sender_mac)
        );
        self.decline(&lease, now, out);
        // A renewal that moved us to this address ended the old lease too.
        if let Some(old) = old {
            out.push(Action::Event { kind: EventKind::Expire, lease: Some(*old) });
        }
    }

    fn on_timer(&mut self, now: Time, out: &mut Vec<Action>) {
        if let Some(at) = self.timeout_at()
            && now >= at
        {
            self.phase = Phase::Stopped;
            out.push(Action::Event { kind: EventKind::Timeout, lease: None });
            out.push(Action::Finished);
            return;
        }
        match self.phase.clone() {
            Phase::Idle | Phase::Stopped => {}
            Phase::Selecting { xid, hint, retx } => {
                if now >= retx.at {
                    self.send(Outgoing::Discover { requested: hint }, xid, now, Via::RawBroadcast, out);
                    let retx = self.next_retx(now, retx);
                    self.phase = Phase::Selecting { xid, hint, retx };
                }
            }
            Phase::Requesting { retx, .. } | Phase::Rebooting { retx, .. } if now < retx.at => {}
            Phase::Requesting { xid, offer, retx, sent } => {
                if sent >= REQUEST_TRIES {
                    debug!("no answer to REQUEST, back to INIT");
                    self.enter_init(None, now, out);
                } else {
                    let what = Outgoing::Select { address: offer.address, server: offer.server_id };
                    self.send(what, xid, now, Via::RawBroadcast, out);
                    let retx = self.next_retx(now, retx);
                    self.phase = Phase::Requesting { xid, offer, retx, sent: sent + 1 };
                }
            }
            Phase::Rebooting { xid, address, retx, sent } => {
                if sent >= REBOOT_TRIES {
                    debug!("no answer in INIT-REBOOT, discovering");
                    self.enter_init(Some(address), now, out);
                } else {
                    self.send(Outgoing::Reboot { address }, xid, now, Via::RawBroadcast, out);
                    let retx = self.next_retx(now, retx);
                    self.phase = Phase::Rebooting { xid, address, retx, sent: sent + 1 };
                }
            }
            Phase::Bound { lease } | Phase::Renewing { lease, .. } | Phase::Rebinding { lease, .. } => {
                self.lease_timer(lease, now, out);
            }
            Phase::Checking { lease, until, .. } if now >= until => {
                debug!(address = %lease.address, "no conflict: the address is free");
                out.push(Action::Arp {
                    payload: arp::announcement(self.cfg.params.mac, lease.address),
                    what: "ARP announcement",
                });
                self.bind(*lease, EventKind::Bound, out);
            }
            Phase::Checking { lease, old, until, probes, next } => {
                if now >= next && probes < PROBES {
                    self.probe(lease.address, out);
                    let probes = probes + 1;
                    let next = if probes < PROBES { next + self.probe_step() } else { until };
                    self.phase = Phase::Checking { lease, old, until, probes, next };
                }
            }
            Phase::Waiting { until } => {
                if now >= until {
                    self.enter_init(None, now, out);
                }
            }
        }
    }

    fn lease_timer(&mut self, lease: Box<Lease>, now: Time, out: &mut Vec<Action>) {
        let Some((t1, t2, expiry)) = lease_times(&lease) else {
            return;
        };
        if now >= expiry {
            let hint = Some(lease.address);
            out.push(Action::Event { kind: EventKind::Expire, lease: Some(*lease) });
            self.enter_init(hint, now, out);
            return;
        }
        match self.phase.clone() {
            Phase::Bound { .. } | Phase::Renewing { .. } if now >= t2 => {
                self.exchange_start = now;
                let xid = self.new_xid();
                self.send(Outgoing::Extend { address: lease.address }, xid, now, Via::UdpBroadcast, out);
                let next = now + ((expiry - now) / 2).max(MIN_EXTEND_RETX);
                out.push(Action::Event { kind: EventKind::Rebind, lease: Some((*lease).clone()) });
                self.phase = Phase::Rebinding { lease, xid, next };
            }
            Phase::Bound { .. } if now >= t1 => {
                self.exchange_start = now;
                let xid = self.new_xid();
                let server = lease.server_id;
                self.send(Outgoing::Extend { address: lease.address }, xid, now, Via::UdpUnicast(server), out);
                let next = now + ((t2 - now) / 2).max(MIN_EXTEND_RETX);
                self.phase = Phase::Renewing { lease, xid, next };
            }
            Phase::Renewing { xid, next, .. } if now >= next => {
                let server = lease.server_id;
                self.send(Outgoing::Extend { address: lease.address }, xid, now, Via::UdpUnicast(server), out);
                let next = now + ((t2 - now) / 2).max(MIN_EXTEND_RETX);
                self.phase = Phase::Renewing { lease, xid, next };
            }
            Phase::Rebinding { xid, next, .. } if now >= next => {
                self.send(Outgoing::Extend { address: lease.address }, xid, now, Via::UdpBroadcast, out);
                let next = now + ((expiry - now) / 2).max(MIN_EXTEND_RETX);
                self.phase = Phase::Rebinding { lease, xid, next };
            }
            _ => {}
        }
    }

    fn rejected(&self, reply: &Reply, from: Ipv4Addr) -> bool {
        let hit = |a: Ipv4Addr| {
            self.cfg.reject_servers.iter().any(|(net, prefix)| {
                let mask = if *prefix == 0 { 0 } else { u32::MAX << (32 - u32::from((*prefix).min(32))) };
                u32::from(a) & mask == u32::from(*net) & mask
            })
        };
        reply.server_id.is_some_and(hit) || (!from.is_unspecified() && hit(from))
    }

    fn on_packet(&mut self, payload: &[u8], from: Ipv4Addr, now: Time, out: &mut Vec<Action>) {
        let xid = match &self.phase {
            Phase::Selecting { xid, .. }
            | Phase::Requesting { xid, .. }
            | Phase::Rebooting { xid, .. }
            | Phase::Renewing { xid, .. }
            | Phase::Rebinding { xid, .. } => *xid,
            _ => return,
        };
        let reply = match packet::parse_reply(payload) {
            Ok(r) => r,
            Err(e) => {
                debug!(from = %from, "ignoring a packet: {e:?}");
                return;
            }
        };
        if reply.xid != xid || reply.chaddr != self.cfg.params.mac {
            return;
        }
        if self.rejected(&reply, from) {
            debug!(from = %from, "ignoring a server in reject-servers");
            return;
        }
        for d in &reply.dropped {
            warn!(from = %from, option = d.option, "dropped a value from the server: {} ({})", d.value, d.reason);
        }
        let kind = reply.kind.unwrap_or(MessageType::Unknown(0));
        match (self.phase.clone(), kind) {
            (Phase::Selecting { xid, .. }, MessageType::Offer) => match reply.lease(now, None) {
                Ok(offer) => {
                    let what = Outgoing::Select { address: offer.address, server: offer.server_id };
                    self.send(what, xid, now, Via::RawBroadcast, out);
                    let retx = self.retx_after(now, FIRST_RETX);
                    self.phase = Phase::Requesting { xid, offer: Box::new(offer), retx, sent: 1 };
                }
                Err(e) => debug!(from = %from, "ignoring an OFFER: {e}"),
            },
            (Phase::Selecting { .. }, MessageType::Ack) if reply.rapid_commit => {
                if !self.cfg.params.rapid_commit {
                    debug!(from = %from, "server committed without being asked (Rapid Commit); taking it");
                }
                self.take_ack(&reply, None, EventKind::Bound, now, out);
            }
            (Phase::Requesting { offer, .. }, MessageType::Ack) => {
                if reply.server_id.is_some_and(|s| s != offer.server_id) {
                    return;
                }
                self.take_ack(&reply, Some(offer.server_id), EventKind::Bound, now, out);
            }
            (Phase::Rebooting { .. }, MessageType::Ack) => {
                self.take_ack(&reply, None, EventKind::Bound, now, out);
            }
            (Phase::Renewing { lease, .. } | Phase::Rebinding { lease, .. }, MessageType::Ack) => {
                let kind = if reply.yiaddr == Some(lease.address) { EventKind::Renew } else { EventKind::Bound };
                self.take_ack(&reply, Some(lease.server_id), kind, now, out);
            }
            (Phase::Requesting { offer: known, .. } | Phase::Renewing { lease: known, .. }, MessageType::Nak)
                if reply.server_id.is_none_or(|s| s == known.server_id) =>
            {
                self.nak(&reply, from, now, out);
            }
            (Phase::Rebooting { .. } | Phase::Rebinding { .. }, MessageType::Nak) => self.nak(&reply, from, now, out),
            _ => {}
        }
    }

    fn take_ack(
        &mut self,
        reply: &Reply,
        known_server: Option<Ipv4Addr>,
        kind: EventKind,
        now: Time,
        out: &mut Vec<Action>,
    ) {
        let lease = match reply.lease(now, known_server) {
            Ok(l) => l,
            Err(e) => {
                debug!("ignoring an ACK: {e}");
                return;
            }
        };
        self.naks = 0;
        if let Some(timeout) = self.cfg.acd
            && kind == EventKind::Bound
        {
            let old = self.lease().cloned().map(Box::new);
            debug!(address = %lease.address, ?timeout, "checking that the address is free");
            self.probe(lease.address, out);
            let until = now + timeout;
            let next = if PROBES > 1 { now + self.probe_step() } else { until };
            self.phase = Phase::Checking { lease: Box::new(lease), old, until, probes: 1, next };
            return;
        }
        self.bind(lease, kind, out);
    }

    /// The time between two probes.
    fn probe_step(&self) -> Duration {
        self.cfg.acd.unwrap_or_default() / PROBES
    }

    fn bind(&mut self, lease: Lease, kind: EventKind, out: &mut Vec<Action>) {
        self.bound_once = true;
        // Saved first: whoever hears the event finds the file.
        out.push(Action::SaveLease(lease.clone()));
        out.push(Action::Event { kind, lease: Some(lease.clone()) });
        self.phase = Phase::Bound { lease: Box::new(lease) };
    }

    fn nak(&mut self, reply: &Reply, from: Ipv4Addr, now: Time, out: &mut Vec<Action>) {
        warn!(from = %from, message = reply.message.as_deref().unwrap_or(""), "NAK from the server");
        out.push(Action::Event { kind: EventKind::Nak, lease: self.lease().cloned() });
        out.push(Action::RemoveLease);
        self.naks += 1;
        // A server that NAKs every time must not make us flood the link.
        if self.naks <= 1 {
            self.enter_init(None, now, out);
        } else {
            let wait = 1u64 << (self.naks - 1).min(6);
            self.phase = Phase::Waiting { until: now + Duration::from_secs(wait) };
        }
    }
}

/// T1, T2 and expiry of a lease on the machine's clock (`None`: infinite).
fn lease_times(l: &Lease) -> Option<(Time, Time, Time)> {
    if l.infinite() {
        return None;
    }
    let at = |s: u32| l.acquired + Duration::from_secs(u64::from(s));
    Some((at(l.renewal_time), at(l.rebinding_time), at(l.lease_time)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::fixtures::*;
    use dhcproto::v4::{DhcpOption, Message, OptionCode};
    use dhcproto::{Decodable, Name};
    use std::str::FromStr;

    fn params(rapid: bool) -> ClientParams {
        ClientParams {
            mac: MAC,
            client_id: [&[1u8][..], &MAC].concat(),
            hostname: Some("box".into()),
            fqdn: None,
            vendor_class: None,
            request_broadcast: false,
            rapid_commit: rapid,
            max_message_size: 1500,
        }
    }

    fn cfg() -> Config {
        Config {
            params: params(false),
            timeout: Some(Duration::from_secs(45)),
            reject_servers: vec![],
            previous: None,
            acd: None,
        }
    }

    fn acd_cfg() -> Config {
        Config { acd: Some(Duration::from_millis(300)), ..cfg() }
    }

    /// The ARP packets the machine sends.
    fn arps(acts: &[Action]) -> Vec<arp::Arp> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Arp { payload, .. } => Some(arp::parse(payload).expect("own ARP parses")),
                _ => None,
            })
            .collect()
    }

    /// An ARP packet on the wire (`op`, sender MAC and IP, target IP).
    fn arp_packet(op: u16, mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
        let mut p = arp::probe(mac, target);
        p[6..8].copy_from_slice(&op.to_be_bytes());
        p[14..18].copy_from_slice(&sender.octets());
        p.resize(46, 0);
        p
    }

    const OTHER_MAC: [u8; 6] = [2, 0x99, 0, 0, 0, 7];

    /// A machine and a virtual clock.
    struct Rig {
        m: Machine,
        now: Time,
    }

    impl Rig {
        fn new(cfg: Config) -> Rig {
            Rig { m: Machine::new(cfg, 42), now: Duration::ZERO }
        }
        fn start(&mut self) -> Vec<Action> {
            self.m.handle(Input::Start, self.now)
        }
        fn feed(&mut self, msg: &Message) -> Vec<Action> {
            self.m.handle(Input::Packet { payload: &bytes(msg), from: SERVER }, self.now)
        }
        fn feed_raw(&mut self, b: &[u8]) -> Vec<Action> {
            self.m.handle(Input::Packet { payload: b, from: SERVER }, self.now)
        }
        fn feed_arp(&mut self, b: &[u8]) -> Vec<Action> {
            self.m.handle(Input::Arp { payload: b }, self.now)
        }
        /// DISCOVER, OFFER, REQUEST, ACK: the actions after the ACK.
        fn acked(&mut self) -> Vec<Action> {
            let xid = sent(&self.start())[0].xid();
            self.feed(&reply(MessageType::Offer, xid));
            self.feed(&reply(MessageType::Ack, xid))
        }
        /// Jumps to the deadline and fires it.
        fn fire(&mut self) -> Vec<Action> {
            self.now = self.m.deadline().expect("a deadline");
            self.m.handle(Input::Timer, self.now)
        }
        fn at(&mut self, t: Time) -> Vec<Action> {
            self.now = t;
            self.m.handle(Input::Timer, self.now)
        }
        fn bound(&mut self) -> Lease {
            let xid = sent(&self.start())[0].xid();
            let req = self.feed(&reply(MessageType::Offer, xid));
            assert_eq!(sent(&req)[0].opts().msg_type(), Some(MessageType::Request));
            let acts = self.feed(&reply(MessageType::Ack, xid));
            event(&acts, EventKind::Bound).expect("bound")
        }
    }

    fn sent(acts: &[Action]) -> Vec<Message> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Send { payload, .. } => Some(Message::from_bytes(payload).expect("own packet decodes")),
                _ => None,
            })
            .collect()
    }

    fn vias(acts: &[Action]) -> Vec<Via> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Send { via, .. } => Some(*via),
                _ => None,
            })
            .collect()
    }

    fn event(acts: &[Action], kind: EventKind) -> Option<Lease> {
        acts.iter().find_map(|a| match a {
            Action::Event { kind: k, lease } if *k == kind => {
                Some(lease.clone().unwrap_or_else(crate::lease::tests::sample))
            }
            _ => None,
        })
    }

    fn kinds(acts: &[Action]) -> Vec<EventKind> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Event { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn discover_offer_request_ack() {
        let mut r = Rig::new(cfg());
        let acts = r.start();
        assert_eq!(r.m.state_name(), "selecting");
        assert_eq!(r.m.sockets(), Sockets::Packet);
        assert_eq!(vias(&acts), [Via::RawBroadcast]);
        let d = &sent(&acts)[0];
        assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
        assert!(d.opts().get(OptionCode::RapidCommit).is_none());
        let xid = d.xid();

        let acts = r.feed(&reply(MessageType::Offer, xid));
        let req = &sent(&acts)[0];
        assert_eq!(req.xid(), xid);
        assert_eq!(req.opts().get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress(ADDR)));
        assert_eq!(req.opts().get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(SERVER)));
        assert_eq!(r.m.state_name(), "requesting");

        // A second offer is ignored while requesting.
        assert!(r.feed(&reply(MessageType::Offer, xid)).is_empty());

        r.now += Duration::from_millis(3);
        let acts = r.feed(&reply(MessageType::Ack, xid));
        let lease = event(&acts, EventKind::Bound).unwrap();
        assert!(acts.contains(&Action::SaveLease(lease.clone())));
        assert_eq!(lease.address, ADDR);
        assert_eq!(lease.acquired, Duration::from_millis(3));
        assert_eq!(r.m.state_name(), "bound");
        assert_eq!(r.m.sockets(), Sockets::Udp);
        assert_eq!(r.m.deadline(), Some(Duration::from_millis(3) + Duration::from_secs(1800)));
    }

    #[test]
    fn foreign_and_rejected_replies_are_ignored() {
        let mut c = cfg();
        c.reject_servers = vec![(Ipv4Addr::new(10, 9, 0, 0), 16)];
        let mut r = Rig::new(c);
        let xid = sent(&r.start())[0].xid();
        assert!(r.feed(&reply(MessageType::Offer, xid.wrapping_add(1))).is_empty(), "other xid");
        let mut other_mac = reply(MessageType::Offer, xid);
        other_mac.set_chaddr(&[2, 0, 0, 0, 0, 9]);
        assert!(r.feed(&other_mac).is_empty(), "other chaddr");
        let evil = with(reply(MessageType::Offer, xid), [DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 9, 1, 1))]);
        assert!(r.feed(&evil).is_empty(), "rejected server");
        let no_lease = without(reply(MessageType::Offer, xid), OptionCode::AddressLeaseTime);
        assert!(r.feed(&no_lease).is_empty(), "offer without lease time");
        // An ACK without Rapid Commit in SELECTING is not an answer.
        assert!(r.feed(&reply(MessageType::Ack, xid)).is_empty());
        assert_eq!(r.m.state_name(), "selecting");
        assert!(!r.feed(&reply(MessageType::Offer, xid)).is_empty());
    }

    #[test]
    fn retransmission_backs_off_with_jitter() {
        let mut r = Rig::new(Config { timeout: None, ..cfg() });
        let xid = sent(&r.start())[0].xid();
        let mut last = r.now;
        for expected in [4u64, 8, 16, 32, 64, 64, 64] {
            let acts = r.fire();
            let gap = (r.now - last).as_millis() as u64;
            assert!(gap >= expected * 1000 - 1000 && gap <= expected * 1000 + 1000, "{gap} vs {expected}s");
            let d = &sent(&acts)[0];
            assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
            assert_eq!(d.xid(), xid, "retransmissions keep the xid");
            assert_eq!(u64::from(d.secs()), r.now.as_secs());
            last = r.now;
        }
    }

    #[test]
    fn requesting_gives_up_and_discovers_again() {
        let mut r = Rig::new(Config { timeout: None, ..cfg() });
        let xid = sent(&r.start())[0].xid();
        r.feed(&reply(MessageType::Offer, xid));
        for _ in 1..REQUEST_TRIES {
            let acts = r.fire();
            assert_eq!(sent(&acts)[0].opts().msg_type(), Some(MessageType::Request));
        }
        let acts = r.fire();
        assert_eq!(sent(&acts)[0].opts().msg_type(), Some(MessageType::Discover));
        assert_ne!(sent(&acts)[0].xid(), xid);
    }

    #[test]
    fn nak_while_requesting_restarts_discovery() {
        let mut r = Rig::new(cfg());
        let xid = sent(&r.start())[0].xid();
        r.feed(&reply(MessageType::Offer, xid));
        // A NAK from another server is not for us.
        let other = with(reply(MessageType::Nak, xid), [DhcpOption::ServerIdentifier(Ipv4Addr::new(198, 18, 0, 9))]);
        assert!(r.feed(&other).is_empty());
        let acts = r.feed(&with(reply(MessageType::Nak, xid), [DhcpOption::Message("no".into())]));
        assert_eq!(kinds(&acts), [EventKind::Nak]);
        assert!(acts.contains(&Action::RemoveLease));
        assert_eq!(sent(&acts)[0].opts().msg_type(), Some(MessageType::Discover));
        assert_eq!(r.m.state_name(), "selecting");
        // The next NAK in a row waits before discovering again.
        let xid = sent(&acts)[0].xid();
        r.feed(&reply(MessageType::Offer, xid));
        let acts = r.feed(&reply(MessageType::Nak, xid));
        assert!(sent(&acts).is_empty());
        assert_eq!(r.m.state_name(), "init");
        let acts = r.fire();
        assert_eq!(sent(&acts)[0].opts().msg_type(), Some(MessageType::Discover));
    }

    #[test]
    fn renew_at_t1_is_unicast_and_extends() {
        let mut r = Rig::new(cfg());
        let lease = r.bound();
        let acts = r.fire();
        assert_eq!(r.now, Duration::from_secs(1800));
        assert_eq!(r.m.state_name(), "renewing");
        assert_eq!(vias(&acts), [Via::UdpUnicast(SERVER)]);
        let req = &sent(&acts)[0];
        assert_eq!(req.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(req.ciaddr(), lease.address);
        assert!(req.opts().get(OptionCode::ServerIdentifier).is_none());
        assert!(req.opts().get(OptionCode::RequestedIpAddress).is_none());
        assert!(kinds(&acts).is_empty(), "entering RENEWING says nothing");
        // Renewal ACKs may omit the server identifier.
        let ack = without(reply(MessageType::Ack, req.xid()), OptionCode::ServerIdentifier);
        let acts = r.feed(&ack);
        let renewed = event(&acts, EventKind::Renew).unwrap();
        assert_eq!(renewed.acquired, Duration::from_secs(1800));
        assert_eq!(renewed.server_id, SERVER);
        assert_eq!(r.m.state_name(), "bound");
        assert_eq!(r.m.deadline(), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn rebind_at_t2_is_broadcast_then_expiry_restarts() {
        let mut r = Rig::new(cfg());
        let lease = r.bound();
        r.fire(); // T1
        // RENEWING retransmits no sooner than 60 s, and not past T2.
        let acts = r.fire();
        assert!(r.now >= Duration::from_secs(1860));
        assert_eq!(vias(&acts), [Via::UdpUnicast(SERVER)]);
        let acts = r.at(Duration::from_secs(3150));
        assert_eq!(r.m.state_name(), "rebinding");
        assert_eq!(vias(&acts), [Via::UdpBroadcast]);
        assert_eq!(sent(&acts)[0].ciaddr(), lease.address);
        assert_eq!(event(&acts, EventKind::Rebind).unwrap(), lease, "rebind carries the unchanged lease");
        // One more broadcast halfway to expiry (at least 60 s later).
        let acts = r.fire();
        assert_eq!(vias(&acts), [Via::UdpBroadcast]);
        let acts = r.at(Duration::from_secs(3600));
        assert_eq!(kinds(&acts), [EventKind::Expire]);
        assert_eq!(vias(&acts), [Via::RawBroadcast]);
        let d = &sent(&acts)[0];
        assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
        assert_eq!(d.opts().get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress(ADDR)));
        assert_eq!(r.m.state_name(), "selecting");
        // After a lease there is no timeout: discovery goes on.
        r.at(Duration::from_secs(3600 + 45));
        assert_eq!(r.m.state_name(), "selecting");
    }

    #[test]
    fn ack_while_rebinding_renews() {
        let mut r = Rig::new(cfg());
        r.bound();
        r.fire();
        let acts = r.at(Duration::from_secs(3150));
        let xid = sent(&acts)[0].xid();
        let acts = r.feed(&reply(MessageType::Ack, xid));
        assert_eq!(kinds(&acts), [EventKind::Renew]);
        // A different address is a new binding.
        r.fire();
        let acts = r.at(r.now + Duration::from_secs(1400));
        let xid = sent(&acts)[0].xid();
        let mut moved = reply(MessageType::Ack, xid);
        moved.set_yiaddr(Ipv4Addr::new(198, 18, 0, 151));
        assert_eq!(kinds(&r.feed(&moved)), [EventKind::Bound]);
    }

    #[test]
    fn nak_while_renewing_drops_the_lease() {
        let mut r = Rig::new(cfg());
        let lease = r.bound();
        let acts = r.fire();
        let xid = sent(&acts)[0].xid();
        let acts = r.feed(&reply(MessageType::Nak, xid));
        assert_eq!(event(&acts, EventKind::Nak).unwrap(), lease);
        assert!(acts.contains(&Action::RemoveLease));
        assert_eq!(vias(&acts), [Via::RawBroadcast]);
        assert_eq!(r.m.sockets(), Sockets::Packet);
    }

    #[test]
    fn init_reboot_with_a_saved_lease() {
        let mut r = Rig::new(Config { previous: Some(Previous::Reboot(ADDR)), ..cfg() });
        let acts = r.start();
        assert_eq!(r.m.state_name(), "init-reboot");
        let req = &sent(&acts)[0];
        assert_eq!(req.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(req.opts().get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress(ADDR)));
        assert!(req.opts().get(OptionCode::ServerIdentifier).is_none());
        assert_eq!(req.ciaddr(), Ipv4Addr::UNSPECIFIED);
        let acts = r.feed(&reply(MessageType::Ack, req.xid()));
        assert_eq!(event(&acts, EventKind::Bound).unwrap().address, ADDR);
    }

    #[test]
    fn init_reboot_falls_back_to_discover() {
        let mut r = Rig::new(Config { previous: Some(Previous::Reboot(ADDR)), ..cfg() });
        r.start();
        let acts = r.fire();
        assert!(r.now <= Duration::from_secs(5), "no more than one retransmission interval");
        let d = &sent(&acts)[0];
        assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
        assert_eq!(d.opts().get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress(ADDR)));
        // A NAK in INIT-REBOOT goes straight to discovery.
        let mut r = Rig::new(Config { previous: Some(Previous::Reboot(ADDR)), ..cfg() });
        let xid = sent(&r.start())[0].xid();
        let acts = r.feed(&reply(MessageType::Nak, xid));
        assert_eq!(kinds(&acts), [EventKind::Nak]);
        assert_eq!(sent(&acts)[0].opts().msg_type(), Some(MessageType::Discover));
    }

    #[test]
    fn expired_lease_is_only_a_hint() {
        let mut r = Rig::new(Config { previous: Some(Previous::Hint(ADDR)), ..cfg() });
        let d = &sent(&r.start())[0];
        assert_eq!(d.opts().msg_type(), Some(MessageType::Discover));
        assert_eq!(d.opts().get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress(ADDR)));
    }

    #[test]
    fn rapid_commit_when_asked() {
        let mut r = Rig::new(Config { params: params(true), ..cfg() });
        let d = sent(&r.start())[0].clone();
        assert!(d.opts().get(OptionCode::RapidCommit).is_some());
        let acts = r.feed(&with(reply(MessageType::Ack, d.xid()), [DhcpOption::RapidCommit]));
        assert_eq!(kinds(&acts), [EventKind::Bound]);
        assert!(sent(&acts).is_empty(), "no REQUEST after a rapid commit");
    }

    #[test]
    fn rapid_commit_unasked_is_tolerated() {
        // An OFFER that carries Rapid Commit is just an offer.
        let mut r = Rig::new(cfg());
        let xid = sent(&r.start())[0].xid();
        let acts = r.feed(&with(reply(MessageType::Offer, xid), [DhcpOption::RapidCommit]));
        assert_eq!(sent(&acts)[0].opts().msg_type(), Some(MessageType::Request));
        // A server that commits anyway is taken at its word.
        let mut r = Rig::new(cfg());
        let xid = sent(&r.start())[0].xid();
        let acts = r.feed(&with(reply(MessageType::Ack, xid), [DhcpOption::RapidCommit]));
        assert_eq!(kinds(&acts), [EventKind::Bound]);
    }

    #[test]
    fn timeout_without_a_lease() {
        let mut r = Rig::new(cfg());
        r.start();
        let mut acts = Vec::new();
        while !acts.contains(&Action::Finished) {
            acts = r.fire();
        }
        assert_eq!(r.now, Duration::from_secs(45));
        assert_eq!(kinds(&acts), [EventKind::Timeout]);
        assert_eq!(r.m.deadline(), None);
        assert_eq!(r.m.state_name(), "stopped");
        assert!(r.feed(&reply(MessageType::Offer, 1)).is_empty());
    }

    #[test]
    fn stop_with_and_without_release() {
        let mut r = Rig::new(cfg());
        let lease = r.bound();
        let acts = r.m.handle(Input::Stop { release: true }, r.now);
        assert_eq!(vias(&acts), [Via::UdpUnicast(SERVER)]);
        let rel = &sent(&acts)[0];
        assert_eq!(rel.opts().msg_type(), Some(MessageType::Release));
        assert_eq!(rel.ciaddr(), lease.address);
        assert_eq!(rel.opts().get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(SERVER)));
        assert_eq!(kinds(&acts), [EventKind::Release]);
        assert!(acts.contains(&Action::RemoveLease));
        assert_eq!(acts.last(), Some(&Action::Finished));
        assert!(r.m.handle(Input::Stop { release: true }, r.now).is_empty());

        let mut r = Rig::new(cfg());
        r.bound();
        assert_eq!(r.m.handle(Input::Stop { release: false }, r.now), [Action::Finished]);
        let mut r = Rig::new(cfg());
        r.start();
        assert_eq!(r.m.handle(Input::Stop { release: true }, r.now), [Action::Finished], "nothing to release");
    }

    #[test]
    fn acd_without_conflict_binds_at_the_timeout() {
        let mut r = Rig::new(acd_cfg());
        r.now = Duration::from_millis(5);
        let acts = r.acked();
        assert!(kinds(&acts).is_empty(), "no event before the check");
        assert!(!acts.iter().any(|a| matches!(a, Action::SaveLease(_))));
        assert_eq!(r.m.state_name(), "checking");
        assert_eq!(r.m.sockets(), Sockets::Arp);
        assert_eq!(r.m.lease(), None);
        let mut probes = arps(&acts);
        let mut times = vec![r.now];
        for _ in 1..PROBES {
            let acts = r.fire();
            assert!(kinds(&acts).is_empty());
            probes.extend(arps(&acts));
            times.push(r.now);
        }
        assert_eq!(times, [5, 105, 205].map(Duration::from_millis));
        for p in &probes {
            assert_eq!(
                (p.op, p.sender_mac, p.sender_ip, p.target_mac),
                (arp::OP_REQUEST, MAC, Ipv4Addr::UNSPECIFIED, [0; 6])
            );
            assert_eq!(p.target_ip, ADDR);
        }
        // ARP from others about other addresses, our own probes echoed back,
        // and garbage change nothing.
        let noise = [
            arp_packet(arp::OP_REQUEST, OTHER_MAC, Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 9)),
            arp_packet(arp::OP_REPLY, OTHER_MAC, Ipv4Addr::new(198, 18, 0, 1), ADDR),
            arp::probe(MAC, ADDR),
            arp_packet(arp::OP_REPLY, MAC, ADDR, Ipv4Addr::UNSPECIFIED),
            arp::announcement(MAC, ADDR),
            vec![0; 3],
            arp_packet(arp::OP_REPLY, OTHER_MAC, ADDR, ADDR)[..27].to_vec(),
        ];
        for n in &noise {
            assert!(r.feed_arp(n).is_empty());
        }
        assert_eq!(r.m.state_name(), "checking");
        let acts = r.fire();
        assert_eq!(r.now, Duration::from_millis(305), "bound at the end of the timeout");
        let lease = event(&acts, EventKind::Bound).expect("bound");
        assert_eq!(lease.address, ADDR);
        assert_eq!(lease.acquired, Duration::from_millis(5), "the lease counts from the ACK");
        assert!(acts.contains(&Action::SaveLease(lease.clone())));
        let ann = arps(&acts);
        assert_eq!(ann.len(), 1);
        assert_eq!((ann[0].sender_ip, ann[0].target_ip), (ADDR, ADDR), "an announcement");
        assert_eq!(r.m.state_name(), "bound");
        assert_eq!(r.m.sockets(), Sockets::Udp);
        // Once bound, ARP is not listened to.
        assert!(r.feed_arp(&arp_packet(arp::OP_REPLY, OTHER_MAC, ADDR, ADDR)).is_empty());
        // A renewal of the same address is not checked again.
        let acts = r.fire();
        let xid = sent(&acts)[0].xid();
        let acts = r.feed(&reply(MessageType::Ack, xid));
        assert_eq!(kinds(&acts), [EventKind::Renew]);
        assert!(arps(&acts).is_empty());
    }

    #[test]
    fn acd_conflict_declines_waits_and_discovers() {
        for conflict in [
            // Another host answers our probe, …
            arp_packet(arp::OP_REPLY, OTHER_MAC, ADDR, Ipv4Addr::UNSPECIFIED),
            // … announces or asks from the address, …
            arp_packet(arp::OP_REQUEST, OTHER_MAC, ADDR, Ipv4Addr::new(198, 18, 0, 1)),
            // … or probes for it at the same time (RFC 5227 §2.1.1).
            arp_packet(arp::OP_REQUEST, OTHER_MAC, Ipv4Addr::UNSPECIFIED, ADDR),
        ] {
            let mut r = Rig::new(acd_cfg());
            r.acked();
            r.fire(); // the second probe
            let acts = r.feed_arp(&conflict);
            assert!(kinds(&acts).is_empty(), "no bound event");
            assert!(!acts.iter().any(|a| matches!(a, Action::SaveLease(_))));
            assert!(acts.contains(&Action::RemoveLease));
            assert_eq!(vias(&acts), [Via::RawBroadcast]);
            let d = &sent(&acts)[0];
            assert_eq!(d.opts().msg_type(), Some(MessageType::Decline));
            assert_eq!(d.ciaddr(), Ipv4Addr::UNSPECIFIED);
            assert_eq!(d.opts().get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress(ADDR)));
            assert_eq!(d.opts().get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(SERVER)));
            assert_eq!(r.m.state_name(), "init");
            assert_eq!(r.m.sockets(), Sockets::None);
            // Nothing more from ARP, nothing from a late ACK.
            assert!(r.feed_arp(&conflict).is_empty());
            let before = r.now;
            let acts = r.fire();
            assert_eq!(r.now - before, DECLINE_WAIT);
            let discover = &sent(&acts)[0];
            assert_eq!(discover.opts().msg_type(), Some(MessageType::Discover));
            assert_eq!(discover.opts().get(OptionCode::RequestedIpAddress), None, "no hint for a declined address");
            // The next address is checked too.
            let xid = discover.xid();
            r.feed(&reply(MessageType::Offer, xid));
            let acts = r.feed(&reply(MessageType::Ack, xid));
            assert_eq!(arps(&acts).len(), 1);
            assert_eq!(r.m.state_name(), "checking");
        }
    }

    #[test]
    fn acd_keeps_the_dhcp_timeout() {
        // Declined at once, and no other server: the start's timeout ends it.
        let mut r = Rig::new(acd_cfg());
        r.acked();
        r.feed_arp(&arp_packet(arp::OP_REPLY, OTHER_MAC, ADDR, Ipv4Addr::UNSPECIFIED));
        let mut acts = Vec::new();
        while !acts.contains(&Action::Finished) {
            acts = r.fire();
        }
        assert_eq!(r.now, Duration::from_secs(45));
        assert_eq!(kinds(&acts), [EventKind::Timeout]);
        // A check still running when the timeout comes ends the same way.
        let mut r =
            Rig::new(Config { acd: Some(Duration::from_secs(30)), timeout: Some(Duration::from_secs(20)), ..cfg() });
        r.acked();
        let mut acts = Vec::new();
        while !acts.contains(&Action::Finished) {
            acts = r.fire();
        }
        assert_eq!(r.now, Duration::from_secs(20));
        assert_eq!(kinds(&acts), [EventKind::Timeout]);
    }

    #[test]
    fn acd_checks_an_address_a_renewal_moves_to() {
        let moved_to = Ipv4Addr::new(198, 18, 0, 151);
        let mut r = Rig::new(acd_cfg());
        r.acked();
        for _ in 0..PROBES {
            r.fire();
        }
        assert_eq!(r.m.state_name(), "bound");
        let acts = r.fire(); // T1
        let xid = sent(&acts)[0].xid();
        let mut moved = reply(MessageType::Ack, xid);
        moved.set_yiaddr(moved_to);
        let acts = r.feed(&moved);
        assert!(kinds(&acts).is_empty());
        assert_eq!(arps(&acts)[0].target_ip, moved_to);
        assert_eq!(r.m.state_name(), "checking");
        assert_eq!(r.m.lease().map(|l| l.address), Some(ADDR), "the old lease is still held");
        let acts = r.feed_arp(&arp_packet(arp::OP_REPLY, OTHER_MAC, moved_to, Ipv4Addr::UNSPECIFIED));
        assert_eq!(
            sent(&acts)[0].opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(moved_to))
        );
        assert_eq!(event(&acts, EventKind::Expire).map(|l| l.address), Some(ADDR), "the old lease ends");
        assert_eq!(r.m.state_name(), "init");
    }

    #[test]
    fn arp_is_ignored_without_acd() {
        let mut r = Rig::new(cfg());
        let acts = r.acked();
        assert_eq!(kinds(&acts), [EventKind::Bound], "bound at the ACK, as before");
        assert!(arps(&acts).is_empty());
        assert!(r.feed_arp(&arp_packet(arp::OP_REPLY, OTHER_MAC, ADDR, ADDR)).is_empty());
        assert_eq!(r.m.state_name(), "bound");
    }

    #[test]
    fn infinite_lease_has_no_timers() {
        let mut r = Rig::new(cfg());
        let xid = sent(&r.start())[0].xid();
        r.feed(&reply(MessageType::Offer, xid));
        r.feed(&with(reply(MessageType::Ack, xid), [DhcpOption::AddressLeaseTime(u32::MAX)]));
        assert_eq!(r.m.state_name(), "bound");
        assert_eq!(r.m.deadline(), None);
    }

    #[test]
    fn garbage_and_truncated_packets_are_ignored_in_every_state() {
        let mut seed = 7u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut r = Rig::new(cfg());
        let xid = sent(&r.start())[0].xid();
        let good_offer = bytes(&with(
            reply(MessageType::Offer, xid),
            [DhcpOption::DomainSearch(vec![Name::from_str("lab.test").unwrap()])],
        ));
        let check = |r: &mut Rig, rand: &mut dyn FnMut() -> u64, state: &str| {
            for cut in 0..240 {
                assert!(r.feed_raw(&good_offer[..cut]).is_empty());
            }
            for _ in 0..2000 {
                let len = (rand() % 700) as usize;
                let junk: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
                assert!(r.feed_raw(&junk).is_empty());
            }
            assert_eq!(r.m.state_name(), state);
        };
        check(&mut r, &mut rand, "selecting");
        r.feed(&reply(MessageType::Offer, xid));
        check(&mut r, &mut rand, "requesting");
        r.feed(&reply(MessageType::Ack, xid));
        check(&mut r, &mut rand, "bound");
        r.fire();
        check(&mut r, &mut rand, "renewing");
        // Mutated copies of a valid ACK with our xid: whatever they decode to,
        // the machine stays sane (any lease it takes has a usable address).
        let acts = r.at(Duration::from_secs(3150));
        let xid = sent(&acts)[0].xid();
        let good_ack = bytes(&reply(MessageType::Ack, xid));
        for _ in 0..5000 {
            let mut p = good_ack.clone();
            for _ in 0..(rand() % 6 + 1) {
                let i = 240 + (rand() as usize) % (p.len() - 240);
                p[i] = rand() as u8;
            }
            let before = r.m.state_name();
            for a in r.feed_raw(&p) {
                if let Action::Event { lease: Some(l), .. } = a {
                    assert!(packet::usable_address(l.address));
                    assert!(l.renewal_time <= l.rebinding_time && l.rebinding_time <= l.lease_time);
                }
            }
            if r.m.state_name() != before {
                break;
            }
        }
    }
}
