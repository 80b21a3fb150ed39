//! Hostile input: parsers never panic, whatever they are fed, and what they accept means
//! what it says. Property tests (proptest) stand in for cargo fuzz, which needs a nightly
//! toolchain these machines cannot fetch. CI runs the default number of cases; for a long
//! run: `PROPTEST_CASES=200000 cargo test --release --test hostile_input`.

use std::path::Path;

use keywrap::config::LoadedConfig;
use keywrap::reference::Reference;
use proptest::prelude::*;

proptest! {
    #[test]
    fn references_never_panic(input in ".{0,200}") {
        let _ = input.parse::<Reference>();
    }

    #[test]
    fn reference_errors_point_inside_the_input(input in "[a-z/#?=.0-9 %:]{0,60}") {
        if let Err(err) = input.parse::<Reference>() {
            prop_assert!(err.column >= 1 && err.column <= input.chars().count() + 1);
        }
    }

    #[test]
    fn valid_references_round_trip(
        segments in proptest::collection::vec("[a-zA-Z0-9_-]{1,12}", 1..5),
        version in proptest::option::of(1u64..1_000_000),
        field in "[a-zA-Z0-9_.-]{1,20}",
        scheme in proptest::bool::ANY,
    ) {
        let path = segments.join("/");
        let mut text = String::new();
        if scheme { text.push_str("vault://"); }
        text.push_str(&path);
        if let Some(v) = version { text.push_str(&format!("?version={v}")); }
        text.push('#');
        text.push_str(&field);
        let parsed: Reference = text.parse().unwrap();
        prop_assert_eq!(&parsed.path, &path);
        prop_assert_eq!(parsed.version, version);
        prop_assert_eq!(&parsed.field, &field);
        let again: Reference = parsed.to_string().parse().unwrap();
        prop_assert_eq!(again, parsed);
    }

    #[test]
    fn keywrap_toml_never_panics(input in ".{0,400}") {
        let _ = LoadedConfig::parse(Path::new("keywrap.toml"), input);
    }

    #[test]
    fn keywrap_toml_shaped_input_never_panics(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("[vault]".to_string()),
                Just("[env]".to_string()),
                Just("[auth]".to_string()),
                "[A-Z_]{1,8} = \"[a-z/#?=0-9]{0,20}\"",
                "address = \\[?\"[a-z:/.0-9]{0,20}\"\\]?",
                "[a-z_]{1,10} = [0-9a-z\"{}=, ]{0,20}",
            ],
            0..12,
        )
    ) {
        let text = lines.join("\n");
        if let Ok(config) = LoadedConfig::parse(Path::new("keywrap.toml"), text) {
            let _ = keywrap::bindings::collect(Some(&config), &[]);
        }
    }
}

fn dotenv_parse(text: &str) -> anyhow::Result<Vec<keywrap::dotenv::Entry>> {
    let mut known = std::collections::BTreeMap::new();
    keywrap::dotenv::parse_quietly(Path::new(".env"), text, &mut known, &|_| None)
}

proptest! {
    #[test]
    fn env_files_never_panic(input in ".{0,300}") {
        let _ = dotenv_parse(&input);
    }

    #[test]
    fn env_file_shaped_input_never_panics_and_errors_point_inside(
        lines in proptest::collection::vec(
            prop_oneof![
                "(export )?[A-Z_]{1,8}=[a-z0-9 ]{0,12}",
                "[A-Z_]{1,8}=\"[a-z0-9 $\\\\{}\"\n]{0,16}\"?",
                "[A-Z_]{1,8}='[a-z0-9 \n$]{0,16}'?",
                "[A-Z_]{1,8}=\\$\\{?[A-Z_:-]{0,8}\\}?",
                "[A-Z_]{1,8}=vault://[a-z/#?=0-9]{0,16}",
                "# [ -~]{0,20}",
                "[ -~]{0,20}",
            ],
            0..10,
        )
    ) {
        let text = lines.join("\n");
        if let Err(err) = dotenv_parse(&text) {
            let message = err.to_string();
            // FILE:LINE:COLUMN: with a line inside the file.
            let mut parts = message.splitn(4, ':');
            prop_assert_eq!(parts.next(), Some(".env"));
            let line: usize = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
            prop_assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "{}", message);
        }
    }

    #[test]
    fn the_audit_log_reader_never_panics(
        lines in proptest::collection::vec(
            prop_oneof![
                ".{0,200}",
                Just(r#"{"type":"request","time":"2026-11-30T05:00:00Z","request":{"operation":"read","path":"secret/data/a"}}"#.to_string()),
                Just(r#"{"type":"request","request":{"operation":"read","path":"secret/data/a","headers":{"x-keywrap-host":["h"]}},"auth":{"policy_results":{"allowed":false}}}"#.to_string()),
                r#"\{"type":"request","time":"[0-9T:Z-]{0,25}","request":\{"operation":"read","path":"[a-z/]{0,20}"\}"#,
                r#"\{"type":"request","request":\{"operation":"read"[ -~]{0,60}"#,
            ],
            0..20,
        )
    ) {
        let log = lines.join("\n");
        let report = keywrap::audit_report::scan(
            std::io::Cursor::new(log.as_bytes()),
            &keywrap::audit_report::Filters::default(),
            |_| {},
        );
        prop_assert!(report.is_ok());
    }
}
