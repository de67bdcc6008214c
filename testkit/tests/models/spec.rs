//! The tests of `Spec`: parsing the flags, the errors, the models it builds
//! and how it prints.

use std::time::Duration;

use testkit::{QuotaHeaders, RetryAfter, Spec};
use tokio::time::Instant;

use super::{arrive, burst};

// ---------------------------------------------------------------- Spec

#[test]
fn spec_parse_every_kind() {
    let p = |kind, ra| Spec::parse(kind, 500.0, 50, ra).unwrap();
    assert_eq!(
        p("gcra", "1"),
        Spec::Gcra {
            rate: 500.0,
            burst: 50,
            retry_after: RetryAfter::Static(1)
        }
    );
    assert_eq!(
        p("gcra", "exact"),
        Spec::Gcra {
            rate: 500.0,
            burst: 50,
            retry_after: RetryAfter::Exact
        }
    );
    assert_eq!(
        p("gcra", "none"),
        Spec::Gcra {
            rate: 500.0,
            burst: 50,
            retry_after: RetryAfter::Absent
        }
    );
    assert_eq!(
        p("sliding", "1"),
        Spec::Sliding {
            rate: 500.0,
            window: Duration::from_secs(1)
        }
    );
    assert_eq!(
        p("sliding", "1").with_window(Duration::from_secs(10)).to_string(),
        "sliding 500/s w10s"
    );
    assert_eq!(
        p("moving", "exact").with_window(Duration::from_secs(60)),
        Spec::Moving {
            rate: 500.0,
            window: Duration::from_secs(60),
            retry_after: RetryAfter::Exact,
            headers: false
        }
    );
    assert_eq!(p("moving", "none").to_string(), "moving 500/s w1s no RA");
    assert_eq!(p("moving-flask", "none").to_string(), "moving 500/s w1s Flask");
    assert_eq!(
        p("window", "1"),
        Spec::Window {
            rate: 500.0,
            window: Duration::from_secs(5),
            headers: QuotaHeaders::Ietf
        }
    );
    assert_eq!(
        p("window-github", "1"),
        Spec::Window {
            rate: 500.0,
            window: Duration::from_secs(5),
            headers: QuotaHeaders::GitHub
        }
    );
    assert_eq!(
        p("bucket", "30"),
        Spec::Bucket {
            rate: 500.0,
            retry_after: RetryAfter::Static(30)
        }
    );
    assert_eq!(p("concurrency", "1"), Spec::Concurrency { limit: 50 });
    assert_eq!(
        Spec::parse("concurrency", 500.0, 0, "1").unwrap(),
        Spec::Concurrency { limit: 1 },
        "at least one in flight"
    );
    assert_eq!(p("gcra", "1").rate(), Some(500.0));
    assert_eq!(p("concurrency", "1").rate(), None);
}

#[test]
fn spec_parse_errors_name_the_flag() {
    let err = |kind, rate, ra| Spec::parse(kind, rate, 50, ra).unwrap_err().to_string();
    let e = err("leaky", 500.0, "1");
    assert!(e.starts_with("--limiter:") && e.contains("\"leaky\""), "{e}");
    for bad in ["soon", "-1", "1.5", ""] {
        let e = err("gcra", 500.0, bad);
        assert!(e.starts_with("--retry-after:"), "{bad:?}: {e}");
    }
    for bad in [0.0, 0.005, -3.0, 2e6, f64::NAN, f64::INFINITY] {
        let e = err("gcra", bad, "1");
        assert!(e.starts_with("--rate:"), "{bad}: {e}");
    }
    assert!(Spec::parse("gcra", 0.01, 0, "0").is_ok(), "a rate per minute");
    assert!(Spec::parse("gcra", 1.0, 0, "0").is_ok());
    assert!(Spec::parse("gcra", 1e6, 0, "0").is_ok());
}

#[tokio::test(start_paused = true)]
async fn spec_builds_the_model_it_names() {
    let build = |kind, rate, burst_size, ra| {
        Spec::parse(kind, rate, burst_size, ra)
            .unwrap()
            .build(Instant::now())
    };

    let mut g = build("gcra", 500.0, 50, "1");
    assert_eq!(burst(g.as_mut(), 100), 51);
    assert_eq!(arrive(g.as_mut()).get("retry-after"), Some("1"));

    let mut s = build("sliding", 100.0, 50, "1");
    assert_eq!(burst(s.as_mut(), 200), 100);

    // A window of 5 s at 2/s: a quota of 10.
    let mut w = build("window", 2.0, 50, "1");
    let d = arrive(w.as_mut());
    assert_eq!(d.get("ratelimit-policy"), Some("\"default\";q=10;w=5"));
    assert_eq!(burst(w.as_mut(), 100), 9);
    let mut w = build("window-github", 2.0, 50, "1");
    assert_eq!(arrive(w.as_mut()).get("x-ratelimit-limit"), Some("10"));

    // The bucket's burst is one second of the rate.
    let mut b = build("bucket", 100.0, 7, "exact");
    assert_eq!(burst(b.as_mut(), 200), 100);
    assert_eq!(arrive(b.as_mut()).get("retry-after"), Some("0"));

    let mut c = build("concurrency", 500.0, 3, "1");
    assert_eq!(burst(c.as_mut(), 10), 3);
    c.depart(Instant::now());
    assert_eq!(burst(c.as_mut(), 10), 1);
}

#[test]
fn spec_display() {
    assert_eq!(
        Spec::parse("gcra", 500.0, 50, "1").unwrap().to_string(),
        "gcra 500/s b50 RA 1"
    );
    assert_eq!(
        Spec::parse("concurrency", 500.0, 8, "1").unwrap().to_string(),
        "concurrency 8"
    );
}
