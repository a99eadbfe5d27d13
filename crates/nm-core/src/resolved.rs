//! DNS through systemd-resolved, as NetworkManager's `dns=systemd-resolved`,
//! which it chooses by itself when `/etc/resolv.conf` leads to resolved's
//! files: each device's servers and search domains go to resolved for its
//! link (`SetLinkDNS`, `SetLinkDomains`, `SetLinkDefaultRoute`), and
//! `RevertLink` when the device has none any more. The resolver file stays
//! resolved's.
//!
//! The calls run in one task, in order, so the engine never waits on
//! resolved (nor hangs when it does not answer).

use std::net::IpAddr;
use std::path::Path;

use tokio::sync::mpsc;
use tracing::{debug, warn};
use zbus::Connection as Bus;

use crate::ipconfig::DnsConfig;

const RESOLVED: &str = "org.freedesktop.resolve1";
const RESOLVED_PATH: &str = "/org/freedesktop/resolve1";
const RESOLVED_MANAGER: &str = "org.freedesktop.resolve1.Manager";
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;

/// Whether a symlinked resolver file leads to systemd-resolved's.
pub fn is_resolved_file(link_target: &Path) -> bool {
    link_target.to_string_lossy().contains("run/systemd/resolve/")
}

/// What resolved is told for one link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkDns {
    /// (address family, address bytes)
    pub servers: Vec<(i32, Vec<u8>)>,
    /// (domain, routing only): a `~` domain only routes queries.
    pub domains: Vec<(String, bool)>,
    /// Queries for names no link claims may go here: the device has a
    /// default route.
    pub default_route: bool,
}

/// A device's DNS configuration (both families) for resolved.
pub fn link_dns(configs: &[&DnsConfig], default_route: bool) -> LinkDns {
    let mut out = LinkDns { default_route, ..Default::default() };
    for c in configs {
        for s in &c.servers {
            // A DNS-over-TLS name after '#' is not an address.
            let server = match s.split('#').next().unwrap_or(s).parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => (AF_INET, a.octets().to_vec()),
                Ok(IpAddr::V6(a)) => (AF_INET6, a.octets().to_vec()),
                Err(_) => continue,
            };
            if !out.servers.contains(&server) {
                out.servers.push(server);
            }
        }
        for d in &c.searches {
            let domain = match d.strip_prefix('~') {
                Some(name) => (name.to_string(), true),
                None => (d.clone(), false),
            };
            if !domain.0.is_empty() && !out.domains.contains(&domain) {
                out.domains.push(domain);
            }
        }
    }
    out
}

/// The task's handle: what to tell resolved, per link index (`None`:
/// revert the link).
pub type Sender = mpsc::UnboundedSender<(u32, Option<LinkDns>)>;

pub fn spawn(bus: Bus) -> Sender {
    let (tx, mut rx) = mpsc::unbounded_channel::<(u32, Option<LinkDns>)>();
    tokio::spawn(async move {
        while let Some((ifindex, dns)) = rx.recv().await {
            let Ok(link) = i32::try_from(ifindex) else { continue };
            let r = match &dns {
                Some(d) => tell(&bus, link, d).await,
                None => call(&bus, "RevertLink", &(link,)).await,
            };
            if let Err(e) = r {
                warn!(ifindex, "systemd-resolved: {e}");
            } else {
                debug!(ifindex, "systemd-resolved told: {dns:?}");
            }
        }
    });
    tx
}

async fn tell(bus: &Bus, link: i32, d: &LinkDns) -> zbus::Result<()> {
    call(bus, "SetLinkDNS", &(link, &d.servers)).await?;
    call(bus, "SetLinkDomains", &(link, &d.domains)).await?;
    call(bus, "SetLinkDefaultRoute", &(link, d.default_route)).await
}

async fn call<B>(bus: &Bus, method: &str, body: &B) -> zbus::Result<()>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    bus.call_method(Some(RESOLVED), RESOLVED_PATH, Some(RESOLVED_MANAGER), method, body).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(servers: &[&str], searches: &[&str]) -> DnsConfig {
        DnsConfig {
            servers: servers.iter().map(|s| s.to_string()).collect(),
            searches: searches.iter().map(|s| s.to_string()).collect(),
            options: vec![],
            priority: 100,
        }
    }

    #[test]
    fn both_families_go_to_one_link() {
        let v4 = cfg(&["192.0.2.53", "192.0.2.54#dns.example"], &["lab.test", "~corp.test"]);
        let v6 = cfg(&["2001:db8::53", "192.0.2.53"], &["lab.test"]);
        let d = link_dns(&[&v4, &v6], true);
        assert_eq!(
            d.servers,
            vec![
                (AF_INET, vec![192, 0, 2, 53]),
                (AF_INET, vec![192, 0, 2, 54]),
                (AF_INET6, "2001:db8::53".parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec()),
            ]
        );
        assert_eq!(d.domains, vec![("lab.test".to_string(), false), ("corp.test".to_string(), true)]);
        assert!(d.default_route);
    }

    #[test]
    fn resolved_files_are_recognised() {
        assert!(is_resolved_file(Path::new("../run/systemd/resolve/stub-resolv.conf")));
        assert!(is_resolved_file(Path::new("/run/systemd/resolve/resolv.conf")));
        assert!(!is_resolved_file(Path::new("/run/NetworkManager/resolv.conf")));
    }
}
