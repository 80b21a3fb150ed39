//! Reliability at scale: failover in a real 3-node Raft cluster, load, rate limits. These
//! take tens of seconds, so they are #[ignore]d: `scripts/test` (and CI) runs them.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use support::cluster::Cluster;
use support::{Bao, Keywrap, ROOT_TOKEN};

#[test]
#[ignore = "slow: a 3-node cluster and 200 runs; run by scripts/test"]
fn failover_in_a_raft_cluster_loses_no_run() {
    let mut cluster = Cluster::start(3);
    let value = "fake-ha-value-9c41";
    store_openai_key(&cluster, value);
    // A long-established mount, as in production: its KV v2 upgrade has finished and
    // every node serves reads.
    cluster.wait_until_every_node_reads("secret/data/openai");
    let root_token = cluster.root_token.clone();
    let (median, longest) = runs_through_a_failover(
        &mut cluster,
        &[("VAULT_TOKEN", &root_token)],
        200,
        50,
        value,
    );
    eprintln!(
        "failover: 200 runs, active node killed before run 50; median {median:?}, longest {longest:?}, longest added wait {:?}",
        longest.saturating_sub(median)
    );
}

#[test]
#[ignore = "slow: a 3-node cluster; run by scripts/test"]
fn standby_nodes_first_in_the_list_serve_through_the_active_node() {
    let cluster = Cluster::start(3);
    let (role_id, secret_id) = approle_reading_openai(&cluster);
    let active = cluster.active().unwrap();
    let standbys: Vec<usize> = (0..3).filter(|i| *i != active).collect();
    // The role and secret ID replicate to the standbys, as they long have in production.
    for &node in &standbys {
        cluster.wait_until_node_answers(
            node,
            "auth/approle/login",
            json!({ "role_id": role_id, "secret_id": secret_id }),
        );
    }
    // A KV v2 mount written moments ago: a standby may not serve it yet.
    let value = "fake-standby-value-51d0";
    store_openai_key(&cluster, value);
    let addr = |i: &usize| cluster.nodes[*i].addr.clone();
    let standbys: Vec<String> = standbys.iter().map(addr).collect();
    // Standbys first, then the active node; and standbys alone: the login (a write) and the
    // token revocation must reach the active node through them.
    let lists = [
        format!("{},{}", standbys.join(","), cluster.nodes[active].addr),
        standbys.join(","),
    ];
    for addresses in lists {
        let run = Keywrap::new()
            .env("VAULT_ADDR", &addresses)
            .env("VAULT_ROLE_ID", &role_id)
            .env("VAULT_SECRET_ID", &secret_id)
            .args([
                "exec",
                "-s",
                "K=secret/openai#api_key",
                "--no-mask",
                "--",
                "sh",
                "-c",
                "printf %s \"$K\"",
            ])
            .run();
        run.assert_success();
        assert_eq!(run.stdout, value, "through {addresses}");
        assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    }
}

#[test]
#[ignore = "slow: 200 concurrent runs; run by scripts/test"]
fn two_hundred_concurrent_runs_read_each_path_exactly_once() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-load-a")]);
    bao.kv_put("secret/b", &[("k", "fake-load-b")]);
    bao.ok(
        "POST",
        "sys/config/auditing/request-headers/x-correlation-id",
        Some(json!({ "hmac": false })),
    );
    let mut processes = Vec::new();
    for _ in 0..200 {
        let mut keywrap = bao.keywrap();
        let command = keywrap
            .args([
                "exec",
                "-s",
                "A=secret/a#k",
                "-s",
                "B=secret/b#k",
                "--no-mask",
                "--",
                "sh",
                "-c",
                "printf '%s %s %s' \"$KEYWRAP_RUN\" \"$A\" \"$B\"",
            ])
            .command();
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        processes.push((command.spawn().unwrap(), keywrap));
    }
    let mut runs = Vec::new();
    for (process, _keywrap) in processes {
        let output = process.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let fields: Vec<&str> = stdout.split(' ').collect();
        assert_eq!(&fields[1..], ["fake-load-a", "fake-load-b"]);
        runs.push(fields[0].to_string());
    }
    for path in ["secret/data/a", "secret/data/b"] {
        let mut per_run: BTreeMap<String, usize> = BTreeMap::new();
        for entry in bao.audit_reads_of(path) {
            let id = entry["request"]["headers"]["x-correlation-id"][0]
                .as_str()
                .unwrap()
                .to_string();
            *per_run.entry(id).or_default() += 1;
        }
        assert_eq!(per_run.len(), 200, "{path}: every run read it");
        assert!(
            per_run.values().all(|n| *n == 1),
            "{path}: a run read it twice"
        );
        for run in &runs {
            assert_eq!(per_run.get(run), Some(&1), "{path}: run {run}");
        }
    }
}

#[test]
#[ignore = "slow: a burst against a rate-limit quota; run by scripts/test"]
fn a_rate_limited_burst_is_slowed_not_failed() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-rate")]);
    bao.ok(
        "POST",
        "sys/quotas/config",
        Some(json!({ "enable_rate_limit_response_headers": true })),
    );
    bao.ok(
        "POST",
        "sys/quotas/rate-limit/keywrap-burst",
        Some(json!({ "path": "secret/", "rate": 10, "interval": "1s" })),
    );
    let started = Instant::now();
    let mut processes = Vec::new();
    for _ in 0..40 {
        let mut keywrap = Keywrap::new();
        let command = keywrap
            .env("VAULT_ADDR", &bao.addr)
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .args([
                "-v",
                "exec",
                "-s",
                "A=secret/a#k",
                "--no-mask",
                "--",
                "sh",
                "-c",
                "printf %s \"$A\"",
            ])
            .command();
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        processes.push((command.spawn().unwrap(), keywrap));
    }
    let mut limited = 0;
    for (process, _keywrap) in processes {
        let output = process.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "fake-rate");
        if stderr.contains("429") {
            limited += 1;
        }
    }
    eprintln!(
        "rate limit: 40 runs in {:?}, {limited} of them waited for 429s",
        started.elapsed()
    );
    assert!(limited > 0, "the quota never slowed a run");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
#[ignore = "slow: a 3-node cluster; run by scripts/test"]
fn failover_during_approle_logins_loses_no_run() {
    let mut cluster = Cluster::start(3);
    let value = "fake-ha-login-value-77e2";
    store_openai_key(&cluster, value);
    cluster.wait_until_every_node_reads("secret/data/openai");
    let (role_id, secret_id) = approle_reading_openai(&cluster);
    let (median, longest) = runs_through_a_failover(
        &mut cluster,
        &[("VAULT_ROLE_ID", &role_id), ("VAULT_SECRET_ID", &secret_id)],
        40,
        10,
        value,
    );
    eprintln!(
        "failover with logins: 40 runs, active killed before run 10; median {median:?}, longest {longest:?}, longest added wait {:?}",
        longest.saturating_sub(median)
    );
}

/// Runs `keywrap exec` `runs` times against every node of `cluster` with `env` as its
/// credentials, killing the active node before run `kill_before`; every run must print
/// `value`. Returns the median and longest run time. A failed run prints the nodes' logs.
fn runs_through_a_failover(
    cluster: &mut Cluster,
    env: &[(&str, &str)],
    runs: usize,
    kill_before: usize,
    value: &str,
) -> (Duration, Duration) {
    let addresses = cluster.addresses();
    let active = cluster.active().unwrap();
    let mut durations = Vec::new();
    for run in 0..runs {
        if run == kill_before {
            cluster.kill(active);
        }
        let started = Instant::now();
        let mut keywrap = Keywrap::new();
        keywrap.env("VAULT_ADDR", &addresses);
        for (name, value) in env {
            keywrap.env(name, value);
        }
        let result = keywrap
            .args([
                "exec",
                "-s",
                "K=secret/openai#api_key",
                "--no-mask",
                "--",
                "sh",
                "-c",
                "printf %s \"$K\"",
            ])
            .run();
        durations.push(started.elapsed());
        if result.code() != Some(0) {
            for i in 0..3 {
                let log = std::fs::read_to_string(cluster.dir.path().join(format!("node{i}.log")))
                    .unwrap_or_default();
                eprintln!(
                    "node{i} log, last lines:\n{}",
                    log.lines().rev().take(15).collect::<Vec<_>>().join("\n")
                );
            }
        }
        assert_eq!(
            result.code(),
            Some(0),
            "run {run} failed: {}",
            result.stderr
        );
        assert_eq!(result.stdout, value, "run {run} got a wrong value");
    }
    durations.sort();
    (durations[runs / 2], durations[runs - 1])
}

/// Mounts KV v2 at `secret/` and stores `value` at `secret/openai#api_key`, retrying while
/// the new mount is not yet writable (bounded: 30 s).
fn store_openai_key(cluster: &Cluster, value: &str) {
    cluster.api(
        "POST",
        "sys/mounts/secret",
        Some(json!({ "type": "kv", "options": { "version": "2" } })),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster
        .api(
            "POST",
            "secret/data/openai",
            Some(json!({ "data": { "api_key": value } })),
        )
        .0
        != 200
    {
        assert!(Instant::now() < deadline, "the KV mount never took a write");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An AppRole role `ci` that may read only `secret/openai`: its role ID and a secret ID.
fn approle_reading_openai(cluster: &Cluster) -> (String, String) {
    cluster.api(
        "POST",
        "sys/auth/approle",
        Some(json!({ "type": "approle" })),
    );
    cluster.api(
        "POST",
        "sys/policies/acl/read-openai",
        Some(json!({ "policy": "path \"secret/data/openai\" { capabilities = [\"read\"] }" })),
    );
    cluster.api(
        "POST",
        "auth/approle/role/ci",
        Some(json!({ "token_policies": ["read-openai"] })),
    );
    let field = |path: &str, method: &str, name: &str| {
        cluster.api(method, path, None).1["data"][name]
            .as_str()
            .unwrap()
            .to_string()
    };
    (
        field("auth/approle/role/ci/role-id", "GET", "role_id"),
        field("auth/approle/role/ci/secret-id", "POST", "secret_id"),
    )
}
