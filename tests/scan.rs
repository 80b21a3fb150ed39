//! `keywrap scan` end to end: files, git history, the index, stdin, output formats,
//! suppressions, exit statuses, user rules, and `--vault` against a real OpenBao.
//!
//! Keys are generated at run time, so this file holds nothing a scanner would flag.

mod support;

use serde_json::Value;
use support::{Bao, GitRepo, Keywrap};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random(seed: u64, n: usize) -> String {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| ALNUM[rng.usize(..ALNUM.len())] as char)
        .collect()
}

/// A GitHub-token-shaped string.
fn github_token(seed: u64) -> String {
    format!("{}_{}", "ghp", random(seed, 36))
}

fn json(stdout: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn finds_keys_in_files_with_position_and_preview_only() {
    let mut keywrap = Keywrap::new();
    let key = github_token(1);
    keywrap.write_file("src/app.py", &format!("import os\n\nTOKEN = \"{key}\"\n"));
    keywrap.write_file("README.md", "nothing here\n");
    let run = keywrap.args(["scan", "--format", "json"]).run();
    run.assert_code(1);
    let findings = json(&run.stdout);
    assert_eq!(findings.len(), 1);
    let finding = &findings[0];
    assert_eq!(finding["file"], "src/app.py");
    assert_eq!(finding["line"], 3);
    assert_eq!(finding["column"], 10);
    assert_eq!(finding["rule"], "github-token");
    assert_eq!(finding["preview"], "ghp_… (40 chars)");
    assert!(finding.get("commit").is_none());
    assert!(!run.stdout.contains(&key[4..]) && !run.stderr.contains(&key[4..]));
    run.assert_stderr_contains("keywrap exec");
}

#[test]
fn clean_tree_exits_zero_and_text_names_the_place() {
    let mut keywrap = Keywrap::new();
    keywrap.write_file("main.rs", "fn main() {}\n");
    keywrap.args(["scan"]).run().assert_success();

    let mut keywrap = Keywrap::new();
    keywrap.write_file(".env", &format!("GITHUB_TOKEN={}\n", github_token(2)));
    let run = keywrap.args(["scan"]).run();
    run.assert_code(1);
    assert!(
        run.stdout
            .starts_with(".env:1:14  github-token  ghp_… (40 chars)"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains('\x1b'),
        "no colour when not on a terminal"
    );
}

#[test]
fn honours_gitignore_keywrapignore_inline_allow_markers_and_skips_binaries() {
    let mut keywrap = Keywrap::new();
    let key = github_token(3);
    keywrap.write_file(".gitignore", "build/\n");
    keywrap.write_file(".keywrapignore", "fixtures/\n");
    keywrap.write_file("build/out.txt", &key);
    keywrap.write_file("fixtures/token.txt", &key);
    keywrap.write_file("test.py", &format!("t = '{key}'  # keywrap:allow\n"));
    // Markers of the scanners a repository comes from are honoured too.
    keywrap.write_file("old.py", &format!("t = '{key}'  # gitleaks:allow\n"));
    keywrap.write_file(
        "old.json",
        &format!("// pragma: allowlist nextline secret\n{{\"t\": \"{key}\"}}\n"),
    );
    std::fs::write(
        keywrap.workdir.path().join("blob.bin"),
        [b"\0\0\0".as_slice(), key.as_bytes()].concat(),
    )
    .unwrap();
    keywrap.args(["scan"]).run().assert_success();
}

#[test]
fn a_password_with_symbols_is_judged_by_how_its_file_writes_literals() {
    let mut keywrap = Keywrap::new();
    let password = format!("{};{},{}#", random(61, 6), random(62, 4), random(63, 3));
    // Found: quoted in code, unquoted in a configuration file, quoted in YAML.
    keywrap.write_file("src/db.py", &format!("DB_PASSWORD = \"{password}\"\n"));
    keywrap.write_file("deploy/app.env", &format!("DB_PASSWORD={password}\n"));
    keywrap.write_file("deploy/values.yml", &format!("password: \"{password}\"\n"));
    // Not: an unquoted right-hand side in code is an expression, `{{` in YAML a template.
    keywrap.write_file("src/cli.go", &format!("dbPassword := {password}\n"));
    keywrap.write_file(
        "chart/values.yaml",
        &format!("password: \"{{{{{password}}}}}\"\n"),
    );
    let run = keywrap.args(["scan", "--format", "json"]).run();
    run.assert_code(1);
    let mut files: Vec<String> = json(&run.stdout)
        .iter()
        .inspect(|f| assert_eq!(f["rule"], "secret-with-symbols", "{f}"))
        .map(|f| f["file"].as_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["deploy/app.env", "deploy/values.yml", "src/db.py"]);
    assert!(!run.stdout.contains(&password) && !run.stderr.contains(&password));
}

#[test]
fn a_text_file_is_read_past_its_first_8_kib() {
    // Files over 64 KiB are read in two steps (the head to tell binary from text, then
    // the rest); smaller ones in one read. A key past either boundary is found, and one
    // in a large binary file is not.
    for size in [9000, 65_536, 65_537, 200_000] {
        let mut keywrap = Keywrap::new();
        let key = github_token(31);
        keywrap.write_file("big.txt", &format!("{}\nTOKEN={key}\n", "a".repeat(size)));
        let run = keywrap.args(["scan", "--format", "json"]).run();
        run.assert_code(1);
        assert_eq!(json(&run.stdout)[0]["line"], 2, "{size}");
    }
    let mut keywrap = Keywrap::new();
    let key = github_token(32);
    keywrap.write_file(
        "blob.bin",
        &format!("\0{}\nTOKEN={key}\n", "a".repeat(100_000)),
    );
    keywrap.args(["scan"]).run().assert_success();
}

#[test]
fn huge_files_are_skipped_and_a_named_one_with_a_warning() {
    let mut keywrap = Keywrap::new();
    let key = github_token(30);
    keywrap.write_file("dump.sql", &format!("{key}\n{}\n", "x".repeat(2 << 20)));
    keywrap.args(["scan"]).run().assert_code(1);

    let mut keywrap = Keywrap::new();
    keywrap.write_file("dump.sql", &format!("{key}\n{}\n", "x".repeat(2 << 20)));
    let run = keywrap
        .args(["scan", "--max-file-size", "1", "dump.sql"])
        .run();
    run.assert_success();
    run.assert_stderr_contains("dump.sql skipped: 2.0 MiB is over the 1 MiB limit");
}

#[test]
fn history_finds_a_removed_key_with_its_commit_and_author() {
    let repo = GitRepo::new();
    repo.write("README.md", "# app\n");
    repo.commit_all("start", "Bob <bob@example.com>");
    repo.write(
        "config.py",
        &format!("API = 1\nGITHUB_TOKEN = \"{}\"\n", github_token(4)),
    );
    let leaked = repo.commit_all("add config", "Alice Example <alice@example.com>");
    repo.write(
        "config.py",
        "API = 1\nGITHUB_TOKEN = os.environ[\"GITHUB_TOKEN\"]\n",
    );
    repo.commit_all("use the environment", "Alice Example <alice@example.com>");

    repo.keywrap().args(["scan"]).run().assert_success();

    let run = repo
        .keywrap()
        .args(["scan", "--git", "--format", "json"])
        .run();
    run.assert_code(1);
    let findings = json(&run.stdout);
    assert_eq!(findings.len(), 1, "one blob, scanned once: {findings:?}");
    assert_eq!(findings[0]["file"], "config.py");
    assert_eq!(findings[0]["line"], 2);
    assert_eq!(findings[0]["commit"], leaked.as_str());
    assert_eq!(findings[0]["author"], "Alice Example <alice@example.com>");

    let text = repo.keywrap().args(["scan", "--git"]).run();
    assert!(
        text.stdout.contains(&format!("commit {}", &leaked[..12])),
        "{}",
        text.stdout
    );
}

#[test]
fn staged_scans_the_index_not_the_work_tree() {
    let repo = GitRepo::new();
    repo.write("app.py", "print(1)\n");
    repo.commit_all("start", "Bob <bob@example.com>");
    repo.write("settings.py", &format!("SLACK = \"{}\"\n", github_token(5)));
    repo.write("notes.txt", &format!("{}\n", github_token(6)));
    repo.git(&["add", "settings.py"]);

    let run = repo
        .keywrap()
        .args(["scan", "--staged", "--format", "json"])
        .run();
    run.assert_code(1);
    let findings = json(&run.stdout);
    assert_eq!(findings.len(), 1, "only the staged file: {findings:?}");
    assert_eq!(findings[0]["file"], "settings.py");
    run.assert_stderr_contains("commit blocked");

    // The index holds the clean version even though the work tree still has the key.
    repo.write("settings.py", "SLACK = None\n");
    repo.git(&["add", "settings.py"]);
    repo.write("settings.py", &format!("SLACK = \"{}\"\n", github_token(5)));
    repo.keywrap()
        .args(["scan", "--staged"])
        .run()
        .assert_success();
}

#[test]
fn history_reports_a_key_kept_through_later_edits_once_at_its_first_commit() {
    let repo = GitRepo::new();
    let key = github_token(11);
    repo.write(
        "app.py",
        &format!("A = 1\nTOKEN = \"{key}\"\nAGAIN = \"{key}\"\n"),
    );
    let leaked = repo.commit_all("add key", "Alice Example <alice@example.com>");
    repo.write(
        "app.py",
        &format!("A = 2\nTOKEN = \"{key}\"\nAGAIN = \"{key}\"\nB = 3\n"),
    );
    repo.commit_all("edit around it", "Bob <bob@example.com>");
    repo.write("app.py", "A = 2\nB = 3\n");
    repo.commit_all("remove key", "Bob <bob@example.com>");

    let run = repo
        .keywrap()
        .args(["scan", "--git", "--format", "json"])
        .run();
    run.assert_code(1);
    let findings = json(&run.stdout);
    let places: Vec<(u64, &str)> = findings
        .iter()
        .map(|f| (f["line"].as_u64().unwrap(), f["commit"].as_str().unwrap()))
        .collect();
    assert_eq!(
        places,
        [(2, leaked.as_str()), (3, leaked.as_str())],
        "each place once, from the commit that added it: {findings:?}"
    );
    assert_eq!(findings[0]["author"], "Alice Example <alice@example.com>");
}

#[test]
fn staged_reports_only_the_lines_the_commit_adds() {
    let repo = GitRepo::new();
    let old = github_token(12);
    repo.write("legacy.py", &format!("A = 1\nOLD = \"{old}\"\n"));
    repo.write("moved.py", &format!("KEPT = \"{}\"\n", github_token(14)));
    repo.commit_all("legacy key", "Bob <bob@example.com>");

    // Editing a file that already holds a committed key, or moving it, adds no key.
    repo.write("legacy.py", &format!("A = 1\nOLD = \"{old}\"\nB = 2\n"));
    repo.git(&["mv", "moved.py", "renamed.py"]);
    repo.git(&["add", "legacy.py"]);
    repo.keywrap()
        .args(["scan", "--staged"])
        .run()
        .assert_success();

    // A key added to that file is reported at its line in the staged file.
    repo.write(
        "legacy.py",
        &format!(
            "A = 1\nOLD = \"{old}\"\nNEW = \"{}\"\nB = 2\n",
            github_token(13)
        ),
    );
    repo.write("new.py", &format!("\n\nK = \"{}\"\n", github_token(15)));
    repo.git(&["add", "legacy.py", "new.py"]);
    let run = repo
        .keywrap()
        .args(["scan", "--staged", "--format", "json"])
        .run();
    run.assert_code(1);
    let places: Vec<(String, u64)> = json(&run.stdout)
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        places,
        [("legacy.py".to_string(), 3), ("new.py".to_string(), 3)]
    );
}

#[test]
fn stdin_is_scanned() {
    let run = Keywrap::new()
        .args(["scan", "--stdin", "--format", "json"])
        .stdin(format!("+ token = \"{}\"\n", github_token(7)))
        .run();
    run.assert_code(1);
    assert_eq!(json(&run.stdout)[0]["file"], "<stdin>");
}

#[test]
fn sarif_is_valid_against_the_2_1_0_schema() {
    let repo = GitRepo::new();
    repo.write("dir with space/k.env", &format!("T={}\n", github_token(8)));
    repo.commit_all("leak", "Alice <alice@example.com>");
    let run = repo
        .keywrap()
        .args(["scan", "--git", "--format", "sarif"])
        .run();
    run.assert_code(1);
    let log: Value = serde_json::from_str(&run.stdout).unwrap();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/sarif-2.1.0.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&log).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let result = &log["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "github-token");
    let rule_index = result["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(
        log["runs"][0]["tool"]["driver"]["rules"][rule_index]["id"],
        "github-token"
    );
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(
        location["artifactLocation"]["uri"],
        "dir%20with%20space/k.env"
    );
    assert_eq!(location["region"]["startLine"], 1);
    assert!(result["partialFingerprints"]["keywrapFingerprint/v1"].is_string());
}

#[test]
fn baseline_round_trip_fails_only_on_new_leaks() {
    let mut first = Keywrap::new();
    let old_key = github_token(9);
    first.write_file("legacy.py", &format!("T = \"{old_key}\"\n"));
    let baseline = first.workdir.path().join(".keywrap-baseline.json");
    let run = first
        .args(["scan", "--write-baseline"])
        .arg(&baseline)
        .run();
    run.assert_success();
    let saved = std::fs::read_to_string(&baseline).unwrap();
    assert!(
        !saved.contains(&old_key[4..]),
        "a baseline holds fingerprints, not secrets"
    );
    assert!(saved.contains("legacy.py"));

    let mut again = Keywrap::new();
    again.current_dir(first.workdir.path());
    again
        .args(["scan", "--baseline"])
        .arg(&baseline)
        .run()
        .assert_success();

    first.write_file("new.py", &format!("T = \"{}\"\n", github_token(10)));
    let run = Keywrap::new()
        .current_dir(first.workdir.path())
        .args(["scan", "--format", "json", "--baseline"])
        .arg(&baseline)
        .run();
    run.assert_code(1);
    let findings = json(&run.stdout);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["file"], "new.py");
}

#[test]
fn usage_and_io_errors_exit_two() {
    Keywrap::new()
        .args(["scan", "--no-such-flag"])
        .run()
        .assert_code(2);
    Keywrap::new()
        .args(["scan", "does-not-exist"])
        .run()
        .assert_code(2)
        .assert_stderr_contains("does-not-exist");
    Keywrap::new()
        .args(["scan", "--git"])
        .run()
        .assert_code(2)
        .assert_stderr_contains("not in a git repository");
    Keywrap::new()
        .args(["scan", "--baseline", "missing.json"])
        .run()
        .assert_code(2);
}

#[test]
fn user_rules_from_keywrap_toml_and_a_rules_file() {
    let mut keywrap = Keywrap::new();
    keywrap.write_file(
        "keywrap.toml",
        "[[rules]]\nid = \"acme-key\"\ndescription = \"Acme key\"\nregex = '''acme_[0-9a-f]{16}'''\nkeywords = [\"acme_\"]\n",
    );
    keywrap.write_file(
        "extra.toml",
        "[[rules]]\nid = \"initech-key\"\ndescription = \"Initech key\"\nregex = '''initech-[A-Z]{12}'''\nkeywords = [\"initech-\"]\n",
    );
    keywrap.write_file(
        "a.txt",
        &format!(
            "{}{}\n{}{}\n",
            "acme_", "0123456789abcdef", "initech-", "QWERTYUIOPAS"
        ),
    );
    let run = keywrap
        .args(["scan", "a.txt", "--format", "json", "--rules", "extra.toml"])
        .run();
    run.assert_code(1);
    let findings = json(&run.stdout);
    let rules: Vec<&str> = findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["acme-key", "initech-key"]);
}

#[test]
fn vault_values_are_found_without_being_printed() {
    let bao = Bao::start();
    // A value with no recognisable prefix: only --vault can know it is a secret.
    let value = format!(
        "{}-{}",
        random(11, 12).to_lowercase(),
        random(12, 12).to_lowercase()
    );
    bao.kv_put("secret/myapp", &[("db_password", &value), ("pin", "1234")]);
    let mut keywrap = bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        "[env]\nDB_PASSWORD = \"secret/myapp#db_password\"\nPIN = \"secret/myapp#pin\"\n",
    );
    keywrap.write_file(
        "deploy/run.sh",
        &format!("#!/bin/sh\n./migrate --as app --with {value}\n"),
    );
    // Glued to other text (a `0x` prefix, an escaped tab in a string): still the value.
    keywrap.write_file("other.txt", &format!("0x{value} \"\\t{value}\\n\"\n"));

    let without = Keywrap::new()
        .current_dir(keywrap.workdir.path())
        .args(["scan"])
        .run();
    without.assert_success();

    let run = keywrap.args(["scan", "--vault", "--format", "json"]).run();
    run.assert_code(1);
    let findings = json(&run.stdout);
    let places: Vec<(&str, u64, u64)> = findings
        .iter()
        .map(|f| {
            let column = f["column"].as_u64().unwrap();
            (
                f["file"].as_str().unwrap(),
                f["line"].as_u64().unwrap(),
                column,
            )
        })
        .collect();
    assert_eq!(
        places,
        [
            ("deploy/run.sh", 2, 27),
            ("other.txt", 1, 3),
            ("other.txt", 1, 32)
        ],
        "{findings:?}"
    );
    assert_eq!(findings[0]["rule"], "vault-value");
    assert_eq!(findings[0]["line"], 2);
    assert!(findings[0]["description"]
        .as_str()
        .unwrap()
        .contains("DB_PASSWORD (secret/myapp#db_password)"));
    assert!(!run.stdout.contains(&value[4..]) && !run.stderr.contains(&value[4..]));
    run.assert_stderr_contains("PIN (secret/myapp#pin) is shorter than 8 characters");
    assert_eq!(bao.audit_reads_of("secret/data/myapp").len(), 1);
}

#[test]
fn this_repository_scans_clean() {
    let root = env!("CARGO_MANIFEST_DIR");
    let run = Keywrap::new()
        .current_dir(root)
        .args(["scan", "src", "tests", "docs", "bench", "Cargo.toml"])
        .arg(".pre-commit-hooks.yaml")
        .run();
    run.assert_success();
}

#[test]
fn list_rules_in_text_and_json_with_user_rules() {
    let mut keywrap = Keywrap::new();
    keywrap.write_file(
        "extra.toml",
        "[[rules]]\nid = \"acme-key\"\ndescription = \"Acme API key\"\nregex = '''(acme_[0-9a-f]{32})'''\nkeywords = [\"acme_\"]\n",
    );
    let run = keywrap
        .args(["scan", "--list-rules", "--rules", "extra.toml"])
        .run();
    run.assert_success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines.len() > 30, "{}", run.stdout);
    assert!(lines
        .iter()
        .any(|l| l.starts_with("npm-token ") && l.contains("npm access token")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("acme-key ") && l.ends_with("(user rule)")));

    let mut keywrap = Keywrap::new();
    let run = keywrap
        .args(["scan", "--list-rules", "--format", "json"])
        .run();
    run.assert_success();
    let rules = json(&run.stdout);
    let github = rules.iter().find(|r| r["id"] == "github-token").unwrap();
    assert_eq!(github["origin"], "built-in");
    assert!(github["keywords"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == "ghp_"));
    assert!(rules
        .iter()
        .any(|r| r["id"] == "encoded-secret" && r["decode"] == "base64"));

    Keywrap::new()
        .args(["scan", "--list-rules", "--format", "sarif"])
        .run()
        .assert_code(2);
}

#[test]
fn previews_hide_passwords_and_file_names_are_escaped() {
    let keywrap = Keywrap::new();
    let password = format!("{}7{}", random(70, 12), random(72, 12));
    keywrap.write_file("settings.py", &format!("DB_PASSWORD = \"{password}\"\n"));
    keywrap.write_file(
        "evil\x1b]0;owned\x07.env",
        &format!("T={}\n", github_token(71)),
    );
    for format in ["text", "json"] {
        let run = Keywrap::new()
            .current_dir(keywrap.workdir.path())
            .args(["scan", "--format", format])
            .run();
        run.assert_code(1);
        assert!(!run.stdout.contains(&password[..3]), "{}", run.stdout);
        assert!(
            !run.stdout.contains('\x1b') && !run.stdout.contains('\x07'),
            "{:?}",
            run.stdout
        );
        assert!(run.stdout.contains("(hidden)"), "{}", run.stdout);
        let shown = "evil\\u{1b}]0;owned\\u{7}.env";
        if format == "json" {
            assert!(
                json(&run.stdout).iter().any(|f| f["file"] == shown),
                "{}",
                run.stdout
            );
        } else {
            assert!(run.stdout.contains(shown), "{}", run.stdout);
        }
    }
}

#[test]
fn a_cloned_keywrap_toml_cannot_make_a_preview_print_the_key() {
    // The repository's own keywrap.toml replaces the GitHub rule with one whose prefix
    // matches the whole token: the preview still shows nothing of it.
    let key = github_token(9);
    for format in ["text", "json", "sarif"] {
        let mut keywrap = Keywrap::new();
        keywrap.write_file(
            "keywrap.toml",
            "[[rules]]\nid = \"github-token\"\ndescription = \"GitHub token\"\nregex = '''(ghp_[A-Za-z0-9]{36})'''\nkeywords = [\"ghp_\"]\nprefix = '''.*'''\n",
        );
        keywrap.write_file("app.py", &format!("TOKEN = \"{key}\"\n"));
        let run = keywrap.args(["scan", "--format", format]).run();
        run.assert_code(1);
        assert!(
            !run.stdout.contains(&key[4..12]) && !run.stderr.contains(&key[4..12]),
            "{format}: {}",
            run.stdout
        );
        assert!(run.stdout.contains("(hidden)"), "{format}: {}", run.stdout);
    }
}

#[test]
fn a_cloned_keywrap_toml_cannot_write_escape_sequences_to_the_terminal() {
    let mut keywrap = Keywrap::new();
    keywrap.write_file(
        "keywrap.toml",
        "[[rules]]\nid = \"evil\"\ndescription = \"Evil \\u001b[2J\\u001b[H\"\nregex = '''(evil_[a-z0-9]{12})'''\nkeywords = [\"evil_\"]\n",
    );
    keywrap.write_file("app.py", "x = 1\n");
    let run = keywrap.args(["scan", "--list-rules"]).run();
    run.assert_success();
    assert!(!run.stdout.contains('\u{1b}'), "{}", run.stdout);
    assert!(run.stdout.contains("Evil \\u{1b}[2J"), "{}", run.stdout);
}
