//! Whether a value written after a secret's name is a password typed in as it is (a
//! literal), not an expression, a template, a pattern or a mask: the check behind
//! `validate = "password"`, for values with symbols that no entropy bar can judge.

use std::ops::Range;

/// What a file's name says about how a literal is written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Source code: a literal is quoted; an unquoted right-hand side is an expression
    /// (`pwd := *flagPassword`, `secret = cfg.get(name)`).
    Code,
    /// YAML: `{{` opens a template (Helm, Ansible, Jinja), whatever follows it.
    Yaml,
    /// Anything else (.env, .ini, .properties, text): values may be unquoted.
    Other,
}

/// Extensions of languages in which a string literal is always quoted.
const CODE_EXTENSIONS: &[&str] = &[
    "c", "cc", "cjs", "cls", "clj", "cpp", "cs", "cxx", "dart", "ex", "exs", "fs", "go", "groovy",
    "h", "hpp", "java", "js", "jsx", "kt", "kts", "lua", "m", "mjs", "mm", "php", "pl", "pm", "py",
    "pyi", "pyx", "r", "rb", "rs", "scala", "swift", "ts", "tsx", "vb", "vim",
];

impl FileKind {
    pub fn of(path: &str) -> FileKind {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let extension = match name.rsplit_once('.') {
            Some((stem, extension)) if !stem.is_empty() => extension.to_ascii_lowercase(),
            _ => return FileKind::Other,
        };
        if extension == "yaml" || extension == "yml" {
            FileKind::Yaml
        } else if CODE_EXTENSIONS.contains(&extension.as_str()) {
            FileKind::Code
        } else {
            FileKind::Other
        }
    }
}

/// Whether a password found at `secret` in `data` is a literal in a file of `kind`:
/// quoted in code, no template in YAML.
pub fn fits_file(kind: FileKind, data: &[u8], secret: &Range<usize>) -> bool {
    match kind {
        FileKind::Code => secret.start > 0 && matches!(data[secret.start - 1], b'"' | b'\'' | b'`'),
        FileKind::Yaml => !contains(&data[secret.clone()], b"{{"),
        FileKind::Other => true,
    }
}

/// Symbols that words, names, paths and URLs are made of: not a password's own.
const NAME_SYMBOLS: &[u8] = b"-_./:\\";

/// Whether a value reads as a typed password: 8 characters or more with a letter and a
/// symbol beyond those of names and paths, and either three of the four kinds of
/// character (the usual complexity rule) or three different symbols; and not a
/// variable, template, format string, call, pattern, HTML entity or mask. Under a
/// password's own name (`name`: the text before the value) no symbol is needed if it has
/// lower and upper case letters and digits (`Rq4vTz8wLp`).
pub fn is_password(value: &[u8], name: &[u8]) -> bool {
    if value.len() < 8 || !value.iter().any(u8::is_ascii_alphabetic) {
        return false;
    }
    if value.iter().all(u8::is_ascii_alphanumeric) {
        let name = name.to_ascii_lowercase();
        let password_name = contains(&name, b"passw") || contains(&name, b"pwd");
        return password_name
            && value.len() <= 64
            && value.iter().any(u8::is_ascii_lowercase)
            && value.iter().any(u8::is_ascii_uppercase)
            && value.iter().any(u8::is_ascii_digit)
            && !is_mask(value);
    }
    let mut symbols = [false; 128];
    for &b in value {
        if b.is_ascii_punctuation() && !NAME_SYMBOLS.contains(&b) {
            symbols[b as usize] = true;
        }
    }
    let distinct_symbols = symbols.iter().filter(|&&s| s).count();
    if distinct_symbols == 0 {
        return false;
    }
    let kinds = [
        value.iter().any(u8::is_ascii_lowercase),
        value.iter().any(u8::is_ascii_uppercase),
        value.iter().any(u8::is_ascii_digit),
        true,
    ];
    if kinds.iter().filter(|&&k| k).count() < 3 && distinct_symbols < 3 {
        return false;
    }
    if distinct_symbols == 1 && is_reference(value) {
        return false;
    }
    !(is_expression(value)
        || is_pattern(value)
        || is_mask(value)
        || is_word_with_punctuation(value)
        || is_address(value))
}

/// Words in one case each, joined by punctuation (`PATH#api_key`, `vault:db/prod`): a
/// reference or a name. A typed password mixes cases within its parts (`Zq7;vR`).
fn is_reference(value: &[u8]) -> bool {
    value.split(u8::is_ascii_punctuation).all(|part| {
        !(part.iter().any(u8::is_ascii_lowercase) && part.iter().any(u8::is_ascii_uppercase))
    })
}

/// One word and then punctuation (`Required!`, `PASSWORD:`): a message, not a password.
fn is_word_with_punctuation(value: &[u8]) -> bool {
    let letters = value.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    if letters == 0 {
        return false;
    }
    let one_case = value[1..letters].iter().all(u8::is_ascii_lowercase)
        || value[..letters].iter().all(u8::is_ascii_uppercase);
    one_case && value[letters..].iter().all(u8::is_ascii_punctuation)
}

/// A URL or an e-mail address (`https://…`, `ops@example.com`).
fn is_address(value: &[u8]) -> bool {
    if contains(value, b"://") {
        return true;
    }
    match value.iter().position(|&b| b == b'@') {
        Some(at) if at > 0 => {
            let domain = &value[at + 1..];
            domain.contains(&b'.')
                && domain
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
        }
        _ => false,
    }
}

/// A variable, command substitution, template or format string, a call or an index, an
/// operator between two operands, or an HTML entity: text that stands for a value.
fn is_expression(value: &[u8]) -> bool {
    let starts_variable = |rest: &[u8]| {
        rest.first()
            .is_some_and(|&b| b == b'{' || b == b'(' || b == b'_' || b.is_ascii_alphabetic())
    };
    if value[0] == b'$' && starts_variable(&value[1..]) {
        return true;
    }
    // A fragment of code around a string's quotes (`,'~'.expand(`).
    if matches!(value[0], b',' | b';' | b')') || value[value.len() - 1] == b'(' {
        return true;
    }
    // `<%= … %>`, `#{…}`, `@{…}`, `{% … %}`, `<password>`, `%VAR%`.
    if [&b"<%"[..], b"#{", b"@{", b"{%"]
        .iter()
        .any(|open| value.starts_with(open))
        || (value[0] == b'<' && value[value.len() - 1] == b'>')
        || (value[0] == b'%' && value[value.len() - 1] == b'%')
    {
        return true;
    }
    // `${NAME}`, `{{ name }}`, `{name}`, `{0}`, `%(name)s`: one whole placeholder inside.
    for (open, close) in [
        (&b"${"[..], &b"}"[..]),
        (b"{{", b"}}"),
        (b"{", b"}"),
        (b"%(", b")"),
    ] {
        let mut from = 0;
        while let Some(at) = find(&value[from..], open).map(|i| from + i) {
            let inside = &value[at + open.len()..];
            from = at + open.len();
            // A lone `{` opens a format field; `{{` is an escaped brace or a template's.
            let doubled =
                open == b"{" && (inside.first() == Some(&b'{') || at > 0 && value[at - 1] == b'{');
            if doubled {
                continue;
            }
            if let Some(end) = find(inside, close) {
                let name = &inside[..end];
                if name
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b" _.:-|'\"".contains(&b))
                {
                    return true;
                }
            }
        }
    }
    // A call or an index: a name, then `(`/`[`, closed later (`foo(bar)`, `env['X']`).
    for (open, close) in [(b'(', b')'), (b'[', b']')] {
        let mut at = 1;
        while let Some(i) = value[at..].iter().position(|&b| b == open) {
            let i = at + i;
            let named = value[i - 1].is_ascii_alphanumeric() || value[i - 1] == b'_';
            if named && value[i + 1..].contains(&close) {
                return true;
            }
            at = i + 1;
        }
    }
    // Percent-encoded text (a URL's part, `%2F`) and a list of settings (`A=x,B=y`,
    // `min:8,upper:1`, `required|min:8|confirmed`).
    let percent_encoded = value
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit());
    let settings = value.iter().enumerate().any(|(i, &b)| {
        let name = value[i + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic() || **c == b'_')
            .count();
        let after = value.get(i + 1 + name);
        (2..=20).contains(&name)
            && match b {
                b',' | b';' | b'&' => matches!(after, Some(b'=' | b':')),
                b'|' => matches!(after, None | Some(b'|' | b':')),
                _ => false,
            }
    });
    // `NAME=value`: an assignment quoted whole (a call's argument, a command line's).
    let name = value
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    let assignment = name >= 2 && value[0].is_ascii_alphabetic() && value.get(name) == Some(&b'=');
    if percent_encoded || settings || assignment {
        return true;
    }
    let formats = [&b"%s"[..], b"%d", b"%v"];
    let operators = [&b"=="[..], b"!=", b"&&", b"||", b"->", b"=>", b"::"];
    formats
        .iter()
        .chain(operators.iter())
        .any(|op| contains(value, op))
        || has_html_entity(value)
}

/// A regular expression: anchored, or holding a class, an escape or a group.
fn is_pattern(value: &[u8]) -> bool {
    value[0] == b'^'
        || [
            &b"\\d"[..],
            b"\\w",
            b"\\s",
            b"(?",
            b"[a-z",
            b"[A-Z",
            b"[0-9",
            b".*",
            b".+",
            b"]{",
            b"]+",
            b"]*",
        ]
        .iter()
        .any(|part| contains(value, part))
}

/// A mask or a placeholder run: four or more of one character in a row (`****`, `xxxx`).
fn is_mask(value: &[u8]) -> bool {
    value.windows(4).any(|w| w.iter().all(|&b| b == w[0]))
}

/// `&amp;`, `&quot;`, `&#39;`: the text is escaped HTML or XML, not a value.
fn has_html_entity(value: &[u8]) -> bool {
    value.iter().enumerate().any(|(i, &b)| {
        b == b'&' && {
            let rest = &value[i + 1..];
            let name = rest
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'#')
                .count();
            name >= 2 && rest.get(name) == Some(&b';')
        }
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds() {
        assert_eq!(FileKind::of("src/app.py"), FileKind::Code);
        assert_eq!(FileKind::of("cmd/main.GO"), FileKind::Code);
        assert_eq!(FileKind::of("deploy/values.yaml"), FileKind::Yaml);
        assert_eq!(FileKind::of("ci.yml"), FileKind::Yaml);
        assert_eq!(FileKind::of(".env"), FileKind::Other);
        assert_eq!(FileKind::of("settings.ini"), FileKind::Other);
        assert_eq!(FileKind::of("Makefile"), FileKind::Other);
        assert_eq!(FileKind::of("dir.py/notes"), FileKind::Other);
    }

    #[test]
    fn quoted_in_code_and_no_template_in_yaml() {
        let text = b"a = \"Zq7;vR!p\"; b = Zq7;vR!p";
        let quoted = 5..13;
        let bare = 20..28;
        assert!(fits_file(FileKind::Code, text, &quoted));
        assert!(!fits_file(FileKind::Code, text, &bare));
        assert!(fits_file(FileKind::Other, text, &bare));
        let yaml = b"password: \"{{k}9;Zr!q}}\"";
        assert!(!fits_file(FileKind::Yaml, yaml, &(11..23)));
        assert!(fits_file(FileKind::Other, yaml, &(11..23)));
    }

    #[test]
    fn passwords() {
        for value in [
            "Zq7;vR,p0u4Xb",
            "w8Kd!mQ2#",
            "`7Hq2WERbnmk",
            "{{k}9)Zr${p]aq(uv[wx>-_$#rst}}",
            "$7Tzx!Qm2e",
            "Tq9@xZ3!rK",
            "r%Vb8&Lq*Z",
        ] {
            assert!(is_password(value.as_bytes(), b"api_key = "), "{value}");
        }
    }

    #[test]
    fn without_symbols_only_under_a_password_name() {
        assert!(is_password(b"Rq4vTz8wLp", b"DB_PASSWORD = \""));
        assert!(is_password(b"Rq4vTz8wLp", b"pwd: "));
        assert!(!is_password(b"Rq4vTz8wLp", b"client_secret = \""));
        assert!(!is_password(b"rq4vtz8wlp", b"DB_PASSWORD = \"")); // one case
        assert!(!is_password(b"RqvTzwLpXy", b"DB_PASSWORD = \"")); // no digit
        assert!(!is_password(b"Rq4vTz8", b"DB_PASSWORD = \"")); // under 8
    }

    #[test]
    fn not_passwords() {
        for value in [
            "short!1",                  // under 8 characters
            "Zq7vRp0u4Xb",              // no symbol
            "my-app-secret-v2",         // a name's symbols only
            "../keys/prod.pem",         // a path
            "abc,def,ghi",              // one symbol, two kinds of character
            "${DB_PASSWORD}",           // a variable
            "$DB_PASSWORD",             // a variable
            "$(cat /run/secrets/db)",   // a command
            "prefix-${DB_PASSWORD}",    // an interpolation
            "{{ .Values.password }}",   // a template (no spaces: regex would stop)
            "{{.Values.password}}",     // a template
            "%(password)s",             // a format string
            "pass={0};user={1}",        // format fields
            "<your-password>",          // a placeholder in angle brackets
            "%DB_PASSWORD%",            // a Windows variable
            "os.getenv(\"X\")",         // a call
            "env['DB_PASS']",           // an index
            "^(?=.*[A-Z]).{8,}$",       // a pattern
            "[A-Za-z0-9!]{12}",         // a pattern
            "********!A1",              // a mask
            "&quot;Zq7vR!p&quot;",      // escaped HTML
            "a==b&&c!=d",               // an expression
            "pass%5B%7F",               // percent-encoded
            "Required!",                // a word and punctuation
            "PASSWORD:",                // a word and punctuation
            "Ops.Admin@example.com",    // an e-mail address
            "https://x.test/?a=1&b=2",  // a URL
            ",'~'.expand(",             // code around quotes
            "Verifier=TXlW,Salt=TXlT",  // a list of settings
            "minLength:8,upper:1",      // a list of settings
            "required|min:8|confirmed", // a list of validation rules
            "PATH#api_key",             // a reference
            "AIRTABLE_TOKEN=Zq7vRp0u4", // an assignment
        ] {
            assert!(!is_password(value.as_bytes(), b"api_key = "), "{value}");
        }
    }
}
