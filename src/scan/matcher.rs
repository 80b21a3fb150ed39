//! The rule set compiled once into one multi-pattern matcher.
//!
//! Every rule names literal keywords its matches contain. One Aho-Corasick DFA over all
//! the keywords (ASCII case-insensitive; provider names and token prefixes) passes over the
//! input once; only the regions around keyword hits (the hit's line, or 16 KiB for
//! multi-line rules) are run through the hit rules' regexes. Most of a source tree is never
//! seen by a regex.
//!
//! Why a DFA: a SIMD (Teddy) prefilter is faster for a few dozen literals but is lost above
//! 64, and a few hundred rules need a few hundred literals. A DFA steps byte by byte at the
//! same speed whatever the number of literals, folds case in its transitions (no lowercased
//! copy of the input), and walked four ways at once ([`super::keywords`]) it costs no
//! more CPU for 250 literals than the two Teddy passes did for 64.

use std::ops::Range;

use anyhow::{Context, Result};
use regex::bytes::Regex;

use super::literal::{self, FileKind};
use super::rules::{entropy, Decode, Rule, Validate};

/// How far a single-line rule's region reaches around a keyword hit, when the line is
/// longer (minified files): enough for the longest key format and the name before it.
const LINE_REACH_BACK: usize = 256;
const LINE_REACH_FORWARD: usize = 1024;
/// How far before a match [`Rule::name_stopwords`] look for a word on its line.
const NAME_REACH: usize = 24;
/// How far below the most entropy a value of its length can hold a short secret may score.
const SHORT_ENTROPY_MARGIN: f64 = 0.45;
/// How far a multi-line rule's region reaches past its keyword (a 4096-bit RSA key is
/// about 3.3 KiB).
const MULTILINE_REACH: usize = 16 * 1024;
/// How many lines before and after a `near` rule's anchor its partner may be (an AWS
/// credentials file, a CSV row, a client constructor spread over a few lines).
const PAIR_LINES: usize = 3;
/// How far, in bytes, the pairing window reaches each way at most.
const PAIR_REACH: usize = 1024;

/// A rule ready to run.
#[derive(Debug)]
pub struct CompiledRule {
    pub id: String,
    pub description: String,
    regex: LazyRegex,
    /// The capture group holding the secret; `None`: the first group that took part in
    /// the match (a rule may have one per alternative), else the whole match.
    group: Option<usize>,
    /// The public start of a secret, for previews.
    prefix: Option<LazyRegex>,
    /// Whether previews may show what `prefix` matches: for the built-in rules, whose
    /// prefixes are reviewed, and for a user rule's prefix only if it is a plain literal.
    /// A keywrap.toml comes with the repository it sits in: a rule of its own (or one
    /// replacing a built-in) with `prefix = '.*'` would otherwise print whole keys into
    /// the scan's output and the CI logs that keep it.
    show_prefix: bool,
    reject_uuid: bool,
    name_stopwords: Vec<Vec<u8>>,
    /// Matches are base64; their decoded text is scanned with the other rules.
    decode: bool,
    /// The secret is a JWT whose header must be a JSON object's (see [`is_jwt`]).
    validate_jwt: bool,
    /// The secret is a password as typed (see [`super::literal`]).
    validate_password: bool,
    /// A secret equal to the last word before it (a URL's user name) is a default.
    reject_name_value: bool,
    /// The regex is anchored (`^`) and runs from each keyword hit to the end of its line.
    starts_with_keyword: bool,
    min_entropy: Option<f64>,
    multiline: bool,
    stopwords: Vec<Vec<u8>>,
    placeholders: Vec<Vec<u8>>,
    require_digit: bool,
    /// Yields to any other rule matching the same text.
    fallback: bool,
    reject_identifiers: bool,
    near: Option<Near>,
}

/// A rule's pairing with another rule's matches (see [`Rule::near`]).
#[derive(Debug)]
struct Near {
    anchor: usize,
    regex: Option<LazyRegex>,
}

/// One match: which rule, where the secret is, and where its partner is, if it is one half
/// of a pair (an AWS access key ID and its secret access key name each other).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub rule: usize,
    pub secret: Range<usize>,
    pub pair: Option<Range<usize>>,
    /// Found by `rule` in the decoded text of a `decode` rule's match at `secret`.
    pub encoded: bool,
}

/// All rules, compiled.
#[derive(Debug)]
pub struct Matcher {
    pub rules: Vec<CompiledRule>,
    /// The keyword pass: a DFA over every rule's keywords, ASCII case-insensitive.
    keywords: super::keywords::Keywords,
    /// For each keyword: the rules that list it, checked when it is seen.
    keyword_rules: Vec<Vec<usize>>,
    /// For each keyword that several single-line rules share (`key`, `token`): their
    /// regexes as one set, run once over a hit's line to pick the rules that match there,
    /// instead of every rule's regex on every such line.
    keyword_sets: Vec<Option<KeywordSet>>,
    /// For each keyword: its exact spelling, if a rule wants its keywords matched with
    /// their case (a hit in another case is dropped before any regex runs).
    exact_keywords: Vec<Option<Vec<u8>>>,
    /// Rules without keywords: run on the whole input.
    unfiltered: Vec<usize>,
    /// SHA-256 digests of the values some rule lists as public (`public_sha256`): no rule
    /// reports them, so the generic rule does not report a public key that its own rule
    /// lets pass.
    public_values: Vec<[u8; 32]>,
}

impl Matcher {
    pub fn new(rules: &[Rule]) -> Result<Matcher> {
        let builtin = super::rules::builtin();
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            // An id is printed as it is in every finding: no control characters (a
            // keywrap.toml comes with the repository, and an escape sequence in an id would
            // rewrite the terminal of whoever scans it).
            anyhow::ensure!(
                !rule.id.is_empty()
                    && rule
                        .id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "rule id {:?}: an id may hold only letters, digits, '-', '_' and '.'",
                rule.id
            );
            // The built-in rules' regexes are known to compile and to hold their group (a
            // unit test compiles each); a user's are compiled now, so that a bad one fails
            // the scan before it starts.
            let eager = !builtin.iter().any(|b| {
                b.id == rule.id
                    && b.regex == rule.regex
                    && b.near_regex == rule.near_regex
                    && b.prefix == rule.prefix
            });
            let lazy = |pattern: String| LazyRegex::new(&rule.id, pattern, eager);
            let regex = lazy(if rule.starts_with_keyword {
                format!("^(?:{})", rule.regex)
            } else {
                rule.regex.clone()
            })?;
            let group = rule.group;
            if let (Some(group), Some(captures_len)) = (group, regex.captures_len) {
                anyhow::ensure!(
                    group < captures_len,
                    "rule {}: group {group} does not exist in its regex",
                    rule.id
                );
            }
            let near = match &rule.near {
                None => None,
                Some(anchor) => Some(Near {
                    anchor: rules
                        .iter()
                        .position(|r| &r.id == anchor)
                        .with_context(|| {
                            format!("rule {}: near names no rule {anchor:?}", rule.id)
                        })?,
                    regex: match &rule.near_regex {
                        None => None,
                        Some(near_regex) => {
                            let regex = lazy(near_regex.clone())?;
                            if let (Some(group), Some(captures_len)) = (group, regex.captures_len) {
                                anyhow::ensure!(
                                    group < captures_len,
                                    "rule {}: group {group} does not exist in its near_regex",
                                    rule.id
                                );
                            }
                            Some(regex)
                        }
                    },
                }),
            };
            compiled.push(CompiledRule {
                id: rule.id.clone(),
                description: rule.description.clone(),
                regex,
                group,
                prefix: match &rule.prefix {
                    // Anchored: the prefix is where the secret starts.
                    Some(prefix) => Some(lazy(format!("^(?:{prefix})"))?),
                    None => None,
                },
                show_prefix: !eager || rule.prefix.as_deref().is_some_and(is_literal),
                reject_uuid: rule.reject_uuid,
                name_stopwords: lowercase_all(&rule.name_stopwords),
                decode: rule.decode == Some(Decode::Base64),
                validate_jwt: rule.validate == Some(Validate::Jwt),
                validate_password: rule.validate == Some(Validate::Password),
                reject_name_value: rule.reject_name_value,
                starts_with_keyword: rule.starts_with_keyword,
                min_entropy: rule.entropy,
                multiline: rule.multiline,
                stopwords: lowercase_all(&rule.stopwords),
                placeholders: lowercase_all(&rule.placeholders),
                require_digit: rule.require_digit,
                fallback: rule.fallback,
                reject_identifiers: rule.reject_identifiers,
                near,
            });
        }

        let rule_keywords: Vec<Vec<String>> = rules.iter().map(prefilter_keywords).collect();
        let mut keywords: Vec<String> = rule_keywords.iter().flatten().cloned().collect();
        keywords.sort_unstable();
        keywords.dedup();
        // Each keyword carries the rules that list it, no more: the keyword pass reports
        // overlapping hits, so `secret_access_key` is found on its own beside `secret`.
        let keyword_rules: Vec<Vec<usize>> = keywords
            .iter()
            .map(|keyword| {
                rule_keywords
                    .iter()
                    .enumerate()
                    .filter(|(_, ks)| ks.contains(keyword))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        // Keywords that must match with their case (`SK`, not the `sk` of `task`).
        let exact_keywords: Vec<Option<Vec<u8>>> = keywords
            .iter()
            .map(|keyword| {
                rules
                    .iter()
                    .filter(|r| r.exact_keywords)
                    .flat_map(|r| r.keywords.iter())
                    .find(|k| k.to_ascii_lowercase() == *keyword)
                    .map(|k| k.as_bytes().to_vec())
                    .filter(|_| {
                        !rules.iter().any(|r| {
                            !r.exact_keywords
                                && r.keywords.iter().any(|k| k.eq_ignore_ascii_case(keyword))
                        })
                    })
            })
            .collect();
        let unfiltered = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.keywords.iter().all(|k| k.is_empty()))
            .map(|(i, _)| i)
            .collect();
        let keyword_sets = keyword_rules
            .iter()
            .map(|rule_ids| {
                let shared: Vec<usize> = rule_ids
                    .iter()
                    .copied()
                    .filter(|&r| {
                        !rules[r].multiline
                            && rules[r].decode.is_none()
                            && !rules[r].starts_with_keyword
                    })
                    .collect();
                (shared.len() >= KEYWORD_SET_MIN).then(|| KeywordSet {
                    patterns: shared.iter().map(|&r| rules[r].regex.clone()).collect(),
                    rules: shared,
                    compiled: std::sync::OnceLock::new(),
                })
            })
            .collect();
        let mut public_values = Vec::new();
        for rule in rules {
            for hex in &rule.public_sha256 {
                public_values.push(parse_sha256(hex).with_context(|| {
                    format!(
                        "rule {}: public_sha256 holds {hex:?}, not 64 hex digits",
                        rule.id
                    )
                })?);
            }
        }
        let keywords = super::keywords::Keywords::new(&keywords)?;
        Ok(Matcher {
            public_values,
            rules: compiled,
            keywords,
            keyword_sets,
            keyword_rules,
            exact_keywords,
            unfiltered,
        })
    }

    /// Every match of every rule in `data`, in order of position.
    pub fn find(&self, data: &[u8]) -> Vec<RuleMatch> {
        self.find_in(data, true, FileKind::Other)
    }

    /// [`Matcher::find`] for the contents of the file at `path`, whose kind says how a
    /// password literal is written in it (quoted in code, no template in YAML).
    pub fn find_in_file(&self, path: &str, data: &[u8]) -> Vec<RuleMatch> {
        self.find_in(data, true, FileKind::of(path))
    }

    /// Compiles every rule's regexes now (they are compiled on first use otherwise), to
    /// prove in a test that the built-in ones all compile and hold the group they name.
    #[cfg(test)]
    pub fn compile_all(&self) -> Result<()> {
        for rule in &self.rules {
            let near = rule.near.as_ref().and_then(|n| n.regex.as_ref());
            for (lazy, grouped) in [
                (Some(&rule.regex), true),
                (rule.prefix.as_ref(), false),
                (near, true),
            ] {
                let Some(lazy) = lazy else { continue };
                let regex = compile(&lazy.id, &lazy.pattern)?;
                if let (Some(group), true) = (rule.group, grouped) {
                    anyhow::ensure!(
                        group < regex.captures_len(),
                        "rule {}: group {group} does not exist in {}",
                        rule.id,
                        lazy.pattern
                    );
                }
            }
        }
        Ok(())
    }

    /// The number of literals the prefilter searches for.
    pub fn keyword_count(&self) -> usize {
        self.keywords.len()
    }

    /// The size of the keyword DFA's table.
    #[cfg(test)]
    pub fn keyword_table_bytes(&self) -> usize {
        self.keywords.table_bytes()
    }

    /// The public prefix of a secret that `rule` found (empty if it has none).
    pub fn public_prefix<'a>(&self, rule: usize, secret: &'a [u8]) -> &'a [u8] {
        let rule = &self.rules[rule];
        match &rule.prefix {
            // Never more than half the secret, whatever a prefix matches.
            Some(prefix) if rule.show_prefix => prefix
                .get()
                .find(secret)
                .map_or(&[], |m| &secret[..m.end().min(secret.len() / 2)]),
            _ => &[],
        }
    }

    /// [`Matcher::find`]; `decode`: whether `decode` rules run (not inside decoded text).
    fn find_in(&self, data: &[u8], decode: bool, kind: FileKind) -> Vec<RuleMatch> {
        let mut regions: Vec<(usize, Range<usize>)> = Vec::new();
        // The keyword pass reports overlapping hits (`key` inside `key-`) and one line may
        // hold several: a set runs once per line it was last run on.
        let mut last_set_line: Vec<(usize, Range<usize>)> = Vec::new();
        self.keywords.find(data, |pattern, start, end| {
            if let Some(exact) = &self.exact_keywords[pattern] {
                if data[start..end] != exact[..] {
                    return;
                }
            }
            let set = self.keyword_sets[pattern].as_ref();
            if let Some(set) = set {
                let line = self.line_region(data, start, end);
                let last = match last_set_line.iter_mut().find(|(p, _)| *p == pattern) {
                    Some((_, last)) => last,
                    None => {
                        last_set_line.push((pattern, 0..0));
                        &mut last_set_line.last_mut().expect("just pushed").1
                    }
                };
                if *last != line {
                    for index in set.get().matches(&data[line.clone()]).iter() {
                        regions.push((set.rules[index], line.clone()));
                    }
                    *last = line;
                }
            }
            for &rule in &self.keyword_rules[pattern] {
                if self.rules[rule].decode && !decode
                    || set.is_some_and(|set| set.rules.contains(&rule))
                {
                    continue;
                }
                regions.push((rule, self.region(rule, data, start, end)));
            }
        });
        for &rule in &self.unfiltered {
            regions.push((rule, 0..data.len()));
        }
        if regions.is_empty() {
            return Vec::new();
        }
        regions.sort_unstable_by_key(|(rule, range)| (*rule, range.start));
        regions.dedup();

        let mut matches = Vec::new();
        let mut current: Option<(usize, Range<usize>)> = None;
        for (rule, range) in regions {
            match &mut current {
                // An anchored rule's regions are not merged: each starts at its keyword.
                Some((r, merged))
                    if *r == rule
                        && range.start <= merged.end
                        && !self.rules[rule].starts_with_keyword =>
                {
                    merged.end = merged.end.max(range.end);
                }
                _ => {
                    if let Some((r, merged)) = current.take() {
                        self.run_rule(r, data, merged, &mut matches);
                    }
                    current = Some((rule, range));
                }
            }
        }
        if let Some((r, merged)) = current {
            self.run_rule(r, data, merged, &mut matches);
        }
        matches.sort_unstable_by_key(|m| (m.secret.start, m.rule));
        matches.dedup();
        if kind != FileKind::Other {
            matches.retain(|m| {
                !self.rules[m.rule].validate_password || literal::fits_file(kind, data, &m.secret)
            });
        }
        if matches.iter().any(|m| self.rules[m.rule].decode) {
            self.decode(data, &mut matches);
        }
        if !self.public_values.is_empty() {
            matches.retain(|m| {
                let digest = ring::digest::digest(&ring::digest::SHA256, &data[m.secret.clone()]);
                !self.public_values.iter().any(|d| d[..] == *digest.as_ref())
            });
        }
        self.pair(data, &mut matches);
        // A fallback match yields to any other rule's match of the same text, and of two
        // fallback rules on it one reports it: the first listed, and a password rule (the
        // widest net) only if no other does. Overlaps are looked up, not compared pairwise:
        // a file may hold hundreds of thousands of matches.
        if matches.iter().any(|m| self.rules[m.rule].fallback) {
            let specific = Spans::new(
                matches
                    .iter()
                    .filter(|m| !self.rules[m.rule].fallback)
                    .map(|m| m.secret.clone()),
            );
            matches.retain(|m| !self.rules[m.rule].fallback || !specific.overlaps(&m.secret));
            let rank = |rule: usize| (self.rules[rule].validate_password, rule);
            let mut fallback_rules: Vec<usize> = matches
                .iter()
                .filter(|m| self.rules[m.rule].fallback)
                .map(|m| m.rule)
                .collect();
            fallback_rules.sort_unstable_by_key(|&rule| rank(rule));
            fallback_rules.dedup();
            if fallback_rules.len() > 1 {
                let by_rule: Vec<(usize, Spans)> = fallback_rules
                    .iter()
                    .map(|&rule| {
                        let spans = matches
                            .iter()
                            .filter(|m| m.rule == rule)
                            .map(|m| m.secret.clone());
                        (rule, Spans::new(spans))
                    })
                    .collect();
                matches.retain(|m| {
                    !self.rules[m.rule].fallback
                        || by_rule
                            .iter()
                            .take_while(|(rule, _)| rank(*rule) < rank(m.rule))
                            .all(|(_, spans)| !spans.overlaps(&m.secret))
                });
            }
        }
        matches
    }

    /// Replaces each `decode` rule's match with what the other rules find in its decoded
    /// text, placed where the encoded text is.
    fn decode(&self, data: &[u8], matches: &mut Vec<RuleMatch>) {
        let mut inner = Vec::new();
        matches.retain(|m| {
            if !self.rules[m.rule].decode {
                return true;
            }
            if let Some(decoded) = decode_base64(&data[m.secret.clone()]) {
                for found in self.find_in(&decoded, false, FileKind::Other) {
                    inner.push(RuleMatch {
                        rule: found.rule,
                        secret: m.secret.clone(),
                        pair: None,
                        encoded: true,
                    });
                }
            }
            false
        });
        if !inner.is_empty() {
            matches.extend(inner);
            matches.sort_unstable_by_key(|m| (m.secret.start, m.rule));
            matches.dedup();
        }
    }

    /// The part of `data` a rule's regex must see for a keyword hit at `start..end`.
    fn region(&self, rule: usize, data: &[u8], start: usize, end: usize) -> Range<usize> {
        let anchored = self.rules[rule].starts_with_keyword;
        if self.rules[rule].multiline {
            let from = if anchored {
                start
            } else {
                line_start(data, start, LINE_REACH_BACK)
            };
            return from..(end + MULTILINE_REACH).min(data.len());
        }
        let line = self.line_region(data, start, end);
        if anchored {
            start..line.end
        } else {
            line
        }
    }

    /// A single-line rule's region: the hit's line.
    fn line_region(&self, data: &[u8], start: usize, end: usize) -> Range<usize> {
        let mut until = line_end(data, end, LINE_REACH_FORWARD);
        // An XML element whose value is on the next line (`<apiToken>` then the value):
        // a line ending in `>` brings the next line with it.
        if data[..until].trim_ascii_end().ends_with(b">") && until < data.len() {
            until = line_end(data, until + 1, LINE_REACH_FORWARD);
        }
        line_start(data, start, LINE_REACH_BACK)..until
    }

    fn run_rule(&self, index: usize, data: &[u8], region: Range<usize>, out: &mut Vec<RuleMatch>) {
        self.run_regex(index, self.rules[index].regex.get(), data, region, out);
    }

    fn run_regex(
        &self,
        index: usize,
        regex: &Regex,
        data: &[u8],
        region: Range<usize>,
        out: &mut Vec<RuleMatch>,
    ) {
        let rule = &self.rules[index];
        let offset = region.start;
        let haystack = &data[region];
        // Most regions hold no match, and telling so is cheaper than a search for groups.
        if !regex.is_match(haystack) {
            return;
        }
        for captures in regex.captures_iter(haystack) {
            let secret = match rule.group {
                Some(group) => captures.get(group),
                None => captures
                    .iter()
                    .skip(1)
                    .flatten()
                    .next()
                    .or_else(|| captures.get(0)),
            };
            let Some(secret) = secret else {
                continue;
            };
            // The name: the match before the secret, and up to NAME_REACH bytes of its line
            // before the match (`public_` in `public_key = …`), which may lie before the
            // region (an anchored rule's starts at its keyword).
            let whole = offset + captures.get(0).expect("group 0 always matches").start();
            let floor = whole.saturating_sub(NAME_REACH);
            let from = memchr::memrchr(b'\n', &data[floor..whole]).map_or(floor, |i| floor + i + 1);
            let before = &data[from..(offset + secret.start()).max(from)];
            if rule.accepts(secret.as_bytes(), before) {
                out.push(RuleMatch {
                    rule: index,
                    secret: offset + secret.start()..offset + secret.end(),
                    pair: None,
                    encoded: false,
                });
            }
        }
    }

    /// Links each `near` rule's matches to the anchor match a few lines away (and finds,
    /// with its `near_regex`, partners that carry no name), so a key pair reads as one.
    /// `matches` is sorted by position and stays so.
    fn pair(&self, data: &[u8], matches: &mut Vec<RuleMatch>) {
        let mut added = false;
        for (index, rule) in self.rules.iter().enumerate() {
            let Some(near) = &rule.near else { continue };
            let anchors: Vec<usize> = (0..matches.len())
                .filter(|&i| matches[i].rule == near.anchor)
                .collect();
            for anchor in anchors {
                let window = lines_around(data, &matches[anchor].secret);
                if let Some(regex) = &near.regex {
                    let before = matches.len();
                    self.run_regex(index, regex.get(), data, window.clone(), matches);
                    added |= matches.len() > before;
                }
            }
        }
        if added {
            matches.sort_unstable_by_key(|m| (m.secret.start, m.rule));
            matches.dedup();
        }
        for (index, rule) in self.rules.iter().enumerate() {
            let Some(near) = &rule.near else { continue };
            for anchor in 0..matches.len() {
                if matches[anchor].rule != near.anchor || matches[anchor].pair.is_some() {
                    continue;
                }
                let window = lines_around(data, &matches[anchor].secret);
                let anchor_at = matches[anchor].secret.start;
                let partner = (0..matches.len())
                    .filter(|&i| {
                        let m = &matches[i];
                        m.rule == index
                            && m.pair.is_none()
                            && window.start <= m.secret.start
                            && m.secret.end <= window.end
                    })
                    .min_by_key(|&i| matches[i].secret.start.abs_diff(anchor_at));
                if let Some(partner) = partner {
                    matches[partner].pair = Some(matches[anchor].secret.clone());
                    matches[anchor].pair = Some(matches[partner].secret.clone());
                }
            }
        }
    }
}

/// Byte ranges, for asking whether any of them overlaps a given one in O(log n).
struct Spans {
    /// Sorted by start.
    starts: Vec<usize>,
    /// The largest end among the ranges up to and including each index.
    max_ends: Vec<usize>,
}

impl Spans {
    fn new(ranges: impl Iterator<Item = Range<usize>>) -> Spans {
        let mut ranges: Vec<Range<usize>> = ranges.collect();
        ranges.sort_unstable_by_key(|r| r.start);
        let mut max_end = 0;
        let max_ends = ranges
            .iter()
            .map(|r| {
                max_end = max_end.max(r.end);
                max_end
            })
            .collect();
        Spans {
            starts: ranges.iter().map(|r| r.start).collect(),
            max_ends,
        }
    }

    fn overlaps(&self, range: &Range<usize>) -> bool {
        let before_end = self.starts.partition_point(|&start| start < range.end);
        before_end > 0 && self.max_ends[before_end - 1] > range.start
    }
}

/// Rules match ASCII: `\w`, `\s` and `(?i)` without Unicode's tables compile to automata a
/// fraction of the size, faster to build on first use and to run.
fn compile(id: &str, regex: &str) -> Result<Regex> {
    regex::bytes::RegexBuilder::new(regex)
        .unicode(false)
        .size_limit(50 << 20)
        .build()
        .with_context(|| format!("rule {id}: invalid regex"))
}

/// How many single-line rules must share a keyword for their regexes to be run as a set.
const KEYWORD_SET_MIN: usize = 3;

/// The regexes of the rules that share a keyword, compiled as one set on first use.
#[derive(Debug)]
struct KeywordSet {
    rules: Vec<usize>,
    patterns: Vec<String>,
    compiled: std::sync::OnceLock<regex::bytes::RegexSet>,
}

impl KeywordSet {
    fn get(&self) -> &regex::bytes::RegexSet {
        self.compiled.get_or_init(|| {
            regex::bytes::RegexSetBuilder::new(&self.patterns)
                .unicode(false)
                .size_limit(100 << 20)
                .build()
                .expect("each regex of the set compiles on its own")
        })
    }
}

/// A rule's regex, compiled the first time a keyword hit needs it: in a given tree most of
/// the few hundred rules never see a hit, and compiling them all costs about 0.1 s of CPU
/// at start, a pre-commit hook's whole budget for a few staged files.
#[derive(Debug)]
struct LazyRegex {
    id: String,
    pattern: String,
    /// Capture groups, group 0 included, of a regex compiled up front.
    captures_len: Option<usize>,
    compiled: std::sync::OnceLock<Regex>,
}

impl LazyRegex {
    /// Compiles now if `eager`; else on first use, with no check at all: a built-in
    /// rule's regexes are checked by a unit test, and parsing 300-odd patterns only to
    /// check them would take a third of the start-up.
    fn new(id: &str, pattern: String, eager: bool) -> Result<LazyRegex> {
        let compiled = std::sync::OnceLock::new();
        let captures_len = if eager {
            let regex = compile(id, &pattern)?;
            let len = regex.captures_len();
            let _ = compiled.set(regex);
            Some(len)
        } else {
            None
        };
        Ok(LazyRegex {
            id: id.to_owned(),
            pattern,
            captures_len,
            compiled,
        })
    }

    fn get(&self) -> &Regex {
        self.compiled.get_or_init(|| {
            compile(&self.id, &self.pattern).expect("a built-in rule's regex compiles")
        })
    }
}

/// [`PAIR_LINES`] lines before and after the lines holding `range`, within [`PAIR_REACH`]
/// bytes each way.
fn lines_around(data: &[u8], range: &Range<usize>) -> Range<usize> {
    let floor = range.start.saturating_sub(PAIR_REACH);
    let start = memchr::memrchr_iter(b'\n', &data[floor..range.start])
        .nth(PAIR_LINES)
        .map_or(floor, |i| floor + i + 1);
    let ceiling = (range.end + PAIR_REACH).min(data.len());
    let end = memchr::memchr_iter(b'\n', &data[range.end..ceiling])
        .nth(PAIR_LINES)
        .map_or(ceiling, |i| range.end + i);
    start..end
}

impl CompiledRule {
    /// The secret after its public prefix (all of it for a rule without one).
    fn random_part<'a>(&self, secret: &'a [u8]) -> &'a [u8] {
        match &self.prefix {
            Some(prefix) => prefix
                .get()
                .find(secret)
                .map_or(secret, |m| &secret[m.end()..]),
            None => secret,
        }
    }

    /// Whether a matched secret is one: entropy, placeholders and stopwords, and a digit
    /// where required. `before`: the matched text before the secret (its name).
    fn accepts(&self, secret: &[u8], before: &[u8]) -> bool {
        if !self.name_stopwords.is_empty() {
            let name = before.to_ascii_lowercase();
            if self.name_stopwords.iter().any(|w| contains(&name, w)) {
                return false;
            }
        }
        if self.reject_uuid && is_uuid(secret) {
            return false;
        }
        if self.validate_jwt && !is_jwt(secret) {
            return false;
        }
        if self.validate_password && !literal::is_password(secret, before) {
            return false;
        }
        if self.reject_name_value && last_word(before).eq_ignore_ascii_case(secret) {
            return false;
        }
        if let Some(minimum) = self.min_entropy {
            // A short random value cannot reach a long one's entropy (12 characters hold at
            // most log2(12) = 3.6 bits each): below 18 characters the bar is set from the
            // length, so a 12 to 17 character key is judged against what random text of
            // its length scores.
            let mut minimum = minimum.min((secret.len() as f64).log2() - SHORT_ENTROPY_MARGIN);
            // Hex digits hold 4 bits at most, and random 32 to 40 of them score 3.5 to
            // 3.8: the generic rules' bar, set for base62 keys, would turn most hex keys
            // away. (A provider's rule sets its bar for its own alphabet.)
            if self.fallback && secret.len() >= 20 && secret.iter().all(u8::is_ascii_hexdigit) {
                minimum = minimum.min(HEX_ENTROPY);
            }
            if entropy(secret) < minimum {
                return false;
            }
        }
        if self.require_digit {
            // Checked after the public prefix: a prefix's own digit (`sq0`, `xoxe.xoxp-1-`)
            // says nothing about the random part.
            let random = self.random_part(secret);
            if !(random.iter().any(u8::is_ascii_digit)
                && random.iter().any(u8::is_ascii_alphabetic))
            {
                return false;
            }
        }
        if self.reject_identifiers
            && (is_identifier(secret) || is_file_path(secret) || repeats_name(before, secret))
        {
            return false;
        }
        if self.stopwords.is_empty() && self.placeholders.is_empty() {
            return true;
        }
        let lower = secret.to_ascii_lowercase();
        !self.placeholders.contains(&lower) && !self.stopwords.iter().any(|w| contains(&lower, w))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

fn lowercase_all(words: &[String]) -> Vec<Vec<u8>> {
    words
        .iter()
        .map(|w| w.to_ascii_lowercase().into_bytes())
        .collect()
}

/// The entropy bar for a value of 20 hex digits or more (see `accepts`).
const HEX_ENTROPY: f64 = 3.2;

/// Whether the value repeats the last word of its name (`KeyMeshing = "id-…-KeyMeshing"`):
/// a constant naming itself, not a secret.
fn repeats_name(before: &[u8], secret: &[u8]) -> bool {
    let word = last_word(before);
    word.len() >= 6 && contains(&secret.to_ascii_lowercase(), &word.to_ascii_lowercase())
}

/// The last run of letters and digits in text (empty if none).
fn last_word(text: &[u8]) -> &[u8] {
    text.split(|b| !b.is_ascii_alphanumeric())
        .rfind(|word| !word.is_empty())
        .unwrap_or_default()
}

/// Whether a regex matches only itself: letters, digits, common punctuation that is no
/// regex syntax, and escaped punctuation (`acme_`, `sk\.live-`).
fn is_literal(pattern: &str) -> bool {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let plain = c.is_ascii_alphanumeric() || "_-:/=~@%!#&,;<>'\"` ".contains(c);
        let escaped = c == '\\' && chars.next().is_some_and(|e| e.is_ascii_punctuation());
        if !(plain || escaped) {
            return false;
        }
    }
    true
}

/// A digest written as 64 hex digits.
fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        digest[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

/// 8-4-4-4-12 hex digits.
fn is_uuid(text: &[u8]) -> bool {
    text.len() == 36
        && text.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The lowercased literals the prefilter looks for on a rule's behalf: its keywords, or for
/// a base64 rule the base64 forms of its keywords.
fn prefilter_keywords(rule: &Rule) -> Vec<String> {
    let keywords = rule.keywords.iter().filter(|k| !k.is_empty());
    let mut out: Vec<String> = if rule.decode == Some(Decode::Base64) {
        keywords.flat_map(|k| base64_forms(k.as_bytes())).collect()
    } else {
        keywords.cloned().collect()
    };
    for keyword in &mut out {
        keyword.make_ascii_lowercase();
    }
    out
}

/// What base64 text holds wherever `needle` is in the encoded bytes: at each of the three
/// alignments, the characters that only the needle's bits make up (standard and URL-safe
/// alphabets), if at least 4.
fn base64_forms(needle: &[u8]) -> Vec<String> {
    use base64::Engine;
    let mut forms = Vec::new();
    for align in 0..3usize {
        let mut bytes = vec![0u8; align];
        bytes.extend_from_slice(needle);
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        let (first_bit, end_bit) = (8 * align, 8 * bytes.len());
        let chars: String = encoded
            .chars()
            .enumerate()
            .filter(|(k, _)| 6 * k >= first_bit && 6 * k + 6 <= end_bit)
            .map(|(_, c)| c)
            .collect();
        if chars.len() >= 4 {
            let url_safe = chars.replace('+', "-").replace('/', "_");
            if url_safe != chars {
                forms.push(url_safe);
            }
            forms.push(chars);
        }
    }
    forms
}

/// A base64 decoder that takes text as found in files: padding optional, stray low bits
/// in the last character allowed.
fn lenient_base64(alphabet: &base64::alphabet::Alphabet) -> base64::engine::GeneralPurpose {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    GeneralPurpose::new(alphabet, config)
}

/// Decodes standard or URL-safe base64 (padding optional) to text; `None` if it is not
/// base64 of mostly printable text.
fn decode_base64(encoded: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let alphabet = if encoded.iter().any(|b| *b == b'-' || *b == b'_') {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    };
    let trimmed = encoded
        .strip_suffix(b"==")
        .or_else(|| encoded.strip_suffix(b"="))
        .unwrap_or(encoded);
    let usable = &trimmed[..trimmed.len() - usize::from(trimmed.len() % 4 == 1)];
    let decoded = lenient_base64(alphabet).decode(usable).ok()?;
    let printable = decoded
        .iter()
        .filter(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    (decoded.len() >= 16 && printable * 20 >= decoded.len() * 19).then_some(decoded)
}

/// Whether a JWT's header (its text up to the first dot) is base64url of a JSON object
/// with an `alg` member, as every issued token's is: `{…"alg"…}`. A made-up or truncated
/// token's header (`eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ`, which ends before its `}`) is
/// not. Checked by shape, not parsed, so that a token with one character changed (as in
/// documentation that defaces a real one) still counts.
fn is_jwt(token: &[u8]) -> bool {
    use base64::Engine;
    let header = token.split(|&b| b == b'.').next().unwrap_or_default();
    let Ok(json) = lenient_base64(&base64::alphabet::URL_SAFE).decode(header) else {
        return false;
    };
    let json = json.trim_ascii();
    json.starts_with(b"{") && json.ends_with(b"}") && contains(json, b"\"alg\"")
}

/// Whether text is a name or member path in code rather than a random value: words joined
/// by `_` or `.`, each in one case or PascalCase (`nl80211_key_attributes`,
/// `MSV1_0_CREDENTIAL_KEY_TYPE`, `created.auth.client_token.0`), or PascalCase words
/// (`X509CertificateTemplateFlag`). Random values mix cases within their runs.
fn is_identifier(text: &[u8]) -> bool {
    let separator = |b: &u8| *b == b'_' || *b == b'.';
    let joined = text.iter().any(separator)
        && text.split(separator).all(|word| {
            word.iter().all(u8::is_ascii_alphanumeric)
                && (!(word.iter().any(u8::is_ascii_lowercase)
                    && word.iter().any(u8::is_ascii_uppercase))
                    || pascal_words(word) >= 1)
        });
    joined || pascal_words(text) >= 2
}

/// Whether text is a file path (`/etc/ssl/private/server.key`, `./certs/app.pem`): rooted
/// or relative, with a file name and extension at the end. A base64 value may start with
/// `/` too, but its last run rarely ends in a dot and two to four lowercase letters.
fn is_file_path(text: &[u8]) -> bool {
    let rooted = [&b"/"[..], b"./", b"../", b"~/"]
        .iter()
        .any(|start| text.starts_with(start));
    let name = text.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let extension = name.rsplit(|&b| b == b'.').next().unwrap_or_default();
    // Relative without `./` too (`env/cert.p12`): base64 has no dots, so a dotted last
    // part after a slash is a file name.
    let relative = text.contains(&b'/') && name.contains(&b'.');
    (rooted || relative)
        && name.len() > extension.len() + 1
        && (2..=4).contains(&extension.len())
        && extension
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && extension.iter().any(u8::is_ascii_lowercase)
}

/// The number of PascalCase words in text (0 if it is not PascalCase): each word one or
/// more capitals, then at least two lowercase letters or digits, digits last (the last
/// word may be shorter).
fn pascal_words(text: &[u8]) -> usize {
    let mut rest = text;
    let mut words = 0;
    while !rest.is_empty() {
        let capitals = rest.iter().take_while(|b| b.is_ascii_uppercase()).count();
        let tail = rest[capitals..]
            .iter()
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            .count();
        let end = capitals + tail;
        // Digits end a word (`Sha256`, `X509`), never sit between its letters (`K7t` in a
        // random `HmaXnlK7tYjc` is no word).
        let letters = rest[capitals..end]
            .iter()
            .take_while(|b| b.is_ascii_lowercase())
            .count();
        let digits_last = rest[capitals + letters..end].iter().all(u8::is_ascii_digit);
        if capitals == 0 || (tail < 2 && end < rest.len()) || !digits_last {
            return 0;
        }
        rest = &rest[end..];
        words += 1;
    }
    words
}

/// The start of the line holding `pos`, looking back at most `reach` bytes.
fn line_start(data: &[u8], pos: usize, reach: usize) -> usize {
    let floor = pos.saturating_sub(reach);
    memchr::memrchr(b'\n', &data[floor..pos]).map_or(floor, |i| floor + i + 1)
}

/// The end of the line holding `pos`, looking forward at most `reach` bytes.
fn line_end(data: &[u8], pos: usize, reach: usize) -> usize {
    let ceiling = (pos + reach).min(data.len());
    memchr::memchr(b'\n', &data[pos..ceiling]).map_or(ceiling, |i| pos + i)
}

#[cfg(test)]
mod tests {
    use super::Spans;

    #[test]
    fn spans_tell_overlaps_in_any_order() {
        let spans = Spans::new([30..40, 0..100, 5..8].into_iter());
        assert!(spans.overlaps(&(50..60)), "inside the long range");
        let spans = Spans::new([30..40, 5..8].into_iter());
        assert!(spans.overlaps(&(7..9)));
        assert!(spans.overlaps(&(39..45)));
        assert!(!spans.overlaps(&(8..30)), "touching is not overlapping");
        assert!(!spans.overlaps(&(40..50)));
        assert!(!spans.overlaps(&(0..5)));
        assert!(!Spans::new(std::iter::empty()).overlaps(&(0..10)));
    }
}
