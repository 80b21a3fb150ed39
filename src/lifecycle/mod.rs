//! The key lifecycle: how old a key may get ([`policy`]), replacing it without downtime
//! ([`rotation`]), and handing the previous key to programs while both are valid
//! ([`overlap`]). See docs/lifecycle.md.

pub mod hooks;
pub mod overlap;
pub mod policy;
pub mod rotation;
