//! Connection limits, so that idle or slow connections cannot take the proxy down: a total
//! cap and one per client address, a deadline for a new connection's first byte, the soft
//! file-descriptor limit raised to the hard one, and warnings about all that rate-limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// File descriptors kept for everything but client connections (upstream, Vault, logs).
const RESERVED_FDS: u64 = 128;
/// At most one warning of a kind per this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// The connection cap in force: the configured one, within the file descriptors there are.
pub fn effective_cap(configured: usize, fd_limit: Option<u64>) -> usize {
    match fd_limit {
        Some(limit) => configured.min(limit.saturating_sub(RESERVED_FDS).max(1) as usize),
        None => configured,
    }
}

/// Open connections, in all and by client address.
pub struct Connections {
    total_cap: usize,
    per_address_cap: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One open connection; closing it (dropping this) frees its place.
pub struct Slot {
    connections: Arc<Connections>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock().expect("connections lock");
        open.0 -= 1;
        if let Some(count) = open.1.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.1.remove(&self.address);
            }
        }
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Total,
    Address,
}

impl Connections {
    pub fn new(total_cap: usize, per_address_cap: usize) -> Arc<Self> {
        Arc::new(Connections {
            total_cap,
            per_address_cap,
            open: Mutex::default(),
        })
    }

    /// A place for a new connection from `address`, or why there is none.
    pub fn open(self: &Arc<Self>, address: IpAddr) -> Result<Slot, Full> {
        let mut open = self.open.lock().expect("connections lock");
        if open.0 >= self.total_cap {
            return Err(Full::Total);
        }
        let count = open.1.entry(address).or_default();
        if *count >= self.per_address_cap {
            return Err(Full::Address);
        }
        *count += 1;
        open.0 += 1;
        Ok(Slot {
            connections: self.clone(),
            address,
        })
    }
}

/// A warning given at most once per [`WARN_EVERY`], with the count of those left out.
#[derive(Default)]
pub struct Throttled {
    last: Mutex<Option<Instant>>,
    left_out: AtomicU64,
}

impl Throttled {
    pub fn warn(&self, message: std::fmt::Arguments) {
        let mut last = self.last.lock().expect("warning lock");
        if last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(Instant::now());
        let left_out = self.left_out.swap(0, Ordering::Relaxed);
        if left_out > 0 {
            crate::log::warn(format_args!(
                "{message} ({left_out} more since the last such warning)"
            ));
        } else {
            crate::log::warn(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_closing_frees_a_place() {
        let connections = Connections::new(3, 2);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = connections.open(a).unwrap();
        let _second = connections.open(a).unwrap();
        assert_eq!(connections.open(a).err(), Some(Full::Address));
        let _third = connections.open(b).unwrap();
        assert_eq!(connections.open(b).err(), Some(Full::Total));
        drop(first);
        assert!(connections.open(b).is_ok());
        assert_eq!(effective_cap(4096, Some(1024)), 896);
    }
}
