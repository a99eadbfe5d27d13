//! The fuzz targets' entries (`fuzz/fuzz_targets/dhcp.rs`, `dhcp6.rs` and
//! `ll.rs`, feature `fuzzing`; [`fuzz_entry6`] is the DHCPv6 one,
//! [`fuzz_entry_ll`] the IPv4 link-local one):
//! arbitrary bytes become a session of one client — its settings, then a
//! script of server replies, ARP packets, timer ticks on a virtual clock and
//! the occasional `Stop` (after which a new machine starts from the lease
//! it had, as the daemon's next `Start` would). Every packet goes through
//! [`packet::parse_reply`] inside [`Machine::handle`], so decoding and the
//! transitions are exercised together.
//!
//! Random bytes would almost never carry the transaction id and hardware
//! address the machine waits for, so most packet steps patch them in: the
//! fuzzer's bytes then decide the header fields and the options. One step
//! kind builds a well-formed reply (message type, server id, lease time,
//! mask, router) with the fuzzer's bytes as further options, so OFFER → ACK →
//! BOUND → RENEWING → … is reached quickly.
//!
//! Besides "no panic", it checks what must hold whatever the server sends:
//! the client's own messages decode, a bound lease has a usable address,
//! and its lease file reads back as that address (no option value can add
//! lines to it).

use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::Decodable;
use dhcproto::v4::Message;

use crate::lease::{self, ClientView};
use crate::machine::{Action, Config, EventKind, Input, Machine, Previous, Time};
use crate::packet::{self, ClientParams};

const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Steps per input: enough for several leases, bounded so one input is fast.
const MAX_STEPS: usize = 512;
/// Offset of the options in a BOOTP message, after the magic cookie.
const OPTIONS_AT: usize = 240;
const COOKIE: [u8; 4] = [99, 130, 83, 99];

/// A cursor over the fuzzer's bytes; reads past the end give zeros.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.at.min(self.data.len());
        let end = self.at.saturating_add(n).min(self.data.len());
        self.at = self.at.saturating_add(n);
        &self.data[start..end]
    }
}

/// What the session remembers from the machine's actions.
#[derive(Default)]
struct Seen {
    /// Transaction id of the last message the client sent.
    xid: u32,
    /// The address the last ARP probe asked about.
    probed: Option<Ipv4Addr>,
    /// The last lease the client held.
    lease: Option<Ipv4Addr>,
}

fn config(b: &mut Bytes<'_>, previous: Option<Previous>) -> Config {
    let flags = b.u8();
    Config {
        params: ClientParams {
            mac: MAC,
            client_id: [&[1u8][..], &MAC].concat(),
            hostname: (flags & 1 != 0).then(|| "fuzz".to_string()),
            fqdn: (flags & 16 != 0).then(|| (0x05, "fuzz.example.".to_string())),
            vendor_class: None,
            request_broadcast: flags & 2 != 0,
            rapid_commit: flags & 4 != 0,
            max_message_size: 1500,
        },
        timeout: (flags & 8 != 0).then(|| Duration::from_secs(u64::from(b.u8()) + 1)),
        reject_servers: if flags & 16 != 0 { vec![(Ipv4Addr::new(10, 0, 0, 0), b.u8() % 33)] } else { vec![] },
        previous,
        acd: (flags & 32 != 0).then(|| Duration::from_millis(u64::from(b.u16()))),
    }
}

/// Runs one session; panics only when an invariant above breaks.
pub fn fuzz_entry(data: &[u8]) {
    let mut b = Bytes { data, at: 0 };
    let first = b.u8();
    let previous = match first % 3 {
        0 => None,
        1 => Some(Previous::Reboot(Ipv4Addr::new(198, 18, 0, b.u8()))),
        _ => Some(Previous::Hint(Ipv4Addr::new(198, 18, 0, b.u8()))),
    };
    let seed = u64::from(b.u16()) << 16 | u64::from(b.u16());
    let mut machine = Machine::new(config(&mut b, previous), seed);
    let mut now: Time = Duration::ZERO;
    let mut seen = Seen::default();
    apply(&machine.handle(Input::Start, now), &mut seen);

    for _ in 0..MAX_STEPS {
        if b.done() {
            break;
        }
        let op = b.u8();
        let acts = match op % 10 {
            // The deadline (or a second later when there is none).
            0 | 1 => {
                now = machine.deadline().map_or(now + Duration::from_secs(1), |d| d.max(now));
                machine.handle(Input::Timer, now)
            }
            // Some time passes, then a tick (possibly early).
            2 => {
                now += Duration::from_millis(u64::from(b.u16()) * 50);
                machine.handle(Input::Timer, now)
            }
            // Raw bytes from anyone.
            3 => {
                let n = usize::from(b.u16() % 1500);
                let payload = b.take(n).to_vec();
                machine.handle(Input::Packet { payload: &payload, from: SERVER }, now)
            }
            // The fuzzer's header and options, with our xid and MAC.
            4 | 5 => {
                let n = usize::from(b.u16() % 1500);
                let payload = patched(b.take(n), seen.xid);
                machine.handle(Input::Packet { payload: &payload, from: SERVER }, now)
            }
            // A well-formed reply, the fuzzer's bytes as extra options.
            6 | 7 => {
                let kind = b.u8();
                let yiaddr = b.u8();
                let lease_time = u32::from(b.u16());
                let n = usize::from(b.u8());
                let payload = reply(seen.xid, kind, yiaddr, lease_time, b.take(n));
                machine.handle(Input::Packet { payload: &payload, from: SERVER }, now)
            }
            // ARP: raw bytes, or a host answering for the probed address.
            8 => {
                let mode = b.u8();
                let payload = if mode & 1 == 0 {
                    let n = usize::from(b.u8() % 64);
                    b.take(n).to_vec()
                } else {
                    let target = seen.probed.unwrap_or(SERVER);
                    let sender = if mode & 2 == 0 { target } else { Ipv4Addr::UNSPECIFIED };
                    arp_packet(if mode & 4 == 0 { 2 } else { 1 }, sender, target)
                };
                machine.handle(Input::Arp { payload: &payload }, now)
            }
            // Stop, and start again from what the client held (the next
            // `Start` of the daemon).
            _ => {
                let mut acts = machine.handle(Input::Stop { release: op & 0x10 != 0 }, now);
                let previous = seen.lease.map(if op & 0x20 != 0 { Previous::Reboot } else { Previous::Hint });
                machine = Machine::new(config(&mut b, previous), seed.wrapping_add(now.as_millis() as u64));
                acts.extend(machine.handle(Input::Start, now));
                acts
            }
        };
        apply(&acts, &mut seen);
        let _ = (machine.state_name(), machine.sockets(), machine.lease());
    }
}

/// Notes what the client did and checks it.
fn apply(acts: &[Action], seen: &mut Seen) {
    for a in acts {
        match a {
            Action::Send { payload, .. } => {
                let msg = Message::from_bytes(payload).expect("the client's own message decodes");
                seen.xid = msg.xid();
            }
            Action::Arp { payload, .. } => {
                if let Some(a) = crate::arp::parse(payload) {
                    seen.probed = Some(a.target_ip);
                }
            }
            Action::Event { kind: EventKind::Bound | EventKind::Renew, lease: Some(l) } => {
                assert!(packet::usable_address(l.address), "bound to {}", l.address);
                seen.lease = Some(l.address);
                let client = ClientView { requested: vec![], client_id: MAC.to_vec(), expiry: Some(1_000_000) };
                let text = lease::file_text(l, &client);
                let back = lease::parse_file(&text).map(|(a, _)| a);
                assert_eq!(back, Some(l.address), "the lease file reads back as its address:\n{text}");
                let _ = lease::to_dbus(Some(l), &client);
            }
            Action::Event { .. } | Action::SaveLease(_) | Action::RemoveLease | Action::Finished => {}
        }
    }
}

/// The fuzzer's bytes as a BOOTP reply to `xid` from our server, for our MAC.
fn patched(bytes: &[u8], xid: u32) -> Vec<u8> {
    let mut p = bytes.to_vec();
    if p.len() < OPTIONS_AT {
        p.resize(OPTIONS_AT, 0);
    }
    p[0] = 2; // BOOTREPLY
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[28..34].copy_from_slice(&MAC);
    p[236..240].copy_from_slice(&COOKIE);
    p
}

/// A reply of message type `kind` (1..=8 mostly) offering 198.18.0.`yiaddr`.
fn reply(xid: u32, kind: u8, yiaddr: u8, lease_time: u32, extra: &[u8]) -> Vec<u8> {
    let mut p = patched(&[], xid);
    p[16..20].copy_from_slice(&[198, 18, 0, yiaddr]);
    let kind = if kind < 0xf0 { kind % 8 + 1 } else { kind };
    p.extend_from_slice(&[53, 1, kind]);
    p.extend_from_slice(&[54, 4, 198, 18, 0, 1]);
    p.extend_from_slice(&[51, 4]);
    p.extend_from_slice(&(if lease_time == 0xffff { u32::MAX } else { lease_time }).to_be_bytes());
    p.extend_from_slice(&[1, 4, 255, 255, 255, 0, 3, 4, 198, 18, 0, 1]);
    p.extend_from_slice(extra);
    p.push(255);
    p
}

fn arp_packet(op: u16, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut p = crate::arp::probe([2, 0x99, 0, 0, 0, 7], target);
    p[6..8].copy_from_slice(&op.to_be_bytes());
    p[14..18].copy_from_slice(&sender.octets());
    p
}

/// The DHCPv6 session (`fuzz/fuzz_targets/dhcp6.rs`): the same idea for
/// [`Machine6`]. Packet steps are raw bytes, the fuzzer's options after a
/// header with our transaction id and Client/Server Identifiers, or a
/// well-formed Advertise/Reply (address, lifetimes, T1/T2, Preference,
/// Rapid Commit from the fuzzer) with the fuzzer's bytes as more options.
/// Checked besides "no panic": the client's own messages decode, and a
/// lease has a usable address, preferred ≤ valid, T1 ≤ T2, names that pass
/// the DNS checks, and an `a{sv}`. Returns how many leases came (for tests).
pub fn fuzz_entry6(data: &[u8]) -> usize {
    use dhcproto::v6::{self, DhcpOption};
    use dhcproto::{Decoder, Encodable, Encoder};

    use crate::lease6::{self, ClientView6};
    use crate::machine6::{Action6, Config6, Input6, Machine6};
    use crate::packet6::fixtures;

    let mut b = Bytes { data, at: 0 };
    let config = |b: &mut Bytes<'_>| {
        let flags = b.u8();
        Config6 {
            params: fixtures::params(),
            stateless: flags & 1 != 0,
            timeout: (flags & 2 != 0).then(|| Duration::from_secs(u64::from(b.u8()) + 1)),
        }
    };
    let seed = u64::from(b.u16()) << 16 | u64::from(b.u16());
    let mut machine = Machine6::new(config(&mut b), seed);
    let mut now: Time = Duration::ZERO;
    let mut xid = 0u32;
    let mut leases = 0;
    let mut check = |acts: &[Action6], xid: &mut u32| {
        for a in acts {
            match a {
                Action6::Send { payload, .. } => {
                    let m = v6::Message::decode(&mut Decoder::new(payload)).expect("the client's own message decodes");
                    *xid = m.xid_num();
                }
                Action6::Event { lease: Some(l), .. } => {
                    leases += 1;
                    if let Some(a) = l.address {
                        assert!(!a.is_unspecified() && !a.is_multicast() && !a.is_loopback(), "bound to {a}");
                        assert!(l.preferred <= l.valid && l.t1 <= l.t2, "{l:?}");
                    }
                    for n in &l.search {
                        assert_eq!(crate::sanitize::dns_name(n).as_deref(), Ok(n.as_str()));
                    }
                    let _ = lease6::to_dbus(Some(l), &ClientView6::default());
                }
                Action6::Event { .. } | Action6::Finished => {}
            }
        }
    };
    check(&machine.handle(Input6::Start, now), &mut xid);
    for _ in 0..MAX_STEPS {
        if b.done() {
            break;
        }
        let op = b.u8();
        let acts = match op % 8 {
            0 | 1 => {
                now = machine.deadline().map_or(now + Duration::from_secs(1), |d| d.max(now));
                machine.handle(Input6::Timer, now)
            }
            2 => {
                now += Duration::from_millis(u64::from(b.u16()) * 100);
                machine.handle(Input6::Timer, now)
            }
            3 => {
                let n = usize::from(b.u16() % 1500);
                let payload = b.take(n).to_vec();
                machine.handle(Input6::Packet(&payload), now)
            }
            4 | 5 => {
                let mut m =
                    v6::Message::new(if op & 0x10 != 0 { v6::MessageType::Advertise } else { v6::MessageType::Reply });
                m.set_xid_num(xid);
                m.opts_mut().insert(DhcpOption::ClientId(fixtures::DUID.to_vec()));
                m.opts_mut().insert(DhcpOption::ServerId(fixtures::SERVER_DUID.to_vec()));
                let mut payload = Vec::new();
                let _ = m.encode(&mut Encoder::new(&mut payload));
                let n = usize::from(b.u16() % 1500);
                payload.extend_from_slice(b.take(n));
                machine.handle(Input6::Packet(&payload), now)
            }
            _ => {
                let kind = if op & 0x10 != 0 { v6::MessageType::Advertise } else { v6::MessageType::Reply };
                let host = b.u8();
                let address = fixtures::ADDR.to_bits() & !0xff | u128::from(host);
                let lives = (u32::from(b.u16()), u32::from(b.u16()));
                let t = (u32::from(b.u8()), u32::from(b.u8()));
                let offered = (op & 0x20 == 0).then(|| (std::net::Ipv6Addr::from_bits(address), lives.0, lives.1));
                let mut m = fixtures::reply(kind, xid, offered, t);
                if op & 0x40 != 0 {
                    m.opts_mut().insert(DhcpOption::RapidCommit);
                }
                if op & 0x80 != 0 {
                    m.opts_mut().insert(DhcpOption::Preference(b.u8()));
                }
                let mut payload = fixtures::bytes(&m);
                let n = usize::from(b.u8());
                payload.extend_from_slice(b.take(n));
                machine.handle(Input6::Packet(&payload), now)
            }
        };
        check(&acts, &mut xid);
        let _ = (machine.state_name(), machine.lease());
        // Now and then nm-core finds the address (or one like it) in use.
        if op == 0xfe {
            let host = b.u8();
            let address = std::net::Ipv6Addr::from_bits(fixtures::ADDR.to_bits() & !0xff | u128::from(host));
            check(&machine.handle(Input6::Decline { address }, now), &mut xid);
        }
        if op == 0xff {
            let acts = machine.handle(Input6::Stop { release: b.u8() & 1 != 0 }, now);
            check(&acts, &mut xid);
            machine = Machine6::new(config(&mut b), seed.wrapping_add(now.as_millis() as u64));
            check(&machine.handle(Input6::Start, now), &mut xid);
        }
    }
    leases
}

/// The IPv4 link-local entry (`fuzz/fuzz_targets/ll.rs`): arbitrary bytes
/// become a session of [`MachineLl`] — ARP packets from the link (most
/// patched to name the address being probed or held, so conflicts and
/// defences happen), timer ticks on a virtual clock and the occasional
/// stop. What must hold whatever arrives: every address bound is in
/// 169.254.1.0–169.254.254.255, a lost address is the one held, and the
/// machine's own packets are well-formed ARP from its MAC. Returns how
/// many addresses were bound.
pub fn fuzz_entry_ll(data: &[u8]) -> usize {
    use crate::arp;
    use crate::machine_ll::{ActionLl, ConfigLl, InputLl, MachineLl};

    let mut b = Bytes { data, at: 0 };
    let cfg = ConfigLl { mac: MAC, probe_time: Duration::from_millis(u64::from(b.u8()) * 10 + 3) };
    let seed = u64::from(b.u16()) << 16 | u64::from(b.u16());
    let mut machine = MachineLl::new(cfg, seed);
    let mut now: Time = Duration::ZERO;
    let mut held: Option<Ipv4Addr> = None;
    let mut probing = crate::machine_ll::candidate(MAC, 0);
    let mut bound = 0;
    let mut acts = machine.handle(InputLl::Start, now);
    for _ in 0..MAX_STEPS {
        for a in &acts {
            match a {
                ActionLl::Send { payload, .. } => {
                    let p = arp::parse(payload).expect("the machine's own ARP parses");
                    assert_eq!(p.sender_mac, MAC);
                    probing = p.target_ip;
                }
                ActionLl::Bound(addr) => {
                    let o = addr.octets();
                    assert!(o[0] == 169 && o[1] == 254 && (1..=254).contains(&o[2]), "bound to {addr}");
                    held = Some(*addr);
                    bound += 1;
                }
                ActionLl::Lost(addr) => {
                    assert_eq!(held, Some(*addr), "lost what it held");
                    held = None;
                }
                ActionLl::Finished => return bound,
            }
        }
        if b.done() {
            break;
        }
        acts = match b.u8() % 4 {
            // A packet from the fuzzer, taken as it is.
            0 => {
                let len = usize::from(b.u8() % 40);
                machine.handle(InputLl::Arp(b.take(len)), now)
            }
            // ARP for the address in question: a reply or announcement
            // from another host, or another host's probe.
            1 => {
                let other = [2, 0, 0, 0, 0, b.u8()];
                let target = held.unwrap_or(probing);
                let p = if b.u8() & 1 == 0 { arp::announcement(other, target) } else { arp::probe(other, target) };
                machine.handle(InputLl::Arp(&p), now)
            }
            2 => {
                now += Duration::from_millis(u64::from(b.u16()));
                machine.handle(InputLl::Timer, now)
            }
            _ if b.u8() == 0 => machine.handle(InputLl::Stop, now),
            _ => {
                now = machine.deadline().unwrap_or(now).max(now);
                machine.handle(InputLl::Timer, now)
            }
        };
    }
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_samples_ll() {
        for seed in 0u8..=255 {
            let data: Vec<u8> = (0..400u32).map(|i| seed.wrapping_mul(i as u8).wrapping_add((i * 7) as u8)).collect();
            fuzz_entry_ll(&data);
        }
    }

    #[test]
    fn reaches_bound_ll_with_timers_alone() {
        // probe time 3 ms, seed 0; then six steps "timer at the deadline".
        let data = [0u8, 0, 0, 0, 0, 3, 1, 3, 1, 3, 1, 3, 1, 3, 1, 3, 1];
        assert_eq!(fuzz_entry_ll(&data), 1);
    }

    #[test]
    fn survives_samples6() {
        for seed in 0u8..=255 {
            let data: Vec<u8> = (0..400u32).map(|i| seed.wrapping_mul(i as u8).wrapping_add((i * 7) as u8)).collect();
            fuzz_entry6(&data);
        }
    }

    #[test]
    fn reaches_bound6_with_a_well_formed_script() {
        // flags 0, seed 0; then a Reply with Rapid Commit (op 0x46).
        let data = [0u8, 0, 0, 0, 0, 0x46, 0x50, 0x10, 0x0e, 0x20, 0x1c, 100, 160, 0];
        assert_eq!(fuzz_entry6(&data), 1);
    }

    #[test]
    fn survives_samples() {
        for seed in 0u8..=255 {
            let data: Vec<u8> = (0..400u32).map(|i| seed.wrapping_mul(i as u8).wrapping_add((i * 7) as u8)).collect();
            fuzz_entry(&data);
        }
    }

    #[test]
    fn reaches_bound_with_a_well_formed_script() {
        // no previous lease; flags 0; then OFFER (kind 1 → 2), ACK (kind 4 → 5)
        let data = [0u8, 0, 0, 0, 0, 0, 6, 1, 150, 0x10, 0x0e, 0, 6, 4, 150, 0x10, 0x0e, 0];
        let mut b = Bytes { data: &data, at: 0 };
        let _ = b.u8();
        let _ = b.u16();
        let _ = b.u16();
        let mut m = Machine::new(config(&mut b, None), 1);
        let mut seen = Seen::default();
        apply(&m.handle(Input::Start, Duration::ZERO), &mut seen);
        let offer = reply(seen.xid, 1, 150, 3600, &[]);
        apply(&m.handle(Input::Packet { payload: &offer, from: SERVER }, Duration::ZERO), &mut seen);
        assert_eq!(m.state_name(), "requesting");
        let ack = reply(seen.xid, 4, 150, 3600, &[]);
        apply(&m.handle(Input::Packet { payload: &ack, from: SERVER }, Duration::ZERO), &mut seen);
        assert_eq!(m.state_name(), "bound");
        assert_eq!(seen.lease, Some(Ipv4Addr::new(198, 18, 0, 150)));
        // and the whole entry with that script
        fuzz_entry(&data);
    }
}
