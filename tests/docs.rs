//! Every snippet in README.md and docs/ works when pasted. Each fenced block is taken from
//! the Markdown: shell blocks must be valid bash, every keywrap command in them (and in the
//! workflows) must parse, keywrap.toml blocks must load, and workflows must match the GitHub
//! Actions or GitLab CI JSON schema (as check-jsonschema ships them). The Vault commands run
//! against a real OpenBao server, and the CI pages' jobs run step by step against stand-ins
//! for what cannot be reached from here: the CI providers' token issuers, GitHub's release
//! downloads, and `vault.example.com` (VAULT_ADDR points at the test server instead).

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use support::oidc::{OidcProvider, REQUEST_TOKEN};
use support::stub::Stub;
use support::{bao_binary, Bao, ROOT_TOKEN};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One fenced code block of a Markdown file.
#[derive(Debug, Clone)]
struct Block {
    file: PathBuf,
    line: usize,
    lang: String,
    text: String,
}

impl Block {
    fn place(&self) -> String {
        let file = self.file.strip_prefix(ROOT).unwrap_or(&self.file);
        format!("{}:{}", file.display(), self.line)
    }

    /// A workflow block names its file on the first line: `# .github/workflows/x.yml`.
    fn workflow_kind(&self) -> Option<WorkflowKind> {
        let first = self.text.lines().next().unwrap_or_default();
        if first.starts_with("# .github/workflows/") {
            Some(WorkflowKind::GitHub)
        } else if first.starts_with("# .gitlab-ci.yml") {
            Some(WorkflowKind::GitLab)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WorkflowKind {
    GitHub,
    GitLab,
}

fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![Path::new(ROOT).join("README.md")];
    walk(&Path::new(ROOT).join("docs"), &mut files);
    files.sort();
    files
}

fn blocks_of(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    file: path.to_path_buf(),
                    line: index + 1,
                    lang: lang.trim().to_string(),
                    text: String::new(),
                })
            }
            (Some(_), Some(_)) => blocks.push(open.take().unwrap()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(
        open.is_none(),
        "{}: a code block is not closed",
        path.display()
    );
    blocks
}

fn all_blocks() -> Vec<Block> {
    markdown_files().iter().flat_map(|f| blocks_of(f)).collect()
}

fn blocks_in(doc: &str, lang: &str) -> Vec<Block> {
    blocks_of(&Path::new(ROOT).join(doc))
        .into_iter()
        .filter(|b| b.lang == lang)
        .collect()
}

fn yaml(block: &Block) -> Value {
    serde_yaml_ng::from_str(&block.text).unwrap_or_else(|e| panic!("{}: {e}", block.place()))
}

#[test]
fn every_block_says_what_it_is() {
    let known = [
        "sh", "console", "toml", "yaml", "hcl", "json", "text", "python", "js", "nginx",
    ];
    for block in all_blocks() {
        assert!(
            known.contains(&block.lang.as_str()),
            "{}: a code block needs a language ({known:?}), not {:?}",
            block.place(),
            block.lang
        );
        if block.lang == "yaml" {
            assert!(
                block.workflow_kind().is_some(),
                "{}: a yaml block starts with `# .github/workflows/NAME.yml` or `# .gitlab-ci.yml`",
                block.place()
            );
        }
    }
}

#[test]
fn every_shell_block_is_valid_bash() {
    for block in all_blocks().iter().filter(|b| b.lang == "sh") {
        let output = Command::new("bash")
            .args(["-n", "-c", &block.text])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            block.place(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Every place a shell command appears: shell blocks, `$ ` lines of console blocks, the
/// `run:` steps of GitHub workflows and the scripts of GitLab jobs.
fn shell_snippets() -> Vec<(String, String)> {
    let mut snippets = Vec::new();
    for block in all_blocks() {
        match block.lang.as_str() {
            "sh" => snippets.push((block.place(), block.text.clone())),
            "console" => {
                let commands: Vec<&str> = block
                    .text
                    .lines()
                    .filter_map(|l| l.strip_prefix("$ "))
                    .collect();
                snippets.push((block.place(), commands.join("\n")));
            }
            "yaml" => {
                for script in workflow_scripts(&yaml(&block)) {
                    snippets.push((block.place(), script));
                }
            }
            _ => {}
        }
    }
    snippets
}

fn workflow_scripts(workflow: &Value) -> Vec<String> {
    let mut scripts = Vec::new();
    // GitLab: the jobs are the top-level entries.
    for (_, job) in workflow.as_object().into_iter().flatten() {
        for key in ["before_script", "script", "after_script"] {
            for line in job[key].as_array().into_iter().flatten() {
                scripts.extend(line.as_str().map(str::to_string));
            }
        }
    }
    // GitHub: the `run:` steps of `jobs:`.
    if let Some(jobs) = workflow["jobs"].as_object() {
        for job in jobs.values() {
            for step in job["steps"].as_array().into_iter().flatten() {
                scripts.extend(step["run"].as_str().map(str::to_string));
            }
        }
    }
    scripts
}

#[test]
fn every_keywrap_command_in_the_docs_parses() {
    let mut checked = 0;
    let mut problems = Vec::new();
    for (place, script) in shell_snippets() {
        for words in simple_commands(&script) {
            match words.first().map(String::as_str) {
                Some("keywrap") => {
                    checked += 1;
                    if let Err(err) = keywrap::cli::Cli::try_parse_words(&words) {
                        let err = keywrap::usage_error::one_line(&err);
                        problems.push(format!("{place}: {}: {err}", words.join(" ")));
                    }
                }
                Some(script) if script.starts_with("scripts/") => {
                    let path = Path::new(ROOT).join(script);
                    let executable = path
                        .metadata()
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
                    if !executable {
                        problems.push(format!("{place}: {script} is not an executable script"));
                    }
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(checked >= 30, "only {checked} keywrap commands found");
}

/// The simple commands of a shell text, as words (quotes removed, redirections and
/// `VAR=value` prefixes dropped); heredoc bodies and comments skipped. Enough shell for
/// documentation, not all of it.
fn simple_commands(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut commands = Vec::new();
    let mut heredoc: Option<String> = None;
    for line in joined.lines() {
        if let Some(tag) = &heredoc {
            if line.trim() == tag {
                heredoc = None;
            }
            continue;
        }
        if let Some(at) = line.find("<<") {
            let tag = line[at + 2..]
                .trim_start_matches('-')
                .trim()
                .trim_matches(|c| c == '\'' || c == '"');
            heredoc = Some(
                tag.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        let mut current: Vec<String> = Vec::new();
        let mut finish = |current: &mut Vec<String>| {
            let words: Vec<String> = std::mem::take(current)
                .into_iter()
                .skip_while(|w| is_assignment(w))
                .collect();
            if !words.is_empty() {
                commands.push(words);
            }
        };
        let mut chars = line.chars().peekable();
        let mut word = String::new();
        let mut in_word = false;
        let mut skip_next_word = false;
        let push_word =
            |word: &mut String, in_word: &mut bool, skip: &mut bool, current: &mut Vec<String>| {
                if *in_word {
                    if *skip {
                        *skip = false;
                    } else {
                        current.push(std::mem::take(word));
                    }
                }
                word.clear();
                *in_word = false;
            };
        while let Some(c) = chars.next() {
            match c {
                '\'' => {
                    in_word = true;
                    for q in chars.by_ref() {
                        if q == '\'' {
                            break;
                        }
                        word.push(q);
                    }
                }
                '"' => {
                    in_word = true;
                    while let Some(q) = chars.next() {
                        match q {
                            '"' => break,
                            '\\' => word.extend(chars.next()),
                            _ => word.push(q),
                        }
                    }
                }
                '\\' => {
                    in_word = true;
                    word.extend(chars.next());
                }
                '#' if !in_word => break,
                ' ' | '\t' => push_word(&mut word, &mut in_word, &mut skip_next_word, &mut current),
                '|' | ';' | '&' | '(' | ')' => {
                    push_word(&mut word, &mut in_word, &mut skip_next_word, &mut current);
                    finish(&mut current);
                }
                '>' | '<' => {
                    // `2>`, `>>`, `<<TAG`, `>&2`: the redirection and its target are not words.
                    if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                        word.clear();
                        in_word = false;
                    } else {
                        push_word(&mut word, &mut in_word, &mut skip_next_word, &mut current);
                    }
                    while chars
                        .peek()
                        .is_some_and(|n| matches!(n, '>' | '<' | '&' | '-'))
                    {
                        chars.next();
                    }
                    skip_next_word = true;
                }
                '$' if chars.peek() == Some(&'(') => {
                    push_word(&mut word, &mut in_word, &mut skip_next_word, &mut current);
                    finish(&mut current);
                    chars.next();
                }
                _ => {
                    in_word = true;
                    word.push(c);
                }
            }
        }
        push_word(&mut word, &mut in_word, &mut skip_next_word, &mut current);
        finish(&mut current);
    }
    commands
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[test]
fn the_shell_splitter_finds_commands_as_bash_would() {
    let commands = simple_commands(
        "keywrap policy | vault policy write x -   # a comment\n\
         (umask 077; keywrap read 'a/b#c' > key)\n\
         X=1 keywrap exec \\\n    -- sh -c 'echo \"$A\"' 2>/dev/null\n\
         vault write r - <<'EOF'\n{\"keywrap\": \"not a command\"}\nEOF\n\
         echo \"$(keywrap version)\"",
    );
    assert_eq!(
        commands,
        [
            vec!["keywrap", "policy"],
            vec!["vault", "policy", "write", "x", "-"],
            vec!["umask", "077"],
            vec!["keywrap", "read", "a/b#c"],
            vec!["keywrap", "exec", "--", "sh", "-c", "echo \"$A\""],
            vec!["vault", "write", "r", "-"],
            vec!["echo", "$(keywrap version)"],
        ]
    );
}

#[test]
fn every_keywrap_toml_in_the_docs_loads() {
    let mut loaded = 0;
    for block in all_blocks().iter().filter(|b| b.lang == "toml") {
        keywrap::config::LoadedConfig::parse(Path::new("keywrap.toml"), block.text.clone())
            .unwrap_or_else(|e| panic!("{}: {e:#}", block.place()));
        loaded += 1;
    }
    assert!(loaded >= 8, "{loaded}");
}

/// The schemas check-jsonschema ships (`scripts/install-test-deps` installs it into .venv).
fn schema(kind: WorkflowKind) -> Value {
    let file = match kind {
        WorkflowKind::GitHub => "github-workflows.json",
        WorkflowKind::GitLab => "gitlab-ci.json",
    };
    let dir = match std::env::var_os("KEYWRAP_TEST_SCHEMAS") {
        Some(dir) => PathBuf::from(dir),
        None => std::fs::read_dir(Path::new(ROOT).join(".venv/lib"))
            .ok()
            .into_iter()
            .flatten()
            .map(|e| {
                e.unwrap()
                    .path()
                    .join("site-packages/check_jsonschema/builtin_schemas/vendor")
            })
            .find(|p| p.is_dir())
            .expect("the CI schemas are missing: run scripts/install-test-deps (or set KEYWRAP_TEST_SCHEMAS)"),
    };
    serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
}

fn schema_errors(kind: WorkflowKind, workflow: &Value) -> Vec<String> {
    let schema = schema(kind);
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(workflow)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn every_workflow_in_the_docs_and_the_repository_matches_its_schema() {
    let mut workflows: Vec<(String, WorkflowKind, Value)> = Vec::new();
    for block in all_blocks().iter().filter(|b| b.lang == "yaml") {
        let kind = block.workflow_kind().unwrap();
        workflows.push((block.place(), kind, yaml(block)));
    }
    for entry in std::fs::read_dir(Path::new(ROOT).join(".github/workflows")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let workflow: Value = serde_yaml_ng::from_str(&text).unwrap();
        workflows.push((path.display().to_string(), WorkflowKind::GitHub, workflow));
    }
    assert!(workflows.len() >= 4);
    for (place, kind, workflow) in &workflows {
        let errors = schema_errors(*kind, workflow);
        assert!(errors.is_empty(), "{place}: {errors:#?}");
        match kind {
            WorkflowKind::GitHub => {
                assert!(workflow.get("on").is_some(), "{place}: no `on:`");
                for (name, job) in workflow["jobs"].as_object().unwrap() {
                    assert!(
                        job.get("runs-on").is_some(),
                        "{place}: job {name} has no runs-on"
                    );
                }
            }
            WorkflowKind::GitLab => {
                for (name, job) in gitlab_jobs(workflow) {
                    assert!(
                        job.get("image").is_some(),
                        "{place}: job {name} has no image"
                    );
                    assert!(
                        job.get("script").is_some(),
                        "{place}: job {name} has no script"
                    );
                }
            }
        }
    }
    // The schemas bite: a workflow without `on:` (what the issue found), a GitLab job with
    // a `when:` GitLab does not know.
    let mut broken = workflows
        .iter()
        .find(|(_, kind, _)| *kind == WorkflowKind::GitHub)
        .unwrap()
        .2
        .clone();
    broken.as_object_mut().unwrap().remove("on");
    assert!(!schema_errors(WorkflowKind::GitHub, &broken).is_empty());
    let gitlab =
        json!({ "test": { "image": "python:3.12", "script": ["true"], "when": "sometimes" } });
    assert!(!schema_errors(WorkflowKind::GitLab, &gitlab).is_empty());
}

fn gitlab_jobs(workflow: &Value) -> Vec<(&String, &Value)> {
    const KEYWORDS: &[&str] = &[
        "default",
        "include",
        "stages",
        "variables",
        "workflow",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
    ];
    workflow
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| !KEYWORDS.contains(&name.as_str()) && !name.starts_with('.'))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Running the Vault commands and the CI jobs.

/// A directory of executables for the PATH: `vault` (OpenBao's CLI), `keywrap` when asked,
/// and stand-ins for the tools a CI image has (`pip`, `pytest`).
struct Tools {
    dir: tempfile::TempDir,
}

impl Tools {
    fn new() -> Tools {
        let tools = Tools {
            dir: tempfile::tempdir().unwrap(),
        };
        std::os::unix::fs::symlink(bao_binary(), tools.dir.path().join("vault")).unwrap();
        // pip: records what it was asked to install (the job's network stays on loopback).
        tools.script(
            "pip",
            &format!("echo \"pip $*\" >> '{}'", tools.log().display()),
        );
        // pytest: says what it got, without the value.
        tools.script(
            "pytest",
            "printf 'pytest: OPENAI_API_KEY %s characters' \"${#OPENAI_API_KEY}\"\n\
             for v in VAULT_TOKEN VAULT_ID_TOKEN ACTIONS_ID_TOKEN_REQUEST_TOKEN; do\n\
               [ -n \"$(printenv $v)\" ] && printf ', %s set' $v\n\
             done\necho",
        );
        tools
    }

    fn with_keywrap(self) -> Tools {
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_keywrap"),
            self.dir.path().join("keywrap"),
        )
        .unwrap();
        self
    }

    fn script(&self, name: &str, body: &str) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("tools.log")
    }

    fn path_with(&self, before: &[PathBuf]) -> String {
        let system = std::env::var("PATH").unwrap_or_default();
        let mut parts: Vec<String> = before.iter().map(|p| p.display().to_string()).collect();
        parts.push(self.dir.path().display().to_string());
        parts.push(system);
        parts.join(":")
    }
}

/// Runs a script with `bash -eo pipefail` (as CI runners do), bounded to 60 s.
fn bash(script: &str, dir: &Path, env: &BTreeMap<String, String>) -> Output {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), script).unwrap();
    Command::new("timeout")
        .args(["60", "bash", "--noprofile", "--norc", "-eo", "pipefail"])
        .arg(file.path())
        .current_dir(dir)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[track_caller]
fn assert_ran(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs a doc's Vault-side shell block as an operator would: `vault` and `keywrap` on the
/// PATH, a root token, in the project (with its keywrap.toml); `rewrites` replace the
/// provider URLs that cannot be reached from here.
fn run_vault_block(bao: &Bao, block: &Block, project: &Path, rewrites: &[(&str, &str)]) {
    let tools = Tools::new().with_keywrap();
    let home = tempfile::tempdir().unwrap();
    let mut script = block.text.clone();
    for (from, to) in rewrites {
        script = script.replace(from, to);
    }
    let env = BTreeMap::from([
        ("PATH".to_string(), tools.path_with(&[])),
        ("HOME".to_string(), home.path().display().to_string()),
        ("VAULT_ADDR".to_string(), bao.addr.clone()),
        ("VAULT_TOKEN".to_string(), ROOT_TOKEN.to_string()),
    ]);
    assert_ran(&block.place(), &bash(&script, project, &env));
}

/// A project directory holding a doc's keywrap.toml.
fn project_with(config: &str) -> tempfile::TempDir {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("keywrap.toml"), config).unwrap();
    project
}

#[test]
fn every_other_vault_command_in_the_docs_runs_against_openbao() {
    let readme_config = &blocks_in("README.md", "toml")[0].text;
    let mut ran = 0;
    for block in all_blocks() {
        let is_ci_page = block.file.starts_with(Path::new(ROOT).join("docs/ci"));
        let uses_vault = simple_commands(&block.text)
            .iter()
            .any(|words| words[0] == "vault");
        if block.lang != "sh" || is_ci_page || !uses_vault {
            continue;
        }
        let bao = Bao::start();
        let project = project_with(readme_config);
        run_vault_block(&bao, &block, project.path(), &[]);
        ran += 1;
    }
    assert!(
        ran >= 1,
        "auth.md's `keywrap policy | vault policy write` runs"
    );
}

/// GitHub's release downloads for the docs' install steps: a release of this version with
/// a `keywrap` that runs the binary under test, packed and checksummed as the release
/// workflow packs it.
struct Releases {
    stub: Stub,
    _dir: tempfile::TempDir,
}

impl Releases {
    const REPOSITORY: &'static str = "acme/keywrap";

    fn start() -> Releases {
        let dir = tempfile::tempdir().unwrap();
        let stage = dir.path().join("stage");
        std::fs::create_dir(&stage).unwrap();
        let keywrap = stage.join("keywrap");
        std::fs::write(
            &keywrap,
            format!(
                "#!/bin/sh\nexec '{}' \"$@\"\n",
                env!("CARGO_BIN_EXE_keywrap")
            ),
        )
        .unwrap();
        std::fs::set_permissions(&keywrap, std::fs::Permissions::from_mode(0o755)).unwrap();
        let asset = format!(
            "keywrap-{VERSION}-{}-unknown-linux-musl.tar.gz",
            std::env::consts::ARCH
        );
        let pack = format!(
            "tar -czf '{asset}' -C stage keywrap && sha256sum '{asset}' > '{asset}.sha256'"
        );
        assert_ran("packing", &bash(&pack, dir.path(), &system_env()));
        let mut files = BTreeMap::new();
        for name in [asset.clone(), format!("{asset}.sha256")] {
            let url = format!("/{}/releases/download/v{VERSION}/{name}", Self::REPOSITORY);
            files.insert(url, std::fs::read(dir.path().join(&name)).unwrap());
        }
        let stub = Stub::start_bytes(move |request| match files.get(&request.target) {
            Some(bytes) => (200, bytes.clone()),
            None => (404, b"Not Found".to_vec()),
        });
        Releases { stub, _dir: dir }
    }

    fn downloads(&self) -> usize {
        self.stub.requests().len()
    }
}

fn system_env() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_default(),
    )])
}

/// The outcome of one simulated CI job.
struct JobRun {
    /// (step or script name, stdout) of what ran.
    outputs: Vec<(String, String)>,
    skipped: Vec<String>,
}

impl JobRun {
    fn output_of(&self, command: &str) -> &str {
        self.outputs
            .iter()
            .find(|(name, _)| name.contains(command))
            .map(|(_, out)| out.as_str())
            .unwrap_or_else(|| panic!("{command} did not run"))
    }
}

/// A GitHub-hosted runner, as far as the docs' workflows need one: `run:` steps in bash
/// with the workflow's, job's and step's `env:` (`${{ env.X }}`, `${{ vars.X }}`,
/// `${{ runner.os }}`, `${{ runner.arch }}`), `$GITHUB_PATH`, step `if:` on a cache hit, and
/// the actions they use: checkout (the workspace is there), setup-python (python3 is), and
/// cache (a store that outlives the job). A job-level `if:` is not evaluated.
struct GitHubRunner {
    tools: Tools,
    vars: BTreeMap<String, String>,
    job_env: BTreeMap<String, String>,
    cache: Arc<Mutex<BTreeMap<String, tempfile::TempDir>>>,
    /// Replacements in `run:` scripts for hosts that cannot be reached from here.
    rewrites: Vec<(String, String)>,
}

impl GitHubRunner {
    fn run_job(&self, workflow: &Value, job_name: &str, workspace: &Path) -> JobRun {
        let job = &workflow["jobs"][job_name];
        let home = tempfile::tempdir().unwrap();
        let temp = tempfile::tempdir().unwrap();
        let github_path = temp.path().join("github_path");
        std::fs::write(&github_path, "").unwrap();
        let mut env = self.job_env.clone();
        env.insert("HOME".into(), home.path().display().to_string());
        env.insert("RUNNER_TEMP".into(), temp.path().display().to_string());
        env.insert("GITHUB_PATH".into(), github_path.display().to_string());
        env.insert("GITHUB_WORKSPACE".into(), workspace.display().to_string());
        env.insert("GITHUB_JOB".into(), job_name.to_string());
        for scope in [&workflow["env"], &job["env"]] {
            // The docs' VAULT_ADDR names their example server: the job's (the test server)
            // stands in.
            for (name, value) in scope.as_object().into_iter().flatten() {
                if name != "VAULT_ADDR" {
                    let value = self.expand(&scalar(value), &env);
                    env.insert(name.clone(), value);
                }
            }
        }
        let mut outputs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut saves: Vec<(String, PathBuf)> = Vec::new();
        let mut run = JobRun {
            outputs: Vec::new(),
            skipped: Vec::new(),
        };
        for (index, step) in job["steps"].as_array().unwrap().iter().enumerate() {
            let name = step["name"]
                .as_str()
                .or(step["run"].as_str())
                .or(step["uses"].as_str())
                .unwrap()
                .to_string();
            if let Some(condition) = step["if"].as_str() {
                if !evaluate_step_if(condition, &outputs) {
                    run.skipped.push(name);
                    continue;
                }
            }
            let mut step_env = env.clone();
            for (key, value) in step["env"].as_object().into_iter().flatten() {
                let value = self.expand(&scalar(value), &env);
                step_env.insert(key.clone(), value);
            }
            let extra_path: Vec<PathBuf> = std::fs::read_to_string(&github_path)
                .unwrap()
                .lines()
                .rev()
                .map(PathBuf::from)
                .collect();
            step_env.insert("PATH".into(), self.tools.path_with(&extra_path));
            if let Some(uses) = step["uses"].as_str() {
                let with = |key: &str| self.expand(&scalar(&step["with"][key]), &env);
                match uses {
                    "actions/checkout@v4" | "actions/setup-python@v5" => {}
                    "actions/cache@v4" => {
                        let key = with("key");
                        let path = PathBuf::from(with("path").replacen('~', &env["HOME"], 1));
                        let cache = self.cache.lock().unwrap();
                        let hit = match cache.get(&key) {
                            Some(saved) => {
                                copy_dir(saved.path(), &path);
                                true
                            }
                            None => false,
                        };
                        drop(cache);
                        let id = step["id"].as_str().unwrap_or_default().to_string();
                        outputs
                            .entry(id)
                            .or_default()
                            .insert("cache-hit".into(), hit.to_string());
                        if !hit {
                            saves.push((key, path));
                        }
                    }
                    other => panic!("step {index}: the docs test has no stand-in for {other}"),
                }
                run.outputs.push((name, String::new()));
                continue;
            }
            let mut script = step["run"].as_str().unwrap().to_string();
            for (from, to) in &self.rewrites {
                script = script.replace(from, to);
            }
            let output = bash(&script, workspace, &step_env);
            let stdout = assert_ran(&format!("step {name:?}"), &output);
            run.outputs.push((name, stdout));
        }
        // The cache is saved when the job succeeded (a failed step panicked above).
        let mut cache = self.cache.lock().unwrap();
        for (key, path) in saves {
            let saved = tempfile::tempdir().unwrap();
            copy_dir(&path, saved.path());
            cache.insert(key, saved);
        }
        run
    }

    /// `${{ ... }}` expressions of the kinds the docs use.
    fn expand(&self, text: &str, env: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").unwrap() + start;
            let expression = rest[start + 3..end].trim();
            let value = if let Some(name) = expression.strip_prefix("env.") {
                env[name].clone()
            } else if let Some(name) = expression.strip_prefix("vars.") {
                self.vars.get(name).cloned().unwrap_or_default()
            } else {
                match expression {
                    "runner.os" => "Linux".into(),
                    "runner.arch" => "X64".into(),
                    other => panic!("the docs test cannot evaluate ${{{{ {other} }}}}"),
                }
            };
            out.push_str(&value);
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// `steps.ID.outputs.NAME != 'VALUE'` (or `==`).
fn evaluate_step_if(condition: &str, outputs: &BTreeMap<String, BTreeMap<String, String>>) -> bool {
    let (left, equal, right) = match (condition.split_once("!="), condition.split_once("==")) {
        (Some((l, r)), _) => (l, false, r),
        (None, Some((l, r))) => (l, true, r),
        _ => panic!("the docs test cannot evaluate `if: {condition}`"),
    };
    let parts: Vec<&str> = left.trim().split('.').collect();
    let ["steps", id, "outputs", name] = parts[..] else {
        panic!("the docs test cannot evaluate `if: {condition}`");
    };
    let actual = outputs
        .get(id)
        .and_then(|o| o.get(name))
        .cloned()
        .unwrap_or_default();
    (actual == right.trim().trim_matches('\'')) == equal
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let copy = format!("cp -a '{}/.' '{}/'", from.display(), to.display());
    assert_ran(
        "copying the cache",
        &bash(&copy, Path::new("/"), &system_env()),
    );
}

/// The runner of the GitHub page's jobs: OIDC from `oidc`, VAULT_ADDR at `bao`, downloads
/// from `releases`.
fn github_runner(bao: &Bao, oidc: &OidcProvider, releases: &Releases) -> GitHubRunner {
    let job_env = BTreeMap::from([
        ("CI".to_string(), "true".to_string()),
        ("GITHUB_ACTIONS".into(), "true".into()),
        ("GITHUB_REPOSITORY".into(), "acme/app".into()),
        ("GITHUB_WORKFLOW".into(), "test".into()),
        ("GITHUB_RUN_ID".into(), "4242".into()),
        ("RUNNER_OS".into(), "Linux".into()),
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL".into(),
            format!("{}/token?api-version=2.0", oidc.url()),
        ),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(),
            REQUEST_TOKEN.into(),
        ),
        // Stands in for the workflow's https://vault.example.com.
        ("VAULT_ADDR".into(), bao.addr.clone()),
    ]);
    GitHubRunner {
        tools: Tools::new(),
        vars: BTreeMap::from([(
            "KEYWRAP_REPOSITORY".to_string(),
            Releases::REPOSITORY.to_string(),
        )]),
        job_env,
        cache: Arc::default(),
        rewrites: vec![("https://github.com".to_string(), releases.stub.url.clone())],
    }
}

const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

#[test]
fn the_github_actions_page_works_when_pasted() {
    let doc = "docs/ci/github-actions.md";
    let shell = blocks_in(doc, "sh");
    let config = &blocks_in(doc, "toml")[0];
    let workflows = blocks_in(doc, "yaml");
    let bao = Bao::start();
    bao.kv_put(
        "secret/openai",
        &[("api_key", "fake-production-key-0123456789")],
    );
    bao.kv_put("secret/openai-test", &[("api_key", "fake-test-key")]);
    let oidc = OidcProvider::start();
    let releases = Releases::start();
    let project = project_with(&config.text);

    // The Vault side, pasted: the role's bound_claims arrive as a map.
    run_vault_block(
        &bao,
        &shell[0],
        project.path(),
        &[(GITHUB_ISSUER, oidc.url())],
    );
    let role = bao.ok("GET", "auth/github/role/acme-app-ci", None);
    assert_eq!(
        role["data"]["bound_claims"],
        json!({ "repository": "acme/app", "ref": "refs/heads/main" })
    );
    let policy = bao.ok("GET", "sys/policies/acl/acme-app-ci", None);
    assert!(policy["data"]["policy"]
        .as_str()
        .unwrap()
        .contains("path \"secret/data/openai\""));

    // The workflow on main: installs keywrap, checks, runs pytest with the key.
    let workflow = yaml(&workflows[0]);
    assert_eq!(
        workflow["env"]["KEYWRAP_VERSION"], VERSION,
        "the docs install this version"
    );
    oidc.set_claims(json!({ "repository": "acme/app", "ref": "refs/heads/main" }));
    let runner = github_runner(&bao, &oidc, &releases);
    let first = runner.run_job(&workflow, "test", project.path());
    assert_eq!(releases.downloads(), 2, "the archive and its SHA-256 file");
    assert!(first
        .output_of("keywrap check")
        .contains("ok    OPENAI_API_KEY (secret/openai#api_key) version 1"));
    assert_eq!(
        first.output_of("keywrap exec -- pytest"),
        "pytest: OPENAI_API_KEY 30 characters\n",
        "pytest gets the key and no login material"
    );
    let pip = std::fs::read_to_string(runner.tools.log()).unwrap();
    assert_eq!(pip, "pip install pytest\n");
    assert!(!bao.audit_text().contains("fake-production-key"));

    // A second run finds keywrap in the cache and downloads nothing.
    let second = runner.run_job(&workflow, "test", project.path());
    assert_eq!(second.skipped, ["Install keywrap"]);
    assert_eq!(releases.downloads(), 2);
    assert!(second
        .output_of("keywrap check")
        .contains("ok    OPENAI_API_KEY"));

    // What the page says about pull requests: the main role refuses their tokens...
    oidc.set_claims(json!({ "repository": "acme/app", "ref": "refs/pull/7/merge" }));
    let keywrap_in_job = |extra: &[(&str, &str)], args: &[&str]| {
        let mut keywrap = support::Keywrap::new();
        keywrap.current_dir(project.path());
        for (name, value) in runner.job_env.iter() {
            keywrap.env(name, value);
        }
        for (name, value) in extra {
            keywrap.env(name, value);
        }
        keywrap.args(args).run()
    };
    let refused = keywrap_in_job(&[], &["check"]);
    refused
        .assert_code(125)
        .assert_stderr_contains("jwt login at auth/github failed (HTTP 400): error validating claims: claim \"ref\" does not match any associated bound claim values");
    // ... a fork's job has no OIDC token to offer ...
    let mut fork = support::Keywrap::new();
    fork.current_dir(project.path())
        .env("GITHUB_ACTIONS", "true")
        .env("VAULT_ADDR", &bao.addr);
    fork.arg("check")
        .run()
        .assert_code(125)
        .assert_stderr_contains("GitHub Actions offers no OIDC token");
    // ... and the pull-request role and workflow let them in, with the test key only.
    run_vault_block(&bao, &shell[1], project.path(), &[]);
    let pr_workflow = yaml(&workflows[1]);
    let pr = runner.run_job(&pr_workflow, "test", project.path());
    assert_eq!(
        pr.output_of("keywrap exec"),
        "pytest: OPENAI_API_KEY 13 characters\n"
    );
    let production = keywrap_in_job(
        &[("KEYWRAP_AUTH_ROLE", "acme-app-pr")],
        &["exec", "--", "true"],
    );
    production
        .assert_code(125)
        .assert_stderr_contains("permission denied reading \"secret/openai\"");
}

#[test]
fn the_gitlab_ci_page_works_when_pasted() {
    let doc = "docs/ci/gitlab-ci.md";
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-gitlab-key-0123")]);
    let oidc = OidcProvider::start();
    let releases = Releases::start();
    let project = project_with(&blocks_in(doc, "toml")[0].text);
    run_vault_block(
        &bao,
        &blocks_in(doc, "sh")[0],
        project.path(),
        &[("https://gitlab.example.com", oidc.url())],
    );
    let role = bao.ok("GET", "auth/gitlab/role/acme-app-ci", None);
    assert_eq!(
        role["data"]["bound_claims"],
        json!({ "project_path": "acme/app", "ref_protected": "true" })
    );

    let pipeline = yaml(&blocks_in(doc, "yaml")[0]);
    let job = &pipeline["test"];
    assert_eq!(job["variables"]["KEYWRAP_VERSION"], VERSION);
    let audience = job["id_tokens"]["VAULT_ID_TOKEN"]["aud"].as_str().unwrap();
    let tools = Tools::new();
    let cache = tempfile::tempdir().unwrap();
    let run_job = |protected: bool| -> Option<JobRun> {
        let token = oidc.sign(json!({
            "aud": audience,
            "project_path": "acme/app",
            "ref": "main",
            "ref_protected": protected.to_string(),
        }));
        let mut env = BTreeMap::from([
            ("CI".to_string(), "true".to_string()),
            ("GITLAB_CI".into(), "true".into()),
            ("CI_PROJECT_PATH".into(), "acme/app".into()),
            ("CI_JOB_NAME".into(), "test".into()),
            ("CI_COMMIT_REF_PROTECTED".into(), protected.to_string()),
            ("KEYWRAP_REPOSITORY".into(), Releases::REPOSITORY.into()),
            ("VAULT_ID_TOKEN".into(), token),
            ("VAULT_ADDR".into(), bao.addr.clone()),
            ("PATH".into(), tools.path_with(&[])),
        ]);
        for (name, value) in job["variables"].as_object().unwrap() {
            // The docs' VAULT_ADDR names their example server: the test server stands in.
            if name != "VAULT_ADDR" {
                env.insert(name.clone(), scalar(value));
            }
        }
        if !gitlab_rules_admit(job, &env) {
            return None;
        }
        // A fresh checkout, with the cache's paths restored.
        let workspace = tempfile::tempdir().unwrap();
        std::fs::copy(
            project.path().join("keywrap.toml"),
            workspace.path().join("keywrap.toml"),
        )
        .unwrap();
        let home = tempfile::tempdir().unwrap();
        env.insert("HOME".into(), home.path().display().to_string());
        let cached: Vec<String> = job["cache"]["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().trim_end_matches('/').to_string())
            .collect();
        for path in &cached {
            if cache.path().join(path).is_dir() {
                copy_dir(&cache.path().join(path), &workspace.path().join(path));
            }
        }
        let mut outputs = Vec::new();
        let lines: Vec<String> = ["before_script", "script"]
            .iter()
            .flat_map(|key| job[key].as_array().unwrap().iter())
            .map(|line| line.as_str().unwrap().to_string())
            .collect();
        // GitLab runs the lines in one shell; each line's output is told apart by a marker.
        let mut script = String::new();
        for (index, line) in lines.iter().enumerate() {
            let line = line.replace("https://github.com", &releases.stub.url);
            script.push_str(&format!("echo '::line {index}::'\n{line}\n"));
        }
        let output = bash(&script, workspace.path(), &env);
        let stdout = assert_ran("the GitLab job", &output);
        for (index, line) in lines.iter().enumerate() {
            let start = stdout.find(&format!("::line {index}::\n")).unwrap();
            let text = &stdout[start..];
            let text = &text[text.find('\n').unwrap() + 1..];
            let end = text.find("::line ").unwrap_or(text.len());
            outputs.push((line.clone(), text[..end].to_string()));
        }
        for path in &cached {
            copy_dir(&workspace.path().join(path), &cache.path().join(path));
        }
        Some(JobRun {
            outputs,
            skipped: Vec::new(),
        })
    };

    let first = run_job(true).expect("a protected ref runs the job");
    assert_eq!(releases.downloads(), 2);
    assert!(first
        .output_of("keywrap check")
        .contains("ok    OPENAI_API_KEY (secret/openai#api_key) version 1"));
    assert_eq!(
        first.output_of("keywrap exec -- pytest"),
        "pytest: OPENAI_API_KEY 20 characters\n",
        "pytest gets the key, not VAULT_ID_TOKEN"
    );
    let second = run_job(true).unwrap();
    assert_eq!(releases.downloads(), 2, "keywrap came from the cache");
    assert!(second
        .output_of("keywrap check")
        .contains("ok    OPENAI_API_KEY"));

    // An unprotected ref: the rules skip the job, and its token could not log in anyway.
    assert!(run_job(false).is_none());
    let token = oidc.sign(json!({
        "aud": audience,
        "project_path": "acme/app",
        "ref_protected": "false",
    }));
    let mut keywrap = support::Keywrap::new();
    keywrap
        .current_dir(project.path())
        .env("GITLAB_CI", "true")
        .env("VAULT_ID_TOKEN", token)
        .env("VAULT_ADDR", &bao.addr);
    keywrap
        .arg("check")
        .run()
        .assert_code(125)
        .assert_stderr_contains("jwt login at auth/gitlab failed (HTTP 400): error validating claims: claim \"ref_protected\" does not match any associated bound claim values");
}

/// `rules: - if: $VAR == "value"`, the form the docs use: the job runs when a rule holds.
fn gitlab_rules_admit(job: &Value, env: &BTreeMap<String, String>) -> bool {
    let Some(rules) = job["rules"].as_array() else {
        return true;
    };
    rules.iter().any(|rule| {
        let condition = rule["if"].as_str().unwrap();
        let (left, right) = condition
            .split_once("==")
            .unwrap_or_else(|| panic!("the docs test cannot evaluate `if: {condition}`"));
        let name = left.trim().trim_start_matches('$');
        let expected = right.trim().trim_matches('"');
        env.get(name).map(String::as_str) == Some(expected)
    })
}
