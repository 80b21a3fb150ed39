//! The tokio runtime every async part of keywrap runs on, built here (not in `cmd`) so that
//! lower layers (auth's token revocation, `--watch`) can block on Vault calls too.

use anyhow::Result;

/// A single-threaded async runtime: keywrap's concurrency is I/O on a few connections,
/// and one thread keeps start-up fast and memory small.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
