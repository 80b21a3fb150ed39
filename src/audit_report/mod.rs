//! `keywrap audit report`: who read which secret, from where, and when, from a Vault or
//! OpenBao file audit log; and which of those reads a person should look at.
//!
//! The log is streamed once. Each line is first searched for an `"operation"` key with the
//! value `"read"` (a vectorised byte search), and only lines that pass are parsed, into borrowed fields
//! ([`entry`]). The rules ([`anomaly`]) see every read; the filters only choose what is
//! shown. Values never appear in an audit log in clear, and the report needs none.

pub mod alerts;
pub mod anomaly;
pub mod entry;
pub mod output;
pub mod pattern;
pub mod progress;

use std::collections::HashMap;
use std::io::BufRead;

use anomaly::{Detector, Flags, Id, Origin};
use entry::{Line, Prefilter};
use pattern::PathPattern;

use crate::timestamp::Timestamp;

/// Which reads are shown.
#[derive(Debug, Default)]
pub struct Filters {
    pub path: Option<PathPattern>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub host: Option<String>,
    pub flagged_only: bool,
}

/// Strings that repeat from read to read (paths, hosts, accessors), stored once.
#[derive(Default)]
pub struct Interner {
    ids: HashMap<Box<str>, Id>,
    texts: Vec<Box<str>>,
}

impl Interner {
    pub fn id(&mut self, text: &str) -> Id {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = self.texts.len() as Id;
        self.texts.push(text.into());
        self.ids.insert(text.into(), id);
        id
    }

    pub fn text(&self, id: Id) -> &str {
        &self.texts[id as usize]
    }
}

/// One reported read; repeated strings are interned.
#[derive(Debug, Clone)]
pub struct Record {
    pub time: Option<Timestamp>,
    pub time_text: Box<str>,
    pub path: Id,
    pub accessor: Id,
    pub display_name: Id,
    pub remote_address: Id,
    pub host: Id,
    pub user: Id,
    pub command: Id,
    pub ci: Id,
    pub correlation_id: Box<str>,
    pub allowed: bool,
    pub flags: Flags,
}

/// Counts for the summary.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Stats {
    pub lines: u64,
    pub bytes: u64,
    /// Lines that were not JSON objects (truncated, corrupted, or not entries); skipped.
    pub malformed: u64,
    /// Reads of secrets in the whole log, before filters.
    pub reads: u64,
    pub shown: u64,
    pub denied: u64,
    pub new_host: u64,
    pub new_ci_job: u64,
    pub burst: u64,
}

/// The report: reads that passed the filters, with their flags.
pub struct Report {
    pub records: Vec<Record>,
    pub strings: Interner,
    pub stats: Stats,
}

/// Reads the log to the end. `progress` is told the bytes consumed so far.
pub fn scan(
    mut log: impl BufRead,
    filters: &Filters,
    mut progress: impl FnMut(u64),
) -> std::io::Result<Report> {
    let prefilter = Prefilter::default();
    let mut detector = Detector::default();
    let mut strings = Interner::default();
    let mut records = Vec::new();
    let mut stats = Stats::default();
    let mut line = Vec::with_capacity(64 * 1024);
    let mut next_report = 0u64;
    loop {
        line.clear();
        let read = log.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        stats.bytes += read as u64;
        stats.lines += 1;
        if stats.bytes >= next_report {
            progress(stats.bytes);
            next_report = stats.bytes + (8 << 20);
        }
        let text = trim_line(&line);
        if text.is_empty() {
            continue;
        }
        // An entry is one JSON object: a line that does not end like one was cut short (a
        // crash mid-write) or is not an entry, whatever the prefilter would say.
        if text.trim_ascii_end().last() != Some(&b'}') {
            stats.malformed += 1;
            continue;
        }
        if !prefilter.may_be_read(text) {
            continue;
        }
        let read = match entry::parse(text) {
            Line::Read(read) => read,
            Line::Other => continue,
            Line::Malformed => {
                stats.malformed += 1;
                continue;
            }
        };
        stats.reads += 1;
        let path = strings.id(&read.path);
        let origin = Origin {
            address: (!read.remote_address.is_empty()).then(|| strings.id(&read.remote_address)),
            name: (!read.host.is_empty()).then(|| strings.id(&read.host)),
        };
        let ci_job = (!read.ci.is_empty()).then(|| strings.id(&anomaly::ci_job(&read.ci)));
        let minute = read.time.map(|t| t.seconds().div_euclid(60));
        let flags = detector.observe(path, origin, ci_job, minute, read.allowed);
        if !shown(filters, &read) {
            continue;
        }
        records.push(Record {
            time: read.time,
            time_text: read.time_text.as_ref().into(),
            path,
            accessor: strings.id(&read.accessor),
            display_name: strings.id(&read.display_name),
            remote_address: strings.id(&read.remote_address),
            host: strings.id(&read.host),
            user: strings.id(&read.user),
            command: strings.id(&read.command),
            ci: strings.id(&read.ci),
            correlation_id: read.correlation_id.as_ref().into(),
            allowed: read.allowed,
            flags,
        });
    }
    progress(stats.bytes);
    let bursts = detector.bursts();
    for record in &mut records {
        if let Some(time) = record.time {
            if bursts.contains(&(record.path, time.seconds().div_euclid(60))) {
                record.flags.insert(Flags::BURST);
            }
        }
    }
    if filters.flagged_only {
        records.retain(|r| !r.flags.is_empty());
    }
    for record in &records {
        let count = |flag: Flags| u64::from(record.flags.contains(flag));
        stats.denied += count(Flags::DENIED);
        stats.new_host += count(Flags::NEW_HOST);
        stats.new_ci_job += count(Flags::NEW_CI_JOB);
        stats.burst += count(Flags::BURST);
    }
    stats.shown = records.len() as u64;
    Ok(Report {
        records,
        strings,
        stats,
    })
}

/// A line without its line ending (and a NUL tail a crash can leave in a file).
fn trim_line(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| !matches!(b, b'\n' | b'\r' | b'\0'))
        .map_or(0, |i| i + 1);
    &line[..end]
}

fn shown(filters: &Filters, read: &entry::Read) -> bool {
    if let Some(pattern) = &filters.path {
        let api_path = pattern.names_api_path() && pattern.matches(&read.api_path);
        if !pattern.matches(&read.path) && !api_path {
            return false;
        }
    }
    if let Some(host) = &filters.host {
        if read.host != host.as_str() && read.remote_address != host.as_str() {
            return false;
        }
    }
    if filters.since.is_some() || filters.until.is_some() {
        let Some(time) = read.time else {
            return false;
        };
        if filters.since.is_some_and(|since| time < since)
            || filters.until.is_some_and(|until| time >= until)
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(time: &str, path: &str, host: &str, error: bool) -> String {
        format!(
            r#"{{"time":"{time}","type":"request","auth":{{"accessor":"acc","display_name":"token"}},"request":{{"operation":"read","mount_point":"secret/","mount_type":"kv","path":"secret/data/{path}","remote_address":"127.0.0.1","headers":{{"x-keywrap-host":["{host}"]}}}}{}}}"#,
            if error {
                r#","error":"permission denied""#
            } else {
                ""
            }
        )
    }

    #[test]
    fn streams_filters_and_survives_bad_lines() {
        let mut log = String::new();
        log.push_str(&line("2026-11-01T10:00:00Z", "openai", "web-1", false));
        log.push('\n');
        log.push_str("{\"time\":\"2026-11-01T10:00:01Z\",\"type\":\"request\",\"request\":{\"operation\":\"read\",\"pa\n");
        log.push_str("not json at all\n\n");
        log.push_str(&line("2026-11-02T10:00:00Z", "openai", "laptop", true));
        log.push('\n');
        log.push_str(&line("2026-11-03T10:00:00Z", "db", "web-1", false));
        let filters = Filters::default();
        let report = scan(log.as_bytes(), &filters, |_| {}).unwrap();
        assert_eq!(report.stats.reads, 3);
        assert_eq!(
            report.stats.malformed, 2,
            "the cut line and the line of text"
        );
        let flags: Vec<Vec<&str>> = report.records.iter().map(|r| r.flags.names()).collect();
        assert_eq!(flags, [vec![], vec!["denied", "new host"], vec![]]);
        assert_eq!(
            report.records[1].flags.unverified(),
            ["new host"],
            "the same address claimed another host name"
        );

        let filters = Filters {
            path: Some(PathPattern::new("secret/open")),
            since: Timestamp::parse("2026-11-02"),
            ..Filters::default()
        };
        let report = scan(log.as_bytes(), &filters, |_| {}).unwrap();
        assert_eq!(report.records.len(), 1);
        assert_eq!(report.strings.text(report.records[0].host), "laptop");
        assert_eq!(report.stats.reads, 3, "rules and counts see the whole log");
    }
}
