//! `nmctl connection …`: profiles through `org.freedesktop.NetworkManager.Settings`.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use nm_model::dbus_dict::{from_dbus, to_dbus};
use nm_model::{Connection, Value, validate};
use serde::Serialize;

use crate::cli::{ConnectionAction, Format};
use crate::client::Client;
use crate::device_cmd::find_device;
use crate::edit;
use crate::exit::{self, fail};
use crate::names;
use crate::objects::*;
use crate::props;
use crate::run::{Ctx, emit};
use crate::view::{self, Profile};
use crate::{render, wait};

const UP_WAIT: u64 = 90;
const DOWN_WAIT: u64 = 10;

/// A profile by UUID, D-Bus path or name (a name must be unique).
pub fn find<'a>(profiles: &'a [Profile], key: &str) -> Result<&'a Profile> {
    if let Some(p) = profiles.iter().find(|p| p.uuid() == key || p.path == key) {
        return Ok(p);
    }
    let named: Vec<&Profile> = profiles.iter().filter(|p| p.id() == key).collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => Err(fail(exit::NOT_FOUND, format!("no connection '{key}'"))),
        many => Err(fail(exit::USAGE, format!("{} connections are named '{key}'; use a UUID", many.len()))),
    }
}

fn connection_of(p: &Profile) -> Result<Connection> {
    from_dbus(&p.settings).map_err(|e| fail(exit::FAILURE, format!("connection '{}': {e}", p.id())))
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
    uuid: &'a str,
    path: &'a str,
}

pub async fn run(ctx: &Ctx, client: &Client, action: ConnectionAction) -> Result<()> {
    match action {
        ConnectionAction::Show { active, connection } => {
            let store = client.objects().await?;
            let profiles = client.profiles(&store).await?;
            match connection {
                None => ctx.show(&view::connection_list(&store, &profiles, active), |l, s| render::connections(l, s)),
                Some(key) => {
                    ctx.show(&view::connection_detail(&store, find(&profiles, &key)?), render::connection_detail)
                }
            }
        }
        ConnectionAction::Add { temporary, properties } => add(ctx, client, &properties, temporary).await?,
        ConnectionAction::Modify { temporary, connection, properties } => {
            let store = client.objects().await?;
            let profiles = client.profiles(&store).await?;
            let p = find(&profiles, &connection)?;
            let mut conn = connection_of(p)?;
            props::apply(&mut conn, &pairs(&properties)?).map_err(|e| fail(exit::USAGE, e))?;
            let conn = checked(conn)?;
            client.update(&p.path, &to_dbus(&conn, false), temporary).await?;
            let (name, uuid) = (conn.id().unwrap_or_default(), conn.uuid().unwrap_or_default());
            ctx.done(&Named { name, uuid, path: &p.path }, &format!("Connection '{name}' ({uuid}) modified."));
        }
        ConnectionAction::Up { connection, device } => up(ctx, client, &connection, device.as_deref()).await?,
        ConnectionAction::Down { connection } => down(ctx, client, &connection).await?,
        ConnectionAction::Delete { connections } => {
            let store = client.objects().await?;
            let profiles = client.profiles(&store).await?;
            let found: Vec<&Profile> = connections.iter().map(|c| find(&profiles, c)).collect::<Result<_>>()?;
            let mut done = Vec::new();
            for p in found {
                client.delete(&p.path).await?;
                let (name, uuid) = (p.id(), p.uuid());
                if !ctx.json {
                    emit(&format!("Connection '{name}' ({uuid}) deleted.\n"));
                }
                done.push(serde_json::json!({"name": name, "uuid": uuid, "path": p.path}));
            }
            if ctx.json {
                emit(&render::json(&serde_json::json!({ "deleted": done })));
            }
        }
        ConnectionAction::Import { file, format, temporary } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let format = format.unwrap_or_else(|| edit::format_of(&file));
            let conn =
                edit::decode(&text, format).map_err(|e| fail(exit::USAGE, format!("{}: {e}", file.display())))?;
            let path = client.add_connection(&to_dbus(&conn, true), temporary).await?;
            let (name, uuid) = (conn.id().unwrap_or_default(), conn.uuid().unwrap_or_default());
            ctx.done(&Named { name, uuid, path: &path }, &format!("Connection '{name}' ({uuid}) imported."));
        }
        ConnectionAction::Export { connection, format, output } => {
            let store = client.objects().await?;
            let profiles = client.profiles(&store).await?;
            let text = edit::encode(&connection_of(find(&profiles, &connection)?)?, format);
            match output {
                Some(path) => edit::write_private(&path, &text)?,
                None => emit(&text),
            }
        }
        ConnectionAction::Edit { connection, format } => edit_profile(ctx, client, &connection, format).await?,
    }
    Ok(())
}

fn pairs(args: &[String]) -> Result<Vec<props::Edit>> {
    if let Some(opt) = args.iter().find(|a| a.starts_with("--")) {
        return Err(fail(exit::USAGE, format!("'{opt}': options go before the property pairs")));
    }
    props::parse_pairs(args).map_err(|e| fail(exit::USAGE, e))
}

/// NetworkManager's normalisation and checks, before the daemon says the same.
fn checked(conn: Connection) -> Result<Connection> {
    validate::normalize_and_validate(conn).map_err(|e| fail(exit::USAGE, e.to_string()))
}

/// A new profile from pairs, with nmcli's defaults: a fresh UUID, the name
/// `TYPE[-IFNAME]`, `method manual` when addresses are given.
pub fn new_profile(args: &[String]) -> Result<Connection> {
    let edits = pairs(args)?;
    let mut conn = Connection::default();
    props::apply(&mut conn, &edits).map_err(|e| fail(exit::USAGE, e))?;
    let kind = conn
        .connection_type()
        .map(view::short_type)
        .ok_or_else(|| fail(exit::USAGE, "a connection type is needed, e.g. `type ethernet`"))?;
    if conn.id().is_none_or(str::is_empty) {
        let id = match conn.get_str("connection", "interface-name") {
            Some(ifname) if !ifname.is_empty() => format!("{kind}-{ifname}"),
            _ => kind,
        };
        conn.set("connection", "id", Value::Str(id));
    }
    if conn.uuid().is_none_or(str::is_empty) {
        conn.set("connection", "uuid", Value::Str(uuid::Uuid::new_v4().to_string()));
    }
    for ip in ["ipv4", "ipv6"] {
        if conn.get(ip, "address-data").is_some() && conn.get(ip, "method").is_none() {
            conn.set(ip, "method", Value::Str("manual".into()));
        }
    }
    checked(conn)
}

async fn add(ctx: &Ctx, client: &Client, args: &[String], temporary: bool) -> Result<()> {
    let conn = new_profile(args)?;
    let path = client.add_connection(&to_dbus(&conn, true), temporary).await?;
    let (name, uuid) = (conn.id().unwrap_or_default(), conn.uuid().unwrap_or_default());
    ctx.done(&Named { name, uuid, path: &path }, &format!("Connection '{name}' ({uuid}) added."));
    Ok(())
}

#[derive(Serialize)]
struct Activated {
    name: String,
    uuid: String,
    active_connection: String,
    state: String,
    devices: Vec<String>,
}

async fn up(ctx: &Ctx, client: &Client, key: &str, device: Option<&str>) -> Result<()> {
    // The activation is asked for as soon as the profile (and the device,
    // when named) is known; then only it and its devices are read, while
    // it runs.
    let (mut watch, paths) = client.watch_profiles().await?;
    watch.require_present()?;
    let profiles = client.profiles_at(paths).await;
    let p = find(&profiles, key)?;
    let dev = match device {
        Some(d) => {
            watch.read_objects(client).await?;
            Some(find_device(&watch.store, d)?)
        }
        None => None,
    };
    let (name, uuid) = (p.id(), p.uuid());
    let ac = client
        .activate(Some(&p.path), dev.as_deref())
        .await?
        .map_err(|e| crate::exit::from_bus(&format!("activating '{name}'"), e))?;
    if dev.is_none() {
        watch.read_activation(client, &ac).await?;
    }
    if let Some(timeout) = ctx.wait(UP_WAIT) {
        // The activation and the devices are all the wait and the answer read.
        let mut focus: Vec<String> = watch.store.with_interface(DEVICE).map(str::to_string).collect();
        focus.push(ac.clone());
        watch.focus(focus);
        wait::wait_activation(client, &mut watch, &ac, dev.clone(), &format!("'{name}'"), timeout).await?;
    }
    let s = &watch.store;
    let devices: Vec<String> = s.paths(&ac, ACTIVE, "Devices").iter().map(|d| s.str(d, DEVICE, "Interface")).collect();
    let state = names::active_state(s.u32(&ac, ACTIVE, "State")).to_string();
    let on = if devices.is_empty() { String::new() } else { format!(" on {}", devices.join(", ")) };
    let line = if ctx.wait(UP_WAIT).is_some() {
        format!("Connection '{name}' activated{on}.")
    } else {
        format!("Connection '{name}' is activating{on}.")
    };
    ctx.done(&Activated { name: name.clone(), uuid, active_connection: ac, state, devices }, &line);
    Ok(())
}

async fn down(ctx: &Ctx, client: &Client, key: &str) -> Result<()> {
    // The profiles' paths and settings, then the activations alone: not
    // every object.
    let (mut watch, paths) = client.watch_profiles().await?;
    watch.require_present()?;
    let profiles = client.profiles_at(paths).await;
    let p = find(&profiles, key)?;
    watch.read_actives(client).await?;
    let acs = view::actives_of(&watch.store, &p.path);
    let name = p.id();
    if acs.is_empty() {
        return Err(fail(exit::NOT_FOUND, format!("connection '{name}' is not active")));
    }
    for ac in &acs {
        client.deactivate(ac).await?;
    }
    if let Some(timeout) = ctx.wait(DOWN_WAIT) {
        // The activations' state is all the wait reads.
        watch.focus(acs.clone());
        let what = format!("'{name}' to deactivate");
        wait::wait_until(client, &mut watch, &what, timeout, |s| {
            acs.iter().all(|ac| !s.has(ac, ACTIVE) || s.u32(ac, ACTIVE, "State") == names::AC_DEACTIVATED)
        })
        .await?;
    }
    ctx.done(&Named { name: &name, uuid: &p.uuid(), path: &p.path }, &format!("Connection '{name}' deactivated."));
    Ok(())
}

/// Export to a private temp file, run the editor, read back, check, Update.
/// Whatever goes wrong, the edited file stays and the message names it.
async fn edit_profile(ctx: &Ctx, client: &Client, key: &str, format: Format) -> Result<()> {
    let store = client.objects().await?;
    let profiles = client.profiles(&store).await?;
    let p = find(&profiles, key)?;
    let original = connection_of(p)?;
    let text = edit::encode(&original, format);
    let file = edit::temp_file(&p.id(), format, &text)?;
    let kept = |why: String| fail(exit::USAGE, format!("{why}\nyour edits are kept in {}", file.display()));
    loop {
        edit::run_editor(&file).await.map_err(|e| kept(format!("{e:#}")))?;
        let edited = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        if edited == text {
            let _ = std::fs::remove_file(&file);
            ctx.done(&serde_json::json!({"changed": false}), "No changes.");
            return Ok(());
        }
        let problem = match edit::decode(&edited, format) {
            Ok(conn) if conn.uuid() != original.uuid() => {
                format!(
                    "{}: connection.uuid cannot be changed (it was {})",
                    file.display(),
                    original.uuid().unwrap_or("")
                )
            }
            Ok(conn) => match client.update(&p.path, &to_dbus(&conn, true), false).await {
                Ok(()) => {
                    let _ = std::fs::remove_file(&file);
                    let (name, uuid) = (conn.id().unwrap_or_default(), conn.uuid().unwrap_or_default());
                    ctx.done(&Named { name, uuid, path: &p.path }, &format!("Connection '{name}' ({uuid}) updated."));
                    return Ok(());
                }
                Err(e) => format!("{e:#}"),
            },
            Err(e) => format!("{}: {e}", file.display()),
        };
        if !(std::io::stdin().is_terminal() && ask_again(&problem)) {
            return Err(kept(problem));
        }
    }
}

/// Prints the problem and asks whether to edit again (default yes).
fn ask_again(problem: &str) -> bool {
    eprint!("error: {problem}\nEdit again? [Y/n] ");
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    !matches!(answer.trim(), "n" | "N" | "no")
}
