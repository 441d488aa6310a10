//! deploy/: the operator's files checked by the tools that will read them (promtool, nginx,
//! systemd-analyze, redis-server) and against a running maskdraw. The tools come from Debian's
//! `prometheus`, `nginx`, `systemd` and `redis-server` packages (scripts/test.sh installs them).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use maskdraw::metrics::Metrics;
use maskdraw::startup;
use maskdraw::store::redis::RedisStore;
use serde::Deserialize;
use serde_json::Value;

use crate::helpers::{reservation, spawn_app_with, Options, TestApp};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A tool from PATH or /usr/sbin; the message names the Debian package that brings it.
fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found: apt-get install {package} (scripts/test.sh does)")
        })
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the command starts");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A directory of its own under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("maskdraw-{what}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process killed (and reaped) on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(port: u16, what: &str) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn the_prometheus_configuration_and_every_alert_rule_pass_promtool() {
    let promtool = tool("promtool", "prometheus");
    let dir = repo().join("deploy/prometheus");
    let out = run(Command::new(&promtool)
        .arg("check")
        .arg("config")
        .arg(dir.join("prometheus.yml")));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rules found"), "{text}");
    // Each alert fires and stays quiet where alerts_test.yml says.
    run(Command::new(&promtool)
        .current_dir(&dir)
        .arg("test")
        .arg("rules")
        .arg("alerts_test.yml"));
    // And no alert goes untested.
    let tests = std::fs::read_to_string(dir.join("alerts_test.yml")).unwrap();
    for rule in alert_rules() {
        let name = rule.alert.unwrap();
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "{name} has no test in alerts_test.yml"
        );
    }
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: Option<String>,
    expr: String,
}

fn alert_rules() -> Vec<Rule> {
    let text = std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).unwrap();
    let file: RuleFile = serde_saphyr::from_str(&text).expect("alerts.yml parses");
    file.groups.into_iter().flat_map(|g| g.rules).collect()
}

fn dashboard_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("deploy/grafana/maskdraw.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    exprs
}

/// The metric names a PromQL expression reads: identifiers outside string literals that start
/// with `maskdraw_`, and Prometheus's own `up`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_string = false;
    let mut word = String::new();
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            in_string = !in_string;
            word.clear();
            continue;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        if word.starts_with("maskdraw_") || (word == "up" && c == '{') {
            names.insert(std::mem::take(&mut word));
        }
        word.clear();
    }
    names
}

/// Every sample name in a Prometheus text exposition (histograms as `_bucket/_sum/_count`).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_query_is_exported_by_serve_or_persist() {
    // serve, and persist as `maskdraw persist --metrics-bind` runs it: its own metrics server.
    let app = spawn_app_with(
        Options {
            with_persister: false,
        },
        |_| {},
    )
    .await;
    let persist_metrics = Metrics::new();
    let port = free_port();
    let server = startup::metrics_server(&format!("127.0.0.1:{port}"), persist_metrics.clone())
        .expect("the persister's metrics server binds");
    let server_handle = server.handle();
    tokio::spawn(server);
    let redis =
        RedisStore::connect(&app.settings.redis_endpoint(), &app.settings.key_prefix).unwrap();
    let p = startup::persister(&app.settings, app.db.clone(), redis, persist_metrics);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let persister = startup::spawn_persister(&app.settings, p, rx);

    // One reservation all the way to PostgreSQL, so the labelled counters have a series.
    assert_eq!(app.reserve(&reservation()).await.status(), 202);
    app.wait_for_tickets("registered", 1, Duration::from_secs(30))
        .await;
    // shed_total{reason} appears with the first shed request: a second serve that sheds all.
    let shedding = spawn_app_with(Options::default(), |s| s.max_in_flight = 0).await;
    assert_eq!(shedding.reserve(&reservation()).await.status(), 503);

    let mut names = exported(&app.admin_get("/metrics").await.text().await.unwrap());
    names.extend(exported(
        &shedding.admin_get("/metrics").await.text().await.unwrap(),
    ));
    let persist_text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(persist_text.contains("maskdraw_tickets_persisted_total 1"));
    names.extend(exported(&persist_text));
    assert!(names.contains("maskdraw_publish_latency_seconds_bucket"));

    let dashboard = dashboard_exprs();
    assert!(
        dashboard.len() >= 10,
        "a dashboard of {} queries",
        dashboard.len()
    );
    let alerts: Vec<String> = alert_rules().into_iter().map(|r| r.expr).collect();
    for (source, expr) in dashboard
        .iter()
        .map(|e| ("dashboard", e))
        .chain(alerts.iter().map(|e| ("alerts.yml", e)))
    {
        let used = metric_names(expr);
        assert!(
            !used.is_empty(),
            "{source}: `{expr}` reads no maskdraw metric"
        );
        for name in used {
            assert!(
                name == "up" || names.contains(&name),
                "{source}: `{expr}` reads {name}, which no maskdraw process exports"
            );
        }
    }

    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), persister).await;
    server_handle.stop(true).await;
    shedding.teardown().await;
    app.teardown().await;
}

#[test]
fn the_promql_name_reader_sees_metrics_and_not_labels_or_strings() {
    let names = metric_names(
        r#"sum by (status) (rate(maskdraw_http_requests_total{status=~"maskdraw_x.."}[5m])) / up{job="a"}"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["maskdraw_http_requests_total", "up"]
    );
}

/// Writes the local nginx configuration (scripts/nginx-conf.sh) into `dir` for these upstreams.
fn nginx_conf(dir: &Path, listen: u16, upstreams: &[u16]) -> PathBuf {
    let ups: Vec<String> = upstreams.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let out = run(Command::new("bash")
        .arg(repo().join("scripts/nginx-conf.sh"))
        .arg("local")
        .arg(dir)
        .env("MASKDRAW_NGINX_LISTEN", format!("127.0.0.1:{listen}"))
        .env("MASKDRAW_NGINX_UPSTREAMS", ups.join(" ")));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn nginx_t(nginx: &Path, dir: &Path, conf: &Path) {
    let out = run(Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(conf));
    assert!(String::from_utf8_lossy(&out.stderr).contains("test is successful"));
}

#[tokio::test]
async fn nginx_with_the_deploy_configuration_balances_two_serves_and_keeps_metrics_inside() {
    let nginx = tool("nginx", "nginx");
    let one = spawn_app_with(Options::default(), |_| {}).await;
    let two = spawn_app_with(Options::default(), |_| {}).await;
    let port_of = |a: &TestApp| {
        a.address
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap()
    };
    let dir = TempDir::new("nginx");
    let listen = free_port();
    let conf = nginx_conf(&dir.0, listen, &[port_of(&one), port_of(&two)]);
    nginx_t(&nginx, &dir.0, &conf);

    // The site file alone, as Debian's nginx would include it, checks too.
    let site = run(Command::new("bash")
        .arg(repo().join("scripts/nginx-conf.sh"))
        .arg("site")
        .env("MASKDRAW_NGINX_LISTEN", format!("127.0.0.1:{listen}")));
    let site_dir = TempDir::new("nginx-site");
    let site_conf = nginx_conf(&site_dir.0, listen, &[1]);
    std::fs::write(site_dir.0.join("maskdraw-site.conf"), &site.stdout).unwrap();
    nginx_t(&nginx, &site_dir.0, &site_conf);

    // A single process in the foreground, so killing the child stops all of nginx.
    let _nginx = Guard(
        Command::new(&nginx)
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off; master_process off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts"),
    );
    wait_for_port(listen, "nginx").await;
    let front = format!("http://127.0.0.1:{listen}");
    let client = reqwest::Client::new();

    for _ in 0..4 {
        let resp = client
            .post(format!("{front}/api/v1/reservations"))
            .json(&reservation())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    // Round robin: both serves took reservations.
    for app in [&one, &two] {
        let text = app.admin_get("/metrics").await.text().await.unwrap();
        let n: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("maskdraw_reservations_accepted_total "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(n >= 1.0, "a serve behind nginx took no reservation");
    }

    // Static files keep the upstream's caching headers.
    let page = client
        .get(format!("{front}/static/index.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["cache-control"].to_str().unwrap(),
        "public, max-age=300"
    );
    assert!(page.headers().contains_key("etag"));
    assert_eq!(
        client
            .get(format!("{front}/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // No operator endpoint on the public side: no metrics, readiness without its details.
    assert_eq!(
        client
            .get(format!("{front}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let ready: Value = client
        .get(format!("{front}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready, serde_json::json!({"status": "ready"}));
    // Over 4 KiB: the API's own JSON 413; far over: nginx's.
    let mut big = reservation();
    big["name"] = Value::String("x".repeat(5_000));
    let resp = client
        .post(format!("{front}/api/v1/reservations"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "payload_too_large"
    );
    big["name"] = Value::String("x".repeat(64_000));
    let resp = client
        .post(format!("{front}/api/v1/reservations"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    two.teardown().await;
    one.teardown().await;
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify_and_score_ok_on_exposure() {
    let analyze = tool("systemd-analyze", "systemd");
    let dir = TempDir::new("units");
    let maskdraw = env!("CARGO_BIN_EXE_maskdraw");
    let seal_next = repo().join("deploy/bin/maskdraw-seal-next");
    // Instances of the templates, with the binaries where this build has them (verify checks
    // that each ExecStart is executable).
    let units = [
        ("maskdraw-serve@.service", "maskdraw-serve@8081.service"),
        ("maskdraw-persist@.service", "maskdraw-persist@9101.service"),
        ("maskdraw-seal.service", "maskdraw-seal.service"),
        ("maskdraw-seal.timer", "maskdraw-seal.timer"),
    ];
    let mut paths = Vec::new();
    for (src, dst) in units {
        let text = std::fs::read_to_string(repo().join("deploy/systemd").join(src)).unwrap();
        let text = text
            .replace(
                "/usr/local/bin/maskdraw-seal-next",
                &seal_next.to_string_lossy(),
            )
            .replace("/usr/local/bin/maskdraw ", &format!("{maskdraw} "));
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("ExecStart=/usr/local/bin/")),
            "{src}: an ExecStart left unmapped"
        );
        let path = dir.0.join(dst);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let out = run(Command::new(&analyze).arg("verify").args(&paths));
    // verify exits 0 on unknown keys and bad values, and only says so: any word is a failure.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.trim().is_empty(), "systemd-analyze verify:\n{said}");

    for path in paths.iter().filter(|p| p.extension().unwrap() == "service") {
        let out = run(Command::new(&analyze)
            .args(["security", "--offline=yes"])
            .arg(path));
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().last().unwrap_or_default().to_string();
        let score: f64 = last
            .split(": ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no exposure score in {last:?}"));
        assert!(score < 2.0, "{}: exposure {score}", path.display());
    }

    // The timer fires at the cutoff in the city's time zone.
    let timer = std::fs::read_to_string(repo().join("deploy/systemd/maskdraw-seal.timer")).unwrap();
    assert!(timer.contains("OnCalendar=*-*-* 22:00:00 Asia/Shanghai"));
    let out = run(Command::new(&analyze)
        .arg("calendar")
        .arg("*-*-* 22:00:00 Asia/Shanghai"));
    let next = String::from_utf8_lossy(&out.stdout);
    assert!(next.contains("14:00:00 UTC"), "{next}");
}

#[tokio::test]
async fn the_deploy_redis_conf_gives_a_redis_that_maskdraw_counts_as_persistent() {
    let dir = TempDir::new("redis-conf");
    let port = free_port();
    let _redis = Guard(
        Command::new("redis-server")
            .arg(repo().join("deploy/redis/redis.conf"))
            // Only where it listens and writes change; persistence is the file's.
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir.0)
            .args(["--daemonize", "no", "--logfile", ""])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts"),
    );
    wait_for_port(port, "redis-server").await;
    let store = RedisStore::connect(&format!("redis://127.0.0.1:{port}/0"), "t").unwrap();
    let start = Instant::now();
    let p = loop {
        match store.persistence().await {
            Ok(p) => break p,
            Err(e) => assert!(start.elapsed() < Duration::from_secs(20), "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(p.persists(), "{p:?}");
    let mut conn = store.connection().await.unwrap();
    let policy: Vec<String> = deadpool_redis::redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(policy, ["maxmemory-policy", "noeviction"]);
    let fsync: Vec<String> = deadpool_redis::redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendfsync")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(fsync, ["appendfsync", "everysec"]);
}

#[tokio::test]
async fn the_seal_timer_script_refuses_without_commitments_and_seals_tomorrow_once_the_backlog_is_empty(
) {
    let app = spawn_app_with(Options::default(), |_| {}).await;
    let dir = TempDir::new("seal-next");
    let bin = env!("CARGO_BIN_EXE_maskdraw");
    let tomorrow = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .succ_opt()
        .unwrap()
        .to_string();
    let maskdraw = |args: &[&str]| {
        let mut cmd = Command::new(bin);
        cmd.current_dir(&dir.0)
            .args(args)
            .env("MASKDRAW_DATABASE_URL", &app.settings.database_url)
            .env("MASKDRAW_STATIC_DIR", &app.settings.static_dir)
            .env("MASKDRAW_ENVIRONMENT", "development")
            .env("RUST_LOG", "warn");
        cmd
    };
    run(&mut maskdraw(&["keygen", "--out", "keys"]));
    std::fs::write(
        dir.0.join("stock.csv"),
        format!("{},KN95,10\n", crate::helpers::first_pharmacy()),
    )
    .unwrap();
    run(&mut maskdraw(&[
        "stock",
        "import",
        "stock.csv",
        "--date",
        &tomorrow,
    ]));

    let seal_next = || {
        let mut cmd = Command::new("bash");
        cmd.current_dir(&dir.0)
            .arg(repo().join("deploy/bin/maskdraw-seal-next"))
            .env("MASKDRAW_BIN", bin)
            .env("MASKDRAW_DATABASE_URL", &app.settings.database_url)
            .env("MASKDRAW_STATIC_DIR", &app.settings.static_dir)
            .env("MASKDRAW_ENVIRONMENT", "development")
            .env(
                "MASKDRAW_METRICS_URLS",
                format!("{}/metrics", app.admin_address),
            )
            .env("MASKDRAW_SEAL_DRAIN_SECS", "60")
            .env("RUST_LOG", "warn");
        cmd
    };
    let out = seal_next().output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("no commitments for {tomorrow}")),
        "{said}"
    );
    assert!(!dir.0.join("snapshots").join(&tomorrow).exists());

    std::fs::create_dir_all(dir.0.join("commits")).unwrap();
    std::fs::write(
        dir.0.join("commits").join(format!("{tomorrow}.txt")),
        format!(
            "# the parties' commitments for {tomorrow}\nnotary={}\nofficials={}\n",
            "1".repeat(64),
            "2".repeat(64)
        ),
    )
    .unwrap();
    // A serve that cannot be asked about its backlog: no seal, rather than one missing entrants.
    let out = seal_next()
        .env("MASKDRAW_METRICS_URLS", "http://127.0.0.1:1/metrics")
        .env("MASKDRAW_SEAL_DRAIN_SECS", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("did not drain"), "{said}");
    assert!(!dir.0.join("snapshots").join(&tomorrow).exists());

    let out = run(&mut seal_next());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("sealing {tomorrow}")));
    let sealed = dir.0.join("snapshots").join(&tomorrow);
    assert!(
        sealed.join("seal.txt").is_file(),
        "nothing in {}",
        sealed.display()
    );
    assert!(sealed.join("entrants.csv").is_file());
    app.teardown().await;
}
