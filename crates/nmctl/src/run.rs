//! Dispatch: each command reads what it needs, acts, and prints text or JSON.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::cli::{Cli, Command, ConnectionAction, DeviceAction};
use crate::client::Client;
use crate::exit::{self, fail};
use crate::table::Style;
use crate::wait::{self, OnlineQuery};
use crate::{connection_cmd, device_cmd, monitor, render, view};

/// What every command needs to know about the invocation.
pub struct Ctx {
    pub json: bool,
    pub style: Style,
    wait: Option<u64>,
}

impl Ctx {
    /// `--wait`, or the command's default.
    pub fn wait(&self, default_secs: u64) -> Option<Duration> {
        match self.wait.unwrap_or(default_secs) {
            0 => None,
            n => Some(Duration::from_secs(n)),
        }
    }

    /// Prints the text form, or the JSON form with `--json`.
    pub fn show<T: Serialize>(&self, value: &T, text: impl FnOnce(&T, Style) -> String) {
        emit(&if self.json { render::json(value) } else { text(value, self.style) });
    }

    /// A one-line confirmation for people; `value` for `--json`.
    pub fn done<T: Serialize>(&self, value: &T, line: &str) {
        emit(&if self.json { render::json(value) } else { format!("{line}\n") });
    }
}

/// Writes to stdout; a closed pipe (`nmctl | head`) is not an error.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

pub async fn run(cli: Cli) -> Result<()> {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let ctx = Ctx { json: cli.json, style: Style { colour }, wait: cli.wait };
    if let Some(Command::WaitOnline(w)) = &cli.command {
        let q =
            OnlineQuery { interfaces: w.interfaces.clone(), ipv4: w.ipv4, ipv6: w.ipv6, startup_only: w.startup_only };
        wait::wait_online(&q, Duration::from_secs(w.timeout)).await?;
        ctx.done(&serde_json::json!({"online": true}), "online");
        return Ok(());
    }
    let client = Client::connect().await?;
    // `connection up` and `down` read NetworkManager's objects first, and
    // that answer says whether it runs: one round trip less on the path
    // whose time users wait for.
    let reads_objects_first = matches!(
        &cli.command,
        Some(Command::Connection { action: Some(ConnectionAction::Up { .. } | ConnectionAction::Down { .. }) })
    );
    if !reads_objects_first {
        client.require_running().await?;
    }
    match cli.command {
        None => {
            let store = client.objects().await?;
            ctx.show(&view::overview(&store), render::overview);
        }
        Some(Command::General) => {
            let store = client.objects().await?;
            ctx.show(&view::general(&store), render::general);
        }
        Some(Command::Device { action }) => match action.unwrap_or(DeviceAction::Status) {
            DeviceAction::Status => {
                let store = client.objects().await?;
                ctx.show(&view::device_list(&store), |l, s| render::devices(l, s));
            }
            DeviceAction::Show { device } => device_cmd::show(&ctx, &client, device.as_deref()).await?,
            DeviceAction::Connect { device } => device_cmd::connect(&ctx, &client, &device).await?,
            DeviceAction::Disconnect { device } => device_cmd::disconnect(&ctx, &client, &device).await?,
        },
        Some(Command::Connection { action }) => {
            let action = action.unwrap_or(ConnectionAction::Show { active: false, connection: None });
            connection_cmd::run(&ctx, &client, action).await?;
        }
        Some(Command::Monitor) => monitor::run(&ctx, &client).await?,
        Some(Command::WaitOnline(_)) => return Err(fail(exit::FAILURE, "unreachable")),
    }
    Ok(())
}
