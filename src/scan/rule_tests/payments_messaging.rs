//! Tests for the rules in rules/payments-messaging.toml.

#[allow(unused_imports)]
use super::*;
