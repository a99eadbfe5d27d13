//! Unique names for everything a lab creates.
//!
//! A lab is `nmt<pid>x<n>`: the test process's pid and a per-process counter.
//! Namespaces and the temp directory carry that name in full; interface names
//! must fit the kernel's 15 characters (IFNAMSIZ - 1), so when the decimal form
//! is too long the pid is written in base 36 (`nmt2n9c0x3c0`). Interface names
//! do not strictly need to be unique (each lab has its own namespaces), but
//! unique names keep `ip monitor` output and daemon logs unambiguous.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::LabError;

/// Longest interface name the kernel accepts.
pub const IFNAMSIZ_MAX: usize = 15;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The names of one lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pid: u32,
    n: u32,
}

impl Names {
    /// Names for a lab with an explicit pid and counter (for tests of the
    /// naming itself).
    pub fn new(pid: u32, n: u32) -> Self {
        Names { pid, n }
    }

    /// The next unused counter value of this process.
    pub fn next() -> Self {
        Names { pid: std::process::id(), n: COUNTER.fetch_add(1, Ordering::Relaxed) }
    }

    /// `nmt<pid>x<n>`: the temp directory's name and the namespaces' stem.
    pub fn base(&self) -> String {
        format!("nmt{}x{}", self.pid, self.n)
    }

    /// The client namespace, where daemons and clients run.
    pub fn client_netns(&self) -> String {
        format!("{}-cli", self.base())
    }

    /// The server namespace, where dnsmasq runs.
    pub fn server_netns(&self) -> String {
        format!("{}-srv", self.base())
    }

    /// Interface `index` of `side` (`'c'` client, `'s'` server).
    pub fn ifname(&self, side: char, index: usize) -> Result<String, LabError> {
        let decimal = format!("{}{side}{index}", self.base());
        if decimal.len() <= IFNAMSIZ_MAX {
            return Ok(decimal);
        }
        let compact = format!("nmt{}x{}{side}{index}", base36(self.pid), self.n);
        if compact.len() <= IFNAMSIZ_MAX {
            Ok(compact)
        } else {
            Err(LabError::Invalid(format!(
                "interface name {compact} is longer than {IFNAMSIZ_MAX} characters \
                 (too many labs or uplinks in one process)"
            )))
        }
    }
}

fn base36(mut v: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    out.reverse();
    // Only ASCII digits and letters were pushed.
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_pid_and_counter() {
        let n = Names::new(4242, 7);
        assert_eq!(n.base(), "nmt4242x7");
        assert_eq!(n.client_netns(), "nmt4242x7-cli");
        assert_eq!(n.server_netns(), "nmt4242x7-srv");
        assert_eq!(n.ifname('c', 0).unwrap(), "nmt4242x7c0");
        assert_eq!(n.ifname('s', 1).unwrap(), "nmt4242x7s1");
    }

    #[test]
    fn long_pids_fall_back_to_base36_within_ifnamsiz() {
        // pid_max can be 4194304 (7 digits).
        let n = Names::new(4_194_303, 123);
        let name = n.ifname('c', 9).unwrap();
        assert!(name.len() <= IFNAMSIZ_MAX, "{name}");
        assert_eq!(name, format!("nmt{}x123c9", base36(4_194_303)));
        // Different labs still get different interface names.
        assert_ne!(name, Names::new(4_194_303, 12).ifname('c', 39).unwrap());
    }

    #[test]
    fn impossible_lengths_are_an_error_not_a_truncation() {
        assert!(Names::new(4_194_303, 999_999).ifname('c', 0).is_err());
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(4_194_304), "2hwcg");
    }

    #[test]
    fn next_counts_up() {
        let a = Names::next();
        let b = Names::next();
        assert_ne!(a.base(), b.base());
    }
}
