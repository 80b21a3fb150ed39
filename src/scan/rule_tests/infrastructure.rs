//! Tests for the rules in rules/infrastructure.toml.

#[allow(unused_imports)]
use super::*;
