//! What a person should look at. Three rules, all computed over the whole log (filters only
//! choose what is shown):
//!
//! - **denied**: Vault refused the read (`permission denied`, or `policy_results.allowed`
//!   false).
//! - **new host** / **new CI job**: a path that had been read before is read from a remote
//!   address, a host name (the `X-Keywrap-Host` header) or a CI job (the `X-Keywrap-CI`
//!   header without its per-run parts) that had never read it earlier in the log. The
//!   first read of a path sets its baseline and is not flagged. Addresses are what Vault saw;
//!   the headers are what the client claimed, and any token holder can send them, so a
//!   flag that rests only on a header is marked [`Flags::CLAIMED_HOST`] (shown as
//!   "unverified"). Names and addresses have baselines of their own: the first read of a
//!   path by keywrap (which names its host) sets the names' baseline, so a machine whose
//!   first reads came from another client (or from keywrap before `keywrap audit setup`) is
//!   not "new"; and a client that claims a known name from a new address is still flagged.
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
    /// With [`Flags::NEW_HOST`]: only the claimed host name is new, not the address.
    pub const CLAIMED_HOST: Flags = Flags(16);

    pub fn insert(&mut self, flag: Flags) {
        self.0 |= flag.0;
    }

    pub fn contains(self, flag: Flags) -> bool {
        self.0 & flag.0 == flag.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags that rest only on headers the client chose (`X-Keywrap-*`): a new host
    /// name from a known address, a new CI job.
    pub fn unverified(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.contains(Flags::NEW_HOST) && self.contains(Flags::CLAIMED_HOST) {
            names.push("new host");
        }
        if self.contains(Flags::NEW_CI_JOB) {
            names.push("new CI job");
        }
        names
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

/// Where a read came from: the remote address Vault saw, and the host name the client
/// claimed in `X-Keywrap-Host` (keywrap sends one; other clients do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub address: Option<Id>,
    pub name: Option<Id>,
}

/// Streaming state of the rules.
#[derive(Default)]
pub struct Detector {
    /// Paths read so far from a known address, and the addresses.
    address_paths: HashSet<Id>,
    addresses: HashSet<(Id, Id)>,
    /// Paths read so far by a client that named its host, and the names.
    named_paths: HashSet<Id>,
    names: HashSet<(Id, Id)>,
    ci_jobs: HashSet<(Id, Id)>,
    per_minute: HashMap<(Id, i64), u32>,
}

impl Detector {
    /// Flags a read as it streams past (all but bursts, which need the whole log).
    pub fn observe(
        &mut self,
        path: Id,
        origin: Origin,
        ci_job: Option<Id>,
        minute: Option<i64>,
        allowed: bool,
    ) -> Flags {
        let mut flags = Flags::default();
        if !allowed {
            flags.insert(Flags::DENIED);
        }
        let new_address = origin.address.is_some_and(|address| {
            let known_path = !self.address_paths.insert(path);
            self.addresses.insert((path, address)) && known_path
        });
        let named_before = self.named_paths.contains(&path);
        let new_name = origin.name.is_some_and(|name| {
            self.named_paths.insert(path);
            self.names.insert((path, name)) && named_before
        });
        if new_address {
            flags.insert(Flags::NEW_HOST);
        } else if new_name {
            flags.insert(Flags::NEW_HOST);
            flags.insert(Flags::CLAIMED_HOST);
        }
        if let Some(job) = ci_job {
            if self.ci_jobs.insert((path, job)) && named_before {
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

    fn named(address: Id, name: Id) -> Origin {
        Origin {
            address: Some(address),
            name: Some(name),
        }
    }

    fn client(address: Id) -> Origin {
        Origin {
            address: Some(address),
            name: None,
        }
    }

    #[test]
    fn first_reader_sets_the_baseline_then_newcomers_are_flagged() {
        let mut detector = Detector::default();
        assert!(detector
            .observe(1, named(100, 10), None, Some(0), true)
            .is_empty());
        assert!(detector
            .observe(1, named(100, 10), None, Some(0), true)
            .is_empty());
        // A new machine: a new address (and name), which Vault saw.
        let flags = detector.observe(1, named(101, 11), None, Some(0), true);
        assert_eq!(flags.names(), ["new host"]);
        assert!(flags.unverified().is_empty());
        // Another path has its own baseline.
        assert!(detector
            .observe(2, named(101, 11), Some(5), Some(0), true)
            .is_empty());
        let flags = detector.observe(1, named(101, 11), Some(6), Some(0), false);
        assert_eq!(flags.names(), ["denied", "new CI job"]);
        assert_eq!(flags.unverified(), ["new CI job"]);
    }

    #[test]
    fn a_claimed_name_is_unverified_and_a_new_address_is_flagged_whatever_the_name() {
        let mut detector = Detector::default();
        detector.observe(1, named(100, 10), None, None, true);
        // Same address, another claimed name: only the header says so.
        let flags = detector.observe(1, named(100, 11), None, None, true);
        assert_eq!(flags.names(), ["new host"]);
        assert_eq!(flags.unverified(), ["new host"]);
        // A known name from a new address: flagged, and not on the header's word.
        let flags = detector.observe(1, named(200, 10), None, None, true);
        assert_eq!(flags.names(), ["new host"]);
        assert!(flags.unverified().is_empty());
    }

    #[test]
    fn names_and_addresses_have_baselines_of_their_own() {
        let mut detector = Detector::default();
        // Another client reads first, then keywrap on the same machine, then a new machine.
        assert!(detector.observe(1, client(1), None, None, true).is_empty());
        assert!(detector
            .observe(1, named(1, 2), None, None, true)
            .is_empty());
        assert!(detector
            .observe(1, named(1, 2), None, None, true)
            .is_empty());
        assert_eq!(
            detector.observe(1, named(1, 3), None, None, true).names(),
            ["new host"]
        );
        assert_eq!(
            detector.observe(1, client(4), None, None, true).names(),
            ["new host"]
        );
    }

    #[test]
    fn bursts_are_well_above_the_median_minute() {
        let mut detector = Detector::default();
        for minute in 0..10 {
            for _ in 0..2 {
                detector.observe(1, named(1, 1), None, Some(minute), true);
            }
        }
        for _ in 0..25 {
            detector.observe(1, named(1, 1), None, Some(10), true);
        }
        // 19 reads is below the floor, however quiet the path usually is.
        for _ in 0..19 {
            detector.observe(1, named(1, 1), None, Some(11), true);
        }
        // Two quiet reads, then 30 in another minute: the quieter minute is the usual rate.
        for _ in 0..2 {
            detector.observe(3, named(1, 1), None, Some(0), true);
        }
        for _ in 0..30 {
            detector.observe(3, named(1, 1), None, Some(7), true);
        }
        // A path only ever read in one minute has no usual rate.
        for _ in 0..50 {
            detector.observe(2, named(1, 1), None, Some(3), true);
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
