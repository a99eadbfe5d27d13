//! tun and tap devices: the kernel makes them only through `/dev/net/tun`
//! (`TUNSETIFF`), not by `RTM_NEWLINK`. A device made persistent outlives
//! the file descriptor that made it, as `ip tuntap add` leaves it.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;

use crate::types::TunOptions;

/// `_IOW('T', 202, int)` and its neighbours in `linux/if_tun.h`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const TUNSETOWNER: libc::c_ulong = 0x4004_54cc;
const TUNSETGROUP: libc::c_ulong = 0x4004_54ce;

/// The `TUNSETIFF` flags of `o`.
pub(crate) fn flags(o: &TunOptions) -> libc::c_short {
    let mut f = if o.tap { libc::IFF_TAP } else { libc::IFF_TUN };
    if !o.pi {
        f |= libc::IFF_NO_PI;
    }
    if o.vnet_hdr {
        f |= libc::IFF_VNET_HDR;
    }
    if o.multi_queue {
        f |= libc::IFF_MULTI_QUEUE;
    }
    // All the flags fit the short the ioctl takes.
    f as libc::c_short
}

/// Makes the persistent tun or tap device `name` (checked by the caller).
pub(crate) fn create(name: &str, o: &TunOptions) -> io::Result<()> {
    let dev = OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
    let fd = dev.as_raw_fd();
    // SAFETY: ifreq is plain data; all zeros is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = flags(o);
    let check = |rc: libc::c_int| if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) };
    // SAFETY: TUNSETIFF reads (and fills in) the ifreq we own.
    check(unsafe { libc::ioctl(fd, TUNSETIFF, &mut req) })?;
    // SAFETY: these take an integer argument by value.
    unsafe {
        if let Some(uid) = o.owner {
            check(libc::ioctl(fd, TUNSETOWNER, libc::c_ulong::from(uid)))?;
        }
        if let Some(gid) = o.group {
            check(libc::ioctl(fd, TUNSETGROUP, libc::c_ulong::from(gid)))?;
        }
        check(libc::ioctl(fd, TUNSETPERSIST, 1 as libc::c_ulong))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_options() {
        let tun = TunOptions { tap: false, owner: None, group: None, pi: false, vnet_hdr: false, multi_queue: false };
        assert_eq!(flags(&tun), 0x1001, "tun without packet information");
        let tap = TunOptions { tap: true, pi: true, vnet_hdr: true, multi_queue: true, ..tun };
        assert_eq!(flags(&tap), 0x4102);
    }
}
