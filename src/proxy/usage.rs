//! Token usage read from upstream answers: the OpenAI-style `usage` object of a JSON answer,
//! or of the chunk that carries it in a streamed (server-sent events) answer.

use serde::Deserialize;

/// A JSON answer larger than this is passed on without looking for usage.
const MAX_JSON: usize = 8 << 20;
/// An event line longer than this is skipped.
const MAX_LINE: usize = 1 << 20;

/// Tokens one answer used.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt + self.completion
    }
}

#[derive(Deserialize)]
struct Envelope {
    usage: Option<RawUsage>,
}

/// OpenAI's names, and Anthropic's as aliases.
#[derive(Deserialize)]
struct RawUsage {
    #[serde(default, alias = "input_tokens")]
    prompt_tokens: u64,
    #[serde(default, alias = "output_tokens")]
    completion_tokens: u64,
}

fn parse(json: &[u8]) -> Option<Usage> {
    let raw = serde_json::from_slice::<Envelope>(json).ok()?.usage?;
    Some(Usage {
        prompt: raw.prompt_tokens,
        completion: raw.completion_tokens,
    })
}

/// Watches one response body go by.
pub enum UsageScanner {
    Json(Vec<u8>),
    Events { line: Vec<u8>, found: Option<Usage> },
    Off,
}

impl UsageScanner {
    /// A scanner for a response of this content type.
    pub fn for_content_type(content_type: Option<&str>) -> Self {
        match content_type.map(|c| c.trim().to_ascii_lowercase()) {
            Some(c) if c.starts_with("application/json") => UsageScanner::Json(Vec::new()),
            Some(c) if c.starts_with("text/event-stream") => UsageScanner::Events {
                line: Vec::new(),
                found: None,
            },
            _ => UsageScanner::Off,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        match self {
            UsageScanner::Json(buffer) => {
                if buffer.len() + chunk.len() > MAX_JSON {
                    *self = UsageScanner::Off;
                } else {
                    buffer.extend_from_slice(chunk);
                }
            }
            UsageScanner::Events { line, found } => {
                let mut rest = chunk;
                while let Some(end) = memchr::memchr(b'\n', rest) {
                    line.extend_from_slice(&rest[..end]);
                    if let Some(usage) = event_usage(line) {
                        *found = Some(merge(*found, usage));
                    }
                    line.clear();
                    rest = &rest[end + 1..];
                }
                if line.len() + rest.len() <= MAX_LINE {
                    line.extend_from_slice(rest);
                } else {
                    line.clear();
                }
            }
            UsageScanner::Off => {}
        }
    }

    /// The usage, once the body has ended.
    pub fn finish(&mut self) -> Option<Usage> {
        match std::mem::replace(self, UsageScanner::Off) {
            UsageScanner::Json(buffer) => parse(&buffer),
            UsageScanner::Events { line, found } => match event_usage(&line) {
                Some(usage) => Some(merge(found, usage)),
                None => found,
            },
            UsageScanner::Off => None,
        }
    }
}

/// Anthropic sends prompt tokens at the start and completion tokens at the end; OpenAI
/// sends one usage chunk. Keeping the larger of each covers both.
fn merge(found: Option<Usage>, new: Usage) -> Usage {
    let old = found.unwrap_or_default();
    Usage {
        prompt: old.prompt.max(new.prompt),
        completion: old.completion.max(new.completion),
    }
}

fn event_usage(line: &[u8]) -> Option<Usage> {
    let data = line.strip_prefix(b"data:")?;
    memchr::memmem::find(data, b"\"usage\"")?;
    parse(data.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_usage() {
        let mut scanner = UsageScanner::for_content_type(Some("application/json; charset=utf-8"));
        scanner.feed(br#"{"id":"x","usage":{"prompt_tokens":3,"#);
        scanner.feed(br#""completion_tokens":5,"total_tokens":8}}"#);
        assert_eq!(
            scanner.finish(),
            Some(Usage {
                prompt: 3,
                completion: 5
            })
        );
    }

    #[test]
    fn reads_the_usage_chunk_of_a_stream() {
        let mut scanner = UsageScanner::for_content_type(Some("text/event-stream"));
        scanner.feed(b"data: {\"choices\":[],\"usage\":null}\n\ndata: {\"usage\":{\"prompt_to");
        scanner.feed(b"kens\":7,\"completion_tokens\":11}}\n\ndata: [DONE]\n\n");
        assert_eq!(
            scanner.finish(),
            Some(Usage {
                prompt: 7,
                completion: 11
            })
        );
        let mut anthropic = UsageScanner::for_content_type(Some("text/event-stream"));
        anthropic.feed(b"event: message_delta\ndata: {\"usage\":{\"output_tokens\":4}}\n");
        assert_eq!(
            anthropic.finish(),
            Some(Usage {
                prompt: 0,
                completion: 4
            })
        );
    }
}
