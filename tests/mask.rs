//! Output masking against a real OpenBao: values split across pipe reads, encoded forms,
//! the default for pipes, a progress line without newline, and the pseudo-terminal case.

mod support;

use support::Bao;

const SECRET: &str = "fake-secret/value+for?tests";
const CONCEALED: &str = "<concealed by keywrap>";

fn bao_with_secret() -> Bao {
    let bao = Bao::start();
    bao.kv_put("secret/app", &[("key", SECRET), ("short", "abc")]);
    bao
}

/// Python writes `code`'s output itself, so each write is one pipe write.
fn python(code: &str) -> Vec<String> {
    vec![
        "--".into(),
        "python3".into(),
        "-c".into(),
        format!("import os, sys, time, base64, urllib.parse\nS = os.environ['S'].encode()\n{code}"),
    ]
}

#[test]
fn a_value_written_byte_by_byte_is_still_masked() {
    let bao = bao_with_secret();
    let run = bao
        .keywrap()
        .args(["exec", "-s", "S=secret/app#key"])
        .args(python(
            "for fd in (1, 2):\n    os.write(fd, b'before ')\n    for i in range(len(S)):\n        os.write(fd, S[i:i+1]); time.sleep(0.002)\n    os.write(fd, b' after\\n')",
        ))
        .run();
    run.assert_success();
    assert_eq!(run.stdout, format!("before {CONCEALED} after\n"));
    assert!(
        run.stderr.ends_with(&format!("before {CONCEALED} after\n")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(SECRET));
}

#[test]
fn base64_and_url_forms_are_masked() {
    let bao = bao_with_secret();
    let run = bao
        .keywrap()
        .args(["exec", "-s", "S=secret/app#key"])
        .args(python(
            "print('b64', base64.b64encode(S).decode())\nprint('url', base64.urlsafe_b64encode(S).decode().rstrip('='))\nprint('quoted', urllib.parse.quote(S, safe=''))\nprint('python quote', urllib.parse.quote(S))\nprint('hex', S.hex())\nprint('inside', base64.b64encode(b'user:' + S).decode())\nprint('Authorization: Bearer ' + S.decode())",
        ))
        .run();
    run.assert_success();
    for line in [
        "b64 ",
        "url ",
        "quoted ",
        "python quote ",
        "hex ",
        "Authorization: Bearer ",
    ] {
        assert!(
            run.stdout.contains(&format!("{line}{CONCEALED}\n")),
            "{line}: {}",
            run.stdout
        );
    }
    let inside = run
        .stdout
        .lines()
        .find(|l| l.starts_with("inside "))
        .unwrap();
    assert!(inside.contains(CONCEALED), "{inside}");
    assert!(!run.stdout.contains(SECRET));
}

#[test]
fn no_mask_passes_output_unchanged_and_short_values_warn_once() {
    let bao = bao_with_secret();
    let run = bao
        .keywrap()
        .args([
            "exec",
            "--no-mask",
            "-s",
            "S=secret/app#key",
            "-s",
            "T=secret/app#short",
        ])
        .args(python("print(S.decode())"))
        .run();
    run.assert_success();
    assert_eq!(run.stdout, format!("{SECRET}\n"));
    assert!(
        !run.stderr.contains("shorter than"),
        "nothing is masked, so nothing to warn about: {}",
        run.stderr
    );

    let run = bao
        .keywrap()
        .args(["exec", "-s", "S=secret/app#short", "-s", "T=secret/app#key"])
        .args(python("print(S.decode(), os.environ['T']); sys.exit(3)"))
        .run();
    run.assert_code(3);
    assert_eq!(run.stdout, format!("abc {CONCEALED}\n"));
    assert_eq!(
        run.stderr.matches("shorter than 6").count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn a_progress_line_without_newline_appears_at_once() {
    let bao = bao_with_secret();
    let mut keywrap = bao.keywrap();
    let mut running = keywrap
        .args(["exec", "-s", "S=secret/app#key"])
        .args(python(
            "os.write(1, b'progress 50% ' + S[:5])\ntime.sleep(30)",
        ))
        .spawn();
    running.wait_for_stdout("progress 50% ", 10);
    assert!(
        !running.stdout().contains("fake-"),
        "a possible start of the secret is held back"
    );
    assert_eq!(running.signal_and_wait("TERM").code(), Some(128 + 15));
}

#[test]
fn with_mask_on_a_terminal_the_child_gets_a_filtered_pty() {
    let bao = bao_with_secret();
    let run = bao
        .keywrap()
        .args(["exec", "--mask", "-s", "S=secret/app#key", "--", "sh", "-c"])
        .arg("if test -t 0 && test -t 1 && test -t 2; then echo \"tty $S\"; else echo \"no tty $S\"; fi; echo \"err $S\" >&2")
        .run_in_pty();
    run.assert_success();
    assert!(
        run.stdout.contains(&format!("tty {CONCEALED}")),
        "{:?}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("err {CONCEALED}")),
        "{:?}",
        run.stdout
    );
    assert!(!run.stdout.contains("no tty"), "{:?}", run.stdout);
    assert!(!run.stdout.contains(SECRET));
}

#[test]
fn without_a_flag_a_terminal_is_left_alone() {
    let bao = bao_with_secret();
    let run = bao
        .keywrap()
        .args(["exec", "-s", "S=secret/app#key", "--", "sh", "-c"])
        .arg("test -t 1 && echo \"tty $S\"")
        .run_in_pty();
    run.assert_success();
    assert!(
        run.stdout.contains(&format!("tty {SECRET}")),
        "{:?}",
        run.stdout
    );
}

#[test]
fn the_terminal_mode_is_restored_after_a_masked_pty_run() {
    let bao = bao_with_secret();
    // The modes raw mode changes, as `stty` prints them: "icanon" or "-icanon", ...
    let modes = "stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo|isig|opost|icrnl|ixon)' | tr '\\n' ' '; echo";
    let run = bao
        .keywrap()
        .args([
            "exec",
            "--mask",
            "-s",
            "S=secret/app#key",
            "--",
            "sh",
            "-c",
            "echo \"$S\"",
        ])
        .run_in_pty_shell(|keywrap| format!("{modes}; {keywrap}; {modes}"));
    run.assert_success();
    // script's closed stdin can echo as a stray ^@ at the start of any line.
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .map(|l| l.trim().trim_start_matches("^@").trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 3, "{:?}", run.stdout);
    assert!(lines[1].ends_with(CONCEALED), "{:?}", run.stdout);
    assert!(
        lines[0].contains("icanon") && !lines[0].contains("-icanon"),
        "{:?}",
        run.stdout
    );
    assert_eq!(lines[0], lines[2], "terminal modes before and after");
}

#[test]
fn masking_gives_the_child_no_extra_descriptor() {
    let bao = bao_with_secret();
    let list = [
        "--",
        "python3",
        "-c",
        "import os; print(sorted(os.listdir('/proc/self/fd')))",
    ];
    let run = |mode: &str, pty: bool| {
        let mut keywrap = bao.keywrap();
        keywrap
            .args(["exec", mode, "-s", "S=secret/app#key"])
            .args(list);
        let run = if pty {
            keywrap.run_in_pty()
        } else {
            keywrap.run()
        };
        run.assert_success();
        run.stdout.trim().trim_start_matches("^@").to_string()
    };
    let inherited = run("--no-mask", false);
    assert_eq!(run("--mask", false), inherited, "pipes");
    assert_eq!(run("--mask", true), inherited, "pty");
}

#[test]
fn keystrokes_reach_a_child_on_the_pty() {
    let bao = bao_with_secret();
    let run = bao
        .keywrap()
        .args(["exec", "--mask", "-s", "S=secret/app#key", "--", "sh", "-c"])
        .arg("read line; echo \"got:$line:$S\"")
        .stdin("typed text\n")
        .run_in_pty();
    run.assert_success();
    assert!(
        run.stdout.contains(&format!("got:typed text:{CONCEALED}")),
        "{:?}",
        run.stdout
    );
}

#[test]
fn a_resized_terminal_resizes_the_childs_pty() {
    let bao = bao_with_secret();
    let child = "w=0; trap 'w=1' WINCH; echo \"before $(stty size </dev/tty) $S\"; touch ready; i=0; while [ $i -lt 100 ]; do sleep 0.1; s=$(stty size </dev/tty); if [ $w = 1 ] && [ \"$s\" = '41 123' ]; then echo \"after WINCH $s\"; exit 0; fi; i=$((i+1)); done; echo \"no WINCH: w=$w size $s\"; exit 1";
    let run = bao
        .keywrap()
        .args(["exec", "--mask", "-s", "S=secret/app#key", "--", "sh", "-c", child])
        .run_in_pty_shell(|keywrap| {
            format!("stty rows 30 cols 90; {keywrap} & pid=$!; i=0; while [ ! -f ready ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; stty rows 41 cols 123; wait $pid")
        });
    run.assert_success();
    assert!(
        run.stdout.contains(&format!("before 30 90 {CONCEALED}")),
        "{:?}",
        run.stdout
    );
    assert!(
        run.stdout.contains("after WINCH 41 123"),
        "{:?}",
        run.stdout
    );
}

#[test]
fn a_multi_line_value_is_masked_on_a_pty_too() {
    let bao = Bao::start();
    // A terminal turns each "\n" the child writes into "\r\n".
    bao.kv_put(
        "secret/pem",
        &[(
            "key",
            "-----FAKE KEY-----\nfake-line-one\nfake-line-two\n-----END-----",
        )],
    );
    let run = bao
        .keywrap()
        .args(["exec", "--mask", "-s", "P=secret/pem#key", "--", "sh", "-c"])
        .arg("printf 'key: %s\\n' \"$P\"")
        .run_in_pty();
    run.assert_success();
    assert!(
        run.stdout.contains(&format!("key: {CONCEALED}")),
        "{:?}",
        run.stdout
    );
    assert!(!run.stdout.contains("fake-line"), "{:?}", run.stdout);
}

#[test]
fn stdout_and_stderr_into_one_pipe_keep_the_order_they_were_written_in() {
    let bao = bao_with_secret();
    let run = bao
        .keywrap()
        .args(["exec", "-s", "S=secret/app#key", "--", "sh", "-c"])
        .arg("for i in 1 2 3 4 5 6 7 8; do echo \"out $i $S\"; echo \"err $i $S\" >&2; done")
        // `2>&1 | cat`: keywrap's stdout and stderr are one pipe, not a terminal.
        .run_in_pty_shell(|keywrap| format!("{keywrap} 2>&1 | cat"));
    run.assert_success();
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .map(|l| l.trim().trim_start_matches("^@"))
        .filter(|l| !l.is_empty())
        .collect();
    let expected: Vec<String> = (1..=8)
        .flat_map(|i| {
            [
                format!("out {i} {CONCEALED}"),
                format!("err {i} {CONCEALED}"),
            ]
        })
        .collect();
    assert_eq!(lines, expected, "{:?}", run.stdout);
}
