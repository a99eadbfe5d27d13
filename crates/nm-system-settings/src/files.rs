//! Profile files on disk: which names count, the ownership and permission
//! rules (whose files are trusted is the scope's), parsing into a validated
//! profile, and writing one back.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nm_model::{keyfile, toml_codec, validate};

use crate::scope::Scope;
use crate::store::{DirKind, FileProfile, Format};

/// Whether a directory entry is a profile at all (temporaries, backups,
/// certificates and package leftovers are not).
pub fn is_profile_name(name: &str) -> bool {
    !name.starts_with('.') && !name.ends_with('~') && Format::of_path(Path::new(name)).is_some()
}

/// Reads one profile file. `Ok(None)`: not a profile file (ignored quietly).
/// `Err`: a profile file that must be skipped, with the reason to log.
pub fn load(path: &Path, dir: DirKind, scope: &Scope) -> Result<Option<FileProfile>, String> {
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
    if !scope.trusts_file_owner(meta.uid()) {
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

/// Writes a profile atomically, 0600.
pub fn save(profile: &FileProfile) -> std::io::Result<()> {
    nm_runtime::write_atomic(&profile.path, profile.text().as_bytes(), 0o600)
}

/// Creates the scope's writable folders that are missing, with the scope's
/// mode (a user's are 0700).
pub fn create_dirs(scope: &Scope) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::DirBuilderExt;
    for (kind, dir) in &scope.dirs {
        if scope.creates(*kind) && !dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(scope.dir_mode())
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    Ok(())
}
