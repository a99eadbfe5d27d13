//! Code a test runs inside one of the lab's network namespaces: a thread
//! that joined it, and UDP sockets bound to one of its links (a DHCP
//! client or server at the far end of an uplink).

use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Runs `f` on a thread inside the network namespace `netns` (the rest of
/// the test stays where it is: setns(2) moves only the calling thread).
pub fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let ns = std::fs::File::open(format!("/run/netns/{netns}")).expect("netns file");
    std::thread::spawn(move || {
        // SAFETY: setns(2) on this thread only, with a namespace fd we hold.
        let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
}

/// A UDP socket on `port` of every address, bound to the link `ifname`
/// (`SO_BINDTODEVICE`), that may send and receive broadcasts; reads time
/// out after 200 ms. Call it on a thread inside the link's namespace.
pub fn udp_on_link(ifname: &str, port: u16) -> UdpSocket {
    // SAFETY: socket(2) with constant arguments, owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    // SAFETY: a fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    for opt in [libc::SO_REUSEADDR, libc::SO_BROADCAST] {
        // SAFETY: an int option.
        unsafe {
            libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, opt, (&one as *const libc::c_int).cast(), 4);
        }
    }
    // SAFETY: the name and its length.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            ifname.as_ptr().cast(),
            ifname.len() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_BINDTODEVICE: {}", std::io::Error::last_os_error());
    let sock = UdpSocket::from(fd);
    // std has no bind for an existing socket; go through libc.
    // SAFETY: sockaddr_in is plain data.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = port.to_be();
    // SAFETY: binding to a sockaddr_in of the right size.
    let r = unsafe {
        libc::bind(sock.as_raw_fd(), (&sa as *const libc::sockaddr_in).cast(), size_of::<libc::sockaddr_in>() as u32)
    };
    assert_eq!(r, 0, "bind {port}: {}", std::io::Error::last_os_error());
    sock.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    sock
}
