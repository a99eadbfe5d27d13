//! A D-Bus-shaped value tree.
//!
//! The model stores every property as a [`Value`] whose shape is exactly the
//! D-Bus type of that property (`ay` is [`Value::Bytes`], `aa{sv}` is an
//! [`Value::Array`] of [`Value::Dict`], …). This keeps nm-model free of zbus
//! while letting `nm-dbus` convert to and from `zvariant` with one generic
//! function, and lets properties the model does not know travel unchanged.

use std::collections::BTreeMap;

/// An `a{sv}` dictionary, the element type of `address-data`, `route-data`, …
pub type VarDict = BTreeMap<String, Value>;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Byte(u8),
    Int16(i16),
    UInt16(u16),
    Int32(i32),
    UInt32(u32),
    Int64(i64),
    UInt64(u64),
    Double(f64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    /// `ay`, kept apart from [`Value::Array`] because it is common and compact.
    Bytes(Vec<u8>),
    /// An array of any element type other than bytes or dict entries. `elem`
    /// is the element signature, needed to describe an empty array.
    Array {
        elem: String,
        items: Vec<Value>,
    },
    /// `a{kv}`: `key` and `value` are the signatures of keys and values.
    Dict {
        key: String,
        value: String,
        entries: Vec<(Value, Value)>,
    },
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    /// The D-Bus signature of this value.
    pub fn signature(&self) -> String {
        match self {
            Value::Bool(_) => "b".into(),
            Value::Byte(_) => "y".into(),
            Value::Int16(_) => "n".into(),
            Value::UInt16(_) => "q".into(),
            Value::Int32(_) => "i".into(),
            Value::UInt32(_) => "u".into(),
            Value::Int64(_) => "x".into(),
            Value::UInt64(_) => "t".into(),
            Value::Double(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::ObjectPath(_) => "o".into(),
            Value::Signature(_) => "g".into(),
            Value::Bytes(_) => "ay".into(),
            Value::Array { elem, .. } => format!("a{elem}"),
            Value::Dict { key, value, .. } => format!("a{{{key}{value}}}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn str_list<I, S>(items: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Value::Array { elem: "s".into(), items: items.into_iter().map(|s| Value::Str(s.into())).collect() }
    }

    pub fn str_map(map: &BTreeMap<String, String>) -> Value {
        Value::Dict {
            key: "s".into(),
            value: "s".into(),
            entries: map.iter().map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone()))).collect(),
        }
    }

    pub fn var_dict(map: VarDict) -> Value {
        Value::Dict {
            key: "s".into(),
            value: "v".into(),
            entries: map.into_iter().map(|(k, v)| (Value::Str(k), Value::Variant(Box::new(v)))).collect(),
        }
    }

    pub fn dict_list(items: Vec<VarDict>) -> Value {
        Value::Array { elem: "a{sv}".into(), items: items.into_iter().map(Value::var_dict).collect() }
    }

    /// Looks through any number of variant wrappers.
    pub fn unwrap_variant(&self) -> &Value {
        let mut v = self;
        while let Value::Variant(inner) = v {
            v = inner;
        }
        v
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.unwrap_variant() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Any integer type, widened.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match self.unwrap_variant() {
            Value::Byte(v) => *v as i128,
            Value::Int16(v) => *v as i128,
            Value::UInt16(v) => *v as i128,
            Value::Int32(v) => *v as i128,
            Value::UInt32(v) => *v as i128,
            Value::Int64(v) => *v as i128,
            Value::UInt64(v) => *v as i128,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.unwrap_variant() {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self.unwrap_variant() {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str_list(&self) -> Option<Vec<String>> {
        match self.unwrap_variant() {
            Value::Array { items, .. } => items.iter().map(|v| v.as_str().map(String::from)).collect(),
            _ => None,
        }
    }

    /// `a{ss}` as a map.
    pub fn as_str_map(&self) -> Option<BTreeMap<String, String>> {
        match self.unwrap_variant() {
            Value::Dict { entries, .. } => {
                entries.iter().map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string()))).collect()
            }
            _ => None,
        }
    }

    /// `a{sv}` as a map (variant wrappers removed from the values).
    pub fn as_var_dict(&self) -> Option<VarDict> {
        match self.unwrap_variant() {
            Value::Dict { entries, .. } => {
                entries.iter().map(|(k, v)| Some((k.as_str()?.to_string(), v.unwrap_variant().clone()))).collect()
            }
            _ => None,
        }
    }

    /// `aa{sv}` as a list of maps.
    pub fn as_dict_list(&self) -> Option<Vec<VarDict>> {
        match self.unwrap_variant() {
            Value::Array { items, .. } => items.iter().map(Value::as_var_dict).collect(),
            _ => None,
        }
    }

    /// The elements of any array (bytes are widened to `Byte` values).
    pub fn array_items(&self) -> Option<Vec<Value>> {
        match self.unwrap_variant() {
            Value::Array { items, .. } => Some(items.clone()),
            Value::Bytes(b) => Some(b.iter().map(|b| Value::Byte(*b)).collect()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_describe_nested_values() {
        let mut d = VarDict::new();
        d.insert("address".into(), Value::Str("10.0.0.1".into()));
        d.insert("prefix".into(), Value::UInt32(24));
        assert_eq!(Value::dict_list(vec![d]).signature(), "aa{sv}");
        assert_eq!(Value::str_list(["a"]).signature(), "as");
        assert_eq!(Value::Struct(vec![Value::Bytes(vec![]), Value::UInt32(1)]).signature(), "(ayu)");
        assert_eq!(Value::str_map(&BTreeMap::new()).signature(), "a{ss}");
    }

    #[test]
    fn accessors_look_through_variants() {
        let v = Value::Variant(Box::new(Value::Variant(Box::new(Value::UInt32(7)))));
        assert_eq!(v.as_i128(), Some(7));
        assert_eq!(Value::Str("x".into()).as_i128(), None);
    }
}
