//! docs/monitoring/: the Prometheus rules and the Grafana dashboard name only metrics the
//! proxy exports, and have the shape Prometheus and Grafana load. `promtool check rules`
//! runs too where promtool is on PATH.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use keywrap::proxy::metrics::Metrics;
use serde_json::Value;

fn monitoring(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/monitoring")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The series names the proxy's `/metrics` can hold.
fn exported() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    // The store's counters are rendered only with `[proxy] store`.
    let text = Metrics::default().render() + &keywrap::proxy::metrics::store_counters(0, 0);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            names.insert(name.to_string());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    names
}

/// Panics unless `expr` names at least one metric and every keywrap metric it names exists.
fn check_expr(place: &str, expr: &str, exported: &BTreeSet<String>) {
    let names = regex::Regex::new(r"\bkeywrap_[a-z_]+").unwrap();
    let used: Vec<&str> = names.find_iter(expr).map(|m| m.as_str()).collect();
    assert!(
        !used.is_empty() || expr.contains("up{"),
        "{place}: {expr} names no keywrap metric"
    );
    for name in used {
        assert!(
            exported.contains(name),
            "{place}: {name} is not a metric the proxy exports ({exported:?})"
        );
    }
}

#[test]
fn every_alerting_rule_uses_exported_metrics() {
    let exported = exported();
    assert!(exported.contains("keywrap_proxy_requests_total"));
    let rules: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&monitoring("keywrap-proxy-rules.yml")).unwrap();
    let mut count = 0;
    for group in rules["groups"].as_sequence().expect("groups") {
        assert!(group["name"].as_str().is_some());
        for rule in group["rules"].as_sequence().expect("rules") {
            let alert = rule["alert"].as_str().expect("every rule is an alert");
            let expr = rule["expr"].as_str().expect("expr");
            assert!(
                rule["annotations"]["summary"].as_str().is_some(),
                "{alert}: summary"
            );
            check_expr(alert, expr, &exported);
            count += 1;
        }
    }
    assert!(count >= 5);
}

#[test]
fn the_dashboard_is_one_grafana_can_import() {
    let exported = exported();
    let dashboard: Value =
        serde_json::from_str(&monitoring("keywrap-proxy-dashboard.json")).unwrap();
    for key in ["uid", "title", "schemaVersion", "panels", "time"] {
        assert!(!dashboard[key].is_null(), "the dashboard has no {key}");
    }
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("panel title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "{title}: id repeated"
        );
        assert!(
            panel["type"].is_string() && panel["gridPos"].is_object(),
            "{title}"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            check_expr(title, target["expr"].as_str().expect("expr"), &exported);
        }
    }
}

#[test]
fn promtool_accepts_the_rules_where_installed() {
    let rules =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/monitoring/keywrap-proxy-rules.yml");
    match Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
    {
        Ok(output) => assert!(
            output.status.success(),
            "promtool check rules:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(_) => eprintln!("promtool is not installed; the parse checks above still ran"),
    }
}
