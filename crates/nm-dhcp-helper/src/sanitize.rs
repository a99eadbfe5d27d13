//! Checks for every string a DHCP server hands us (DESIGN.md §6, issue 4
//! item 6). A value that fails is dropped and logged (escaped, shortened),
//! never repaired: nm-core, the resolver and dispatcher scripts only ever see
//! values that passed.
//!
//! - Names (host name, domain name, search list): DNS syntax: labels of
//!   1–63 letters, digits, `-` or `_`, not starting or ending with `-`, at
//!   most 253 characters in all; one trailing dot is removed.
//! - Free text (root path, NIS domain, TFTP server, …): printable ASCII only,
//!   at most 255 bytes, and none of the characters a shell or a quoted
//!   context would give meaning to (`` $ ` \ " ' ; | < > ( ) { } ``).

use std::fmt;

/// Longest DNS name in text form (RFC 1035: 255 octets on the wire).
pub const MAX_NAME: usize = 253;
/// Longest DNS label.
pub const MAX_LABEL: usize = 63;
/// Longest free-text value (one DHCP option without concatenation).
pub const MAX_TEXT: usize = 255;
/// Characters refused in free text even though they are printable.
const SHELL_META: &[char] = &['$', '`', '\\', '"', '\'', ';', '|', '<', '>', '(', ')', '{', '}'];

/// Why a value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    Empty,
    TooLong,
    NotAscii,
    Control,
    BadLabel,
    ShellMeta,
    /// Not text: an address, number or structure out of range.
    BadValue,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reject::Empty => "empty",
            Reject::TooLong => "too long",
            Reject::NotAscii => "not ASCII",
            Reject::Control => "control character",
            Reject::BadLabel => "not a DNS name",
            Reject::ShellMeta => "shell metacharacter",
            Reject::BadValue => "value out of range",
        })
    }
}

/// Whether one label (bytes, as on the wire) is a valid host-name label.
pub fn label_ok(label: &[u8]) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL
        && label.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        && label.first() != Some(&b'-')
        && label.last() != Some(&b'-')
}

/// A DNS name in text form, checked; the trailing dot is removed.
pub fn dns_name(raw: &str) -> Result<String, Reject> {
    precheck(raw)?;
    let name = raw.strip_suffix('.').unwrap_or(raw);
    if name.is_empty() {
        return Err(Reject::Empty);
    }
    if name.len() > MAX_NAME {
        return Err(Reject::TooLong);
    }
    if !name.split('.').all(|l| label_ok(l.as_bytes())) {
        return Err(Reject::BadLabel);
    }
    Ok(name.to_owned())
}

/// A DNS name given as its labels (wire form, e.g. from option 119).
pub fn dns_labels<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Result<String, Reject> {
    let mut out = String::new();
    for label in labels {
        if !label.is_ascii() {
            return Err(Reject::NotAscii);
        }
        if label.iter().any(u8::is_ascii_control) {
            return Err(Reject::Control);
        }
        if !label_ok(label) {
            return Err(Reject::BadLabel);
        }
        if !out.is_empty() {
            out.push('.');
        }
        // Checked above: ASCII letters, digits, '-' and '_' only.
        out.extend(label.iter().map(|b| char::from(*b)));
        if out.len() > MAX_NAME {
            return Err(Reject::TooLong);
        }
    }
    if out.is_empty() {
        return Err(Reject::Empty);
    }
    Ok(out)
}

/// One or more DNS names separated by spaces (servers put several domains
/// into option 15 that way). Invalid names are left out; the reasons come back
/// for the log.
pub fn dns_name_list(raw: &str) -> (Vec<String>, Vec<Reject>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    if let Err(e) = precheck_len(raw, MAX_TEXT) {
        return (ok, vec![e]);
    }
    for part in raw.split(' ').filter(|p| !p.is_empty()) {
        match dns_name(part) {
            Ok(n) if !ok.contains(&n) => ok.push(n),
            Ok(_) => {}
            Err(e) => bad.push(e),
        }
    }
    if ok.is_empty() && bad.is_empty() {
        bad.push(Reject::Empty);
    }
    (ok, bad)
}

/// Free text: printable ASCII without shell metacharacters, at most 255 bytes.
pub fn text(raw: &str) -> Result<String, Reject> {
    precheck_len(raw, MAX_TEXT)?;
    if raw.chars().any(|c| SHELL_META.contains(&c)) {
        return Err(Reject::ShellMeta);
    }
    Ok(raw.to_owned())
}

/// Free text given as bytes (options the codec keeps as `Vec<u8>`).
pub fn text_bytes(raw: &[u8]) -> Result<String, Reject> {
    let s = std::str::from_utf8(raw).map_err(|_| Reject::NotAscii)?;
    // Servers often NUL-terminate strings; one trailing NUL is not content.
    text(s.strip_suffix('\0').unwrap_or(s))
}

fn precheck(raw: &str) -> Result<(), Reject> {
    precheck_len(raw, MAX_NAME + 1)
}

fn precheck_len(raw: &str, max: usize) -> Result<(), Reject> {
    if raw.is_empty() {
        return Err(Reject::Empty);
    }
    if raw.len() > max {
        return Err(Reject::TooLong);
    }
    if !raw.is_ascii() {
        return Err(Reject::NotAscii);
    }
    if raw.bytes().any(|b| b.is_ascii_control()) {
        return Err(Reject::Control);
    }
    Ok(())
}

/// A value as it may appear in a log line: escaped, at most 64 characters.
pub fn for_log(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out: String = s.chars().take(64).flat_map(char::escape_debug).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(dns_name("host-1.example.com.").unwrap(), "host-1.example.com");
        assert_eq!(dns_name("_srv.lab.test").unwrap(), "_srv.lab.test");
        assert_eq!(dns_name("$(touch /tmp/pwned)"), Err(Reject::BadLabel));
        assert_eq!(dns_name("a;reboot"), Err(Reject::BadLabel));
        assert_eq!(dns_name("a..b"), Err(Reject::BadLabel));
        assert_eq!(dns_name("-a.b"), Err(Reject::BadLabel));
        assert_eq!(dns_name("a\nb"), Err(Reject::Control));
        assert_eq!(dns_name("é.com"), Err(Reject::NotAscii));
        assert_eq!(dns_name(""), Err(Reject::Empty));
        assert_eq!(dns_name("."), Err(Reject::Empty));
        assert_eq!(dns_name(&"a".repeat(64)), Err(Reject::BadLabel));
        let long = vec!["abcdefghi"; 30].join(".");
        assert_eq!(dns_name(&long), Err(Reject::TooLong));
        let ok = vec!["a".repeat(63); 3].join(".");
        assert!(dns_name(&ok).is_ok());
    }

    #[test]
    fn labels_from_the_wire() {
        assert_eq!(dns_labels([&b"lab"[..], b"test"]).unwrap(), "lab.test");
        assert_eq!(dns_labels([&b"$(id)"[..], b"test"]), Err(Reject::BadLabel));
        assert_eq!(dns_labels([&b"a\x00b"[..]]), Err(Reject::Control));
        assert_eq!(dns_labels([&b"\xff"[..]]), Err(Reject::NotAscii));
        assert_eq!(dns_labels(std::iter::empty::<&[u8]>()), Err(Reject::Empty));
    }

    #[test]
    fn name_lists() {
        let (ok, bad) = dns_name_list("a.test  b.test a.test `x`");
        assert_eq!(ok, ["a.test", "b.test"]);
        assert_eq!(bad, [Reject::BadLabel]);
        assert_eq!(dns_name_list("   ").1, [Reject::Empty]);
    }

    #[test]
    fn free_text() {
        assert_eq!(text("198.18.0.1:/srv/root").unwrap(), "198.18.0.1:/srv/root");
        assert_eq!(text("http://wpad.lab.test/wpad.dat?a=1&b=2").unwrap(), "http://wpad.lab.test/wpad.dat?a=1&b=2");
        for bad in ["$(touch /tmp/pwned)", "`id`", "a;b", "a|b", "x'y", "a\\b", "a>b"] {
            assert_eq!(text(bad), Err(Reject::ShellMeta), "{bad}");
        }
        assert_eq!(text("a\x1bb"), Err(Reject::Control));
        assert_eq!(text(&"x".repeat(256)), Err(Reject::TooLong));
        assert_eq!(text_bytes(b"pxelinux.0\0").unwrap(), "pxelinux.0");
        assert_eq!(text_bytes(b"\xc3\x28"), Err(Reject::NotAscii));
    }

    #[test]
    fn log_form_is_escaped_and_short() {
        assert_eq!(for_log(b"a\nb"), "a\\nb");
        assert!(for_log(&[b'x'; 100]).ends_with('…'));
    }
}
