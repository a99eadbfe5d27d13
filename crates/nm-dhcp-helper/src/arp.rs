//! ARP for address conflict detection (RFC 5227): the probes and the
//! announcement the client sends, and a strict reader of what arrives.
//! Pure; the bytes are the ARP payload of an Ethernet frame (what an
//! `AF_PACKET`/`SOCK_DGRAM` socket hands over), never the Ethernet header.

use std::net::Ipv4Addr;

/// An Ethernet/IPv4 ARP packet's length; frames are padded beyond it.
pub const LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// One received ARP packet, its fields checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

fn build(op: u16, sender_mac: [u8; 6], sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let mut p = Vec::with_capacity(LEN);
    p.extend_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    p.extend_from_slice(&PTYPE_IPV4.to_be_bytes());
    p.push(6);
    p.push(4);
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sender_mac);
    p.extend_from_slice(&sender_ip.octets());
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&target_ip.octets());
    p
}

/// An ARP Probe (RFC 5227 §2.1.1): a request from 0.0.0.0 for `address`.
pub fn probe(mac: [u8; 6], address: Ipv4Addr) -> Vec<u8> {
    build(OP_REQUEST, mac, Ipv4Addr::UNSPECIFIED, address)
}

/// An ARP Announcement (RFC 5227 §2.3): a request from `address` for itself.
pub fn announcement(mac: [u8; 6], address: Ipv4Addr) -> Vec<u8> {
    build(OP_REQUEST, mac, address, address)
}

/// Reads an ARP payload from the network: Ethernet hardware, IPv4 protocol,
/// request or reply, at least 28 bytes (the rest is frame padding).
/// Anything else is `None`.
pub fn parse(b: &[u8]) -> Option<Arp> {
    let b = b.get(..LEN)?;
    let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let mac_at = |i: usize| -> [u8; 6] { [b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5]] };
    let ip_at = |i: usize| Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]);
    if u16_at(0) != HTYPE_ETHERNET || u16_at(2) != PTYPE_IPV4 || b[4] != 6 || b[5] != 4 {
        return None;
    }
    let op = u16_at(6);
    if op != OP_REQUEST && op != OP_REPLY {
        return None;
    }
    Some(Arp { op, sender_mac: mac_at(8), sender_ip: ip_at(14), target_mac: mac_at(18), target_ip: ip_at(24) })
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 77);

    #[test]
    fn probe_layout() {
        let p = probe(MAC, ADDR);
        assert_eq!(
            p,
            [
                0, 1, 8, 0, 6, 4, 0, 1, // Ethernet, IPv4, 6, 4, request
                2, 0, 0, 0, 0, 1, 0, 0, 0, 0, // sender: our MAC, 0.0.0.0
                0, 0, 0, 0, 0, 0, 198, 18, 0, 77 // target: no MAC, the address
            ]
        );
        let a = parse(&p).unwrap();
        assert_eq!(a.op, OP_REQUEST);
        assert_eq!(a.sender_mac, MAC);
        assert!(a.sender_ip.is_unspecified());
        assert_eq!(a.target_mac, [0; 6]);
        assert_eq!(a.target_ip, ADDR);
        let ann = parse(&announcement(MAC, ADDR)).unwrap();
        assert_eq!((ann.sender_ip, ann.target_ip), (ADDR, ADDR));
    }

    #[test]
    fn padding_is_ignored() {
        let mut p = probe(MAC, ADDR);
        p.resize(46, 0xee);
        assert_eq!(parse(&p).unwrap().target_ip, ADDR);
    }

    #[test]
    fn malformed_packets_are_refused() {
        let good = probe(MAC, ADDR);
        for cut in 0..LEN {
            assert_eq!(parse(&good[..cut]), None, "{cut} bytes");
        }
        for (i, v) in [(1, 6u8), (0, 1), (3, 0xdd), (2, 0x86), (4, 8), (4, 0), (5, 16), (7, 0), (7, 3), (6, 1)] {
            let mut p = good.clone();
            p[i] = v;
            assert_eq!(parse(&p), None, "byte {i} = {v}");
        }
        let mut reply = good.clone();
        reply[7] = 2;
        assert_eq!(parse(&reply).unwrap().op, OP_REPLY);
        // Noise of every length: never a panic.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..200 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = parse(&junk);
        }
    }

    #[test]
    fn macs_print_as_usual() {
        assert_eq!(mac_string(&[0x02, 0xab, 0, 0, 0x10, 0xff]), "02:ab:00:00:10:ff");
    }
}
