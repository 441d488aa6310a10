//! An open-model HTTP/1.1 load generator shared by the benches (the wrk2 approach).
//!
//! Request *i* is due at `start + i/rate`, and its latency is measured from that due time, so a
//! slow server cannot slow the generator down and hide its own queueing. `connections`
//! long-lived keep-alive connections take requests from one queue. There must be many: a
//! request holds its connection for its whole round trip, and by Little's law too few
//! connections would cap the offered load; a city's phones are millions of independent clients.
//! A request that waits for a free connection still counts its wait. reqwest cost ~400 µs of
//! CPU per request here, so the generator speaks HTTP/1.1 itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What one run of the generator saw.
#[derive(Debug, Default)]
pub struct LoadRun {
    pub offered: u64,
    /// Responses by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer, by kind (`connect`, `other`).
    pub transport_errors: BTreeMap<String, u64>,
    /// Latencies (µs from the due time) of the responses whose status the caller counts.
    pub latencies_us: Vec<u64>,
    /// What the caller kept from each counted response (e.g. a ticket id).
    pub kept: Vec<String>,
    /// The request index of each entry of `kept`.
    pub kept_index: Vec<u64>,
    /// Per request index: its HTTP status, or 0 when it got no answer.
    pub status_of: Vec<u16>,
    /// Per request index: when its answer (or failure) came, in ms since the start.
    pub finish_ms: Vec<u32>,
    /// Latencies (µs from the due time) of the 503 and 429 answers, sorted.
    pub shed_latencies_us: Vec<u64>,
    /// 503 and 429 answers that carried no `Retry-After`.
    pub shed_without_retry_after: u64,
    pub elapsed: Duration,
}

impl LoadRun {
    /// Responses with a status in `statuses`.
    pub fn count(&self, statuses: &[u16]) -> u64 {
        statuses
            .iter()
            .map(|s| self.by_status.get(s).copied().unwrap_or(0))
            .sum()
    }

    /// Counted responses per second of the run.
    pub fn rate(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p` quantile (0..=1) of the counted latencies, in milliseconds.
    pub fn ms(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p)
    }

    /// One line for the report.
    pub fn summary(&self) -> String {
        format!(
            "offered {} in {:.1} s; counted {} ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; statuses {:?}; no answer {:?}",
            self.offered,
            self.elapsed.as_secs_f64(),
            self.latencies_us.len(),
            self.rate(),
            self.ms(0.50),
            self.ms(0.99),
            self.ms(1.0),
            self.by_status,
            self.transport_errors
        )
    }
}

/// The `p` quantile of sorted microseconds, in milliseconds.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

/// `GET path` with these extra header lines (each ending in CRLF).
pub fn get(addr: SocketAddr, path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n").into_bytes()
}

/// `POST path` with a JSON body.
pub fn post_json(addr: SocketAddr, path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

struct Job {
    index: u64,
    due: tokio::time::Instant,
    request: Vec<u8>,
}

/// What came back for one request.
struct Outcome {
    index: u64,
    /// HTTP status, or 0 for no answer.
    status: u16,
    /// µs since the request was due.
    us: u64,
    /// ms since the run started.
    finished_ms: u32,
    retry_after: bool,
    /// The body, or the kind of transport error.
    body: Vec<u8>,
}

/// One answer: status, whether it carried `Retry-After`, body.
type Answer = (u16, bool, Vec<u8>);

async fn exchange(s: &mut tokio::net::TcpStream, request: &[u8]) -> std::io::Result<Answer> {
    s.write_all(request).await?;
    let mut buf = Vec::with_capacity(4096);
    // The head, then exactly Content-Length bytes of body.
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let retry_after = head.lines().any(|l| l.starts_with("retry-after:"));
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, retry_after, buf[head_end..head_end + len].to_vec()))
}

/// A connection to the first of `addrs` that accepts one, trying them in turn from `first`
/// (what a load balancer does with an upstream that refuses connections).
async fn connect(addrs: &[SocketAddr], first: usize) -> Option<tokio::net::TcpStream> {
    for k in 0..addrs.len() {
        if let Ok(s) = tokio::net::TcpStream::connect(addrs[(first + k) % addrs.len()]).await {
            let _ = s.set_nodelay(true);
            return Some(s);
        }
    }
    None
}

async fn connection_loop(
    addrs: Vec<SocketAddr>,
    first: usize,
    start: tokio::time::Instant,
    jobs: async_channel::Receiver<Job>,
    out: tokio::sync::mpsc::UnboundedSender<Outcome>,
) {
    let mut stream: Option<tokio::net::TcpStream> = None;
    while let Ok(job) = jobs.recv().await {
        let mut attempt = 0;
        let result = loop {
            if stream.is_none() {
                match connect(&addrs, first).await {
                    Some(s) => stream = Some(s),
                    None => break Err("connect"),
                }
            }
            let Some(s) = stream.as_mut() else {
                break Err("connect");
            };
            match exchange(s, &job.request).await {
                Ok(r) => break Ok(r),
                Err(_) => {
                    // The server closed a keep-alive connection: reconnect once and resend.
                    stream = None;
                    attempt += 1;
                    if attempt > 1 {
                        break Err("other");
                    }
                }
            }
        };
        let us = job.due.elapsed().as_micros() as u64;
        let finished_ms = start.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
        let (status, retry_after, body) = match result {
            Ok(answer) => answer,
            Err(kind) => (0, false, kind.as_bytes().to_vec()),
        };
        let _ = out.send(Outcome {
            index: job.index,
            status,
            us,
            finished_ms,
            retry_after,
            body,
        });
    }
}

/// Offers `total` requests at `rate` per second over `connections` connections; `make(i)` is
/// the i-th request's bytes. Responses whose status is in `counted` have their latency
/// recorded and are passed to `keep`.
pub async fn open_model(
    addr: SocketAddr,
    connections: usize,
    total: u64,
    rate: u64,
    make: impl FnMut(u64) -> Vec<u8>,
    counted: &[u16],
    keep: impl Fn(u16, &[u8]) -> Option<String>,
) -> LoadRun {
    open_model_on(&[addr], connections, total, rate, make, counted, keep).await
}

/// [`open_model`] against several servers: connection *k* goes to `addrs[k % n]`, and to the
/// next one that accepts when its own refuses (a load balancer's retry of a refused connect;
/// a request already sent to a server that dies gets no answer and is not resent).
pub async fn open_model_on(
    addrs: &[SocketAddr],
    connections: usize,
    total: u64,
    rate: u64,
    mut make: impl FnMut(u64) -> Vec<u8>,
    counted: &[u16],
    keep: impl Fn(u16, &[u8]) -> Option<String>,
) -> LoadRun {
    let (jobs_tx, jobs_rx) = async_channel::unbounded::<Job>();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
    let start = tokio::time::Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|k| {
            tokio::spawn(connection_loop(
                addrs.to_vec(),
                k % addrs.len().max(1),
                start,
                jobs_rx.clone(),
                tx.clone(),
            ))
        })
        .collect();
    drop(tx);
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let feeder = async {
        for i in 0..total {
            let due = start + interval.mul_f64(i as f64);
            // The timer ticks in milliseconds: sleep only when ahead, otherwise send at once,
            // so the offered rate holds above 1,000/s.
            if due > tokio::time::Instant::now() + Duration::from_millis(1) {
                tokio::time::sleep_until(due).await;
            }
            let _ = jobs_tx
                .send(Job {
                    index: i,
                    due,
                    request: make(i),
                })
                .await;
        }
        jobs_tx.close();
    };
    let mut run = LoadRun {
        offered: total,
        latencies_us: Vec::with_capacity(total as usize),
        status_of: vec![0; total as usize],
        finish_ms: vec![0; total as usize],
        ..LoadRun::default()
    };
    let collect = async {
        while let Some(o) = rx.recv().await {
            if let Some(slot) = run.finish_ms.get_mut(o.index as usize) {
                *slot = o.finished_ms;
            }
            if o.status == 0 {
                *run.transport_errors
                    .entry(String::from_utf8_lossy(&o.body).into_owned())
                    .or_insert(0) += 1;
                continue;
            }
            if let Some(slot) = run.status_of.get_mut(o.index as usize) {
                *slot = o.status;
            }
            *run.by_status.entry(o.status).or_insert(0) += 1;
            if o.status == 503 || o.status == 429 {
                run.shed_latencies_us.push(o.us);
                run.shed_without_retry_after += u64::from(!o.retry_after);
            }
            if counted.contains(&o.status) {
                run.latencies_us.push(o.us);
                if let Some(k) = keep(o.status, &o.body) {
                    run.kept.push(k);
                    run.kept_index.push(o.index);
                }
            }
        }
    };
    tokio::join!(feeder, collect);
    for w in workers {
        let _ = w.await;
    }
    run.elapsed = start.elapsed();
    run.latencies_us.sort_unstable();
    run.shed_latencies_us.sort_unstable();
    run
}
