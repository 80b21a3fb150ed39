//! The user's commands around a rotation: `--generate-with` makes the new key (its stdout),
//! `--revoke-with` retires the old one (given on its stdin). Both run through `sh -c` with
//! keywrap's environment minus Vault credentials, as `exec` gives its child; a key passes
//! only through a pipe, never through arguments or the environment.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::child::environment::ChildEnvironment;
use crate::environment::Environment;
use crate::secret::SecretValue;

/// Keys larger than this are refused: no API key is that long, and a runaway generator
/// should not fill memory.
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// What a hook command's environment is made from.
pub struct Hook<'a> {
    pub env: &'a Environment,
    /// The run's correlation ID, given as `KEYWRAP_RUN`.
    pub run_id: &'a str,
    /// Login material variables to keep from the command, besides the Vault credentials.
    pub strip: &'a [String],
}

fn shell(command: &str, hook: &Hook<'_>) -> Command {
    let mut shell = Command::new("/bin/sh");
    shell.arg("-c").arg(command).env_clear();
    ChildEnvironment::build(hook.env, hook.run_id, hook.strip, Vec::new()).apply(&mut shell);
    shell
}

/// Runs the generator and returns its stdout (one trailing newline removed) as the new key.
/// A failing generator, or an empty key, is an error: nothing may be written then.
pub fn generate(command: &str, hook: &Hook<'_>) -> Result<SecretValue> {
    let mut child = shell(command, hook)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start --generate-with command {command:?}"))?;
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    child
        .stdout
        .take()
        .expect("stdout is piped")
        .take(MAX_KEY_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("cannot read the --generate-with command's output")?;
    let status = child
        .wait()
        .context("waiting for the --generate-with command")?;
    if !status.success() {
        bail!("--generate-with command {command:?} failed ({status}); nothing was written");
    }
    key_from_bytes(&bytes, "the --generate-with command's output")
}

/// Reads the new key from stdin (all of it, one trailing newline removed).
/// A terminal is refused: it would echo the key and keep it in scrollback.
pub fn read_stdin() -> Result<SecretValue> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        bail!("give the new key on stdin from a pipe or file (a terminal would echo it), e.g. `./mint-key.sh | keywrap rotate REF`, or use --generate-with CMD");
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(MAX_KEY_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("cannot read the new key from stdin")?;
    key_from_bytes(&bytes, "stdin")
}

fn key_from_bytes(bytes: &[u8], source: &str) -> Result<SecretValue> {
    if bytes.len() as u64 > MAX_KEY_BYTES {
        bail!(
            "{source} is longer than {MAX_KEY_BYTES} bytes; that is not a key; nothing was written"
        );
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{source} is not UTF-8 text; nothing was written"))?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    if text.is_empty() {
        bail!("{source} gave an empty key; nothing was written");
    }
    if text.contains('\0') {
        bail!("{source} holds a NUL byte, which an environment variable cannot carry; nothing was written");
    }
    Ok(SecretValue::new(text.to_string()))
}

/// Runs the revoker with the old key on its stdin; success is its exit status 0.
pub fn revoke(command: &str, hook: &Hook<'_>, old: &SecretValue) -> Result<()> {
    let mut child = shell(command, hook)
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start --revoke-with command {command:?}"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A revoker that exits without reading its input is judged by its status alone.
    let _ = stdin.write_all(old.expose().as_bytes());
    drop(stdin);
    let status = child
        .wait()
        .context("waiting for the --revoke-with command")?;
    if !status.success() {
        bail!("--revoke-with command {command:?} failed ({status}); the previous version was kept so you can retry");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_lose_one_trailing_newline_only() {
        assert_eq!(key_from_bytes(b"abc\n", "x").unwrap().expose(), "abc");
        assert_eq!(key_from_bytes(b"abc\r\n", "x").unwrap().expose(), "abc");
        assert_eq!(key_from_bytes(b"abc\n\n", "x").unwrap().expose(), "abc\n");
        assert!(key_from_bytes(b"\n", "x").is_err());
        assert!(key_from_bytes(b"a\0b", "x").is_err());
    }

    #[test]
    fn a_failing_generator_gives_no_key() {
        let env = Environment::from_pairs([("PATH", "/usr/bin:/bin"), ("VAULT_TOKEN", "fake")]);
        let hook = Hook {
            env: &env,
            run_id: "r",
            strip: &[],
        };
        let key = generate("printf 'k-%s' \"${VAULT_TOKEN:-none}\"", &hook).unwrap();
        assert_eq!(key.expose(), "k-none");
        let err = generate("echo partial; exit 3", &hook).unwrap_err();
        assert!(err.to_string().contains("nothing was written"), "{err}");
    }
}
