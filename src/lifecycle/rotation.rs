//! Rotation as a sequence of writes that can stop anywhere without losing a key.
//!
//! 1. The new value is obtained (stdin or generator) before anything is written.
//! 2. A marker (`rotation_pending` = the version being replaced) goes into the secret's
//!    custom metadata.
//! 3. The new version is written with check-and-set on the version read, copying every
//!    other field of that version. Vault applies it atomically: it lands whole or not at all,
//!    and a concurrent rotation that read the same version fails here.
//! 4. The record (`rotated_at`, `rotated_by`, `previous_version`, `rotated_version`,
//!    `rotated_field`) replaces the marker.
//!
//! A marker with the current version still equal to it means step 3 never happened: the
//! old key is current and untouched. A marker with a newer current version means step 4
//! is missing; a rerun of `keywrap rotate` writes the record and nothing else.

use std::collections::BTreeMap;
use std::fmt;

use crate::timestamp::Timestamp;
use crate::vault::versions::Metadata;

pub const ROTATED_AT: &str = "rotated_at";
pub const ROTATED_BY: &str = "rotated_by";
pub const PREVIOUS_VERSION: &str = "previous_version";
pub const ROTATED_VERSION: &str = "rotated_version";
pub const ROTATED_FIELD: &str = "rotated_field";
pub const PENDING: &str = "rotation_pending";
pub const PENDING_SINCE: &str = "rotation_started_at";
pub const PENDING_BY: &str = "rotation_started_by";
pub const PENDING_FIELD: &str = "rotation_field";

/// Where a secret stands in its rotation, read from metadata alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationState {
    /// keywrap never rotated it.
    Never,
    /// Rotated; the previous version is still readable (the overlap has not been ended).
    Overlap { previous: u64, current: u64 },
    /// Rotated and `rotate --finish` removed the previous version.
    Finished { previous: u64, current: u64 },
    /// A rotation began but wrote no new version; the old one is current and untouched.
    NotWritten { from: u64, started_at: String },
    /// A rotation wrote version `written` but stopped before recording it.
    Unrecorded {
        from: u64,
        written: u64,
        field: String,
        by: String,
    },
    /// The current version was written after the last rotation, outside `keywrap rotate`.
    WrittenOutside { rotated: u64, current: u64 },
}

fn number(custom: &BTreeMap<String, String>, key: &str) -> Option<u64> {
    custom.get(key).and_then(|v| v.parse().ok())
}

impl RotationState {
    pub fn of(metadata: &Metadata) -> Self {
        let custom = &metadata.custom;
        let current = metadata.current_version;
        let recorded = number(custom, ROTATED_VERSION);
        if let Some(from) = number(custom, PENDING) {
            if current == from {
                return RotationState::NotWritten {
                    from,
                    started_at: custom.get(PENDING_SINCE).cloned().unwrap_or_default(),
                };
            }
            // A marker left by a rotation that lost the check-and-set race to the one
            // recorded here is stale, not an interruption.
            if recorded != Some(current) && current > from {
                return RotationState::Unrecorded {
                    from,
                    written: current,
                    field: custom.get(PENDING_FIELD).cloned().unwrap_or_default(),
                    by: custom.get(PENDING_BY).cloned().unwrap_or_default(),
                };
            }
        }
        let (Some(rotated), Some(previous)) = (recorded, number(custom, PREVIOUS_VERSION)) else {
            return RotationState::Never;
        };
        if rotated != current {
            return RotationState::WrittenOutside { rotated, current };
        }
        match metadata.versions.get(&previous) {
            Some(info) if info.readable() => RotationState::Overlap { previous, current },
            _ => RotationState::Finished { previous, current },
        }
    }

    /// True when `keywrap status` should point at a rerun.
    pub fn needs_attention(&self) -> bool {
        matches!(
            self,
            RotationState::NotWritten { .. } | RotationState::Unrecorded { .. }
        )
    }
}

impl fmt::Display for RotationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotationState::Never => f.write_str("-"),
            RotationState::Overlap { previous, .. } => {
                write!(f, "overlap: previous v{previous} readable until `rotate --finish`")
            }
            RotationState::Finished { previous, .. } => write!(f, "finished (v{previous} removed)"),
            RotationState::NotWritten { from, started_at } => write!(
                f,
                "interrupted: rotation started {started_at} wrote nothing, v{from} is still current; rerun `keywrap rotate`"
            ),
            RotationState::Unrecorded { from, written, .. } => write!(
                f,
                "interrupted: v{written} written (replacing v{from}) but not recorded; rerun `keywrap rotate` to complete"
            ),
            RotationState::WrittenOutside { rotated, current } => write!(
                f,
                "v{current} written outside keywrap after rotation to v{rotated}"
            ),
        }
    }
}

/// Who rotates: `user@host`, as the audit headers name them.
pub fn actor(identity: &crate::identity::RunIdentity) -> String {
    format!("{}@{}", identity.user, identity.host)
}

/// Step 2: `custom` plus the marker.
pub fn with_marker(
    custom: &BTreeMap<String, String>,
    from: u64,
    field: &str,
    by: &str,
    now: Timestamp,
) -> BTreeMap<String, String> {
    let mut next = custom.clone();
    next.insert(PENDING.into(), from.to_string());
    next.insert(PENDING_SINCE.into(), now.to_rfc3339());
    next.insert(PENDING_BY.into(), by.into());
    next.insert(PENDING_FIELD.into(), field.into());
    next
}

/// Step 4: `custom` without the marker, with the record of the rotation.
pub fn with_record(
    custom: &BTreeMap<String, String>,
    from: u64,
    written: u64,
    field: &str,
    by: &str,
    at: Timestamp,
) -> BTreeMap<String, String> {
    let mut next = without_marker(custom);
    next.insert(ROTATED_AT.into(), at.to_rfc3339());
    next.insert(ROTATED_BY.into(), by.into());
    next.insert(PREVIOUS_VERSION.into(), from.to_string());
    next.insert(ROTATED_VERSION.into(), written.to_string());
    next.insert(ROTATED_FIELD.into(), field.into());
    next
}

/// `custom` with the marker removed (a failed write puts the metadata back this way).
pub fn without_marker(custom: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut next = custom.clone();
    for key in [PENDING, PENDING_SINCE, PENDING_BY, PENDING_FIELD] {
        next.remove(key);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::versions::VersionInfo;

    fn metadata(current: u64, custom: &BTreeMap<String, String>, readable: &[u64]) -> Metadata {
        Metadata {
            current_version: current,
            versions: (1..=current)
                .map(|v| {
                    (
                        v,
                        VersionInfo {
                            created: None,
                            deleted: !readable.contains(&v),
                            destroyed: false,
                        },
                    )
                })
                .collect(),
            custom: custom.clone(),
        }
    }

    #[test]
    fn every_stop_between_writes_is_recognised() {
        let start = BTreeMap::from([("owner".to_string(), "team-a".to_string())]);
        let now = Timestamp(0);
        assert_eq!(
            RotationState::of(&metadata(3, &start, &[1, 2, 3])),
            RotationState::Never
        );

        let marked = with_marker(&start, 3, "api_key", "ann@box", now);
        assert!(matches!(
            RotationState::of(&metadata(3, &marked, &[1, 2, 3])),
            RotationState::NotWritten { from: 3, .. }
        ));
        assert_eq!(
            RotationState::of(&metadata(4, &marked, &[1, 2, 3, 4])),
            RotationState::Unrecorded {
                from: 3,
                written: 4,
                field: "api_key".into(),
                by: "ann@box".into()
            }
        );

        let recorded = with_record(&marked, 3, 4, "api_key", "ann@box", now);
        assert_eq!(recorded.get("owner").map(String::as_str), Some("team-a"));
        assert!(!recorded.contains_key(PENDING));
        assert_eq!(
            RotationState::of(&metadata(4, &recorded, &[1, 2, 3, 4])),
            RotationState::Overlap {
                previous: 3,
                current: 4
            }
        );
        assert_eq!(
            RotationState::of(&metadata(4, &recorded, &[4])),
            RotationState::Finished {
                previous: 3,
                current: 4
            }
        );
        assert_eq!(
            RotationState::of(&metadata(5, &recorded, &[3, 4, 5])),
            RotationState::WrittenOutside {
                rotated: 4,
                current: 5
            }
        );
    }

    #[test]
    fn a_marker_from_a_lost_race_is_stale() {
        let recorded = with_record(&BTreeMap::new(), 3, 4, "k", "a@x", Timestamp(0));
        let stale = with_marker(&recorded, 3, "k", "b@y", Timestamp(0));
        assert_eq!(
            RotationState::of(&metadata(4, &stale, &[3, 4])),
            RotationState::Overlap {
                previous: 3,
                current: 4
            }
        );
    }
}
