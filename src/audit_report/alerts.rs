//! `audit report --alert REF`: one alert per flag and secret path the report shows, with
//! how many reads it covers and the first of them. The report's reads carry paths, hosts
//! and accessors, never a secret value or a token.

use std::collections::BTreeMap;

use super::Report;
use crate::alerts::Alert;

pub fn anomalies(report: &Report) -> Vec<Alert> {
    // (flag, path) -> (reads, first read's time and host)
    let mut grouped: BTreeMap<(&'static str, &str), (u64, String, String)> = BTreeMap::new();
    for record in &report.records {
        for flag in record.flags.names() {
            let path = report.strings.text(record.path);
            let entry = grouped.entry((flag, path)).or_insert_with(|| {
                let host = [record.host, record.remote_address]
                    .into_iter()
                    .map(|id| report.strings.text(id))
                    .find(|text| !text.is_empty())
                    .unwrap_or("an unknown host");
                (0, record.time_text.to_string(), host.to_string())
            });
            entry.0 += 1;
        }
    }
    grouped
        .into_iter()
        .map(|((flag, path), (reads, first, host))| Alert {
            rule: flag.replace(' ', "_"),
            subject: path.to_string(),
            threshold: flag.to_string(),
            period: "audit report".to_string(),
            message: format!(
                "{reads} read{} of {path} flagged \"{flag}\" in the audit log; the first at {first} from {host}",
                if reads == 1 { "" } else { "s" }
            ),
        })
        .collect()
}
