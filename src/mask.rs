//! Output masking: every injected secret value, and the common encodings a program may
//! print it in, replaced by [`CONCEALED`] in a byte stream, however the stream is chunked.
//!
//! The patterns are each value as is, its base64 forms (standard and URL-safe, with and
//! without padding, and the part of its encoding that is the same at each of the three byte
//! alignments, so the value inside a longer base64 string is caught too), its
//! percent-encoded forms as the common URL libraries write them, and its hex encoding.
//! `Bearer <value>` and `KEY=value` come for free.
//!
//! Search: a Wu-Manber skip table over 4-byte blocks proposes candidate starts (most
//! output is skipped a window at a time), and an aho-corasick automaton confirms each with
//! an anchored leftmost-longest search. The result is exactly the automaton's own
//! leftmost-longest scan, which the tests check against a naive reference.
//!
//! Memory: the values stay in `SecretValue`s everywhere else, but a matcher has to hold
//! the patterns. They are kept in zeroizing buffers here; the automaton built from them
//! (aho-corasick) holds its own copy in its transition tables, which cannot be zeroized and
//! lives until keywrap exits. That is no worse than the child, which holds them in its
//! environment for its whole life.

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Anchored, Input, Match, MatchKind, StartKind};
use base64::alphabet::{Alphabet, STANDARD, URL_SAFE};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};
use zeroize::Zeroizing;

use crate::secret::SecretValue;

/// What a secret is replaced with.
pub const CONCEALED: &[u8] = b"<concealed by keywrap>";

/// Values shorter than this are not masked: masking `abc` or `1234` everywhere would
/// mangle ordinary output and tell a reader which short strings are secret.
pub const MIN_LEN: usize = 6;

/// Everything but RFC 3986's unreserved characters is percent-encoded, as most URL
/// libraries do (`curl`, `jq @uri`, Go, `quote(s, safe="")`).
const URL_ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Python's `urllib.parse.quote` with its default `safe="/"`.
const URL_KEEPS_SLASH: &AsciiSet = &URL_ENCODED.remove(b'/');

/// JavaScript's `encodeURIComponent`.
const URI_COMPONENT: &AsciiSet = &URL_ENCODED
    .remove(b'!')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*');

/// JavaScript's `encodeURI`, which leaves a URL's own punctuation alone.
const URI: &AsciiSet = &URI_COMPONENT
    .remove(b';')
    .remove(b',')
    .remove(b'/')
    .remove(b'?')
    .remove(b':')
    .remove(b'@')
    .remove(b'&')
    .remove(b'=')
    .remove(b'+')
    .remove(b'$')
    .remove(b'#');

/// The compiled set of patterns to conceal. Shared by the per-stream filters.
pub struct Masker {
    /// Built on the first output that needs it: a command that prints nothing (or only
    /// text the skip table rules out) never pays for compiling it.
    automaton: OnceLock<AhoCorasick>,
    skip: SkipTable,
    /// The patterns again, by first byte, to tell whether a stream's tail could still
    /// become a match.
    by_first_byte: Vec<Vec<Zeroizing<Vec<u8>>>>,
    longest: usize,
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field(
                "patterns",
                &self.by_first_byte.iter().map(Vec::len).sum::<usize>(),
            )
            .finish()
    }
}

/// A masker and how many values were too short to mask.
pub struct Built {
    pub masker: Option<Masker>,
    pub too_short: usize,
}

impl Masker {
    /// Compiles the patterns for `values`; `None` in `masker` when there is nothing to mask.
    pub fn build<'a>(values: impl IntoIterator<Item = &'a SecretValue>) -> Built {
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut too_short = 0;
        for value in values {
            if too_short_to_mask(value) {
                too_short += 1;
                continue;
            }
            let value = value.expose().as_bytes();
            if value.is_empty() {
                continue;
            }
            patterns.extend(forms_of(value));
        }
        patterns.retain(|p| p.len() >= MIN_LEN);
        patterns.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
        patterns.dedup_by(|a, b| a.as_slice() == b.as_slice());
        if patterns.is_empty() {
            return Built {
                masker: None,
                too_short,
            };
        }
        let longest = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let skip = SkipTable::new(&patterns);
        let mut by_first_byte: Vec<Vec<Zeroizing<Vec<u8>>>> = vec![Vec::new(); 256];
        for pattern in patterns {
            by_first_byte[usize::from(pattern[0])].push(pattern);
        }
        Built {
            masker: Some(Masker {
                automaton: OnceLock::new(),
                skip,
                by_first_byte,
                longest,
            }),
            too_short,
        }
    }

    /// Masks a complete buffer in one go.
    pub fn mask_all(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        let mut stream = MaskStream::new(self);
        let written = stream
            .push(input, &mut out)
            .and_then(|()| stream.finish(&mut out));
        written.expect("writing to a Vec cannot fail");
        out
    }

    /// The automaton that confirms candidates, compiled on first use.
    fn automaton(&self) -> &AhoCorasick {
        self.automaton.get_or_init(|| {
            let patterns = || self.by_first_byte.iter().flatten().map(|p| p.as_slice());
            // No prefilter of its own: secrets and their encodings start with letters and
            // digits, where a first-byte prefilter stops at almost every byte. The skip
            // table finds candidates instead; the automaton only confirms them.
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(AhoCorasickKind::DFA))
                .start_kind(StartKind::Both)
                .prefilter(false)
                .build(patterns())
                .or_else(|_| {
                    // Very many long values can exceed the DFA's size limit; the slower
                    // automaton has none.
                    AhoCorasick::builder()
                        .match_kind(MatchKind::LeftmostLongest)
                        .start_kind(StartKind::Both)
                        .prefilter(false)
                        .build(patterns())
                })
                .expect("a set of non-empty literal patterns always compiles")
        })
    }

    /// The leftmost-longest match starting at or after `from`, as the automaton's
    /// unanchored search would find it: candidate starts come from the skip table, the
    /// automaton confirms each with an anchored search.
    fn find(&self, buf: &[u8], from: usize) -> Option<Match> {
        let mut start = from;
        while let Some(candidate) = self.skip.next_candidate(buf, start) {
            let input = Input::new(buf)
                .span(candidate..buf.len())
                .anchored(Anchored::Yes);
            if let Some(found) = self.automaton().find(input) {
                return Some(found);
            }
            start = candidate + 1;
        }
        None
    }

    /// True when `tail` is a proper prefix of some pattern: more bytes could complete it.
    fn could_grow(&self, tail: &[u8]) -> bool {
        self.by_first_byte[usize::from(tail[0])]
            .iter()
            .any(|p| p.len() > tail.len() && p.starts_with(tail))
    }

    /// The first position at or after `from` where a pattern may begin but is cut off by
    /// the end of `buf`; `buf.len()` when there is none.
    fn hold_point(&self, buf: &[u8], from: usize) -> usize {
        let earliest = buf.len().saturating_sub(self.longest - 1);
        (from.max(earliest)..buf.len())
            .find(|&t| self.could_grow(&buf[t..]))
            .unwrap_or(buf.len())
    }
}

/// A Wu-Manber skip table: how far a window of the shortest pattern's length can move
/// when its last four bytes are seen. Most output shares no 4-byte block with a secret's
/// prefix, so the scan looks at one block per window instead of every byte.
struct SkipTable {
    /// The shortest pattern's length (at least [`MIN_LEN`]).
    window: usize,
    shift: Vec<u8>,
}

/// 4-byte blocks in a 128 KiB table: with dozens of secrets in several encodings the
/// patterns hold tens of thousands of blocks, and shorter blocks or a smaller table would
/// make most of ordinary output look like a possible start.
const BLOCK: usize = 4;
const TABLE_BITS: u32 = 17;

impl SkipTable {
    fn new(patterns: &[Zeroizing<Vec<u8>>]) -> Self {
        let window = patterns.iter().map(|p| p.len()).min().unwrap_or(MIN_LEN);
        // Shifts are capped to fit a byte; a smaller shift is always safe.
        let default = (window - BLOCK + 1).min(usize::from(u8::MAX)) as u8;
        let mut shift = vec![default; 1 << TABLE_BITS];
        for pattern in patterns {
            for end in BLOCK..=window {
                let slot = &mut shift[block_hash(&pattern[end - BLOCK..end])];
                *slot = (*slot).min((window - end).min(usize::from(u8::MAX)) as u8);
            }
        }
        SkipTable { window, shift }
    }

    /// The first start at or after `from` whose window may begin a pattern.
    fn next_candidate(&self, buf: &[u8], from: usize) -> Option<usize> {
        let mut end = from + self.window;
        while end <= buf.len() {
            match self.shift[block_hash(&buf[end - BLOCK..end])] {
                0 => return Some(end - self.window),
                shift => end += usize::from(shift),
            }
        }
        None
    }
}

fn block_hash(block: &[u8]) -> usize {
    let value = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
    (value.wrapping_mul(0x9E37_79B1) >> (32 - TABLE_BITS)) as usize
}

/// Every form of `value` that is masked.
pub(crate) fn forms_of(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut forms = vec![Zeroizing::new(value.to_vec())];
    if value.contains(&b'\n') {
        // A terminal (the pseudo-terminal of `--mask`) shows each "\n" as "\r\n".
        let mut on_terminal = Zeroizing::new(Vec::with_capacity(value.len() + 8));
        for &byte in value {
            if byte == b'\n' {
                on_terminal.push(b'\r');
            }
            on_terminal.push(byte);
        }
        forms.push(on_terminal);
    }
    for alphabet in [&STANDARD, &URL_SAFE] {
        let padded = engine(alphabet, true);
        let unpadded = engine(alphabet, false);
        forms.push(Zeroizing::new(padded.encode(value).into_bytes()));
        forms.push(Zeroizing::new(unpadded.encode(value).into_bytes()));
        for offset in 0..3 {
            forms.push(embedded_base64(&unpadded, value, offset));
        }
    }
    forms.extend(url_forms(value));
    forms.push(Zeroizing::new(hex(value, b"0123456789abcdef")));
    forms.push(Zeroizing::new(hex(value, b"0123456789ABCDEF")));
    forms
}

fn engine(alphabet: &Alphabet, pad: bool) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(pad)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

/// The base64 characters that encode only bits of `value` when it starts `offset` bytes
/// into a 3-byte group of a longer encoded string: the same whatever surrounds it.
fn embedded_base64(engine: &GeneralPurpose, value: &[u8], offset: usize) -> Zeroizing<Vec<u8>> {
    let mut framed = Zeroizing::new(vec![0u8; offset]);
    framed.extend_from_slice(value);
    framed.extend_from_slice(&[0, 0]);
    let encoded = Zeroizing::new(engine.encode(framed.as_slice()).into_bytes());
    let first_bit = 8 * offset;
    let end_bit = 8 * (offset + value.len());
    let first = first_bit.div_ceil(6);
    let end = end_bit / 6;
    Zeroizing::new(encoded[first..end.max(first)].to_vec())
}

/// The percent-encodings URL libraries write: RFC 3986 (everything but the unreserved
/// characters escaped), Python's `quote` (keeps `/`), JavaScript's `encodeURIComponent`
/// (keeps `!'()*`) and `encodeURI` (also keeps `;,/?:@&=+$#`), and form encoding (a space
/// as `+`), each with upper- and lower-case hex.
/// For a value of unreserved characters only, all of them are the value itself.
fn url_forms(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut upper_case = Vec::new();
    for set in [URL_ENCODED, URL_KEEPS_SLASH, URI_COMPONENT, URI] {
        upper_case.push(Zeroizing::new(
            percent_encode(value, set).to_string().into_bytes(),
        ));
    }
    upper_case.push(Zeroizing::new(form_spaces(&upper_case[0])));
    let mut forms = Vec::new();
    for form in upper_case {
        forms.push(Zeroizing::new(lower_case_escapes(&form)));
        forms.push(form);
    }
    forms
}

/// `%2F` → `%2f`: the hex digits after each `%` in lower case.
fn lower_case_escapes(encoded: &[u8]) -> Vec<u8> {
    let mut digits_left = 0;
    encoded
        .iter()
        .map(|&byte| {
            if digits_left > 0 {
                digits_left -= 1;
                byte.to_ascii_lowercase()
            } else {
                if byte == b'%' {
                    digits_left = 2;
                }
                byte
            }
        })
        .collect()
}

/// Form encoding writes a space as `+` rather than `%20`.
fn form_spaces(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(&first) = rest.first() {
        match rest.strip_prefix(b"%20") {
            Some(tail) => {
                out.push(b'+');
                rest = tail;
            }
            None => {
                out.push(first);
                rest = &rest[1..];
            }
        }
    }
    out
}

/// Each byte as two hex digits from `digits` (as `xxd -p`, `.hex()` or `%x` print it).
fn hex(value: &[u8], digits: &[u8; 16]) -> Vec<u8> {
    value
        .iter()
        .flat_map(|b| [digits[usize::from(b >> 4)], digits[usize::from(b & 15)]])
        .collect()
}

/// The masker for a run's values; warns once when some are too short to mask.
pub fn for_values<'a>(values: impl IntoIterator<Item = &'a SecretValue>) -> Option<Masker> {
    let built = Masker::build(values);
    warn_too_short(built.too_short);
    built.masker
}

/// True for a value that is not masked because it is shorter than [`MIN_LEN`] (an empty
/// value has nothing to mask and is not counted).
pub fn too_short_to_mask(value: &SecretValue) -> bool {
    (1..MIN_LEN).contains(&value.expose().len())
}

/// The one warning about `count` values too short to mask; nothing when there are none.
pub fn warn_too_short(count: usize) {
    if count > 0 {
        crate::log::warn(format_args!(
            "{count} secret value(s) shorter than {MIN_LEN} characters are not masked in the output"
        ));
    }
}

/// One stream's filter: holds back only bytes that may be the start of a secret cut off by
/// the end of a read, and passes everything else on at once.
pub struct MaskStream<'m> {
    masker: &'m Masker,
    held: Zeroizing<Vec<u8>>,
}

impl<'m> MaskStream<'m> {
    pub fn new(masker: &'m Masker) -> Self {
        MaskStream {
            masker,
            held: Zeroizing::new(Vec::new()),
        }
    }

    /// Filters `input` (the next bytes of the stream) into `out`. Unchanged runs of the
    /// input are written as slices of it, so a buffered writer passes large ones on
    /// without copying.
    pub fn push(&mut self, input: &[u8], out: &mut impl Write) -> io::Result<()> {
        if self.held.is_empty() {
            return self.scan(input, out);
        }
        let held = Zeroizing::new(std::mem::take(&mut *self.held));
        let longest = self.masker.longest;
        if input.len() < longest {
            let mut joined = held;
            joined.extend_from_slice(input);
            return self.scan(&joined, out);
        }
        // Only matches that start in the held bytes need them; those end within `longest`
        // bytes of the input, so just that much is joined, not the whole read.
        let mut joined = Zeroizing::new(Vec::with_capacity(held.len() + longest));
        joined.extend_from_slice(&held);
        joined.extend_from_slice(&input[..longest]);
        let mut pos = 0;
        while let Some(found) = self
            .masker
            .find(&joined, pos)
            .filter(|m| m.start() < held.len())
        {
            out.write_all(&joined[pos..found.start()])?;
            out.write_all(CONCEALED)?;
            pos = found.end();
        }
        if pos < held.len() {
            out.write_all(&joined[pos..held.len()])?;
            pos = held.len();
        }
        self.scan(&input[pos - held.len()..], out)
    }

    /// The stream ended: whatever was held back is final.
    pub fn finish(&mut self, out: &mut impl Write) -> io::Result<()> {
        let held = Zeroizing::new(std::mem::take(&mut *self.held));
        let mut pos = 0;
        while let Some(found) = self.masker.find(&held, pos) {
            out.write_all(&held[pos..found.start()])?;
            out.write_all(CONCEALED)?;
            pos = found.end();
        }
        out.write_all(&held[pos..])
    }

    /// Leftmost-longest replacement over `buf`, exactly as over the whole stream: a match
    /// is taken only when no longer pattern could start at or before it and run past the
    /// end of `buf`.
    fn scan(&mut self, buf: &[u8], out: &mut impl Write) -> io::Result<()> {
        let masker = self.masker;
        let safe = buf.len().saturating_sub(masker.longest - 1);
        let mut pos = 0;
        loop {
            let found = masker.find(buf, pos);
            match found {
                Some(m) if m.start() < safe => {
                    out.write_all(&buf[pos..m.start()])?;
                    out.write_all(CONCEALED)?;
                    pos = m.end();
                }
                found => {
                    let hold = masker.hold_point(buf, pos);
                    match found {
                        Some(m) if m.start() < hold => {
                            out.write_all(&buf[pos..m.start()])?;
                            out.write_all(CONCEALED)?;
                            pos = m.end();
                        }
                        _ => {
                            out.write_all(&buf[pos..hold])?;
                            self.held.extend_from_slice(&buf[hold..]);
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masker(values: &[&str]) -> Masker {
        let values: Vec<SecretValue> = values
            .iter()
            .map(|v| SecretValue::new(v.to_string()))
            .collect();
        Masker::build(&values).masker.unwrap()
    }

    fn masked(values: &[&str], input: &str) -> String {
        String::from_utf8(masker(values).mask_all(input.as_bytes())).unwrap()
    }

    const C: &str = "<concealed by keywrap>";

    #[test]
    fn masks_values_and_their_encodings() {
        let value = "fake-key/with+chars?";
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value);
        let url = "fake-key%2Fwith%2Bchars%3F";
        let input = format!("a {value} b {b64} c {b64url} d {url} e Bearer {value}\n");
        assert_eq!(
            masked(&[value], &input),
            format!("a {C} b {C} c {C} d {C} e Bearer {C}\n")
        );
    }

    #[test]
    fn masks_what_url_libraries_and_hex_dumps_write() {
        let value = "fake key/with+chars?(1)!";
        let forms = [
            "fake%20key%2Fwith%2Bchars%3F%281%29%21", // RFC 3986, curl, jq @uri
            "fake%20key%2fwith%2bchars%3f%281%29%21", // the same in lower case
            "fake%20key/with%2Bchars%3F%281%29%21",   // Python quote()
            "fake%20key%2Fwith%2Bchars%3F(1)!",       // encodeURIComponent
            "fake%20key/with+chars?(1)!",             // encodeURI
            "fake+key%2Fwith%2Bchars%3F%281%29%21",   // quote_plus, URLSearchParams
            "66616b65206b65792f776974682b63686172733f28312921", // .hex(), xxd -p
        ];
        for form in forms {
            assert_eq!(
                masked(&[value], &format!("<{form}>")),
                format!("<{C}>"),
                "{form}"
            );
        }
        let upper_hex = hex(value.as_bytes(), b"0123456789ABCDEF");
        let upper_hex = String::from_utf8(upper_hex).unwrap();
        assert_eq!(masked(&[value], &upper_hex), C);
    }

    #[test]
    fn masks_base64_of_a_value_inside_longer_base64() {
        let value = "fake-secret-value-0123";
        for prefix in ["", "x", "xy", "user:"] {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{prefix}{value}@host"));
            let out = masked(&[value], &encoded);
            assert!(out.contains(C), "prefix {prefix:?}: {out}");
            assert!(
                out.len() < encoded.len() + C.len(),
                "most of it concealed: {out}"
            );
        }
    }

    #[test]
    fn short_values_are_counted_not_masked() {
        let values = [
            SecretValue::new("abc".into()),
            SecretValue::new(String::new()),
        ];
        let built = Masker::build(&values);
        assert!(built.masker.is_none());
        assert_eq!(built.too_short, 1);
    }

    #[test]
    fn the_longest_match_wins_and_binary_passes() {
        let out = masker(&["fake-secret", "fake-secret-longer"])
            .mask_all(b"\x00\xff fake-secret-longer fake-secret-long \x80");
        assert_eq!(
            out,
            [
                b"\x00\xff ".as_slice(),
                CONCEALED,
                b" ",
                CONCEALED,
                b"-long \x80"
            ]
            .concat()
        );
    }

    #[test]
    fn only_a_possible_start_of_a_secret_is_held_back() {
        let masker = masker(&["fake-secret"]);
        let mut stream = MaskStream::new(&masker);
        let mut out = Vec::new();
        stream.push(b"progress 50% fake-se", &mut out).unwrap();
        assert_eq!(out, b"progress 50% ");
        stream.push(b"cret done", &mut out).unwrap();
        assert_eq!(
            out,
            [b"progress 50% ".as_slice(), CONCEALED, b" done"].concat()
        );
        stream.push(b" 99%", &mut out).unwrap();
        assert!(
            out.ends_with(b" 99%"),
            "nothing held that cannot start a secret"
        );
    }

    #[test]
    fn a_held_prefix_completed_by_a_long_read() {
        let masker = masker(&["fake-secret"]);
        let mut stream = MaskStream::new(&masker);
        let mut out = Vec::new();
        stream.push(b"x fake-sec", &mut out).unwrap();
        let long_read = [b"ret ".as_slice(), &[b'y'; 100], b" fake-secret fake-"].concat();
        stream.push(&long_read, &mut out).unwrap();
        stream.finish(&mut out).unwrap();
        let expected = [
            b"x ".as_slice(),
            CONCEALED,
            b" ",
            &[b'y'; 100],
            b" ",
            CONCEALED,
            b" fake-",
        ]
        .concat();
        assert_eq!(out, expected);
    }

    fn chunked(masker: &Masker, input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut stream = MaskStream::new(masker);
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts {
            let end = (start + cut).min(input.len());
            stream.push(&input[start..end], &mut out).unwrap();
            start = end;
        }
        stream.push(&input[start..], &mut out).unwrap();
        stream.finish(&mut out).unwrap();
        out
    }

    /// The stream with every occurrence replaced, computed naively, leftmost-longest.
    fn reference(patterns: &[Vec<u8>], input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let best = patterns
                .iter()
                .filter(|p| input[i..].starts_with(p))
                .map(|p| p.len())
                .max();
            match best {
                Some(len) => {
                    out.extend_from_slice(CONCEALED);
                    i += len;
                }
                None => {
                    out.push(input[i]);
                    i += 1;
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn chunking_never_changes_the_output(
            secrets in proptest::collection::vec("[ab]{6,9}", 1..4),
            pieces in proptest::collection::vec(prop_oneof![
                "[abc]{0,6}".prop_map(|s| s.into_bytes()),
                proptest::collection::vec(any::<u8>(), 0..4),
            ], 0..12),
            secret_picks in proptest::collection::vec(0usize..4, 0..6),
            cuts in proptest::collection::vec(0usize..40, 0..20),
        ) {
            let mut input = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                input.extend_from_slice(piece);
                if let Some(&pick) = secret_picks.get(i) {
                    input.extend_from_slice(secrets[pick % secrets.len()].as_bytes());
                }
            }
            let values: Vec<SecretValue> = secrets.iter().map(|s| SecretValue::new(s.clone())).collect();
            let masker = Masker::build(&values).masker.unwrap();
            let patterns: Vec<Vec<u8>> = masker.by_first_byte.iter().flatten().map(|p| p.to_vec()).collect();
            let expected = reference(&patterns, &input);
            // Encodings of [ab] secrets cannot be formed from these pieces, so the expected
            // output is the input with every secret itself replaced.
            let raw: Vec<Vec<u8>> = secrets.iter().map(|s| s.clone().into_bytes()).collect();
            prop_assert_eq!(&expected, &reference(&raw, &input));
            prop_assert_eq!(chunked(&masker, &input, &cuts), expected.clone());
            prop_assert_eq!(chunked(&masker, &input, &vec![1; input.len()]), expected);
        }
    }
}
