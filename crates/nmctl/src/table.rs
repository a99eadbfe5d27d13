//! Aligned columns and `KEY: value` lists, with ANSI colour when asked.

use crate::names::Tone;

/// Whether to colour. Decided once in main: stdout a terminal, NO_COLOR unset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    pub const PLAIN: Style = Style { colour: false };

    /// Wraps `text` in the ANSI codes of `tone` (nothing without colour).
    pub fn paint(&self, text: &str, tone: Tone) -> String {
        let code = match tone {
            Tone::Good => "32",
            Tone::Busy => "33",
            Tone::Bad => "31",
            Tone::Idle => "2",
            Tone::Plain => return text.to_string(),
        };
        if self.colour && !text.is_empty() { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    pub fn bold(&self, text: &str) -> String {
        if self.colour { format!("\x1b[1m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// One table cell: its text and how to colour it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub tone: Tone,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), tone: Tone::Plain }
    }
    pub fn toned(text: impl Into<String>, tone: Tone) -> Cell {
        Cell { text: text.into(), tone }
    }
}

/// "--" for nothing, as nmcli shows it.
pub fn or_dash(s: &str) -> &str {
    if s.is_empty() { "--" } else { s }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Columns two spaces apart, headers bold; the last column is not padded
/// and no line ends in spaces.
pub fn table(style: Style, headers: &[&str], rows: &[Vec<Cell>]) -> String {
    let cols = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(width(&c.text));
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<(String, String)>| {
        let mut l = String::new();
        for (i, (shown, plain)) in cells.iter().enumerate() {
            l.push_str(shown);
            if i + 1 < cells.len() {
                l.push_str(&" ".repeat(widths[i] - width(plain) + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| (style.bold(h), h.to_string())).collect());
    for row in rows {
        line(row.iter().take(cols).map(|c| (style.paint(&c.text, c.tone), c.text.clone())).collect());
    }
    out
}

/// `KEY:` padded to one column, then the value.
pub fn fields(style: Style, rows: &[(String, Cell)]) -> String {
    let w = rows.iter().map(|(k, _)| width(k) + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let key = format!("{k}:");
        let pad = " ".repeat(w - width(&key) + 2);
        out.push_str(format!("{}{pad}{}", style.bold(&key), style.paint(&v.text, v.tone)).trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_lines_do_not_end_in_spaces() {
        let rows = vec![vec![Cell::new("eth0"), Cell::new("")], vec![Cell::new("a-long-name"), Cell::new("x")]];
        assert_eq!(table(Style::PLAIN, &["DEVICE", "STATE"], &rows), "DEVICE       STATE\neth0\na-long-name  x\n");
    }

    #[test]
    fn colour_does_not_change_the_alignment() {
        let style = Style { colour: true };
        let rows = vec![vec![Cell::toned("up", Tone::Good), Cell::new("b")]];
        assert_eq!(table(style, &["S", "T"], &rows), "\x1b[1mS\x1b[0m   \x1b[1mT\x1b[0m\n\x1b[32mup\x1b[0m  b\n");
    }

    #[test]
    fn fields_share_one_column() {
        let rows = vec![("A".to_string(), Cell::new("1")), ("LONGER".to_string(), Cell::new("2"))];
        assert_eq!(fields(Style::PLAIN, &rows), "A:       1\nLONGER:  2\n");
    }
}
