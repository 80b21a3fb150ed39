//! The Redis admission store (`[proxy] store`) against a real redis-server: three store
//! handles stand for three proxy replicas sharing one Redis.

mod support;

use std::time::Duration;

use keywrap::proxy::store::redis::{RedisStore, Ticket, Unavailable};
use keywrap::proxy::store::settings::{FailureMode, StoreSettings};
use keywrap::proxy::store::{Limit, Quota, Refusal};
use support::redis::Redis;

async fn replica(redis: &Redis) -> RedisStore {
    replica_with_lease(redis, Duration::from_secs(30)).await
}

async fn replica_with_lease(redis: &Redis, lease: Duration) -> RedisStore {
    let settings = StoreSettings::parse(&redis.url, None, None).unwrap();
    RedisStore::connect_with_lease(&settings, None, "secret/keywrap/proxy-keys", lease)
        .await
        .unwrap()
}

async fn admit(store: &RedisStore, quota: Quota, estimate: u64) -> Result<Ticket, Refusal> {
    store.admit("alice", quota, estimate).await.unwrap()
}

fn quota(rpm: u64, tpm: u64, budget: u64, concurrency: u64) -> Quota {
    Quota {
        rpm,
        tpm,
        budget,
        concurrency,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_requests_per_minute_hold_across_three_replicas() {
    let redis = Redis::start();
    let replicas = [
        replica(&redis).await,
        replica(&redis).await,
        replica(&redis).await,
    ];
    let (mut admitted, mut refused) = (0, 0);
    for i in 0..90 {
        match admit(&replicas[i % 3], quota(60, 0, 0, 0), 0).await {
            Ok(ticket) => {
                admitted += 1;
                ticket.settle(0).await.unwrap();
            }
            Err(refusal) => {
                refused += 1;
                assert_eq!(refusal.limit, Limit::Requests);
                assert!(refusal.retry_after <= Duration::from_secs(60));
            }
        }
    }
    assert_eq!((admitted, refused), (60, 30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_holds_under_200_concurrent_admissions() {
    let redis = Redis::start();
    let replicas = [
        replica(&redis).await,
        replica(&redis).await,
        replica(&redis).await,
    ];
    let (budget, estimate) = (5_000, 100);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = replicas[i % 3].clone();
            tokio::spawn(async move {
                match store
                    .admit("alice", quota(0, 0, budget, 0), estimate)
                    .await
                    .unwrap()
                {
                    Ok(ticket) => {
                        tokio::task::yield_now().await;
                        ticket.settle(estimate).await.unwrap();
                        true
                    }
                    Err(refusal) => {
                        assert_eq!(refusal.limit, Limit::Budget);
                        false
                    }
                }
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += u64::from(task.await.unwrap());
    }
    let spent = replicas[0].spent("alice").await.unwrap();
    assert!(spent <= budget + estimate, "spent {spent} of {budget}");
    assert_eq!(spent, admitted * estimate);
    assert!(
        admitted >= budget / estimate - 1,
        "only {admitted} admitted"
    );
    let refusal = admit(&replicas[1], quota(0, 0, budget, 0), 1)
        .await
        .unwrap_err();
    assert_eq!(refusal.limit, Limit::Budget);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_count_against_tokens_per_minute_and_settle_releases_them() {
    let redis = Redis::start();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let q = quota(0, 1_000, 0, 0);
    let first = admit(&a, q, 600).await.unwrap();
    assert_eq!(admit(&b, q, 600).await.unwrap_err().limit, Limit::Tokens);
    assert_eq!(first.settle(300).await.unwrap(), 300);
    let second = admit(&b, q, 600).await.unwrap();
    assert_eq!(second.settle(700).await.unwrap(), 1_000);
    let refusal = admit(&a, q, 0).await.unwrap_err();
    assert_eq!(refusal.limit, Limit::Tokens);
    assert!(refusal.retry_after <= Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_capped_across_replicas() {
    let redis = Redis::start();
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let q = quota(0, 0, 0, 2);
    let one = admit(&a, q, 0).await.unwrap();
    let _two = admit(&b, q, 0).await.unwrap();
    assert_eq!(admit(&a, q, 0).await.unwrap_err().limit, Limit::Concurrency);
    one.settle(0).await.unwrap();
    admit(&b, q, 0).await.unwrap().settle(0).await.unwrap();
}

/// Sweeps run inside the scripts: an admission with no limit that counts (concurrency
/// high) makes one run.
async fn spent_after_sweep(store: &RedisStore) -> u64 {
    admit(store, quota(0, 0, 0, 1_000), 0)
        .await
        .unwrap()
        .settle(0)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_whose_holder_dies_is_charged_its_estimate() {
    let redis = Redis::start();
    let dying = replica_with_lease(&redis, Duration::from_millis(300)).await;
    let survivor = replica(&redis).await;
    // The replica dies mid-request: nothing settles and nothing drops the ticket.
    std::mem::forget(admit(&dying, quota(0, 0, 10_000, 0), 500).await.unwrap());
    dying.abandon_leases();
    let mut spent = spent_after_sweep(&survivor).await;
    assert_eq!(spent, 0, "the lease has not run out yet");
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        spent = spent_after_sweep(&survivor).await;
        if spent > 0 {
            break;
        }
    }
    assert_eq!(spent, 500);
    // A ticket dropped unsettled (a handler that went away) is charged its estimate too.
    drop(admit(&survivor, quota(0, 0, 10_000, 0), 40).await.unwrap());
    for _ in 0..50 {
        if survivor.spent("alice").await.unwrap() == 540 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the dropped ticket was not charged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_paths_and_clients_are_kept_apart() {
    let redis = Redis::start();
    let settings = StoreSettings::parse(&redis.url, None, None).unwrap();
    let other = RedisStore::connect(&settings, None, "secret/other-team/keys")
        .await
        .unwrap();
    let store = replica(&redis).await;
    admit(&store, quota(1, 0, 0, 0), 0)
        .await
        .unwrap()
        .settle(9)
        .await
        .unwrap();
    assert!(admit(&store, quota(1, 0, 0, 0), 0).await.is_err());
    other
        .admit("alice", quota(1, 0, 0, 0), 0)
        .await
        .unwrap()
        .unwrap();
    store
        .admit("bob", quota(1, 0, 0, 0), 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.spent("alice").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_survives_a_redis_restart_and_an_outage_fails_closed() {
    let mut redis = Redis::start_persistent();
    let store = replica(&redis).await;
    assert_eq!(store.failure_mode(), FailureMode::FailClosed);
    let q = quota(0, 0, 1_000, 0);
    admit(&store, q, 100)
        .await
        .unwrap()
        .settle(700)
        .await
        .unwrap();
    redis.stop();
    let err: Unavailable = store.admit("alice", q, 100).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("limits store") && message.contains(&redis.port.to_string()),
        "{message}"
    );
    assert!(store.errors() >= 1);
    redis.restart();
    // The connection comes back by itself; the scripts are gone (NOSCRIPT) and are sent again.
    let mut outcome = None;
    for _ in 0..100 {
        if let Ok(admitted) = store.admit("alice", q, 100).await {
            outcome = Some(admitted);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ticket = outcome.expect("the store did not reconnect").unwrap();
    assert_eq!(ticket.settle(0).await.unwrap(), 700);
    assert_eq!(
        admit(&store, q, 301).await.unwrap_err().limit,
        Limit::Budget
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_fires_once_across_replicas() {
    use keywrap::alerts::{Alert, Alerter, Format, RedisDedup, Sender};
    let redis = Redis::start();
    let receiver = support::stub::Stub::start(|_| (200, "ok".into()));
    let alert = Alert {
        rule: "budget".into(),
        subject: "alice".into(),
        threshold: "80%".into(),
        period: "total".into(),
        message: "alice spent 80% of its budget".into(),
    };
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let alerter = Alerter {
            sender: Sender::new(&receiver.url, Format::Json).unwrap(),
            dedup: RedisDedup::new(replica(&redis).await),
        };
        let alert = alert.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0;
            for _ in 0..5 {
                sent += u32::from(
                    alerter
                        .fire(&alert, Duration::from_secs(3600))
                        .await
                        .unwrap(),
                );
            }
            sent
        }));
    }
    let mut sent = 0;
    for task in tasks {
        sent += task.await.unwrap();
    }
    assert_eq!(sent, 1);
    let requests = receiver.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        (body["rule"].as_str(), body["threshold"].as_str()),
        (Some("budget"), Some("80%"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_ticket_keeps_its_lease_past_the_lease_length() {
    let redis = Redis::start();
    let streaming = replica_with_lease(&redis, Duration::from_millis(300)).await;
    let survivor = replica(&redis).await;
    let ticket = admit(&streaming, quota(0, 0, 10_000, 0), 500)
        .await
        .unwrap();
    // Four lease lengths: the store renews it every 100 ms meanwhile.
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            spent_after_sweep(&survivor).await,
            0,
            "a live lease was swept"
        );
    }
    assert_eq!(ticket.settle(7).await.unwrap(), 7);
}
