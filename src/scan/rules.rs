//! Rule definitions: the built-in set (the data files in `rules/`, compiled into the
//! binary) plus the user's `[[rules]]` from keywrap.toml or `--rules FILE`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The built-in rules, data files so that reading them is reading a table: `core.toml` holds
/// the field reference, the AI providers, the big clouds, source hosts and the generic
/// rules; the others one group of providers each.
const BUILTIN: &[(&str, &str)] = &[
    ("core.toml", include_str!("rules/core.toml")),
    (
        "infrastructure.toml",
        include_str!("rules/infrastructure.toml"),
    ),
    ("saas.toml", include_str!("rules/saas.toml")),
    (
        "payments-messaging.toml",
        include_str!("rules/payments-messaging.toml"),
    ),
];

/// Defined beside keywrap.toml's other sections, which hold the user's rules, so that
/// `config` need not import `scan`.
pub use crate::config::{ScanDecode as Decode, ScanRule as Rule, ScanValidate as Validate};

/// A file of rules: `[[rules]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rules: Vec<Rule>,
}

/// The built-in rules, parsed once per process (the scan's rule set and the matcher's
/// check of which rules are built-in both ask for them).
pub fn builtin() -> Vec<Rule> {
    static PARSED: std::sync::OnceLock<Vec<Rule>> = std::sync::OnceLock::new();
    PARSED
        .get_or_init(|| {
            BUILTIN
                .iter()
                .flat_map(|(name, text)| {
                    let file: RulesFile = toml::from_str(text).unwrap_or_else(|err| {
                        panic!("the built-in rules/{name} does not parse: {err}")
                    });
                    file.rules
                })
                .collect()
        })
        .clone()
}

/// Reads a `--rules FILE`.
pub fn load(path: &Path) -> Result<Vec<Rule>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read rules file {}", path.display()))?;
    let file: RulesFile = toml::from_str(&text)
        .map_err(|err| anyhow::anyhow!("{}: {}", path.display(), err.message().trim_end()))?;
    Ok(file.rules)
}

/// Adds `extra` to `rules`; a rule with an existing id replaces it.
pub fn merge(rules: &mut Vec<Rule>, extra: Vec<Rule>) -> Result<()> {
    for rule in extra {
        if rule.id.trim().is_empty() {
            bail!("a rule has an empty id");
        }
        match rules.iter_mut().find(|r| r.id == rule.id) {
            Some(existing) => *existing = rule,
            None => rules.push(rule),
        }
    }
    Ok(())
}

/// Shannon entropy in bits per character: random base62 text is near 5.9, English words
/// and identifiers near 3 to 3.5.
pub fn entropy(text: &[u8]) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &byte in text {
        counts[byte as usize] += 1;
    }
    let len = text.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_have_unique_ids_and_keywords() {
        let rules = builtin();
        assert!(rules.len() >= 15);
        let mut ids: Vec<_> = rules.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), rules.len(), "duplicate rule id");
        assert!(
            rules.iter().all(|r| !r.keywords.is_empty()),
            "every built-in rule is prefiltered"
        );
    }

    #[test]
    fn user_rules_replace_by_id_and_add() {
        let mut rules = builtin();
        let count = rules.len();
        let extra: RulesFile = toml::from_str(
            "[[rules]]\nid = \"jwt\"\ndescription = \"mine\"\nregex = \"x\"\n[[rules]]\nid = \"acme\"\ndescription = \"Acme key\"\nregex = \"acme_[0-9]{8}\"\nkeywords = [\"acme_\"]\n",
        )
        .unwrap();
        merge(&mut rules, extra.rules).unwrap();
        assert_eq!(rules.len(), count + 1);
        assert_eq!(
            rules.iter().find(|r| r.id == "jwt").unwrap().description,
            "mine"
        );
    }

    #[test]
    fn entropy_separates_words_from_keys() {
        assert!(entropy(b"aaaaaaaaaaaaaaaa") < 0.1);
        assert!(entropy(b"get_api_key_from_env") < 3.7);
        assert!(entropy(b"q7Xv2LpR9sKd4TzW8nYb") > 4.0);
    }
}
