//! NetworkManager's D-Bus error names, so clients recognise our refusals.

use zbus::DBusError;

/// `org.freedesktop.NetworkManager.Settings.Connection.*` (NMConnectionError).
#[derive(Debug, DBusError)]
#[zbus(prefix = "org.freedesktop.NetworkManager.Settings.Connection")]
pub enum ConnectionError {
    #[zbus(error)]
    ZBus(zbus::Error),
    Failed(String),
    SettingNotFound(String),
    PropertyNotFound(String),
    PropertyNotSecret(String),
    MissingSetting(String),
    InvalidSetting(String),
    MissingProperty(String),
    InvalidProperty(String),
}

/// `org.freedesktop.NetworkManager.Settings.*` (NMSettingsError).
#[derive(Debug, DBusError)]
#[zbus(prefix = "org.freedesktop.NetworkManager.Settings")]
pub enum SettingsError {
    #[zbus(error)]
    ZBus(zbus::Error),
    Failed(String),
    PermissionDenied(String),
    NotSupported(String),
    InvalidConnection(String),
    ReadOnlyConnection(String),
    UuidExists(String),
    InvalidHostname(String),
    InvalidArguments(String),
}

impl From<nm_model::PropertyError> for ConnectionError {
    fn from(e: nm_model::PropertyError) -> Self {
        ConnectionError::InvalidProperty(e.to_string())
    }
}
