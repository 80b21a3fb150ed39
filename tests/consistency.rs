//! Reads are consistent: a rotation racing `exec` gives the child the old or the new secret,
//! never an empty value or fields from two versions.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{Bao, ROOT_TOKEN};

#[test]
fn a_rotation_racing_exec_gives_one_whole_version() {
    let bao = Bao::start();
    bao.kv_put("secret/pair", &[("id", "fake-0"), ("key", "fake-0")]);
    let stop = Arc::new(AtomicBool::new(false));
    let rotator = {
        let (addr, stop) = (bao.addr.clone(), stop.clone());
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            let mut written = 0;
            for version in 1..=400 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let value = format!("fake-{version}");
                agent
                    .post(format!("{addr}/v1/secret/data/pair"))
                    .header("X-Vault-Token", ROOT_TOKEN)
                    .send_json(json!({ "data": { "id": value, "key": value } }))
                    .unwrap();
                written = version;
            }
            written
        })
    };
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..25 {
        let run = bao
            .keywrap()
            .args([
                "exec",
                "-s",
                "ID=secret/pair#id",
                "-s",
                "KEY=secret/pair#key",
                "--no-mask",
                "--",
                "sh",
                "-c",
                "printf '%s %s' \"$ID\" \"$KEY\"",
            ])
            .run();
        run.assert_success();
        let (id, key) = run.stdout.split_once(' ').unwrap();
        assert!(
            id.starts_with("fake-"),
            "empty or wrong value: {:?}",
            run.stdout
        );
        assert_eq!(id, key, "fields from two versions");
        seen.insert(id.to_string());
    }
    stop.store(true, Ordering::SeqCst);
    let written = rotator.join().unwrap();
    assert!(written > 0, "the rotation never ran");
    assert!(seen.len() > 1, "no run raced a rotation: {seen:?}");
}
