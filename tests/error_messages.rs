//! No error message repeats what the user wrote: for random bad inputs with a planted key
//! (in a value, a name, a reference, a quoted string, a table key), no message of the
//! env-file parser, the reference parser, keywrap.toml (parsing and every setting keywrap
//! reads from it) or `--secret` contains the key. Messages give file, line, column and
//! length instead. Property tests (proptest); `PROPTEST_CASES=100000` for a long run.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Parser;
use keywrap::auth::{AuthFlags, AuthSettings};
use keywrap::bindings::{self, SecretFlag};
use keywrap::config::LoadedConfig;
use keywrap::environment::Environment;
use keywrap::reference::Reference;
use keywrap::settings::{Connection, ConnectionFlags};
use proptest::prelude::*;

/// The planted key's body: long enough that no message contains it by chance.
fn planted() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9]{23,31}"
}

/// Fills `{s}` with the key's body, `{k}` with a key-shaped value around it.
fn fill(template: &str, body: &str) -> String {
    template
        .replace("{k}", &format!("sk-proj-{body}"))
        .replace("{s}", body)
}

#[track_caller]
fn assert_clean(message: &str, body: &str, input: &str) {
    assert!(
        !message.contains(body),
        "the message repeats the planted key\ninput: {input:?}\nmessage: {message}"
    );
}

const ENV_FILE_LINES: &[&str] = &[
    "{k}",
    "{s}",
    "export {k}",
    "A=vault://{k}",
    "A=vault://secret/{k}",
    "A=vault://secret/x?version={s}#f",
    "A=vault://secret/x#f#{k}",
    "A=vault://secret/{s}/../x#f",
    "A=vault://secret x/{s}#f",
    "A='{k}",
    "A=\"{k}",
    "A=\"{k}\" trailing",
    "A='{k}' trailing",
    "1{s}=x",
    "A-{s}=x",
    "{s}.x=1",
    "A=${{s}",
    "A=${{s}:-{k}",
    "{s}=vault://secret/a#k\nB=${{s}}",
    "{s} \"{k}\"",
    "A=1",
    "# {k}",
    "",
];

const REFERENCES: &[&str] = &[
    "{k}",
    "secret/{k}",
    "vault://{k}",
    "{s}://secret/x#f",
    "secret/{s}?version=x#f",
    "secret/{s}?ver=1#f",
    "secret/x?version={s}#f",
    "secret//{s}#f",
    "secret/../{s}#f",
    "secret/{s}#",
    "secret/x#{s}#{s}",
    "secret/ {s}#f",
    "#{s}",
    "secret/{s}\u{7}#f",
];

const CONFIG_LINES: &[&str] = &[
    "[vault]",
    "[env]",
    "[auth]",
    "[policy]",
    "[proxy]",
    "A = \"{k}\"",
    "A = \"secret/{k}\"",
    "A = {{ ref = \"secret/{s}\" }}",
    "A = {{ ref = \"secret/a#k\", {s} = 1 }}",
    "A = {{ ref = \"secret/a#k\", max_age = \"{s}\" }}",
    "A = {{ ref = \"secret/a#k\", overlap = \"{s}\", previous = \"B\" }}",
    "A = {{ ref = \"secret/a#k\", previous = \"{k}\" }}",
    "\"1{s}\" = \"secret/a#k\"",
    "\"{k}\" = \"secret/a#k\"",
    "{s} = \"x\"",
    "{s} = 5",
    "address = \"{k}\"",
    "address = [\"{k}\", 1]",
    "address = {s}",
    "skip_verify = \"{k}\"",
    "namespace = {s}",
    "method = \"{k}\"",
    "max_age = \"{k}\"",
    "env_files = \"{k}\"",
    "A = \"{k}",
    "A = '{k}",
    "A = \"\"\"{k}",
    "[{s}",
    "[[{s}]]",
    "{k}",
    "A = {k}",
    "A = 1{s}",
    "A.{s} = 1",
    "A = [{k}]",
];

proptest! {
    #[test]
    fn env_file_errors_never_repeat_the_text(
        body in planted(),
        lines in proptest::collection::vec(proptest::sample::select(ENV_FILE_LINES), 1..6),
    ) {
        let text = lines.iter().map(|l| fill(l, &body)).collect::<Vec<_>>().join("\n");
        let mut known = BTreeMap::new();
        if let Err(err) = keywrap::dotenv::parse(Path::new(".env"), &text, &mut known, &|_| None) {
            assert_clean(&format!("{err:#}"), &body, &text);
            prop_assert!(err.to_string().starts_with(".env:"));
        }
    }

    #[test]
    fn reference_errors_never_repeat_the_text(
        body in planted(),
        template in proptest::sample::select(REFERENCES),
    ) {
        let text = fill(template, &body);
        let err = text.parse::<Reference>().expect_err(&text);
        assert_clean(&err.to_string(), &body, &text);
        assert_clean(&format!("{err:?}"), &body, &text);
        let length = format!("({} characters, not shown)", text.chars().count());
        prop_assert!(err.to_string().contains(&length), "{}", err);
    }

    #[test]
    fn keywrap_toml_errors_never_repeat_the_text(
        body in planted(),
        lines in proptest::collection::vec(proptest::sample::select(CONFIG_LINES), 1..7),
    ) {
        let text = lines.iter().map(|l| fill(l, &body)).collect::<Vec<_>>().join("\n");
        let config = match LoadedConfig::parse(Path::new("keywrap.toml"), text.clone()) {
            Ok(config) => config,
            Err(err) => {
                assert_clean(&format!("{err:#}"), &body, &text);
                return Ok(());
            }
        };
        // Every setting keywrap reads from the file, as a run would read it.
        let mut messages = Vec::new();
        let bindings = bindings::collect(Some(&config), &[]);
        if let Err(err) = &bindings {
            messages.push(format!("{err:#}"));
        }
        for binding in bindings.unwrap_or_default() {
            if let Err(err) = keywrap::lifecycle::policy::options_for(Some(&config), &binding) {
                messages.push(format!("{err:#}"));
            }
        }
        if let Err(err) = keywrap::lifecycle::policy::default_max_age(Some(&config)) {
            messages.push(format!("{err:#}"));
        }
        if let Err(err) = keywrap::dotenv::paths(Some(&config), &[]) {
            messages.push(format!("{err:#}"));
        }
        let config = config.assume_trusted();
        let env = Environment::default();
        if let Err(err) = Connection::resolve(&ConnectionFlags::default(), &env, Some(&config)) {
            messages.push(format!("{err:#}"));
        }
        if let Err(err) = AuthSettings::resolve(&AuthFlags::default(), &env, Some(&config)) {
            messages.push(format!("{err:#}"));
        }
        for message in messages {
            assert_clean(&message, &body, &text);
        }
    }

    #[test]
    fn secret_flag_errors_never_repeat_the_text(
        body in planted(),
        template in proptest::sample::select(&[
            "{k}",
            "A={k}",
            "A=secret/{k}",
            "{s}-X=secret/a#k",
            "1{s}=secret/a#k",
            "A=vault://{k}",
            "A=secret/x?version={s}#f",
            "A=secret/{s}#",
        ][..]),
    ) {
        let text = fill(template, &body);
        let err = text.parse::<SecretFlag>().expect_err(&text);
        assert_clean(&err, &body, &text);
        let cli = keywrap::cli::Cli::try_parse_from(["keywrap", "exec", "--secret", &text, "--", "true"]);
        let err = cli.expect_err(&text);
        assert_clean(&err.to_string(), &body, &text);
        assert_clean(&err.render().to_string(), &body, &text);
    }

    #[test]
    fn vault_variables_are_not_repeated(body in planted()) {
        for (name, value) in [
            ("VAULT_ADDR", format!("{body} not a url")),
            ("VAULT_ADDR", format!("ftp://{body}")),
            ("VAULT_SKIP_VERIFY", body.clone()),
        ] {
            let env = Environment::from_pairs([(name, value.as_str())]);
            let err = Connection::resolve(&ConnectionFlags::default(), &env, None).expect_err(name);
            assert_clean(&format!("{err:#}"), &body, &value);
        }
        let env = Environment::from_pairs([("KEYWRAP_AUTH_METHOD", body.as_str())]);
        let err = AuthSettings::resolve(&AuthFlags::default(), &env, None).expect_err("method");
        assert_clean(&format!("{err:#}"), &body, &body);
    }
}
