//! The limiter models of the table: spec helpers (`sliding`, `gcra`) and
//! every model at a rate, with the environment switches that add more.

use std::time::Duration;

use testkit::{QuotaHeaders, RetryAfter, Spec};

/// A sliding one-second window that counts refusals.
pub(crate) fn sliding(rate: f64) -> Spec {
    Spec::Sliding {
        rate,
        window: Duration::from_secs(1),
    }
}

pub(crate) fn gcra(rate: f64, burst: u32, retry_after: RetryAfter) -> Spec {
    Spec::Gcra {
        rate,
        burst,
        retry_after,
    }
}

pub(crate) fn models(rate: f64) -> Vec<Spec> {
    // `WINDOW_S=1` (or 60) tries quota windows the issue does not list.
    let window = std::env::var("WINDOW_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(5), Duration::from_secs);
    let mut specs = vec![
        gcra(rate, 1, RetryAfter::Static(1)),
        gcra(rate, 10, RetryAfter::Static(1)),
        gcra(rate, 50, RetryAfter::Static(1)),
        gcra(rate, 50, RetryAfter::Exact),
        gcra(rate, 50, RetryAfter::Absent),
        gcra(rate, 1, RetryAfter::Absent),
        // `SLIDING_S=10` tries HAProxy's usual ten-second window.
        sliding(rate).with_window(
            std::env::var("SLIDING_S")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs),
        ),
        Spec::Window {
            rate,
            window,
            headers: QuotaHeaders::Ietf,
        },
        Spec::Window {
            rate,
            window,
            headers: QuotaHeaders::GitHub,
        },
        Spec::Bucket {
            rate,
            retry_after: RetryAfter::Static(1),
        },
    ];
    // `NO_BURST=1` adds nginx `limit_req` without `burst=` (its default):
    // a request sooner than one interval after the last accepted one is
    // refused.
    if std::env::var_os("NO_BURST").is_some() {
        specs.push(gcra(rate, 0, RetryAfter::Absent));
        specs.push(gcra(rate, 0, RetryAfter::Static(1)));
    }
    // `HAPROXY=1` adds HAProxy's `http_req_rate` counter at one second
    // and at ten (its examples' window); `HAPROXY_S=10,60` chooses the
    // periods.
    if std::env::var_os("HAPROXY").is_some() {
        let periods: Vec<u64> = std::env::var("HAPROXY_S").map_or_else(
            |_| vec![1, 10],
            |v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        );
        for secs in periods {
            specs.push(Spec::Haproxy {
                rate,
                window: Duration::from_secs(secs),
            });
        }
    }
    // `MOVING_S=1,60` adds moving windows of served requests of those
    // lengths, answering `Retry-After` until the oldest leaves, nothing,
    // or Flask-Limiter's headers.
    if let Ok(lengths) = std::env::var("MOVING_S") {
        for secs in lengths.split(',').filter_map(|s| s.trim().parse::<u64>().ok()) {
            for (retry_after, headers) in [
                (RetryAfter::Exact, false),
                (RetryAfter::Absent, false),
                (RetryAfter::Absent, true),
            ] {
                specs.push(Spec::Moving {
                    rate,
                    window: Duration::from_secs(secs),
                    retry_after,
                    headers,
                });
            }
        }
    }
    // `FIXED=1` adds fixed windows (of `WINDOW_S`) that send no quota
    // headers: `Retry-After` to the reset alone, or a bare 429.
    if std::env::var_os("FIXED").is_some() {
        for headers in [QuotaHeaders::RetryAfter, QuotaHeaders::Bare] {
            specs.push(Spec::Window {
                rate,
                window,
                headers,
            });
        }
    }
    // `BURSTS=5,20` with `RETRY_AFTERS=none,1,exact,5` adds GCRAs the
    // issue does not list: every burst with every `Retry-After`.
    if let Ok(bursts) = std::env::var("BURSTS") {
        let retry_afters = std::env::var("RETRY_AFTERS").unwrap_or_else(|_| "none,1".into());
        for burst in bursts.split(',').filter_map(|b| b.parse().ok()) {
            for ra in retry_afters.split(',') {
                let retry_after = match ra {
                    "none" => RetryAfter::Absent,
                    "exact" => RetryAfter::Exact,
                    n => RetryAfter::Static(n.parse().unwrap_or(1)),
                };
                specs.push(gcra(rate, burst, retry_after));
            }
        }
    }
    // `TRAEFIK=1` adds Traefik's `rateLimit` (its default burst of one,
    // and 10 and 50): `Retry-After` rounded up, `X-Retry-In` exact.
    if std::env::var_os("TRAEFIK").is_some() {
        for burst in [1, 10, 50] {
            specs.push(Spec::Traefik { rate, burst });
        }
    }
    // `SPRING=1` adds Spring Cloud Gateway's `RequestRateLimiter` with a
    // second's burst and with two, its headers on and off.
    if std::env::var_os("SPRING").is_some() {
        let second = rate.ceil() as u32;
        for burst in [second, 2 * second] {
            for headers in [true, false] {
                specs.push(Spec::Spring { rate, burst, headers });
            }
        }
    }
    // `DELAYED=1` adds nginx `limit_req` without `nodelay`: the burst is a
    // queue served at the rate.
    if std::env::var_os("DELAYED").is_some() {
        for (burst, retry_after) in [
            (5, RetryAfter::Absent),
            (20, RetryAfter::Absent),
            (20, RetryAfter::Static(1)),
        ] {
            specs.push(Spec::GcraDelayed {
                rate,
                burst,
                retry_after,
            });
        }
    }
    specs
}
