//! `nmctl device show|connect|disconnect`.

use anyhow::Result;
use nm_model::Value;
use nm_model::dbus_dict::SettingsDict;

use crate::client::Client;
use crate::exit::{self, fail, from_bus};
use crate::names;
use crate::objects::*;
use crate::run::Ctx;
use crate::{render, view, wait};

/// nmcli's default waits.
const CONNECT_WAIT: u64 = 90;
const DISCONNECT_WAIT: u64 = 10;

pub fn find_device(store: &ObjectStore, iface: &str) -> Result<String> {
    store.device_by_iface(iface).ok_or_else(|| fail(exit::NOT_FOUND, format!("no device '{iface}'")))
}

pub async fn show(ctx: &Ctx, client: &Client, device: Option<&str>) -> Result<()> {
    let store = client.objects().await?;
    match device {
        Some(iface) => {
            let d = view::device_detail(&store, &find_device(&store, iface)?);
            ctx.show(&d, render::device_detail);
        }
        None => {
            let all: Vec<view::DeviceDetail> = store.devices().iter().map(|d| view::device_detail(&store, d)).collect();
            ctx.show(&all, |l, s| render::device_details(l, s));
        }
    }
    Ok(())
}

pub async fn connect(ctx: &Ctx, client: &Client, iface: &str) -> Result<()> {
    let mut watch = client.watch().await?;
    let dev = find_device(&watch.store, iface)?;
    let ac = match client.activate(None, Some(&dev)).await? {
        Ok(ac) => ac,
        // No profile fits: let the daemon complete a new one, as nmcli does.
        Err(zbus::Error::MethodError(name, _, _)) if name.as_str().ends_with(".UnknownConnection") => {
            let mut dict = SettingsDict::new();
            let conn = dict.entry("connection".to_string()).or_default();
            conn.insert("id".into(), Value::Str(iface.to_string()));
            client.add_and_activate(&dict, &dev).await?
        }
        Err(e) => return Err(from_bus(&format!("connecting {iface}"), e)),
    };
    let name = watch.store.str(&ac, ACTIVE, "Id");
    if let Some(timeout) = ctx.wait(CONNECT_WAIT) {
        wait::wait_activation(client, &mut watch, &ac, Some(dev.clone()), &format!("device '{iface}'"), timeout)
            .await?;
    }
    let d = view::device_summary(&watch.store, &dev);
    let name = d.connection.clone().unwrap_or(name);
    ctx.done(&d, &format!("Device '{iface}' connected ('{name}')."));
    Ok(())
}

pub async fn disconnect(ctx: &Ctx, client: &Client, iface: &str) -> Result<()> {
    let mut watch = client.watch().await?;
    let dev = find_device(&watch.store, iface)?;
    client.disconnect(&dev).await.map_err(|e| e.context(format!("device '{iface}'")))?;
    if let Some(timeout) = ctx.wait(DISCONNECT_WAIT) {
        let what = format!("device '{iface}' to disconnect");
        wait::wait_until(client, &mut watch, &what, timeout, |s| {
            !s.has(&dev, DEVICE) || s.device_state(&dev).0 <= names::DEVICE_DISCONNECTED
        })
        .await?;
    }
    ctx.done(&view::device_summary(&watch.store, &dev), &format!("Device '{iface}' disconnected."));
    Ok(())
}
