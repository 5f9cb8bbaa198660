//! Names from providers shown on a terminal or in markdown with their control characters
//! visible: a backup named `db\r… keep\e[8m` must not overwrite its own line, hide its action,
//! add a fake line or set the terminal's title. Pure.

use std::fmt;

/// Whether `c` would act on a terminal or reorder the text around it instead of showing:
/// C0 and C1 controls, DEL, and the bidirectional overrides and isolates ("Trojan Source").
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `text` may hold a hidden character: any byte but printable ASCII. One compare a
/// byte, so that a million plain names cost little; the rest are looked at a character at a
/// time.
fn may_hide(text: &str) -> bool {
    !text.bytes().all(|b| b.wrapping_sub(0x20) < 0x5f) && text.chars().any(hidden)
}

/// `text` with each hidden character written as an escape (`\r`, `\n`, `\t`, `\x1b`,
/// `\u{202e}`); the same text when it has none.
pub struct Visible<'a>(pub &'a str);

impl Visible<'_> {
    /// Writes it: the bytes as they are when nothing is hidden (a million names in a plan
    /// are not each formatted).
    pub fn write_to<W: std::io::Write + ?Sized>(&self, out: &mut W) -> std::io::Result<()> {
        match may_hide(self.0) {
            false => out.write_all(self.0.as_bytes()),
            true => write!(out, "{self}"),
        }
    }

    /// How many characters it shows (for column widths).
    pub fn chars(&self) -> usize {
        if self.0.bytes().all(|b| b.wrapping_sub(0x20) < 0x5f) {
            return self.0.len();
        }
        if !may_hide(self.0) {
            return self.0.chars().count();
        }
        self.0
            .chars()
            .map(|c| if hidden(c) { escape(c).len() } else { 1 })
            .sum()
    }
}

fn escape(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        c if (c as u32) < 0x80 => format!("\\x{:02x}", c as u32),
        c => format!("\\u{{{:x}}}", c as u32),
    }
}

impl fmt::Display for Visible<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if !may_hide(self.0) {
            return f.write_str(self.0);
        }
        let mut rest = self.0;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| hidden(c)) {
            f.write_str(&rest[..at])?;
            f.write_str(&escape(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// `text` made safe for a cell of a GitHub or GitLab markdown table: hidden characters
/// escaped, `|` and backslashes escaped, and backticks, `*`, `_`, `<`, `[` and `]` taken
/// literally.
pub fn markdown_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in Visible(text).to_string().chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_show_as_escapes() {
        let forged = "db-2019-precious\r2026-11-01  db-x  keep  last\x1b[8m";
        assert_eq!(
            Visible(forged).to_string(),
            "db-2019-precious\\r2026-11-01  db-x  keep  last\\x1b[8m"
        );
        assert_eq!(
            Visible("a\nb\x1b]0;title\x07").to_string(),
            "a\\nb\\x1b]0;title\\x07"
        );
        assert_eq!(Visible("x\u{202e}gpj.exe").to_string(), "x\\u{202e}gpj.exe");
        assert_eq!(Visible("c1\u{9b}31m").to_string(), "c1\\u{9b}31m");
        for plain in ["db-20261101.sql.gz", "Ünïcödé → ok", "日本語", "–—’"] {
            assert_eq!(Visible(plain).to_string(), plain);
            assert_eq!(Visible(plain).chars(), plain.chars().count());
        }
        assert_eq!(Visible("a\rb").chars(), 4);
    }

    #[test]
    fn markdown_cells_keep_their_table() {
        assert_eq!(markdown_cell("a|b`c`\\d"), "a\\|b\\`c\\`\\\\d");
        assert_eq!(markdown_cell("x\ny"), "x\\\\ny");
        assert_eq!(markdown_cell("<img src=x>"), "\\<img src=x\\>");
    }
}
