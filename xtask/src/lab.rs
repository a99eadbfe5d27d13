//! `cargo xtask lab`: a lab with two uplinks and the daemons that exist so
//! far, and a shell inside it. Leaving the shell tears everything down.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{Context, Result};
use nm_lab::{DaemonHandle, Lab};
use tokio::signal::unix::{SignalKind, signal};

use crate::util::{cargo, check, exit_code, header, require_root};

/// The daemons the lab starts, in this order, when their binary exists.
/// Add each daemon here as it lands (with its bus name in nm_lab's table).
/// Started in this order: the helper and the settings before nm-core.
const LAB_DAEMONS: &[&str] = &["nm-dhcp-helper", "nm-system-settings", "nm-core"];

pub async fn run(command: Option<String>, build: bool) -> Result<ExitCode> {
    require_root("cargo xtask lab")?;

    if build {
        header("cargo build --workspace --bins");
        let mut cmd = cargo();
        cmd.args(["build", "--workspace", "--bins"]);
        check(cmd)?;
    }

    header("bringing the lab up");
    let lab = Lab::builder().uplinks(2).build().context("bringing the lab up")?;
    let bin_dir = lab.bin_dir()?;
    // nm-core manages the lab's uplinks; each gets a DHCP profile, served
    // by dnsmasq on the far side through the unprivileged nm-dhcp-helper.
    // As Debian's NetworkManager: a managed ethernet device without a
    // profile gets "Wired connection N".
    lab.write_core_config("no-auto-default = []")?;
    for u in lab.uplinks() {
        let text = format!(
            "[connection]\nid=lab-uplink{i}\nuuid={uuid}\ntype=ethernet\ninterface-name={ifname}\n\n[ethernet]\n\n\
             [ipv4]\nmethod=auto\n\n[ipv6]\naddr-gen-mode=default\nmethod=auto\n\n[proxy]\n",
            i = u.index,
            uuid = lab_uuid(u.index),
            ifname = u.client_if,
        );
        lab.write_profile(&format!("lab-uplink{}.nmconnection", u.index), &text)?;
    }
    // The helper runs as nobody with only its two capabilities, as its
    // systemd unit runs it as its own user; it keeps leases in the state dir.
    let state = lab.root_path("/var/lib/NetworkManager");
    std::fs::create_dir_all(&state).context("creating the state dir")?;
    std::os::unix::fs::chown(&state, Some(nm_lab::NOBODY), Some(nm_lab::NOBODY)).context("chown of the state dir")?;
    // nm-dispatcher is started by the bus when nm-core first calls it, as
    // its package installs it: scripts in ROOT/etc/NetworkManager/
    // dispatcher.d run on the lab's events.
    if bin_dir.join("nm-dispatcher").is_file() {
        lab.install_bus_service("nm-dispatcher", &[]).context("making nm-dispatcher bus-activatable")?;
    } else {
        eprintln!("nm-dispatcher: not built, dispatcher scripts will not run");
    }
    let mut daemons: Vec<DaemonHandle> = Vec::new();
    for binary in LAB_DAEMONS {
        if !bin_dir.join(binary).is_file() {
            eprintln!("{binary}: not built, skipped");
            continue;
        }
        let spawned = if *binary == "nm-dhcp-helper" {
            lab.daemon(binary).uid(nm_lab::NOBODY).caps(["net_raw", "net_bind_service"]).spawn().await
        } else {
            lab.spawn_daemon(binary, &[]).await
        };
        match spawned {
            Ok(d) => {
                eprintln!(
                    "{binary}: PID {}, owns {} after {} ms, log {}",
                    d.pid(),
                    d.bus_name().unwrap_or("-"),
                    d.ready_after().as_millis(),
                    d.log_path().display()
                );
                daemons.push(d);
            }
            // A daemon that does not start is what one wants to look into
            // from inside the lab, so the lab stays up.
            Err(e) => eprintln!("{binary}: did not start: {e}"),
        }
    }
    print_banner(&lab);

    let mut cmd = match &command {
        Some(c) => {
            let mut cmd = lab.std_command("sh");
            cmd.args(["-c", c]);
            cmd
        }
        None => {
            let shell = std::env::var_os("SHELL").unwrap_or_else(|| "bash".into());
            lab.std_command(shell)
        }
    };
    let mut path = OsString::from(bin_dir.as_os_str());
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    cmd.env("PATH", path).env("NM_LAB_DIR", lab.dir());

    // Our handlers stay ours: exec resets caught signals to their default in
    // the child, so the shell gets Ctrl-C as usual while we ignore it.
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut quit = signal(SignalKind::quit()).context("SIGQUIT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut child = tokio::process::Command::from(cmd).kill_on_drop(true).spawn().context("starting the lab shell")?;
    let status = loop {
        tokio::select! {
            st = child.wait() => break st.context("waiting for the lab shell")?,
            _ = interrupt.recv() => {}
            _ = quit.recv() => {}
            _ = terminate.recv() => { let _ = child.start_kill(); }
            _ = hangup.recv() => { let _ = child.start_kill(); }
        }
    };

    header("tearing the lab down");
    for mut d in daemons.into_iter().rev() {
        match d.stop().await {
            Ok(st) if st.success() => {}
            Ok(st) => eprintln!("{}: exited with {st}", d.binary()),
            Err(e) => eprintln!("{}: {e}", d.binary()),
        }
    }
    drop(lab);
    Ok(ExitCode::from(exit_code(status)))
}

fn print_banner(lab: &Lab) {
    eprintln!();
    eprintln!("lab {} is up", lab.names().base());
    eprintln!("  client namespace  {}  (this shell)", lab.client_netns());
    if let Some(srv) = lab.server_netns() {
        eprintln!("  server namespace  {srv}  (dnsmasq)");
    }
    for up in lab.uplinks() {
        eprintln!(
            "  uplink {}: {} <-> {}  server {}/{} {}/64, DHCP {}-{}",
            up.index,
            up.client_if,
            up.server_if,
            up.server_v4,
            up.prefix_v4,
            up.server_v6,
            up.dhcp_range.0,
            up.dhcp_range.1
        );
    }
    eprintln!("  DBUS_SYSTEM_BUS_ADDRESS={}", lab.bus_address());
    eprintln!("  NM_RS_ROOT={}", lab.root().display());
    eprintln!("  logs: {}/logs, dnsmasq: {}/dnsmasq", lab.dir().display(), lab.dir().display());
    eprintln!(
        "  dispatcher scripts: {} (nm-dispatcher, bus-activated)",
        lab.root_path("/etc/NetworkManager/dispatcher.d").display()
    );
    eprintln!("  try: busctl --system list; nmcli general; exit to tear down");
    eprintln!();
}

/// A fixed uuid per lab uplink profile ("lab-upli" "nk" + index).
fn lab_uuid(index: usize) -> String {
    format!("6c61622d-7570-4c69-8e6b-{index:012x}")
}
