//! Run a client (`busctl`, `dbus-send`, `nmcli`, `nmctl`, …) inside the lab,
//! on the lab bus, as root or as another user.

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::{Lab, LabError};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A command to run in the lab; see [`Lab::command`].
#[must_use = "a LabCommand does nothing until output() is awaited"]
pub struct LabCommand<'lab> {
    lab: &'lab Lab,
    program: OsString,
    args: Vec<OsString>,
    uid: Option<u32>,
    gid: Option<u32>,
    server_side: bool,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

/// What a finished command said.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

impl<'lab> LabCommand<'lab> {
    pub(crate) fn new(lab: &'lab Lab, program: impl Into<OsString>) -> Self {
        LabCommand {
            lab,
            program: program.into(),
            args: Vec::new(),
            uid: None,
            gid: None,
            server_side: false,
            env: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs as this uid (gid the same unless [`gid`](Self::gid) is given),
    /// without supplementary groups, via `setpriv`.
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }

    pub fn gid(mut self, gid: u32) -> Self {
        self.gid = Some(gid);
        self
    }

    /// Runs in the server namespace (next to dnsmasq) instead of the client
    /// namespace.
    pub fn in_server_netns(mut self) -> Self {
        self.server_side = true;
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Bytes to feed on stdin (stdin is empty otherwise).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Kills the command after this long (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the command to completion. A non-zero exit is not an error here:
    /// look at [`Output::status`] (or use [`checked`](Self::checked)).
    pub async fn output(self) -> Result<Output, LabError> {
        let netns = if self.server_side {
            self.lab
                .server_netns()
                .ok_or_else(|| LabError::Invalid("this lab has no server namespace (no uplinks)".into()))?
        } else {
            self.lab.client_netns()
        };
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns]);
        if let Some(uid) = self.uid {
            let gid = self.gid.unwrap_or(uid);
            cmd.arg("setpriv")
                .arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .args(["--clear-groups", "--"]);
        }
        cmd.arg(&self.program).args(&self.args);
        self.lab.set_client_env(&mut cmd);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A timed-out command must not outlive the lab.
            .kill_on_drop(true);
        let shown = self.describe();
        let mut child = cmd.spawn().map_err(|e| LabError::io(format!("starting `{shown}`"), e))?;
        if let (Some(input), Some(mut pipe)) = (self.stdin, child.stdin.take()) {
            // Written alongside the reading of stdout/stderr, so a command that
            // answers before it has read everything cannot deadlock us. A
            // command that closes its stdin early is its business, not ours.
            tokio::spawn(async move {
                let _ = pipe.write_all(&input).await;
            });
        }
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| LabError::Timeout {
                what: format!("`{shown}`"),
                timeout: self.timeout,
                log: "its output".into(),
                log_tail: String::new(),
            })?
            .map_err(|e| LabError::io(format!("running `{shown}`"), e))?;
        Ok(Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Like [`output`](Self::output), but a non-zero exit is an error.
    pub async fn checked(self) -> Result<Output, LabError> {
        let shown = self.describe();
        let out = self.output().await?;
        if out.success() {
            Ok(out)
        } else {
            Err(LabError::Command {
                command: shown,
                status: out.status.to_string(),
                stderr: out.stderr.trim().to_owned(),
            })
        }
    }

    fn describe(&self) -> String {
        let mut s = self.program.to_string_lossy().into_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        if let Some(uid) = self.uid {
            s.push_str(&format!(" (as uid {uid})"));
        }
        s
    }
}
