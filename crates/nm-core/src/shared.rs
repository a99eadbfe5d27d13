//! `ipv4.method shared` (connection sharing), as NetworkManager does it:
//! the device gets the profile's address or 10.42.N.1/24, dnsmasq serves
//! DHCP and DNS on that address alone, IPv4 forwarding is on, and an
//! nftables table of the device's own (`nm-shared-<iface>`) masquerades
//! what comes from its network on the way out of the other links and lets
//! only answers back in. All of it goes when the activation ends.
//!
//! No shell: dnsmasq gets its arguments as a list, and `nft -f -` reads the
//! ruleset on its standard input; the interface name in the ruleset is one
//! checked to hold no character nft would read as syntax. (nft runs for a
//! few milliseconds, waited for in place, at activation and deactivation.)

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const DNSMASQ: &str = "/usr/sbin/dnsmasq";
pub const NFT: &str = "/usr/sbin/nft";
/// IPv4 forwarding of the network namespace nm-core runs in.
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// The address a shared device takes when its profile names none:
/// 10.42.N.1/24 with the lowest N whose network none of `taken` is in.
pub fn pick_address(taken: &[Ipv4Addr]) -> Option<(Ipv4Addr, u8)> {
    (0..=255u8)
        .map(|n| Ipv4Addr::new(10, 42, n, 1))
        .find(|a| !taken.iter().any(|t| t.octets()[..3] == a.octets()[..3]))
        .map(|a| (a, 24))
}

/// Whether `addr/prefix` is one [`pick_address`] gives.
pub fn is_picked(addr: Ipv4Addr, prefix: u8) -> bool {
    let o = addr.octets();
    prefix == 24 && o[0] == 10 && o[1] == 42 && o[3] == 1
}

/// The network of `addr/prefix` and the leases dnsmasq hands out in it:
/// from the tenth host on (the first ones left for static hosts, as
/// NetworkManager leaves them) when the network is big enough, to the last
/// host before the broadcast address.
pub fn dhcp_range(addr: Ipv4Addr, prefix: u8) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    if !(8..=30).contains(&prefix) {
        return Err(format!("a shared network needs a prefix from /8 to /30, not /{prefix}"));
    }
    let mask = u32::MAX << (32 - u32::from(prefix));
    let network = u32::from(addr) & mask;
    let broadcast = network | !mask;
    let hosts = broadcast - network - 1;
    let first = if hosts > 20 { network + 10 } else { network + 1 };
    let mut start = first;
    if start == u32::from(addr) {
        start += 1;
    }
    Ok((Ipv4Addr::from(start), Ipv4Addr::from(broadcast - 1)))
}

/// Interface names nft reads as a plain string (the kernel allows more).
pub fn check_ifname(ifname: &str) -> Result<(), String> {
    if !ifname.is_empty() && ifname.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        Ok(())
    } else {
        Err(format!("interface '{ifname}' cannot be shared: its name does not fit in firewall rules"))
    }
}

pub fn table(ifname: &str) -> String {
    format!("nm-shared-{ifname}")
}

/// The device's nftables table, made afresh (a leftover one, after a crash,
/// is deleted first): masquerade from its network out of other links,
/// forward what comes from it, and to it only answers.
pub fn ruleset(ifname: &str, addr: Ipv4Addr, prefix: u8) -> String {
    let mask = u32::MAX << (32 - u32::from(prefix));
    let net = format!("{}/{prefix}", Ipv4Addr::from(u32::from(addr) & mask));
    let t = table(ifname);
    format!(
        "add table ip {t}\n\
         delete table ip {t}\n\
         table ip {t} {{\n\
         \tchain nat_postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {net} ip daddr != {net} masquerade\n\
         \t}}\n\
         \tchain filter_forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tip daddr {net} oifname \"{ifname}\" ct state {{ established, related }} accept\n\
         \t\tip saddr {net} iifname \"{ifname}\" accept\n\
         \t\tiifname \"{ifname}\" oifname \"{ifname}\" accept\n\
         \t\tiifname \"{ifname}\" reject\n\
         \t\toifname \"{ifname}\" reject\n\
         \t}}\n\
         }}\n"
    )
}

pub fn delete_ruleset(ifname: &str) -> String {
    let t = table(ifname);
    format!("add table ip {t}\ndelete table ip {t}\n")
}

/// Where dnsmasq keeps its state for a device (under `root`'s mapping).
pub struct Files {
    pub leases: PathBuf,
    pub pid: PathBuf,
    pub resolv: PathBuf,
    /// NetworkManager's directory of extra dnsmasq options for sharing,
    /// when it exists.
    pub conf_dir: Option<PathBuf>,
}

/// dnsmasq's arguments (NetworkManager's): on this address alone, DHCP
/// in `range`, DNS forwarded by the resolver file.
pub fn dnsmasq_args(addr: Ipv4Addr, range: (Ipv4Addr, Ipv4Addr), files: &Files) -> Vec<String> {
    let mut args: Vec<String> = [
        "--conf-file=/dev/null",
        "--no-hosts",
        "--keep-in-foreground",
        "--bind-interfaces",
        "--except-interface=lo",
        "--clear-on-reload",
        "--strict-order",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--listen-address={addr}"));
    args.push(format!("--dhcp-range={},{},60m", range.0, range.1));
    args.push("--dhcp-lease-max=50".into());
    args.push(format!("--dhcp-leasefile={}", files.leases.display()));
    args.push(format!("--pid-file={}", files.pid.display()));
    args.push(format!("--resolv-file={}", files.resolv.display()));
    if let Some(dir) = &files.conf_dir {
        args.push(format!("--conf-dir={}", dir.display()));
    }
    args
}

/// A device's sharing while it runs; dropping it stops dnsmasq.
pub struct Sharing {
    ifname: String,
    dnsmasq: Child,
}

/// Turns sharing on for `ifname`: forwarding, the nftables table, dnsmasq.
pub fn start(ifname: &str, addr: Ipv4Addr, prefix: u8, files: &Files) -> Result<Sharing, String> {
    check_ifname(ifname)?;
    let range = dhcp_range(addr, prefix)?;
    std::fs::write(IP_FORWARD, "1").map_err(|e| format!("turning IPv4 forwarding on: {e}"))?;
    nft(&ruleset(ifname, addr, prefix))?;
    if let Some(dir) = files.leases.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let dnsmasq = Command::new(DNSMASQ)
        .args(dnsmasq_args(addr, range, files))
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {DNSMASQ}: {e}"));
    match dnsmasq {
        Ok(dnsmasq) => Ok(Sharing { ifname: ifname.to_string(), dnsmasq }),
        Err(e) => {
            let _ = nft(&delete_ruleset(ifname));
            Err(e)
        }
    }
}

impl Sharing {
    /// Turns sharing off: dnsmasq ends, the table goes (forwarding stays on,
    /// as NetworkManager leaves it).
    pub fn stop(self) {
        let ifname = self.ifname.clone();
        drop(self);
        if let Err(e) = nft(&delete_ruleset(&ifname)) {
            tracing::warn!(%ifname, "removing the sharing rules: {e}");
        }
    }
}

/// nm-core ending (SIGTERM) ends what it started: the next start shares
/// the device again (its activation is taken back).
impl Drop for Sharing {
    fn drop(&mut self) {
        let _ = self.dnsmasq.kill();
        let _ = self.dnsmasq.wait();
    }
}

fn nft(script: &str) -> Result<(), String> {
    let mut child = Command::new(NFT)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {NFT}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("running {NFT}: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(format!("nft: {}", String::from_utf8_lossy(&out.stderr).trim())) }
}

/// The files of `ifname`'s dnsmasq, with `path` mapping absolute paths
/// under nm-core's root.
pub fn files(ifname: &str, path: impl Fn(&str) -> PathBuf) -> Files {
    let conf_dir = path("/etc/NetworkManager/dnsmasq-shared.d");
    Files {
        leases: path(&format!("/var/lib/NetworkManager/dnsmasq-{ifname}.leases")),
        pid: path(&format!("/run/nm-dnsmasq-{ifname}.pid")),
        resolv: path("/etc/resolv.conf"),
        conf_dir: Path::new(&conf_dir).is_dir().then_some(conf_dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_free_10_42_network() {
        assert_eq!(pick_address(&[]), Some(("10.42.0.1".parse().unwrap(), 24)));
        let taken = ["10.42.0.1".parse().unwrap(), "10.42.1.77".parse().unwrap(), "192.0.2.1".parse().unwrap()];
        assert_eq!(pick_address(&taken), Some(("10.42.2.1".parse().unwrap(), 24)));
        assert!(is_picked("10.42.2.1".parse().unwrap(), 24) && !is_picked("10.42.2.7".parse().unwrap(), 24));
    }

    #[test]
    fn leases_leave_the_first_hosts_and_the_device() {
        let a = "10.42.0.1".parse().unwrap();
        assert_eq!(dhcp_range(a, 24).unwrap(), ("10.42.0.10".parse().unwrap(), "10.42.0.254".parse().unwrap()));
        let small = "192.0.2.1".parse().unwrap();
        assert_eq!(dhcp_range(small, 29).unwrap(), ("192.0.2.2".parse().unwrap(), "192.0.2.6".parse().unwrap()));
        assert!(dhcp_range(a, 31).is_err());
    }

    #[test]
    fn only_plain_interface_names_reach_the_ruleset() {
        assert!(check_ifname("eth0").is_ok() && check_ifname("br-lan.10").is_ok());
        for bad in ["", "a\"b", "x y", "a;b", "a}b"] {
            assert!(check_ifname(bad).is_err(), "{bad}");
        }
        let r = ruleset("eth1", "10.42.3.1".parse().unwrap(), 24);
        assert!(r.contains("ip saddr 10.42.3.0/24 ip daddr != 10.42.3.0/24 masquerade"), "{r}");
        assert!(r.starts_with("add table ip nm-shared-eth1\ndelete table ip nm-shared-eth1\n"));
    }

    #[test]
    fn dnsmasq_listens_on_the_address_alone() {
        let files = Files { leases: "/l".into(), pid: "/p".into(), resolv: "/etc/resolv.conf".into(), conf_dir: None };
        let args =
            dnsmasq_args("10.42.0.1".parse().unwrap(), dhcp_range("10.42.0.1".parse().unwrap(), 24).unwrap(), &files);
        assert!(args.contains(&"--listen-address=10.42.0.1".to_string()));
        assert!(args.contains(&"--dhcp-range=10.42.0.10,10.42.0.254,60m".to_string()));
        assert!(args.contains(&"--bind-interfaces".to_string()) && args.contains(&"--conf-file=/dev/null".to_string()));
    }
}
