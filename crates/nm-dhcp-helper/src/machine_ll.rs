//! IPv4 link-local addressing (RFC 3927, NetworkManager's
//! `ipv4.method=link-local`) as a pure machine of (state, input, now): pick
//! an address in 169.254.1.0 – 169.254.254.255 from the link's MAC (the
//! same host takes the same address again), probe for it with ARP, announce
//! it, and defend it. Conflict detection follows RFC 5227's probe and
//! announce rules with the timing scaled to one total probe time, as the
//! DHCP client's checks (`machine.rs`) are.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::arp::{self, Arp};

/// Probes per candidate (RFC 5227's PROBE_NUM).
const PROBES: u32 = 3;
/// Announcements once the address is taken (ANNOUNCE_NUM) and their gap.
const ANNOUNCEMENTS: u32 = 2;
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(2);
/// A second conflict within this time gives the address up (DEFEND_INTERVAL).
const DEFEND_INTERVAL: Duration = Duration::from_secs(10);
/// After this many conflicts, one new candidate a minute (MAX_CONFLICTS,
/// RATE_LIMIT_INTERVAL).
const MAX_CONFLICTS: u32 = 10;
const RATE_LIMIT_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigLl {
    pub mac: [u8; 6],
    /// The whole probe of one candidate (at least 3 ms).
    pub probe_time: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputLl<'a> {
    Start,
    /// An ARP packet as the socket hands it over (untrusted).
    Arp(&'a [u8]),
    Timer,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionLl {
    /// An ARP packet to broadcast.
    Send {
        payload: Vec<u8>,
        what: &'static str,
    },
    /// The address is ours (after probing), to be configured.
    Bound(Ipv4Addr),
    /// The address is lost to another host; a new one is being looked for.
    Lost(Ipv4Addr),
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Probes sent so far for `address`.
    Probing {
        sent: u32,
    },
    /// Ours; announcements sent so far.
    Announcing {
        sent: u32,
    },
    Bound,
    Stopped,
}

pub struct MachineLl {
    cfg: ConfigLl,
    phase: Phase,
    address: Ipv4Addr,
    /// Candidates tried (the next one comes from it).
    attempt: u32,
    conflicts: u32,
    next: Option<Duration>,
    last_defense: Option<Duration>,
    rng: u64,
}

/// The `attempt`-th candidate for a link with `mac`: 169.254.1.0 to
/// 169.254.254.255 (RFC 3927 §2.1), from an FNV-1a hash so that the same
/// link starts from the same address.
pub fn candidate(mac: [u8; 6], attempt: u32) -> Ipv4Addr {
    let h = crate::fnv1a(&[&mac[..], &attempt.to_be_bytes()].concat());
    // 254 * 256 addresses: 169.254.1.0 .. 169.254.254.255.
    let n = h % (254 * 256) + 256;
    Ipv4Addr::from(0xa9fe_0000 | n)
}

impl MachineLl {
    pub fn new(cfg: ConfigLl, seed: u64) -> MachineLl {
        MachineLl {
            cfg,
            phase: Phase::Idle,
            address: candidate(cfg.mac, 0),
            attempt: 0,
            conflicts: 0,
            next: None,
            last_defense: None,
            rng: seed | 1,
        }
    }

    /// When the machine wants a `Timer` input.
    pub fn deadline(&self) -> Option<Duration> {
        self.next
    }

    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Idle => "init",
            Phase::Probing { .. } => "probing",
            Phase::Announcing { .. } | Phase::Bound => "bound",
            Phase::Stopped => "stopped",
        }
    }

    /// A number in 0..n (xorshift; jitter only).
    fn random(&mut self, n: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if n == 0 { 0 } else { self.rng % n }
    }

    /// The gap between probes: the probe time over PROBES, with up to a
    /// third more of jitter.
    fn probe_gap(&mut self) -> Duration {
        let base = (self.cfg.probe_time / PROBES).max(Duration::from_millis(1));
        let jitter = self.random(base.as_micros() as u64 / 3 + 1);
        base + Duration::from_micros(jitter)
    }

    fn start_probing(&mut self, now: Duration, delay: Duration) -> Vec<ActionLl> {
        self.phase = Phase::Probing { sent: 0 };
        self.next = Some(now + delay);
        Vec::new()
    }

    /// Another host has (or wants) the address: the next candidate.
    fn conflict(&mut self, now: Duration) -> Vec<ActionLl> {
        let lost = matches!(self.phase, Phase::Announcing { .. } | Phase::Bound);
        let old = self.address;
        self.conflicts += 1;
        self.attempt += 1;
        self.address = candidate(self.cfg.mac, self.attempt);
        self.last_defense = None;
        let delay = if self.conflicts >= MAX_CONFLICTS { RATE_LIMIT_INTERVAL } else { Duration::ZERO };
        let mut out = if lost { vec![ActionLl::Lost(old)] } else { Vec::new() };
        out.extend(self.start_probing(now, delay));
        out
    }

    pub fn handle(&mut self, input: InputLl<'_>, now: Duration) -> Vec<ActionLl> {
        match (input, self.phase) {
            (_, Phase::Stopped) => Vec::new(),
            (InputLl::Stop, _) => {
                self.phase = Phase::Stopped;
                self.next = None;
                vec![ActionLl::Finished]
            }
            (InputLl::Start, Phase::Idle) => {
                // A random wait before the first probe (PROBE_WAIT, scaled).
                let wait =
                    Duration::from_micros(self.random(self.cfg.probe_time.as_micros() as u64 / PROBES as u64 + 1));
                self.start_probing(now, wait)
            }
            (InputLl::Start, _) => Vec::new(),
            (InputLl::Timer, _) if self.next.is_none_or(|t| now < t) => Vec::new(),
            (InputLl::Timer, Phase::Probing { sent }) if sent < PROBES => {
                self.phase = Phase::Probing { sent: sent + 1 };
                self.next = Some(now + self.probe_gap());
                vec![ActionLl::Send { payload: arp::probe(self.cfg.mac, self.address), what: "ARP probe" }]
            }
            (InputLl::Timer, Phase::Probing { .. }) => {
                // No answer to the probes: ours.
                self.phase = Phase::Announcing { sent: 1 };
                self.next = Some(now + ANNOUNCE_INTERVAL);
                vec![
                    ActionLl::Bound(self.address),
                    ActionLl::Send { payload: arp::announcement(self.cfg.mac, self.address), what: "ARP announcement" },
                ]
            }
            (InputLl::Timer, Phase::Announcing { sent }) => {
                if sent + 1 >= ANNOUNCEMENTS {
                    self.phase = Phase::Bound;
                    self.next = None;
                } else {
                    self.phase = Phase::Announcing { sent: sent + 1 };
                    self.next = Some(now + ANNOUNCE_INTERVAL);
                }
                vec![ActionLl::Send {
                    payload: arp::announcement(self.cfg.mac, self.address),
                    what: "ARP announcement",
                }]
            }
            (InputLl::Timer, _) => {
                self.next = None;
                Vec::new()
            }
            (InputLl::Arp(bytes), phase) => {
                let Some(a) = arp::parse(bytes) else { return Vec::new() };
                self.arp(a, phase, now)
            }
        }
    }

    fn arp(&mut self, a: Arp, phase: Phase, now: Duration) -> Vec<ActionLl> {
        if a.sender_mac == self.cfg.mac {
            return Vec::new();
        }
        match phase {
            // RFC 5227 §2.1.1: the address is someone's, or someone else
            // probes for it at the same time.
            Phase::Probing { .. } => {
                let taken = a.sender_ip == self.address;
                let probed = a.op == arp::OP_REQUEST && a.sender_ip.is_unspecified() && a.target_ip == self.address;
                if taken || probed { self.conflict(now) } else { Vec::new() }
            }
            // §2.4: defend once; a second conflict within DEFEND_INTERVAL
            // gives the address up.
            Phase::Announcing { .. } | Phase::Bound if a.sender_ip == self.address => match self.last_defense {
                Some(t) if now.saturating_sub(t) < DEFEND_INTERVAL => self.conflict(now),
                _ => {
                    self.last_defense = Some(now);
                    vec![ActionLl::Send {
                        payload: arp::announcement(self.cfg.mac, self.address),
                        what: "ARP announcement (defending)",
                    }]
                }
            },
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];
    const OTHER: [u8; 6] = [2, 0, 0, 0, 0, 0x77];

    fn cfg() -> ConfigLl {
        ConfigLl { mac: MAC, probe_time: Duration::from_millis(300) }
    }

    /// Runs timers until the machine binds (or `limit` passes); returns the
    /// time and what it did.
    fn run_until_bound(m: &mut MachineLl, mut now: Duration, limit: Duration) -> (Duration, Vec<ActionLl>) {
        let mut all = Vec::new();
        while now < limit {
            let Some(t) = m.deadline() else { break };
            now = t;
            let acts = m.handle(InputLl::Timer, now);
            let bound = acts.iter().any(|a| matches!(a, ActionLl::Bound(_)));
            all.extend(acts);
            if bound {
                break;
            }
        }
        (now, all)
    }

    #[test]
    fn candidates_are_link_local_and_stable_per_link() {
        for attempt in 0..1000 {
            let a = candidate(MAC, attempt).octets();
            assert_eq!((a[0], a[1]), (169, 254));
            assert!((1..=254).contains(&a[2]), "{a:?}");
        }
        assert_eq!(candidate(MAC, 0), candidate(MAC, 0));
        assert_ne!(candidate(MAC, 0), candidate(MAC, 1));
        assert_ne!(candidate(MAC, 0), candidate(OTHER, 0));
    }

    #[test]
    fn three_probes_then_bound_and_announced() {
        let mut m = MachineLl::new(cfg(), 7);
        assert!(m.handle(InputLl::Start, Duration::ZERO).is_empty());
        let (t, acts) = run_until_bound(&mut m, Duration::ZERO, Duration::from_secs(5));
        let probes = acts.iter().filter(|a| matches!(a, ActionLl::Send { what: "ARP probe", .. })).count();
        assert_eq!(probes, 3, "{acts:?}");
        assert!(acts.contains(&ActionLl::Bound(candidate(MAC, 0))));
        assert!(t >= Duration::from_millis(300) && t < Duration::from_millis(600), "{t:?}");
        assert_eq!(m.state_name(), "bound");
        // One more announcement, then quiet.
        let t2 = m.deadline().expect("the second announcement");
        assert_eq!(m.handle(InputLl::Timer, t2).len(), 1);
        assert_eq!(m.deadline(), None);
    }

    #[test]
    fn a_conflict_while_probing_moves_to_the_next_candidate() {
        let mut m = MachineLl::new(cfg(), 7);
        m.handle(InputLl::Start, Duration::ZERO);
        let first = candidate(MAC, 0);
        let t = m.deadline().unwrap();
        m.handle(InputLl::Timer, t);
        // Someone answers for the address.
        let reply = arp::announcement(OTHER, first);
        assert!(m.handle(InputLl::Arp(&reply), t).is_empty());
        // Our own packets and garbage change nothing.
        m.handle(InputLl::Arp(&arp::announcement(MAC, candidate(MAC, 1))), t);
        m.handle(InputLl::Arp(&[1, 2, 3]), t);
        let (_, acts) = run_until_bound(&mut m, t, Duration::from_secs(5));
        assert!(acts.contains(&ActionLl::Bound(candidate(MAC, 1))), "{acts:?}");
        // Another host probing for the same address is a conflict too.
        let mut m = MachineLl::new(cfg(), 7);
        m.handle(InputLl::Start, Duration::ZERO);
        m.handle(InputLl::Arp(&arp::probe(OTHER, first)), Duration::ZERO);
        let (_, acts) = run_until_bound(&mut m, Duration::ZERO, Duration::from_secs(5));
        assert!(acts.contains(&ActionLl::Bound(candidate(MAC, 1))), "{acts:?}");
    }

    #[test]
    fn a_bound_address_is_defended_once_then_given_up() {
        let mut m = MachineLl::new(cfg(), 7);
        m.handle(InputLl::Start, Duration::ZERO);
        let (t, _) = run_until_bound(&mut m, Duration::ZERO, Duration::from_secs(5));
        let ours = candidate(MAC, 0);
        let claim = arp::announcement(OTHER, ours);
        let acts = m.handle(InputLl::Arp(&claim), t);
        assert!(matches!(acts.as_slice(), [ActionLl::Send { what: "ARP announcement (defending)", .. }]), "{acts:?}");
        let acts = m.handle(InputLl::Arp(&claim), t + Duration::from_secs(3));
        assert_eq!(acts, vec![ActionLl::Lost(ours)]);
        assert_eq!(m.state_name(), "probing");
        let (_, acts) = run_until_bound(&mut m, t + Duration::from_secs(3), Duration::from_secs(10));
        assert!(acts.contains(&ActionLl::Bound(candidate(MAC, 1))));
        // Stop ends it.
        assert_eq!(m.handle(InputLl::Stop, t), vec![ActionLl::Finished]);
        assert!(m.handle(InputLl::Timer, t + Duration::from_secs(100)).is_empty());
    }

    #[test]
    fn many_conflicts_slow_the_search_down() {
        let mut m = MachineLl::new(cfg(), 7);
        m.handle(InputLl::Start, Duration::ZERO);
        for i in 0..MAX_CONFLICTS {
            m.handle(InputLl::Arp(&arp::announcement(OTHER, candidate(MAC, i))), Duration::ZERO);
        }
        assert!(m.deadline().unwrap() >= RATE_LIMIT_INTERVAL);
    }
}
