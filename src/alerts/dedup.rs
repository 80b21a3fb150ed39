//! Whether an alert already fired in its period. In process for one proxy or one
//! `audit report`; in Redis (`SET NX` with an expiry of the period) so replicas that share
//! a store send each alert once between them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_trait::async_trait;

use crate::proxy::store::redis::RedisStore;

#[async_trait]
pub trait Dedup: Send + Sync {
    /// True the first time `key` is seen within `period`, false after.
    async fn first(&self, key: &str, period: Duration) -> Result<bool>;
}

#[derive(Default)]
pub struct MemoryDedup {
    seen: Mutex<HashMap<String, Instant>>,
}

#[async_trait]
impl Dedup for MemoryDedup {
    async fn first(&self, key: &str, period: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut seen = self.seen.lock().expect("dedup lock");
        seen.retain(|_, until| *until > now);
        if seen.contains_key(key) {
            return Ok(false);
        }
        seen.insert(key.to_string(), now + period);
        Ok(true)
    }
}

/// Deduplicates through the limits store's Redis.
pub struct RedisDedup {
    store: RedisStore,
}

impl RedisDedup {
    pub fn new(store: RedisStore) -> Self {
        RedisDedup { store }
    }
}

#[async_trait]
impl Dedup for RedisDedup {
    async fn first(&self, key: &str, period: Duration) -> Result<bool> {
        let mut connection = self.store.connection();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.store.alert_key(key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(period.as_millis().max(1) as u64)
            .query_async(&mut connection)
            .await
            .context("cannot reach the limits store to deduplicate an alert")?;
        Ok(set.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_dedup_fires_once_per_period() {
        let dedup = MemoryDedup::default();
        assert!(dedup.first("a", Duration::from_secs(60)).await.unwrap());
        assert!(!dedup.first("a", Duration::from_secs(60)).await.unwrap());
        assert!(dedup.first("b", Duration::from_secs(60)).await.unwrap());
        assert!(dedup.first("c", Duration::ZERO).await.unwrap());
        assert!(dedup.first("c", Duration::ZERO).await.unwrap());
    }
}
