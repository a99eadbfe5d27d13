//! Exit statuses (listed in `nmctl --help`, like nmcli's) and the errors
//! that carry them.

use std::fmt;

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const TIMEOUT: u8 = 3;
pub const ACTIVATION_FAILED: u8 = 4;
pub const NOT_RUNNING: u8 = 8;
pub const NOT_FOUND: u8 = 10;

/// An error with its exit status. Other errors exit with [`FAILURE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

pub fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure { code, message: message.into() })
}

/// The exit status of an error: the first [`Failure`] in its chain.
pub fn code_of(e: &anyhow::Error) -> u8 {
    e.chain().find_map(|c| c.downcast_ref::<Failure>()).map_or(FAILURE, |f| f.code)
}

/// A D-Bus error from NetworkManager as a [`Failure`]: its name decides the
/// status, its message (NetworkManager's own words) is kept.
pub fn from_bus(what: &str, e: zbus::Error) -> anyhow::Error {
    let (name, message) = match &e {
        zbus::Error::MethodError(name, msg, _) => (name.as_str().to_string(), msg.clone().unwrap_or_default()),
        zbus::Error::FDO(fdo) => {
            use zbus::DBusError;
            (fdo.name().to_string(), fdo.description().unwrap_or_default().to_string())
        }
        other => (String::new(), other.to_string()),
    };
    let nick = name.rsplit('.').next().unwrap_or_default();
    let code = match nick {
        "ServiceUnknown" | "NameHasNoOwner" => NOT_RUNNING,
        "UnknownConnection" | "UnknownDevice" | "UnknownMethod" | "UnknownObject" => NOT_FOUND,
        "InvalidProperty" | "MissingProperty" | "InvalidSetting" | "MissingSetting" | "InvalidArguments"
        | "InvalidConnection" | "UuidExists" | "PropertyNotFound" | "SettingNotFound" => USAGE,
        _ => FAILURE,
    };
    let message = match (code, message.is_empty()) {
        (NOT_RUNNING, _) => format!("{what}: NetworkManager is not running"),
        (_, true) => format!("{what}: {name}"),
        (_, false) => format!("{what}: {message}"),
    };
    fail(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_in_the_chain_decides() {
        let e = fail(NOT_FOUND, "no such connection 'x'").context("deleting");
        assert_eq!(code_of(&e), NOT_FOUND);
        assert_eq!(code_of(&anyhow::anyhow!("plain")), FAILURE);
    }
}
