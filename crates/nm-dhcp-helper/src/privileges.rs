//! `--user`: started as root (by an init that is not systemd, or by the
//! lab), the helper becomes USER itself and keeps CAP_NET_RAW and
//! CAP_NET_BIND_SERVICE alone, as its systemd unit would have made it
//! (`User=`, `AmbientCapabilities=`, `CapabilityBoundingSet=`,
//! `NoNewPrivileges=`). Doing it here rather than in a wrapper such as
//! setpriv saves two process starts on the way to the first lease.
//!
//! The order is the one the kernel requires: the bounding set can only be
//! cut with CAP_SETPCAP, the groups only changed with CAP_SETGID, and a
//! process that leaves uid 0 keeps its permitted capabilities only with
//! `PR_SET_KEEPCAPS`; the effective set is then raised again with capset.

use std::ffi::CString;
use std::io;

/// CAP_NET_BIND_SERVICE (port 68 once bound) and CAP_NET_RAW (the packet
/// socket until then): all the helper needs.
pub const KEPT_CAPS: u64 = (1 << CAP_NET_BIND_SERVICE) | (1 << CAP_NET_RAW);
// linux/capability.h (the libc crate has no capability numbers)
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_RAW: u32 = 13;

/// Whom `--user` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub uid: u32,
    pub gid: u32,
}

/// What `--user` may say, without a lookup: `UID` (the group is the same
/// number) or `UID:GID`; `None` for anything else, which is then a name.
pub fn numeric_user(spec: &str) -> Option<Target> {
    let number = |s: &str| s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse::<u32>().ok()).flatten();
    match spec.split_once(':') {
        Some((uid, gid)) => Some(Target { uid: number(uid)?, gid: number(gid)? }),
        None => number(spec).map(|uid| Target { uid, gid: uid }),
    }
}

/// `--user`'s value: a number as [`numeric_user`] reads it, or a user name
/// looked up in the passwd database (its uid and primary group).
pub fn resolve(spec: &str) -> anyhow::Result<Target> {
    if let Some(target) = numeric_user(spec) {
        return Ok(target);
    }
    if spec.contains(':') || spec.is_empty() {
        anyhow::bail!("--user {spec:?}: expected a user name, a uid or uid:gid");
    }
    let name = CString::new(spec).map_err(|_| anyhow::anyhow!("--user {spec:?}: not a user name"))?;
    // SAFETY: an all-zero passwd is a valid value (null pointers, zero ids);
    // getpwnam_r fills it with pointers into `buf`, which outlives the
    // reads of pw_uid and pw_gid below.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: every pointer is valid for the call, `buf.len()` is its size.
    let rc = unsafe { libc::getpwnam_r(name.as_ptr(), &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc))
            .map_err(|e| anyhow::anyhow!("--user {spec:?}: looking it up: {e}"));
    }
    if found.is_null() {
        anyhow::bail!("--user {spec:?}: no such user");
    }
    Ok(Target { uid: entry.pw_uid, gid: entry.pw_gid })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn check(rc: libc::c_long, what: &str) -> anyhow::Result<()> {
    if rc < 0 {
        let e = io::Error::last_os_error();
        anyhow::bail!("{what}: {e}");
    }
    Ok(())
}

/// prctl with one argument; all four are passed as unsigned longs, as the
/// kernel reads them (some options insist that the unused ones are 0).
fn prctl(option: libc::c_int, arg: libc::c_ulong) -> io::Result<()> {
    let zero: libc::c_ulong = 0;
    // SAFETY: prctl with integer arguments touches no memory of ours.
    if unsafe { libc::prctl(option, arg, zero, zero, zero) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Becomes `target` with [`KEPT_CAPS`] as the only capabilities (permitted,
/// effective and bounding; none inheritable or ambient) and no way to gain
/// more (`no_new_privs`). The process must be root and have one thread:
/// capabilities are per thread, so a second one would keep root's.
pub fn become_user(target: Target) -> anyhow::Result<()> {
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().to_owned())));
    if threads.as_deref() != Some("1") {
        anyhow::bail!("--user: privileges can only be dropped while the process has one thread ({threads:?})");
    }
    if target.uid == 0 {
        anyhow::bail!("--user: the helper does not run as root");
    }
    // SAFETY: plain system calls on this process's credentials; the
    // pointers passed are valid for each call.
    unsafe {
        if libc::geteuid() != 0 {
            anyhow::bail!("--user needs the helper to start as root (it runs as uid {})", libc::geteuid());
        }
        prctl(libc::PR_SET_KEEPCAPS, 1)
            .map_err(|e| anyhow::anyhow!("keeping capabilities across the uid change: {e}"))?;
        // Cut the bounding set first (needs CAP_SETPCAP, which goes with it).
        // The kernel knows caps up to cap_last_cap; beyond it prctl says EINVAL.
        for cap in 0..64u64 {
            if KEPT_CAPS & (1 << cap) != 0 {
                continue;
            }
            match prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) => anyhow::bail!("dropping capability {cap} from the bounding set: {e}"),
            }
        }
        check(libc::setgroups(0, std::ptr::null()).into(), "clearing the supplementary groups")?;
        check(libc::setresgid(target.gid, target.gid, target.gid).into(), "changing the group")?;
        check(libc::setresuid(target.uid, target.uid, target.uid).into(), "changing the user")?;
        let header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
        let low = KEPT_CAPS as u32;
        let data = [CapData { effective: low, permitted: low, inheritable: 0 }, CapData::default()];
        check(libc::syscall(libc::SYS_capset, &header, data.as_ptr()), "keeping CAP_NET_RAW and CAP_NET_BIND_SERVICE")?;
        prctl(libc::PR_SET_KEEPCAPS, 0).map_err(|e| anyhow::anyhow!("resetting keep-capabilities: {e}"))?;
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(|e| anyhow::anyhow!("setting no_new_privs: {e}"))?;
        // Root must be gone for good: a set-uid back to 0 has to fail.
        if libc::setuid(0) == 0 {
            anyhow::bail!("--user: the process could become root again");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_need_no_lookup() {
        assert_eq!(numeric_user("65534"), Some(Target { uid: 65534, gid: 65534 }));
        assert_eq!(numeric_user("998:997"), Some(Target { uid: 998, gid: 997 }));
        assert_eq!(numeric_user("nm-dhcp-helper"), None);
        assert_eq!(numeric_user("+5"), None);
        assert_eq!(numeric_user("5:"), None);
        assert_eq!(numeric_user("99999999999"), None);
    }

    #[test]
    fn names_are_looked_up_and_nonsense_is_refused() {
        assert_eq!(resolve("root").expect("root is in passwd"), Target { uid: 0, gid: 0 });
        let e = resolve("no-such-user-here").expect_err("unknown").to_string();
        assert!(e.contains("no such user"), "{e}");
        assert!(resolve("a:b").is_err());
        assert!(resolve("").is_err());
        assert!(resolve("nul\0byte").is_err());
    }

    #[test]
    fn the_kept_capabilities_are_the_two_the_helper_uses() {
        // as /proc/PID/status shows them (CapEff: 0000000000002400)
        assert_eq!(KEPT_CAPS, 0x2400);
    }
}
