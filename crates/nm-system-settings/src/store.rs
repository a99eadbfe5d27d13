//! The profile store: which file provides each profile, and which profiles
//! are visible (on the same uuid /run shadows /etc shadows /usr/lib).
//!
//! Pure: it is told what each file now holds and answers with the changes
//! to announce on the bus. Reading and writing files is `files.rs`'s job.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use nm_model::{Connection, keyfile, toml_codec};

/// Where a profile file lives; the order is the precedence (last wins).
/// Which folder each kind is depends on the scope (`scope.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DirKind {
    /// Read-only, shipped by packages: `/usr/lib/NetworkManager/system-connections`
    /// (the system scope only).
    Vendor,
    /// Saved profiles: `/etc/NetworkManager/system-connections`, or the
    /// user's `$XDG_CONFIG_HOME/nm-rs/connections`.
    Saved,
    /// Unsaved profiles, in memory until reboot or logout:
    /// `/run/NetworkManager/system-connections`, or `$XDG_RUNTIME_DIR/nm-rs/connections`.
    Runtime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Keyfile,
    Toml,
}

impl Format {
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "nmconnection" => Some(Format::Keyfile),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Format::Keyfile => "nmconnection",
            Format::Toml => "toml",
        }
    }
}

/// A profile as one file holds it.
///
/// The profile is kept as its canonical text (what the file holds once
/// written by us), not as a parsed tree: about 250 bytes instead of about
/// 2 kB, which is what lets 10,000 profiles fit in 30 MB. It is parsed again
/// when asked for, and two profiles are the same when their texts are.
#[derive(Clone, Debug, PartialEq)]
pub struct FileProfile {
    pub path: PathBuf,
    pub dir: DirKind,
    pub format: Format,
    uuid: Box<str>,
    text: Box<str>,
}

impl FileProfile {
    /// `conn` must be normalised and valid (it has a uuid).
    pub fn new(path: PathBuf, dir: DirKind, format: Format, conn: &Connection) -> Self {
        let text = match format {
            Format::Keyfile => keyfile::write(conn),
            Format::Toml => toml_codec::write(conn),
        };
        let uuid = conn.uuid().unwrap_or_default().into();
        FileProfile { path, dir, format, uuid, text: text.into() }
    }

    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The file's content.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The profile, parsed from its canonical text.
    pub fn connection(&self) -> Result<Connection, String> {
        match self.format {
            Format::Keyfile => keyfile::parse(&self.text).map_err(|e| e.to_string()),
            Format::Toml => toml_codec::parse(&self.text).map_err(|e| e.to_string()),
        }
    }

    /// The same file with another profile in it.
    pub fn with_connection(&self, conn: &Connection) -> Self {
        FileProfile::new(self.path.clone(), self.dir, self.format, conn)
    }
}

/// What the bus must hear about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Added(u32),
    Updated(u32),
    Removed(u32),
}

#[derive(Debug, Default)]
pub struct Store {
    files: HashMap<PathBuf, FileProfile>,
    /// Usually one path per uuid; a `Vec` costs what it holds.
    paths_by_uuid: HashMap<String, Vec<PathBuf>>,
    /// Object number → uuid of the visible profile.
    visible: BTreeMap<u32, String>,
    id_by_uuid: HashMap<String, u32>,
    next_id: u32,
}

impl Store {
    /// Records what `path` holds now (`None`: gone, ignored or invalid) and
    /// returns the changes to the visible profiles.
    pub fn set_file(&mut self, path: &Path, profile: Option<FileProfile>) -> Vec<Change> {
        let mut uuids = BTreeSet::new();
        if let Some(old) = self.files.get(path) {
            uuids.insert(old.uuid().to_string());
        }
        if let Some(new) = &profile {
            uuids.insert(new.uuid().to_string());
        }
        let before: Vec<(String, Option<FileProfile>)> =
            uuids.iter().map(|u| (u.clone(), self.visible_by_uuid(u).cloned())).collect();

        if let Some(old) = self.files.remove(path)
            && let Some(set) = self.paths_by_uuid.get_mut(old.uuid())
        {
            set.retain(|p| p != path);
            if set.is_empty() {
                self.paths_by_uuid.remove(old.uuid());
            }
        }
        if let Some(new) = profile {
            let set = self.paths_by_uuid.entry(new.uuid().to_string()).or_default();
            // Kept sorted so that equal precedence resolves the same way always.
            if let Err(i) = set.binary_search_by(|p| p.as_path().cmp(path)) {
                set.insert(i, path.to_path_buf());
            }
            self.files.insert(path.to_path_buf(), new);
        }

        let mut changes = Vec::new();
        for (uuid, was) in before {
            let now = self.best_for(&uuid).cloned();
            match (was, now) {
                (None, Some(_)) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.visible.insert(id, uuid.clone());
                    self.id_by_uuid.insert(uuid, id);
                    changes.push(Change::Added(id));
                }
                (Some(_), None) => {
                    if let Some(id) = self.id_by_uuid.remove(&uuid) {
                        self.visible.remove(&id);
                        changes.push(Change::Removed(id));
                    }
                }
                (Some(a), Some(b)) if a != b => {
                    if let Some(id) = self.id_by_uuid.get(&uuid) {
                        changes.push(Change::Updated(*id));
                    }
                }
                _ => {}
            }
        }
        changes
    }

    fn best_for(&self, uuid: &str) -> Option<&FileProfile> {
        let paths = self.paths_by_uuid.get(uuid)?;
        // Highest precedence wins; among equals, the first path in order.
        paths.iter().filter_map(|p| self.files.get(p)).rev().max_by_key(|f| f.dir)
    }

    fn visible_by_uuid(&self, uuid: &str) -> Option<&FileProfile> {
        self.id_by_uuid.get(uuid).and_then(|_| self.best_for(uuid))
    }

    /// The visible profile of an object number.
    pub fn get(&self, id: u32) -> Option<&FileProfile> {
        self.best_for(self.visible.get(&id)?)
    }

    pub fn id_of_uuid(&self, uuid: &str) -> Option<u32> {
        self.id_by_uuid.get(uuid).copied()
    }

    /// Whether a profile was read from this file.
    pub fn has_file(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.visible.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.visible.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.visible.is_empty()
    }

    /// Whether a file of this path is known (used to pick new file names).
    pub fn has_path(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }

    /// Every file holding the profile, lowest precedence first.
    pub fn files_of(&self, uuid: &str) -> Vec<&FileProfile> {
        let mut v: Vec<&FileProfile> =
            self.paths_by_uuid.get(uuid).into_iter().flatten().filter_map(|p| self.files.get(p)).collect();
        v.sort_by_key(|f| f.dir);
        v
    }
}

/// The file name NetworkManager gives a new profile: the id with `/` made
/// `_` and a leading `.` made `_`; on collision the uuid is appended.
pub fn file_name_for(id: &str, uuid: &str, format: Format, taken: impl Fn(&str) -> bool) -> String {
    let mut base: String = id.chars().map(|c| if c == '/' || c.is_control() { '_' } else { c }).collect();
    if base.starts_with('.') || base.is_empty() {
        base.replace_range(..base.chars().next().map_or(0, char::len_utf8), "_");
        if base.is_empty() {
            base.push('_');
        }
    }
    let ext = format.extension();
    let first = format!("{base}.{ext}");
    if !taken(&first) {
        return first;
    }
    let second = format!("{base}-{uuid}.{ext}");
    if !taken(&second) {
        return second;
    }
    (1..).map(|n| format!("{base}-{uuid}-{n}.{ext}")).find(|n| !taken(n)).unwrap_or(second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nm_model::Value;

    fn profile(dir: DirKind, path: &str, uuid: &str, id: &str) -> FileProfile {
        let mut conn = Connection::default();
        conn.set("connection", "uuid", Value::Str(uuid.into()));
        conn.set("connection", "id", Value::Str(id.into()));
        FileProfile::new(path.into(), dir, Format::Keyfile, &conn)
    }

    #[test]
    fn run_shadows_etc_shadows_usr_lib() {
        let mut s = Store::default();
        let lib = profile(DirKind::Vendor, "/usr/lib/a", "u1", "vendor");
        let etc = profile(DirKind::Saved, "/etc/a", "u1", "admin");
        let run = profile(DirKind::Runtime, "/run/a", "u1", "runtime");
        assert_eq!(s.set_file(Path::new("/usr/lib/a"), Some(lib)), vec![Change::Added(0)]);
        assert_eq!(s.set_file(Path::new("/run/a"), Some(run)), vec![Change::Updated(0)]);
        assert_eq!(s.get(0).unwrap().connection().unwrap().id(), Some("runtime"));
        // A lower layer changing under a shadow is invisible.
        assert_eq!(s.set_file(Path::new("/etc/a"), Some(etc)), vec![]);
        assert_eq!(s.set_file(Path::new("/run/a"), None), vec![Change::Updated(0)]);
        assert_eq!(s.get(0).unwrap().connection().unwrap().id(), Some("admin"));
        assert_eq!(s.set_file(Path::new("/etc/a"), None), vec![Change::Updated(0)]);
        assert_eq!(s.set_file(Path::new("/usr/lib/a"), None), vec![Change::Removed(0)]);
        assert!(s.is_empty());
    }

    #[test]
    fn rewriting_the_same_content_is_silent_and_uuid_moves_are_seen() {
        let mut s = Store::default();
        let p = profile(DirKind::Saved, "/etc/a", "u1", "x");
        assert_eq!(s.set_file(Path::new("/etc/a"), Some(p.clone())), vec![Change::Added(0)]);
        assert_eq!(s.set_file(Path::new("/etc/a"), Some(p)), vec![]);
        let q = profile(DirKind::Saved, "/etc/a", "u2", "x");
        assert_eq!(s.set_file(Path::new("/etc/a"), Some(q)), vec![Change::Removed(0), Change::Added(1)]);
    }

    #[test]
    fn file_names_follow_networkmanager() {
        let none = |_: &str| false;
        assert_eq!(file_name_for("Wired 1", "u", Format::Keyfile, none), "Wired 1.nmconnection");
        assert_eq!(file_name_for("a/b", "u", Format::Toml, none), "a_b.toml");
        assert_eq!(file_name_for(".hidden", "u", Format::Keyfile, none), "_hidden.nmconnection");
        let taken = |n: &str| n == "x.nmconnection" || n == "x-u.nmconnection";
        assert_eq!(file_name_for("x", "u", Format::Keyfile, taken), "x-u-1.nmconnection");
    }
}
