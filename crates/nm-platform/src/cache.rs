//! The cache of links and addresses, and what each change to it means as
//! an event. Pure: the event task feeds it parsed messages and dumps.

use std::collections::BTreeMap;

use crate::parse::HostInfo;
use crate::types::{Address, Link, LinkKind, PlatformEvent, RaFlags};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cache {
    links: BTreeMap<u32, Link>,
    /// Addresses per ifindex, in the order the kernel reported them.
    addrs: BTreeMap<u32, Vec<Address>>,
}

impl Cache {
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.links.values()
    }

    pub fn link(&self, ifindex: u32) -> Option<&Link> {
        self.links.get(&ifindex)
    }

    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.links.values().find(|l| l.name == name)
    }

    pub fn addresses(&self, ifindex: u32) -> &[Address] {
        self.addrs.get(&ifindex).map_or(&[], Vec::as_slice)
    }

    /// What sysfs said about this link when it was last read, if the link
    /// is known under the same index and name (a renamed link is asked again).
    pub fn host_info(&self, ifindex: u32, name: &str) -> Option<HostInfo> {
        self.links.get(&ifindex).filter(|l| l.name == name).map(|l| HostInfo {
            device: l.physical,
            driver: l.driver.clone(),
            wireless: l.kind == LinkKind::Wifi,
        })
    }

    /// A link as a dump or `RTM_NEWLINK` reports it.
    pub fn put_link(&mut self, link: Link) -> Option<PlatformEvent> {
        match self.links.get_mut(&link.ifindex) {
            Some(old) if *old == link => None,
            Some(old) => {
                *old = link.clone();
                Some(PlatformEvent::LinkChanged(link))
            }
            None => {
                self.links.insert(link.ifindex, link.clone());
                Some(PlatformEvent::LinkAdded(link))
            }
        }
    }

    /// New router advertisement flags of a link (see `parse_inet6_link`).
    pub fn set_ra(&mut self, ifindex: u32, ra: RaFlags) -> Option<PlatformEvent> {
        let link = self.links.get_mut(&ifindex).filter(|l| l.ra != ra)?;
        link.ra = ra;
        Some(PlatformEvent::LinkChanged(link.clone()))
    }

    /// `RTM_DELLINK`: the link and whatever addresses the cache still
    /// holds for it (the kernel normally removed them one by one before).
    pub fn remove_link(&mut self, ifindex: u32, name: String, out: &mut Vec<PlatformEvent>) {
        if let Some(addrs) = self.addrs.remove(&ifindex) {
            out.extend(addrs.into_iter().map(PlatformEvent::AddressRemoved));
        }
        if let Some(old) = self.links.remove(&ifindex) {
            let name = if name.is_empty() { old.name } else { name };
            out.push(PlatformEvent::LinkRemoved { ifindex, name });
        }
    }

    /// An address as a dump or `RTM_NEWADDR` reports it.
    pub fn put_address(&mut self, addr: Address) -> Option<PlatformEvent> {
        let list = self.addrs.entry(addr.ifindex).or_default();
        match list.iter_mut().find(|a| a.same_key(&addr)) {
            Some(old) if *old == addr => None,
            Some(old) => {
                *old = addr.clone();
                Some(PlatformEvent::AddressAdded(addr))
            }
            None => {
                list.push(addr.clone());
                Some(PlatformEvent::AddressAdded(addr))
            }
        }
    }

    /// `RTM_DELADDR`. The event carries the address as last known, with
    /// the flags of the deletion: the kernel removes an IPv6 address with a
    /// lifetime whose duplicate address detection failed, and only the
    /// deletion says `dadfailed`.
    pub fn remove_address(&mut self, addr: &Address) -> Option<PlatformEvent> {
        let list = self.addrs.get_mut(&addr.ifindex)?;
        let at = list.iter().position(|a| a.same_key(addr))?;
        let old = list.remove(at);
        if list.is_empty() {
            self.addrs.remove(&addr.ifindex);
        }
        Some(PlatformEvent::AddressRemoved(Address { flags: addr.flags, ..old }))
    }

    /// Replaces the cache by `fresh` (a new dump) and returns the events that
    /// take a consumer of the old one to the new one: removed addresses,
    /// removed links, added or changed links, added or changed addresses.
    pub fn replace(&mut self, fresh: Cache) -> Vec<PlatformEvent> {
        let mut out = Vec::new();
        for (ifindex, addrs) in &self.addrs {
            for a in addrs {
                if !fresh.addresses(*ifindex).iter().any(|f| f.same_key(a)) {
                    out.push(PlatformEvent::AddressRemoved(a.clone()));
                }
            }
        }
        for (ifindex, link) in &self.links {
            if !fresh.links.contains_key(ifindex) {
                out.push(PlatformEvent::LinkRemoved { ifindex: *ifindex, name: link.name.clone() });
            }
        }
        for (ifindex, link) in &fresh.links {
            match self.links.get(ifindex) {
                None => out.push(PlatformEvent::LinkAdded(link.clone())),
                Some(old) if old != link => out.push(PlatformEvent::LinkChanged(link.clone())),
                Some(_) => {}
            }
        }
        for (ifindex, addrs) in &fresh.addrs {
            for a in addrs {
                if !self.addresses(*ifindex).contains(a) {
                    out.push(PlatformEvent::AddressAdded(a.clone()));
                }
            }
        }
        *self = fresh;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Address, LinkKind};

    fn link(ifindex: u32, name: &str) -> Link {
        Link {
            ifindex,
            name: name.into(),
            kind: LinkKind::Veth,
            mac: Some(vec![2, 0, 0, 0, 0, ifindex as u8]),
            perm_mac: None,
            mtu: 1500,
            admin_up: false,
            promisc: false,
            carrier: false,
            master: None,
            driver: Some("veth".into()),
            physical: false,
            ra: RaFlags::default(),
            parent: None,
            details: None,
        }
    }

    fn addr(ifindex: u32, a: &str, prefix: u8) -> Address {
        Address::new(ifindex, a.parse().unwrap(), prefix)
    }

    #[test]
    fn links_are_added_changed_only_when_something_changed_and_removed() {
        let mut c = Cache::default();
        assert_eq!(c.put_link(link(2, "a")), Some(PlatformEvent::LinkAdded(link(2, "a"))));
        assert_eq!(c.put_link(link(2, "a")), None);
        let mut up = link(2, "a");
        up.admin_up = true;
        assert_eq!(c.put_link(up.clone()), Some(PlatformEvent::LinkChanged(up.clone())));
        assert_eq!(c.link(2), Some(&up));
        assert_eq!(c.link_by_name("a").map(|l| l.ifindex), Some(2));
        c.put_address(addr(2, "10.0.0.1", 24));
        let mut out = Vec::new();
        c.remove_link(2, String::new(), &mut out);
        assert_eq!(
            out,
            vec![
                PlatformEvent::AddressRemoved(addr(2, "10.0.0.1", 24)),
                PlatformEvent::LinkRemoved { ifindex: 2, name: "a".into() },
            ]
        );
        assert!(c.link(2).is_none() && c.addresses(2).is_empty());
        out.clear();
        c.remove_link(2, "a".into(), &mut out);
        assert!(out.is_empty(), "removing an unknown link says nothing");
    }

    #[test]
    fn addresses_are_keyed_like_the_kernel_keys_them() {
        let mut c = Cache::default();
        assert!(c.put_address(addr(2, "10.0.0.1", 24)).is_some());
        // IPv4: another prefix is another address.
        assert!(c.put_address(addr(2, "10.0.0.1", 16)).is_some());
        assert_eq!(c.addresses(2).len(), 2);
        // A lifetime refresh is a change of the same address.
        let mut refreshed = addr(2, "10.0.0.1", 24);
        refreshed.valid_lft = Some(100);
        assert_eq!(c.put_address(refreshed.clone()), Some(PlatformEvent::AddressAdded(refreshed.clone())));
        assert_eq!(c.put_address(refreshed.clone()), None);
        assert_eq!(c.addresses(2).len(), 2);
        // IPv6: the address alone is the key.
        assert!(c.put_address(addr(2, "fd00::1", 64)).is_some());
        assert!(c.put_address(addr(2, "fd00::1", 80)).is_some());
        assert_eq!(c.addresses(2).len(), 3);
        assert_eq!(c.addresses(2)[2].prefix, 80);
        assert_eq!(c.remove_address(&addr(2, "10.0.0.1", 24)), Some(PlatformEvent::AddressRemoved(refreshed)));
        assert_eq!(c.remove_address(&addr(2, "10.0.0.1", 24)), None);
        assert_eq!(c.remove_address(&addr(9, "10.0.0.1", 24)), None);
        // The deletion's flags win (IPv6 DAD failure shows only there).
        let mut failed = addr(2, "fd00::1", 80);
        failed.flags = 0x08;
        assert_eq!(c.remove_address(&failed), Some(PlatformEvent::AddressRemoved(failed.clone())));
        assert!(c.put_address(addr(2, "fd00::1", 80)).is_some());
        c.remove_address(&addr(2, "10.0.0.1", 16));
        c.remove_address(&addr(2, "fd00::1", 64));
        assert!(c.addrs.is_empty(), "no empty lists are kept");
    }

    #[test]
    fn a_resync_emits_the_difference() {
        let mut old = Cache::default();
        old.put_link(link(1, "lo"));
        old.put_link(link(2, "gone"));
        old.put_link(link(3, "same"));
        old.put_link(link(4, "changes"));
        old.put_address(addr(2, "10.0.2.1", 24));
        old.put_address(addr(3, "10.0.3.1", 24));
        old.put_address(addr(4, "10.0.4.1", 24));

        let mut fresh = Cache::default();
        fresh.put_link(link(1, "lo"));
        fresh.put_link(link(3, "same"));
        let mut changed = link(4, "changes");
        changed.mtu = 9000;
        fresh.put_link(changed.clone());
        fresh.put_link(link(5, "new"));
        fresh.put_address(addr(3, "10.0.3.1", 24));
        let mut shorter = addr(4, "10.0.4.1", 24);
        shorter.preferred_lft = Some(5);
        fresh.put_address(shorter.clone());
        fresh.put_address(addr(5, "fd00::5", 64));

        let mut cache = old.clone();
        let events = cache.replace(fresh.clone());
        assert_eq!(cache, fresh);
        assert_eq!(
            events,
            vec![
                PlatformEvent::AddressRemoved(addr(2, "10.0.2.1", 24)),
                PlatformEvent::LinkRemoved { ifindex: 2, name: "gone".into() },
                PlatformEvent::LinkChanged(changed),
                PlatformEvent::LinkAdded(link(5, "new")),
                PlatformEvent::AddressAdded(shorter),
                PlatformEvent::AddressAdded(addr(5, "fd00::5", 64)),
            ]
        );
        // Nothing changed, nothing said.
        assert!(cache.replace(fresh).is_empty());
    }

    #[test]
    fn host_info_is_reused_only_for_the_same_name() {
        let mut c = Cache::default();
        let mut nic = link(2, "eth0");
        nic.physical = true;
        nic.kind = LinkKind::Wifi;
        nic.driver = Some("iwlwifi".into());
        c.put_link(nic);
        let info = c.host_info(2, "eth0").unwrap();
        assert!(info.device && info.wireless);
        assert_eq!(info.driver.as_deref(), Some("iwlwifi"));
        assert_eq!(c.host_info(2, "wlan0"), None);
        assert_eq!(c.host_info(3, "eth0"), None);
    }
}
