//! Output formats: the plan JSON of DESIGN.md, the readable plan table, listings. Writes to
//! any `io::Write`; streams, so a million-backup plan is never held as a JSON tree.

use crate::executor::{Execution, Settled};
use crate::journal::holds::HoldEvent;
use crate::journal::{DecisionRecord, Reconciled, RunRecord};
use crate::model::Backup;
use crate::plan::{Decision, Freed, PolicyPlan};
use crate::visible::Visible;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use std::io::{self, Write};

/// Whether text output gets colour (ANSI SGR codes); the command line decides once.
static COLOUR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns colour in text output on or off (off by default).
pub fn set_colour(on: bool) {
    COLOUR.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// `text` in colour `code` (`31` red, `32` green, `33` yellow, `1;31` bold red, `2` dim)
/// when colour is on.
fn paint(text: &str, code: &str) -> String {
    match COLOUR.load(std::sync::atomic::Ordering::Relaxed) {
        true => format!("\x1b[{code}m{text}\x1b[0m"),
        false => text.to_string(),
    }
}

fn action_colour(action: &str) -> &'static str {
    match action {
        "delete" | "deleted" => "31",
        "keep" => "32",
        "wait" => "33",
        _ => "2",
    }
}

fn outcome_colour(outcome: &str) -> &'static str {
    match outcome {
        "ok" => "32",
        "dry-run" => "36",
        "unfinished" => "33",
        _ => "1;31",
    }
}

/// What one policy came to in a `plan`, `run` or `apply`.
#[derive(Default)]
pub struct PolicyReport<'a> {
    pub name: String,
    pub account: String,
    /// The policy as written (see `Policy::fingerprint`); `apply` checks it.
    pub fingerprint: String,
    /// What the fingerprint hashes (`Policy::as_written`); `Null` when unknown.
    pub as_written: serde_json::Value,
    pub plan: Option<PolicyPlan<'a>>,
    /// The listing failed: nothing was planned or deleted.
    pub error: Option<String>,
    /// `run` only: what was deleted, or why nothing was.
    pub execution: Option<Execution>,
    pub dry_run: Option<String>,
    /// The journal's run id (`run`, `apply`).
    pub run_id: Option<i64>,
    /// Deletions of interrupted runs settled by this run's listing.
    pub reconciled: Vec<Reconciled>,
    /// Deletions earlier runs left pending, waited for by this run.
    pub resumed: Option<Execution>,
    /// `apply`: how the reviewed plan no longer holds; non-empty means nothing was deleted.
    pub refused: Vec<String>,
    /// The journal could not be used: nothing was deleted.
    pub journal_error: Option<String>,
    /// `apply`: why this policy had nothing to do.
    pub skipped: Option<String>,
    /// How the run ended, as the journal records it (`ok`, `dry-run`, `blocked`, ...).
    pub outcome: Option<&'static str>,
}

impl PolicyReport<'_> {
    pub fn new<'a>(policy: &crate::policy::Policy) -> PolicyReport<'a> {
        PolicyReport {
            name: policy.name.clone(),
            account: policy.account.clone(),
            fingerprint: policy.fingerprint.clone(),
            as_written: policy.as_written.clone(),
            plan: None,
            error: None,
            execution: None,
            dry_run: None,
            run_id: None,
            reconciled: Vec::new(),
            resumed: None,
            refused: Vec::new(),
            journal_error: None,
            skipped: None,
            outcome: None,
        }
    }
}

impl Serialize for Decision<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.backup;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &b.id)?;
        map.serialize_entry("group", &b.group)?;
        map.serialize_entry("created_at", &b.created_at)?;
        map.serialize_entry("status", &b.status)?;
        if let Some(name) = &b.name {
            map.serialize_entry("name", name)?;
        }
        if let Some(size) = b.size {
            map.serialize_entry("size", &size)?;
        }
        map.serialize_entry("action", &self.action)?;
        map.serialize_entry("reasons", &self.reasons())?;
        if let Some(note) = self.note() {
            map.serialize_entry("note", note)?;
        }
        map.end()
    }
}

/// Everything of a report but its backups, which [`json`] writes after it by hand.
struct Head<'r, 'a>(&'r PolicyReport<'a>);

impl Serialize for Head<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Head(report) = self;
        report.serialize_head(s)
    }
}

impl PolicyReport<'_> {
    fn serialize_head<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("account", &self.account)?;
        map.serialize_entry("fingerprint", &self.fingerprint)?;
        if !self.as_written.is_null() {
            map.serialize_entry("policy", &self.as_written)?;
        }
        if let Some(run) = self.run_id {
            map.serialize_entry("run", &run)?;
        }
        if let Some(plan) = &self.plan {
            map.serialize_entry("mode", &plan.mode)?;
            map.serialize_entry("timezone", plan.timezone.iana_name().unwrap_or("UTC"))?;
            map.serialize_entry("evaluated_at", &plan.evaluated_at)?;
            map.serialize_entry("blocked", &plan.blocked)?;
            map.serialize_entry("warnings", &plan.warnings)?;
            #[derive(Serialize)]
            struct Totals {
                #[serde(flatten)]
                summary: crate::plan::Summary,
                #[serde(flatten)]
                freed: crate::plan::Freed,
            }
            let totals = Totals {
                summary: plan.summary,
                freed: plan.freed(),
            };
            map.serialize_entry("summary", &totals)?;
            map.serialize_entry("group_totals", &plan.group_totals())?;
        }
        if let Some(error) = &self.error {
            map.serialize_entry("error", error)?;
        }
        if let Some(execution) = &self.execution {
            map.serialize_entry("deleted", &execution.deleted.with_plan(self.plan.as_ref()))?;
            map.serialize_entry("failed", &execution.failed)?;
            if let Some(halted) = &execution.halted {
                map.serialize_entry("halted", halted)?;
                map.serialize_entry("not_sent", &execution.not_sent)?;
            }
        }
        if let Some(reason) = &self.dry_run {
            map.serialize_entry("dry_run", reason)?;
        }
        if !self.reconciled.is_empty() {
            map.serialize_entry("reconciled", &self.reconciled)?;
        }
        if let Some(resumed) = &self.resumed {
            map.serialize_entry("resumed", resumed)?;
        }
        if !self.refused.is_empty() {
            map.serialize_entry("refused", &self.refused)?;
        }
        if let Some(error) = &self.journal_error {
            map.serialize_entry("journal_error", error)?;
        }
        if let Some(skipped) = &self.skipped {
            map.serialize_entry("skipped", skipped)?;
        }
        map.end()
    }
}

/// `{"policies": [...]}`: each report's head through serde, then its backups (last, one a
/// line) by hand: a million backups' lines are most of the work, and serde_json escapes each
/// key and formats each piece through its own calls.
pub fn json(out: &mut dyn Write, reports: &[PolicyReport]) -> io::Result<()> {
    json_in_blocks(out, reports, BLOCK)
}

/// [`json`], the backups' lines written `block` at a time.
fn json_in_blocks(out: &mut dyn Write, reports: &[PolicyReport], block: usize) -> io::Result<()> {
    // Through a buffer of its own type: the many small writes are then copies into it, not
    // calls through `dyn Write`.
    let mut buffered = io::BufWriter::with_capacity(1 << 16, &mut *out);
    let out = &mut buffered;
    out.write_all(b"{\n  \"policies\": [")?;
    let mut head = Vec::new();
    for (i, report) in reports.iter().enumerate() {
        out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
        head.clear();
        let mut formatter = LinePerEntry::below(LinePerEntry::PLAN_ENTRIES);
        // Inside the document and its `policies`.
        formatter.level = 2;
        Head(report).serialize(&mut serde_json::Serializer::with_formatter(
            &mut head, formatter,
        ))?;
        let Some(plan) = &report.plan else {
            out.write_all(&head)?;
            continue;
        };
        // The head ends the report's object (`\n    }`): the backups go before that.
        let open = head
            .strip_suffix(b"\n    }")
            .expect("a report's head has members and ends its object");
        out.write_all(open)?;
        out.write_all(b",\n      \"backups\": [")?;
        in_blocks(out, plan.decisions.len(), block, |buf, range| {
            let mut line = DecisionLine::default();
            for i in range {
                buf.extend_from_slice(if i == 0 {
                    b"\n        "
                } else {
                    b",\n        "
                });
                line.write(buf, &plan.decisions[i])?;
            }
            Ok(())
        })?;
        out.write_all(if plan.decisions.is_empty() {
            b"]\n    }".as_slice()
        } else {
            b"\n      ]\n    }".as_slice()
        })?;
    }
    out.write_all(if reports.is_empty() {
        b"]\n}\n".as_slice()
    } else {
        b"\n  ]\n}\n".as_slice()
    })?;
    buffered.flush()
}

/// How many backups' lines are written at a time by [`in_blocks`].
const BLOCK: usize = 4096;

/// Writes `n` items as `render` writes ranges of them, `block` items at a time: where there
/// are two cores, every other block is written on the second while this thread writes the
/// others and puts them all out in order. The bytes are the ones one thread writes.
fn in_blocks(
    out: &mut impl Write,
    n: usize,
    block: usize,
    render: impl Fn(&mut Vec<u8>, std::ops::Range<usize>) -> io::Result<()> + Sync,
) -> io::Result<()> {
    let range = |b: usize| b * block..n.min((b + 1) * block);
    let blocks = n.div_ceil(block);
    let mut mine = Vec::new();
    if blocks < 2 || std::thread::available_parallelism().is_ok_and(|p| p.get() < 2) {
        for b in 0..blocks {
            mine.clear();
            render(&mut mine, range(b))?;
            out.write_all(&mine)?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        // The second thread's blocks, and its buffers back to it once written.
        let (written, to_write) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(2);
        let (give_back, given_back) = std::sync::mpsc::channel::<Vec<u8>>();
        let render = &render;
        scope.spawn(move || {
            for b in (1..blocks).step_by(2) {
                let mut buf = given_back.try_recv().unwrap_or_default();
                buf.clear();
                let result = render(&mut buf, range(b)).map(|()| buf);
                // A closed channel: this thread stopped at an error of its own.
                if written.send(result).is_err() {
                    return;
                }
            }
        });
        for b in (0..blocks).step_by(2) {
            mine.clear();
            render(&mut mine, range(b))?;
            out.write_all(&mine)?;
            if b + 1 < blocks {
                let theirs = to_write
                    .recv()
                    .expect("the second thread sends each of its blocks or panics")?;
                out.write_all(&theirs)?;
                let _ = give_back.send(theirs);
            }
        }
        Ok(())
    })
}

/// Writes a decision as one line of compact JSON, byte for byte what serde_json writes for
/// it (a test compares them), without serde's calls per key and piece.
#[derive(Default)]
struct DecisionLine {
    /// A reason as its words, before they are quoted.
    words: String,
}

impl DecisionLine {
    fn write<W: Write>(&mut self, out: &mut W, d: &Decision) -> io::Result<()> {
        let b = d.backup;
        out.write_all(b"{\"id\":")?;
        json_string(out, &b.id)?;
        out.write_all(b",\"group\":")?;
        json_string(out, &b.group)?;
        out.write_all(b",\"created_at\":\"")?;
        write_timestamp(out, b.created_at)?;
        out.write_all(b"\",\"status\":\"")?;
        out.write_all(b.status.as_str().as_bytes())?;
        out.write_all(b"\"")?;
        if let Some(name) = &b.name {
            out.write_all(b",\"name\":")?;
            json_string(out, name)?;
        }
        if let Some(size) = b.size {
            write!(out, ",\"size\":{size}")?;
        }
        out.write_all(b",\"action\":\"")?;
        out.write_all(d.action.as_str().as_bytes())?;
        out.write_all(b"\",\"reasons\":[")?;
        for (i, reason) in d.reasons().iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            self.words.clear();
            std::fmt::Write::write_fmt(&mut self.words, format_args!("{reason}"))
                .expect("a String takes any text");
            json_string(out, &self.words)?;
        }
        out.write_all(b"]")?;
        if let Some(note) = d.note() {
            out.write_all(b",\"note\":")?;
            json_string(out, note)?;
        }
        out.write_all(b"}")
    }
}

/// A JSON string: quoted as it is when nothing in it needs escaping (ids, groups and names
/// almost never do), else as serde_json escapes it.
fn json_string<W: Write>(out: &mut W, text: &str) -> io::Result<()> {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.write_all(b"\"")?;
        out.write_all(text.as_bytes())?;
        out.write_all(b"\"")
    } else {
        serde_json::to_writer(out, text).map_err(io::Error::from)
    }
}

/// A timestamp as jiff writes it: whole seconds of years 0 to 9999 by hand
/// (`2026-11-22T23:00:00Z`), anything else through jiff.
fn write_timestamp<W: Write>(out: &mut W, at: jiff::Timestamp) -> io::Result<()> {
    match crate::timestamp::utc_text(at) {
        Some(text) => out.write_all(&text),
        None => write!(out, "{at}"),
    }
}

/// The listing JSON (`list --format json`): one backup a line, the shape `plan --listing`
/// reads fastest.
pub fn listing_json(out: &mut dyn Write, backups: &[Backup]) -> io::Result<()> {
    #[derive(Serialize)]
    struct Doc<'b> {
        backups: &'b [Backup],
    }
    let mut buffered = io::BufWriter::with_capacity(1 << 16, &mut *out);
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut buffered,
        LinePerEntry::below(LinePerEntry::LISTING_ENTRIES),
    );
    Doc { backups }.serialize(&mut serializer)?;
    writeln!(buffered)?;
    buffered.flush()
}

/// serde_json's pretty layout down to a given depth, and below it one line per entry: in a
/// plan, each backup, group total and deletion is one compact object on a line of its own, so
/// a million-backup plan is a million lines that `grep` finds a backup in (and a third less
/// to write than indented objects).
struct LinePerEntry {
    /// Entries of arrays this deep or deeper are written on one line each.
    entry_level: usize,
    /// How deep the container being written is (the document is 1).
    level: usize,
    /// Whether the current container has a member yet (its end then goes on a line of its own).
    has_value: bool,
    /// The level of the array whose entry is being written on one line.
    one_line: Option<usize>,
}

impl LinePerEntry {
    /// The plan's `backups`, `group_totals`, `deleted`: in the document's `policies`.
    const PLAN_ENTRIES: usize = 4;
    /// The listing's `backups`.
    const LISTING_ENTRIES: usize = 2;

    fn below(entry_level: usize) -> LinePerEntry {
        LinePerEntry {
            entry_level,
            level: 0,
            has_value: false,
            one_line: None,
        }
    }

    fn compact(&self) -> bool {
        self.one_line.is_some_and(|level| self.level > level)
    }

    fn new_line<W: ?Sized + Write>(&self, w: &mut W, first: bool) -> io::Result<()> {
        if self.compact() {
            return if first { Ok(()) } else { w.write_all(b",") };
        }
        w.write_all(if first { b"\n" } else { b",\n" })?;
        for _ in 0..self.level {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn begin<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn end<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        let compact = self.compact();
        self.level -= 1;
        if self.has_value && !compact {
            w.write_all(b"\n")?;
            for _ in 0..self.level {
                w.write_all(b"  ")?;
            }
        }
        w.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for LinePerEntry {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.new_line(w, first)?;
        if self.one_line.is_none() && self.level >= self.entry_level {
            self.one_line = Some(self.level);
        }
        Ok(())
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        if self.one_line == Some(self.level) {
            self.one_line = None;
        }
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.new_line(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(if self.compact() { b":" } else { b": " })
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// A backup's time in the plan's zone as the text plan shows it, `2026-11-19 15:01 CET`.
pub fn local_time(zone: &jiff::tz::TimeZone, at: jiff::Timestamp) -> String {
    at.to_zoned(zone.clone())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// [`local_time`] padded to 22 characters, written by hand for the years 1000 to 9999: jiff's
/// strftime and a zone lookup per backup were most of the text plan's work (a test compares
/// them). The zone's offset and abbreviation are looked up once per stretch between two of its
/// transitions, where most backups of a plan fall together.
struct LocalTimes<'z> {
    zone: &'z jiff::tz::TimeZone,
    stretch: Option<Stretch>,
}

/// Where one offset of a zone holds: from its last transition at or before (`None`: there is
/// none) to the next one after (`None`: none).
struct Stretch {
    from: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
    offset: jiff::tz::Offset,
    abbreviation: String,
}

impl<'z> LocalTimes<'z> {
    fn new(zone: &'z jiff::tz::TimeZone) -> LocalTimes<'z> {
        LocalTimes {
            zone,
            stretch: None,
        }
    }

    fn write<W: Write>(&mut self, out: &mut W, at: jiff::Timestamp) -> io::Result<()> {
        let holds = |s: &Stretch| s.from.is_none_or(|f| f <= at) && s.until.is_none_or(|u| at < u);
        if !self.stretch.as_ref().is_some_and(holds) {
            let info = self.zone.to_offset_info(at);
            // `preceding` and `following` leave out a transition at the instant itself.
            let Ok(next) = at.checked_add(jiff::SignedDuration::from_nanos(1)) else {
                return write!(out, "{:<22}", local_time(self.zone, at));
            };
            self.stretch = Some(Stretch {
                from: self.zone.preceding(next).next().map(|t| t.timestamp()),
                until: self.zone.following(at).next().map(|t| t.timestamp()),
                offset: info.offset(),
                abbreviation: info.abbreviation().to_string(),
            });
        }
        let stretch = self.stretch.as_ref().expect("set above");
        let civil = stretch.offset.to_datetime(at);
        if !(1000..=9999).contains(&civil.year()) {
            return write!(out, "{:<22}", local_time(self.zone, at));
        }
        let mut text = *b"0000-00-00 00:00 ";
        let mut put = |at: usize, mut value: i16| {
            for i in (at..at + if at == 0 { 4 } else { 2 }).rev() {
                text[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, civil.year());
        put(5, civil.month().into());
        put(8, civil.day().into());
        put(11, civil.hour().into());
        put(14, civil.minute().into());
        out.write_all(&text)?;
        out.write_all(stretch.abbreviation.as_bytes())?;
        pad(out, text.len() + chars(&stretch.abbreviation), 22)
    }
}

/// Spaces from `used` characters to `width`, as `{:<width}` pads.
fn pad<W: Write>(out: &mut W, used: usize, width: usize) -> io::Result<()> {
    const SPACES: &[u8] = &[b' '; 64];
    let mut missing = width.saturating_sub(used);
    while missing > 0 {
        let n = missing.min(SPACES.len());
        out.write_all(&SPACES[..n])?;
        missing -= n;
    }
    Ok(())
}

/// Characters of `text`, as `{:<width}` counts them.
fn chars(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    }
}

fn header(out: &mut dyn Write, report: &PolicyReport) -> io::Result<()> {
    let Some(plan) = &report.plan else {
        writeln!(out, "policy {} (account {})", report.name, report.account)?;
        if let Some(error) = &report.error {
            writeln!(out, "  ERROR: {}; nothing was deleted", Visible(error))?;
        }
        if !report.refused.is_empty() {
            writeln!(out, "  {}", paint("REFUSED, nothing deleted:", "1;31"))?;
            for change in &report.refused {
                writeln!(out, "    - {}", Visible(change))?;
            }
        }
        if let Some(error) = &report.journal_error {
            writeln!(out, "  JOURNAL ERROR: {}", Visible(error))?;
        }
        if let Some(skipped) = &report.skipped {
            writeln!(out, "  {}", Visible(skipped))?;
        }
        return Ok(());
    };
    let zone = plan.timezone.iana_name().unwrap_or("UTC");
    let at = plan
        .evaluated_at
        .to_zoned(plan.timezone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z");
    writeln!(
        out,
        "policy {} (account {}, mode {}, zone {zone}, evaluated at {at})",
        plan.name,
        plan.account,
        plan.mode.as_str()
    )?;
    if let Some(run) = report.run_id {
        writeln!(out, "  journal: run #{run}")?;
    }
    for r in &report.reconciled {
        writeln!(
            out,
            "  reconciled: {} (group {}) of interrupted run #{}: {}",
            Visible(&r.id),
            Visible(&r.group),
            r.run,
            r.outcome.replace('_', " ")
        )?;
    }
    if let Some(blocked) = &plan.blocked {
        let label = paint("BLOCKED, nothing will be deleted:", "1;31");
        writeln!(out, "  {label} {}", Visible(blocked))?;
    }
    if !report.refused.is_empty() {
        writeln!(
            out,
            "  {} the reviewed plan no longer holds; make and review a new plan:",
            paint("REFUSED, nothing deleted:", "1;31")
        )?;
        for change in &report.refused {
            writeln!(out, "    - {}", Visible(change))?;
        }
    }
    if let Some(error) = &report.journal_error {
        writeln!(out, "  JOURNAL ERROR: {}", Visible(error))?;
    }
    for warning in &plan.warnings {
        writeln!(out, "  {} {}", paint("WARNING:", "33"), Visible(warning))?;
    }
    Ok(())
}

fn summary_line(out: &mut dyn Write, plan: &PolicyPlan) -> io::Result<()> {
    let s = plan.summary;
    let groups = if s.groups == 1 { "group" } else { "groups" };
    // With a grace period: what is deleted now, and what waits for it.
    let (now, waiting) = match s.waiting {
        0 => ("", String::new()),
        n => (" now", format!(", waiting {n} (grace)")),
    };
    writeln!(
        out,
        "  summary: keep {}, delete{now} {}{}{waiting}, ignore {} in {} {groups}",
        s.keep,
        s.delete,
        frees(plan.freed(), s.delete),
        s.ignore,
        s.groups
    )
}

/// ` (frees 1.2 GiB)` after a count of deletions, when the provider reports their sizes.
fn frees(freed: Freed, deleted: usize) -> String {
    match freed.size_unknown {
        _ if deleted == 0 || freed.size_unknown == deleted => String::new(),
        0 => format!(" (frees {})", bytes(freed.freed_bytes)),
        n => format!(
            " (frees {} and {n} of unknown size)",
            bytes(freed.freed_bytes)
        ),
    }
}

/// A byte count the way `ls -h` and `du -h` print it, in binary units.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// How a backup is named in the text plan: its name, with its id where the plan has more than
/// one backup of that name (Cloudinary's versions of one asset all share the public id).
struct DisplayName<'d> {
    name: &'d str,
    id: Option<&'d str>,
}

impl<'d> DisplayName<'d> {
    /// `d`'s name, with its id when `shared` (from [`shared_names`]).
    fn of(d: &'d Decision, shared: bool) -> DisplayName<'d> {
        let name = d.backup.name.as_deref().unwrap_or(&d.backup.id);
        DisplayName {
            name,
            id: (shared && name != d.backup.id).then_some(d.backup.id.as_str()),
        }
    }

    fn chars(&self) -> usize {
        Visible(self.name).chars() + self.id.map_or(0, |id| " [id ]".len() + Visible(id).chars())
    }

    fn write<W: Write>(&self, out: &mut W) -> io::Result<()> {
        Visible(self.name).write_to(out)?;
        if let Some(id) = self.id {
            out.write_all(b" [id ")?;
            Visible(id).write_to(out)?;
            out.write_all(b"]")?;
        }
        Ok(())
    }
}

/// For each decision, in the plan's order, whether another backup of the plan has its name.
fn shared_names(plan: &PolicyPlan) -> Vec<bool> {
    let name = |i: u32| DisplayName::of(&plan.decisions[i as usize], false).name;
    // Names that repeat, found by sorting their hashes (a hash map of a million names is a
    // cache miss per name); equal hashes are then told apart by the names themselves.
    let mut keyed: Vec<(u64, u32)> = (0..plan.decisions.len() as u32)
        .map(|i| (fnv1a(name(i)), i))
        .collect();
    keyed.sort_unstable();
    let mut shared = vec![false; plan.decisions.len()];
    for run in keyed
        .chunk_by_mut(|a, b| a.0 == b.0)
        .filter(|run| run.len() > 1)
    {
        run.sort_unstable_by_key(|&(_, i)| name(i));
        for same in run.chunk_by(|a, b| name(a.1) == name(b.1)) {
            if same.len() > 1 {
                for &(_, i) in same {
                    shared[i as usize] = true;
                }
            }
        }
    }
    shared
}

/// FNV-1a, 64 bits: a quick hash of a short name.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The readable plan: a table per group (date, name, action, reasons), then a summary.
/// `summary`: the group lines with their counts, without a line per backup.
pub fn plan_text(out: &mut dyn Write, reports: &[PolicyReport], summary: bool) -> io::Result<()> {
    plan_text_in_blocks(out, reports, summary, BLOCK)
}

/// [`plan_text`], the backups' lines written `block` at a time.
fn plan_text_in_blocks(
    out: &mut dyn Write,
    reports: &[PolicyReport],
    summary: bool,
    block: usize,
) -> io::Result<()> {
    // A line per backup: copies into a buffer of its own type, not calls through `dyn Write`.
    let mut buffered = io::BufWriter::with_capacity(1 << 16, out);
    let out = &mut buffered;
    for (i, report) in reports.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        header(out, report)?;
        let Some(plan) = &report.plan else { continue };
        // Names and their width only for the line per backup that `summary` leaves out.
        let (shared, width) = match summary {
            true => (vec![false; plan.decisions.len()], 0),
            false => {
                let shared = shared_names(plan);
                let width = plan
                    .decisions
                    .iter()
                    .zip(&shared)
                    .map(|(d, &shared)| DisplayName::of(d, shared).chars())
                    .max()
                    .unwrap_or(0)
                    .min(60);
                (shared, width)
            }
        };
        let colour = COLOUR.load(std::sync::atomic::Ordering::Relaxed);
        let totals = plan.group_totals();
        // Where each group's lines begin (a group's backups are side by side), for a block of
        // lines that starts inside a group.
        let starts: Vec<usize> = (0..plan.decisions.len())
            .filter(|&i| {
                i == 0 || plan.decisions[i - 1].backup.group != plan.decisions[i].backup.group
            })
            .collect();
        in_blocks(out, plan.decisions.len(), block, |out, range| {
            let mut times = LocalTimes::new(&plan.timezone);
            let mut next = starts.partition_point(|&s| s < range.start);
            for i in range {
                let d = &plan.decisions[i];
                if starts.get(next) == Some(&i) {
                    let t = &totals[next];
                    next += 1;
                    let waiting = match t.waiting {
                        0 => String::new(),
                        n => format!(", waiting {n} (grace)"),
                    };
                    match t.delete {
                        0 if summary => writeln!(
                            out,
                            "  group {}: keep {}{waiting}, ignore {}",
                            Visible(&d.backup.group),
                            t.keep,
                            t.ignore
                        )?,
                        0 if t.waiting > 0 => writeln!(
                            out,
                            "  group {}: delete 0{waiting}",
                            Visible(&d.backup.group)
                        )?,
                        0 => writeln!(out, "  group {}", Visible(&d.backup.group))?,
                        n => writeln!(
                            out,
                            "  group {}: delete {n} of {}{}{waiting}",
                            Visible(&d.backup.group),
                            t.keep + t.delete + t.waiting + t.ignore,
                            frees(t.freed, n)
                        )?,
                    }
                }
                if summary {
                    continue;
                }
                // `    {time:<22}  {name:<width$}  {action:<6}  {reasons}`, the action painted
                // as `paint` would, written piece by piece: no `String` per line.
                let action = d.action.as_str();
                out.write_all(b"    ")?;
                times.write(out, d.backup.created_at)?;
                out.write_all(b"  ")?;
                let name = DisplayName::of(d, shared[i]);
                name.write(out)?;
                pad(out, name.chars(), width)?;
                out.write_all(b"  ")?;
                if colour {
                    write!(out, "\x1b[{}m", action_colour(action))?;
                }
                out.write_all(action.as_bytes())?;
                pad(out, action.len(), 6)?;
                if colour {
                    out.write_all(b"\x1b[0m")?;
                }
                // Reasons and notes are the program's own words, never a provider's name.
                writeln!(out, "  {}", d.explained())?;
            }
            Ok(())
        })?;
        summary_line(out, plan)?;
    }
    out.flush()
}

/// What `run` did: per policy the summary and every deletion or failure (`summary`: the
/// counts only, for large plans).
pub fn run_text(out: &mut dyn Write, reports: &[PolicyReport], summary: bool) -> io::Result<()> {
    for report in reports {
        run_head(out, report)?;
        if summary {
            run_tail(out, report)?;
            continue;
        }
        if let Some(resumed) = &report.resumed {
            for id in resumed.deleted.iter(None) {
                writeln!(out, "{}", settled_line(id, &Settled::Deleted, true))?;
            }
            for failed in &resumed.failed {
                let line = settled_line(&failed.id, &Settled::Failed(&failed.error), true);
                writeln!(out, "{line}")?;
            }
            for pending in &resumed.pending {
                let line = settled_line(&pending.id, &Settled::Pending(&pending.detail), true);
                writeln!(out, "{line}")?;
            }
        }
        if let Some(execution) = &report.execution {
            for id in execution.deleted.iter(report.plan.as_ref()) {
                writeln!(out, "{}", settled_line(id, &Settled::Deleted, false))?;
            }
            for pending in &execution.pending {
                let line = settled_line(&pending.id, &Settled::Pending(&pending.detail), false);
                writeln!(out, "{line}")?;
            }
            for failed in &execution.failed {
                let line = settled_line(&failed.id, &Settled::Failed(&failed.error), false);
                writeln!(out, "{line}")?;
            }
        }
        run_tail(out, report)?;
    }
    Ok(())
}

/// The start of a policy's `run` output, printed once its plan is made: the header, the
/// summary and why nothing is deleted, if nothing is.
pub fn run_head(out: &mut dyn Write, report: &PolicyReport) -> io::Result<()> {
    header(out, report)?;
    let Some(plan) = &report.plan else {
        return Ok(());
    };
    summary_line(out, plan)?;
    if let Some(reason) = &report.dry_run {
        writeln!(
            out,
            "  dry-run ({reason}): nothing deleted; would delete {}",
            plan.summary.delete
        )?;
    }
    Ok(())
}

/// One deletion's line, as `run` prints it when it happens (`resumed`: pending from an
/// earlier run).
pub fn settled_line(id: &str, outcome: &Settled, resumed: bool) -> String {
    let id = Visible(id);
    let line = match (outcome, resumed) {
        (Settled::Deleted, false) => format!("  deleted {id}"),
        (Settled::Pending(detail), false) => format!("  pending {id}: {detail}"),
        (Settled::Failed(error), false) => {
            format!("  {} {id}: {error}", paint("FAILED to delete", "31"))
        }
        (Settled::Deleted, true) => {
            format!("  resumed: deleted {id} (pending from an earlier run)")
        }
        (Settled::Pending(detail), true) => format!("  resumed: still pending {id}: {detail}"),
        (Settled::Failed(error), true) => format!("  resumed: FAILED to delete {id}: {error}"),
        (Settled::NotSent(why), _) => format!("  {why}: {id}"),
    };
    // A provider's error or detail may quote the name too.
    match outcome {
        Settled::Deleted => line,
        _ => Visible(&line).to_string(),
    }
}

/// The end of a policy's `run` output: journal errors, why the run stopped early, and the
/// count deleted.
pub fn run_tail(out: &mut dyn Write, report: &PolicyReport) -> io::Result<()> {
    let (Some(plan), Some(execution)) = (&report.plan, &report.execution) else {
        return Ok(());
    };
    for error in &execution.ledger_errors {
        writeln!(out, "  JOURNAL ERROR: {}", Visible(error))?;
    }
    if let Some(halted) = &execution.halted {
        writeln!(out, "  {} {}", paint("HALTED:", "1;31"), Visible(halted))?;
    } else if !execution.not_sent.is_empty() {
        writeln!(
            out,
            "  {} interrupted; {} of {} deletions were not sent (the next run plans them again)",
            paint("STOPPED:", "33"),
            execution.not_sent.len(),
            plan.summary.delete
        )?;
    }
    if plan.blocked.is_none() {
        let pending = match execution.pending.len() {
            0 => String::new(),
            n => format!(", {n} still being deleted by the provider"),
        };
        let failed = match execution.failed.len() {
            0 => String::new(),
            n => format!(", {n} failed"),
        };
        writeln!(
            out,
            "  deleted {} of {}{failed}{pending}",
            execution.deleted.len(),
            plan.summary.delete
        )?;
    }
    Ok(())
}

/// A listing as a table, one backup a line.
pub fn listing_text(out: &mut dyn Write, backups: &[Backup]) -> io::Result<()> {
    for b in backups {
        let id = match b.name.as_deref() {
            Some(name) if name != b.id => format!("{}  id {}", Visible(name), Visible(&b.id)),
            _ => Visible(&b.id).to_string(),
        };
        writeln!(
            out,
            "{}  {:<12}  {}  {id}{}",
            b.created_at,
            b.status.as_str(),
            Visible(&b.group),
            if b.live { "  (live)" } else { "" }
        )?;
    }
    writeln!(out, "{} backups", backups.len())
}

/// `history --format json`: `{"runs": [...]}`, and the run's `decisions` with `--run`.
pub fn history_json(
    out: &mut dyn Write,
    runs: &[RunRecord],
    decisions: Option<&[DecisionRecord]>,
    holds: &[HoldEvent],
) -> io::Result<()> {
    #[derive(Serialize)]
    struct Doc<'r> {
        runs: &'r [RunRecord],
        #[serde(skip_serializing_if = "Option::is_none")]
        decisions: Option<&'r [DecisionRecord]>,
        #[serde(skip_serializing_if = "<[HoldEvent]>::is_empty")]
        holds: &'r [HoldEvent],
    }
    serde_json::to_writer_pretty(
        &mut *out,
        &Doc {
            runs,
            decisions,
            holds,
        },
    )?;
    writeln!(out)
}

/// `history`: what happened to holds, newest first.
pub fn hold_events_text(out: &mut dyn Write, events: &[HoldEvent]) -> io::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    writeln!(out, "holds:")?;
    for e in events {
        let what = match e.event {
            "added" => format!("added by {}: {}", Visible(&e.by), Visible(&e.reason)),
            "released" => format!("released by {}: {}", Visible(&e.by), Visible(&e.reason)),
            _ => format!(
                "lapsed (its time ran out; held by {}: {})",
                Visible(&e.by),
                Visible(&e.reason)
            ),
        };
        writeln!(
            out,
            "  {}  hold #{} on backup {} of {}: {what}",
            e.at,
            e.hold,
            Visible(&e.backup_id),
            e.scope
        )?;
    }
    Ok(())
}

/// `history`: a line per run, then its deletions; times in the zone `zone` gives for the
/// run's policy.
pub fn history_text(
    out: &mut dyn Write,
    runs: &[RunRecord],
    decisions: Option<&[DecisionRecord]>,
    zone: &dyn Fn(&str) -> jiff::tz::TimeZone,
) -> io::Result<()> {
    if runs.is_empty() {
        return writeln!(out, "no runs match");
    }
    for run in runs {
        let tz = zone(&run.policy);
        let seconds = |at: jiff::Timestamp| {
            at.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        };
        let outcome = run.outcome.as_deref().unwrap_or("unfinished");
        let summary = run
            .summary
            .map(|s| match s.waiting {
                0 => format!("  keep {} delete {} ignore {}", s.keep, s.delete, s.ignore),
                n => format!(
                    "  keep {} delete {} waiting {n} ignore {}",
                    s.keep, s.delete, s.ignore
                ),
            })
            .unwrap_or_default();
        let took = run
            .ended_at
            .map(|at| format!(" ({:.1}s)", at.duration_since(run.started_at).as_secs_f64()))
            .unwrap_or_default();
        writeln!(
            out,
            "run #{} {} ({}, {}) {}{took}: {}{summary}",
            run.id,
            run.policy,
            run.command,
            run.mode,
            seconds(run.started_at),
            paint(outcome, outcome_colour(outcome))
        )?;
        let commit = run
            .git_commit
            .as_deref()
            .map(|c| format!(", git {}", &c[..c.len().min(12)]))
            .unwrap_or_default();
        let host = run
            .host
            .as_deref()
            .map(|h| format!("on {h}, "))
            .unwrap_or_default();
        writeln!(
            out,
            "  {host}policy file {} (sha256 {}{commit})",
            run.policy_file,
            &run.policy_sha256[..run.policy_sha256.len().min(12)]
        )?;
        if !run.overrides.is_empty() {
            let flags: Vec<String> = run.overrides.iter().map(|o| format!("--{o}")).collect();
            writeln!(out, "  let through once with {}", flags.join(" "))?;
        }
        if let Some(a) = &run.approved {
            writeln!(
                out,
                "  this version approved by {} at {}",
                a.by.as_deref().unwrap_or("(unknown)"),
                seconds(a.at)
            )?;
        }
        if let Some(message) = &run.message {
            writeln!(out, "  {}", Visible(message))?;
        }
        for d in &run.deletions {
            let outcome = d
                .outcome
                .as_deref()
                .unwrap_or("intent only (not settled yet)");
            let at = seconds(d.outcome_at.unwrap_or(d.intent_at));
            let reconciled = if d.reconciled { " (reconciled)" } else { "" };
            let error = match (&d.error, d.outcome.as_deref()) {
                (Some(e), Some("failed")) => format!(": {}", Visible(e)),
                _ => String::new(),
            };
            writeln!(
                out,
                "  {} {} (group {}) at {at}{reconciled}{error}",
                paint(
                    &format!("{:<11}", outcome.replace('_', " ")),
                    action_colour(outcome)
                ),
                Visible(&d.id),
                Visible(&d.group)
            )?;
        }
    }
    if let Some(decisions) = decisions {
        writeln!(out, "decisions:")?;
        for d in decisions {
            let mut why = d.reasons.join(", ");
            if let Some(note) = &d.note {
                why = if why.is_empty() {
                    note.clone()
                } else {
                    format!("{why} ({note})")
                };
            }
            writeln!(
                out,
                "  {}  {}  {:<6}  {}  {}",
                d.created_at,
                Visible(&d.group),
                d.action,
                Visible(&d.id),
                Visible(&why)
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::policy;
    use jiff::tz::TimeZone;
    use std::path::Path;

    /// The text plan's times by hand are jiff's `%Y-%m-%d %H:%M %Z`, padded to 22: in zones
    /// with daylight saving, half-hour shifts and fixed offsets, across changes, and outside
    /// the years the fast path takes.
    #[test]
    fn local_times_by_hand_are_jiffs() {
        let zones = [
            TimeZone::UTC,
            TimeZone::get("Europe/Berlin").unwrap(),
            TimeZone::get("America/New_York").unwrap(),
            TimeZone::get("Australia/Lord_Howe").unwrap(),
            TimeZone::get("Asia/Kolkata").unwrap(),
            TimeZone::fixed(jiff::tz::offset(-3)),
            TimeZone::fixed(jiff::tz::Offset::from_seconds(5 * 3600 + 45 * 60).unwrap()),
        ];
        let start: jiff::Timestamp = "2023-01-01T00:00:00Z".parse().unwrap();
        let mut instants: Vec<jiff::Timestamp> = (0..20_000)
            .map(|i| start + jiff::SignedDuration::from_secs(i * 97 * 60 + i % 60))
            .collect();
        instants.extend(
            [
                "0999-12-31T23:59:59Z",
                "1000-01-01T12:00:00Z",
                "9999-12-30T21:00:00Z",
                "-000001-06-01T00:00:00Z",
            ]
            .iter()
            .map(|t| t.parse::<jiff::Timestamp>().unwrap()),
        );
        // Forwards, backwards (a plan's order), and jumping (groups one after another), with
        // instants on transitions and a nanosecond either side.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let nano = jiff::SignedDuration::from_nanos(1);
        let mut on_transitions = Vec::new();
        for transition in berlin.following(start).take(6) {
            let t = transition.timestamp();
            instants.extend([t - nano, t, t + nano]);
            on_transitions.extend([t, t - nano, t + nano]);
        }
        let mut orders = vec![instants.clone(), on_transitions];
        orders.push(instants.iter().rev().copied().collect());
        orders.push(
            instants
                .iter()
                .step_by(7)
                .chain(instants.iter().step_by(3))
                .copied()
                .collect(),
        );
        for zone in &zones {
            for order in &orders {
                let mut times = LocalTimes::new(zone);
                for &at in order {
                    let mut by_hand = Vec::new();
                    times.write(&mut by_hand, at).unwrap();
                    let want = format!("{:<22}", local_time(zone, at));
                    assert_eq!(
                        String::from_utf8(by_hand).unwrap(),
                        want,
                        "{at} in {zone:?}"
                    );
                }
            }
        }
    }

    /// The plan JSON is serde's, one backup a line: each line byte for byte what serde_json
    /// writes for the decision (names that need escaping, sizes, notes, tag reasons with
    /// quotes, times with fractions and before year 0), and the whole a valid document.
    /// Blocks written on two threads come out in order, and an error in either thread's
    /// block is the answer.
    #[test]
    fn blocks_come_out_in_order_and_errors_stop_them() {
        let render = |buf: &mut Vec<u8>, range: std::ops::Range<usize>| {
            for i in range {
                write!(buf, "{i}{}", "-".repeat(i % 5))?;
            }
            Ok(())
        };
        for n in [0, 1, 2, 3, 10, 101] {
            let mut whole = Vec::new();
            render(&mut whole, 0..n).unwrap();
            for block in [1, 2, 3, 7, 1000] {
                let mut out = Vec::new();
                in_blocks(&mut out, n, block, render).unwrap();
                assert_eq!(out, whole, "{n} items in blocks of {block}");
            }
        }
        for failing in [0, 1, 6, 9] {
            let mut out = Vec::new();
            let error = in_blocks(&mut out, 10, 1, |buf, range| match range.start {
                i if i == failing => Err(io::Error::other(format!("block {i}"))),
                i => render(buf, i..i + 1),
            })
            .unwrap_err();
            assert_eq!(error.to_string(), format!("block {failing}"));
            let mut before = Vec::new();
            render(&mut before, 0..failing).unwrap();
            assert_eq!(out, before, "the blocks before the failed one, and no more");
        }
    }

    /// The text and JSON plans are the same bytes whatever their blocks: groups that begin
    /// inside a block and blocks that begin inside a group, in full and in summary.
    #[test]
    fn plans_are_the_same_whatever_their_blocks() {
        let text = "name: t\naccount: a\nkeep: {last: 3, daily: 2}\nfailed: {delete_after: 1d}\n";
        let (mut policies, errors) = policy::policies_from_str(Path::new("t.yaml"), text);
        assert!(errors.is_empty(), "{errors:?}");
        let policy = policies.remove(0);
        let start: jiff::Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let mut backups = Vec::new();
        for (g, size) in [1, 4, 2, 7, 1, 1, 5].into_iter().enumerate() {
            for i in 0..size {
                let at = start + jiff::SignedDuration::from_hours(7 * i + g as i64);
                let status = if i == 2 {
                    Status::Failed
                } else {
                    Status::Complete
                };
                let mut b = Backup::new(&format!("b{g}-{i}"), &format!("group{g}"), at, status);
                b.size = Some(1000 * (i as u64 + 1));
                backups.push(b);
            }
        }
        let now = "2026-11-23T00:00:00Z".parse().unwrap();
        let mut report = PolicyReport::new(&policy);
        report.plan = Some(crate::plan::plan(
            &policy,
            &backups,
            now,
            &TimeZone::get("Europe/Berlin").unwrap(),
        ));
        let reports = [report];
        let write = |summary: bool, block: usize| {
            let mut out = Vec::new();
            plan_text_in_blocks(&mut out, &reports, summary, block).unwrap();
            String::from_utf8(out).unwrap()
        };
        for summary in [false, true] {
            let whole = write(summary, usize::MAX);
            assert_eq!(whole.matches("  group group").count(), 7, "{whole}");
            for block in [1, 2, 3, 4, 6, 20] {
                assert_eq!(write(summary, block), whole, "blocks of {block}");
            }
        }
        let mut whole = Vec::new();
        json_in_blocks(&mut whole, &reports, usize::MAX).unwrap();
        for block in [1, 2, 3, 5] {
            let mut out = Vec::new();
            json_in_blocks(&mut out, &reports, block).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(whole.clone()).unwrap(),
                "blocks of {block}"
            );
        }
    }

    #[test]
    fn plan_json_lines_are_serdes_and_the_document_parses() {
        let text = "name: t\naccount: a\nkeep: {last: 2, tags: [\"a\\\"b\"]}\nfailed: {delete_after: 1d}\n";
        let (mut policies, errors) = policy::policies_from_str(Path::new("t.yaml"), text);
        assert!(errors.is_empty(), "{errors:?}");
        let policy = policies.remove(0);
        let mut backups = Vec::new();
        for (i, (id, at, status)) in [
            ("plain", "2026-11-22T23:00:00Z", Status::Complete),
            (
                "quote\"back\\slash",
                "2026-11-22T22:00:00.25Z",
                Status::Complete,
            ),
            ("tab\there ünï", "-000001-03-01T00:00:00Z", Status::Complete),
            ("ctrl\u{1}", "2026-11-22T21:00:00Z", Status::Failed),
            ("busy", "2026-11-22T20:00:00Z", Status::InProgress),
        ]
        .into_iter()
        .enumerate()
        {
            let mut b = Backup::new(id, "g\"1", at.parse().unwrap(), status);
            b.name = (i % 2 == 0).then(|| format!("name {id}").into());
            b.size = (i % 3 == 0).then_some(1 << 40);
            if i == 1 {
                b.tags = vec!["a\"b".to_string()].into();
            }
            backups.push(b);
        }
        let now = "2026-11-23T00:00:00Z".parse().unwrap();
        let mut report = PolicyReport::new(&policy);
        report.plan = Some(crate::plan::plan(&policy, &backups, now, &TimeZone::UTC));
        let failed = PolicyReport {
            error: Some("listing failed".into()),
            ..PolicyReport::new(&policy)
        };
        let mut out = Vec::new();
        json(&mut out, &[report, failed]).unwrap();
        let text = String::from_utf8(out).unwrap();

        let plan = crate::plan::plan(&policy, &backups, now, &TimeZone::UTC);
        assert!(
            plan.decisions
                .iter()
                .any(|d| !d.reasons().is_empty() && d.note().is_none())
        );
        assert!(plan.decisions.iter().any(|d| d.note().is_some()));
        let lines: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("        "))
            .filter(|l| l.starts_with("{\"id\":"))
            .map(|l| l.strip_suffix(',').unwrap_or(l))
            .collect();
        assert_eq!(lines.len(), backups.len(), "{text}");
        for (line, d) in lines.iter().zip(&plan.decisions) {
            assert_eq!(*line, serde_json::to_string(d).unwrap());
        }
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let policies = doc["policies"].as_array().unwrap();
        assert_eq!(
            policies[0]["backups"],
            serde_json::to_value(&plan.decisions).unwrap()
        );
        assert_eq!(policies[0]["summary"]["keep"], plan.summary.keep);
        assert_eq!(policies[1]["error"], "listing failed");
        assert!(policies[1].get("backups").is_none());

        let mut empty = Vec::new();
        json(&mut empty, &[]).unwrap();
        assert_eq!(
            String::from_utf8(empty).unwrap(),
            "{\n  \"policies\": []\n}\n"
        );
    }
}
