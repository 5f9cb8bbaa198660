//! Located diagnostics (`file:line:column: message`) and "did you mean" suggestions. No I/O.

use super::yaml::Pos;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one file, with the offending source line for context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub pos: Pos,
    pub message: String,
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// `file:line:col: message`, then the source line and a caret under the column.
    pub fn render(&self) -> String {
        let mut out = self.to_string();
        if let Some(line) = &self.source_line {
            let caret = " ".repeat(self.pos.column.saturating_sub(1) as usize);
            out.push_str(&format!("\n    {line}\n    {caret}^"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.pos.line,
            self.pos.column,
            self.message
        )
    }
}

/// Collects the diagnostics of one file.
pub struct Diagnostics<'a> {
    file: &'a Path,
    source: &'a str,
    show_source: bool,
    pub list: Vec<Diagnostic>,
}

impl<'a> Diagnostics<'a> {
    pub fn new(file: &'a Path, source: &'a str) -> Diagnostics<'a> {
        Diagnostics {
            file,
            source,
            show_source: true,
            list: Vec::new(),
        }
    }

    /// Diagnostics that never quote the source: for the daemon config, whose lines may hold
    /// a secret written where a reference belongs.
    pub fn without_source(file: &'a Path) -> Diagnostics<'a> {
        Diagnostics {
            file,
            source: "",
            show_source: false,
            list: Vec::new(),
        }
    }

    pub fn file(&self) -> &'a Path {
        self.file
    }

    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        let source_line = self
            .source
            .lines()
            .nth(pos.line.saturating_sub(1) as usize)
            .filter(|_| self.show_source)
            .map(|l| l.replace('\t', " "));
        self.list.push(Diagnostic {
            file: self.file.to_path_buf(),
            pos,
            message: message.into(),
            source_line,
        });
    }
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let word_lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word_lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `; did you mean `x`?` or nothing.
pub fn did_you_mean<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    closest(word, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        let keys = ["last", "hourly", "daily", "weekly", "within_daily"];
        assert_eq!(closest("dailly", keys), Some("daily"));
        assert_eq!(closest("Weekly", keys), Some("weekly"));
        assert_eq!(closest("within-daily", keys), Some("within_daily"));
        assert_eq!(closest("retention", keys), None);
    }

    #[test]
    fn renders_location_line_and_caret() {
        let mut d = Diagnostics::new(Path::new("p.yaml"), "keep:\n  dailly: 7\n");
        d.error(Pos { line: 2, column: 3 }, "unknown key");
        assert_eq!(
            d.list[0].render(),
            "p.yaml:2:3: unknown key\n      dailly: 7\n      ^"
        );
    }
}
