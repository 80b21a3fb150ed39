//! Per-reference lifecycle options from keywrap.toml, and the age rule: a key is ok, due
//! for rotation soon, or overdue.

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::bindings::{Binding, Origin};
use crate::config::LoadedConfig;
use crate::duration;
use crate::reference::validate_env_name;

/// The maximum age when neither the reference nor `[policy]` sets one.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(90 * 86_400);
/// The overlap window when a reference names `previous` but no `overlap`.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(7 * 86_400);
/// "Rotate soon" starts this long before the limit: two weeks for a person to act. A key
/// whose `max_age` is shorter than that is "rotate soon" from the moment it is written.
pub const SOON_WINDOW: Duration = Duration::from_secs(14 * 86_400);

/// Lifecycle options of one binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOptions {
    pub max_age: Duration,
    /// Variable name for the previous version, and how long after a rotation it is given.
    pub previous: Option<(String, Duration)>,
}

/// The project-wide maximum age: `[policy] max_age`, else 90 days.
pub fn default_max_age(config: Option<&LoadedConfig>) -> Result<Duration> {
    let Some(config) = config else {
        return Ok(DEFAULT_MAX_AGE);
    };
    match &config.file.policy.max_age {
        None => Ok(DEFAULT_MAX_AGE),
        Some(text) => duration::parse(text.get_ref()).map_err(|problem| {
            let (line, column) = config.position(text.span().start);
            anyhow::anyhow!(
                "{}:{line}:{column}: max_age: {problem}",
                config.path.display()
            )
        }),
    }
}

/// The options for `binding`: its keywrap.toml table when the binding came from the file,
/// the `[policy]` defaults otherwise.
pub fn options_for(config: Option<&LoadedConfig>, binding: &Binding) -> Result<KeyOptions> {
    let max_age = default_max_age(config)?;
    let mut options = KeyOptions {
        max_age,
        previous: None,
    };
    let (Some(config), Origin::ConfigFile { .. }) = (config, &binding.origin) else {
        return Ok(options);
    };
    let Some(entry) = config.file.env.get(binding.name.as_str()) else {
        return Ok(options);
    };
    let Some(table) = entry.get_ref().table() else {
        return Ok(options);
    };
    let (line, _) = config.position(entry.span().start);
    let at = |key: &str, problem: String| {
        anyhow::anyhow!(
            "{}:{line}: {}.{key}: {problem}",
            config.path.display(),
            binding.name
        )
    };
    if let Some(text) = &table.max_age {
        options.max_age = duration::parse(text).map_err(|p| at("max_age", p))?;
    }
    let overlap = table
        .overlap
        .as_deref()
        .map(duration::parse)
        .transpose()
        .map_err(|p| at("overlap", p))?;
    match (&table.previous, overlap) {
        (Some(name), overlap) => {
            validate_env_name(name).map_err(|p| at("previous", p))?;
            if *name == binding.name {
                bail!(at(
                    "previous",
                    "must differ from the variable itself".into()
                ));
            }
            options.previous = Some((name.clone(), overlap.unwrap_or(DEFAULT_OVERLAP)));
        }
        (None, Some(_)) => bail!(at(
            "overlap",
            "has no effect without previous = \"NAME\" (the variable for the previous key)".into()
        )),
        (None, None) => {}
    }
    Ok(options)
}

/// Where a key stands against its maximum age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AgeState {
    #[serde(rename = "ok")]
    Ok,
    #[serde(rename = "rotate soon")]
    Soon,
    #[serde(rename = "overdue")]
    Overdue,
}

impl fmt::Display for AgeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AgeState::Ok => "ok",
            AgeState::Soon => "rotate soon",
            AgeState::Overdue => "overdue",
        })
    }
}

/// Overdue past `max_age`; "rotate soon" within [`SOON_WINDOW`] of it.
pub fn age_state(age: Duration, max_age: Duration) -> AgeState {
    if age > max_age {
        return AgeState::Overdue;
    }
    if age >= max_age.saturating_sub(SOON_WINDOW) {
        AgeState::Soon
    } else {
        AgeState::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const DAY: u64 = 86_400;

    fn days(n: u64) -> Duration {
        Duration::from_secs(n * DAY)
    }

    #[test]
    fn age_states_follow_the_limit() {
        assert_eq!(age_state(days(10), days(90)), AgeState::Ok);
        assert_eq!(age_state(days(75), days(90)), AgeState::Ok);
        assert_eq!(age_state(days(76), days(90)), AgeState::Soon);
        assert_eq!(age_state(days(90), days(90)), AgeState::Soon);
        assert_eq!(age_state(days(91), days(90)), AgeState::Overdue);
        // A limit shorter than the warning window is "rotate soon" from the start.
        assert_eq!(age_state(Duration::ZERO, days(10)), AgeState::Soon);
        assert_eq!(age_state(Duration::from_secs(10), days(1)), AgeState::Soon);
        assert_eq!(age_state(Duration::ZERO, days(15)), AgeState::Ok);
        assert_eq!(
            age_state(Duration::from_secs(2), Duration::from_secs(1)),
            AgeState::Overdue
        );
    }

    fn config(text: &str) -> LoadedConfig {
        LoadedConfig::parse(Path::new("keywrap.toml"), text.into()).unwrap()
    }

    fn options(text: &str) -> Result<KeyOptions> {
        let config = config(text);
        let bindings = crate::bindings::collect(Some(&config), &[]).unwrap();
        options_for(Some(&config), &bindings[0])
    }

    #[test]
    fn reads_table_options_and_policy_defaults() {
        let got = options(
            "[policy]\nmax_age = \"30d\"\n[env]\nK = { ref = \"secret/k#v\", previous = \"K_OLD\", overlap = \"2h\" }\n",
        )
        .unwrap();
        assert_eq!(got.max_age, days(30));
        assert_eq!(
            got.previous,
            Some(("K_OLD".into(), Duration::from_secs(7200)))
        );
        let got =
            options("[env]\nK = { ref = \"secret/k#v\", max_age = \"1s\", previous = \"P\" }\n")
                .unwrap();
        assert_eq!(got.max_age, Duration::from_secs(1));
        assert_eq!(got.previous, Some(("P".into(), DEFAULT_OVERLAP)));
        assert_eq!(
            options("[env]\nK = \"secret/k#v\"\n").unwrap().max_age,
            DEFAULT_MAX_AGE
        );
    }

    #[test]
    fn bad_options_name_the_line() {
        let err = options("[env]\nK = { ref = \"secret/k#v\", max_age = \"90\" }\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("keywrap.toml:2: K.max_age: invalid duration"),
            "{err}"
        );
        let err = options("[env]\nK = { ref = \"secret/k#v\", overlap = \"1d\" }\n").unwrap_err();
        assert!(err.to_string().contains("without previous"), "{err}");
        let err = options("[env]\nK = { ref = \"secret/k#v\", previous = \"1X\" }\n").unwrap_err();
        assert!(err.to_string().contains("K.previous"), "{err}");
        let err = options("[policy]\nmax_age = \"x\"\n[env]\nK = \"secret/k#v\"\n").unwrap_err();
        assert!(
            err.to_string().starts_with("keywrap.toml:2:11: max_age"),
            "{err}"
        );
    }
}
