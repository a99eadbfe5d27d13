//! Router Solicitation (RFC 4861 §6.3.7) when an `auto` activation starts
//! on a link that is already up. The kernel solicits routers only when a
//! link comes up (after its link-local address's DAD), so after
//! `connection down` / `up` it would wait for the next unsolicited
//! advertisement, minutes away; NetworkManager solicits on every
//! activation. The advertisement that answers is the kernel's to take
//! (`accept_ra`), as any other.

use std::io;
use std::net::Ipv6Addr;

/// ICMPv6 type of a Router Solicitation.
const ROUTER_SOLICITATION: u8 = 133;
/// NDP option: Source Link-Layer Address.
const SOURCE_LINK_LAYER: u8 = 1;
/// All-routers multicast address.
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// The message: type, code, checksum (the kernel fills it in for raw
/// ICMPv6 sockets), reserved, then the sender's MAC when it has an
/// Ethernet one (lets the router answer without resolving us first).
pub fn router_solicitation(mac: Option<&[u8]>) -> Vec<u8> {
    let mut m = vec![ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
    if let Some(mac) = mac.filter(|m| m.len() == 6) {
        m.extend([SOURCE_LINK_LAYER, 1]);
        m.extend(mac);
    }
    m
}

/// Sends one Router Solicitation on the link (from its link-local address,
/// hop limit 255 as RFC 4861 requires).
pub fn solicit_routers(ifindex: u32, mac: Option<&[u8]>) -> io::Result<()> {
    // SAFETY: socket(2) with constant arguments; the descriptor is owned
    // by `fd` from here on and closed when it drops.
    let raw = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_ICMPV6) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let hops: libc::c_int = 255;
    let index = libc::c_int::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    for (option, value) in [(libc::IPV6_MULTICAST_HOPS, hops), (libc::IPV6_MULTICAST_IF, index)] {
        // SAFETY: `value` is a c_int that lives across the call.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                option,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let message = router_solicitation(mac);
    // SAFETY: an all-zero sockaddr_in6 is valid; the fields are set below.
    let mut to: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    to.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    to.sin6_addr.s6_addr = ALL_ROUTERS.octets();
    to.sin6_scope_id = ifindex;
    // SAFETY: the buffer and the address are valid for the given lengths.
    let sent = unsafe {
        libc::sendto(
            fd,
            message.as_ptr().cast(),
            message.len(),
            0,
            (&to as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_solicitation_names_its_sender_when_it_can() {
        assert_eq!(router_solicitation(None), [133, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(router_solicitation(Some(&[1, 2, 3])), [133, 0, 0, 0, 0, 0, 0, 0], "not an Ethernet address");
        assert_eq!(
            router_solicitation(Some(&[2, 0, 0, 0, 0, 7])),
            [133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 7],
            "option 1, 8 bytes long"
        );
    }
}
