//! Checkpoints (`Manager.CheckpointCreate` and friends), as nmstate and
//! Cockpit use them: what a set of devices looked like (which profile each
//! had up, with its settings then, whether it was managed and could
//! autoconnect), so that a change that cut the host off can be rolled back
//! — by the caller, or by nm-core itself when the rollback timeout passes.
//!
//! Pure: what to restore, decided from the snapshot and the present; the
//! engine does it.

use std::sync::Arc;

use nm_model::Connection;

/// `NMCheckpointCreateFlags`.
pub const DESTROY_ALL: u32 = 0x1;
pub const DELETE_NEW_CONNECTIONS: u32 = 0x2;
pub const DISCONNECT_NEW_DEVICES: u32 = 0x4;
pub const ALLOW_OVERLAPPING: u32 = 0x8;
const KNOWN_FLAGS: u32 = 0x1f;

/// `NMRollbackResult`.
pub const RESULT_OK: u32 = 0;
pub const RESULT_ERR_NO_DEVICE: u32 = 1;
pub const RESULT_ERR_DEVICE_UNMANAGED: u32 = 2;
pub const RESULT_ERR_FAILED: u32 = 3;

/// A profile as it was when the checkpoint was made.
#[derive(Clone, Debug)]
pub struct SavedProfile {
    pub uuid: String,
    /// The profile's settings then.
    pub settings: Arc<Connection>,
    /// What the device had applied then (a reapply can make it differ).
    pub applied: Arc<Connection>,
    /// Only in memory then (not on disk).
    pub unsaved: bool,
}

/// One device as it was.
#[derive(Clone, Debug)]
pub struct DeviceSnapshot {
    pub device: u32,
    pub path: String,
    pub managed: bool,
    pub autoconnect: bool,
    pub active: Option<SavedProfile>,
}

/// What a rollback does with a device's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Keep,
    /// Activate the saved profile (again: its settings changed, or another
    /// profile is up, or none).
    Activate,
    /// Nothing was up then: take down what is up now.
    Deactivate,
}

/// What a rollback does with the saved profile itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileStep {
    Keep,
    /// Changed since: its saved settings go back.
    Update,
    /// Deleted since: added again, with its uuid.
    Add,
}

/// The flags a caller may give; others are refused, as NetworkManager does.
pub fn check_flags(flags: u32) -> Result<(), String> {
    if flags & !KNOWN_FLAGS != 0 { Err(format!("invalid flags 0x{flags:x}")) } else { Ok(()) }
}

/// The same settings, leaving out what changes by itself (the last
/// activation's timestamp).
pub fn same_settings(a: &Connection, b: &Connection) -> bool {
    let strip = |c: &Connection| {
        let mut c = c.clone();
        if let Some(s) = c.settings.get_mut("connection") {
            s.props.remove("timestamp");
        }
        c
    };
    strip(a) == strip(b)
}

pub fn profile_step(saved: &SavedProfile, now: Option<&Connection>) -> ProfileStep {
    match now {
        None => ProfileStep::Add,
        Some(c) if same_settings(&saved.settings, c) => ProfileStep::Keep,
        Some(_) => ProfileStep::Update,
    }
}

/// `now`: the uuid and applied settings of what the device has up now.
/// `profile_changed`: the saved profile's settings had to be restored.
pub fn activation_step(
    saved: Option<&SavedProfile>,
    now: Option<(&str, &Connection)>,
    profile_changed: bool,
) -> Activation {
    match (saved, now) {
        (None, None) => Activation::Keep,
        (None, Some(_)) => Activation::Deactivate,
        (Some(s), Some((uuid, applied)))
            if uuid == s.uuid && !profile_changed && same_settings(&s.applied, applied) =>
        {
            Activation::Keep
        }
        (Some(_), _) => Activation::Activate,
    }
}

/// The device of `devices` a checkpoint of `taken` already covers, if any.
pub fn overlap(devices: &[u32], taken: &[u32]) -> Option<u32> {
    devices.iter().copied().find(|d| taken.contains(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nm_model::{Value, keyfile};

    fn conn(extra: &str) -> Arc<Connection> {
        let text = format!(
            "[connection]\nid=p\nuuid=8fb923ad-bd8a-48c8-b85e-737628bb673a\ntype=ethernet\n{extra}\n[ipv4]\nmethod=manual\naddress1=192.0.2.1/24\n"
        );
        Arc::new(keyfile::parse(&text).unwrap())
    }

    fn saved(c: Arc<Connection>) -> SavedProfile {
        SavedProfile {
            uuid: "8fb923ad-bd8a-48c8-b85e-737628bb673a".into(),
            settings: c.clone(),
            applied: c,
            unsaved: false,
        }
    }

    #[test]
    fn timestamps_do_not_make_a_profile_different() {
        let a = conn("");
        let mut b = (*a).clone();
        b.set("connection", "timestamp", Value::UInt64(1_700_000_000));
        assert!(same_settings(&a, &b));
        b.set("ipv4", "method", Value::Str("auto".into()));
        assert!(!same_settings(&a, &b));
    }

    #[test]
    fn what_a_rollback_does() {
        let s = saved(conn(""));
        let other = conn("autoconnect=false\n");
        assert_eq!(profile_step(&s, None), ProfileStep::Add);
        assert_eq!(profile_step(&s, Some(&s.settings)), ProfileStep::Keep);
        assert_eq!(profile_step(&s, Some(&other)), ProfileStep::Update);
        let uuid = s.uuid.as_str();
        assert_eq!(activation_step(Some(&s), Some((uuid, &s.applied)), false), Activation::Keep);
        assert_eq!(activation_step(Some(&s), Some((uuid, &s.applied)), true), Activation::Activate);
        assert_eq!(activation_step(Some(&s), Some((uuid, &other)), false), Activation::Activate, "reapplied since");
        assert_eq!(activation_step(Some(&s), Some(("another", &s.applied)), false), Activation::Activate);
        assert_eq!(activation_step(Some(&s), None, false), Activation::Activate);
        assert_eq!(activation_step(None, Some((uuid, &s.applied)), false), Activation::Deactivate);
        assert_eq!(activation_step(None, None, false), Activation::Keep);
    }

    #[test]
    fn flags_and_overlaps() {
        assert!(check_flags(DESTROY_ALL | DELETE_NEW_CONNECTIONS | DISCONNECT_NEW_DEVICES | ALLOW_OVERLAPPING).is_ok());
        assert!(check_flags(0x100).is_err());
        assert_eq!(overlap(&[1, 2], &[3, 2]), Some(2));
        assert_eq!(overlap(&[1], &[3]), None);
    }
}
