//! A stand-in daemon for the lab kit's own tests. It follows the daemon
//! contract the launcher relies on — `--root DIR`, the bus from
//! `DBUS_SYSTEM_BUS_ADDRESS`, logs on stderr, a clean exit on SIGTERM — and
//! owns the name given with `--name` (default: the system settings name, which
//! the project's bus policy lets only root own).
//!
//! Usage: nm-lab-fake-daemon [--root DIR] [--name BUS_NAME]

use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

const DEFAULT_NAME: &str = "org.freedesktop.NetworkManagerSystemSettings";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut root = String::from("/");
    let mut name = String::from(DEFAULT_NAME);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--root", Some(v)) => root = v,
            ("--name", Some(v)) => name = v,
            (other, _) => {
                eprintln!("fake-daemon: bad argument {other}");
                return ExitCode::from(2);
            }
        }
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    eprintln!("fake-daemon: starting uid={uid} root={root} name={name}");

    let Ok(mut term) = signal(SignalKind::terminate()) else {
        eprintln!("fake-daemon: cannot install a SIGTERM handler");
        return ExitCode::FAILURE;
    };
    let Ok(address) = std::env::var("DBUS_SYSTEM_BUS_ADDRESS") else {
        eprintln!("fake-daemon: DBUS_SYSTEM_BUS_ADDRESS is not set");
        return ExitCode::FAILURE;
    };
    let conn = match connect(&address).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fake-daemon: cannot connect to the bus: {e}");
            return ExitCode::FAILURE;
        }
    };
    // With an object server, calls to unknown objects get an error reply at
    // once (instead of no reply), like they would from a real daemon.
    let _ = conn.object_server();
    // Logged before the name is taken: whoever waits for the name then
    // finds the line already in the log.
    eprintln!("fake-daemon: ready as {name}");
    if let Err(e) = conn.request_name(name.to_owned()).await {
        eprintln!("fake-daemon: cannot own {name}: {e}");
        return ExitCode::FAILURE;
    }
    term.recv().await;
    eprintln!("fake-daemon: SIGTERM, stopping");
    drop(conn);
    ExitCode::SUCCESS
}

async fn connect(address: &str) -> zbus::Result<zbus::Connection> {
    zbus::connection::Builder::address(address).build().await
}
