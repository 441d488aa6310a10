//! scripts/cluster.sh: a Redis Cluster (3 masters, 3 replicas) and a 3-node RabbitMQ cluster on
//! this machine, on free ports and a state directory of the test's own, brought up, checked
//! with the services' own tools, and torn down. serve/persist are not started here
//! (MASKDRAW_CLUSTER_APPS=0): the other tests cover them, and nginx's configuration is tested
//! in `deploy`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde_json::Value;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `n` ports from a random start in 20000..40000 that are free, and whose port + `bus` is free
/// too (a Redis Cluster node's bus listens at port + 10000).
pub fn free_ports(n: usize, bus: u16) -> Vec<u16> {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let mut port = 20_000 + (rand::random::<u16>() % 20_000);
    let mut out = Vec::new();
    while out.len() < n {
        if free(port) && (bus == 0 || free(port + bus)) {
            out.push(port);
        }
        port += 1;
        assert!(port < 45_000, "no free ports");
    }
    out
}

pub fn join(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The cluster of one test: `clean` (stop everything, remove the state) on drop, so a failing
/// assertion leaves nothing running.
pub struct Cluster {
    pub dir: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Cluster {
    /// The whole topology: also 2 serve and 2 persist (this build's binary, development mode)
    /// on a database of their own, `db_name`, behind nginx.
    pub fn with_apps(db_name: &str) -> Self {
        let mut c = Self::new();
        c.env.retain(|(k, _)| *k != "MASKDRAW_CLUSTER_APPS");
        // Each serve's operator listener is on 1<port>: four-digit ports whose 1<port> is free.
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        let mut serve = Vec::new();
        let mut port = 2_000 + rand::random::<u16>() % 3_000;
        while serve.len() < 2 {
            if free(port) && free(10_000 + port) {
                serve.push(port);
            }
            port += 1;
            assert!(port < 6_500, "no free four-digit ports");
        }
        c.env.extend([
            ("MASKDRAW_CLUSTER_APPS", "1".to_string()),
            ("MASKDRAW_BIN", env!("CARGO_BIN_EXE_maskdraw").to_string()),
            ("MASKDRAW_CLUSTER_DB_NAME", db_name.to_string()),
            ("MASKDRAW_CLUSTER_SERVE_PORTS", join(&serve)),
            ("MASKDRAW_CLUSTER_PERSIST_PORTS", join(&free_ports(2, 0))),
            ("MASKDRAW_ENVIRONMENT", "development".to_string()),
            // The test's load comes from one address (nginx passes it on): no per-client limit.
            ("MASKDRAW_IP_RATE_PER_SEC", "100000".to_string()),
        ]);
        c
    }

    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("maskdraw-cluster-{}", uuid::Uuid::new_v4()));
        let env = vec![
            ("MASKDRAW_CLUSTER_DIR", dir.to_string_lossy().into_owned()),
            ("MASKDRAW_CLUSTER_APPS", "0".into()),
            // The suite runs other heavy tests beside it: give each start-up step more time.
            ("MASKDRAW_WAIT_SECONDS", "240".into()),
            // Node names of its own: another test's cluster may be running on this host.
            (
                "MASKDRAW_CLUSTER_RABBIT_NAME",
                format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            ),
            ("MASKDRAW_CLUSTER_REDIS_PORTS", join(&free_ports(6, 10_000))),
            ("MASKDRAW_CLUSTER_RABBIT_PORTS", join(&free_ports(3, 0))),
            ("MASKDRAW_CLUSTER_RABBIT_DIST", join(&free_ports(3, 0))),
            (
                "MASKDRAW_CLUSTER_NGINX_PORT",
                free_ports(1, 0)[0].to_string(),
            ),
        ];
        Self { dir, env }
    }

    pub fn script(&self, args: &[&str]) -> Output {
        let out = Command::new("bash")
            .arg(repo().join("scripts/cluster.sh"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "cluster.sh {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn var(&self, name: &str) -> &str {
        &self.env.iter().find(|(k, _)| *k == name).unwrap().1
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/cluster.sh"))
            .arg("clean")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn redis_cli(port: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", port])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn cluster_sh_brings_up_a_redis_cluster_of_3_masters_and_3_replicas_and_a_3_node_rabbitmq_cluster_and_stops_them(
) {
    let started = Instant::now();
    let cluster = Cluster::new();
    let up = cluster.script(&["up"]);
    let printed = String::from_utf8_lossy(&up.stdout).into_owned();
    assert!(printed.contains("redis cluster:"), "{printed}");
    let up_secs = started.elapsed().as_secs_f64();

    // Redis: the cluster is whole, 3 masters each with one replica, and every node has AOF on.
    let redis_ports: Vec<&str> = cluster
        .var("MASKDRAW_CLUSTER_REDIS_PORTS")
        .split(' ')
        .collect();
    let info = redis_cli(redis_ports[0], &["cluster", "info"]);
    assert!(info.contains("cluster_state:ok"), "{info}");
    assert!(info.contains("cluster_known_nodes:6"), "{info}");
    let nodes = redis_cli(redis_ports[0], &["cluster", "nodes"]);
    let flags: Vec<&str> = nodes.lines().filter_map(|l| l.split(' ').nth(2)).collect();
    assert_eq!(
        flags.iter().filter(|f| f.contains("master")).count(),
        3,
        "{nodes}"
    );
    assert_eq!(
        flags.iter().filter(|f| f.contains("slave")).count(),
        3,
        "{nodes}"
    );
    for port in &redis_ports {
        assert!(
            redis_cli(port, &["info", "persistence"]).contains("aof_enabled:1"),
            "redis {port} without AOF"
        );
    }
    // A write through the cluster lands and reads back (redis-cli -c follows MOVED).
    assert_eq!(
        redis_cli(redis_ports[1], &["-c", "set", "md:{probe}:x", "1"]).trim(),
        "OK"
    );
    assert_eq!(
        redis_cli(redis_ports[2], &["-c", "get", "md:{probe}:x"]).trim(),
        "1"
    );

    // RabbitMQ: three running nodes in one cluster.
    let status = cluster.script(&["rabbitmqctl", "2", "cluster_status", "--formatter", "json"]);
    let text = String::from_utf8_lossy(&status.stdout);
    let json: Value = serde_json::from_str(
        text.lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON in {text}")),
    )
    .unwrap();
    let mut running: Vec<&str> = json["running_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    running.sort_unstable();
    let name = cluster.var("MASKDRAW_CLUSTER_RABBIT_NAME");
    let want: Vec<String> = (1..=3).map(|i| format!("{name}{i}@localhost")).collect();
    assert_eq!(running, want);

    // The apps' user reaches every node, and a queue declared with no type in the `maskdraw`
    // vhost is a quorum queue (deploy/rabbitmq/definitions.json).
    let password = std::fs::read_to_string(cluster.dir.join("rabbitmq/maskdraw.password")).unwrap();
    let amqp_ports: Vec<&str> = cluster
        .var("MASKDRAW_CLUSTER_RABBIT_PORTS")
        .split(' ')
        .collect();
    for (i, port) in amqp_ports.iter().enumerate() {
        let conn = maskdraw::queue::broker::connect(&format!(
            "amqp://maskdraw:{}@127.0.0.1:{port}/maskdraw",
            password.trim()
        ))
        .await
        .unwrap_or_else(|e| panic!("node {} on {port}: {e:?}", i + 1));
        if i == 0 {
            let ch = conn.create_channel().await.unwrap();
            ch.queue_declare(
                "probe",
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        let _ = conn.close(200, "probe").await;
    }
    let queues = cluster.script(&[
        "rabbitmqctl",
        "1",
        "list_queues",
        "-q",
        "-p",
        "maskdraw",
        "name",
        "type",
    ]);
    let queues = String::from_utf8_lossy(&queues.stdout);
    assert!(
        queues
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["probe", "quorum"]),
        "{queues}"
    );

    let status = cluster.script(&["status"]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.contains("rabbitmq cluster: 3 nodes running"),
        "{status}"
    );
    assert!(status.contains("nginx http://"), "{status}");
    eprintln!("cluster up in {up_secs:.1}s\n{status}");

    // Down stops exactly what up started.
    cluster.script(&["down"]);
    let status = cluster.script(&["status"]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(!status.contains(": running"), "{status}");
    assert!(
        status.contains("rabbitmq cluster: 0 nodes running"),
        "{status}"
    );
    eprintln!(
        "cluster test: {:.1}s in all",
        started.elapsed().as_secs_f64()
    );
}
