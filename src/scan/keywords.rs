//! The keyword pass: every rule keyword found in a file, ASCII case-insensitive, in one
//! pass of a dense DFA.
//!
//! Why not aho-corasick's own search: with a few hundred literals its SIMD prefilter is
//! lost and it steps a DFA byte by byte, where each step waits for the previous one's
//! table load. This walks the same automaton (built by aho-corasick) from a flat table,
//! in four independent walks over four stretches of the input, interleaved, so the
//! loads of the four overlap: about 1.5 to 2 times the bytes per second on one core.

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};
use anyhow::{Context, Result};

/// Below this, one walk: four would not pay for their set-up.
const INTERLEAVE_MIN: usize = 4096;
/// Walks run side by side over a long input.
const WAYS: usize = 4;

/// The keywords as a table-driven DFA.
#[derive(Debug)]
pub struct Keywords {
    /// Row `s` (premultiplied: `s * 256`) holds the next state for each byte.
    table: Vec<u32>,
    /// Premultiplied id of the start state.
    start: u32,
    /// States at or above this (premultiplied) id end at least one keyword.
    first_match: u32,
    /// For each matching state, above `first_match`: (keyword, its length).
    matches: Vec<Vec<(usize, usize)>>,
    longest: usize,
    count: usize,
}

impl Keywords {
    pub fn new(keywords: &[String]) -> Result<Keywords> {
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .byte_classes(false)
            .build(keywords)
            .context("cannot build the keyword matcher")?;
        let start = dfa
            .start_state(Anchored::No)
            .context("cannot build the keyword matcher")?;
        // Every state reachable from the start, numbered in the order found.
        let mut states = vec![start];
        let mut index = std::collections::HashMap::from([(start, 0usize)]);
        let mut next = 0;
        while next < states.len() {
            let state = states[next];
            for byte in 0..=255u8 {
                let to = dfa.next_state(Anchored::No, state, byte);
                index.entry(to).or_insert_with(|| {
                    states.push(to);
                    states.len() - 1
                });
            }
            next += 1;
        }
        // Renumbered with the matching states last, so one comparison tells a match.
        let mut order: Vec<usize> = (0..states.len()).collect();
        order.sort_by_key(|&i| dfa.is_match(states[i]));
        let mut renumbered = vec![0u32; states.len()];
        for (new, &old) in order.iter().enumerate() {
            renumbered[old] = u32::try_from(new * 256).context("too many keyword states")?;
        }
        let plain = order.iter().filter(|&&i| !dfa.is_match(states[i])).count();
        let mut table = vec![0u32; states.len() * 256];
        let mut matches = Vec::new();
        for &old in &order {
            let row = renumbered[old] as usize;
            for byte in 0..=255u8 {
                let to = dfa.next_state(Anchored::No, states[old], byte);
                table[row + byte as usize] = renumbered[index[&to]];
            }
            if dfa.is_match(states[old]) {
                matches.push(
                    (0..dfa.match_len(states[old]))
                        .map(|m| {
                            let pattern = dfa.match_pattern(states[old], m);
                            (pattern.as_usize(), dfa.pattern_len(pattern))
                        })
                        .collect(),
                );
            }
        }
        Ok(Keywords {
            table,
            start: renumbered[0],
            first_match: u32::try_from(plain * 256).context("too many keyword states")?,
            matches,
            longest: keywords.iter().map(String::len).max().unwrap_or(0),
            count: keywords.len(),
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Calls `found(keyword, start, end)` for every occurrence of every keyword, in no
    /// particular order (overlapping ones included: `key` in `key-`).
    pub fn find(&self, data: &[u8], mut found: impl FnMut(usize, usize, usize)) {
        if data.len() < INTERLEAVE_MIN {
            let mut state = self.start;
            for (at, &byte) in data.iter().enumerate() {
                state = self.table[state as usize + byte as usize];
                if state >= self.first_match {
                    self.report(state, at + 1, &mut found);
                }
            }
            return;
        }
        // Each walk but the first starts `longest - 1` bytes before its stretch, so that
        // it sees whole any keyword that ends inside the stretch, and reports only those.
        let stretch = data.len().div_ceil(WAYS);
        let lead = self.longest.saturating_sub(1);
        let bounds: [(usize, usize, usize); WAYS] = std::array::from_fn(|w| {
            let begin = (w * stretch).min(data.len());
            let end = ((w + 1) * stretch).min(data.len());
            (begin.saturating_sub(lead), begin, end)
        });
        let steps = bounds
            .iter()
            .map(|&(walk, _, end)| end.saturating_sub(walk))
            .max()
            .unwrap_or(0);
        let mut states = [self.start; WAYS];
        for step in 0..steps {
            for (state, &(walk, begin, end)) in states.iter_mut().zip(&bounds) {
                let at = walk + step;
                if at >= end {
                    continue;
                }
                *state = self.table[*state as usize + data[at] as usize];
                if *state >= self.first_match && at >= begin {
                    self.report(*state, at + 1, &mut found);
                }
            }
        }
    }

    /// The keywords that a matching state ends at `end`.
    fn report(&self, state: u32, end: usize, found: &mut impl FnMut(usize, usize, usize)) {
        let row = ((state - self.first_match) / 256) as usize;
        for &(keyword, len) in &self.matches[row] {
            found(keyword, end - len, end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every occurrence, by brute force.
    fn naive(keywords: &[String], data: &[u8]) -> Vec<(usize, usize, usize)> {
        let lower = data.to_ascii_lowercase();
        let mut all = Vec::new();
        for (k, keyword) in keywords.iter().enumerate() {
            let needle = keyword.to_ascii_lowercase().into_bytes();
            for start in 0..lower.len().saturating_sub(needle.len() - 1) {
                if lower[start..].starts_with(&needle) {
                    all.push((k, start, start + needle.len()));
                }
            }
        }
        all.sort_unstable();
        all
    }

    #[test]
    fn finds_every_occurrence_across_the_stretches() {
        let keywords: Vec<String> = ["key", "key-", "token", "ghp_", "hooks.slack.com", "sk-"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let searcher = Keywords::new(&keywords).unwrap();
        let mut rng = fastrand::Rng::with_seed(9);
        for len in [0usize, 1, 10, 4095, 4096, 4097, 10_000, 65_537] {
            // Random text from a small alphabet, with keywords sprinkled in, so that some
            // straddle the stretch boundaries.
            let mut data: Vec<u8> = (0..len).map(|_| b"kKeEyY-_ tsO"[rng.usize(..12)]).collect();
            for _ in 0..len / 50 {
                let keyword = keywords[rng.usize(..keywords.len())].as_bytes();
                let at = rng.usize(..=len.saturating_sub(keyword.len()));
                if at + keyword.len() <= len {
                    data[at..at + keyword.len()].copy_from_slice(keyword);
                }
            }
            let mut got = Vec::new();
            searcher.find(&data, |k, start, end| got.push((k, start, end)));
            got.sort_unstable();
            assert_eq!(got, naive(&keywords, &data), "length {len}");
        }
    }
}
