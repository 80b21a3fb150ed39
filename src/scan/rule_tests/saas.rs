//! Tests for the rules in rules/saas.toml.

#[allow(unused_imports)]
use super::*;
