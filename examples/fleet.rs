//! Many crawler processes, one polite budget per host: the fleet scenario.
//!
//! ```text
//! cargo run --release --example fleet --features redis
//! cargo run --release --example fleet --features redis -- --processes 4 --seconds 25
//! cargo run --release --example fleet --features redis -- --limiter gcra:200:10:none --variant redis
//! ```
//!
//! It starts a limited server on 127.0.0.1 (`testkit`: nginx-like GCRA at
//! 500/s with a burst of 50 and `Retry-After: 1`, then a sliding one-second
//! window of 500 that counts refusals) and a `redis-server` of its own (the
//! Debian package: `apt-get install -y redis-server`) on a free port and a
//! temporary directory. For each model it runs `--processes` copies of
//! itself as workers, each a separate process with its own runtime and its
//! own layer (the default adaptive limiter, `RetryThrottled` on top), all
//! crawling the one host with 32 requests at a time:
//!
//! - `local`: no Redis, each process learns the host alone;
//! - `redis`: the layers share the host through a `Fleet`;
//! - `redis, outage`: the same, with Redis killed at second 10 and started
//!   again (empty) at second 20.
//!
//! What the host accepted and refused is counted at the server from second
//! 5 to the end, and printed as a table with the Redis commands per request
//! the workers report. `--limiter KIND:RATE:BURST:RETRY_AFTER` runs other
//! limiters instead (`crawl`'s kinds; `RETRY_AFTER` is `none`, `exact` or
//! whole seconds).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use testkit::{Server, Spec};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_snapshotter::fleet::{Fleet, FleetConfig};
use tower_snapshotter::{Config, RetryThrottled, SnapshotLayer, Snapshotter};

#[path = "../tests/common/redis.rs"]
#[allow(unreachable_pub)]
mod redis_server;

/// The fleet scenario: several crawler processes against one limited host,
/// with and without Redis.
#[derive(Parser, Debug)]
struct Args {
    /// Crawler processes
    #[arg(long, default_value_t = 4)]
    processes: u32,
    /// Length of each run, seconds (counted from second 5)
    #[arg(long, default_value_t = 25)]
    seconds: u64,
    /// Requests each process offers at once
    #[arg(long, default_value_t = 32)]
    concurrency: u32,
    /// Only the models whose name contains this (e.g. `gcra`)
    #[arg(long, value_name = "TEXT")]
    models: Option<String>,
    /// Only this variant: local, redis or outage
    #[arg(long, value_name = "V")]
    variant: Option<String>,
    /// Run this limiter instead of the two default ones (repeatable):
    /// `KIND:RATE:BURST:RETRY_AFTER`, as the `crawl` example's flags
    /// (e.g. `gcra:200:10:2`, `sliding:300:0:none`)
    #[arg(long, value_name = "SPEC")]
    limiter: Vec<String>,
    /// Internal: run as one worker crawling BASE
    #[arg(long, value_name = "BASE", hide = true)]
    worker: Option<String>,
    /// Internal: the worker's Redis URL
    #[arg(long, value_name = "URL", hide = true)]
    redis: Option<String>,
}

/// What a worker prints when it ends.
#[derive(Debug, Default)]
struct WorkerReport {
    requests: u64,
    commands: u64,
    local_ms: u64,
    /// Fleet cycles merged again with records that came late.
    remerged: u64,
}

impl WorkerReport {
    fn to_json(&self) -> String {
        serde_json::json!({"requests": self.requests, "commands": self.commands, "local_ms": self.local_ms, "remerged": self.remerged})
            .to_string()
    }

    fn from_json(line: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        Some(Self {
            requests: v["requests"].as_u64()?,
            commands: v["commands"].as_u64()?,
            local_ms: v["local_ms"].as_u64()?,
            remerged: v["remerged"].as_u64().unwrap_or(0),
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    match args.worker.clone() {
        Some(base) => runtime.block_on(worker(args, base)),
        None => runtime.block_on(coordinator(args)),
    }
}

/// One crawler process: the layer (shared through Redis when given) in
/// front of a hyper client, retrying throttled URLs after the host's pause.
async fn worker(args: Args, base: String) -> Result<(), Box<dyn std::error::Error>> {
    // Not started: the scenario is about the host's limit, and four
    // crawlers on two cores would close the machine's CPU gate.
    let snapshotter = Snapshotter::new(Config::default());
    let mut builder = SnapshotLayer::builder(snapshotter);
    if let Some(url) = &args.redis {
        let config = FleetConfig::builder(url.clone(), "fleet-example").build()?;
        builder = builder.fleet(Fleet::start(config)?);
    }
    let layer = builder.build()?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let service = ServiceBuilder::new()
        .retry(RetryThrottled::new(10_000))
        .layer(layer.clone())
        .service(client);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
    let requests = Arc::new(AtomicU64::new(0));
    if std::env::var_os("FLEET_TRACE").is_some() {
        let (layer, requests) = (layer.clone(), Arc::clone(&requests));
        tokio::spawn(async move {
            let pid = std::process::id();
            let (mut sent, mut wasted) = (0, 0);
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let stats = layer.stats();
                let host = stats.adaptive_hosts.first();
                let fleet = stats.fleet.as_ref();
                let now_sent = requests.load(Ordering::Relaxed);
                let now_wasted = fleet.map_or(0, |f| f.wasted);
                eprintln!(
                    "{pid}: rate {:?} estimate {:?} in flight {:?}/{:?} lease {:?} sent {} wasted {}",
                    host.and_then(|h| h.rate.map(|r| r.round())),
                    host.and_then(|h| h.estimate.map(|r| r.round())),
                    host.map(|h| h.in_flight),
                    host.map(|h| h.concurrency),
                    fleet.map(|f| f.lease_rate.round()),
                    now_sent - sent,
                    now_wasted - wasted,
                );
                (sent, wasted) = (now_sent, now_wasted);
            }
        });
    }
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..args.concurrency {
        let (service, base, requests) = (service.clone(), base.clone(), Arc::clone(&requests));
        tasks.spawn(async move {
            let mut i = 0u64;
            while tokio::time::Instant::now() < deadline {
                let uri = format!("{base}/{t}/{i}");
                i += 1;
                let Ok(request) = http::Request::get(uri).body(Empty::<Bytes>::new()) else {
                    continue;
                };
                let mut svc = service.clone();
                let sent = tokio::time::timeout_at(deadline, async {
                    let ready = svc.ready().await?;
                    ready.call(request).await
                })
                .await;
                if matches!(sent, Ok(Ok(_))) {
                    requests.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    tasks.join_all().await;
    let fleet = layer.stats().fleet;
    let report = WorkerReport {
        requests: requests.load(Ordering::Relaxed),
        commands: fleet.as_ref().map_or(0, |f| f.commands),
        local_ms: fleet.as_ref().map_or(0, |f| f.local_total.as_millis() as u64),
        remerged: fleet.as_ref().map_or(0, |f| f.cycles_remerged),
    };
    println!("{}", report.to_json());
    Ok(())
}

/// One row of the table.
struct Row {
    model: String,
    variant: &'static str,
    /// The limiter's rate, requests per second (none for a concurrency
    /// limit).
    allowed: Option<f64>,
    goodput: f64,
    refused: f64,
    commands_per_request: Option<f64>,
    local_s: f64,
}

async fn coordinator(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let me = std::env::current_exe()?;
    let mut rows = Vec::new();
    let specs = if args.limiter.is_empty() {
        vec![
            Spec::parse("gcra", 500.0, 50, "1")?,
            Spec::parse("sliding", 500.0, 0, "none")?,
        ]
    } else {
        args.limiter
            .iter()
            .map(|s| parse_limiter(s))
            .collect::<Result<_, _>>()?
    };
    for spec in specs {
        if args
            .models
            .as_ref()
            .is_some_and(|m| !spec.to_string().contains(m.as_str()))
        {
            continue;
        }
        for variant in ["local", "redis", "redis, outage"] {
            if args
                .variant
                .as_ref()
                .is_some_and(|v| !variant.ends_with(v.as_str()) && variant != v)
            {
                continue;
            }
            let mut redis = if variant == "local" {
                None
            } else {
                Some(
                    redis_server::RedisServer::start()
                        .ok_or("redis-server is not installed: apt-get install -y redis-server")?,
                )
            };
            let server = Server::start(spec.build(tokio::time::Instant::now()), Duration::ZERO).await?;
            eprintln!(
                "{spec} × {variant}: {} processes for {} s",
                args.processes, args.seconds
            );
            let mut children = Vec::new();
            for _ in 0..args.processes {
                let mut cmd = Command::new(&me);
                cmd.arg("--worker")
                    .arg(server.base_url())
                    .arg("--seconds")
                    .arg(args.seconds.to_string())
                    .arg("--concurrency")
                    .arg(args.concurrency.to_string())
                    .stdout(Stdio::piped());
                if let Some(r) = &redis {
                    cmd.arg("--redis").arg(r.url());
                }
                children.push(cmd.spawn()?);
            }
            if variant == "redis, outage" {
                tokio::time::sleep(Duration::from_secs(10)).await;
                if let Some(r) = redis.as_mut() {
                    r.kill();
                    eprintln!("  Redis stopped at 10 s");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    r.restart();
                    eprintln!("  Redis started again (empty) at 20 s");
                }
            }
            let mut reports = Vec::new();
            for child in children {
                let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
                let text = String::from_utf8_lossy(&out.stdout);
                let report: WorkerReport = text
                    .lines()
                    .last()
                    .and_then(WorkerReport::from_json)
                    .unwrap_or_default();
                reports.push(report);
            }
            let log = server.log();
            if std::env::var_os("FLEET_TRACE").is_some() {
                // Accepted and refused at the server: per second, and over
                // the opening per 100 ms.
                let per_second = ok_refused(&log, Duration::from_secs(1), args.seconds as usize + 2);
                eprintln!("  per second (ok/refused): {per_second:?}");
                let per_tenth = ok_refused(&log, Duration::from_millis(100), 60);
                eprintln!("  first 6 s per 100 ms (ok/refused): {per_tenth:?}");
            }
            let from = Duration::from_secs(5);
            let counted: Vec<_> = log.into_iter().filter(|a| a.at >= from).collect();
            let span = (args.seconds as f64 - 5.0).max(1.0);
            let accepted = counted.iter().filter(|a| a.status.is_success()).count() as f64;
            let refused = counted.len() as f64 - accepted;
            let requests: u64 = reports.iter().map(|r| r.requests).sum();
            let commands: u64 = reports.iter().map(|r| r.commands).sum();
            let local_ms: u64 = reports.iter().map(|r| r.local_ms).sum();
            let remerged: u64 = reports.iter().map(|r| r.remerged).sum();
            if remerged > 0 {
                eprintln!("{spec} {variant}: {remerged} fleet cycles merged again with late records");
            }
            rows.push(Row {
                model: spec.to_string(),
                allowed: spec.rate(),
                variant,
                goodput: accepted / span,
                refused: refused / (counted.len() as f64).max(1.0),
                commands_per_request: redis
                    .is_some()
                    .then(|| commands as f64 / (requests as f64).max(1.0)),
                local_s: local_ms as f64 / 1000.0 / f64::from(args.processes),
            });
        }
    }
    println!("\n| model | variant | goodput (of the allowed rate) | 429s | Redis commands per request | time local per process |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for r in rows {
        let cpr = r
            .commands_per_request
            .map_or("-".to_owned(), |c| format!("{c:.3}"));
        let local = if r.variant == "local" {
            "-".to_owned()
        } else {
            format!("{:.1} s", r.local_s)
        };
        let share = r.allowed.map_or("no rate limit".to_owned(), |a| {
            format!("{:.1} %", 100.0 * r.goodput / a)
        });
        println!(
            "| {} | {} | {:.0}/s ({share}) | {:.2} % | {cpr} | {local} |",
            r.model,
            r.variant,
            r.goodput,
            r.refused * 100.0
        );
    }
    Ok(())
}

/// A limiter named as `KIND:RATE:BURST:RETRY_AFTER`.
fn parse_limiter(text: &str) -> Result<Spec, Box<dyn std::error::Error>> {
    let parts: Vec<&str> = text.split(':').collect();
    let [kind, rate, burst, retry_after] = parts[..] else {
        return Err(format!("--limiter: expected KIND:RATE:BURST:RETRY_AFTER, got {text:?}").into());
    };
    let rate: f64 = rate
        .parse()
        .map_err(|_| format!("--limiter: bad rate {rate:?}"))?;
    let burst: u32 = burst
        .parse()
        .map_err(|_| format!("--limiter: bad burst {burst:?}"))?;
    Ok(Spec::parse(kind, rate, burst, retry_after).map_err(|e| e.0)?)
}

/// Accepted and refused arrivals at the server in each of the first `n`
/// spans of `span`.
fn ok_refused(log: &[testkit::Arrival], span: Duration, n: usize) -> Vec<(u32, u32)> {
    let mut counts = vec![(0u32, 0u32); n];
    for a in log {
        if let Some(slot) = counts.get_mut((a.at.as_micros() / span.as_micros()) as usize) {
            if a.status.is_success() {
                slot.0 += 1;
            } else {
                slot.1 += 1;
            }
        }
    }
    counts
}
