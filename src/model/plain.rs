//! One backup of a listing read by hand when it has the plain form every provider and `list`
//! write: keys and strings without escapes, `created_at` as `2026-11-22T23:00:00Z`, sizes as
//! plain integers. Anything else (an escape, another time form, an unknown or repeated field,
//! a number serde would not read as a size, the end of the slice) is left to serde, so every
//! answer other than the plain one, and every error, is serde's. A test compares the two on
//! generated backups.

use super::{Backup, Status, Text};

/// The backup at the start of `bytes` (after JSON whitespace) and the bytes up to and with its
/// closing brace, as serde's `StreamDeserializer` would read it; `None` when it is not of the
/// plain form.
pub(super) fn backup(bytes: &[u8]) -> Option<(Backup, usize)> {
    let mut r = Reader { bytes, pos: 0 };
    r.whitespace();
    r.expect(b'{')?;
    let (mut id, mut group, mut created_at, mut status) = (None, None, None, None);
    let (mut name, mut size, mut tags, mut kind, mut live) = (None, None, None, None, None);
    loop {
        r.whitespace();
        let key = r.raw_string()?;
        r.whitespace();
        r.expect(b':')?;
        r.whitespace();
        match key {
            b"id" => fill(&mut id, r.string()?.into())?,
            b"group" => fill(&mut group, r.string()?.into())?,
            b"created_at" => fill(
                &mut created_at,
                crate::timestamp::utc_seconds(r.raw_string()?)?,
            )?,
            b"status" => fill(
                &mut status,
                match r.raw_string()? {
                    b"complete" => Status::Complete,
                    b"failed" => Status::Failed,
                    b"in_progress" => Status::InProgress,
                    b"unknown" => Status::Unknown,
                    _ => return None,
                },
            )?,
            b"name" => fill(&mut name, r.or_null(|r| r.string().map(Text::from))?)?,
            b"size" => fill(&mut size, r.or_null(Reader::size)?)?,
            b"tags" => fill(&mut tags, r.strings()?)?,
            b"kind" => fill(&mut kind, r.or_null(|r| r.string().map(Box::from))?)?,
            b"live" => fill(&mut live, r.boolean()?)?,
            _ => return None,
        }
        r.whitespace();
        match r.next()? {
            b',' => {}
            b'}' => break,
            _ => return None,
        }
    }
    let backup = Backup {
        id: id?,
        group: group?,
        created_at: created_at?,
        status: status?,
        name: name.flatten(),
        size: size.flatten(),
        tags: tags.unwrap_or_default(),
        kind: kind.flatten().map(std::sync::Arc::from),
        live: live.unwrap_or(false),
    };
    Some((backup, r.pos))
}

/// The plain backups at the start of `bytes`, each followed by `,` (the last one of the slice,
/// or one of another form, is left): appended to `backups`, and how many bytes they take with
/// their commas and the whitespace after them, up to where the next backup starts.
pub(super) fn run(bytes: &[u8], backups: &mut Vec<Backup>) -> usize {
    let mut done = 0;
    while let Some((backup, used)) = backup(&bytes[done..]) {
        let Some(next) = super::after_comma(bytes, done + used) else {
            break;
        };
        backups.push(backup);
        done = next;
    }
    done
}

/// Where the first `"`, `\` or control character is (what ends or interrupts a plain
/// string), looked for eight bytes at a time: ids and names are 10 to 30 bytes.
fn special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    // Each byte's high bit set where `v`'s byte is zero (exact for the lowest such byte).
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let (words, rest) = bytes.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let x = u64::from_le_bytes(*word);
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let found =
            zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\'))) | below_space;
        if found != 0 {
            return Some(i * 8 + found.trailing_zeros() as usize / 8);
        }
    }
    let at = rest
        .iter()
        .position(|&b| matches!(b, b'"' | b'\\' | 0..0x20))?;
    Some(words.len() * 8 + at)
}

/// A field seen once: serde refuses a repeated one.
fn fill<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    fn whitespace(&mut self) {
        self.pos += super::whitespace(&self.bytes[self.pos..]);
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let found = self.bytes[self.pos..].starts_with(word);
        if found {
            self.pos += word.len();
        }
        found
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.raw_string()?).ok()
    }

    /// The bytes of a string without escapes or control characters, not checked for UTF-8:
    /// for keys and values compared with ASCII words (anything else is refused).
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.pos;
        let end = start + special(&self.bytes[start..])?;
        (self.bytes[end] == b'"').then_some(())?;
        self.pos = end + 1;
        Some(&self.bytes[start..end])
    }

    /// `null` as `Some(None)`, or what `value` reads.
    fn or_null<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.literal(b"null") {
            Some(None)
        } else {
            value(self).map(Some)
        }
    }

    /// A size as serde reads a `u64`: digits without a leading zero, at most 19 of them (never
    /// beyond `u64::MAX`); a fraction or exponent after them is refused by the caller, which
    /// expects `,` or `}` next.
    fn size(&mut self) -> Option<u64> {
        let start = self.pos;
        let mut value = 0u64;
        while let Some(&d @ b'0'..=b'9') = self.bytes.get(self.pos) {
            if self.pos - start == 19 {
                return None;
            }
            value = value * 10 + u64::from(d - b'0');
            self.pos += 1;
        }
        let digits = self.pos - start;
        (digits == 1 || (digits > 1 && self.bytes[start] != b'0')).then_some(value)
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.literal(b"true") {
            Some(true)
        } else if self.literal(b"false") {
            Some(false)
        } else {
            None
        }
    }

    /// `[` strings separated by `,` `]`.
    fn strings(&mut self) -> Option<Box<[String]>> {
        self.expect(b'[')?;
        let mut strings = Vec::new();
        self.whitespace();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Some(strings.into());
        }
        loop {
            self.whitespace();
            strings.push(self.string()?.to_string());
            self.whitespace();
            match self.next()? {
                b',' => {}
                b']' => return Some(strings.into()),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A member of a generated backup: the key's JSON, the value's JSON, and whether both are
    /// of the plain form.
    type Member = (String, String, bool);

    /// A string value: escapes, control and multi-byte characters make it not plain.
    fn text(plain_only: bool) -> impl Strategy<Value = (String, bool)> {
        let wild = if plain_only {
            "[a-z]{0,4}"
        } else {
            "[a-zé€😀\"\\\\\u{1}\n\u{7f} ,{}]{0,12}"
        };
        prop_oneof![3 => "[a-z0-9 ./:-]{0,30}", 1 => wild].prop_map(|s| {
            let json = serde_json::to_string(&s).unwrap();
            let plain = !json[1..json.len() - 1].contains('\\');
            (json, plain)
        })
    }

    /// One of `values` (only the plain ones when `plain_only`).
    fn choice(values: &[(&'static str, bool)], plain_only: bool) -> BoxedStrategy<(String, bool)> {
        let values: Vec<_> = values
            .iter()
            .filter(|(_, plain)| *plain || !plain_only)
            .copied()
            .collect();
        prop::sample::select(values)
            .prop_map(|(v, plain)| (v.to_string(), plain))
            .boxed()
    }

    /// A member with this key (`extra` and an escaped `id` are never plain).
    fn member_of(key: &'static str, plain_only: bool) -> BoxedStrategy<Member> {
        let string = |null_is_plain: bool| match (plain_only, null_is_plain) {
            (true, false) => text(true).boxed(),
            (true, true) => {
                prop_oneof![3 => text(true), 1 => Just(("null".to_string(), true))].boxed()
            }
            (false, _) => prop_oneof![
                3 => text(false),
                1 => Just(("null".to_string(), null_is_plain)),
                1 => choice(&[("1", false), ("[]", false)], false),
            ]
            .boxed(),
        };
        let value = match key {
            "id" | "group" => string(false),
            "name" | "kind" => string(true),
            "created_at" => choice(
                &[
                    ("\"2026-11-22T23:00:00Z\"", true),
                    ("\"2024-02-29T00:00:59Z\"", true),
                    ("\"2024-03-01T10:00:00+02:00\"", false),
                    ("\"2024-03-01T10:00:00.5Z\"", false),
                    ("\"2023-02-29T00:00:00Z\"", false),
                    ("\"2016-12-31T23:59:60Z\"", false),
                    ("\"2026-11-22\"", false),
                    ("null", false),
                ],
                plain_only,
            ),
            "status" => choice(
                &[
                    ("\"complete\"", true),
                    ("\"failed\"", true),
                    ("\"in_progress\"", true),
                    ("\"unknown\"", true),
                    ("\"done\"", false),
                    ("\"Complete\"", false),
                    ("\"compl\\u0065te\"", false),
                ],
                plain_only,
            ),
            "size" => choice(
                &[
                    ("0", true),
                    ("12", true),
                    ("9999999999999999999", true),
                    ("null", true),
                    ("18446744073709551615", false),
                    ("18446744073709551616", false),
                    ("00", false),
                    ("01", false),
                    ("-1", false),
                    ("1.5", false),
                    ("1e3", false),
                    ("1E3", false),
                    ("\"12\"", false),
                ],
                plain_only,
            ),
            "tags" => choice(
                &[
                    ("[]", true),
                    ("[ ]", true),
                    ("[\"a\"]", true),
                    ("[ \"a\" ,\n\"b c\" ]", true),
                    ("null", false),
                    ("[\"a\",]", false),
                    ("[1]", false),
                    ("[\"\\u0041\"]", false),
                ],
                plain_only,
            ),
            "live" => choice(
                &[
                    ("true", true),
                    ("false", true),
                    ("null", false),
                    ("\"true\"", false),
                    ("True", false),
                    ("truex", false),
                ],
                plain_only,
            ),
            _ => choice(&[("1", false), ("\"x\"", false)], false),
        };
        let json_key = match key {
            "escaped id" => "\"\\u0069d\"".to_string(),
            _ => format!("\"{key}\""),
        };
        let plain_key = !matches!(key, "extra" | "escaped id");
        value
            .prop_map(move |(v, plain)| (json_key.clone(), v, plain && plain_key))
            .boxed()
    }

    /// Members of other fields: any (`extra` and an escaped key too), or with `plain_only`
    /// plain members of optional fields, each at most once.
    fn others(plain_only: bool) -> BoxedStrategy<Vec<Member>> {
        if plain_only {
            prop::sample::subsequence(&["name", "kind", "size", "tags", "live"][..], 0..=5)
                .prop_flat_map(|keys| {
                    keys.into_iter()
                        .map(|key| member_of(key, true))
                        .collect::<Vec<_>>()
                })
                .boxed()
        } else {
            let keys = &[
                "id",
                "group",
                "name",
                "kind",
                "created_at",
                "status",
                "size",
                "tags",
                "live",
                "extra",
                "escaped id",
            ][..];
            prop::collection::vec(
                prop::sample::select(keys).prop_flat_map(|key| member_of(key, false)),
                0..6,
            )
            .boxed()
        }
    }

    fn whitespace() -> impl Strategy<Value = &'static str> {
        prop::sample::select(&["", "", " ", "\n", "\t", "\r\n  "][..])
    }

    /// The four required members, each from its own values.
    fn required(plain_only: bool) -> impl Strategy<Value = Vec<Member>> {
        ["id", "group", "created_at", "status"]
            .map(|key| member_of(key, plain_only))
            .prop_map(Vec::from)
    }

    /// A backup object (and what follows it), and whether it is of the plain form: each
    /// required field once, every member plain, no field twice (with `plain_only`, always).
    fn backup_text(plain_only: bool) -> impl Strategy<Value = (String, bool)> {
        let members = (required(plain_only), others(plain_only))
            .prop_map(|(mut required, more)| {
                required.extend(more);
                required
            })
            .prop_shuffle();
        (
            members,
            prop::collection::vec((whitespace(), whitespace()), 16),
            whitespace(),
            prop::sample::select(&["", ",", "]", "}", " x", "{"][..]),
        )
            .prop_map(|(members, spaces, before, after)| {
                let mut text = format!("{before}{{");
                let mut keys = Vec::new();
                let mut plain = true;
                for (i, ((key, value, member_plain), (ws1, ws2))) in
                    members.iter().zip(spaces).enumerate()
                {
                    if i > 0 {
                        text.push(',');
                    }
                    text.push_str(&format!("{ws1}{key}{ws2}:{ws1}{value}{ws2}"));
                    plain &= member_plain & !keys.contains(key);
                    keys.push(key.clone());
                }
                text.push_str(&format!("}}{after}"));
                for required in ["\"id\"", "\"group\"", "\"created_at\"", "\"status\""] {
                    plain &= keys.iter().any(|k| k == required);
                }
                (text, plain)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever the hand reading answers is serde's answer, to the byte; and it answers
        /// every backup of the plain form.
        #[test]
        fn plain_reading_is_serde_reading((text, plain) in backup_text(false)) {
            let mut serde = serde_json::Deserializer::from_slice(text.as_bytes()).into_iter::<Backup>();
            let by_serde = serde.next();
            match backup(text.as_bytes()) {
                Some((read, used)) => {
                    prop_assert_eq!(by_serde.unwrap().ok(), Some(read), "{}", text);
                    prop_assert_eq!(serde.byte_offset(), used, "{}", text);
                }
                None => prop_assert!(!plain, "refused a plain backup: {}", text),
            }
        }

        /// Plain backups: read by hand, as serde reads them.
        #[test]
        fn plain_backups_are_read_by_hand((text, plain) in backup_text(true)) {
            let mut serde = serde_json::Deserializer::from_slice(text.as_bytes()).into_iter::<Backup>();
            let by_serde = serde.next().unwrap().ok();
            let read = backup(text.as_bytes());
            prop_assert!(plain);
            let (read, used) = read.unwrap_or_else(|| panic!("refused: {text}"));
            prop_assert_eq!(by_serde, Some(read), "{}", text);
            prop_assert_eq!(serde.byte_offset(), used, "{}", text);
        }

        /// Every prefix of a plain backup is refused (the reader asks for more of the file).
        #[test]
        fn cut_backups_are_refused((text, _) in backup_text(true), cut in any::<prop::sample::Index>()) {
            let (_, used) = backup(text.as_bytes()).unwrap();
            let cut = cut.index(used);
            prop_assert!(backup(&text.as_bytes()[..cut]).is_none(), "{}", &text[..cut]);
        }

        /// The word-at-a-time search finds what a byte-by-byte one finds.
        #[test]
        fn special_finds_the_first_special_byte(bytes in prop::collection::vec(
            prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff, Just(0x7f), Just(0xa2), Just(0xdc)],
            0..40,
        )) {
            let expected = bytes.iter().position(|&b| matches!(b, b'"' | b'\\' | 0..0x20));
            prop_assert_eq!(special(&bytes), expected);
        }
    }
}
