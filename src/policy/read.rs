//! Typed readers over YAML nodes: each one either returns a value or records a located error
//! saying what was expected. No I/O.

use super::diag::{Diagnostics, did_you_mean};
use super::yaml::{Key, Node, Pos, Value};
use crate::retention::{CalendarDuration, Count};
use std::time::Duration;

/// The entries of one mapping, after unknown keys were reported.
pub struct Fields<'a> {
    pub pos: Pos,
    entries: &'a [(Key, Node)],
}

impl<'a> Fields<'a> {
    pub fn get(&self, name: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &'a Key> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Reads a mapping at `path` (e.g. `keep`), reporting every key not in `known`.
pub fn mapping<'a>(
    node: &'a Node,
    path: &str,
    known: &[&str],
    d: &mut Diagnostics,
) -> Option<Fields<'a>> {
    let Value::Map(entries) = &node.value else {
        d.error(
            node.pos,
            format!("`{path}` must be a mapping, found {}", node.value.kind()),
        );
        return None;
    };
    for (key, _) in entries {
        if !known.contains(&key.name.as_str()) {
            let hint = did_you_mean(&key.name, known.iter().copied());
            let hint = if hint.is_empty() {
                format!("; known keys: {}", known.join(", "))
            } else {
                hint
            };
            d.error(
                key.pos,
                format!("unknown key `{}` in `{path}`{hint}", key.name),
            );
        }
    }
    Some(Fields {
        pos: node.pos,
        entries,
    })
}

pub fn string<'a>(node: &'a Node, path: &str, d: &mut Diagnostics) -> Option<&'a str> {
    match &node.value {
        Value::Str(s) => Some(s),
        other => {
            d.error(
                node.pos,
                format!("`{path}` must be a string, found {}", other.kind()),
            );
            None
        }
    }
}

pub fn boolean(node: &Node, path: &str, d: &mut Diagnostics) -> Option<bool> {
    match node.value {
        Value::Bool(b) => Some(b),
        ref other => {
            d.error(
                node.pos,
                format!("`{path}` must be true or false, found {}", other.kind()),
            );
            None
        }
    }
}

pub fn integer(node: &Node, path: &str, min: i64, d: &mut Diagnostics) -> Option<i64> {
    match node.value {
        Value::Int(i) if i >= min => Some(i),
        Value::Int(i) => {
            d.error(
                node.pos,
                format!("`{path}` must be at least {min}, found {i}"),
            );
            None
        }
        ref other => {
            d.error(
                node.pos,
                format!("`{path}` must be a whole number, found {}", other.kind()),
            );
            None
        }
    }
}

pub fn number(node: &Node, path: &str, d: &mut Diagnostics) -> Option<f64> {
    match node.value {
        Value::Int(i) => Some(i as f64),
        Value::Float(f) => Some(f),
        ref other => {
            d.error(
                node.pos,
                format!("`{path}` must be a number, found {}", other.kind()),
            );
            None
        }
    }
}

/// A count rule: a whole number >= 0, or `unlimited`.
pub fn count(node: &Node, path: &str, d: &mut Diagnostics) -> Option<Count> {
    match &node.value {
        Value::Int(i) if *i >= 0 => u32::try_from(*i).ok().map(Count::Limited).or_else(|| {
            d.error(
                node.pos,
                format!("`{path}` is too large; write `unlimited`"),
            );
            None
        }),
        Value::Str(s) if s == "unlimited" => Some(Count::Unlimited),
        Value::Int(-1) => {
            d.error(
                node.pos,
                format!("`{path}: -1` is restic's spelling; write `{path}: unlimited`"),
            );
            None
        }
        other => {
            d.error(
                node.pos,
                format!(
                    "`{path}` must be a count (0, 1, 2, ...) or `unlimited`, found {}",
                    describe(other)
                ),
            );
            None
        }
    }
}

pub fn duration(node: &Node, path: &str, d: &mut Diagnostics) -> Option<CalendarDuration> {
    match &node.value {
        Value::Str(s) => CalendarDuration::parse(s)
            .map_err(|e| d.error(node.pos, format!("`{path}`: {e}")))
            .ok(),
        Value::Int(i) => {
            d.error(
                node.pos,
                format!("`{path}: {i}` has no unit; write for example `{i}d` or `{i}h`"),
            );
            None
        }
        other => {
            d.error(
                node.pos,
                format!(
                    "`{path}` must be a duration such as `14d` or `1y 2mo`, found {}",
                    other.kind()
                ),
            );
            None
        }
    }
}

/// A list of strings; a single string is accepted as a list of one.
/// An exact duration for timeouts and waits: `250ms`, `30s`, `5min`, `1h`, combinable.
pub fn exact_duration(node: &Node, path: &str, d: &mut Diagnostics) -> Option<Duration> {
    let hint = "write for example `250ms`, `30s` or `5min`";
    let text = match &node.value {
        Value::Str(text) => text,
        Value::Int(i) => {
            d.error(
                node.pos,
                format!("`{path}: {i}` has no unit; write for example `{i}s` or `{i}ms`"),
            );
            return None;
        }
        other => {
            d.error(
                node.pos,
                format!(
                    "`{path}` must be a duration, found {}; {hint}",
                    other.kind()
                ),
            );
            return None;
        }
    };
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        d.error(node.pos, format!("`{path}` is empty; {hint}"));
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: Option<u64> = rest[..digits].parse().ok();
        rest = rest[digits..].trim_start();
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = match &rest[..letters] {
            "ms" => Duration::from_millis(1),
            "s" | "sec" | "secs" => Duration::from_secs(1),
            "min" | "mins" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => Duration::ZERO,
        };
        let (Some(number), false) = (number, unit.is_zero()) else {
            d.error(
                node.pos,
                format!("`{path}: {text}` is not a duration of ms, s, min or h; {hint}"),
            );
            return None;
        };
        total =
            total.saturating_add(unit.saturating_mul(u32::try_from(number).unwrap_or(u32::MAX)));
        rest = rest[letters..].trim_start();
    }
    Some(total)
}

pub fn strings(node: &Node, path: &str, d: &mut Diagnostics) -> Option<Vec<(String, Pos)>> {
    match &node.value {
        Value::Str(s) => Some(vec![(s.clone(), node.pos)]),
        Value::Seq(items) => {
            let mut out = Vec::new();
            for item in items {
                match &item.value {
                    Value::Str(s) => out.push((s.clone(), item.pos)),
                    Value::Int(i) => out.push((i.to_string(), item.pos)),
                    other => d.error(
                        item.pos,
                        format!("items of `{path}` must be strings, found {}", other.kind()),
                    ),
                }
            }
            Some(out)
        }
        other => {
            d.error(
                node.pos,
                format!("`{path}` must be a list of strings, found {}", other.kind()),
            );
            None
        }
    }
}

pub fn regex(node: &Node, path: &str, d: &mut Diagnostics) -> Option<regex::Regex> {
    let text = string(node, path, d)?;
    compile_regex(text, node.pos, path, d)
}

pub fn compile_regex(
    text: &str,
    pos: Pos,
    path: &str,
    d: &mut Diagnostics,
) -> Option<regex::Regex> {
    regex::Regex::new(&ascii_digits(text))
        .map_err(|e| {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or(&detail).trim().to_string();
            d.error(
                pos,
                format!("`{path}` is not a valid regular expression: {last}"),
            );
        })
        .ok()
}

/// `\d` as `0-9` (and `\D` outside a class as `[^0-9]`): the digits of backup names and
/// timestamps. The regex crate's Unicode `\d` (every script's digits) costs about 0.4 MB per
/// compiled pattern, which a daemon with a hundred policies holds all the time.
pub fn ascii_digits(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    // Depth of `[...]` classes (they nest); `]` right after `[` or `[^` is a literal.
    let mut depth = 0usize;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_start = std::mem::take(&mut class_start);
        match c {
            '\\' => match chars.next() {
                Some('d') if depth > 0 => out.push_str("0-9"),
                Some('d') => out.push_str("[0-9]"),
                Some('D') if depth == 0 => out.push_str("[^0-9]"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' => {
                depth += 1;
                class_start = true;
                out.push(c);
            }
            '^' if at_start => {
                class_start = true;
                out.push(c);
            }
            ']' if depth > 0 && !at_start => {
                depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

fn describe(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("`{s}`"),
        Value::Int(i) => i.to_string(),
        other => other.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::ascii_digits;

    #[test]
    fn digit_classes_become_ascii_and_nothing_else_changes() {
        for (pattern, ascii) in [
            (
                r"^db-(?P<ts>\d{8}T\d{6}Z)\.sql$",
                r"^db-(?P<ts>[0-9]{8}T[0-9]{6}Z)\.sql$",
            ),
            (r"[\d_]+", r"[0-9_]+"),
            (r"[^\d]", r"[^0-9]"),
            (r"\D+", r"[^0-9]+"),
            (r"[\D]", r"[\D]"),
            (r"\\d", r"\\d"),
            (r"[]\d]", r"[]0-9]"),
            (r"[^]\d]x\d", r"[^]0-9]x[0-9]"),
            (r"\w+\s\.", r"\w+\s\."),
            (r"\p{Nd}", r"\p{Nd}"),
            ("\\", "\\"),
        ] {
            assert_eq!(ascii_digits(pattern), ascii, "{pattern}");
        }
        let re = regex::Regex::new(&ascii_digits(r"^\d+$")).unwrap();
        assert!(re.is_match("2026") && !re.is_match("٢٠٢٦"));
    }
}
