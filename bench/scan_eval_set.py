#!/usr/bin/env python3
"""Builds a one-case-per-file evaluation set for secret scanners (bench/scan_accuracy.sh).

    python3 bench/scan_eval_set.py GITLEAKS_CONFIG.toml OUT_DIR

Positives: for every rule in gitleaks' default config (its regexes only; scan_accuracy.sh
extracts the config from the gitleaks binary at run time), secrets are generated at random
from the rule's regex and put into assignment contexts named after the provider (env,
shell, YAML, JSON, Go, Python, JS, PHP, Makefile, XML over lines, Java setProperty, TOML,
and a bare token in an HTTP header and a log line where the rule needs no name), the way
gitleaks' own rule tests are generated. Rules whose secret is a structure (private keys,
curl commands, Kubernetes Secrets, Terraform passwords) get whole files written here.
Negatives: placeholders in the same contexts, the token prefix followed by one repeated
character, and values that look random but are not secrets (hashes, ids, public keys,
references to variables). Nothing here is copied from any scanner's test cases, and every
key is generated when the set is built (seed: SEED, default 7).
"""
import os, random, re, shutil, string, sys, tomllib
import warnings
warnings.filterwarnings("ignore")
import sre_parse, sre_constants as C

rng = random.Random(int(os.environ.get("SEED", "7")))
OUT = None  # set from argv
WORD = string.ascii_letters + string.digits + "_"
PRINTABLE = string.ascii_letters + string.digits + "+/=_-."

def fix(regex):
    regex = regex.replace(r"\z", r"\Z").replace("[[:alnum:]]", "[A-Za-z0-9]").replace("[:alnum:]", "A-Za-z0-9")
    flags = ""
    if "(?i)" in regex:
        flags = "(?i)"
        regex = regex.replace("(?i)", "")
    regex = regex.replace("(?s)", "").replace("(?-i)", "")
    regex = re.sub(r"\(\?P<", "(?P<", regex)
    return flags + regex

def chars_of(items):
    out = []
    negate = False
    for op, av in items:
        if op == C.NEGATE:
            negate = True
        elif op == C.LITERAL:
            out.append(chr(av))
        elif op == C.RANGE:
            out.extend(chr(c) for c in range(av[0], av[1] + 1))
        elif op == C.CATEGORY:
            out.extend({C.CATEGORY_DIGIT: string.digits, C.CATEGORY_WORD: WORD,
                        C.CATEGORY_SPACE: " ", C.CATEGORY_NOT_SPACE: PRINTABLE,
                        C.CATEGORY_NOT_DIGIT: string.ascii_letters,
                        C.CATEGORY_NOT_WORD: "-. "}.get(av, ""))
    if negate:
        out = [c for c in PRINTABLE + string.ascii_letters if c not in out]
    return [c for c in out if c.isprintable() and c not in "\n\r\t"] or ["x"]

class Gen:
    def __init__(self):
        self.groups = {}

    def seq(self, parsed):
        return "".join(self.one(op, av) for op, av in parsed)

    def one(self, op, av):
        if op == C.LITERAL:
            return chr(av)
        if op == C.NOT_LITERAL:
            return rng.choice([c for c in string.ascii_letters if ord(c) != av])
        if op == C.ANY:
            return "."
        if op == C.IN:
            return rng.choice(chars_of(av))
        if op == C.CATEGORY:
            return rng.choice(chars_of([(op, av)]))
        if op == C.BRANCH:
            return self.seq(rng.choice(av[1]))
        if op == C.SUBPATTERN:
            group, _, _, body = av
            text = self.seq(body)
            if group:
                self.groups[group] = text
            return text
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
            lo, hi, body = av
            if hi == C.MAXREPEAT:
                hi = lo + 16
            hi = min(hi, lo + 24)
            # Context repeats (names, spaces) stay short; secret repeats vary.
            n = rng.randint(lo, hi) if hi - lo < 30 else lo
            return "".join(self.seq(body) for _ in range(n))
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            return ""
        if op == C.GROUPREF:
            return self.groups.get(av, "")
        raise ValueError(op)

def generate(rule, tries=40):
    regex = fix(rule["regex"])
    compiled = re.compile(regex)
    parsed = sre_parse.parse(regex)
    group = rule.get("secretGroup") or (1 if compiled.groups >= 1 else 0)
    for _ in range(tries):
        g = Gen()
        text = g.seq(parsed)
        m = compiled.search(text)
        if not m:
            continue
        secret = m.group(group) if group else m.group(0)
        if secret and len(secret) >= 8 and "\n" not in secret:
            return secret
    return None

def pem_block():
    body = "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(64 * 20))
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{lines}\n-----END {kind}PRIVATE KEY-----\n"

def jwt():
    import base64, json
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    sig = "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(43))
    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc({'sub': str(rng.randint(1, 10**6)), 'name': 'Dev User', 'iat': 1716239022})}.{sig}"

def rand(n, alphabet=string.ascii_letters + string.digits):
    return "".join(rng.choice(alphabet) for _ in range(n))

def special(rid):
    """Whole-file positives for rules whose secret is a structure, not a token."""
    import base64
    b64 = lambda t: base64.b64encode(t.encode()).decode()
    pw = lambda: rand(6) + rng.choice("!@#$%") + rand(8) + str(rng.randint(10, 99))
    cases = {
        "private-key": [("pem", "pem", pem_block()), ("yaml", "yaml", "tls:\n  key: |\n" + "".join("    " + l + "\n" for l in pem_block().splitlines())),
                         ("json", "json", '{"private_key": "' + pem_block().replace("\n", "\\n") + '"}\n'),
                         ("env", "env", 'SSH_KEY="' + pem_block() + '"\n')],
        "jwt-base64": [("yaml", "yaml", f"data:\n  token: {b64(jwt())}\n"), ("env", "env", f"AUTH={b64(jwt())}\n"),
                        ("json", "json", f'{{"session": "{b64(jwt())}"}}\n')],
        "curl-auth-header": [("sh", "sh", f'curl -H "Authorization: Bearer {rand(40)}" https://api.example.org/v1/items\n'),
                              ("sh2", "sh", f"curl --header 'X-Api-Key: {rand(32)}' https://api.example.org/\n"),
                              ("md", "md", f"```\ncurl -H 'Authorization: Basic {b64('deploy:' + pw())}' https://ci.example.org\n```\n")],
        "curl-auth-user": [("sh", "sh", f"curl -u deploy:{pw()} https://repo.example.org/upload\n"),
                            ("sh2", "sh", f'curl --user "admin:{pw()}" https://registry.example.org/v2/\n'),
                            ("md", "md", f"Run `curl -u ci-bot:{pw()} https://builds.example.org/api`\n")],
        "kubernetes-secret-yaml": [("yaml", "yaml", f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\ntype: Opaque\ndata:\n  password: {b64(pw())}\n  api-key: {b64(rand(32))}\n"),
                                   ("yaml2", "yaml", f"kind: Secret\napiVersion: v1\nmetadata:\n  name: db\nstringData:\n  DB_PASSWORD: {pw()}\n")],
        "sidekiq-secret": [("env", "env", f"BUNDLE_ENTERPRISE__CONTRIBSYS__COM={rand(8, '0123456789abcdef')}:{rand(8, '0123456789abcdef')}\n"),
                            ("sh", "sh", f"bundle config --local gems.contribsys.com {rand(8, '0123456789abcdef')}:{rand(8, '0123456789abcdef')}\n")],
        "sidekiq-sensitive-url": [("gemfile", "rb", f'source "https://{rand(8, "0123456789abcdef")}:{rand(8, "0123456789abcdef")}@gems.contribsys.com/" do\n  gem "sidekiq-pro"\nend\n')],
        "nuget-config-password": [("config", "config", f'<configuration>\n  <packageSourceCredentials>\n    <feed>\n      <add key="Username" value="ci" />\n      <add key="ClearTextPassword" value="{pw()}" />\n    </feed>\n  </packageSourceCredentials>\n</configuration>\n')],
        "hashicorp-tf-password": [("tf", "tf", f'resource "azurerm_sql_server" "db" {{\n  administrator_login          = "dbadmin"\n  administrator_login_password = "{pw()}"\n}}\n'),
                                   ("tf2", "tf", f'resource "aws_db_instance" "db" {{\n  username = "admin"\n  password = "{pw()}"\n}}\n')],
        "generic-api-key": [("py", "py", f"api_key = '{rand(32)}'\n"), ("yaml", "yaml", f"client_secret: {rand(40)}\n"),
                             ("env", "env", f"SERVICE_ACCESS_TOKEN={rand(48)}\n"), ("js", "js", f"const authSecret = '{rand(24)}';\n"),
                             ("go", "go", f'var apiSecret = "{rand(36)}"\n'), ("ini", "ini", f"[server]\npassword = {pw()}\n")],
    }
    return cases.get(rid)

def family(rule_id):
    first = rule_id.split("-")[0]
    return {"1password": "onepassword", "gcp": "google", "aws": "aws", "new": "newrelic",
            "hashicorp": "terraform", "private": "ssh", "generic": "service",
            "curl": "curl", "jwt": "auth", "pkcs12": "cert", "kubernetes": "k8s",
            "vault": "vault", "defined": "nebula", "intra42": "intra42"}.get(first, first)

# (name, extension, template): {i} camel identifier, {u} upper, {s} secret.
CONTEXTS = [
    ("env", "env", "{u}_API_KEY={s}\n"),
    ("shell", "sh", "export {u}_TOKEN=\"{s}\"\n"),
    ("yaml", "yaml", "{l}:\n  {l}_secret: {s}\n"),
    ("json", "json", "{{\n  \"{l}_token\": \"{s}\"\n}}\n"),
    ("go", "go", "package main\n\nvar {i}Token string = \"{s}\"\n"),
    ("go-short", "go", "func f() {{\n\t{i}Key := `{s}`\n}}\n"),
    ("python", "py", "{l}_api_key = '{s}'\n"),
    ("js", "js", "const {i}ApiKey = \"{s}\";\n"),
    ("php", "php", "<?php\n${i}Token .= \"{s}\";\n"),
    ("makefile", "mk", "{u}_TOKEN ?= {s}\n"),
    ("xml", "xml", "<config>\n  <{i}Token>\n    {s}\n  </{i}Token>\n</config>\n"),
    ("java", "java", "System.setProperty(\"{u}_KEY\", \"{s}\");\n"),
    ("toml", "toml", "[{l}]\ncredentials = \"{s}\"\n"),
]

RAW = [
    ("http", "http", "GET /v1/me HTTP/1.1\nAuthorization: Bearer {s}\n"),
    ("log", "log", "2024-05-01 12:00:01 INFO connected with {s}\n"),
]

PLACEHOLDERS = ["your-{l}-api-key", "<{u}_API_KEY>", "${{{u}_API_KEY}}", "{{{{ secrets.{u}_TOKEN }}}}",
                "changeme", "REPLACE_ME", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "${{{u}_TOKEN:-}}",
                "%({u}_KEY)s", "TODO"]

def write(kind, name, ext, text):
    path = os.path.join(OUT, kind, f"{name}.{ext}")
    with open(path, "w") as f:
        f.write(text)

def placeholder_shape(secret, keyword):
    """The secret's public prefix kept, the rest one repeated character."""
    k = secret.lower().find(keyword.lower()) if keyword else -1
    if k == 0 and len(keyword) < len(secret) - 8:
        cut = len(keyword)
        return secret[:cut] + ("x" if secret[cut].islower() else "X") * (len(secret) - cut)
    return None

def main():
    global OUT
    cfg = tomllib.load(open(sys.argv[1], "rb"))
    OUT = sys.argv[2]
    for kind in ("positives", "negatives"):
        shutil.rmtree(os.path.join(OUT, kind), ignore_errors=True)
        os.makedirs(os.path.join(OUT, kind))
    skipped = []
    counts = {"positives": 0, "negatives": 0}
    for rule in cfg["rules"]:
        rid = rule["id"]
        if rid in ("pkcs12-file",) or "regex" not in rule:
            skipped.append(rid)
            continue
        fam = family(rid)
        custom = special(rid)
        if custom:
            for name, ext, text in custom:
                write("positives", f"{rid}--{name}", ext, text)
                counts["positives"] += 1
            continue
        ident = dict(i=fam.lower(), u=re.sub(r"[^A-Z0-9]", "_", fam.upper()), l=fam.lower())
        contexts = rng.sample(CONTEXTS, 8)
        contexts = contexts[:6] + RAW + contexts[6:]
        made = 0
        for name, ext, template in contexts:
            secret = generate(rule)
            if secret is None:
                continue
            # A bare token is a positive only for rules that need no name before it.
            if (name, ext, template) in RAW and not re.search(fix(rule["regex"]), template.format(s=secret, **ident)):
                continue
            write("positives", f"{rid}--{name}", ext, template.format(s=secret, **ident))
            made += 1
            counts["positives"] += 1
        if not made:
            skipped.append(rid)
            continue
        # Negatives: one placeholder in one context, and the prefix-only shape.
        name, ext, template = rng.choice(CONTEXTS)
        ph = rng.choice(PLACEHOLDERS).format(**ident)
        write("negatives", f"{rid}--placeholder-{name}", ext, template.format(s=ph, **ident))
        counts["negatives"] += 1
        secret = generate(rule)
        shape = secret and placeholder_shape(secret, (rule.get("keywords") or [""])[0])
        if shape:
            name, ext, template = rng.choice(CONTEXTS)
            write("negatives", f"{rid}--xshape-{name}", ext, template.format(s=shape, **ident))
            counts["negatives"] += 1
    for name, ext, text in BENIGN:
        write("negatives", f"benign--{name}", ext, text)
        counts["negatives"] += 1
    print(counts, "skipped:", " ".join(skipped))

def h(n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))

def uuid():
    x = h(32)
    return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-a{x[17:20]}-{x[20:]}"

def b64(n):
    return "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(n))

BENIGN = [
    ("git-sha", "txt", f"commit {h(40)}\nAuthor: A Developer <dev@example.org>\n"),
    ("lockfile-integrity", "json", f'{{\n  "node_modules/left-pad": {{\n    "version": "1.3.0",\n    "integrity": "sha512-{b64(86)}=="\n  }}\n}}\n'),
    ("cargo-lock", "lock", f'[[package]]\nname = "serde"\nversion = "1.0.200"\nchecksum = "{h(64)}"\n'),
    ("client-id-uuid", "yaml", f"oauth:\n  client_id: {uuid()}\n  tenant_id: {uuid()}\n"),
    ("request-id", "json", f'{{"request_id": "{uuid()}", "trace_token_id": "{uuid()}"}}\n'),
    ("ssh-public-key", "pub", f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{b64(43)} dev@laptop\n"),
    ("public-key-name", "py", f"public_key = '{b64(44)}'\n"),
    ("publishable-key", "js", f"const stripePublishableKey = 'pk_test_{b64(24).replace('+','a').replace('/','b')}';\n"),
    ("env-reference", "py", "import os\napi_key = os.environ['OPENAI_API_KEY']\ntoken = os.getenv('GITHUB_TOKEN')\n"),
    ("js-env", "js", "const apiKey = process.env.STRIPE_SECRET_KEY;\nconst token = config.get('token');\n"),
    ("getpass", "py", "password = getpass.getpass('Password: ')\n"),
    ("settings-ref", "py", "SECRET_KEY = settings.SECRET_KEY\nAWS_SECRET_ACCESS_KEY = env('AWS_SECRET_ACCESS_KEY')\n"),
    ("gha-secret", "yaml", "env:\n  NPM_TOKEN: ${{ secrets.NPM_TOKEN }}\n  GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}\n"),
    ("k8s-secretref", "yaml", "env:\n  - name: API_KEY\n    valueFrom:\n      secretKeyRef:\n        name: app-secrets\n        key: api-key\n"),
    ("keywrap-ref", "toml", '[env]\nOPENAI_API_KEY = "secret/data/openai#api_key"\n'),
    ("css-colors", "css", ".btn { color: #1a2b3c; background: #ffeedd; }\n"),
    ("docker-digest", "txt", f"FROM python:3.12-slim@sha256:{h(64)}\n"),
    ("go-sum", "sum", f"golang.org/x/text v0.14.0 h1:{b64(43)}=\n"),
    ("function-call", "go", "token, err := auth.NewToken(ctx, clientID)\nsecret := loadSecret(path)\n"),
    ("type-annotation", "ts", "function login(password: string, apiKey: ApiKeyType): Promise<TokenResponse> {}\n"),
    ("password-prompt", "html", '<input type="password" name="password" placeholder="Password">\n'),
    ("doc-example-aws", "md", "aws_access_key_id = " + "AKIA" + "IOSFODNN7EXAMPLE\naws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY\n"),
    ("test-names", "py", "def test_token_refresh_handles_expired_token():\n    key_name = 'primary_key_identifier'\n"),
    ("i18n", "json", '{"password_reset_token_expired": "Your reset link has expired", "api_key_label": "API key"}\n'),
    ("hash-in-test", "py", f"EXPECTED_SHA256 = '{h(64)}'\n"),
    ("md5-cache-key", "js", f"const cacheKey = '{h(32)}';\n"),
    ("base64-image", "css", f".logo {{ background: url(data:image/png;base64,iVBORw0KGgo{b64(120)}); }}\n"),
    ("url-no-creds", "yaml", "database_url: postgres://db.internal:5432/app\nredis: redis://cache:6379/0\n"),
    ("url-env-creds", "env", "DATABASE_URL=postgres://${DB_USER}:${DB_PASSWORD}@db:5432/app\n"),
    ("jwt-header-only", "md", "A JWT starts with a header such as `eyJhbGciOiJIUzI1NiJ9`.\n"),
    ("version-strings", "toml", 'key_version = "2024-01-01"\ntoken_endpoint = "https://auth.example.org/oauth/token"\n'),
    ("terraform-var", "tf", 'variable "api_token" {\n  type      = string\n  sensitive = true\n}\n'),
    ("helm-values", "yaml", "secret:\n  existingSecret: my-release-secret\n  key: password\n"),
    ("csrf", "html", f'<input type="hidden" name="csrf_token" value="{b64(40)}">\n'),
    ("numbers", "csv", "id,token_count,key_length\n1,4096,2048\n2,8192,4096\n"),
    ("redacted", "log", "Authorization: Bearer [REDACTED]\napi_key=****************\n"),
    ("masked-prefix", "log", "using key sk-...abcd (last four)\ntoken ghp_************************************\n"),
    ("uuid-credential-id", "json", f'{{"credential_id": "{uuid()}", "key_id": "{uuid()}"}}\n'),
    ("pem-public", "pem", "-----BEGIN PUBLIC KEY-----\n" + "\n".join(b64(64) for _ in range(6)) + "\n-----END PUBLIC KEY-----\n"),
    ("cert", "pem", "-----BEGIN CERTIFICATE-----\n" + "\n".join(b64(64) for _ in range(10)) + "\n-----END CERTIFICATE-----\n"),
    ("snake-identifiers", "py", "SECRET_KEY_SETTING_NAME = 'django_secret_key_setting_name'\nTOKEN_TYPE = 'bearer_token_type_default'\n"),
    ("java-constants", "java", 'private static final String API_KEY_HEADER = "X-Api-Key-Header-Name";\n'),
    ("go-struct-tags", "go", 'type Config struct {\n\tAPIKey string `json:"api_key" yaml:"api_key"`\n}\n'),
    ("rust-field", "rs", "let token = self.token_source.fetch_token(&scopes).await?;\n"),
    ("sql", "sql", "CREATE TABLE api_keys (id SERIAL, key_hash TEXT NOT NULL, created_at TIMESTAMP);\n"),
    ("path-values", "ini", "[ssl]\nkey_file = /etc/ssl/private/server-2024.key\ncert_file = /etc/ssl/certs/server-2024.pem\n"),
    ("all-same", "env", "API_KEY=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nSECRET=0000000000000000000000000000\n"),
    ("sequential", "env", "TOKEN=abcdefghijklmnopqrstuvwxyz123456\nKEY=1234567890abcdef1234567890abcdef\n"),
]

if __name__ == "__main__":
    main()
