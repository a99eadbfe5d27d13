//! A device's offload features and its coalesce, ring, pause and channel
//! settings, through the `SIOCETHTOOL` ioctl (as NetworkManager 1.42
//! does). Features are named as the kernel names them
//! (`tx-tcp-segmentation`): the ioctl takes bit positions, which come from
//! the device's own `ETH_SS_FEATURES` string set. The other groups are
//! fixed structs of 32-bit words, read, changed by word and written back.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETHTOOL_SFEATURES: u32 = 0x3b;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;

/// A group of settings the kernel reads and writes as one struct of u32
/// words (the first being the command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EthtoolBlock {
    /// `struct ethtool_coalesce`: 22 values.
    Coalesce,
    /// `struct ethtool_ringparam`: 4 maximums, then rx, rx-mini, rx-jumbo, tx.
    Ring,
    /// `struct ethtool_pauseparam`: autoneg, rx, tx.
    Pause,
    /// `struct ethtool_channels`: 4 maximums, then rx, tx, other, combined.
    Channels,
}

impl EthtoolBlock {
    /// (get command, set command, words after the command).
    fn layout(self) -> (u32, u32, usize) {
        match self {
            EthtoolBlock::Coalesce => (0x0e, 0x0f, 22),
            EthtoolBlock::Ring => (0x10, 0x11, 8),
            EthtoolBlock::Pause => (0x12, 0x13, 3),
            EthtoolBlock::Channels => (0x3c, 0x3d, 8),
        }
    }
}

/// One feature's state: whether the device can change it and whether it
/// is on now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureState {
    pub changeable: bool,
    pub active: bool,
}

/// An `AF_INET` datagram socket to hand the ioctl to (in this process's
/// network namespace, where the device is).
fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs one `SIOCETHTOOL` request whose buffer starts with its command
/// word; returns the ioctl's (non-negative) result.
fn ioctl(sock: &OwnedFd, ifname: &str, buf: &mut [u64]) -> io::Result<i32> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad interface name '{ifname}'")));
    }
    // SAFETY: ifreq is plain data; all zeros is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_data = buf.as_mut_ptr().cast();
    // SAFETY: the kernel reads and writes within `buf`, which each caller
    // sizes for its command (the counts it declares in it).
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut req) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(rc) }
}

/// A buffer of `words` u32s (8-byte aligned), as u64s for the ioctl.
fn buffer(words: usize) -> Vec<u64> {
    vec![0u64; words.div_ceil(2)]
}

fn word(buf: &[u64], i: usize) -> u32 {
    let w = buf[i / 2];
    // Little or big endian: the kernel wrote u32s in memory order.
    let bytes = w.to_ne_bytes();
    let half = if i.is_multiple_of(2) { &bytes[..4] } else { &bytes[4..] };
    u32::from_ne_bytes([half[0], half[1], half[2], half[3]])
}

fn set_word(buf: &mut [u64], i: usize, v: u32) {
    let mut bytes = buf[i / 2].to_ne_bytes();
    let at = if i.is_multiple_of(2) { 0 } else { 4 };
    bytes[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    buf[i / 2] = u64::from_ne_bytes(bytes);
}

/// The names of the device's features, by bit position.
fn feature_names(sock: &OwnedFd, ifname: &str) -> io::Result<Vec<String>> {
    // struct ethtool_sset_info: cmd, reserved, u64 mask, then one count.
    let mut info = buffer(6);
    set_word(&mut info, 0, ETHTOOL_GSSET_INFO);
    info[1] = 1u64 << ETH_SS_FEATURES;
    ioctl(sock, ifname, &mut info)?;
    if info[1] & (1u64 << ETH_SS_FEATURES) == 0 {
        // No feature strings: asking for them would let the kernel write
        // however many it has into a buffer sized for none.
        return Err(io::Error::new(io::ErrorKind::Unsupported, format!("{ifname} reports no offload features")));
    }
    let count = word(&info, 4) as usize;
    // struct ethtool_gstrings: cmd, string set, count, then the strings.
    let mut strings = buffer(3 + count * ETH_GSTRING_LEN / 4);
    set_word(&mut strings, 0, ETHTOOL_GSTRINGS);
    set_word(&mut strings, 1, ETH_SS_FEATURES);
    set_word(&mut strings, 2, u32::try_from(count).unwrap_or(0));
    ioctl(sock, ifname, &mut strings)?;
    let bytes: Vec<u8> = strings.iter().flat_map(|w| w.to_ne_bytes()).skip(12).collect();
    Ok(bytes
        .chunks(ETH_GSTRING_LEN)
        .take(count)
        .map(|c| String::from_utf8_lossy(c.split(|b| *b == 0).next().unwrap_or_default()).into_owned())
        .collect())
}

/// Every feature of `ifname` with its state, by kernel name.
pub fn features(ifname: &str) -> io::Result<Vec<(String, FeatureState)>> {
    let sock = socket()?;
    let names = feature_names(&sock, ifname)?;
    let blocks = names.len().div_ceil(32);
    // struct ethtool_gfeatures: cmd, size, then per block available,
    // requested, active, never_changed.
    let mut buf = buffer(2 + blocks * 4);
    set_word(&mut buf, 0, ETHTOOL_GFEATURES);
    set_word(&mut buf, 1, u32::try_from(blocks).unwrap_or(0));
    ioctl(&sock, ifname, &mut buf)?;
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(bit, name)| {
            let (block, mask) = (bit / 32, 1u32 << (bit % 32));
            let available = word(&buf, 2 + block * 4);
            let active = word(&buf, 2 + block * 4 + 2);
            let never_changed = word(&buf, 2 + block * 4 + 3);
            let changeable = available & mask != 0 && never_changed & mask == 0;
            (name, FeatureState { changeable, active: active & mask != 0 })
        })
        .collect())
}

/// Asks for features of `ifname` on or off, by kernel name. Names the
/// device does not have are left out; returns them.
pub fn set_features(ifname: &str, wanted: &[(String, bool)]) -> io::Result<Vec<String>> {
    let sock = socket()?;
    let names = feature_names(&sock, ifname)?;
    let blocks = names.len().div_ceil(32);
    // struct ethtool_sfeatures: cmd, size, then per block valid, requested.
    let mut buf = buffer(2 + blocks * 2);
    set_word(&mut buf, 0, ETHTOOL_SFEATURES);
    set_word(&mut buf, 1, u32::try_from(blocks).unwrap_or(0));
    let mut missing = Vec::new();
    for (name, on) in wanted {
        let Some(bit) = names.iter().position(|n| n == name) else {
            missing.push(name.clone());
            continue;
        };
        let (block, mask) = (bit / 32, 1u32 << (bit % 32));
        let valid = word(&buf, 2 + block * 2);
        set_word(&mut buf, 2 + block * 2, valid | mask);
        let requested = word(&buf, 2 + block * 2 + 1);
        set_word(&mut buf, 2 + block * 2 + 1, if *on { requested | mask } else { requested & !mask });
    }
    if missing.len() < wanted.len() {
        // A positive result (ETHTOOL_F_*) says some could not be changed
        // as asked: the device keeps what it must.
        ioctl(&sock, ifname, &mut buf)?;
    }
    Ok(missing)
}

/// The words of a settings group of `ifname` (without the command word).
pub fn block(ifname: &str, which: EthtoolBlock) -> io::Result<Vec<u32>> {
    let (get, _, words) = which.layout();
    let sock = socket()?;
    let mut buf = buffer(1 + words);
    set_word(&mut buf, 0, get);
    ioctl(&sock, ifname, &mut buf)?;
    Ok((1..=words).map(|i| word(&buf, i)).collect())
}

/// Changes words of a settings group of `ifname` (index after the command
/// word), keeping the others as the device has them.
pub fn set_block(ifname: &str, which: EthtoolBlock, changes: &[(usize, u32)]) -> io::Result<()> {
    let (get, set, words) = which.layout();
    let sock = socket()?;
    let mut buf = buffer(1 + words);
    set_word(&mut buf, 0, get);
    ioctl(&sock, ifname, &mut buf)?;
    for (i, v) in changes {
        if *i >= words {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("no word {i} in {which:?}")));
        }
        set_word(&mut buf, 1 + i, *v);
    }
    set_word(&mut buf, 0, set);
    ioctl(&sock, ifname, &mut buf).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_sit_in_memory_order() {
        let mut buf = buffer(5);
        assert_eq!(buf.len(), 3, "rounded up to whole u64s");
        for i in 0..5 {
            set_word(&mut buf, i, 0x1000 + i as u32);
        }
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let words: Vec<u32> = bytes.chunks(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert_eq!(&words[..5], &[0x1000, 0x1001, 0x1002, 0x1003, 0x1004]);
        assert_eq!((0..5).map(|i| word(&buf, i)).collect::<Vec<_>>(), &words[..5]);
    }
}
