//! Wired 802.1X in the lab: hostapd (`driver=wired`, its internal EAP
//! server) on the server end of an uplink, and wpa_supplicant serving its
//! D-Bus API on the lab bus in the client namespace (for nm-core to drive).

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::process::{Guarded, show};
use crate::{DaemonSpec, Lab, LabError, tail};

pub const HOSTAPD: &str = "/usr/sbin/hostapd";
pub const WPA_SUPPLICANT: &str = "/usr/sbin/wpa_supplicant";
pub const SUPPLICANT_NAME: &str = "fi.w1.wpa_supplicant1";
/// wpa_supplicant's bus policy, as the wpasupplicant package installs it.
const SUPPLICANT_POLICIES: &[&str] =
    &["/usr/share/dbus-1/system.d/wpa_supplicant.conf", "/etc/dbus-1/system.d/wpa_supplicant.conf"];
/// What hostapd prints once it serves the port.
const READY_MARKER: &str = "AP-ENABLED";
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A directory holding a copy of wpa_supplicant's bus policy (only root may
/// own `fi.w1.wpa_supplicant1` and talk to it), for the lab bus.
pub(crate) fn bus_policy_dir(lab_dir: &Path) -> Result<PathBuf, LabError> {
    let src = SUPPLICANT_POLICIES.iter().map(Path::new).find(|p| p.is_file()).ok_or_else(|| {
        LabError::Invalid(format!("none of {SUPPLICANT_POLICIES:?} exists: install the wpasupplicant package"))
    })?;
    let dir = lab_dir.join("wpa-supplicant-bus-policy");
    fs::create_dir_all(&dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    fs::copy(src, dir.join("wpa_supplicant.conf"))
        .map_err(|e| LabError::io(format!("copying {}", src.display()), e))?;
    Ok(dir)
}

/// hostapd's configuration for a wired authenticator on `ifname`.
pub fn hostapd_config(ifname: &str, users_file: &Path) -> String {
    format!(
        "interface={ifname}\ndriver=wired\nieee8021x=1\neap_server=1\neap_user_file={}\n\
         eapol_version=2\nuse_pae_group_addr=1\nlogger_stdout=-1\nlogger_stdout_level=1\n",
        users_file.display()
    )
}

/// hostapd's EAP user file: one `"identity" MD5 "password"` line per user.
pub fn eap_users(users: &[(&str, &str)]) -> Result<String, LabError> {
    let mut text = String::new();
    for (identity, password) in users {
        if [identity, password].iter().any(|s| s.contains(['"', '\n'])) {
            return Err(LabError::Invalid("EAP identities and passwords must not contain quotes or newlines".into()));
        }
        text.push_str(&format!("\"{identity}\" MD5 \"{password}\"\n"));
    }
    Ok(text)
}

/// A running hostapd; dropping it kills it (by PID).
#[derive(Debug)]
pub struct Hostapd {
    log: PathBuf,
    process: Guarded,
}

impl Hostapd {
    /// Starts hostapd on the server end of uplink `index`, with EAP-MD5
    /// `users`, and returns once it serves the port. Its files (the users'
    /// passwords) are private to root, in the lab's directory, outside the
    /// lab root.
    pub fn start(lab: &Lab, index: usize, users: &[(&str, &str)]) -> Result<Hostapd, LabError> {
        let netns = lab.server_netns().ok_or_else(|| LabError::Invalid("hostapd needs an uplink".into()))?;
        let uplink = lab.uplinks().get(index).ok_or_else(|| LabError::Invalid(format!("no uplink {index}")))?;
        let dir = lab.dir().join(format!("hostapd-{index}"));
        fs::create_dir_all(&dir)
            .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)))
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        let users_file = dir.join("eap_users");
        write_private(&users_file, &eap_users(users)?)?;
        let conf = dir.join("hostapd.conf");
        write_private(&conf, &hostapd_config(&uplink.server_if, &users_file))?;
        let log = dir.join("hostapd.log");
        let mut log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log)
            .map_err(|e| LabError::io(format!("creating {}", log.display()), e))?;

        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, HOSTAPD])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let shown = show(&cmd);
        let mut child =
            cmd.spawn().map_err(|e| LabError::io(format!("starting `{shown}` (is hostapd installed?)"), e))?;
        let stdout = child.stdout.take();
        let process = Guarded::new(child);
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        if let Some(out) = stdout {
            std::thread::spawn(move || {
                let mut ready_tx = Some(ready_tx);
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(log_file, "{line}");
                    if line.contains(READY_MARKER)
                        && let Some(tx) = ready_tx.take()
                    {
                        let _ = tx.send(());
                    }
                }
            });
        }
        let hostapd = Hostapd { log, process };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(hostapd),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(LabError::Exited {
                program: "hostapd".into(),
                status: "log closed".into(),
                what: "starting".into(),
                log: hostapd.log.display().to_string(),
                log_tail: tail(&hostapd.log(), 20),
            }),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(LabError::Timeout {
                what: "hostapd start".into(),
                timeout: START_TIMEOUT,
                log: hostapd.log.display().to_string(),
                log_tail: tail(&hostapd.log(), 20),
            }),
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything hostapd printed so far (authentications show as
    /// `CTRL-EVENT-EAP-SUCCESS` / `CTRL-EVENT-EAP-FAILURE`).
    pub fn log(&self) -> String {
        fs::read(&self.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), LabError> {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| LabError::io(format!("creating {}", path.display()), e))?;
    f.write_all(text.as_bytes()).map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

impl Lab {
    /// hostapd as a wired 802.1X authenticator on the server end of uplink
    /// `index`; see [`Hostapd::start`].
    pub fn hostapd(&self, index: usize, users: &[(&str, &str)]) -> Result<Hostapd, LabError> {
        Hostapd::start(self, index, users)
    }

    /// wpa_supplicant serving D-Bus (`-u`) on the lab bus in the client
    /// namespace, no interface of its own; the lab must be built with
    /// [`crate::LabBuilder::supplicant`]. Spawn it and keep the handle (it
    /// is killed by PID on drop).
    pub fn wpa_supplicant(&self) -> DaemonSpec<'_> {
        self.daemon("wpa_supplicant")
            .program(WPA_SUPPLICANT)
            .arg("-u")
            .arg("-t")
            .bus_name(SUPPLICANT_NAME)
            .no_root_arg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wired_authenticator_configuration() {
        let conf = hostapd_config("nmt1x2s0", Path::new("/tmp/x/eap_users"));
        for line in
            ["interface=nmt1x2s0", "driver=wired", "ieee8021x=1", "eap_server=1", "eap_user_file=/tmp/x/eap_users"]
        {
            assert!(conf.lines().any(|l| l == line), "{line} in\n{conf}");
        }
        assert_eq!(eap_users(&[("alice", "correct-horse")]).unwrap(), "\"alice\" MD5 \"correct-horse\"\n");
        assert!(eap_users(&[("a\"b", "x")]).is_err());
    }
}
