//! clap's usage errors in keywrap's form: one line, `keywrap: error: ...`, like every other
//! keywrap error, so that a CI log or a `2>&1 | grep keywrap:` shows the whole of it.

/// `err` (a usage error, not `--help` or `--version`) as one line without the newline, e.g.
/// `keywrap: error: unexpected argument '--dryrun' found; a similar argument exists:
/// '--dry-run'; ... (usage: keywrap exec --dry-run <CMD>...; see keywrap exec --help)`.
pub fn one_line(err: &clap::Error) -> String {
    // The rendered text (styles stripped) has the message, `tip:` lines, a `Usage:` block
    // and a closing hint; the parts are re-joined on one line.
    let rendered = err.render().to_string();
    let mut message = Vec::new();
    let mut tips = Vec::new();
    let mut usage = Vec::new();
    let mut in_usage = false;
    for line in rendered.lines().map(str::trim) {
        if line.is_empty() {
            in_usage = false;
        } else if let Some(rest) = line.strip_prefix("Usage:") {
            usage.push(rest.trim().to_string());
            in_usage = true;
        } else if in_usage {
            usage.push(line.to_string());
        } else if let Some(tip) = line.strip_prefix("tip:") {
            tips.push(tip.trim().to_string());
        } else if line.starts_with("For more information") {
            continue;
        } else {
            message.push(
                line.strip_prefix("error:")
                    .unwrap_or(line)
                    .trim()
                    .to_string(),
            );
        }
    }
    let mut out = format!("keywrap: error: {}", message.join(" "));
    for tip in &tips {
        out.push_str("; ");
        out.push_str(tip);
    }
    if let Some(first) = usage.first() {
        // `keywrap exec [OPTIONS] <CMD>...` names the subcommand whose help to see.
        let command: Vec<&str> = first
            .split_whitespace()
            .take_while(|word| !word.starts_with(['[', '<', '-']))
            .collect();
        out.push_str(&format!(
            " (usage: {}; see {} --help)",
            usage.join(" | "),
            command.join(" ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_for(words: &[&str]) -> clap::Error {
        crate::cli::Cli::try_parse_words(words.iter().copied()).expect_err("a usage error")
    }

    #[test]
    fn an_unknown_option_is_one_line_with_tip_and_usage() {
        let line = one_line(&error_for(&["keywrap", "exec", "--dryrun", "--", "true"]));
        assert_eq!(
            line,
            "keywrap: error: unexpected argument '--dryrun' found; a similar argument exists: '--dry-run'; to pass '--dryrun' as a value, use '-- --dryrun' (usage: keywrap exec --dry-run <CMD>...; see keywrap exec --help)"
        );
    }

    #[test]
    fn every_kind_of_usage_error_is_one_prefixed_line() {
        for words in [
            &["keywrap", "bogus"][..],
            &["keywrap", "exec"],
            &["keywrap", "--timeout", "0", "check"],
            &["keywrap", "read"],
            &["keywrap", "proxy", "keys", "create"],
            &[
                "keywrap",
                "exec",
                "--secret",
                "no-equals-sign",
                "--",
                "true",
            ],
        ] {
            let line = one_line(&error_for(words));
            assert!(line.starts_with("keywrap: error: "), "{words:?}: {line}");
            assert!(!line.contains('\n'), "{words:?}: {line}");
            assert!(!line.contains("error: error"), "{words:?}: {line}");
        }
    }
}
