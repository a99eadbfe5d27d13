//! What a profile's `ethtool` setting asks of the device, pure: offload
//! features by the kernel's names (NetworkManager's option names are
//! mostly the kernel's; a few stand for several kernel features, as
//! ethtool(8)'s `-K` names do), and the coalesce, ring, pause and channel
//! values by
//! their place in the kernel's structs. The engine applies it in stage 2,
//! keeping what the device had, and puts that back when the activation
//! ends, as NetworkManager does.

use nm_model::{Connection, Value};
use nm_platform::ethtool::EthtoolBlock;

/// NetworkManager's options that stand for several kernel features.
const ALIASES: &[(&str, &[&str])] = &[
    ("sg", &["tx-scatter-gather", "tx-scatter-gather-fraglist"]),
    (
        "tso",
        &["tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation"],
    ),
    (
        "tx",
        &["tx-checksum-ipv4", "tx-checksum-ip-generic", "tx-checksum-ipv6", "tx-checksum-fcoe-crc", "tx-checksum-sctp"],
    ),
    ("gro", &["rx-gro"]),
    ("gso", &["tx-generic-segmentation"]),
    ("lro", &["rx-lro"]),
    ("ntuple", &["rx-ntuple-filter"]),
    ("rx", &["rx-checksum"]),
    ("rxhash", &["rx-hashing"]),
    ("rxvlan", &["rx-vlan-hw-parse"]),
    ("txvlan", &["tx-vlan-hw-insert"]),
];

/// The coalesce options by their word in `struct ethtool_coalesce`.
const COALESCE: &[&str] = &[
    "rx-usecs",
    "rx-frames",
    "rx-usecs-irq",
    "rx-frames-irq",
    "tx-usecs",
    "tx-frames",
    "tx-usecs-irq",
    "tx-frames-irq",
    "stats-block-usecs",
    "adaptive-rx",
    "adaptive-tx",
    "pkt-rate-low",
    "rx-usecs-low",
    "rx-frames-low",
    "tx-usecs-low",
    "tx-frames-low",
    "pkt-rate-high",
    "rx-usecs-high",
    "rx-frames-high",
    "tx-usecs-high",
    "tx-frames-high",
    "sample-interval",
];

/// The ring options by their word in `struct ethtool_ringparam` (after
/// the four maximums).
const RING: &[(&str, usize)] = &[("rx", 4), ("rx-mini", 5), ("rx-jumbo", 6), ("tx", 7)];

/// The channel counts by their word in `struct ethtool_channels` (after
/// the four maximums).
const CHANNELS: &[(&str, usize)] = &[("rx", 4), ("tx", 5), ("other", 6), ("combined", 7)];

/// The pause options by their word in `struct ethtool_pauseparam`.
const PAUSE: &[(&str, usize)] = &[("autoneg", 0), ("rx", 1), ("tx", 2)];

/// What a profile asks: kernel features on or off, and changed words per
/// settings group.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EthtoolPlan {
    pub features: Vec<(String, bool)>,
    pub blocks: Vec<(EthtoolBlock, Vec<(usize, u32)>)>,
}

/// The profile's `ethtool` setting as kernel requests (`None` without one).
pub fn plan(conn: &Connection) -> Option<EthtoolPlan> {
    let setting = conn.settings.get("ethtool")?;
    let mut out = EthtoolPlan::default();
    // Options in name order; an alias comes before the specific names it
    // covers ("tso" < "tx-tcp-…"), so a specific option wins, as in
    // NetworkManager's table.
    let mut features: Vec<(&str, bool)> = Vec::new();
    for (name, value) in &setting.props {
        let Some(feature) = name.strip_prefix("feature-") else { continue };
        let Some(on) = value.as_bool() else { continue };
        features.push((feature, on));
    }
    features.sort_by_key(|(f, _)| ALIASES.iter().position(|(a, _)| a == f).map_or(1, |_| 0));
    for (feature, on) in features {
        let kernel: Vec<&str> = match ALIASES.iter().find(|(a, _)| *a == feature) {
            Some((_, names)) => names.to_vec(),
            None => vec![feature],
        };
        for k in kernel {
            out.features.retain(|(n, _)| n != k);
            out.features.push((k.to_string(), on));
        }
    }
    let number = |v: &Value| v.as_i128().and_then(|n| u32::try_from(n).ok());
    let mut coalesce = Vec::new();
    let mut ring = Vec::new();
    let mut pause = Vec::new();
    let mut channels = Vec::new();
    for (name, value) in &setting.props {
        if let Some(o) = name.strip_prefix("coalesce-")
            && let (Some(i), Some(v)) = (COALESCE.iter().position(|c| *c == o), number(value))
        {
            coalesce.push((i, v));
        } else if let Some(o) = name.strip_prefix("ring-")
            && let (Some((_, i)), Some(v)) = (RING.iter().find(|(r, _)| *r == o), number(value))
        {
            ring.push((*i, v));
        } else if let Some(o) = name.strip_prefix("channels-")
            && let (Some((_, i)), Some(v)) = (CHANNELS.iter().find(|(c, _)| *c == o), number(value))
        {
            channels.push((*i, v));
        } else if let Some(o) = name.strip_prefix("pause-")
            && let (Some((_, i)), Some(on)) = (PAUSE.iter().find(|(p, _)| *p == o), value.as_bool())
        {
            pause.push((*i, u32::from(on)));
        }
    }
    // Asking for rx or tx pause turns autonegotiation of it off.
    if pause.iter().any(|(i, _)| *i != 0) {
        pause.retain(|(i, _)| *i != 0);
        pause.insert(0, (0, 0));
    }
    let blocks = [
        (EthtoolBlock::Coalesce, coalesce),
        (EthtoolBlock::Ring, ring),
        (EthtoolBlock::Pause, pause),
        (EthtoolBlock::Channels, channels),
    ];
    for (block, words) in blocks {
        if !words.is_empty() {
            out.blocks.push((block, words));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nm_model::{keyfile, validate};

    fn conn(ethtool: &str) -> Connection {
        let text = format!(
            "[connection]\nid=e\nuuid=4f0e9a39-33d1-4c77-8f0c-6d4b2f9d1e10\ntype=ethernet\n\n[ethtool]\n{ethtool}"
        );
        validate::normalize_and_validate(keyfile::parse(&text).unwrap()).unwrap()
    }

    #[test]
    fn options_become_kernel_features_and_struct_words() {
        let p = plan(&conn(
            "feature-tso=false\nfeature-tx-tcp6-segmentation=true\nfeature-gro=false\nfeature-highdma=true\n",
        ))
        .unwrap();
        let on = |k: &str| p.features.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        // The alias covers four kernel features; the specific option wins.
        assert_eq!(on("tx-tcp-segmentation"), Some(false));
        assert_eq!(on("tx-tcp-mangleid-segmentation"), Some(false));
        assert_eq!(on("tx-tcp6-segmentation"), Some(true));
        assert_eq!((on("rx-gro"), on("highdma")), (Some(false), Some(true)));
        assert_eq!(p.features.len(), 6);
        assert!(p.blocks.is_empty());

        let p = plan(&conn(
            "coalesce-rx-usecs=50\ncoalesce-sample-interval=3\nring-tx=256\npause-rx=true\nchannels-combined=4\n",
        ))
        .unwrap();
        assert_eq!(
            p.blocks,
            vec![
                (EthtoolBlock::Coalesce, vec![(0, 50), (21, 3)]),
                (EthtoolBlock::Ring, vec![(7, 256)]),
                // pause-rx turns autonegotiation off.
                (EthtoolBlock::Pause, vec![(0, 0), (1, 1)]),
                (EthtoolBlock::Channels, vec![(7, 4)]),
            ]
        );
        let none = validate::normalize_and_validate(
            keyfile::parse("[connection]\nid=e\nuuid=4f0e9a39-33d1-4c77-8f0c-6d4b2f9d1e10\ntype=ethernet\n").unwrap(),
        )
        .unwrap();
        assert_eq!(plan(&none), None);
    }
}
