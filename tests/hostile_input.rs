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
