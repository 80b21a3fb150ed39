//! Who is asking: the headers that tie one run's reads together in Vault's audit trail.
//!
//! None of these carry a secret or the full argument list: only the program's name.

use crate::environment::Environment;

/// Headers keywrap sends on every request, in the order `keywrap audit setup` registers them.
pub const AUDITED_HEADERS: &[&str] = &[
    "User-Agent",
    "X-Correlation-ID",
    "X-Keywrap-Command",
    "X-Keywrap-Host",
    "X-Keywrap-User",
    "X-Keywrap-CI",
];

/// The identity of one run.
#[derive(Debug, Clone)]
pub struct RunIdentity {
    /// Same for every request of one run, new for the next; also given to the child.
    pub correlation_id: String,
    /// The program's name (no path, no arguments).
    pub command: Option<String>,
    pub host: String,
    pub user: String,
    /// The CI system and job, when one is detected.
    pub ci: Option<String>,
}

impl RunIdentity {
    pub fn detect(env: &Environment, command: Option<&str>) -> Self {
        RunIdentity {
            correlation_id: uuid::Uuid::new_v4().to_string(),
            command: command.map(program_name),
            host: hostname(),
            user: user_name(env),
            ci: detect_ci(env),
        }
    }

    pub fn user_agent() -> String {
        format!("keywrap/{}", env!("CARGO_PKG_VERSION"))
    }

    /// Header name/value pairs, values made safe for HTTP.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("User-Agent", Self::user_agent()),
            ("X-Correlation-ID", self.correlation_id.clone()),
            ("X-Keywrap-Host", header_safe(&self.host)),
            ("X-Keywrap-User", header_safe(&self.user)),
        ];
        if let Some(command) = &self.command {
            headers.push(("X-Keywrap-Command", header_safe(command)));
        }
        if let Some(ci) = &self.ci {
            headers.push(("X-Keywrap-CI", header_safe(ci)));
        }
        headers
    }
}

/// `/usr/bin/python3` → `python3`.
fn program_name(command: &str) -> String {
    std::path::Path::new(command)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| command.to_string())
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

fn user_name(env: &Environment) -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|user| user.name)
        .or_else(|| env.get("USER").map(str::to_string))
        .unwrap_or_else(|| format!("uid:{}", nix::unistd::getuid()))
}

/// GitHub Actions and GitLab CI in detail, a few others by name.
pub fn detect_ci(env: &Environment) -> Option<String> {
    let describe = |system: &str, fields: &[(&str, &str)]| {
        let mut text = system.to_string();
        for (label, var) in fields {
            if let Some(value) = env.get(var) {
                text.push_str(&format!(" {label}={value}"));
            }
        }
        text
    };
    if env.get("GITHUB_ACTIONS") == Some("true") {
        return Some(describe(
            "github-actions",
            &[
                ("repo", "GITHUB_REPOSITORY"),
                ("workflow", "GITHUB_WORKFLOW"),
                ("job", "GITHUB_JOB"),
                ("run", "GITHUB_RUN_ID"),
                ("attempt", "GITHUB_RUN_ATTEMPT"),
                ("ref", "GITHUB_REF"),
                ("actor", "GITHUB_ACTOR"),
            ],
        ));
    }
    if env.get("GITLAB_CI") == Some("true") {
        return Some(describe(
            "gitlab-ci",
            &[
                ("project", "CI_PROJECT_PATH"),
                ("pipeline", "CI_PIPELINE_ID"),
                ("job", "CI_JOB_ID"),
                ("job_name", "CI_JOB_NAME"),
                ("ref", "CI_COMMIT_REF_NAME"),
                ("user", "GITLAB_USER_LOGIN"),
            ],
        ));
    }
    let others = [
        ("JENKINS_URL", "jenkins", "BUILD_TAG"),
        ("CIRCLECI", "circleci", "CIRCLE_BUILD_URL"),
        ("BUILDKITE", "buildkite", "BUILDKITE_BUILD_URL"),
        ("TF_BUILD", "azure-pipelines", "BUILD_BUILDID"),
    ];
    for (marker, name, detail) in others {
        if env.get(marker).is_some() {
            return Some(describe(name, &[("build", detail)]));
        }
    }
    None
}

/// Header values must be visible ASCII; anything else becomes `?`, and length is capped.
fn header_safe(value: &str) -> String {
    value
        .chars()
        .take(256)
        .map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_github_actions() {
        let env = Environment::from_pairs([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_JOB", "build"),
        ]);
        assert_eq!(
            detect_ci(&env).unwrap(),
            "github-actions repo=acme/app job=build run=42"
        );
    }

    #[test]
    fn detects_gitlab_ci() {
        let env = Environment::from_pairs([("GITLAB_CI", "true"), ("CI_JOB_ID", "7")]);
        assert_eq!(detect_ci(&env).unwrap(), "gitlab-ci job=7");
        assert_eq!(detect_ci(&Environment::default()), None);
    }

    #[test]
    fn headers_carry_only_the_program_name() {
        let identity = RunIdentity::detect(&Environment::default(), Some("/usr/bin/python3"));
        let headers = identity.headers();
        assert!(headers.contains(&("X-Keywrap-Command", "python3".into())));
        let other = RunIdentity::detect(&Environment::default(), None);
        assert_ne!(identity.correlation_id, other.correlation_id);
    }

    #[test]
    fn header_values_are_made_safe() {
        assert_eq!(header_safe("héllo\nx"), "h?llo?x");
    }
}
