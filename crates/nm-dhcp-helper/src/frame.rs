//! The IPv4 and UDP headers around DHCP messages on the raw packet socket
//! (the DHCP message itself is dhcproto's). Before it has an address the
//! client must write these headers itself and read them off what the
//! kernel hands up; everything is bounds-checked and a packet that does not
//! add up is dropped.

use std::net::Ipv4Addr;

const IP_HEADER: usize = 20;
const UDP_HEADER: usize = 8;
const PROTO_UDP: u8 = 17;
/// IP precedence "internetwork control" (CS6), as NetworkManager sends DHCP.
const TOS_CS6: u8 = 0xc0;

/// The one's-complement sum of RFC 1071, folded.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, udp_len: u16) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[0..4].copy_from_slice(&src.octets());
    p[4..8].copy_from_slice(&dst.octets());
    p[9] = PROTO_UDP;
    p[10..12].copy_from_slice(&udp_len.to_be_bytes());
    p
}

/// An IPv4 packet holding one UDP datagram; `None` if it would not fit.
pub fn build(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Option<Vec<u8>> {
    let udp_len = u16::try_from(UDP_HEADER + payload.len()).ok()?;
    let total = u16::try_from(IP_HEADER + UDP_HEADER + payload.len()).ok()?;
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, TOS_CS6]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]); // id, flags, fragment offset
    p.extend_from_slice(&[64, PROTO_UDP, 0, 0]); // ttl, protocol, checksum
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let ip_sum = checksum(&[&p[..IP_HEADER]]);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let mut udp = Vec::with_capacity(UDP_HEADER);
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    let mut sum = checksum(&[&pseudo_header(src, dst, udp_len), &udp, payload]);
    if sum == 0 {
        sum = 0xffff; // RFC 768: zero means "no checksum"
    }
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&udp);
    p.extend_from_slice(payload);
    Some(p)
}

/// A received datagram.
#[derive(Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub payload: &'a [u8],
}

/// The UDP datagram in an IPv4 packet, or `None` for anything else:
/// not IPv4/UDP, a fragment, lengths that do not add up, a bad IP header
/// checksum, or a bad UDP checksum when `check_udp` (the kernel says the
/// checksum was not filled in yet for packets from a local veth peer).
pub fn parse(packet: &[u8], check_udp: bool) -> Option<Datagram<'_>> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < IP_HEADER || packet.len() < ihl {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    if total < ihl + UDP_HEADER || total > packet.len() {
        return None;
    }
    let frag = u16::from_be_bytes([packet[6], packet[7]]);
    if frag & 0x3fff != 0 || packet[9] != PROTO_UDP {
        return None;
    }
    if checksum(&[&packet[..ihl]]) != 0 {
        return None;
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let udp = &packet[ihl..total];
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if udp_len < UDP_HEADER || udp_len > udp.len() {
        return None;
    }
    let udp = &udp[..udp_len];
    let sum = u16::from_be_bytes([udp[6], udp[7]]);
    if check_udp && sum != 0 && checksum(&[&pseudo_header(src, dst, udp_len as u16), udp]) != 0 {
        return None;
    }
    Some(Datagram {
        src,
        sport: u16::from_be_bytes([udp[0], udp[1]]),
        dport: u16::from_be_bytes([udp[2], udp[3]]),
        payload: &udp[UDP_HEADER..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::BROADCAST;

    #[test]
    fn round_trip() {
        let p = build(A, B, 67, 68, b"hello").unwrap();
        assert_eq!(p.len(), 20 + 8 + 5);
        let d = parse(&p, true).unwrap();
        assert_eq!(d, Datagram { src: A, sport: 67, dport: 68, payload: b"hello" });
        // Ethernet padding after the IP packet is not payload.
        let mut padded = p.clone();
        padded.extend_from_slice(&[0; 20]);
        assert_eq!(parse(&padded, true).unwrap().payload, b"hello");
        let odd = build(Ipv4Addr::UNSPECIFIED, B, 68, 67, b"odd").unwrap();
        assert!(parse(&odd, true).is_some());
    }

    #[test]
    fn broken_packets_are_dropped() {
        let p = build(A, B, 67, 68, b"hello").unwrap();
        for cut in 0..p.len() {
            assert!(parse(&p[..cut], true).is_none(), "cut at {cut}");
        }
        let mut bad = p.clone();
        bad[12] ^= 1; // IP checksum now wrong
        assert!(parse(&bad, true).is_none());
        let mut bad = p.clone();
        bad[30] ^= 1; // payload changed: UDP checksum wrong
        assert!(parse(&bad, true).is_none());
        assert!(parse(&bad, false).is_some(), "checksum not ready: not checked");
        let mut frag = p.clone();
        frag[6] = 0x20; // more fragments
        let sum = checksum(&[&{
            let mut h = frag[..20].to_vec();
            h[10] = 0;
            h[11] = 0;
            h
        }]);
        frag[10..12].copy_from_slice(&sum.to_be_bytes());
        assert!(parse(&frag, true).is_none());
        let mut v6 = p.clone();
        v6[0] = 0x65;
        assert!(parse(&v6, true).is_none());
        let mut short_udp = p.clone();
        short_udp[24..26].copy_from_slice(&4u16.to_be_bytes());
        assert!(parse(&short_udp, false).is_none());
        let mut long_udp = p;
        long_udp[24..26].copy_from_slice(&400u16.to_be_bytes());
        assert!(parse(&long_udp, false).is_none());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut s = 99u64;
        for _ in 0..50_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let len = (s % 80) as usize;
            let mut p: Vec<u8> = (0..len).map(|i| (s >> (i % 56)) as u8).collect();
            if let Some(b) = p.first_mut() {
                *b = 0x45;
            }
            let _ = parse(&p, s.is_multiple_of(2));
        }
    }
}
