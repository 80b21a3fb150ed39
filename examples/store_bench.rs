//! bench/store.sh's measuring half: admit+settle through the Redis store against the
//! in-process limits (`proxy::admission::Admission`), in one run. Prints a markdown table.
//!
//! `store_bench REDIS_URL [SECONDS] [CONCURRENCY] [RATE]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keywrap::proxy::admission::Admission as Limits;
use keywrap::proxy::keys::KeyPolicy;
use keywrap::proxy::store::redis::RedisStore;
use keywrap::proxy::store::settings::StoreSettings;
use keywrap::proxy::store::Quota;

const CLIENTS: usize = 1000;

fn policy(i: usize) -> KeyPolicy {
    KeyPolicy {
        name: format!("client-{i}"),
        rpm: 1_000_000,
        tpm: 1_000_000_000,
        budget: u64::MAX / 4,
        ..Default::default()
    }
}

/// One admit and settle; its time in microseconds.
async fn once(store: Option<&RedisStore>, limits: &Limits, policy: &KeyPolicy) -> u64 {
    let start = Instant::now();
    match store {
        Some(store) => {
            let ticket = store
                .admit(&policy.name, Quota::of(policy, 1_000), 50)
                .await
                .expect("redis")
                .expect("admitted");
            ticket.settle(40).await.expect("settle");
        }
        None => {
            let ticket = limits.admit(policy, 50).expect("admitted");
            limits.settle(ticket, 40);
        }
    }
    start.elapsed().as_micros() as u64
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0
}

/// Closed loop: `concurrency` tasks as fast as they go for `seconds`.
async fn throughput(
    store: Option<RedisStore>,
    limits: Arc<Limits>,
    seconds: u64,
    concurrency: usize,
) -> (f64, Vec<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (store, limits, stop, done) =
            (store.clone(), limits.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                times.push(once(store.as_ref(), &limits, &policy(i % CLIENTS)).await);
                done.fetch_add(1, Ordering::Relaxed);
                i += concurrency;
                // The in-process store never awaits: yield, so the timer can stop the run.
                if store.is_none() && times.len() % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            times
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    all.sort_unstable();
    (rate, all)
}

/// Open loop at `rate` per second: the latency one request waits for admit+settle.
async fn paced(
    store: Option<RedisStore>,
    limits: Arc<Limits>,
    seconds: u64,
    rate: u64,
) -> Vec<u64> {
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for i in 0..(rate * seconds) as usize {
        interval.tick().await;
        let (store, limits) = (store.clone(), limits.clone());
        tasks.push(tokio::spawn(async move {
            once(store.as_ref(), &limits, &policy(i % CLIENTS)).await
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.push(task.await.unwrap());
    }
    all.sort_unstable();
    all
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .expect("usage: store_bench REDIS_URL [SECONDS] [CONCURRENCY] [RATE]");
    let seconds = args.get(2).map_or(5, |s| s.parse().unwrap());
    let concurrency = args.get(3).map_or(64, |s| s.parse().unwrap());
    let rate = args.get(4).map_or(1000, |s| s.parse().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let settings = StoreSettings::parse(url, None, None).unwrap();
        let store = RedisStore::connect(&settings, None, "bench/keys").await.unwrap();
        println!("| store | admit+settle/s ({concurrency} concurrent) | p50 ms | p99 ms | at {rate}/s: p50 ms | p99 ms |");
        println!("|---|---|---|---|---|---|");
        for (name, store) in [("in-process (Limits)", None), ("Redis (1 replica handle)", Some(store))] {
            let limits = Arc::new(Limits::default());
            let (per_second, closed) = throughput(store.clone(), limits.clone(), seconds, concurrency).await;
            let open = paced(store, limits, seconds, rate).await;
            println!(
                "| {name} | {per_second:.0} | {:.3} | {:.3} | {:.3} | {:.3} |",
                percentile(&closed, 0.5),
                percentile(&closed, 0.99),
                percentile(&open, 0.5),
                percentile(&open, 0.99)
            );
        }
    });
}
