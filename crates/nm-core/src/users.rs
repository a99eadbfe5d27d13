//! Users and groups by NSS (`getpwuid_r`, `getgrnam_r`, `getgrouplist`):
//! `connection.permissions` names users and `[core] auth-group` a group,
//! where the bus gives uids. Blocking calls: async callers use
//! `spawn_blocking` (NSS may ask a directory service).

use std::ffi::{CStr, CString};

/// The user name and primary gid of `uid`.
pub fn passwd(uid: u32) -> Option<(String, u32)> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: a zeroed passwd is a valid out-parameter; its strings point
        // into `buf`, which outlives every use of them below.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || out.is_null() || pw.pw_name.is_null() {
            return None;
        }
        // SAFETY: pw_name points into buf, NUL-terminated by NSS.
        let name = unsafe { CStr::from_ptr(pw.pw_name) }.to_str().ok()?.to_owned();
        return Some((name, pw.pw_gid));
    }
}

/// The user name of `uid`, if NSS knows one.
pub fn name_of(uid: u32) -> Option<String> {
    passwd(uid).map(|(name, _)| name)
}

/// The gid of the group called `name`.
pub fn group_gid(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: as in passwd().
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe { libc::getgrnam_r(cname.as_ptr(), &mut gr, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || out.is_null() {
            return None;
        }
        return Some(gr.gr_gid);
    }
}

/// Every group of `user` (whose primary group is `primary`).
pub fn group_list(user: &str, primary: u32) -> Vec<u32> {
    let Ok(cuser) = CString::new(user) else { return vec![] };
    let mut n: libc::c_int = 32;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let mut count = n;
        // SAFETY: groups has room for `count` entries; getgrouplist updates count.
        let rc = unsafe { libc::getgrouplist(cuser.as_ptr(), primary, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return groups;
        }
        if count <= n || n > 65536 {
            return vec![];
        }
        n = count;
    }
}

/// Membership given the group's gid, the user's primary gid and its list.
pub fn is_member(gid: u32, primary: u32, list: &[u32]) -> bool {
    gid == primary || list.contains(&gid)
}

/// Whether `uid`'s user is in `group` (a name or a number).
pub fn in_group(uid: u32, group: &str) -> bool {
    let Some((name, primary)) = passwd(uid) else { return false };
    let Some(gid) = group.parse::<u32>().ok().or_else(|| group_gid(group)) else {
        tracing::warn!("group '{group}' does not exist");
        return false;
    };
    is_member(gid, primary, &group_list(&name, primary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nss_knows_root_and_nobody_and_not_a_free_uid() {
        assert_eq!(passwd(0), Some(("root".to_string(), 0)));
        assert_eq!(name_of(65534).as_deref(), Some("nobody"));
        assert_eq!(name_of(4_000_000_000), None);
        assert_eq!(group_gid("root"), Some(0));
        assert!(group_list("root", 0).contains(&0));
        assert!(in_group(0, "root") && in_group(0, "0"));
        assert!(!in_group(0, "no-such-group-here"));
    }

    #[test]
    fn membership_counts_the_primary_group() {
        assert!(is_member(109, 109, &[]));
        assert!(is_member(109, 100, &[100, 109]));
        assert!(!is_member(109, 100, &[100]));
    }
}
