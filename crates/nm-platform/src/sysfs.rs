//! What netlink does not say about a link: whether a device is behind it,
//! its driver, whether it is a wifi card. Read best-effort from
//! `/sys/class/net/NAME`, and only for links without a link kind (virtual
//! links never have a device).
//!
//! sysfs shows the network namespace it was mounted in, which need not be
//! ours (a thread that entered a namespace with `setns` still sees the old
//! /sys): the entry is believed only when its `ifindex` is the link's.

use std::path::{Path, PathBuf};

use crate::parse::HostInfo;

pub(crate) fn probe(name: &str, ifindex: u32) -> HostInfo {
    probe_in(Path::new("/sys/class/net"), name, ifindex)
}

fn probe_in(class_net: &Path, name: &str, ifindex: u32) -> HostInfo {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return HostInfo::default();
    }
    let dir: PathBuf = class_net.join(name);
    let same_link =
        std::fs::read_to_string(dir.join("ifindex")).ok().and_then(|s| s.trim().parse::<u32>().ok()) == Some(ifindex);
    if !same_link {
        return HostInfo::default();
    }
    let device = dir.join("device");
    let driver = std::fs::read_link(device.join("driver"))
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned));
    HostInfo {
        device: device.exists(),
        driver,
        wireless: dir.join("phy80211").exists() || dir.join("wireless").exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_fake_sysfs_is_read() {
        let root = std::env::temp_dir().join(format!("nm-platform-sysfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let class = root.join("class/net");
        let pci = root.join("devices/pci0000:00/0000:00:03.0");
        let drivers = root.join("bus/pci/drivers/e1000e");
        fs::create_dir_all(&pci).unwrap();
        fs::create_dir_all(&drivers).unwrap();
        std::os::unix::fs::symlink(&drivers, pci.join("driver")).unwrap();

        let eth = class.join("eth0");
        fs::create_dir_all(&eth).unwrap();
        fs::write(eth.join("ifindex"), "2\n").unwrap();
        std::os::unix::fs::symlink(&pci, eth.join("device")).unwrap();
        let wl = class.join("wlan0");
        fs::create_dir_all(wl.join("wireless")).unwrap();
        fs::write(wl.join("ifindex"), "3\n").unwrap();
        std::os::unix::fs::symlink(&pci, wl.join("device")).unwrap();

        let info = probe_in(&class, "eth0", 2);
        assert_eq!(info, HostInfo { device: true, driver: Some("e1000e".into()), wireless: false });
        assert!(probe_in(&class, "wlan0", 3).wireless);
        // Another namespace's eth0 (another index), a missing link, bad names.
        assert_eq!(probe_in(&class, "eth0", 7), HostInfo::default());
        assert_eq!(probe_in(&class, "eth9", 2), HostInfo::default());
        assert_eq!(probe_in(&class, "../net/eth0", 2), HostInfo::default());
        assert_eq!(probe_in(&class, "..", 2), HostInfo::default());
        fs::remove_dir_all(&root).unwrap();
    }
}
