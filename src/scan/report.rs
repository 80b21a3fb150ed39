//! Output formats: human text (coloured on a terminal), a JSON array, and SARIF 2.1.0 for
//! GitHub code scanning. None of them holds a secret: only previews and fingerprints.

use std::io::Write;

use serde_json::{json, Value};

use super::matcher::Matcher;
use super::Finding;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

/// Writes the findings in the chosen format.
pub fn write(
    out: &mut dyn Write,
    format: Format,
    findings: &[Finding],
    matcher: &Matcher,
    color: bool,
) -> std::io::Result<()> {
    match format {
        Format::Text => text(out, findings, color),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, findings)?;
            writeln!(out)
        }
        Format::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif(findings, matcher))?;
            writeln!(out)
        }
    }
}

fn text(out: &mut dyn Write, findings: &[Finding], color: bool) -> std::io::Result<()> {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    for finding in findings {
        writeln!(
            out,
            "{}  {}  {}  {}",
            paint(
                "1",
                &format!("{}:{}:{}", finding.file, finding.line, finding.column)
            ),
            paint("31", &finding.rule),
            finding.preview,
            paint("2", &finding.description),
        )?;
        if let (Some(commit), Some(author)) = (&finding.commit, &finding.author) {
            let short = &commit[..commit.len().min(12)];
            let date = finding.date.as_deref().unwrap_or("");
            writeln!(
                out,
                "    {} by {author} {date}",
                paint("33", &format!("commit {short}"))
            )?;
        }
    }
    Ok(())
}

/// A SARIF 2.1.0 log with one run: every rule as a reportingDescriptor, every finding as
/// an error-level result with a partial fingerprint, so code scanning tracks it over time.
pub fn sarif(findings: &[Finding], matcher: &Matcher) -> Value {
    let mut rule_ids: Vec<&str> = matcher.rules.iter().map(|r| r.id.as_str()).collect();
    let mut rules: Vec<Value> = matcher
        .rules
        .iter()
        .map(|r| rule_descriptor(&r.id, &r.description))
        .collect();
    if findings.iter().any(|f| f.rule == "vault-value") {
        rule_ids.push("vault-value");
        rules.push(rule_descriptor(
            "vault-value",
            "A value that keywrap.toml references in Vault",
        ));
    }
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let index = rule_ids.iter().position(|id| *id == f.rule).unwrap_or(0);
            let mut message = format!("{} ({}) in {}", f.description, f.preview, f.file);
            if let Some(commit) = &f.commit {
                message.push_str(&format!(", introduced in commit {commit}"));
                if let Some(author) = &f.author {
                    message.push_str(&format!(" by {author}"));
                }
            }
            message.push_str(". Move it into Vault and reference it from keywrap.toml; rotate it if it was ever pushed.");
            json!({
                "ruleId": f.rule,
                "ruleIndex": index,
                "level": "error",
                "message": { "text": message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&f.file), "uriBaseId": "%SRCROOT%" },
                        "region": {
                            "startLine": f.line,
                            "startColumn": f.column,
                            "endLine": f.end_line,
                            "endColumn": f.end_column,
                        }
                    }
                }],
                "partialFingerprints": { "keywrapFingerprint/v1": f.fingerprint },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "keywrap",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

fn rule_descriptor(id: &str, description: &str) -> Value {
    json!({
        "id": id,
        "name": id,
        "shortDescription": { "text": description },
        "fullDescription": { "text": format!("{description}: a credential in a file. Anyone who can read the repository can use it.") },
        "help": { "text": "Move the value into Vault (`keywrap import .env --to secret/myapp`), reference it from keywrap.toml, and run the program with `keywrap exec`. Rotate the key if it was ever pushed." },
        "defaultConfiguration": { "level": "error" },
        "properties": { "tags": ["security", "secret"], "precision": "high", "security-severity": "8.0" },
    })
}

/// A relative URI reference for a path: forward slashes, reserved characters escaped.
fn uri(path: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(&path.replace('\\', "/"), KEEP).to_string()
}
