//! What nm-core keeps on disk between runs, in NetworkManager's formats:
//! `/run/NetworkManager/devices/<ifindex>` (which profile a device runs, so
//! that a restart takes it back without touching it) and
//! `/var/lib/NetworkManager/timestamps` (last successful activation).

use std::collections::BTreeMap;
use std::path::PathBuf;

use nm_model::keyfile;
use nm_runtime::Paths;

pub const DEVICES_DIR: &str = "/run/NetworkManager/devices";
pub const TIMESTAMPS: &str = "/var/lib/NetworkManager/timestamps";

/// The run state of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    pub uuid: String,
    pub metric: u32,
}

fn device_file(paths: &Paths, ifindex: u32) -> PathBuf {
    paths.path(DEVICES_DIR).join(ifindex.to_string())
}

pub fn render_device(r: &DeviceRecord) -> String {
    format!(
        "[device]\nmanaged=true\nconnection-uuid={}\nroute-metric-default-aspired={}\nroute-metric-default-effective={}\n",
        keyfile::escape(&r.uuid),
        r.metric,
        r.metric
    )
}

pub fn parse_device(text: &str) -> Option<DeviceRecord> {
    let mut uuid = None;
    let mut metric = None;
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "connection-uuid" => uuid = Some(keyfile::unescape(v.trim())),
                "route-metric-default-effective" => metric = v.trim().parse().ok(),
                _ => {}
            }
        }
    }
    Some(DeviceRecord { uuid: uuid.filter(|u| !u.is_empty())?, metric: metric.unwrap_or(0) })
}

pub fn save_device(paths: &Paths, ifindex: u32, record: Option<&DeviceRecord>) {
    let file = device_file(paths, ifindex);
    let result = match record {
        // /run is a tmpfs: atomic, but no fsync (it costs a disk flush per device).
        Some(r) => nm_runtime::write_replace(&file, render_device(r).as_bytes(), 0o644),
        None => match std::fs::remove_file(&file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    };
    if let Err(e) = result {
        tracing::warn!("recording device {ifindex} in {}: {e}", file.display());
    }
}

/// Records that the user let the device go (`nmcli device set … managed
/// no`), as NetworkManager's `managed=false`: a restart leaves it alone.
pub fn save_unmanaged(paths: &Paths, ifindex: u32) {
    let file = device_file(paths, ifindex);
    if let Err(e) = nm_runtime::write_replace(&file, b"[device]\nmanaged=false\n", 0o644) {
        tracing::warn!("recording device {ifindex} in {}: {e}", file.display());
    }
}

/// Whether the record says the user let the device go.
pub fn parse_unmanaged(text: &str) -> bool {
    text.lines().filter_map(|l| l.split_once('=')).any(|(k, v)| k.trim() == "managed" && v.trim() == "false")
}

pub fn load_unmanaged(paths: &Paths, ifindex: u32) -> bool {
    read_device(paths, ifindex).is_some_and(|t| parse_unmanaged(&t))
}

/// A device's record as it is on disk, if any (read once, parsed twice).
pub fn read_device(paths: &Paths, ifindex: u32) -> Option<String> {
    std::fs::read_to_string(device_file(paths, ifindex)).ok()
}

pub fn load_device(paths: &Paths, ifindex: u32) -> Option<DeviceRecord> {
    parse_device(&std::fs::read_to_string(device_file(paths, ifindex)).ok()?)
}

pub fn parse_timestamps(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| Some((k.trim().to_string(), v.trim().parse().ok()?)))
        .collect()
}

pub fn render_timestamps(ts: &BTreeMap<String, u64>) -> String {
    let mut out = String::from("[timestamps]\n");
    for (k, v) in ts {
        out.push_str(&format!("{k}={v}\n"));
    }
    out
}

pub fn load_timestamps(paths: &Paths) -> BTreeMap<String, u64> {
    std::fs::read_to_string(paths.path(TIMESTAMPS)).map(|t| parse_timestamps(&t)).unwrap_or_default()
}

pub fn save_timestamps(paths: &Paths, ts: &BTreeMap<String, u64>) {
    let file = paths.path(TIMESTAMPS);
    if let Err(e) = nm_runtime::write_atomic(&file, render_timestamps(ts).as_bytes(), 0o600) {
        tracing::warn!("saving {}: {e}", file.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_records_round_trip() {
        let r = DeviceRecord { uuid: "8fb923ad-bd8a-48c8-b85e-737628bb673a".into(), metric: 101 };
        assert_eq!(parse_device(&render_device(&r)), Some(r));
        assert_eq!(parse_device("[device]\nmanaged=true\n"), None);
    }

    #[test]
    fn unmanaged_records() {
        assert!(parse_unmanaged("[device]\nmanaged=false\n"));
        let managed = render_device(&DeviceRecord { uuid: "u".into(), metric: 100 });
        assert!(!parse_unmanaged(&managed));
        assert_eq!(parse_device("[device]\nmanaged=false\n"), None, "no profile to take back");
    }

    #[test]
    fn timestamps_round_trip() {
        let mut ts = BTreeMap::new();
        ts.insert("a".to_string(), 5u64);
        ts.insert("b".to_string(), 7u64);
        assert_eq!(parse_timestamps(&render_timestamps(&ts)), ts);
    }
}
