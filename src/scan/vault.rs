//! `--vault`: the exact values keywrap.toml references, held only as keyed hashes.
//!
//! A key without a recognisable prefix is still found if it is one of yours. Each value is
//! reduced to its length, a SipHash under the process's random keys (a fast filter) and an
//! HMAC-SHA256 under a random per-run key (the confirmation); the values themselves are
//! dropped before any file is read. Candidate windows in a file are those of a value's
//! length that start and end on a token boundary.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::ops::Range;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::secret::SecretValue;

/// Values shorter than this are too likely to occur by chance (`true`, `8080`).
pub const MIN_LENGTH: usize = 8;

/// Keyed hashes of the values to look for, and a label (variable and reference) for each.
pub struct VaultValues {
    lengths: Vec<usize>,
    quick: RandomState,
    quick_hashes: HashSet<u64>,
    hmac_key: hmac::Key,
    labels: HashMap<[u8; 32], String>,
}

impl std::fmt::Debug for VaultValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VaultValues({} values)", self.labels.len())
    }
}

impl VaultValues {
    /// Hashes each `(label, value)`; values shorter than [`MIN_LENGTH`] are skipped and
    /// their labels returned.
    pub fn new(values: Vec<(String, SecretValue)>) -> (VaultValues, Vec<String>) {
        let mut key_bytes = zeroize::Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut key_bytes[..])
            .expect("the system random number generator works");
        let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes[..]);
        let mut set = VaultValues {
            lengths: Vec::new(),
            quick: RandomState::new(),
            quick_hashes: HashSet::new(),
            hmac_key,
            labels: HashMap::new(),
        };
        let mut skipped = Vec::new();
        for (label, value) in values {
            let bytes = value.expose().as_bytes();
            if bytes.len() < MIN_LENGTH {
                skipped.push(label);
                continue;
            }
            set.quick_hashes.insert(set.quick.hash_one(bytes));
            set.labels.insert(set.mac(bytes), label);
            if !set.lengths.contains(&bytes.len()) {
                set.lengths.push(bytes.len());
            }
        }
        (set, skipped)
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn mac(&self, bytes: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.hmac_key, bytes);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Every occurrence of a value in `data`: its label and where it is.
    pub fn find(&self, data: &[u8]) -> Vec<(String, Range<usize>)> {
        let mut found = Vec::new();
        for start in 0..data.len() {
            if !is_boundary(data, start) {
                continue;
            }
            for &length in &self.lengths {
                let end = start + length;
                if end > data.len() || !is_boundary(data, end) {
                    continue;
                }
                let window = &data[start..end];
                if !self.quick_hashes.contains(&self.quick.hash_one(window)) {
                    continue;
                }
                if let Some(label) = self.labels.get(&self.mac(window)) {
                    found.push((label.clone(), start..end));
                }
            }
        }
        found
    }
}

/// A token boundary: the ends of the buffer, or between two bytes that are not both
/// alphanumeric.
fn is_boundary(data: &[u8], at: usize) -> bool {
    at == 0
        || at == data.len()
        || !(data[at - 1].is_ascii_alphanumeric() && data[at].is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exact_values_on_token_boundaries_only() {
        let value = format!("{}{}", "q7Xv2LpR", "9sKd4TzW");
        let (set, skipped) = VaultValues::new(vec![
            ("A (secret/a#k)".into(), SecretValue::new(value.clone())),
            ("B (secret/b#k)".into(), SecretValue::new("short".into())),
        ]);
        assert_eq!(skipped, ["B (secret/b#k)"]);
        let text = format!("x = \"{value}\"\ny = z{value}\nurl=https://u:{value}@h\n");
        let found = set.find(text.as_bytes());
        let starts: Vec<usize> = found.iter().map(|(_, r)| r.start).collect();
        assert_eq!(found.len(), 2, "{starts:?}");
        assert_eq!(found[0].0, "A (secret/a#k)");
        assert_eq!(&text[found[0].1.clone()], value);
        assert!(!format!("{set:?}").contains(&value));
    }
}
