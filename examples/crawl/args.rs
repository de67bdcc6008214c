//! The command line: the crawl's options and the own server's, parsed
//! with clap.

use clap::builder::{PossibleValue, PossibleValuesParser, RangedU64ValueParser};
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use tower_snapshotter::GatePolicy;

/// Crawls a rate-limited server through `SnapshotLayer`, retrying throttled
/// URLs with `RetryThrottled`, and prints one JSON line of figures.
#[derive(Debug, Clone, Parser)]
#[command(name = "crawl")]
pub(crate) struct Args {
    /// URLs to crawl
    #[arg(long, value_name = "N", default_value_t = 3000, help_heading = "Client")]
    pub(crate) requests: usize,
    /// Requests the client offers at once
    #[arg(
        long,
        value_name = "C",
        default_value_t = 64,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..),
        help_heading = "Client"
    )]
    pub(crate) concurrency: usize,
    /// The layer's gate policy [default: the library's, GatePolicy::default()]
    // `parse_args` names the current default in the help.
    #[arg(long, value_name = "P", value_enum, help_heading = "Client")]
    pub(crate) policy: Option<Policy>,
    /// The same crawl without the layer (the baseline): throttled URLs are
    /// retried at once, until they succeed or --max-attempts run out
    #[arg(long, help_heading = "Client")]
    pub(crate) no_layer: bool,
    /// No progress bar
    #[arg(long, help_heading = "Client")]
    pub(crate) quiet: bool,
    /// Crawl BASE0 .. BASE{N-1} on another server instead of starting one
    /// (the server options are then ignored) [default: none, own server]
    #[arg(long, value_name = "BASE", help_heading = "Client")]
    pub(crate) url: Option<String>,
    /// Serve the layer's metrics in the Prometheus format on ADDR (e.g.
    /// 127.0.0.1:9000) while crawling; needs `--features metrics`
    #[arg(long, value_name = "ADDR", help_heading = "Client")]
    pub(crate) metrics: Option<std::net::SocketAddr>,
    /// Attempts per URL, the first included: a URL still answered 429 or
    /// 503 after them counts as failed
    #[arg(long, value_name = "N", default_value_t = 10_000, help_heading = "Client")]
    pub(crate) max_attempts: u32,
    /// The limiter model
    #[arg(
        long,
        value_name = "L",
        default_value = "gcra",
        value_parser = limiters(),
        help_heading = "Own server on 127.0.0.1 (testkit)"
    )]
    pub(crate) limiter: String,
    /// Requests per second the limiter allows
    #[arg(
        long,
        value_name = "R",
        visible_alias = "capacity",
        default_value_t = 500.0,
        help_heading = "Own server on 127.0.0.1 (testkit)"
    )]
    pub(crate) rate: f64,
    /// gcra: requests of excess allowed (gcra-delay: queued); concurrency:
    /// requests in flight
    #[arg(
        long,
        value_name = "B",
        default_value_t = 50,
        help_heading = "Own server on 127.0.0.1 (testkit)"
    )]
    pub(crate) burst: u32,
    /// Retry-After on a gcra, gcra-delay or bucket refusal: none, exact (seconds to the
    /// next one served, rounded) or whole SECONDS, 0 meaning none; window
    /// always sends the seconds to its reset, sliding and haproxy none
    #[arg(
        long,
        value_name = "RA",
        default_value = "1",
        help_heading = "Own server on 127.0.0.1 (testkit)"
    )]
    pub(crate) retry_after: String,
    /// How long the server takes over each served request, in milliseconds
    /// [default: 0; 20 for concurrency]
    #[arg(long, value_name = "N", help_heading = "Own server on 127.0.0.1 (testkit)")]
    pub(crate) latency_ms: Option<u64>,
    /// The window of sliding, haproxy and moving (default 1, HAProxy's examples use 10) or of
    /// window and window-github (default 5), in seconds; R a second over it
    #[arg(long, value_name = "SECS", help_heading = "Own server on 127.0.0.1 (testkit)")]
    pub(crate) window: Option<u64>,
}

/// `--policy`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Policy {
    Wait,
    Reject,
    Autoscale,
    Adaptive,
}

impl From<Policy> for GatePolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Wait => GatePolicy::Wait,
            Policy::Reject => GatePolicy::Reject,
            Policy::Autoscale => GatePolicy::Autoscale,
            Policy::Adaptive => GatePolicy::Adaptive,
        }
    }
}

/// `--limiter`: the names `testkit::Spec::parse` takes.
fn limiters() -> PossibleValuesParser {
    PossibleValuesParser::new([
        PossibleValue::new("gcra").help("nginx limit_req nodelay: B+1 at once, then R/s; 429"),
        PossibleValue::new("gcra-delay")
            .help("nginx limit_req without nodelay: B queued and served at R/s, past B 429"),
        PossibleValue::new("sliding")
            .help("sliding window (--window, 1 s) of R a second counting refusals; 429, no Retry-After"),
        PossibleValue::new("haproxy")
            .help("HAProxy's http_req_rate (--window, 1 s) of R a second, previous period weighed; 429, no Retry-After"),
        PossibleValue::new("moving")
            .help("moving window (--window, 1 s) of R a second counting served requests; 429"),
        PossibleValue::new("moving-flask")
            .help("the same with Flask-Limiter's X-RateLimit-* headers and Retry-After on every answer"),
        PossibleValue::new("window")
            .help("fixed window (--window, 5 s) of R a second, IETF RateLimit headers; 429"),
        PossibleValue::new("window-github").help("the same with GitHub's X-RateLimit-* headers; 429"),
        PossibleValue::new("bucket").help("token bucket of R/s holding R; 429"),
        PossibleValue::new("concurrency").help("nginx limit_conn: 503 past B in flight, no Retry-After"),
    ])
}

/// Parses the command line, exiting with clap's message (and status 2) on
/// a bad one; `--policy`'s help names the library's current default.
pub(crate) fn parse_args() -> Args {
    let default_policy = format!("{:?}", GatePolicy::default()).to_lowercase();
    let matches = Args::command()
        .mut_arg("policy", |a| {
            a.help(format!(
                "The layer's gate policy [default: the library's, GatePolicy::default(), now {default_policy}]"
            ))
        })
        .get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
