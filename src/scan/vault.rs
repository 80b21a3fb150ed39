//! `--vault`: the exact values keywrap.toml references, held only as keyed hashes.
//!
//! A key without a recognisable prefix is still found if it is one of yours. Each value is
//! reduced to its length, a polynomial rolling hash under a random per-run base (a fast
//! filter, updated in constant time per byte) and an HMAC-SHA256 under a random per-run key
//! (the confirmation); the values themselves are dropped before any file is read.
//!
//! A value of [`ANYWHERE_LENGTH`] characters or more is found wherever it occurs, even
//! glued to other text (`0x<value>`, `"\t<value>"`): no such string occurs by chance.
//! Shorter values only count on token boundaries, where `password1` is not found inside
//! `mypassword12`.

use std::collections::HashMap;
use std::ops::Range;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::secret::SecretValue;

/// Values shorter than this are too likely to occur by chance (`true`, `8080`).
pub const MIN_LENGTH: usize = 8;
/// Values at least this long are found anywhere, not only on token boundaries.
pub const ANYWHERE_LENGTH: usize = 16;

/// The rolling hash's modulus: the Mersenne prime 2^61 - 1, reduced without division.
const MODULUS: u64 = (1 << 61) - 1;
/// Bits of the rolling hash indexing the filter table (64 Ki bits, 8 KiB).
const FILTER_BITS: u32 = 16;

/// Keyed hashes of the values to look for, and a label (variable and reference) for each.
pub struct VaultValues {
    base: u64,
    /// One per distinct value length.
    windows: Vec<Window>,
    hmac_key: hmac::Key,
    labels: HashMap<[u8; 32], String>,
}

/// The rolling hashes of the values of one length.
struct Window {
    length: usize,
    /// base^(length - 1): the weight of the byte leaving the window.
    top: u64,
    /// A bit per low-bits pattern of the hashes: most positions are rejected here.
    filter: Vec<u64>,
    hashes: Vec<u64>,
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
        let random = SystemRandom::new();
        let mut key_bytes = zeroize::Zeroizing::new([0u8; 32]);
        random
            .fill(&mut key_bytes[..])
            .expect("the system random number generator works");
        let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes[..]);
        let mut base_bytes = [0u8; 8];
        random
            .fill(&mut base_bytes)
            .expect("the system random number generator works");
        let base = u64::from_le_bytes(base_bytes) % (MODULUS - 512) + 256;
        let mut set = VaultValues {
            base,
            windows: Vec::new(),
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
            let hash = set.hash(bytes);
            let window = match set.windows.iter_mut().position(|w| w.length == bytes.len()) {
                Some(i) => &mut set.windows[i],
                None => {
                    let top = (1..bytes.len()).fold(1, |power, _| mul(power, base));
                    set.windows.push(Window {
                        length: bytes.len(),
                        top,
                        filter: vec![0; 1 << (FILTER_BITS - 6)],
                        hashes: Vec::new(),
                    });
                    set.windows.last_mut().expect("just pushed")
                }
            };
            window.insert(hash);
            let mac = set.mac(bytes);
            set.labels.insert(mac, label);
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

    fn hash(&self, bytes: &[u8]) -> u64 {
        bytes
            .iter()
            .fold(0, |hash, &byte| add(mul(hash, self.base), u64::from(byte)))
    }

    /// Every occurrence of a value in `data`: its label and where it is.
    pub fn find(&self, data: &[u8]) -> Vec<(String, Range<usize>)> {
        let mut found = Vec::new();
        for window in &self.windows {
            let length = window.length;
            if data.len() < length {
                continue;
            }
            let anywhere = length >= ANYWHERE_LENGTH;
            let mut hash = self.hash(&data[..length]);
            for start in 0..=data.len() - length {
                if start > 0 {
                    hash = window.roll(hash, self.base, data[start - 1], data[start + length - 1]);
                }
                if !window.may_hold(hash) {
                    continue;
                }
                let end = start + length;
                let on_boundaries = is_boundary(data, start) && is_boundary(data, end);
                if !(anywhere || on_boundaries) {
                    continue;
                }
                if let Some(label) = self.labels.get(&self.mac(&data[start..end])) {
                    found.push((label.clone(), start..end));
                }
            }
        }
        found.sort_by_key(|(_, range)| range.start);
        found
    }
}

impl Window {
    /// The hash of the window one byte further on: `leaving` out, `entering` in.
    fn roll(&self, hash: u64, base: u64, leaving: u8, entering: u8) -> u64 {
        let leaving = mul(u64::from(leaving), self.top);
        add(mul(add(hash, MODULUS - leaving), base), u64::from(entering))
    }

    fn insert(&mut self, hash: u64) {
        let bit = hash & ((1 << FILTER_BITS) - 1);
        self.filter[(bit >> 6) as usize] |= 1 << (bit & 63);
        self.hashes.push(hash);
    }

    fn may_hold(&self, hash: u64) -> bool {
        let bit = hash & ((1 << FILTER_BITS) - 1);
        self.filter[(bit >> 6) as usize] & (1 << (bit & 63)) != 0 && self.hashes.contains(&hash)
    }
}

/// `a * b` modulo 2^61 - 1, for `a` and `b` below it.
fn mul(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    let folded = (product as u64 & MODULUS) + (product >> 61) as u64;
    let folded = (folded & MODULUS) + (folded >> 61);
    if folded >= MODULUS {
        folded - MODULUS
    } else {
        folded
    }
}

/// `a + b` modulo 2^61 - 1, for `a` and `b` below it.
fn add(a: u64, b: u64) -> u64 {
    let sum = a + b;
    if sum >= MODULUS {
        sum - MODULUS
    } else {
        sum
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
    fn finds_long_values_anywhere_and_short_ones_on_token_boundaries() {
        let long = format!("{}{}", "q7Xv2LpR", "9sKd4TzW");
        let short = format!("{}{}", "h4Rw", "9zKq1");
        let (set, skipped) = VaultValues::new(vec![
            ("A (secret/a#k)".into(), SecretValue::new(long.clone())),
            ("B (secret/b#k)".into(), SecretValue::new("short".into())),
            ("C (secret/c#k)".into(), SecretValue::new(short.clone())),
        ]);
        assert_eq!(skipped, ["B (secret/b#k)"]);
        let text = format!(
            "x = \"{long}\"\ny = 0x{long}\nurl=https://u:{long}@h\n\"\\t{long}\\n\"\n\
             pin={short}\nz{short} {short}9\n"
        );
        let found: Vec<(String, &str)> = set
            .find(text.as_bytes())
            .into_iter()
            .map(|(label, range)| (label[..1].to_string(), &text[range]))
            .collect();
        let a = ("A".to_string(), long.as_str());
        let c = ("C".to_string(), short.as_str());
        assert_eq!(found, [a.clone(), a.clone(), a.clone(), a, c]);
        assert!(!format!("{set:?}").contains(&long));
    }

    #[test]
    fn rolling_hash_matches_the_direct_hash_at_every_offset() {
        let (set, _) = VaultValues::new(vec![(
            "A".into(),
            SecretValue::new("0123456789abcdefXYZ".into()),
        )]);
        let data: Vec<u8> = (0..=255u8).cycle().take(2000).collect();
        let window = &set.windows[0];
        let mut hash = set.hash(&data[..window.length]);
        for start in 1..=data.len() - window.length {
            hash = window.roll(
                hash,
                set.base,
                data[start - 1],
                data[start + window.length - 1],
            );
            assert_eq!(hash, set.hash(&data[start..start + window.length]));
        }
    }
}
