//! Profile files on disk: which names count, the ownership and permission
//! rules, parsing into a validated profile, and writing one back.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nm_model::{keyfile, toml_codec, validate};
use nm_runtime::Paths;

use crate::store::{DirKind, FileProfile, Format};

pub const ETC_DIR: &str = "/etc/NetworkManager/system-connections";
pub const RUN_DIR: &str = "/run/NetworkManager/system-connections";
pub const USR_LIB_DIR: &str = "/usr/lib/NetworkManager/system-connections";

/// The three profile directories under the root, lowest precedence first.
pub fn profile_dirs(paths: &Paths) -> [(DirKind, PathBuf); 3] {
    [
        (DirKind::UsrLib, paths.path(USR_LIB_DIR)),
        (DirKind::Etc, paths.path(ETC_DIR)),
        (DirKind::Run, paths.path(RUN_DIR)),
    ]
}

/// Whether a directory entry is a profile at all (temporaries, backups,
/// certificates and package leftovers are not).
pub fn is_profile_name(name: &str) -> bool {
    !name.starts_with('.') && !name.ends_with('~') && Format::of_path(Path::new(name)).is_some()
}

/// Reads one profile file. `Ok(None)`: not a profile file (ignored quietly).
/// `Err`: a profile file that must be skipped, with the reason to log.
pub fn load(path: &Path, dir: DirKind) -> Result<Option<FileProfile>, String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if !is_profile_name(name) {
        return Ok(None);
    }
    let Some(format) = Format::of_path(path) else {
        return Ok(None);
    };
    // lstat: a symlink is not followed into somebody else's file.
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    let own_uid = effective_uid();
    if meta.uid() != 0 && meta.uid() != own_uid {
        return Err(format!("File owner ({}) is insecure", meta.uid()));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!("File permissions ({mode:04o}) are insecure"));
    }
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut conn = match format {
        Format::Keyfile => keyfile::parse(&text).map_err(|e| e.to_string())?,
        Format::Toml => toml_codec::parse(&text).map_err(|e| e.to_string())?,
    };
    if conn.uuid().is_none_or(str::is_empty) {
        // NetworkManager derives a stable uuid from the file's path.
        let uuid = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, path.to_string_lossy().as_bytes());
        conn.set("connection", "uuid", nm_model::Value::Str(uuid.to_string()));
    }
    let conn = validate::normalize_and_validate(conn).map_err(|e| match line_of(&text, &e) {
        Some(line) => format!("line {line}: {e}"),
        None => e.to_string(),
    })?;
    Ok(Some(FileProfile::new(path.to_path_buf(), dir, format, &conn)))
}

/// The line of the key a validation error is about, when the file has one.
fn line_of(text: &str, e: &nm_model::PropertyError) -> Option<usize> {
    let wanted = match e.property.as_str() {
        "addresses" => "address",
        "routes" => "route",
        p => p,
    };
    text.lines().position(|l| l.trim_start().starts_with(wanted)).map(|i| i + 1)
}

fn effective_uid() -> u32 {
    // The owner of our own /proc entry is our effective uid.
    fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

/// Writes a profile atomically, 0600.
pub fn save(profile: &FileProfile) -> std::io::Result<()> {
    nm_runtime::write_atomic(&profile.path, profile.text().as_bytes(), 0o600)
}
