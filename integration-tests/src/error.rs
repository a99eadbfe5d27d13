use std::time::Duration;

/// Everything that can go wrong while building or driving a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root (it creates network namespaces and veth pairs)")]
    NotRoot,

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}): {stderr}")]
    Command { command: String, status: String, stderr: String },

    #[error("{what}: not done after {timeout:?}\n--- last lines of {log} ---\n{log_tail}")]
    Timeout { what: String, timeout: Duration, log: String, log_tail: String },

    #[error("{program} exited ({status}) before {what}\n--- last lines of {log} ---\n{log_tail}")]
    Exited { program: String, status: String, what: String, log: String, log_tail: String },

    #[error("D-Bus ({context}): {source}")]
    Bus {
        context: String,
        #[source]
        source: zbus::Error,
    },

    #[error("{0}")]
    Invalid(String),
}

impl LabError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io { context: context.into(), source }
    }

    pub(crate) fn bus(context: impl Into<String>, source: impl Into<zbus::Error>) -> Self {
        LabError::Bus { context: context.into(), source: source.into() }
    }
}
