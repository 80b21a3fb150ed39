//! What a person should look at. Three rules, all computed over the whole log (filters only
//! choose what is shown):
//!
//! - **denied**: Vault refused the read (`permission denied`, or `policy_results.allowed`
//!   false).
//! - **new host** / **new CI job**: a path that had been read before is read from a host
//!   (the `X-Keywrap-Host` header, else the remote address) or a CI job (the
//!   `X-Keywrap-CI` header without its per-run parts) that had never read it earlier in the
//!   log. The first read of a path sets its baseline and is not flagged. Host names and
//!   remote addresses are not compared with each other: the first read of a path by keywrap
//!   (which names its host) sets a baseline of its own, so a machine whose first reads came
//!   from another client (or from keywrap before `keywrap audit setup`) is not "new".
//! - **burst**: a minute in which a path is read at least [`BURST_MIN_READS`] times and at
//!   least [`BURST_FACTOR`] times its usual rate: the median of its reads per minute over
//!   the minutes in which it was read at all. A path read in one minute only has no usual
//!   rate and is never a burst.

use std::collections::{HashMap, HashSet};

/// A burst needs at least this many reads of a path in one minute...
pub const BURST_MIN_READS: u32 = 20;
/// ...and at least this many times the path's median reads per active minute.
pub const BURST_FACTOR: u32 = 5;

/// Flags on one read, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags(u8);

impl Flags {
    pub const DENIED: Flags = Flags(1);
    pub const NEW_HOST: Flags = Flags(2);
    pub const NEW_CI_JOB: Flags = Flags(4);
    pub const BURST: Flags = Flags(8);

    pub fn insert(&mut self, flag: Flags) {
        self.0 |= flag.0;
    }

    pub fn contains(self, flag: Flags) -> bool {
        self.0 & flag.0 == flag.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags' names, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Flags::DENIED, "denied"),
            (Flags::NEW_HOST, "new host"),
            (Flags::NEW_CI_JOB, "new CI job"),
            (Flags::BURST, "burst"),
        ]
        .into_iter()
        .filter(|(flag, _)| self.contains(*flag))
        .map(|(_, name)| name)
        .collect()
    }
}

/// The part of an `X-Keywrap-CI` value that names the job rather than one run of it:
/// `github-actions repo=acme/app workflow=ci job=build run=42` → `github-actions repo=acme/app
/// workflow=ci job=build`. Run, attempt, pipeline and build numbers, refs and actors go.
pub fn ci_job(header: &str) -> String {
    const JOB_KEYS: &[&str] = &["repo", "workflow", "job", "project", "job_name"];
    let mut parts = header.split(' ');
    let mut job = parts.next().unwrap_or_default().to_string();
    for part in parts {
        if let Some((key, value)) = part.split_once('=') {
            if JOB_KEYS.contains(&key) && !value.bytes().all(|b| b.is_ascii_digit()) {
                job.push(' ');
                job.push_str(part);
            }
        }
    }
    job
}

/// Interned ids of what the rules compare.
pub type Id = u32;

/// Where a read came from: the host keywrap named in its header, or, for other clients,
/// the remote address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host {
    Named(Id),
    Address(Id),
}

/// Streaming state of the rules.
#[derive(Default)]
pub struct Detector {
    /// Paths read so far, apart for reads with a named host and without.
    read_paths: HashSet<(Id, bool)>,
    hosts: HashSet<(Id, Host)>,
    ci_jobs: HashSet<(Id, Id)>,
    per_minute: HashMap<(Id, i64), u32>,
}

impl Detector {
    /// Flags a read as it streams past (all but bursts, which need the whole log).
    pub fn observe(
        &mut self,
        path: Id,
        host: Host,
        ci_job: Option<Id>,
        minute: Option<i64>,
        allowed: bool,
    ) -> Flags {
        let mut flags = Flags::default();
        if !allowed {
            flags.insert(Flags::DENIED);
        }
        let seen_path = !self
            .read_paths
            .insert((path, matches!(host, Host::Named(_))));
        if self.hosts.insert((path, host)) && seen_path {
            flags.insert(Flags::NEW_HOST);
        }
        if let Some(job) = ci_job {
            if self.ci_jobs.insert((path, job)) && seen_path {
                flags.insert(Flags::NEW_CI_JOB);
            }
        }
        if let Some(minute) = minute {
            *self.per_minute.entry((path, minute)).or_default() += 1;
        }
        flags
    }

    /// The (path, minute) pairs that are bursts.
    pub fn bursts(&self) -> HashSet<(Id, i64)> {
        let mut counts: HashMap<Id, Vec<u32>> = HashMap::new();
        for (&(path, _), &count) in &self.per_minute {
            counts.entry(path).or_default().push(count);
        }
        let usual: HashMap<Id, u32> = counts
            .into_iter()
            .filter(|(_, minutes)| minutes.len() > 1)
            .map(|(path, mut minutes)| {
                // The lower median: with two active minutes, the quieter one is the usual.
                minutes.sort_unstable();
                (path, minutes[(minutes.len() - 1) / 2])
            })
            .collect();
        self.per_minute
            .iter()
            .filter(|((path, _), &count)| {
                usual.get(path).is_some_and(|&median| {
                    count >= BURST_MIN_READS && count >= BURST_FACTOR.saturating_mul(median)
                })
            })
            .map(|(&key, _)| key)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reader_sets_the_baseline_then_newcomers_are_flagged() {
        let mut detector = Detector::default();
        assert!(detector
            .observe(1, Host::Named(10), None, Some(0), true)
            .is_empty());
        assert!(detector
            .observe(1, Host::Named(10), None, Some(0), true)
            .is_empty());
        assert_eq!(
            detector.observe(1, Host::Named(11), None, Some(0), true),
            Flags::NEW_HOST
        );
        // Another path has its own baseline.
        assert!(detector
            .observe(2, Host::Named(11), Some(5), Some(0), true)
            .is_empty());
        let flags = detector.observe(1, Host::Named(11), Some(6), Some(0), false);
        assert_eq!(flags.names(), ["denied", "new CI job"]);
    }

    #[test]
    fn names_and_addresses_have_baselines_of_their_own() {
        let mut detector = Detector::default();
        // Another client reads first, then keywrap on the same machine, then a new machine.
        assert!(detector
            .observe(1, Host::Address(1), None, None, true)
            .is_empty());
        assert!(detector
            .observe(1, Host::Named(2), None, None, true)
            .is_empty());
        assert!(detector
            .observe(1, Host::Named(2), None, None, true)
            .is_empty());
        assert_eq!(
            detector.observe(1, Host::Named(3), None, None, true),
            Flags::NEW_HOST
        );
        assert_eq!(
            detector.observe(1, Host::Address(4), None, None, true),
            Flags::NEW_HOST
        );
    }

    #[test]
    fn bursts_are_well_above_the_median_minute() {
        let mut detector = Detector::default();
        for minute in 0..10 {
            for _ in 0..2 {
                detector.observe(1, Host::Named(1), None, Some(minute), true);
            }
        }
        for _ in 0..25 {
            detector.observe(1, Host::Named(1), None, Some(10), true);
        }
        // 19 reads is below the floor, however quiet the path usually is.
        for _ in 0..19 {
            detector.observe(1, Host::Named(1), None, Some(11), true);
        }
        // Two quiet reads, then 30 in another minute: the quieter minute is the usual rate.
        for _ in 0..2 {
            detector.observe(3, Host::Named(1), None, Some(0), true);
        }
        for _ in 0..30 {
            detector.observe(3, Host::Named(1), None, Some(7), true);
        }
        // A path only ever read in one minute has no usual rate.
        for _ in 0..50 {
            detector.observe(2, Host::Named(1), None, Some(3), true);
        }
        assert_eq!(detector.bursts(), HashSet::from([(1, 10), (3, 7)]));
    }

    #[test]
    fn ci_jobs_drop_per_run_parts() {
        assert_eq!(
            ci_job("github-actions repo=acme/app workflow=ci job=build run=42 attempt=1 ref=refs/heads/main actor=ann"),
            "github-actions repo=acme/app workflow=ci job=build"
        );
        assert_eq!(
            ci_job("gitlab-ci project=acme/app pipeline=9 job=77 job_name=test ref=main"),
            "gitlab-ci project=acme/app job_name=test"
        );
        assert_eq!(ci_job("jenkins build=jenkins-app-12"), "jenkins");
    }
}
