//! Request paths normalised before routing: `.` and `..` segments, also percent-encoded
//! (`%2e%2e`), are resolved as RFC 3986 says, so `/a/../b` is routed as `/b`. A dot
//! segment hidden behind an encoded slash or a backslash (`..%2f`, `..\`) is refused, as
//! is climbing above the root: an upstream may decode those where the proxy did not.

/// The normalised path, or `None` for a path that must be refused.
pub fn normalise(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let has_dots = path.contains('.') || contains_ignore_case(path, "%2e");
    if !has_dots {
        return Some(path.to_string());
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate() {
        let decoded = decode_dots(segment);
        let hidden = ["%2f", "%5c", "\\"]
            .iter()
            .any(|sep| contains_ignore_case(segment, sep));
        if hidden
            && decode_dots(
                &segment
                    .to_ascii_lowercase()
                    .replace("%5c", "/")
                    .replace("%2f", "/")
                    .replace('\\', "/"),
            )
            .split('/')
            .any(|part| part == "." || part == "..")
        {
            return None;
        }
        match decoded.as_str() {
            "." => {
                if index == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop()?;
                if index == last {
                    out.push("");
                }
            }
            _ => out.push(segment),
        }
    }
    Some(format!("/{}", out.join("/")))
}

fn decode_dots(segment: &str) -> String {
    segment.replace("%2e", ".").replace("%2E", ".")
}

fn contains_ignore_case(text: &str, needle: &str) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_resolved_or_refused() {
        assert_eq!(normalise("/v1/chat").as_deref(), Some("/v1/chat"));
        assert_eq!(normalise("/a/../b/c").as_deref(), Some("/b/c"));
        assert_eq!(normalise("/a/%2e%2e/b").as_deref(), Some("/b"));
        assert_eq!(normalise("/a/%2E./b").as_deref(), Some("/b"));
        assert_eq!(normalise("/a/./b/.").as_deref(), Some("/a/b/"));
        assert_eq!(normalise("/a/b/..").as_deref(), Some("/a/"));
        assert_eq!(normalise("/v1/file.json").as_deref(), Some("/v1/file.json"));
        assert_eq!(normalise("/.."), None);
        assert_eq!(normalise("/a/..%2fb"), None);
        assert_eq!(normalise("/a/..%2Fb"), None);
        assert_eq!(normalise("/a/..\\b"), None);
        assert_eq!(normalise("/a/%2e%2e%5cb"), None);
    }
}
