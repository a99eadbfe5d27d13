//! Which profile a device should use, and when autoconnect may try again.
//! Pure functions of the profiles, the device and the clock.

use std::time::{Duration, Instant};

use nm_model::text::{format_mac, parse_mac};
use nm_model::{Connection, Value};

use crate::device::{DeviceType, glob};
use crate::software;

/// NetworkManager's `AUTOCONNECT_RESET_RETRIES_TIMER`.
pub const RETRY_RESET: Duration = Duration::from_secs(300);
/// `[main] autoconnect-retries-default`.
pub const DEFAULT_RETRIES: u32 = 4;

/// The device as the policy sees it.
#[derive(Clone, Debug)]
pub struct DeviceView<'a> {
    pub name: &'a str,
    pub kind: DeviceType,
    pub perm_mac: Option<&'a [u8]>,
    /// The kernel driver (`veth`, `e1000e`), for `match.driver`.
    pub driver: Option<&'a str>,
    /// The host's kernel command line in words, for
    /// `match.kernel-command-line`.
    pub kernel_cmdline: &'a [String],
}

/// A profile as the policy sees it.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    pub id: u32,
    pub conn: &'a Connection,
    /// Last successful activation (seconds since the epoch), 0 if never.
    pub timestamp: u64,
    /// System profiles come before user profiles at equal rank.
    pub system: bool,
}

/// What a profile binds to by type and `interface-name`: the first part of
/// [`compatible`], kept with each profile so that matching hundreds of
/// profiles against hundreds of devices skips the settings lookups for the
/// pairs that cannot fit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    ctype: Option<String>,
    iface: Option<String>,
}

impl Binding {
    pub fn of(conn: &Connection) -> Binding {
        Binding {
            ctype: conn.connection_type().map(str::to_string),
            iface: conn.get_str("connection", "interface-name").filter(|n| !n.is_empty()).map(str::to_string),
        }
    }

    /// The interface a software profile (bridge, macvlan, vxlan, tun)
    /// makes: its `interface-name`.
    pub fn software_interface(&self) -> Option<&str> {
        self.ctype.as_deref().and_then(software::kind_of_type)?;
        self.iface.as_deref()
    }

    /// False only when [`compatible`] is false too.
    pub fn admits(&self, dev: &DeviceView<'_>) -> bool {
        self.ctype.as_deref().is_some_and(|t| dev.kind.takes(t)) && self.iface.as_deref().is_none_or(|n| n == dev.name)
    }
}

/// Whether a profile can run on a device: its type, `interface-name`,
/// `mac-address` and `match` setting agree with the device.
pub fn compatible(conn: &Connection, dev: &DeviceView<'_>) -> bool {
    if !conn.connection_type().is_some_and(|t| dev.kind.takes(t)) {
        return false;
    }
    if let Some(name) = conn.get_str("connection", "interface-name").filter(|n| !n.is_empty())
        && name != dev.name
    {
        return false;
    }
    if let Some(mac) = conn.get("802-3-ethernet", "mac-address").and_then(Value::as_bytes).filter(|m| !m.is_empty())
        && dev.perm_mac != Some(mac)
    {
        return false;
    }
    let blacklist = conn.get("802-3-ethernet", "mac-address-blacklist").and_then(Value::as_str_list);
    if let (Some(list), Some(perm)) = (blacklist, dev.perm_mac) {
        let perm = format_mac(perm);
        if list.iter().any(|m| parse_mac(m).map(|b| format_mac(&b)).is_ok_and(|m| m == perm)) {
            return false;
        }
    }
    matches(conn, dev)
}

/// The profile's `match` setting (NetworkManager's): every list given must
/// pass. The device's udev path (`match.path`) is not known here and is
/// matched as empty, as NetworkManager does for a device without one.
fn matches(conn: &Connection, dev: &DeviceView<'_>) -> bool {
    let Some(setting) = conn.setting("match") else { return true };
    let list = |prop: &str| setting.props.get(prop).and_then(Value::as_str_list).unwrap_or_default();
    wildcard_match(dev.name, &list("interface-name"))
        && wildcard_match(dev.driver.unwrap_or(""), &list("driver"))
        && wildcard_match("", &list("path"))
        && kernel_cmdline_match(dev.kernel_cmdline, &list("kernel-command-line"))
}

/// NetworkManager's `match.*` list semantics: an element is optional
/// (`|pat`, or bare) or mandatory (`&pat`); `!` inverts it (`!pat` alone is
/// mandatory, `&!pat`; `|!pat` optional); `\` after them takes the rest
/// literally. Every mandatory element must hold and, when there are
/// optional ones, at least one of them. An empty list passes.
fn match_list(patterns: &[String], hit: impl Fn(&str) -> bool) -> bool {
    let (mut any_optional, mut optional_hit) = (false, false);
    for raw in patterns {
        let (mut p, mut inverted, mut mandatory) = (raw.as_str(), false, false);
        if let Some(rest) = p.strip_prefix('&') {
            mandatory = true;
            p = rest;
            if let Some(rest) = p.strip_prefix('!') {
                (p, inverted) = (rest, true);
            }
        } else if let Some(rest) = p.strip_prefix('|') {
            p = rest;
            if let Some(rest) = p.strip_prefix('!') {
                (p, inverted) = (rest, true);
            }
        } else if let Some(rest) = p.strip_prefix('!') {
            (p, inverted, mandatory) = (rest, true, true);
        }
        p = p.strip_prefix('\\').unwrap_or(p);
        let ok = hit(p) != inverted;
        if mandatory {
            if !ok {
                return false;
            }
        } else {
            any_optional = true;
            optional_hit |= ok;
        }
    }
    optional_hit || !any_optional
}

/// `match.interface-name`, `match.driver`, `match.path`: shell patterns.
pub fn wildcard_match(text: &str, patterns: &[String]) -> bool {
    match_list(patterns, |p| glob(p, text))
}

/// `match.kernel-command-line`: an element with `=` must be a word of the
/// command line; one without names a word's key (`quiet`, `ip` of `ip=…`).
pub fn kernel_cmdline_match(words: &[String], patterns: &[String]) -> bool {
    match_list(patterns, |p| {
        words.iter().any(|w| {
            if p.contains('=') { w == p } else { w.strip_prefix(p).is_some_and(|r| r.is_empty() || r.starts_with('=')) }
        })
    })
}

/// `/proc/cmdline` in words: split at whitespace, double quotes keeping
/// spaces inside a word (`a="b c"` is one word `a=b c`).
pub fn split_kernel_cmdline(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let (mut word, mut quoted, mut any) = (String::new(), false, false);
    for c in text.chars() {
        match c {
            '"' => (quoted, any) = (!quoted, true),
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// `connection.multi-connect`: whether a profile may be active on more
/// than one device at a time (NetworkManager's default, 0, is `single`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiConnect {
    /// Activating it on another device ends it where it was.
    Single,
    /// Many at once when the user asks; autoconnect only where it is not
    /// active anywhere.
    ManualMultiple,
    /// Many at once, autoconnect included.
    Multiple,
}

pub fn multi_connect(conn: &Connection) -> MultiConnect {
    match conn.get("connection", "multi-connect").and_then(Value::as_i128) {
        Some(2) => MultiConnect::ManualMultiple,
        Some(3) => MultiConnect::Multiple,
        _ => MultiConnect::Single,
    }
}

/// Whether a profile already active on one device may also be activated on
/// another: by the user (`manual-multiple`, `multiple`) or by autoconnect
/// (`multiple`).
pub fn may_run_again(conn: &Connection, by_user: bool) -> bool {
    match multi_connect(conn) {
        MultiConnect::Single => false,
        MultiConnect::ManualMultiple => by_user,
        MultiConnect::Multiple => true,
    }
}

/// Whether autoconnect may pick the profile at all.
pub fn autoconnects(conn: &Connection) -> bool {
    conn.get("connection", "autoconnect").and_then(Value::as_bool).unwrap_or(true)
}

fn priority(conn: &Connection) -> i128 {
    conn.get("connection", "autoconnect-priority").and_then(Value::as_i128).unwrap_or(0)
}

/// The best of the candidates for a device: compatible, then highest
/// `autoconnect-priority`, most recently used, system before user, and the
/// lowest id last so that the choice is stable.
pub fn best<'a>(dev: &DeviceView<'_>, candidates: impl IntoIterator<Item = Candidate<'a>>) -> Option<u32> {
    candidates
        .into_iter()
        .filter(|c| compatible(c.conn, dev))
        .max_by(|a, b| {
            priority(a.conn)
                .cmp(&priority(b.conn))
                .then(a.timestamp.cmp(&b.timestamp))
                .then(a.system.cmp(&b.system))
                .then(b.id.cmp(&a.id))
        })
        .map(|c| c.id)
}

/// Autoconnect retries of one profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retries {
    pub left: u32,
    /// While set, autoconnect skips the profile until this instant.
    pub blocked_until: Option<Instant>,
    /// Blocked by the user (`connection down`) until a manual activation.
    pub blocked_by_user: bool,
}

impl Retries {
    pub fn new(conn: &Connection) -> Retries {
        Retries { left: configured_retries(conn), blocked_until: None, blocked_by_user: false }
    }

    pub fn may_autoconnect(&self, now: Instant) -> bool {
        !self.blocked_by_user && self.blocked_until.is_none_or(|t| now >= t)
    }

    /// An automatic activation failed: one retry fewer; none left blocks the
    /// profile for [`RETRY_RESET`], after which the count starts again.
    pub fn failed(&mut self, conn: &Connection, now: Instant) {
        if configured_retries(conn) == 0 {
            return; // 0 means "try for ever"
        }
        self.left = self.left.saturating_sub(1);
        if self.left == 0 {
            self.blocked_until = Some(now + RETRY_RESET);
            self.left = configured_retries(conn);
        }
    }

    pub fn succeeded(&mut self, conn: &Connection) {
        *self = Retries::new(conn);
    }
}

fn configured_retries(conn: &Connection) -> u32 {
    match conn.get("connection", "autoconnect-retries").and_then(Value::as_i128) {
        Some(n) if n >= 0 => u32::try_from(n).unwrap_or(DEFAULT_RETRIES),
        _ => DEFAULT_RETRIES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nm_model::keyfile;

    fn profile(extra: &str) -> Connection {
        keyfile::parse(&format!(
            "[connection]\nid=p\nuuid=8fb923ad-bd8a-48c8-b85e-737628bb673a\ntype=ethernet\n{extra}\n[ethernet]\n"
        ))
        .unwrap()
    }

    fn dev() -> DeviceView<'static> {
        DeviceView {
            name: "eth0",
            kind: DeviceType::Ethernet,
            perm_mac: Some(&[0x52, 0x54, 0, 0, 0, 1]),
            driver: None,
            kernel_cmdline: &[],
        }
    }

    #[test]
    fn compatibility() {
        assert!(compatible(&profile(""), &dev()));
        assert!(compatible(&profile("interface-name=eth0\n"), &dev()));
        assert!(!compatible(&profile("interface-name=eth1\n"), &dev()));
        let with_mac = |m: &str| {
            let mut p = profile("");
            p.set("802-3-ethernet", "mac-address", Value::Bytes(parse_mac(m).unwrap()));
            p
        };
        assert!(compatible(&with_mac("52:54:00:00:00:01"), &dev()));
        assert!(!compatible(&with_mac("52:54:00:00:00:02"), &dev()));
        let veth =
            DeviceView { name: "eth0", kind: DeviceType::Veth, perm_mac: None, driver: None, kernel_cmdline: &[] };
        assert!(compatible(&profile(""), &veth));
        let bridge =
            DeviceView { name: "eth0", kind: DeviceType::Bridge, perm_mac: None, driver: None, kernel_cmdline: &[] };
        assert!(!compatible(&profile(""), &bridge));
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn match_lists_as_networkmanager_reads_them() {
        let m = |name: &str, list: &[&str]| wildcard_match(name, &strings(list));
        assert!(m("eth0", &[]), "an empty list passes");
        assert!(m("eth0", &["eth*"]) && !m("wlan0", &["eth*"]));
        assert!(m("eth1", &["eth0", "eth1"]), "optional elements: any one");
        assert!(!m("eth1", &["eth*", "!eth1"]) && m("eth2", &["eth*", "!eth1"]), "'!' alone is mandatory");
        assert!(m("eth2", &["!eth1"]), "only mandatory elements, all hold");
        assert!(!m("eth0", &["&eth*", "&*1"]) && m("eth1", &["&eth*", "&*1"]));
        assert!(m("eth0", &["|!eth1"]) && !m("eth1", &["|!eth1"]));
        assert!(m("eth1", &["|!eth1", "eth1"]), "one optional element is enough");
        assert!(m("!a", &["&\\!a"]) && !m("a", &["&\\!a"]), "a backslash takes the rest literally");
    }

    #[test]
    fn kernel_command_line_words_and_keys() {
        let words = split_kernel_cmdline("BOOT_IMAGE=/vmlinuz root=UUID=1 quiet  opt=\"a b\" ip=dhcp\n");
        assert_eq!(words, ["BOOT_IMAGE=/vmlinuz", "root=UUID=1", "quiet", "opt=a b", "ip=dhcp"]);
        let k = |list: &[&str]| kernel_cmdline_match(&words, &strings(list));
        assert!(k(&["quiet"]) && k(&["ip"]) && k(&["ip=dhcp"]) && !k(&["ip=off"]));
        assert!(!k(&["qui"]), "a key is a whole word or what comes before '='");
        assert!(k(&["&root", "!nomodeset"]) && !k(&["!quiet"]));
    }

    #[test]
    fn the_match_setting_narrows_the_devices() {
        let with = |lines: &str| profile(&format!("\n[match]\n{lines}"));
        let veth = DeviceView {
            name: "veth3",
            kind: DeviceType::Veth,
            perm_mac: None,
            driver: Some("veth"),
            kernel_cmdline: &[],
        };
        assert!(compatible(&with("interface-name=veth*;!veth1;\n"), &veth));
        assert!(!compatible(&with("interface-name=veth*;!veth3;\n"), &veth));
        assert!(!compatible(&with("interface-name=eth*;\n"), &veth));
        assert!(compatible(&with("driver=veth;\n"), &veth) && !compatible(&with("driver=e1000e;\n"), &veth));
        assert!(!compatible(&with("path=pci-*;\n"), &veth), "no udev path here");
        assert!(compatible(&with("path=!pci-*;\n"), &veth));
        let words = strings(&["quiet"]);
        let booted = DeviceView { kernel_cmdline: &words, ..veth.clone() };
        assert!(compatible(&with("kernel-command-line=quiet;\n"), &booted));
        assert!(!compatible(&with("kernel-command-line=quiet;\n"), &veth));
        assert!(Binding::of(&with("interface-name=eth*;\n")).admits(&veth), "the binding leaves match to compatible");
    }

    #[test]
    fn multi_connect_says_who_may_activate_a_profile_twice() {
        let with = |v: &str| profile(&format!("multi-connect={v}\n"));
        for (v, user, auto) in [("0", false, false), ("1", false, false), ("2", true, false), ("3", true, true)] {
            assert_eq!(may_run_again(&with(v), true), user, "multi-connect={v} by the user");
            assert_eq!(may_run_again(&with(v), false), auto, "multi-connect={v} by autoconnect");
        }
        assert!(!may_run_again(&profile(""), true), "single unless the profile says otherwise");
    }

    #[test]
    fn the_binding_refuses_only_what_is_incompatible() {
        let others = [
            dev(),
            DeviceView { name: "eth1", kind: DeviceType::Ethernet, perm_mac: None, driver: None, kernel_cmdline: &[] },
            DeviceView { name: "eth0", kind: DeviceType::Veth, perm_mac: None, driver: None, kernel_cmdline: &[] },
            DeviceView { name: "eth0", kind: DeviceType::Bridge, perm_mac: None, driver: None, kernel_cmdline: &[] },
        ];
        for extra in ["", "interface-name=eth0\n", "interface-name=eth1\n", "interface-name=\n"] {
            let p = profile(extra);
            for d in &others {
                assert!(Binding::of(&p).admits(d) || !compatible(&p, d), "{extra:?} on {d:?}");
            }
        }
        assert!(!Binding::of(&profile("interface-name=eth1\n")).admits(&dev()));
        assert!(Binding::of(&profile("")).admits(&dev()));
    }

    #[test]
    fn priority_then_recency_then_system() {
        let low = profile("autoconnect-priority=1\n");
        let high = profile("autoconnect-priority=5\n");
        let plain = profile("");
        let c = |id, conn, timestamp, system| Candidate { id, conn, timestamp, system };
        assert_eq!(best(&dev(), [c(1, &low, 0, true), c(2, &high, 0, true)]), Some(2));
        assert_eq!(best(&dev(), [c(1, &plain, 10, true), c(2, &plain, 20, true)]), Some(2));
        assert_eq!(best(&dev(), [c(1, &plain, 10, false), c(2, &plain, 10, true)]), Some(2));
        assert_eq!(best(&dev(), [c(3, &plain, 10, true), c(2, &plain, 10, true)]), Some(2));
        assert_eq!(best(&dev(), std::iter::empty()), None);
    }

    #[test]
    fn retries_block_for_five_minutes_then_reset() {
        let p = profile("autoconnect-retries=2\n");
        let now = Instant::now();
        let mut r = Retries::new(&p);
        r.failed(&p, now);
        assert!(r.may_autoconnect(now));
        r.failed(&p, now);
        assert!(!r.may_autoconnect(now));
        assert!(r.may_autoconnect(now + RETRY_RESET));
        assert_eq!(r.left, 2);
        let forever = profile("autoconnect-retries=0\n");
        let mut r = Retries::new(&forever);
        for _ in 0..10 {
            r.failed(&forever, now);
        }
        assert!(r.may_autoconnect(now));
    }
}
