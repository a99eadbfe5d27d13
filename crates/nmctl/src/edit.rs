//! Profiles as files for people: keyfile or TOML text (export, import,
//! edit), a private temp file, and the editor run directly (no shell).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nm_model::{Connection, keyfile, toml_codec, validate};

use crate::cli::Format;

pub fn encode(conn: &Connection, format: Format) -> String {
    match format {
        Format::Keyfile => keyfile::write(conn),
        Format::Toml => toml_codec::write(conn),
    }
}

/// Parses and validates a profile's text; errors read `line N: reason`
/// or `setting.property: reason`.
pub fn decode(text: &str, format: Format) -> Result<Connection, String> {
    let conn = match format {
        Format::Keyfile => keyfile::parse(text).map_err(|e| e.to_string())?,
        Format::Toml => toml_codec::parse(text).map_err(|e| e.to_string())?,
    };
    validate::normalize_and_validate(conn).map_err(|e| match find_line(text, &e.setting, &e.property) {
        Some(line) => format!("line {line}: {e}"),
        None => e.to_string(),
    })
}

/// The line of `property` inside the group of `setting` (keyfile or TOML),
/// or of the group itself when the property is missing, to point at what a
/// validation error is about.
fn find_line(text: &str, setting: &str, property: &str) -> Option<usize> {
    let groups: Vec<String> = {
        let spec = nm_model::schema::setting(setting);
        let mut g = vec![setting.to_string()];
        if let Some(alias) = spec.and_then(|s| s.alias) {
            g.push(alias.to_string());
        }
        g
    };
    let keys: Vec<&str> = match property {
        "address-data" => vec!["address", "addresses"],
        "route-data" => vec!["route", "routes"],
        p => vec![p],
    };
    let mut in_group = false;
    let mut group_line = None;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if let Some(name) = l.strip_prefix('[') {
            let name = name.trim_end_matches(']').trim();
            in_group = groups.iter().any(|g| g == name);
            if in_group && group_line.is_none() {
                group_line = Some(i + 1);
            }
            continue;
        }
        let key = l.split(['=', ' ']).next().unwrap_or_default().trim();
        if in_group
            && keys
                .iter()
                .any(|k| key == *k || key.strip_prefix(k).is_some_and(|n| n.chars().all(|c| c.is_ascii_digit())))
        {
            return Some(i + 1);
        }
    }
    group_line
}

pub fn format_of(path: &Path) -> Format {
    if path.extension().is_some_and(|e| e == "toml") { Format::Toml } else { Format::Keyfile }
}

fn extension(format: Format) -> &'static str {
    match format {
        Format::Keyfile => "nmconnection",
        Format::Toml => "toml",
    }
}

/// Writes `text` to a new file only the user can read (0600): a profile may
/// hold private data.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// A new temp file `nmctl-<id>-<pid>-<n>.<ext>` holding `text`, mode 0600.
pub fn temp_file(id: &str, format: Format, text: &str) -> Result<PathBuf> {
    let safe: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let dir = std::env::temp_dir();
    for n in 0..1000 {
        let path = dir.join(format!("nmctl-{safe}-{}-{n}.{}", std::process::id(), extension(format)));
        let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path);
        match created {
            Ok(mut f) => {
                f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    anyhow::bail!("no free temp file name in {}", dir.display())
}

/// `$VISUAL`, else `$EDITOR`, else `vi`, split into program and arguments
/// at white space (it is run directly, not through a shell).
pub fn editor_command(visual: Option<&str>, editor: Option<&str>) -> Vec<String> {
    let chosen = [visual, editor].into_iter().flatten().find(|e| !e.trim().is_empty()).unwrap_or("vi");
    chosen.split_whitespace().map(str::to_string).collect()
}

/// Runs the editor on `path` and waits for it.
pub async fn run_editor(path: &Path) -> Result<()> {
    let cmd = editor_command(std::env::var("VISUAL").ok().as_deref(), std::env::var("EDITOR").ok().as_deref());
    let (program, args) = cmd.split_first().context("no editor")?;
    let (program, args, path) = (program.clone(), args.to_vec(), path.to_path_buf());
    let status =
        tokio::task::spawn_blocking(move || std::process::Command::new(&program).args(&args).arg(&path).status())
            .await
            .context("running the editor")?
            .with_context(|| format!("starting the editor {}", cmd.join(" ")))?;
    if !status.success() {
        anyhow::bail!("the editor {} exited with {status}", cmd.join(" "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = "[connection]\nid=office\nuuid=0b5c1a2e-4b8f-4a6e-9c51-3f1f3f7f2a10\ntype=ethernet\n\n\
                           [ethernet]\n\n[ipv4]\naddress1=192.0.2.10/24\nmethod=manual\n\n[ipv6]\nmethod=disabled\n";

    #[test]
    fn keyfile_round_trip() {
        let conn = decode(PROFILE, Format::Keyfile).unwrap();
        assert_eq!(conn.id(), Some("office"));
        let again = decode(&encode(&conn, Format::Keyfile), Format::Keyfile).unwrap();
        assert_eq!(again, conn);
        let toml = decode(&encode(&conn, Format::Toml), Format::Toml).unwrap();
        assert_eq!(toml, conn);
    }

    #[test]
    fn errors_name_the_line() {
        let bad = PROFILE.replace("address1=192.0.2.10/24", "address1=192.0.2.300/24");
        let err = decode(&bad, Format::Keyfile).unwrap_err();
        assert!(err.starts_with("line 9: "), "{err}");
        let invalid = PROFILE.replace("address1=192.0.2.10/24\n", "");
        let err = decode(&invalid, Format::Keyfile).unwrap_err();
        assert_eq!(err, "line 8: ipv4.addresses: this property cannot be empty for 'method=manual'");
    }

    #[test]
    fn the_editor_comes_from_visual_then_editor_then_vi() {
        assert_eq!(editor_command(Some("code --wait"), Some("nano")), vec!["code", "--wait"]);
        assert_eq!(editor_command(Some(" "), Some("nano")), vec!["nano"]);
        assert_eq!(editor_command(None, None), vec!["vi"]);
    }

    #[test]
    fn temp_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let p = temp_file("a/b c", Format::Keyfile, "x").unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(p.file_name().unwrap().to_string_lossy().starts_with("nmctl-a_b_c-"));
        std::fs::remove_file(p).unwrap();
    }
}
