//! `nmctl monitor`: one line per change (one JSON object per line with
//! `--json`) until interrupted.

use std::collections::HashMap;

use anyhow::Result;
use serde_json::json;

use crate::client::{Client, Event, Watch};
use crate::names;
use crate::objects::*;
use crate::run::{Ctx, emit};

/// One change, as a line for people and an object for scripts.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    pub json: serde_json::Value,
}

fn line(text: String, json: serde_json::Value) -> Option<Line> {
    Some(Line { text, json })
}

/// Profiles' names by path, to name them when they go.
pub type Names = HashMap<String, String>;

/// The line for an event already applied to `store`. Pure.
pub fn describe(event: &Event, store: &ObjectStore, profiles: &Names) -> Option<Line> {
    match event {
        Event::DeviceStateChanged { path, new, reason, .. } => {
            let dev = store.str(path, DEVICE, "Interface");
            let state = names::device_state(*new);
            let why = match (*new, *reason) {
                (_, 0) => String::new(),
                (20 | 30 | 110 | 120, r) => format!(" ({})", names::device_reason(r)),
                _ => String::new(),
            };
            line(
                format!("{dev}: {state}{why}"),
                json!({"event": "device", "device": dev, "state": state, "state_code": new,
                       "reason": names::device_reason_name(*reason)}),
            )
        }
        Event::ActiveStateChanged { path, state, reason } => {
            let id = store.str(path, ACTIVE, "Id");
            let words = names::active_state(*state);
            let why = if *state == names::AC_DEACTIVATED && *reason > 1 {
                format!(" ({})", names::active_reason(*reason))
            } else {
                String::new()
            };
            line(
                format!("connection '{id}': {words}{why}"),
                json!({"event": "connection-state", "connection": id, "state": words, "state_code": state,
                       "reason": names::active_reason_name(*reason)}),
            )
        }
        Event::Properties { path, iface, changed } if path == MANAGER_PATH && iface == MANAGER => {
            if changed.iter().any(|c| c == "State") {
                let n = store.u32(path, MANAGER, "State");
                let state = names::nm_state(n);
                return line(
                    format!("NetworkManager: {state}"),
                    json!({"event": "state", "state": state, "state_code": n}),
                );
            }
            if changed.iter().any(|c| c == "PrimaryConnection") {
                return match store.path(path, MANAGER, "PrimaryConnection") {
                    Some(ac) => {
                        let id = store.str(&ac, ACTIVE, "Id");
                        line(
                            format!("'{id}' is now the primary connection"),
                            json!({"event": "primary-connection", "connection": id}),
                        )
                    }
                    None => line(
                        "there is no primary connection".into(),
                        json!({"event": "primary-connection", "connection": null}),
                    ),
                };
            }
            None
        }
        Event::Added { path, interfaces } if interfaces.iter().any(|i| i == DEVICE) => {
            let dev = store.str(path, DEVICE, "Interface");
            line(format!("{dev}: device added"), json!({"event": "device-added", "device": dev}))
        }
        Event::Added { path, interfaces } if interfaces.iter().any(|i| i == SETTINGS_CONNECTION) => {
            let id = profiles.get(path).cloned().unwrap_or_default();
            line(format!("connection '{id}' added"), json!({"event": "connection-added", "connection": id}))
        }
        Event::Removed { path, old } if old.contains_key(DEVICE) => {
            let dev = old[DEVICE].get("Interface").and_then(nm_model::Value::as_str).unwrap_or_default().to_string();
            line(format!("{dev}: device removed"), json!({"event": "device-removed", "device": dev}))
        }
        Event::Removed { path, old } if old.contains_key(SETTINGS_CONNECTION) => {
            let id = profiles.get(path).cloned().unwrap_or_default();
            line(format!("connection '{id}' removed"), json!({"event": "connection-removed", "connection": id}))
        }
        Event::ProfileUpdated { path } => {
            let id = profiles.get(path).cloned().unwrap_or_default();
            line(format!("connection '{id}' changed"), json!({"event": "connection-changed", "connection": id}))
        }
        Event::Appeared => line("NetworkManager is running".into(), json!({"event": "running"})),
        Event::Vanished => line("NetworkManager stopped".into(), json!({"event": "stopped"})),
        _ => None,
    }
}

async fn load_names(client: &Client, watch: &Watch) -> Names {
    client.profiles(&watch.store).await.unwrap_or_default().into_iter().map(|p| (p.path.clone(), p.id())).collect()
}

pub async fn run(ctx: &Ctx, client: &Client) -> Result<()> {
    let mut watch = client.watch().await?;
    let mut profiles = load_names(client, &watch).await;
    eprintln!("Monitoring NetworkManager; Ctrl-C stops.");
    loop {
        let event = tokio::select! {
            ev = watch.next(client) => ev?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        // Names of new or renamed profiles are asked for before the line.
        match &event {
            Event::Added { path, interfaces } if interfaces.iter().any(|i| i == SETTINGS_CONNECTION) => {
                if let Ok(s) = client.get_settings(path).await {
                    let p = crate::view::Profile { path: path.clone(), settings: s, filename: String::new() };
                    profiles.insert(path.clone(), p.id());
                }
            }
            Event::ProfileUpdated { path } => {
                if let Ok(s) = client.get_settings(path).await {
                    let p = crate::view::Profile { path: path.clone(), settings: s, filename: String::new() };
                    profiles.insert(path.clone(), p.id());
                }
            }
            Event::Appeared => profiles = load_names(client, &watch).await,
            _ => {}
        }
        if let Some(l) = describe(&event, &watch.store, &profiles) {
            emit(&if ctx.json { format!("{}\n", l.json) } else { format!("{}\n", l.text) });
        }
    }
}
