//! The report as a table for people, JSON for programs, or CSV for spreadsheets.

use std::io::{self, Write};

use serde::Serialize;

use super::{Record, Report};

/// One read with its strings resolved, as JSON and CSV show it.
#[derive(Serialize)]
struct Row<'a> {
    time: &'a str,
    path: &'a str,
    allowed: bool,
    accessor: &'a str,
    display_name: &'a str,
    remote_address: &'a str,
    host: &'a str,
    user: &'a str,
    command: &'a str,
    ci: &'a str,
    correlation_id: &'a str,
    flags: Vec<&'static str>,
    /// What in this row rests only on `X-Keywrap-*` headers, which any token holder can
    /// send: the host, user, command and CI columns when set, and flags that follow from them.
    unverified: Vec<&'static str>,
}

const COLUMNS: [&str; 13] = [
    "time",
    "path",
    "allowed",
    "accessor",
    "display_name",
    "remote_address",
    "host",
    "user",
    "command",
    "ci",
    "correlation_id",
    "flags",
    "unverified",
];

fn row<'a>(report: &'a Report, record: &'a Record) -> Row<'a> {
    let text = |id| report.strings.text(id);
    let mut unverified: Vec<&'static str> = [
        ("host", record.host),
        ("user", record.user),
        ("command", record.command),
        ("ci", record.ci),
    ]
    .into_iter()
    .filter(|(_, id)| !text(*id).is_empty())
    .map(|(name, _)| name)
    .collect();
    unverified.extend(record.flags.unverified());
    Row {
        time: &record.time_text,
        path: text(record.path),
        allowed: record.allowed,
        accessor: text(record.accessor),
        display_name: text(record.display_name),
        remote_address: text(record.remote_address),
        host: text(record.host),
        user: text(record.user),
        command: text(record.command),
        ci: text(record.ci),
        correlation_id: &record.correlation_id,
        flags: record.flags.names(),
        unverified,
    }
}

/// `{"summary": {...}, "reads": [...]}`, written read by read.
pub fn json(report: &Report, out: &mut impl Write) -> io::Result<()> {
    write!(out, "{{\"summary\":")?;
    serde_json::to_writer(&mut *out, &report.stats)?;
    write!(out, ",\"reads\":[")?;
    for (i, record) in report.records.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(b"\n")?;
        serde_json::to_writer(&mut *out, &row(report, record))?;
    }
    writeln!(out, "\n]}}")
}

/// RFC 4180 CSV with a header line; flags joined with `;`.
pub fn csv(report: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{}", COLUMNS.join(","))?;
    for record in &report.records {
        let r = row(report, record);
        let allowed = r.allowed.to_string();
        let flags = r.flags.join(";");
        let unverified = r.unverified.join(";");
        let cells = [
            r.time,
            r.path,
            &allowed,
            r.accessor,
            r.display_name,
            r.remote_address,
            r.host,
            r.user,
            r.command,
            r.ci,
            r.correlation_id,
            &flags,
            &unverified,
        ];
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write_csv_cell(out, cell)?;
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn write_csv_cell(out: &mut impl Write, cell: &str) -> io::Result<()> {
    // A leading = + - @ would run as a formula in a spreadsheet; quote and prefix it.
    let formula = cell.starts_with(['=', '+', '-', '@']);
    if formula || cell.contains([',', '"', '\n', '\r']) {
        write!(
            out,
            "\"{}{}\"",
            if formula { "'" } else { "" },
            cell.replace('"', "\"\"")
        )
    } else {
        out.write_all(cell.as_bytes())
    }
}

/// A table of the reads, then a summary.
pub fn text(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let header: Vec<String> = [
        "TIME", "PATH", "RESULT", "TOKEN", "FROM", "HOST", "USER", "COMMAND", "CI", "FLAGS",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let rows: Vec<Vec<String>> = report
        .records
        .iter()
        .map(|record| {
            let r = row(report, record);
            let token = match (r.display_name, short(r.accessor)) {
                ("", accessor) => accessor,
                (name, accessor) if accessor.is_empty() => name.to_string(),
                (name, accessor) => format!("{name} ({accessor})"),
            };
            vec![
                record
                    .time
                    .map_or_else(|| r.time.to_string(), |t| t.to_rfc3339()),
                r.path.to_string(),
                if r.allowed { "allowed" } else { "DENIED" }.to_string(),
                token,
                r.remote_address.to_string(),
                short(r.host),
                short(r.user),
                short(r.command),
                short(r.ci),
                r.flags
                    .iter()
                    .map(|flag| {
                        if r.unverified.contains(flag) {
                            format!("{flag} (unverified)")
                        } else {
                            flag.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    let mut table = String::new();
    crate::table::render(&header, &rows, &mut table);
    out.write_all(table.as_bytes())?;
    if report
        .records
        .iter()
        .any(|r| !row(report, r).unverified.is_empty())
    {
        writeln!(
            out,
            "\nHOST, USER, COMMAND and CI are what each client claimed in X-Keywrap-* headers, which any token holder can send: unverified. FROM is the address Vault saw."
        )?;
    }
    let s = &report.stats;
    writeln!(
        out,
        "\n{} of {} secret reads shown ({} log lines, {} unreadable); flagged: {} denied, {} new host, {} new CI job, {} burst",
        s.shown, s.reads, s.lines, s.malformed, s.denied, s.new_host, s.new_ci_job, s.burst
    )
}

/// HMAC-ed values (`hmac-sha256:<64 hex>`) shortened to `hmac:<8 hex>`: still enough to
/// tell them apart, without pushing every other column off the screen.
fn short(value: &str) -> String {
    match value.strip_prefix("hmac-sha256:") {
        Some(hex) => format!("hmac:{}", &hex[..hex.len().min(8)]),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        let mut out = Vec::new();
        for cell in ["plain", "a,b", "say \"hi\"", "=cmd()"] {
            write_csv_cell(&mut out, cell).unwrap();
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"'=cmd()\"|"
        );
    }

    #[test]
    fn hmac_values_are_shortened() {
        assert_eq!(short("hmac-sha256:6d6ac3540df03700caef"), "hmac:6d6ac354");
        assert_eq!(short("vm"), "vm");
    }
}
