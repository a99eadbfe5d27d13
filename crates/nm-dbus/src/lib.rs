//! What nm-rs daemons and clients share on the bus: well-known names and
//! paths, the settings-service interface (as proxies), the conversion between
//! nm-model's [`Value`] and zbus's [`Variant`], and NetworkManager's error
//! names.

use std::collections::HashMap;
use std::str::FromStr;

use nm_model::Value;
use nm_model::dbus_dict::SettingsDict;
use zbus::{Array, Dict, ObjectPath, OwnedVariant, Signature, Structure, Variant};

pub mod errors;
pub mod settings_service;

/// Bus names of the nm-rs processes.
pub mod names {
    pub const NETWORK_MANAGER: &str = "org.freedesktop.NetworkManager";
    pub const SYSTEM_SETTINGS: &str = "org.freedesktop.NetworkManagerSystemSettings";
    pub const USER_SETTINGS: &str = "org.freedesktop.NetworkManagerUserSettings";
    pub const DHCP_HELPER: &str = "org.freedesktop.nm_dhcp_helper";
    pub const DISPATCHER: &str = "org.freedesktop.nm_dispatcher";

    /// The settings-service object, the same in both settings services.
    pub const SETTINGS_PATH: &str = "/org/freedesktop/NetworkManagerSettings";
    pub const SETTINGS_INTERFACE: &str = "org.freedesktop.NetworkManagerSettings";
    pub const CONNECTION_INTERFACE: &str = "org.freedesktop.NetworkManagerSettings.Connection";
    pub const SECRETS_INTERFACE: &str = "org.freedesktop.NetworkManagerSettings.Connection.Secrets";
    pub const SYSTEM_INTERFACE: &str = "org.freedesktop.NetworkManagerSettings.System";
}

/// Whether a call failed because nobody owns the name it went to and the
/// bus could not start an owner (ServiceUnknown, NameHasNoOwner), as
/// opposed to the service refusing. zbus reports the bus's own errors as
/// `Error::FDO`, a service's as `Error::MethodError`: both are looked at.
pub fn service_absent(e: &zbus::Error) -> bool {
    error_name_is(e, &["org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"])
}

/// Whether a call failed because the service has no such method (an older
/// service, say).
pub fn unknown_method(e: &zbus::Error) -> bool {
    error_name_is(e, &["org.freedesktop.DBus.Error.UnknownMethod"])
}

/// Whether a call's error is one of the D-Bus errors `names`.
fn error_name_is(e: &zbus::Error, names: &[&str]) -> bool {
    match e {
        zbus::Error::MethodError(name, _, _) => names.contains(&name.as_str()),
        zbus::Error::FDO(fdo) => names.contains(&zbus::DBusError::name(fdo.as_ref()).as_str()),
        _ => false,
    }
}

/// The uid of the process that sent a message, asked from the bus (the
/// daemons' one way of knowing who calls).
pub async fn caller_uid(bus: &zbus::Connection, hdr: &zbus::message::Header<'_>) -> zbus::fdo::Result<u32> {
    let sender = hdr.sender().ok_or_else(|| zbus::fdo::Error::AccessDenied("message without sender".into()))?;
    let dbus = zbus::fdo::DBusProxy::new(bus).await?;
    dbus.get_connection_unix_user(sender.clone().into()).await
}

/// `a{sa{sv}}` as zbus sends and receives it.
pub type WireSettings = HashMap<String, HashMap<String, OwnedVariant>>;

/// A D-Bus value nm-rs cannot represent (a file descriptor, or a malformed
/// container built by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionError(pub String);

impl std::fmt::Display for ConversionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConversionError {}

fn cerr(e: impl std::fmt::Display) -> ConversionError {
    ConversionError(e.to_string())
}

/// A zbus value into the model's value tree.
pub fn from_variant(v: &Variant<'_>) -> Result<Value, ConversionError> {
    Ok(match v {
        Variant::U8(b) => Value::Byte(*b),
        Variant::Bool(b) => Value::Bool(*b),
        Variant::I16(n) => Value::Int16(*n),
        Variant::U16(n) => Value::UInt16(*n),
        Variant::I32(n) => Value::Int32(*n),
        Variant::U32(n) => Value::UInt32(*n),
        Variant::I64(n) => Value::Int64(*n),
        Variant::U64(n) => Value::UInt64(*n),
        Variant::F64(n) => Value::Double(*n),
        Variant::Str(s) => Value::Str(s.as_str().to_string()),
        Variant::Signature(s) => Value::Signature(s.to_string()),
        Variant::ObjectPath(p) => Value::ObjectPath(p.as_str().to_string()),
        Variant::Variant(inner) => Value::Variant(Box::new(from_variant(inner)?)),
        Variant::Array(a) => {
            let elem = a.element_signature().to_string();
            if elem == "y" {
                let bytes = a.inner().iter().map(|x| match x {
                    Variant::U8(b) => Ok(*b),
                    _ => Err(cerr("byte array holds a non-byte")),
                });
                Value::Bytes(bytes.collect::<Result<_, _>>()?)
            } else {
                let items = a.inner().iter().map(from_variant).collect::<Result<_, _>>()?;
                Value::Array { elem, items }
            }
        }
        Variant::Dict(d) => {
            let sig = d.signature().to_string();
            // "a{" KEY VALUE "}": keys are basic types, one character long.
            let inner = sig
                .strip_prefix("a{")
                .and_then(|s| s.strip_suffix('}'))
                .filter(|s| s.len() >= 2)
                .ok_or_else(|| cerr(format!("unexpected dictionary signature {sig}")))?;
            let (key, value) = inner.split_at(1);
            let entries = d
                .iter()
                .map(|(k, v)| Ok((from_variant(k)?, from_variant(v)?)))
                .collect::<Result<_, ConversionError>>()?;
            Value::Dict { key: key.to_string(), value: value.to_string(), entries }
        }
        Variant::Structure(s) => Value::Struct(s.fields().iter().map(from_variant).collect::<Result<_, _>>()?),
        #[allow(unreachable_patterns)]
        _ => {
            return Err(cerr(format!("unsupported D-Bus type {}", v.value_signature())));
        }
    })
}

fn signature(s: &str) -> Result<Signature, ConversionError> {
    Signature::from_str(s).map_err(cerr)
}

/// The model's value tree into a zbus value.
pub fn to_variant(v: &Value) -> Result<Variant<'static>, ConversionError> {
    Ok(match v {
        Value::Bool(b) => Variant::Bool(*b),
        Value::Byte(b) => Variant::U8(*b),
        Value::Int16(n) => Variant::I16(*n),
        Value::UInt16(n) => Variant::U16(*n),
        Value::Int32(n) => Variant::I32(*n),
        Value::UInt32(n) => Variant::U32(*n),
        Value::Int64(n) => Variant::I64(*n),
        Value::UInt64(n) => Variant::U64(*n),
        Value::Double(n) => Variant::F64(*n),
        Value::Str(s) => Variant::from(s.clone()),
        Value::ObjectPath(p) => Variant::ObjectPath(ObjectPath::try_from(p.clone()).map_err(cerr)?),
        Value::Signature(s) => Variant::Signature(signature(s)?),
        Value::Bytes(b) => Variant::Array(Array::from(b.clone())),
        Value::Array { elem, items } => {
            let mut a = Array::new(&signature(elem)?);
            for item in items {
                a.append(to_variant(item)?).map_err(cerr)?;
            }
            Variant::Array(a)
        }
        Value::Dict { key, value, entries } => {
            let mut d = Dict::new(&signature(key)?, &signature(value)?);
            for (k, v) in entries {
                d.append(to_variant(k)?, to_variant(v)?).map_err(cerr)?;
            }
            Variant::Dict(d)
        }
        Value::Struct(fields) => {
            let mut b = Structure::builder();
            for f in fields {
                b = b.append_field(to_variant(f)?);
            }
            Variant::Structure(b.build().map_err(cerr)?)
        }
        Value::Variant(inner) => Variant::Variant(Box::new(to_variant(inner)?)),
    })
}

/// `a{sa{sv}}` from the wire into the model's dictionary.
pub fn settings_from_wire(wire: &WireSettings) -> Result<SettingsDict, ConversionError> {
    let mut out = SettingsDict::new();
    for (setting, props) in wire {
        let dict = out.entry(setting.clone()).or_default();
        for (prop, v) in props {
            let v = Variant::try_from(v).map_err(cerr)?;
            let value = from_variant(&v).map_err(|e| cerr(format!("{setting}.{prop}: {e}")))?;
            dict.insert(prop.clone(), value);
        }
    }
    Ok(out)
}

/// The model's dictionary onto the wire.
pub fn settings_to_wire(dict: &SettingsDict) -> Result<WireSettings, ConversionError> {
    let mut out = WireSettings::new();
    for (setting, props) in dict {
        let wire = out.entry(setting.clone()).or_default();
        for (prop, v) in props {
            let variant = to_variant(v).map_err(|e| cerr(format!("{setting}.{prop}: {e}")))?;
            wire.insert(prop.clone(), OwnedVariant::try_from(variant).map_err(cerr)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nm_model::{dbus_dict, keyfile};

    #[test]
    fn absent_services_are_told_from_refusals() {
        let fdo = |e: zbus::fdo::Error| zbus::Error::FDO(Box::new(e));
        assert!(service_absent(&fdo(zbus::fdo::Error::ServiceUnknown("no .service file".into()))));
        assert!(service_absent(&fdo(zbus::fdo::Error::NameHasNoOwner("gone".into()))));
        assert!(!service_absent(&fdo(zbus::fdo::Error::AccessDenied("not you".into()))));
        assert!(!service_absent(&zbus::Error::InvalidReply));
    }

    #[test]
    fn every_shape_survives_the_wire() {
        let conn = keyfile::parse(
            "[connection]\nid=S\nuuid=efca3932-3bc6-470b-be98-4787f0508e01\ntype=ethernet\npermissions=user:alice:;\n\n\
             [ethernet]\nmac-address=00:11:22:33:44:55\ncloned-mac-address=random\n\n[bond]\nmode=active-backup\n\n\
             [ipv4]\naddress1=192.168.1.5/24,192.168.1.1\ndns=8.8.8.8;\nmethod=manual\nroute1=10.0.0.0/8,192.168.1.2,5\nroute1_options=onlink=true,tos=0x10\n\n\
             [ipv6]\naddress1=2001:db8::5/64,2001:db8::1\ndns=2001:db8::53;\nmethod=manual\nroute1=2001:db8:1::/48,::,7\n",
        )
        .unwrap();
        let dict = dbus_dict::to_dbus(&conn, true);
        let wire = settings_to_wire(&dict).unwrap();
        let back = settings_from_wire(&wire).unwrap();
        assert_eq!(back, dict);
        assert_eq!(dbus_dict::from_dbus(&back).unwrap(), conn);
    }

    #[test]
    fn empty_containers_keep_their_types() {
        let v = Value::Array { elem: "(ayuay)".into(), items: vec![] };
        let w = to_variant(&v).unwrap();
        assert_eq!(w.value_signature().to_string(), "a(ayuay)");
        assert_eq!(from_variant(&w).unwrap(), v);
    }

    #[test]
    fn mismatched_items_are_errors_not_panics() {
        let v = Value::Array { elem: "u".into(), items: vec![Value::Str("x".into())] };
        assert!(to_variant(&v).is_err());
    }
}
