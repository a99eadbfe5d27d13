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

/// Any NetworkManager error by name, e.g.
/// `org.freedesktop.NetworkManager.UnknownConnection`. Also carries errors
/// of the settings services through nm-core unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmError {
    pub name: String,
    pub message: String,
}

impl NmError {
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        NmError { name: name.to_string(), message: message.into() }
    }

    /// `org.freedesktop.NetworkManager.<nick>` (NMManagerError).
    pub fn manager(nick: &str, message: impl Into<String>) -> Self {
        Self::new(&format!("org.freedesktop.NetworkManager.{nick}"), message)
    }

    /// `org.freedesktop.NetworkManager.Settings.<nick>`.
    pub fn settings(nick: &str, message: impl Into<String>) -> Self {
        Self::new(&format!("org.freedesktop.NetworkManager.Settings.{nick}"), message)
    }

    /// `org.freedesktop.NetworkManager.Settings.Connection.<nick>`.
    pub fn connection(nick: &str, message: impl Into<String>) -> Self {
        Self::new(&format!("org.freedesktop.NetworkManager.Settings.Connection.{nick}"), message)
    }

    /// `org.freedesktop.NetworkManager.Device.<nick>`.
    pub fn device(nick: &str, message: impl Into<String>) -> Self {
        Self::new(&format!("org.freedesktop.NetworkManager.Device.{nick}"), message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new("org.freedesktop.DBus.Error.AccessDenied", message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::manager("Failed", message)
    }
}

impl std::fmt::Display for NmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for NmError {}

impl From<nm_model::PropertyError> for NmError {
    fn from(e: nm_model::PropertyError) -> Self {
        let nick = if e.message == "property is missing" { "MissingProperty" } else { "InvalidProperty" };
        NmError::connection(nick, e.to_string())
    }
}

/// A failed call to another service, with the error name it replied.
impl From<zbus::Error> for NmError {
    fn from(e: zbus::Error) -> Self {
        match e {
            zbus::Error::MethodError(name, desc, _) => {
                NmError { name: name.as_str().to_string(), message: desc.unwrap_or_default() }
            }
            other => NmError::failed(other.to_string()),
        }
    }
}

impl zbus::DBusError for NmError {
    fn create_reply(&self, hdr: &zbus::message::Header<'_>) -> zbus::Result<zbus::Message> {
        let name = zbus::names::ErrorName::try_from(self.name.as_str())?;
        zbus::Message::error(hdr, name).build(&(self.message.as_str(),))
    }

    fn name(&self) -> zbus::names::ErrorName<'_> {
        zbus::names::ErrorName::try_from(self.name.as_str()).unwrap_or_else(|_| {
            zbus::names::ErrorName::from_static_str_unchecked("org.freedesktop.NetworkManager.Failed")
        })
    }

    fn description(&self) -> Option<&str> {
        Some(&self.message)
    }
}
