//! Small process helpers shared by the lab's parts.

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::LabError;

/// Runs `program args…` to completion and returns its stdout; a non-zero exit
/// is an error that quotes stderr.
pub(crate) fn run<I, S>(program: &str, args: I) -> Result<String, LabError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    let shown = show(&cmd);
    let out = cmd.output().map_err(|e| LabError::io(format!("running `{shown}`"), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `ip ARGS…` (iproute2).
pub(crate) fn ip<I, S>(args: I) -> Result<String, LabError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run("ip", args)
}

/// A command line as a human reads it (for error messages).
pub(crate) fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// A helper process the lab started (dbus-daemon, dnsmasq). Dropping it kills
/// it by its PID with SIGKILL and reaps it: neither holds state worth a
/// graceful stop, and a reaped child cannot leave a PID behind for reuse.
#[derive(Debug)]
pub(crate) struct Guarded {
    child: Child,
}

impl Guarded {
    pub(crate) fn new(child: Child) -> Self {
        Guarded { child }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it is our child, so its PID
    /// cannot have been reused while we have not reaped it).
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if self.is_running() {
            // Child::kill sends SIGKILL to exactly this PID.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// True when a process with this PID runs: it exists and is not a zombie
/// waiting to be reaped by someone else (an orphan's zombie holds nothing).
pub fn pid_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| process_state(&stat))
        .is_some_and(|state| !matches!(state, 'Z' | 'X' | 'x'))
}

/// The state letter of a `/proc/PID/stat` line (the field after the
/// parenthesised command name, which may itself contain spaces and parens).
fn process_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The effective uid of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

/// SIGKILLs every process inside the network namespace bound at `netns_path`
/// (`/run/netns/NAME`) and returns their PIDs.
///
/// The lab's namespaces are its own, so whatever runs in them was started by
/// the lab or from it: a daemon's forked child, a command left running in the
/// lab shell. Without this sweep such a process would keep the namespace and
/// its veths alive after `ip netns delete`.
pub(crate) fn kill_netns_processes(netns_path: &Path) -> Vec<u32> {
    let Ok(ns) = std::fs::metadata(netns_path) else {
        return Vec::new();
    };
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut killed = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        // A process that ended meanwhile simply has no ns link any more.
        let Ok(meta) = std::fs::metadata(entry.path().join("ns/net")) else {
            continue;
        };
        if meta.dev() == ns.dev()
            && meta.ino() == ns.ino()
            && let Ok(p) = libc::pid_t::try_from(pid)
        {
            // SAFETY: kill(2) on a PID just found inside our own namespace.
            unsafe { libc::kill(p, libc::SIGKILL) };
            killed.push(pid);
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_from_stat() {
        assert_eq!(process_state("42 (sleep) S 1 42 42 0"), Some('S'));
        assert_eq!(process_state("42 (a) b) (c) Z 1 42"), Some('Z'));
        assert_eq!(process_state("garbage"), None);
    }

    #[test]
    fn this_process_runs() {
        assert!(pid_running(std::process::id()));
        assert!(!pid_running(u32::MAX));
    }
}
