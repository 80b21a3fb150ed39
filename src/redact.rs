//! Messages about text the user wrote, without repeating that text: a key pasted where a
//! reference or a setting belongs must not reach a terminal or a CI log through an error.
//! Messages say where (file, line, column) and how long, never what.

/// `N character(s)`, the length of a text that is not shown.
pub fn length(text: &str) -> String {
    match text.chars().count() {
        1 => "1 character".to_string(),
        n => format!("{n} characters"),
    }
}

/// A TOML parser message (serde's `invalid type: string "…", expected …`, `unknown field
/// `…``), on one line, with every quoted piece of the input before "expected" replaced by
/// its length. What follows "expected" describes keywrap's own schema and stays.
pub fn parse_message(message: &str) -> String {
    let one_line = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let (input_part, schema_part) = match one_line.find("expected") {
        Some(at) => one_line.split_at(at),
        None => (one_line.as_str(), ""),
    };
    let mut out = String::with_capacity(one_line.len());
    let mut chars = input_part.chars().peekable();
    while let Some(c) = chars.next() {
        let close = match c {
            '`' => '`',
            '"' => '"',
            '\'' => '\'',
            _ => {
                out.push(c);
                continue;
            }
        };
        let mut quoted = String::new();
        let mut closed = false;
        while let Some(inner) = chars.next() {
            if inner == '\\' && close == '"' {
                if let Some(escaped) = chars.next() {
                    quoted.push(escaped);
                }
                continue;
            }
            if inner == close {
                closed = true;
                break;
            }
            quoted.push(inner);
        }
        if closed {
            out.push_str(&format!("({}, not shown)", length(&quoted)));
        } else {
            // An unmatched quote: what follows it is input too.
            out.push_str(&format!("{c}({}, not shown)", length(&quoted)));
        }
    }
    out.push_str(schema_part);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_input_is_replaced_by_its_length() {
        assert_eq!(
            parse_message("invalid type: string \"sk-abc\\\"d\", expected a boolean\n"),
            "invalid type: string (8 characters, not shown), expected a boolean"
        );
        assert_eq!(
            parse_message("unknown field `adress`, expected one of `address`, `namespace`"),
            "unknown field (6 characters, not shown), expected one of `address`, `namespace`"
        );
        assert_eq!(
            parse_message("invalid unquoted key\nexpected `=`"),
            "invalid unquoted key; expected `=`"
        );
        assert_eq!(parse_message("bad `x"), "bad `(1 character, not shown)");
    }
}
