//! Client side of the settings-service interface (the 0.8 form that both
//! nm-system-settings and nm-user-settings serve; DESIGN.md §1).

use zbus::{OwnedObjectPath, proxy};

use crate::WireSettings;

/// One profile as `GetAllConnections` gives it: its object, what its
/// `GetSettings` answers (no secrets), and its `Filename` and `Unsaved`.
pub type ProfileEntry = (OwnedObjectPath, WireSettings, String, bool);

#[proxy(interface = "org.freedesktop.NetworkManagerSettings", default_path = "/org/freedesktop/NetworkManagerSettings")]
pub trait Settings {
    fn list_connections(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    /// nm-rs extension: every profile at once (see [`ProfileEntry`]).
    fn get_all_connections(&self) -> zbus::Result<Vec<ProfileEntry>>;
    fn add_connection(&self, connection: WireSettings) -> zbus::Result<OwnedObjectPath>;
    /// nm-rs extension: the profile is kept in /run (in memory).
    fn add_connection_unsaved(&self, connection: WireSettings) -> zbus::Result<OwnedObjectPath>;
    #[zbus(signal)]
    fn new_connection(&self, connection: OwnedObjectPath) -> zbus::Result<()>;
}

#[proxy(interface = "org.freedesktop.NetworkManagerSettings.Connection")]
pub trait SettingsConnection {
    fn get_settings(&self) -> zbus::Result<WireSettings>;
    fn update(&self, properties: WireSettings) -> zbus::Result<()>;
    /// nm-rs extension: the change is kept in /run (in memory).
    fn update_unsaved(&self, properties: WireSettings) -> zbus::Result<()>;
    fn delete(&self) -> zbus::Result<()>;
    #[zbus(signal)]
    fn updated(&self, settings: WireSettings) -> zbus::Result<()>;
    #[zbus(signal)]
    fn removed(&self) -> zbus::Result<()>;
}

#[proxy(interface = "org.freedesktop.NetworkManagerSettings.Connection.Secrets")]
pub trait SettingsSecrets {
    fn get_secrets(&self, setting_name: &str, hints: Vec<String>, request_new: bool) -> zbus::Result<WireSettings>;
}

#[proxy(
    interface = "org.freedesktop.NetworkManagerSettings.System",
    default_path = "/org/freedesktop/NetworkManagerSettings"
)]
pub trait SettingsSystem {
    fn save_hostname(&self, hostname: &str) -> zbus::Result<()>;
    #[zbus(property)]
    fn hostname(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn can_modify(&self) -> zbus::Result<bool>;
}
