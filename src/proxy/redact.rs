//! Masking the real key wherever the upstream echoes it: in response headers and in bodies,
//! including a key split across two chunks of a streamed body.
//!
//! A match is replaced by as many `*`, so Content-Length stays true. A stream holds back only
//! a chunk's tail that could be the start of a key, so server-sent events are not delayed.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use memchr::memmem;
use zeroize::Zeroizing;

/// Values shorter than this are not masked: they would match ordinary text. No real API
/// key is this short, but test and demo keys can be (`sk-test`), and they must not leak.
const MIN_LENGTH: usize = 4;

/// The secret values to mask.
#[derive(Default)]
pub struct Patterns(Vec<Zeroizing<Vec<u8>>>);

impl fmt::Debug for Patterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Patterns(<{} redacted>)", self.0.len())
    }
}

impl Patterns {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for value in values {
            let bytes = value.as_bytes();
            if bytes.len() >= MIN_LENGTH && !patterns.iter().any(|p| p.as_slice() == bytes) {
                patterns.push(Zeroizing::new(bytes.to_vec()));
            }
        }
        Patterns(patterns)
    }

    pub fn contains(&self, data: &[u8]) -> bool {
        self.0.iter().any(|p| memmem::find(data, p).is_some())
    }

    /// Replaces every occurrence with `*`; says whether anything was replaced.
    pub fn mask(&self, data: &mut [u8]) -> bool {
        let mut masked = false;
        for pattern in &self.0 {
            let mut start = 0;
            while let Some(found) = memmem::find(&data[start..], pattern) {
                let at = start + found;
                data[at..at + pattern.len()].fill(b'*');
                start = at + pattern.len();
                masked = true;
            }
        }
        masked
    }

    /// The length of the longest tail of `data` that is the start of a pattern.
    fn partial_tail(&self, data: &[u8]) -> usize {
        let mut longest = 0;
        for pattern in &self.0 {
            let window = data.len().min(pattern.len() - 1);
            let tail = &data[data.len() - window..];
            for at in memchr::memchr_iter(pattern[0], tail) {
                let candidate = &tail[at..];
                if pattern.starts_with(candidate) {
                    longest = longest.max(candidate.len());
                    break;
                }
            }
        }
        longest
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
