//! Masking the real key wherever the upstream echoes it: in response headers and in bodies,
//! including a key split across two chunks of a streamed body.
//!
//! A match is replaced by as many `*`, so Content-Length stays true. A stream holds back only
//! a chunk's tail that could be the start of a key, so server-sent events are not delayed.

use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use bytes::Bytes;
use zeroize::Zeroizing;

/// Values shorter than this are not masked: they would match ordinary text. No real API
/// key is this short, but test and demo keys can be (`sk-test`), and they must not leak.
const MIN_LENGTH: usize = 4;

/// The secret values to mask: each value and its encoded forms as exec masking has them
/// (base64, percent-encoded, hex; [`crate::mask::forms_of`]) plus JSON's `\u00XX` escapes,
/// all matched without regard to ASCII case (an upstream may upper-case a key it echoes).
pub struct Patterns {
    forms: Vec<Zeroizing<Vec<u8>>>,
    automaton: Option<AhoCorasick>,
    /// The first bytes of the forms, both cases: most tails are ruled out by one lookup.
    starts: [bool; 256],
    longest: usize,
}

impl fmt::Debug for Patterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Patterns(<{} redacted>)", self.forms.len())
    }
}

/// JSON escapes of the value: its punctuation as `\u00xx`, and `/` as `\/`.
fn json_forms(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let escape = |digits: &[u8; 16]| {
        let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 2));
        for &b in value {
            if !b.is_ascii_alphanumeric() {
                out.extend_from_slice(b"\\u00");
                out.push(digits[usize::from(b >> 4)]);
                out.push(digits[usize::from(b & 15)]);
            } else {
                out.push(b);
            }
        }
        out
    };
    let mut slash = Zeroizing::new(Vec::with_capacity(value.len() + 4));
    for &b in value {
        if b == b'/' {
            slash.push(b'\\');
        }
        slash.push(b);
    }
    vec![escape(b"0123456789abcdef"), slash]
}

impl Default for Patterns {
    fn default() -> Self {
        Patterns::new([])
    }
}

impl Patterns {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut forms: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for value in values {
            let bytes = value.as_bytes();
            if bytes.len() < MIN_LENGTH {
                continue;
            }
            let mut all = crate::mask::forms_of(bytes);
            all.extend(json_forms(bytes));
            for form in all {
                if form.len() >= MIN_LENGTH && !forms.iter().any(|p| p.eq_ignore_ascii_case(&form))
                {
                    forms.push(form);
                }
            }
        }
        let automaton = (!forms.is_empty()).then(|| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(forms.iter().map(|f| f.as_slice()))
                .expect("the key forms make an automaton")
        });
        let mut starts = [false; 256];
        for form in &forms {
            starts[usize::from(form[0].to_ascii_lowercase())] = true;
            starts[usize::from(form[0].to_ascii_uppercase())] = true;
        }
        let longest = forms.iter().map(|f| f.len()).max().unwrap_or(0);
        Patterns {
            forms,
            automaton,
            starts,
            longest,
        }
    }

    pub fn contains(&self, data: &[u8]) -> bool {
        self.automaton.as_ref().is_some_and(|a| a.is_match(data))
    }

    /// Replaces every occurrence with `*`; says whether anything was replaced.
    pub fn mask(&self, data: &mut [u8]) -> bool {
        let Some(automaton) = &self.automaton else {
            return false;
        };
        let found: Vec<(usize, usize)> = automaton
            .find_iter(&*data)
            .map(|m| (m.start(), m.end()))
            .collect();
        for &(start, end) in &found {
            data[start..end].fill(b'*');
        }
        !found.is_empty()
    }

    /// The length of the longest tail of `data` that is the start of a pattern.
    fn partial_tail(&self, data: &[u8]) -> usize {
        let window = data.len().min(self.longest.saturating_sub(1));
        let tail = &data[data.len() - window..];
        for (at, &byte) in tail.iter().enumerate() {
            if !self.starts[usize::from(byte)] {
                continue;
            }
            let candidate = &tail[at..];
            if self.forms.iter().any(|form| {
                form.len() > candidate.len()
                    && form[..candidate.len()].eq_ignore_ascii_case(candidate)
            }) {
                return candidate.len();
            }
        }
        0
    }
}

/// Masks one response body as it streams.
pub struct StreamRedactor {
    patterns: Arc<Patterns>,
    pending: Vec<u8>,
}

impl StreamRedactor {
    pub fn new(patterns: Arc<Patterns>) -> Self {
        StreamRedactor {
            patterns,
            pending: Vec::new(),
        }
    }

    /// The part of the stream so far that can be sent on.
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        if self.pending.is_empty()
            && !self.patterns.contains(&chunk)
            && self.patterns.partial_tail(&chunk) == 0
        {
            return chunk;
        }
        let mut data = std::mem::take(&mut self.pending);
        data.extend_from_slice(&chunk);
        self.patterns.mask(&mut data);
        let hold = self.patterns.partial_tail(&data);
        self.pending = data.split_off(data.len() - hold);
        Bytes::from(data)
    }

    /// What was held back, at the end of the stream (it cannot hold a whole pattern).
    pub fn finish(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(patterns: &Arc<Patterns>, chunks: &[&str]) -> (Vec<String>, String) {
        let mut redactor = StreamRedactor::new(patterns.clone());
        let mut sent: Vec<String> = chunks
            .iter()
            .map(|c| String::from_utf8(redactor.feed(Bytes::from(c.to_string())).to_vec()).unwrap())
            .collect();
        sent.push(String::from_utf8(redactor.finish().to_vec()).unwrap());
        let whole = sent.concat();
        (sent, whole)
    }

    #[test]
    fn masks_whole_and_split_keys() {
        let patterns = Arc::new(Patterns::new(["fake-key-0123456789", "abc"]));
        let (_, whole) = stream(&patterns, &["a fake-key-0123456789 b"]);
        assert_eq!(whole, "a ******************* b");
        let (sent, whole) = stream(&patterns, &["x fake-ke", "y-01234", "56789 y"]);
        assert_eq!(whole, "x ******************* y");
        assert_eq!(
            sent[0], "x ",
            "only the possible start of a key is held back"
        );
        let (_, whole) = stream(&patterns, &["abc fake-k", "ey"]);
        assert_eq!(
            whole, "abc fake-key",
            "a held tail that was no key is sent at the end"
        );
    }

    #[test]
    fn event_streams_are_not_held_back() {
        let patterns = Arc::new(Patterns::new(["fake-key-0123456789"]));
        let (sent, _) = stream(&patterns, &["data: {\"n\":1}\n\n", "data: {\"n\":2}\n\n"]);
        assert_eq!(sent, ["data: {\"n\":1}\n\n", "data: {\"n\":2}\n\n", ""]);
    }
}
