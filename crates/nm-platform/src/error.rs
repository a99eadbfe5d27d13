//! What can go wrong talking to the kernel.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The netlink socket itself failed (creating, binding, sending, receiving).
    #[error("netlink socket: {context}: {source}")]
    Socket {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel refused a request. `message` is the kernel's extended ack
    /// text when it gave one.
    #[error("{op}: {}{}", io::Error::from_raw_os_error(*errno), message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kernel { op: String, errno: i32, message: Option<String> },
    /// The kernel sent something this crate cannot read.
    #[error("malformed netlink message: {0}")]
    Malformed(String),
    /// A caller asked for something impossible (a prefix longer than the
    /// address, families that do not match…).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl PlatformError {
    pub(crate) fn socket(context: &'static str, source: io::Error) -> PlatformError {
        PlatformError::Socket { context, source }
    }

    /// The kernel's errno, for [`PlatformError::Kernel`].
    pub fn errno(&self) -> Option<i32> {
        match self {
            PlatformError::Kernel { errno, .. } => Some(*errno),
            PlatformError::Socket { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_errors_name_the_operation_errno_and_message() {
        let e = PlatformError::Kernel {
            op: "adding route 10.0.0.0/8".into(),
            errno: libc::ENETUNREACH,
            message: Some("Nexthop has invalid gateway".into()),
        };
        let text = e.to_string();
        assert!(text.starts_with("adding route 10.0.0.0/8: "), "{text}");
        assert!(text.contains("unreachable"), "{text}");
        assert!(text.ends_with("(Nexthop has invalid gateway)"), "{text}");
        assert_eq!(e.errno(), Some(libc::ENETUNREACH));
        let plain = PlatformError::Kernel { op: "x".into(), errno: libc::EPERM, message: None };
        assert!(plain.to_string().ends_with("(os error 1)"), "{plain}");
    }
}
