//! A real 3-node OpenBao Raft cluster on loopback ports, for failover tests. Nodes are
//! initialised with one unseal key, joined and unsealed by the harness; stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{bao_binary, free_port};

pub struct Node {
    pub addr: String,
    pub process: Option<Child>,
    pub audit_log: PathBuf,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub root_token: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn call(
    addr: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let url = format!("{addr}/v1/{path}");
    let agent = agent();
    let response = match (method, body) {
        ("GET", _) => {
            let mut request = agent.get(&url);
            if let Some(token) = token {
                request = request.header("X-Vault-Token", token);
            }
            request.call()
        }
        (_, body) => {
            let mut request = agent.post(&url);
            if let Some(token) = token {
                request = request.header("X-Vault-Token", token);
            }
            request.send_json(body.unwrap_or(json!({})))
        }
    }
    .ok()?;
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap_or_default();
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cluster: timed out waiting for {what}");
}

impl Cluster {
    pub fn start(size: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let mut nodes = Vec::new();
        for (i, (api, cluster)) in ports.iter().enumerate() {
            let data = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&data).unwrap();
            // Audit devices must be configured identically on every node.
            let audit_log = dir.path().join("audit.log");
            let joins: String = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (p, _))| {
                    format!(
                        "  retry_join {{\n    leader_api_addr = \"http://127.0.0.1:{p}\"\n  }}\n"
                    )
                })
                .collect();
            let config = format!(
                "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"node{i}\"\n  performance_multiplier = 1\n{joins}}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
                 api_addr = \"http://127.0.0.1:{api}\"\ncluster_addr = \"https://127.0.0.1:{cluster}\"\ndisable_mlock = true\n\
                 audit \"file\" \"test\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                data.display(),
                audit_log.display()
            );
            let config_path = dir.path().join(format!("node{i}.hcl"));
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(dir.path().join(format!("node{i}.log"))).unwrap();
            let process = Command::new(bao_binary())
                .args(["server", &format!("-config={}", config_path.display())])
                .env("HOME", dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            nodes.push(Node {
                addr: format!("http://127.0.0.1:{api}"),
                process: Some(process),
                audit_log,
            });
        }
        let first = nodes[0].addr.clone();
        wait_for("the first node to listen", || {
            call(&first, None, "GET", "sys/health", None).is_some()
        });
        let (_, init) = call(
            &first,
            None,
            "POST",
            "sys/init",
            Some(json!({ "secret_shares": 1, "secret_threshold": 1 })),
        )
        .unwrap();
        let key = init["keys_base64"][0]
            .as_str()
            .unwrap_or_else(|| panic!("init: {init}"))
            .to_string();
        let root_token = init["root_token"].as_str().unwrap().to_string();
        let cluster = Cluster {
            nodes,
            root_token,
            dir,
        };
        cluster.unseal(0, &key);
        wait_for("a leader", || cluster.active().is_some());
        for i in 1..size {
            cluster.unseal(i, &key);
        }
        wait_for("every node to join", || {
            (1..size).all(|i| {
                matches!(
                    call(&cluster.nodes[i].addr, None, "GET", "sys/health", None),
                    Some((429, _))
                )
            })
        });
        // Joined nodes start as non-voters; autopilot promotes them once stable. Until
        // then losing the leader loses the cluster, so wait for a cluster that can elect.
        let (status, answer) = cluster.api(
            "POST",
            "sys/storage/raft/autopilot/configuration",
            Some(json!({ "server_stabilization_time": "1s" })),
        );
        assert!(status < 300, "autopilot: {answer}");
        wait_for("every node to become a voter", || {
            let (_, answer) = cluster.api("GET", "sys/storage/raft/configuration", None);
            let servers = answer["data"]["config"]["servers"].as_array().cloned();
            servers.is_some_and(|s| s.len() == size && s.iter().all(|n| n["voter"] == true))
        });
        cluster
    }

    fn unseal(&self, node: usize, key: &str) {
        let addr = &self.nodes[node].addr;
        wait_for(
            "a node to accept its unseal key",
            || matches!(call(addr, None, "POST", "sys/unseal", Some(json!({ "key": key }))), Some((200, answer)) if answer["sealed"] == false),
        );
    }

    /// The index of the active node, if there is one.
    pub fn active(&self) -> Option<usize> {
        self.nodes.iter().position(|node| {
            node.process.is_some()
                && matches!(
                    call(&node.addr, None, "GET", "sys/health", None),
                    Some((200, _))
                )
        })
    }

    /// Calls the API on the active node as root.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let active = self.active().expect("an active node");
        call(
            &self.nodes[active].addr,
            Some(&self.root_token),
            method,
            path,
            body,
        )
        .expect("the active node answers")
    }

    /// Waits until a read of `path` succeeds through every node.
    pub fn wait_until_every_node_reads(&self, path: &str) {
        for node in &self.nodes {
            wait_for("every node to serve reads", || {
                matches!(
                    call(&node.addr, Some(&self.root_token), "GET", path, None),
                    Some((200, _))
                )
            });
        }
    }

    /// Waits until `node` itself answers 200 to an unauthenticated POST (e.g. a login),
    /// which it does once it has what the active node wrote.
    pub fn wait_until_node_answers(&self, node: usize, path: &str, body: Value) {
        let addr = &self.nodes[node].addr;
        wait_for("a standby to catch up", || {
            matches!(
                call(addr, None, "POST", path, Some(body.clone())),
                Some((200, _))
            )
        });
    }

    /// Kills a node outright (as a crash would).
    pub fn kill(&mut self, node: usize) {
        if let Some(mut process) = self.nodes[node].process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Every node's address, comma-separated, as VAULT_ADDR takes it.
    pub fn addresses(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.addr.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}
