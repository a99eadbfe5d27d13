//! The sockets of a transaction (CAP_NET_RAW, CAP_NET_BIND_SERVICE):
//!
//! - while the client has no address, an `AF_PACKET`/`SOCK_DGRAM` socket on
//!   the interface with a classic BPF filter that lets only unfragmented
//!   IPv4/UDP to port 68 up; it is created with protocol 0 (deaf), filtered,
//!   and only then bound, so nothing unfiltered is ever queued;
//! - once bound, a UDP socket on port 68 bound to the device
//!   (`SO_BINDTODEVICE`) for the unicast renewals and broadcast rebinds;
//! - while a new address is checked for conflicts (RFC 5227), an
//!   `AF_PACKET`/`SOCK_DGRAM` socket for ARP on the interface, created deaf
//!   and bound to `ETH_P_ARP` the same way.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::frame;
use crate::packet::{CLIENT_PORT, SERVER_PORT};

/// What the helper knows about an interface.
#[derive(Debug, Clone)]
pub struct Link {
    pub ifindex: u32,
    pub ifname: String,
    pub mac: [u8; 6],
    pub mtu: u32,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the fd is owned right away.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, proto) })?;
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live T and its size is passed along.
    cvt(unsafe {
        libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), size_of::<T>() as libc::socklen_t)
    })
    .map(drop)
}

fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { zeroed() };
    if name.is_empty() || name.len() >= req.ifr_name.len() || name.contains('\0') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// Name, MAC and MTU of an interface (ethernet only).
pub fn link(ifindex: u32) -> io::Result<Link> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer has IF_NAMESIZE bytes as if_indextoname(3) requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return Err(io::Error::last_os_error());
    }
    let ifname: String = buf.iter().take_while(|c| **c != 0).map(|c| *c as u8 as char).collect();
    let sock = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    let mut req = ifreq_for(&ifname)?;
    // SAFETY: SIOCGIFHWADDR fills the ifreq we pass.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) })?;
    // SAFETY: after SIOCGIFHWADDR the union holds ifru_hwaddr.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    if hw.sa_family != libc::ARPHRD_ETHER {
        return Err(io::Error::new(io::ErrorKind::Unsupported, format!("{ifname} is not ethernet")));
    }
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *d = *s as u8;
    }
    let mut req = ifreq_for(&ifname)?;
    // SAFETY: SIOCGIFMTU fills the ifreq we pass.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU, &mut req) })?;
    // SAFETY: after SIOCGIFMTU the union holds ifru_mtu.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu }.max(0) as u32;
    Ok(Link { ifindex, ifname, mac, mtu })
}

/// The filter: IPv4, UDP, not a fragment, destination port 68.
fn bpf_program() -> Vec<libc::sock_filter> {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter { code: code as u16, jt, jf, k };
    vec![
        op(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, 0), // version/IHL
        op(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, 0, 0, 0xf0),
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 8, 0x40), // IPv4?
        op(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, 9),     // protocol
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 6, 17),   // UDP?
        op(libc::BPF_LD | libc::BPF_H | libc::BPF_ABS, 0, 0, 6),     // flags+offset
        op(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, 4, 0, 0x3fff), // fragment?
        op(libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH, 0, 0, 0),    // X = IHL*4
        op(libc::BPF_LD | libc::BPF_H | libc::BPF_IND, 0, 0, 2),     // UDP dport
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, u32::from(CLIENT_PORT)),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0xffff), // accept
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0),      // drop
    ]
}

fn sockaddr_ll(ifindex: u32, ethertype: libc::c_int, broadcast: bool) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = (ethertype as u16).to_be();
    sa.sll_ifindex = ifindex as i32;
    if broadcast {
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    }
    sa
}

/// Room for one received frame or datagram. We ask servers for at most
/// 1500 bytes (option 57); one that ignores it on a jumbo-frame link still
/// fits. A bigger frame is dropped (MSG_TRUNC), a bigger UDP datagram is cut
/// short and fails to parse. (64 KiB, zeroed, cost 96 KiB of resident memory.)
const RECEIVE_BUFFER: usize = 16 * 1024;

/// The raw socket used until the client has an address.
pub struct PacketSocket {
    fd: AsyncFd<OwnedFd>,
    ifindex: u32,
    buf: Vec<u8>,
}

impl PacketSocket {
    pub fn open(ifindex: u32) -> io::Result<PacketSocket> {
        let fd = socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0)?;
        let mut prog = bpf_program();
        let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)?;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_AUXDATA, &1 as &libc::c_int)?;
        bind_ll(&fd, ifindex, libc::ETH_P_IP)?;
        // SAFETY: the descriptor is owned by the AsyncFd and stays open as long
        // as it is registered.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(PacketSocket { fd, ifindex, buf: vec![0; RECEIVE_BUFFER] })
    }

    /// Broadcasts a DHCP message from 0.0.0.0:68 to 255.255.255.255:67.
    pub fn send_broadcast(&self, payload: &[u8]) -> io::Result<()> {
        let frame = frame::build(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, CLIENT_PORT, SERVER_PORT, payload)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
        send_ll_broadcast(self.fd.get_ref(), self.ifindex, libc::ETH_P_IP, &frame)
    }

    /// The next DHCP payload (and its IP source) that passed the filter and
    /// the header checks; packets that fail are skipped.
    pub async fn recv(&mut self) -> io::Result<(Ipv4Addr, Vec<u8>)> {
        loop {
            let (len, csum_ready) = self.fd.async_io(Interest::READABLE, |fd| recv_one(fd, &mut self.buf)).await?;
            let Some(len) = len else { continue };
            if let Some(d) = frame::parse(&self.buf[..len], csum_ready)
                && d.dport == CLIENT_PORT
            {
                return Ok((d.src, d.payload.to_vec()));
            }
        }
    }
}

/// Binds a packet socket to `ifindex` and `ethertype`: only then does it
/// receive.
fn bind_ll(fd: &OwnedFd, ifindex: u32, ethertype: libc::c_int) -> io::Result<()> {
    let sa = sockaddr_ll(ifindex, ethertype, false);
    // SAFETY: binding to a sockaddr_ll of the right size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Sends `payload` to the link's broadcast MAC as `ethertype`.
fn send_ll_broadcast(fd: &OwnedFd, ifindex: u32, ethertype: libc::c_int, payload: &[u8]) -> io::Result<()> {
    let sa = sockaddr_ll(ifindex, ethertype, true);
    // SAFETY: sending a live buffer to a sockaddr_ll of the right size.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            payload.as_ptr().cast(),
            payload.len(),
            0,
            (&sa as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The ARP socket used while an address is checked (RFC 5227). It needs
/// CAP_NET_RAW only; what it reads is handed over unparsed.
pub struct ArpSocket {
    fd: AsyncFd<OwnedFd>,
    ifindex: u32,
    buf: Vec<u8>,
}

impl ArpSocket {
    pub fn open(ifindex: u32) -> io::Result<ArpSocket> {
        // Protocol 0 hears nothing until bound to the interface, so no
        // other interface's ARP is ever queued.
        let fd = socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0)?;
        bind_ll(&fd, ifindex, libc::ETH_P_ARP)?;
        // SAFETY: the descriptor is owned by the AsyncFd and stays open as long
        // as it is registered.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(ArpSocket { fd, ifindex, buf: vec![0; 1536] })
    }

    /// Broadcasts one ARP packet (`ff:ff:ff:ff:ff:ff`).
    pub fn send_broadcast(&self, payload: &[u8]) -> io::Result<()> {
        send_ll_broadcast(self.fd.get_ref(), self.ifindex, libc::ETH_P_ARP, payload)
    }

    /// The next ARP payload from another host (our own outgoing frames and
    /// truncated ones are skipped).
    pub async fn recv(&mut self) -> io::Result<Vec<u8>> {
        loop {
            let (len, _) = self.fd.async_io(Interest::READABLE, |fd| recv_one(fd, &mut self.buf)).await?;
            if let Some(len) = len {
                return Ok(self.buf[..len].to_vec());
            }
        }
    }
}

/// One recvmsg: the length (None: outgoing, truncated) and whether the UDP
/// checksum is there to check.
fn recv_one(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<(Option<usize>, bool)> {
    // SAFETY: plain data structures, zeroed, then pointed at live buffers.
    let mut sa: libc::sockaddr_ll = unsafe { zeroed() };
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut control = [0u64; 16];
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut sa as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 16]>() as _;
    // SAFETY: msg points at live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut csum_ready = true;
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_PACKET && (*cmsg).cmsg_type == libc::PACKET_AUXDATA {
                let aux = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::tpacket_auxdata>());
                if aux.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0 {
                    csum_ready = false;
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if sa.sll_pkttype == libc::PACKET_OUTGOING || msg.msg_flags & libc::MSG_TRUNC != 0 {
        return Ok((None, csum_ready));
    }
    Ok((Some(n as usize), csum_ready))
}

/// Sends and receives only through the interface (`SO_BINDTODEVICE`).
fn bind_to_device(fd: &OwnedFd, ifname: &str) -> io::Result<()> {
    let name = ifreq_for(ifname)?.ifr_name;
    // SAFETY: the name buffer is NUL-terminated (ifreq_for checked the length).
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// The UDP socket used once the client has an address.
pub struct UdpSocket {
    sock: tokio::net::UdpSocket,
    buf: Vec<u8>,
}

impl UdpSocket {
    pub fn open(ifname: &str) -> io::Result<UdpSocket> {
        let fd = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1 as &libc::c_int)?;
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_BROADCAST, &1 as &libc::c_int)?;
        bind_to_device(&fd, ifname)?;
        let tos: libc::c_int = 0xc0;
        setsockopt(&fd, libc::IPPROTO_IP, libc::IP_TOS, &tos)?;
        // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
        let mut sa: libc::sockaddr_in = unsafe { zeroed() };
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = CLIENT_PORT.to_be();
        // SAFETY: binding to a sockaddr_in of the right size.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        })?;
        let std_sock = std::net::UdpSocket::from(fd);
        Ok(UdpSocket { sock: tokio::net::UdpSocket::from_std(std_sock)?, buf: vec![0; RECEIVE_BUFFER] })
    }

    pub async fn send_to(&self, payload: &[u8], to: Ipv4Addr) -> io::Result<()> {
        self.sock.send_to(payload, SocketAddrV4::new(to, SERVER_PORT)).await.map(drop)
    }

    pub async fn recv(&mut self) -> io::Result<(Ipv4Addr, Vec<u8>)> {
        loop {
            let (n, from) = self.sock.recv_from(&mut self.buf).await?;
            if let std::net::SocketAddr::V4(v4) = from {
                return Ok((*v4.ip(), self.buf[..n].to_vec()));
            }
        }
    }
}

/// The DHCPv6 client's socket: UDP on [::]:546 bound to the device (so each
/// interface can have a transaction), sending to ff02::1:2 on that link
/// (CAP_NET_BIND_SERVICE for the port, CAP_NET_RAW for SO_BINDTODEVICE on
/// older kernels). Servers answer unicast to the link-local address.
pub struct Udp6Socket {
    sock: tokio::net::UdpSocket,
    ifindex: u32,
    buf: Vec<u8>,
}

impl Udp6Socket {
    pub fn open(ifname: &str, ifindex: u32) -> io::Result<Udp6Socket> {
        let fd = socket(libc::AF_INET6, libc::SOCK_DGRAM, 0)?;
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1 as &libc::c_int)?;
        setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &1 as &libc::c_int)?;
        bind_to_device(&fd, ifname)?;
        setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &(ifindex as libc::c_int))?;
        // RFC 8415 §7.1: the servers are on the link.
        setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &1 as &libc::c_int)?;
        // SAFETY: sockaddr_in6 is plain data; all-zero is a valid value ([::]).
        let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
        sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sa.sin6_port = crate::packet6::CLIENT_PORT.to_be();
        // SAFETY: binding to a sockaddr_in6 of the right size.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in6).cast(),
                size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        })?;
        let std_sock = std::net::UdpSocket::from(fd);
        Ok(Udp6Socket { sock: tokio::net::UdpSocket::from_std(std_sock)?, ifindex, buf: vec![0; RECEIVE_BUFFER] })
    }

    /// Sends to All_DHCP_Relay_Agents_and_Servers. While the link-local
    /// address is tentative this fails (EADDRNOTAVAIL); the retransmissions
    /// try again.
    pub async fn send(&self, payload: &[u8]) -> io::Result<()> {
        let to = std::net::SocketAddrV6::new(crate::packet6::ALL_SERVERS, crate::packet6::SERVER_PORT, 0, self.ifindex);
        self.sock.send_to(payload, to).await.map(drop)
    }

    /// The next datagram from port 547 (anything else is skipped).
    pub async fn recv(&mut self) -> io::Result<Vec<u8>> {
        loop {
            let (n, from) = self.sock.recv_from(&mut self.buf).await?;
            if from.port() == crate::packet6::SERVER_PORT {
                return Ok(self.buf[..n].to_vec());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_jumps_land_on_the_returns() {
        let prog = bpf_program();
        let drop = prog.len() - 1;
        let accept = prog.len() - 2;
        for (i, ins) in prog.iter().enumerate() {
            if u32::from(ins.code) & 0x07 == libc::BPF_JMP {
                let t = i + 1 + usize::from(ins.jt);
                let f = i + 1 + usize::from(ins.jf);
                assert!(t <= drop && f <= drop, "{i}");
                assert!(t == drop || f == drop, "every test can drop ({i})");
            }
        }
        assert_eq!(prog[accept].k, 0xffff);
        assert_eq!(prog[drop].k, 0);
    }

    #[test]
    fn interface_names_are_checked() {
        assert!(ifreq_for("").is_err());
        assert!(ifreq_for("a-very-long-interface-name").is_err());
        assert!(ifreq_for("eth0").is_ok());
    }
}
