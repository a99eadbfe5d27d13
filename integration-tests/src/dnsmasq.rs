//! dnsmasq on the far side of the uplinks: DHCPv4, router advertisements,
//! DHCPv6 and a DNS server that knows only `lab.test`.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::lab::Uplink;
use crate::process::{Guarded, show};
use crate::{LabError, tail};

/// How long dnsmasq may take to say it started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What dnsmasq logs once its sockets are bound (DHCP sockets are created
/// before this line, while it still runs as root).
const READY_MARKER: &str = "started, version";

/// The startup lines that say dnsmasq is up and serves every uplink.
fn ready_markers(uplinks: &[Uplink]) -> Vec<String> {
    let mut markers = vec![READY_MARKER.to_owned()];
    for up in uplinks {
        let (lo, hi) = up.dhcp_range;
        markers.push(format!("DHCP, IP range {lo} -- {hi}"));
    }
    markers
}

#[derive(Debug)]
pub(crate) struct Dnsmasq {
    pub(crate) log: PathBuf,
    pub(crate) leases: PathBuf,
    process: Guarded,
}

/// What a test may change about dnsmasq.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) ipv6: bool,
    /// Router advertisements also let hosts make their own IPv6 addresses
    /// (SLAAC: the prefix's A flag), besides stateful DHCPv6.
    pub(crate) slaac: bool,
    /// The DHCP lease time in dnsmasq's syntax (`1h`, `2m`, `150`); dnsmasq
    /// refuses less than two minutes.
    pub(crate) lease: String,
    /// More arguments, after the lab's (e.g. `--dhcp-option=option:T1,5`).
    pub(crate) extra: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { ipv6: true, slaac: false, lease: "1h".into(), extra: Vec::new() }
    }
}

/// dnsmasq's arguments for these uplinks; files go into `dir`.
pub(crate) fn args(uplinks: &[Uplink], opts: &Options, dir: &Path) -> Vec<String> {
    let ipv6 = opts.ipv6;
    let mut args: Vec<String> = [
        "--keep-in-foreground",
        "--log-facility=-",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        // It writes the lease file after start; as `nobody` it could not.
        "--user=root",
        "--group=root",
        "--bind-dynamic",
        "--dhcp-authoritative",
        // Without it every offer waits about 3 s for a ping to time out.
        "--no-ping",
        "--log-dhcp",
        "--domain=lab.test",
        "--local=/lab.test/",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--dhcp-leasefile={}", dir.join("leases").display()));
    args.push(format!("--pid-file={}", dir.join("dnsmasq.pid").display()));
    for up in uplinks {
        args.push(format!("--interface={}", up.server_if));
        let (lo, hi) = up.dhcp_range;
        args.push(format!("--dhcp-range={lo},{hi},255.255.255.0,{}", opts.lease));
        if ipv6 {
            let (lo, hi) = up.dhcp6_range;
            let mode = if opts.slaac { "slaac," } else { "" };
            args.push(format!("--dhcp-range={lo},{hi},{mode}64,1h"));
        }
    }
    if ipv6 && !uplinks.is_empty() {
        args.push("--enable-ra".into());
    }
    args.extend(opts.extra.iter().cloned());
    args
}

impl Dnsmasq {
    /// Starts dnsmasq in `netns` and returns once it logged that it started.
    pub(crate) fn start(netns: &str, uplinks: &[Uplink], opts: &Options, dir: &Path) -> Result<Dnsmasq, LabError> {
        std::fs::create_dir_all(dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        let log = dir.join("dnsmasq.log");
        // Appended to: a dnsmasq started again keeps the first one's log.
        let mut log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| LabError::io(format!("creating {}", log.display()), e))?;

        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, "dnsmasq"])
            .args(args(uplinks, opts, dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let shown = show(&cmd);
        let mut child =
            cmd.spawn().map_err(|e| LabError::io(format!("starting `{shown}` (is dnsmasq-base installed?)"), e))?;
        let stderr = child.stderr.take();
        let process = Guarded::new(child);

        // A thread copies dnsmasq's log into the log file for the lab's whole
        // life and tells us when the startup lines went by (so they are in
        // the file when we return); it ends at EOF, when dnsmasq exits.
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let mut waiting_for = ready_markers(uplinks);
        if let Some(stderr) = stderr {
            std::thread::spawn(move || {
                let mut ready_tx = Some(ready_tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(log_file, "{line}");
                    waiting_for.retain(|m| !line.contains(m.as_str()));
                    if waiting_for.is_empty()
                        && let Some(tx) = ready_tx.take()
                    {
                        let _ = tx.send(());
                    }
                }
            });
        }

        let leases = dir.join("leases");
        let dnsmasq = Dnsmasq { log, leases, process };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(dnsmasq),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(LabError::Exited {
                program: "dnsmasq".into(),
                status: "log closed".into(),
                what: "starting".into(),
                log: dnsmasq.log.display().to_string(),
                log_tail: dnsmasq.log_tail(),
            }),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(LabError::Timeout {
                what: "dnsmasq start".into(),
                timeout: START_TIMEOUT,
                log: dnsmasq.log.display().to_string(),
                log_tail: dnsmasq.log_tail(),
            }),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    fn log_tail(&self) -> String {
        // The copy thread may still be writing; opening for read is fine.
        let text = OpenOptions::new().read(true).open(&self.log).and_then(std::io::read_to_string).unwrap_or_default();
        tail(&text, 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Names;

    #[test]
    fn one_range_per_uplink_and_no_ping() {
        let names = Names::new(1, 2);
        let ups = vec![Uplink::new(&names, 0).unwrap(), Uplink::new(&names, 1).unwrap()];
        let a = args(&ups, &Options::default(), Path::new("/tmp/x/dnsmasq"));
        assert!(a.contains(&"--no-ping".to_string()));
        assert!(a.contains(&"--interface=nmt1x2s0".to_string()));
        assert!(a.contains(&"--interface=nmt1x2s1".to_string()));
        assert!(a.contains(&"--dhcp-range=198.18.0.100,198.18.0.199,255.255.255.0,1h".to_string()));
        assert!(a.contains(&"--dhcp-range=198.18.1.100,198.18.1.199,255.255.255.0,1h".to_string()));
        assert!(a.contains(&"--dhcp-leasefile=/tmp/x/dnsmasq/leases".to_string()));
        assert!(a.contains(&"--enable-ra".to_string()));
        assert!(a.iter().any(|s| s.starts_with("--dhcp-range=fd4c:6162:0:1::100,")));

        assert_eq!(
            ready_markers(&ups),
            [
                "started, version",
                "DHCP, IP range 198.18.0.100 -- 198.18.0.199",
                "DHCP, IP range 198.18.1.100 -- 198.18.1.199"
            ]
        );

        let slaac = args(&ups, &Options { slaac: true, ..Options::default() }, Path::new("/tmp/x"));
        assert!(slaac.contains(&"--dhcp-range=fd4c:6162:0:1::100,fd4c:6162:0:1::1ff,slaac,64,1h".to_string()));

        let opts =
            Options { ipv6: false, slaac: false, lease: "2m".into(), extra: vec!["--dhcp-option=option:T1,5".into()] };
        let v4 = args(&ups, &opts, Path::new("/tmp/x"));
        assert!(!v4.contains(&"--enable-ra".to_string()));
        assert!(!v4.iter().any(|s| s.contains("fd4c")));
        assert!(v4.contains(&"--dhcp-range=198.18.0.100,198.18.0.199,255.255.255.0,2m".to_string()));
        assert_eq!(v4.last().map(String::as_str), Some("--dhcp-option=option:T1,5"));
    }
}
