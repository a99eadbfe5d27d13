//! NetworkManager's objects as a client sees them: what `GetManagedObjects`
//! on `/org/freedesktop` returned, kept current by `InterfacesAdded`,
//! `InterfacesRemoved` and `PropertiesChanged`, as libnm does. Pure: the bus
//! side (client.rs) feeds it already converted values.

use std::collections::BTreeMap;

use nm_model::Value;

pub const MANAGER_PATH: &str = "/org/freedesktop/NetworkManager";
pub const SETTINGS_PATH: &str = "/org/freedesktop/NetworkManager/Settings";
pub const DNS_MANAGER_PATH: &str = "/org/freedesktop/NetworkManager/DnsManager";

pub const MANAGER: &str = "org.freedesktop.NetworkManager";
pub const SETTINGS: &str = "org.freedesktop.NetworkManager.Settings";
pub const SETTINGS_CONNECTION: &str = "org.freedesktop.NetworkManager.Settings.Connection";
pub const DEVICE: &str = "org.freedesktop.NetworkManager.Device";
pub const WIRED: &str = "org.freedesktop.NetworkManager.Device.Wired";
pub const ACTIVE: &str = "org.freedesktop.NetworkManager.Connection.Active";
pub const IP4: &str = "org.freedesktop.NetworkManager.IP4Config";
pub const IP6: &str = "org.freedesktop.NetworkManager.IP6Config";
pub const DHCP4: &str = "org.freedesktop.NetworkManager.DHCP4Config";
pub const DNS_MANAGER: &str = "org.freedesktop.NetworkManager.DnsManager";

/// Properties of one interface.
pub type Props = BTreeMap<String, Value>;
/// Interfaces of one object.
pub type Interfaces = BTreeMap<String, Props>;

/// Every object of NetworkManager, by path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectStore {
    objects: BTreeMap<String, Interfaces>,
}

impl ObjectStore {
    pub fn new(objects: BTreeMap<String, Interfaces>) -> Self {
        ObjectStore { objects }
    }

    pub fn add(&mut self, path: &str, interfaces: Interfaces) {
        let obj = self.objects.entry(path.to_string()).or_default();
        for (iface, props) in interfaces {
            obj.insert(iface, props);
        }
    }

    /// Removes interfaces of an object; returns what they held.
    pub fn remove(&mut self, path: &str, interfaces: &[String]) -> Interfaces {
        let mut old = Interfaces::new();
        if let Some(obj) = self.objects.get_mut(path) {
            for iface in interfaces {
                if let Some(props) = obj.remove(iface) {
                    old.insert(iface.clone(), props);
                }
            }
            if obj.is_empty() {
                self.objects.remove(path);
            }
        }
        old
    }

    /// A `PropertiesChanged`; changes to objects not (yet) known are kept
    /// too, so that nothing is lost between a signal and its object.
    pub fn change(&mut self, path: &str, iface: &str, changed: Props) {
        let props = self.objects.entry(path.to_string()).or_default().entry(iface.to_string()).or_default();
        props.extend(changed);
    }

    pub fn has(&self, path: &str, iface: &str) -> bool {
        self.objects.get(path).is_some_and(|o| o.contains_key(iface))
    }

    pub fn get(&self, path: &str, iface: &str, prop: &str) -> Option<&Value> {
        self.objects.get(path)?.get(iface)?.get(prop)
    }

    /// Paths of the objects carrying `iface`, in path order.
    pub fn with_interface<'a>(&'a self, iface: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.objects.iter().filter(move |(_, o)| o.contains_key(iface)).map(|(p, _)| p.as_str())
    }

    pub fn str(&self, path: &str, iface: &str, prop: &str) -> String {
        self.get(path, iface, prop).and_then(Value::as_str).unwrap_or_default().to_string()
    }

    pub fn u32(&self, path: &str, iface: &str, prop: &str) -> u32 {
        self.get(path, iface, prop).and_then(Value::as_i128).and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
    }

    pub fn bool(&self, path: &str, iface: &str, prop: &str) -> bool {
        self.get(path, iface, prop).and_then(Value::as_bool).unwrap_or(false)
    }

    /// An object-path property; `"/"` (NetworkManager's "none") is `None`.
    pub fn path(&self, path: &str, iface: &str, prop: &str) -> Option<String> {
        let p = self.get(path, iface, prop)?.as_str()?;
        (p != "/" && !p.is_empty()).then(|| p.to_string())
    }

    pub fn paths(&self, path: &str, iface: &str, prop: &str) -> Vec<String> {
        self.get(path, iface, prop).and_then(Value::as_str_list).unwrap_or_default()
    }

    /// The `(uu)` of `Device.StateReason`, falling back to `State`.
    pub fn device_state(&self, path: &str) -> (u32, u32) {
        if let Some(Value::Struct(f)) = self.get(path, DEVICE, "StateReason").map(Value::unwrap_variant) {
            let n = |i: usize| f.get(i).and_then(Value::as_i128).and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
            return (n(0), n(1));
        }
        (self.u32(path, DEVICE, "State"), 0)
    }

    /// The device whose `Interface` is `iface`.
    pub fn device_by_iface(&self, iface: &str) -> Option<String> {
        self.with_interface(DEVICE).find(|p| self.str(p, DEVICE, "Interface") == iface).map(str::to_string)
    }

    /// Devices in the order of `Manager.Devices` (then any others).
    pub fn devices(&self) -> Vec<String> {
        let mut order = self.paths(MANAGER_PATH, MANAGER, "Devices");
        order.retain(|p| self.has(p, DEVICE));
        for p in self.with_interface(DEVICE) {
            if !order.iter().any(|o| o == p) {
                order.push(p.to_string());
            }
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(entries: &[(&str, Value)]) -> Props {
        entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn signals_keep_the_store_current() {
        let mut s = ObjectStore::default();
        let dev = "/org/freedesktop/NetworkManager/Devices/1";
        let mut ifaces = Interfaces::new();
        ifaces.insert(DEVICE.into(), props(&[("Interface", Value::Str("eth0".into())), ("State", Value::UInt32(30))]));
        ifaces.insert(WIRED.into(), Props::new());
        s.add(dev, ifaces);
        assert_eq!(s.device_by_iface("eth0").as_deref(), Some(dev));
        assert_eq!(s.device_state(dev), (30, 0));
        s.change(dev, DEVICE, props(&[("StateReason", Value::Struct(vec![Value::UInt32(100), Value::UInt32(0)]))]));
        assert_eq!(s.device_state(dev), (100, 0));
        s.change(dev, DEVICE, props(&[("ActiveConnection", Value::ObjectPath("/".into()))]));
        assert_eq!(s.path(dev, DEVICE, "ActiveConnection"), None);
        s.remove(dev, &[WIRED.into()]);
        assert!(s.has(dev, DEVICE));
        s.remove(dev, &[DEVICE.into()]);
        assert!(s.devices().is_empty());
    }
}
