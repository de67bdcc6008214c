//! Models of the rate limiters servers really run, and a loopback server
//! that serves one: shared by tower-snapshotter's tests, benches and
//! examples, so all three judge the layer against the same behaviour.
//!
//! | model | class | what a client sees |
//! | --- | --- | --- |
//! | [`Gcra`](model::Gcra) | nginx `limit_req … nodelay`, Envoy, gateways | a small burst, then one request per `1/rate`; refusals are free on the server's books |
//! | [`Gcra::delaying`](model::Gcra::delaying) | nginx `limit_req … burst=N` without `nodelay` (its default) | the burst is a queue: what comes too fast is served late, at the rate; refused past N |
//! | [`SlidingWindow`](model::SlidingWindow) | sliding logs in Redis (scrapy-cluster), HAProxy's rate taken as exact | refused requests count too: only sending below the rate gets out |
//! | [`FreqCounter`](model::FreqCounter) | HAProxy's `http_req_rate` counter as it really reads | two periods, the previous one weighed by the time left: refusals count too and fade over a period |
//! | [`FixedWindow`](model::FixedWindow) | public APIs with quota headers | `RateLimit` or GitHub's `X-RateLimit-*` say what is left |
//! | [`TokenBucket`](model::TokenBucket) | a bucket with a one-second burst | a pause refills a whole second |
//! | [`Traefik`](model::Traefik) | Traefik's `rateLimit` middleware (Go's `x/time/rate`) | a bucket of `burst`; what comes within half an interval is served late, the rest refused with `Retry-After` rounded up and the exact `X-Retry-In` |
//! | [`SpringGateway`](model::SpringGateway) | Spring Cloud Gateway's `RequestRateLimiter` (Redis) | a bucket refilled at each whole second; every answer names its rate, burst and tokens left; a bare 429 |
//! | [`Concurrency`](model::Concurrency) | nginx `limit_conn`, worker pools | 503 past C in flight |
//! | [`Phases`](model::Phases) | capacity that falls and comes back | one of the above, then another, on a schedule |
//!
//! Each model runs on the server's own clock (`tokio::time::Instant`, so
//! tests can pause it) and never tells the client its rate.

pub mod model;
pub mod server;
mod spec;

pub use model::{Decision, Limiter, QuotaHeaders, RetryAfter};
pub use server::{Arrival, Server};
pub use spec::{Spec, SpecError};
