//! LLDP (IEEE 802.1AB) reception: what the switch port at the other end of
//! a link says about itself, as NetworkManager shows it (`nmcli device
//! lldp`). [`parse`] is pure and bounds-checked (the frames come from the
//! network: fuzzed); [`LldpListener`] is a packet socket bound to one link
//! that receives the LLDP ethertype sent to the three LLDP group addresses.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

/// The LLDP ethertype.
pub const ETH_P_LLDP: u16 = 0x88cc;

/// The group addresses LLDP frames go to, and NetworkManager's name for each.
const DESTINATIONS: [([u8; 6], &str); 3] = [
    ([0x01, 0x80, 0xc2, 0, 0, 0x0e], "nearest-bridge"),
    ([0x01, 0x80, 0xc2, 0, 0, 0x03], "nearest-non-tpmr-bridge"),
    ([0x01, 0x80, 0xc2, 0, 0, 0x00], "nearest-customer-bridge"),
];

/// One neighbour, from its latest LLDPDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LldpNeighbor {
    /// The whole frame, from the destination address on.
    pub raw: Vec<u8>,
    pub destination: &'static str,
    pub chassis_id_type: u8,
    pub chassis_id: String,
    pub port_id_type: u8,
    pub port_id: String,
    /// Seconds the information is valid; 0 says the neighbour is leaving.
    pub ttl: u16,
    pub port_description: Option<String>,
    pub system_name: Option<String>,
    pub system_description: Option<String>,
    /// The capabilities the system has (the enabled ones are in the TLV's
    /// second half).
    pub system_capabilities: Option<u16>,
    pub management_addresses: Vec<IpAddr>,
    /// IEEE 802.1 port VLAN id.
    pub ieee_802_1_pvid: Option<u16>,
    /// IEEE 802.3 maximum frame size.
    pub ieee_802_3_max_frame_size: Option<u16>,
}

impl LldpNeighbor {
    /// Whether `other` is the same neighbour (chassis and port).
    pub fn same(&self, other: &LldpNeighbor) -> bool {
        (self.chassis_id_type, &self.chassis_id, self.port_id_type, &self.port_id)
            == (other.chassis_id_type, &other.chassis_id, other.port_id_type, &other.port_id)
    }
}

/// Text of a string TLV: printable as it is, else in hex.
fn text(data: &[u8]) -> String {
    // Some senders pad names with NULs.
    let trimmed = data.iter().rposition(|b| *b != 0).map_or(&data[..0], |end| &data[..=end]);
    match std::str::from_utf8(trimmed) {
        Ok(s) if !s.is_empty() && s.chars().all(|c| !c.is_control()) => s.to_string(),
        _ => hex(data),
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// An address of an IANA address family (1 IPv4, 2 IPv6).
fn network_address(data: &[u8]) -> Option<IpAddr> {
    match data {
        [1, a, b, c, d] => Some(IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d))),
        [2, rest @ ..] if rest.len() == 16 => <[u8; 16]>::try_from(rest).ok().map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        _ => None,
    }
}

/// A chassis or port id as NetworkManager shows it: a MAC address as
/// `AA:BB:…`, a network address as the address, names as text.
fn id_text(subtype: u8, data: &[u8], mac_subtype: u8, address_subtype: u8) -> String {
    if subtype == mac_subtype && data.len() == 6 {
        return hex(data);
    }
    if subtype == address_subtype
        && let Some(a) = network_address(data)
    {
        return a.to_string();
    }
    text(data)
}

/// Reads an LLDP frame (Ethernet header included). `None` for anything
/// that is not a valid LLDPDU: another ethertype or destination, the
/// three mandatory TLVs (chassis id, port id, TTL) missing or out of order,
/// a TLV running past the end.
pub fn parse(frame: &[u8]) -> Option<LldpNeighbor> {
    let dst: [u8; 6] = frame.get(..6)?.try_into().ok()?;
    let destination = DESTINATIONS.iter().find(|(mac, _)| *mac == dst)?.1;
    if frame.get(12..14)? != ETH_P_LLDP.to_be_bytes() {
        return None;
    }
    let mut rest = frame.get(14..)?;
    let mut tlvs: Vec<(u8, &[u8])> = Vec::new();
    while rest.len() >= 2 {
        let header = u16::from_be_bytes([rest[0], rest[1]]);
        let (kind, len) = ((header >> 9) as u8, usize::from(header & 0x1ff));
        let value = rest.get(2..2 + len)?;
        rest = &rest[2 + len..];
        if kind == 0 {
            break;
        }
        tlvs.push((kind, value));
    }
    // Chassis id, port id and TTL come first, in this order.
    let (chassis, port, ttl) = match tlvs.get(..3)? {
        [(1, c), (2, p), (3, t)] if c.len() >= 2 && p.len() >= 2 && t.len() >= 2 => (*c, *p, *t),
        _ => return None,
    };
    let mut n = LldpNeighbor {
        raw: frame.to_vec(),
        destination,
        chassis_id_type: chassis[0],
        chassis_id: id_text(chassis[0], &chassis[1..], 4, 5),
        port_id_type: port[0],
        port_id: id_text(port[0], &port[1..], 3, 4),
        ttl: u16::from_be_bytes([ttl[0], ttl[1]]),
        port_description: None,
        system_name: None,
        system_description: None,
        system_capabilities: None,
        management_addresses: Vec::new(),
        ieee_802_1_pvid: None,
        ieee_802_3_max_frame_size: None,
    };
    for (kind, value) in &tlvs[3..] {
        match (kind, value.len()) {
            (4, _) => n.port_description = Some(text(value)),
            (5, _) => n.system_name = Some(text(value)),
            (6, _) => n.system_description = Some(text(value)),
            (7, 4..) => n.system_capabilities = Some(u16::from_be_bytes([value[0], value[1]])),
            // Management address: its length (subtype included), then the
            // subtype and the address.
            (8, 2..) => {
                let len = usize::from(value[0]);
                if let Some(a) = value.get(1..1 + len).and_then(network_address) {
                    n.management_addresses.push(a);
                }
            }
            (127, 4..) => match (&value[..3], value[3], &value[4..]) {
                ([0x00, 0x80, 0xc2], 1, [a, b, ..]) => n.ieee_802_1_pvid = Some(u16::from_be_bytes([*a, *b])),
                ([0x00, 0x12, 0x0f], 4, [a, b, ..]) => {
                    n.ieee_802_3_max_frame_size = Some(u16::from_be_bytes([*a, *b]));
                }
                _ => {}
            },
            _ => {}
        }
    }
    Some(n)
}

/// A packet socket receiving the LLDP frames that arrive on one link.
pub struct LldpListener {
    fd: AsyncFd<OwnedFd>,
}

impl LldpListener {
    /// Opens it on the link `ifindex` (in this namespace): bound to the
    /// LLDP ethertype, member of the three LLDP group addresses.
    pub fn open(ifindex: u32) -> io::Result<LldpListener> {
        let proto = ETH_P_LLDP.to_be();
        let check = |rc: libc::c_int| if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(rc) };
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let raw = check(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::c_int::from(proto),
            )
        })?;
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let index = libc::c_int::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: sockaddr_ll is plain data; all zeros is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = proto;
        addr.sll_ifindex = index;
        // SAFETY: bind reads the sockaddr_ll we own, of the size we pass.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        for (mac, _) in DESTINATIONS {
            // SAFETY: packet_mreq is plain data; all zeros is a valid value.
            let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
            mreq.mr_ifindex = index;
            mreq.mr_type = libc::PACKET_MR_MULTICAST as libc::c_ushort;
            mreq.mr_alen = 6;
            mreq.mr_address[..6].copy_from_slice(&mac);
            // SAFETY: setsockopt reads the packet_mreq we own, of the size we pass.
            check(unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_ADD_MEMBERSHIP,
                    std::ptr::from_ref(&mreq).cast(),
                    std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
                )
            })?;
        }
        // SAFETY: the descriptor is owned by the AsyncFd and stays open as
        // long as it is registered.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(LldpListener { fd })
    }

    /// The next frame that arrives (from its destination address on).
    pub async fn next(&self) -> io::Result<Vec<u8>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = vec![0u8; 1600];
            // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    guard.clear_ready();
                    continue;
                }
                return Err(e);
            }
            buf.truncate(n.unsigned_abs());
            return Ok(buf);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An LLDPDU as a switch sends it, TLVs given as (type, value).
    pub(crate) fn frame(tlvs: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xcc];
        for (kind, value) in tlvs {
            let header = (u16::from(*kind) << 9) | u16::try_from(value.len()).unwrap();
            f.extend_from_slice(&header.to_be_bytes());
            f.extend_from_slice(value);
        }
        f.extend_from_slice(&[0, 0]);
        f
    }

    #[test]
    fn reads_what_a_switch_says() {
        let f = frame(&[
            (1, [&[4u8][..], &[0x00, 0x11, 0x22, 0x33, 0x44, 0x55]].concat()),
            (2, [&[5u8][..], b"swp7"].concat()),
            (3, vec![0, 120]),
            (4, b"uplink port".to_vec()),
            (5, b"lab-switch".to_vec()),
            (6, b"Switch OS 1.0".to_vec()),
            (7, vec![0, 0x14, 0, 0x04]),
            (8, vec![5, 1, 192, 0, 2, 9, 2, 0, 0, 0, 1, 0]),
            (127, vec![0x00, 0x80, 0xc2, 1, 0, 10]),
            (127, vec![0x00, 0x12, 0x0f, 4, 0x05, 0xee]),
        ]);
        let n = parse(&f).expect("an LLDPDU");
        assert_eq!(
            (n.destination, n.chassis_id_type, n.chassis_id.as_str()),
            ("nearest-bridge", 4, "00:11:22:33:44:55")
        );
        assert_eq!((n.port_id_type, n.port_id.as_str(), n.ttl), (5, "swp7", 120));
        assert_eq!(n.port_description.as_deref(), Some("uplink port"));
        assert_eq!(n.system_name.as_deref(), Some("lab-switch"));
        assert_eq!(n.system_description.as_deref(), Some("Switch OS 1.0"));
        assert_eq!(n.system_capabilities, Some(0x14));
        assert_eq!(n.management_addresses, vec![IpAddr::from([192, 0, 2, 9])]);
        assert_eq!((n.ieee_802_1_pvid, n.ieee_802_3_max_frame_size), (Some(10), Some(1518)));
        assert_eq!(n.raw, f);
    }

    #[test]
    fn refuses_what_is_not_an_lldpdu() {
        let good = |ttl: Vec<u8>| frame(&[(1, vec![7, b'c']), (2, vec![7, b'p']), (3, ttl)]);
        assert!(parse(&good(vec![0, 0])).is_some_and(|n| n.ttl == 0), "a shutdown LLDPDU");
        assert!(parse(&good(vec![0])).is_none(), "a short TTL");
        assert!(parse(&frame(&[(2, vec![7, b'p']), (1, vec![7, b'c']), (3, vec![0, 5])])).is_none(), "order");
        let mut other_dest = good(vec![0, 5]);
        other_dest[5] = 0x01;
        assert!(parse(&other_dest).is_none());
        let mut truncated = good(vec![0, 5]);
        truncated.truncate(20);
        assert!(parse(&truncated).is_none());
        assert!(parse(&[]).is_none());
        // A TLV claiming more than the frame holds.
        let mut long = good(vec![0, 5]);
        let at = long.len() - 2;
        long[at] = 0x0b;
        long[at + 1] = 0xff;
        assert!(parse(&long).is_none(), "a TLV past the end");
        assert_eq!(text(&[0xff, 0x00]), "FF:00");
        assert_eq!(text(b"sw1\0\0"), "sw1", "NUL padding");
    }
}
