//! The keyword pass: every rule keyword found in a file, ASCII case-insensitive, in one
//! pass of a dense DFA.
//!
//! Why not aho-corasick's own search: with a few hundred literals its SIMD prefilter is
//! lost and it steps a DFA byte by byte, where each step waits for the previous one's
//! table load. This walks the same kind of automaton from a flat table with a row of
//! 60-odd byte classes per state, small enough for the rows in use to stay in the L1
//! cache, in four independent walks over four stretches of the input, interleaved, so the
//! loads of the four overlap; one `|` of the four states tells whether any of them ended a
//! keyword. The table is built here, straight from the keywords (building aho-corasick's
//! DFA first and reading it out was 40 % of a scan's start-up).

use anyhow::{Context, Result};

/// Below this, one walk: four would not pay for their set-up.
const INTERLEAVE_MIN: usize = 4096;
/// Walks run side by side over a long input.
const WAYS: usize = 4;

/// The keywords as a table-driven DFA.
#[derive(Debug)]
pub struct Keywords {
    /// The next state of state `s` on byte `b` is `table[s + classes[b]]`: a state is
    /// the offset of its row, one entry per byte class.
    table: Vec<u32>,
    /// Bytes that no keyword tells apart share a class (all the bytes no keyword
    /// holds, say): rows of 40-odd entries, not 256, keep the rows a walk visits in the
    /// L1 cache.
    classes: [u8; 256],
    /// The start state.
    start: u32,
    /// A power of two: states at or above it end at least one keyword, those below do
    /// not. The matching rows are laid out from here on, with a gap before them.
    first_match: u32,
    /// For each matching state, in the order of its row from `first_match`: (keyword,
    /// its length).
    matches: Vec<Vec<(usize, usize)>>,
    /// Entries in a row.
    stride: usize,
    /// The number of rows (states) in the table.
    #[cfg(test)]
    rows: usize,
    longest: usize,
    count: usize,
}

impl Keywords {
    pub fn new(keywords: &[String]) -> Result<Keywords> {
        // Byte classes: each byte that some keyword holds (either case) is a class of its
        // own, and every other byte is one class, since the automaton cannot tell them
        // apart.
        let mut in_keyword = [false; 256];
        for byte in keywords.iter().flat_map(|k| k.bytes()) {
            in_keyword[byte.to_ascii_lowercase() as usize] = true;
            in_keyword[byte.to_ascii_uppercase() as usize] = true;
        }
        anyhow::ensure!(
            in_keyword.iter().any(|&used| !used),
            "cannot build the keyword matcher: every byte is in a keyword"
        );
        let mut classes = [0u8; 256];
        let mut stride = 1;
        for byte in (0..=255u8).filter(|&b| in_keyword[b as usize] && !b.is_ascii_uppercase()) {
            let class = u8::try_from(stride).context("too many byte classes")?;
            classes[byte as usize] = class;
            classes[byte.to_ascii_uppercase() as usize] = class;
            stride += 1;
        }

        // The trie of the keywords, over classes: `next[state * stride + class]`, 0 where
        // there is no child (no child can be the root).
        let mut next = vec![0u32; stride];
        let mut outputs: Vec<Vec<(usize, usize)>> = vec![Vec::new()];
        for (pattern, keyword) in keywords.iter().enumerate() {
            let mut state = 0;
            for &byte in keyword.as_bytes() {
                let slot = state * stride + classes[byte as usize] as usize;
                if next[slot] == 0 {
                    next[slot] = u32::try_from(outputs.len()).context("too many keyword states")?;
                    next.resize(next.len() + stride, 0);
                    outputs.push(Vec::new());
                }
                state = next[slot] as usize;
            }
            outputs[state].push((pattern, keyword.len()));
        }

        // Aho-Corasick: breadth first, each state's missing transitions are those of its
        // failure state (the longest proper suffix that is in the trie), which lies nearer
        // the root and so is already complete; a state also ends every keyword its failure
        // state ends. States are numbered in this order, so the rows of the states nearest
        // the start, the ones a walk is in most, lie together.
        let states = outputs.len();
        let mut fail = vec![0usize; states];
        let mut order = Vec::with_capacity(states);
        order.push(0);
        let mut next_in_order = 0;
        while next_in_order < order.len() {
            let state = order[next_in_order];
            next_in_order += 1;
            for class in 0..stride {
                let slot = state * stride + class;
                let child = next[slot] as usize;
                let via_fail = if state == 0 {
                    0
                } else {
                    next[fail[state] * stride + class]
                };
                if child == 0 {
                    next[slot] = via_fail;
                    continue;
                }
                fail[child] = via_fail as usize;
                let inherited = outputs[fail[child]].clone();
                outputs[child].extend(inherited);
                order.push(child);
            }
        }
        // The root's missing transitions lead back to it (they are 0 already).

        // Rows in a new order: the states that end no keyword first, then the others.
        order.sort_by_key(|&state| !outputs[state].is_empty());
        let plain = order.iter().filter(|&&s| outputs[s].is_empty()).count();
        let mut row_of = vec![0usize; states];
        for (row, &state) in order.iter().enumerate() {
            row_of[state] = row;
        }

        // The plain rows from 0, the matching rows from the next power of two up, so
        // that `a | b | c | d >= first_match` tells whether any of four states matches.
        let first_match = (plain * stride).next_power_of_two();
        let offset = |row: usize| {
            if row < plain {
                row * stride
            } else {
                first_match + (row - plain) * stride
            }
        };
        let mut table = vec![0u32; offset(states - 1) + stride];
        for (row, &state) in order.iter().enumerate() {
            for class in 0..stride {
                let to = row_of[next[state * stride + class] as usize];
                table[offset(row) + class] =
                    u32::try_from(offset(to)).context("too many keyword states")?;
            }
        }
        let matches = order[plain..]
            .iter()
            .map(|&state| std::mem::take(&mut outputs[state]))
            .collect();
        Ok(Keywords {
            table,
            classes,
            start: u32::try_from(offset(row_of[0])).context("too many keyword states")?,
            first_match: u32::try_from(first_match).context("too many keyword states")?,
            matches,
            stride,
            #[cfg(test)]
            rows: states,
            longest: keywords.iter().map(String::len).max().unwrap_or(0),
            count: keywords.len(),
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// The bytes of the table's rows (the unused gap before the matching rows left out).
    #[cfg(test)]
    pub fn table_bytes(&self) -> usize {
        self.rows * self.stride * 4
    }

    /// Calls `found(keyword, start, end)` for every occurrence of every keyword, in no
    /// particular order (overlapping ones included: `key` in `key-`).
    pub fn find(&self, data: &[u8], mut found: impl FnMut(usize, usize, usize)) {
        if data.len() < INTERLEAVE_MIN {
            self.walk(self.start, data, 0, 0, &mut found);
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
        // All four walks step together over the length they share, then each finishes
        // its own tail alone.
        let shared = bounds
            .iter()
            .map(|&(walk, _, end)| end - walk)
            .min()
            .unwrap_or(0);
        let [w0, w1, w2, w3] = bounds.map(|(walk, _, _)| walk);
        let (d0, d1, d2, d3) = (
            &data[w0..w0 + shared],
            &data[w1..w1 + shared],
            &data[w2..w2 + shared],
            &data[w3..w3 + shared],
        );
        let lanes = [d0, d1, d2, d3];
        let mut states = [self.start; WAYS];
        let mut step = 0;
        while step < shared {
            step = self.step_together(lanes, &mut states, step);
            // Stopped on a match (or at the end): the states are after byte `step - 1`.
            for (&state, &(walk, begin, _)) in states.iter().zip(&bounds) {
                let at = walk + step - 1;
                if state >= self.first_match && at >= begin {
                    self.report(state, at + 1, &mut found);
                }
            }
        }
        for (&state, &(walk, begin, end)) in states.iter().zip(&bounds) {
            let from = walk + shared;
            self.walk(state, &data[from..end], from, begin, &mut found);
        }
    }

    /// Steps the four walks over their `lanes` (of one length) from `from` until one of
    /// them reaches a matching state, or to the end; returns the steps done. Kept out of
    /// line so that the walks' states and data stay in registers.
    #[inline(never)]
    fn step_together(&self, lanes: [&[u8]; WAYS], states: &mut [u32; WAYS], from: usize) -> usize {
        let (table, classes) = (&self.table[..], &self.classes);
        let first_match = self.first_match as usize;
        let len = lanes[0].len();
        let (d0, d1, d2, d3) = (
            lanes[0],
            &lanes[1][..len],
            &lanes[2][..len],
            &lanes[3][..len],
        );
        let [mut s0, mut s1, mut s2, mut s3] = states.map(|s| s as usize);
        let mut step = from;
        while step < len {
            s0 = table[s0 + classes[d0[step] as usize] as usize] as usize;
            s1 = table[s1 + classes[d1[step] as usize] as usize] as usize;
            s2 = table[s2 + classes[d2[step] as usize] as usize] as usize;
            s3 = table[s3 + classes[d3[step] as usize] as usize] as usize;
            step += 1;
            if s0 | s1 | s2 | s3 >= first_match {
                break;
            }
        }
        let [s0, s1, s2, s3] = [s0, s1, s2, s3].map(|s| s as u32);
        *states = [s0, s1, s2, s3];
        step
    }

    /// One walk from `state` over `data`, which starts at `offset` in the input; reports
    /// only the keywords that end past `report_from`.
    fn walk(
        &self,
        mut state: u32,
        data: &[u8],
        offset: usize,
        report_from: usize,
        found: &mut impl FnMut(usize, usize, usize),
    ) {
        for (at, &byte) in data.iter().enumerate() {
            state = self.table[state as usize + self.classes[byte as usize] as usize];
            if state >= self.first_match && offset + at >= report_from {
                self.report(state, offset + at + 1, found);
            }
        }
    }

    /// The keywords that a matching state ends at `end`.
    fn report(&self, state: u32, end: usize, found: &mut impl FnMut(usize, usize, usize)) {
        let row = (state - self.first_match) as usize / self.stride;
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
        // Keywords inside others and overlapping their ends (`secret_key` holds `key`,
        // `_key` and `cret`), so that failure transitions and inherited matches are used.
        let keywords: Vec<String> = [
            "key",
            "key-",
            "token",
            "ghp_",
            "hooks.slack.com",
            "sk-",
            "secret_key",
            "_key",
            "cret",
            "ey-t",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let searcher = Keywords::new(&keywords).unwrap();
        let mut rng = fastrand::Rng::with_seed(9);
        for len in [0usize, 1, 10, 4095, 4096, 4097, 10_000, 65_537] {
            // Random text from a small alphabet, with keywords sprinkled in, so that some
            // straddle the stretch boundaries.
            let mut data: Vec<u8> = (0..len)
                .map(|_| b"kKeEyY-_ tsOcrT"[rng.usize(..15)])
                .collect();
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
