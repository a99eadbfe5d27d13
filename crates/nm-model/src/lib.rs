//! nm-model: NetworkManager connection profiles as pure data.
//!
//! - [`schema`]: the one table of settings and properties every codec walks;
//! - [`connection`]: the profile itself, which keeps what it does not know;
//! - [`validate`]: NetworkManager's normalisation and verification rules;
//! - codecs: [`keyfile`] (`*.nmconnection`), [`toml_codec`] (`*.toml`) and
//!   [`dbus_dict`] (`a{sa{sv}}`, over the D-Bus-shaped [`value::Value`]).
//!
//! No I/O, no async runtime, no bus, no netlink: everything here is tested
//! alone and fuzzed.

pub mod connection;
pub mod dbus_dict;
pub mod keyfile;
pub mod schema;
pub mod text;
pub mod toml_codec;
pub mod validate;
pub mod value;
pub mod vecmap;

pub use connection::{Connection, PropertyError, Setting};
pub use value::{Value, VarDict};
