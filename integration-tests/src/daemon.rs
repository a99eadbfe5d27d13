//! The launcher: start a workspace binary inside the lab's client namespace
//! with `--root <labroot>` on the lab bus, and wait — on bus signals, not on a
//! clock — until it owns its well-known name.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::process::{Child, Command};
use zbus::fdo::DBusProxy;
use zbus::names::{BusName, WellKnownName};

use crate::{Lab, LabError, tail};

/// The project's daemons and the well-known names they own (DESIGN.md §1).
pub const KNOWN_DAEMONS: &[(&str, &str)] = &[
    ("nm-core", "org.freedesktop.NetworkManager"),
    ("nm-system-settings", "org.freedesktop.NetworkManagerSystemSettings"),
    ("nm-user-settings", "org.freedesktop.NetworkManagerUserSettings"),
    ("nm-dhcp-helper", "org.freedesktop.nm_dhcp_helper"),
    ("nm-dispatcher", "org.freedesktop.nm_dispatcher"),
];

/// The well-known bus name of one of the project's daemons.
pub fn well_known_name(binary: &str) -> Option<&'static str> {
    KNOWN_DAEMONS.iter().find(|(b, _)| *b == binary).map(|(_, n)| *n)
}

/// Where the workspace's binaries are, given the running executable: a test
/// binary lives in `target/<profile>/deps/`, xtask in `target/<profile>/`;
/// either way the binaries are in `target/<profile>/`.
pub fn default_bin_dir(current_exe: &Path) -> Option<PathBuf> {
    let dir = current_exe.parent()?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf)
    } else {
        Some(dir.to_path_buf())
    }
}

/// `NM_RS_BIN_DIR`, or the binaries next to the running executable.
pub(crate) fn bin_dir() -> Result<PathBuf, LabError> {
    if let Some(dir) = std::env::var_os("NM_RS_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().map_err(|e| LabError::io("finding the running executable", e))?;
    default_bin_dir(&exe).ok_or_else(|| {
        LabError::Invalid(format!("cannot derive the binary directory from {}; set NM_RS_BIN_DIR", exe.display()))
    })
}

/// How long a daemon may take to own its name unless told otherwise.
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `stop()` waits after SIGTERM before it uses SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A daemon about to be started; see [`Lab::daemon`].
#[must_use = "a DaemonSpec does nothing until spawn() is awaited"]
pub struct DaemonSpec<'lab> {
    lab: &'lab Lab,
    binary: String,
    program: Option<PathBuf>,
    args: Vec<OsString>,
    bus_name: Option<String>,
    root_arg: bool,
    uid: Option<u32>,
    gid: Option<u32>,
    caps: Vec<String>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
}

impl<'lab> DaemonSpec<'lab> {
    pub(crate) fn new(lab: &'lab Lab, binary: &str) -> Self {
        DaemonSpec {
            lab,
            binary: binary.to_owned(),
            program: None,
            args: Vec::new(),
            bus_name: well_known_name(binary).map(str::to_owned),
            root_arg: true,
            uid: None,
            gid: None,
            caps: Vec::new(),
            env: Vec::new(),
            timeout: DEFAULT_READY_TIMEOUT,
        }
    }

    /// Runs this file instead of `<bin dir>/<binary>` (e.g. a path from
    /// `env!("CARGO_BIN_EXE_…")`).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
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

    /// Waits for this name instead of the binary's known one.
    pub fn bus_name(mut self, name: &str) -> Self {
        self.bus_name = Some(name.to_owned());
        self
    }

    /// Returns right after the start, without waiting for any name.
    pub fn no_bus_name(mut self) -> Self {
        self.bus_name = None;
        self
    }

    /// Does not pass `--root <labroot>` (for programs that are not ours).
    pub fn no_root_arg(mut self) -> Self {
        self.root_arg = false;
        self
    }

    /// Runs as this uid (and, unless [`gid`](Self::gid) says otherwise, the
    /// same gid) with no supplementary groups, via `setpriv`.
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }

    pub fn gid(mut self, gid: u32) -> Self {
        self.gid = Some(gid);
        self
    }

    /// With [`uid`](Self::uid): the daemon keeps exactly these capabilities
    /// (names as `setpriv` spells them, e.g. `net_raw`) as ambient ones
    /// across the uid change; its bounding set holds nothing else.
    pub fn caps<I, S>(mut self, caps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.caps.extend(caps.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// How long to wait for the bus name.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts the daemon; with a bus name, returns once the daemon's own
    /// process owns it.
    pub async fn spawn(self) -> Result<DaemonHandle, LabError> {
        let lab = self.lab;
        let program = match &self.program {
            Some(p) => p.clone(),
            None => bin_dir()?.join(&self.binary),
        };
        if !program.is_file() {
            return Err(LabError::Invalid(format!(
                "{} does not exist: build it first (`cargo build --workspace --bins`) \
                 or point NM_RS_BIN_DIR at the directory that holds it",
                program.display()
            )));
        }
        let bus_name = match &self.bus_name {
            Some(n) => Some(
                WellKnownName::try_from(n.as_str())
                    .map_err(|e| LabError::Invalid(format!("{n} is not a well-known bus name: {e}")))?,
            ),
            None => None,
        };

        let (log_path, log_file) = new_log_file(&lab.dir().join("logs"), &self.binary)?;
        let err_file =
            log_file.try_clone().map_err(|e| LabError::io(format!("duplicating {}", log_path.display()), e))?;

        // Subscribe before the start so the NameOwnerChanged cannot be missed.
        let mut watch = match &bus_name {
            Some(name) => {
                let conn = lab.bus().await?;
                let dbus = DBusProxy::new(&conn).await.map_err(|e| LabError::bus("DBus proxy", e))?;
                let changes = dbus
                    .receive_name_owner_changed_with_args(&[(0, name.as_str())])
                    .await
                    .map_err(|e| LabError::bus("subscribing to NameOwnerChanged", e))?;
                Some((conn, dbus, changes))
            }
            None => None,
        };

        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", lab.client_netns()]);
        if let Some(uid) = self.uid {
            let gid = self.gid.unwrap_or(uid);
            cmd.arg("setpriv").arg(format!("--reuid={uid}")).arg(format!("--regid={gid}")).arg("--clear-groups");
            if !self.caps.is_empty() {
                let plus: Vec<String> = self.caps.iter().map(|c| format!("+{c}")).collect();
                let set = format!("-all,{}", plus.join(","));
                cmd.arg(format!("--inh-caps={set}"))
                    .arg(format!("--ambient-caps={set}"))
                    .arg(format!("--bounding-set={set}"));
            }
            cmd.arg("--");
        }
        cmd.arg(&program);
        if self.root_arg {
            cmd.arg("--root").arg(lab.root());
        }
        cmd.args(&self.args);
        lab.set_client_env(&mut cmd);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .kill_on_drop(true);
        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| LabError::io(format!("starting {}", program.display()), e))?;
        // `ip netns exec` and `setpriv` exec the daemon in place, so this is
        // the daemon's own PID.
        let pid = child.id().unwrap_or(0);

        let mut handle = DaemonHandle {
            binary: self.binary.clone(),
            pid,
            child,
            log: log_path,
            bus_name: self.bus_name.clone(),
            ready_after: Duration::ZERO,
            status: None,
        };

        let Some((_conn, dbus, changes)) = watch.as_mut() else {
            return Ok(handle);
        };
        let Some(name) = bus_name else {
            return Ok(handle);
        };
        let what = format!("owning {name}");
        let owned = async {
            let bus_name = BusName::from(name.as_ref());
            if !dbus.name_has_owner(bus_name.clone()).await.map_err(|e| LabError::bus("NameHasOwner", e))? {
                loop {
                    let Some(signal) = changes.next().await else {
                        return Err(LabError::Invalid("the lab bus went away".into()));
                    };
                    let args = signal.args().map_err(|e| LabError::bus("NameOwnerChanged arguments", e))?;
                    if args.new_owner().is_some() {
                        break;
                    }
                }
            }
            let ready_after = started.elapsed();
            let owner = dbus
                .get_connection_unix_process_id(bus_name)
                .await
                .map_err(|e| LabError::bus("GetConnectionUnixProcessID", e))?;
            Ok((ready_after, owner))
        };
        let deadline = tokio::time::sleep(self.timeout);
        tokio::select! {
            owned = owned => {
                let (ready_after, owner) = owned?;
                if owner != pid {
                    return Err(LabError::Invalid(format!(
                        "{name} is owned by PID {owner}, not by the {} just started (PID {pid})",
                        self.binary
                    )));
                }
                handle.ready_after = ready_after;
                Ok(handle)
            }
            status = handle.child.wait() => {
                let status = status.map_err(|e| LabError::io("waiting for the daemon", e))?;
                handle.status = Some(status);
                Err(LabError::Exited {
                    program: self.binary.clone(),
                    status: status.to_string(),
                    what,
                    log: handle.log.display().to_string(),
                    log_tail: tail(&handle.log(), 30),
                })
            }
            () = deadline => Err(LabError::Timeout {
                what: format!("{} {what}", self.binary),
                timeout: self.timeout,
                log: handle.log.display().to_string(),
                log_tail: tail(&handle.log(), 30),
            }),
        }
    }
}

/// Creates `<dir>/<stem>.log`, or `<stem>.2.log`, … when a daemon of that
/// name was started before in this lab.
fn new_log_file(dir: &Path, stem: &str) -> Result<(PathBuf, File), LabError> {
    std::fs::create_dir_all(dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    for k in 1u32.. {
        let name = if k == 1 { format!("{stem}.log") } else { format!("{stem}.{k}.log") };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(LabError::io(format!("creating {}", path.display()), e)),
        }
    }
    Err(LabError::Invalid(format!("no free log file name in {}", dir.display())))
}

/// A running daemon. Dropping it kills the daemon (SIGKILL, by its PID);
/// [`stop`](Self::stop) ends it the polite way.
#[derive(Debug)]
pub struct DaemonHandle {
    binary: String,
    pid: u32,
    child: Child,
    log: PathBuf,
    bus_name: Option<String>,
    ready_after: Duration,
    status: Option<ExitStatus>,
}

impl DaemonHandle {
    /// The daemon's PID (the namespace and uid wrappers exec in place).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The binary's name, as given to the launcher.
    pub fn binary(&self) -> &str {
        &self.binary
    }

    /// The name the launcher waited for, if any.
    pub fn bus_name(&self) -> Option<&str> {
        self.bus_name.as_deref()
    }

    /// Time from the start to the bus name being owned.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// The file that collects the daemon's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        match std::fs::read(&self.log) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("<cannot read {}: {e}>", self.log.display()),
        }
    }

    /// The exit status if the daemon has ended (without blocking).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.status = Some(status);
        }
        self.status
    }

    /// Waits up to `timeout` for the daemon to exit on its own.
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, LabError> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.status = Some(status);
                Ok(status)
            }
            Ok(Err(e)) => Err(LabError::io(format!("waiting for {}", self.binary), e)),
            Err(_) => Err(LabError::Timeout {
                what: format!("{} exiting", self.binary),
                timeout,
                log: self.log.display().to_string(),
                log_tail: tail(&self.log(), 30),
            }),
        }
    }

    /// Sends SIGTERM and waits for the exit; after 10 s it kills with SIGKILL
    /// and reports a timeout.
    pub async fn stop(&mut self) -> Result<ExitStatus, LabError> {
        if let Some(status) = self.try_exit_status() {
            return Ok(status);
        }
        // The child is not reaped yet, so the PID is still this process.
        if let Ok(pid) = libc::pid_t::try_from(self.pid) {
            // SAFETY: plain kill(2) on our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        match self.wait(STOP_TIMEOUT).await {
            Ok(status) => Ok(status),
            Err(e) => {
                let _ = self.child.start_kill();
                if let Ok(status) = self.child.wait().await {
                    self.status = Some(status);
                }
                Err(e)
            }
        }
    }
}

impl Drop for DaemonHandle {
    fn drop(&mut self) {
        if self.try_exit_status().is_none() {
            // SIGKILL to this PID; tokio reaps the child in the background.
            let _ = self.child.start_kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_dir_from_test_and_xtask_executables() {
        assert_eq!(
            default_bin_dir(Path::new("/w/target/debug/deps/lab-0123abcd")).unwrap(),
            Path::new("/w/target/debug")
        );
        assert_eq!(default_bin_dir(Path::new("/w/target/release/xtask")).unwrap(), Path::new("/w/target/release"));
    }

    #[test]
    fn known_names() {
        assert_eq!(well_known_name("nm-system-settings"), Some("org.freedesktop.NetworkManagerSystemSettings"));
        assert_eq!(well_known_name("nm-core"), Some("org.freedesktop.NetworkManager"));
        assert_eq!(well_known_name("busctl"), None);
        for (_, name) in KNOWN_DAEMONS {
            assert!(WellKnownName::try_from(*name).is_ok(), "{name}");
        }
    }

    #[test]
    fn log_files_do_not_overwrite_each_other() {
        let dir = std::env::temp_dir().join(format!("nm-lab-logtest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, _) = new_log_file(&dir, "d").unwrap();
        let (b, _) = new_log_file(&dir, "d").unwrap();
        assert_eq!(a, dir.join("d.log"));
        assert_eq!(b, dir.join("d.2.log"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
