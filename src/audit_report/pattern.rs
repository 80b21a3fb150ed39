//! `--path`: a prefix (`secret/team/`) or, with `*` or `?`, a glob over the whole path
//! (`secret/*/openai`; `*` also crosses `/`).

/// A compiled `--path` filter.
#[derive(Debug, Clone)]
pub enum PathPattern {
    Prefix(String),
    Glob(Vec<u8>),
}

impl PathPattern {
    pub fn new(text: &str) -> Self {
        let text = text.trim_start_matches('/');
        if text.contains(['*', '?']) {
            PathPattern::Glob(text.as_bytes().to_vec())
        } else {
            PathPattern::Prefix(text.to_string())
        }
    }

    /// True when the pattern is written as a KV v2 API path (`secret/data/openai`), as the
    /// log has it, rather than as references write it.
    pub fn names_api_path(&self) -> bool {
        let text = match self {
            PathPattern::Prefix(prefix) => prefix.as_bytes(),
            PathPattern::Glob(glob) => glob,
        };
        text.windows(6).any(|w| w == b"/data/")
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
            PathPattern::Glob(glob) => glob_matches(glob, path.as_bytes()),
        }
    }
}

/// Iterative wildcard matching with one backtrack point: linear in practice, no recursion.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_globs() {
        let cases = [
            ("secret/team/", "secret/team/openai", true),
            ("secret/team/", "secret/other", false),
            ("/secret/openai", "secret/openai", true),
            ("secret/*/openai", "secret/a/b/openai", true),
            ("secret/*/openai", "secret/openai", false),
            ("secret/open?i", "secret/openai", true),
            ("*openai*", "kv/team-openai-prod", true),
            ("secret/*", "kv/x", false),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(
                PathPattern::new(pattern).matches(path),
                expected,
                "{pattern} {path}"
            );
        }
        assert!(PathPattern::new("secret/data/openai").names_api_path());
        assert!(!PathPattern::new("secret/d*").names_api_path());
    }
}
