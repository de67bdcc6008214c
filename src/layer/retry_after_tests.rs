//! Tests of `retry_after.rs`: each form of each header, and the garbage a
//! server sends instead.

use super::*;
use crate::layer::quota_headers::{names_a_quota, quota_held_at_most};

fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480) // Wed, 21 Oct 2015 07:28:00 GMT
}

#[test]
fn seconds_form() {
    assert_eq!(parse_retry_after(b"1", at()), Some(Duration::from_secs(1)));
    assert_eq!(parse_retry_after(b" 007 ", at()), Some(Duration::from_secs(7)));
    assert_eq!(
        parse_retry_after(b"99999999999", at()),
        Some(Duration::from_secs(99_999_999_999))
    );
    assert_eq!(
        parse_retry_after(b"999999999999999999999999999", at()),
        Some(Duration::from_secs(u64::MAX))
    );
}

#[test]
fn no_wait_forms() {
    for v in [
        &b"0"[..],
        b"000",
        b"",
        b"  ",
        b"-1",
        b"+1",
        b"1.5",
        b"1e3",
        b"0x10",
        b"soon",
        b"\xff\xfe",
        b"1 2",
    ] {
        assert_eq!(
            parse_retry_after(v, at()),
            None,
            "{:?}",
            String::from_utf8_lossy(v)
        );
    }
}

#[test]
fn date_forms() {
    let now = at();
    assert_eq!(
        parse_retry_after(b"Wed, 21 Oct 2015 07:28:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    // RFC 850 and asctime forms.
    assert_eq!(
        parse_retry_after(b"Wednesday, 21-Oct-15 07:28:05 GMT", now),
        Some(Duration::from_secs(5))
    );
    assert_eq!(
        parse_retry_after(b"Wed Oct 21 07:28:02 2015", now),
        Some(Duration::from_secs(2))
    );
    // Past and present: no wait.
    assert_eq!(parse_retry_after(b"Wed, 21 Oct 2015 07:28:00 GMT", now), None);
    assert_eq!(parse_retry_after(b"Thu, 01 Jan 1970 00:00:00 GMT", now), None);
    // Far future is a long wait, not an error; the caller caps it.
    assert!(parse_retry_after(b"Fri, 31 Dec 9999 23:59:59 GMT", now).is_some());
    // Garbled dates.
    assert_eq!(parse_retry_after(b"Wed, 32 Oct 2015 07:28:00 GMT", now), None);
}

#[test]
fn several_headers() {
    let mut h = HeaderMap::new();
    h.append(RETRY_AFTER, "5".parse().unwrap());
    assert_eq!(retry_after(&h, at()), Some(Duration::from_secs(5)));
    h.append(RETRY_AFTER, "5".parse().unwrap());
    assert_eq!(
        retry_after(&h, at()),
        Some(Duration::from_secs(5)),
        "duplicates agree"
    );
    h.append(RETRY_AFTER, "9".parse().unwrap());
    assert_eq!(retry_after(&h, at()), None, "disagreeing values are ambiguous");
    assert_eq!(retry_after(&HeaderMap::new(), at()), None);
}

#[test]
fn only_quota_names_are_looked_up() {
    let h = |names: &[&'static str]| {
        let mut h = HeaderMap::new();
        for name in names {
            h.append(*name, "1".parse().unwrap());
        }
        h
    };
    let ordinary = [
        "date",
        "server",
        "content-type",
        "etag",
        "x-request-id",
        "retry-after",
    ];
    assert!(!names_a_quota(&h(&ordinary)));
    for name in [
        "ratelimit",
        "ratelimit-remaining",
        "ratelimit-policy",
        "x-ratelimit-remaining",
        "x-ratelimit-reset-after",
        "x-rate-limit-remaining",
    ] {
        let mut names = ordinary.to_vec();
        names.push(name);
        assert!(names_a_quota(&h(&names)), "{name}");
    }
}

#[test]
fn rate_limit_forms() {
    let q = |r, t| {
        Some(Quota {
            remaining: r,
            reset: Duration::from_secs(t),
        })
    };
    let h = |pairs: &[(&'static str, &str)]| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    };
    assert_eq!(
        rate_limit(&h(&[("ratelimit", r#""default";r=50;t=30"#)])),
        q(50, 30)
    );
    assert_eq!(rate_limit(&h(&[("ratelimit", "default;r=0;t=5")])), q(0, 5));
    assert_eq!(
        rate_limit(&h(&[("ratelimit", "limit=100, remaining=7, reset=3")])),
        q(7, 3)
    );
    assert_eq!(
        rate_limit(&h(&[("ratelimit-remaining", "4"), ("ratelimit-reset", "2")])),
        q(4, 2)
    );
    // The tighter of two policies.
    assert_eq!(
        rate_limit(&h(&[("ratelimit", r#""a";r=1000;t=10, "b";r=5;t=10"#)])),
        q(5, 10)
    );
    for junk in [
        "",
        ";;;",
        "r=5",
        "\"x\";r=-1;t=2",
        "\"x\";r=1e9;t=2",
        "a;r=;t=",
        "remaining=5",
    ] {
        assert_eq!(rate_limit(&h(&[("ratelimit", junk)])), None, "{junk:?}");
    }
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, v.parse().unwrap());
    }
    h
}

/// [`headers`] from borrowed values.
fn texts(pairs: &[(&'static str, &str)]) -> HeaderMap {
    headers(&pairs.iter().map(|(k, v)| (*k, v.to_string())).collect::<Vec<_>>())
}

/// Twitch names an epoch in `Ratelimit-Reset`. Read as seconds from now,
/// its 799 requests were spread over 48 years, and the pace fell to the
/// slowest the controller allows: 100 s a request.
#[test]
fn a_reset_as_large_as_an_epoch_is_an_instant_in_every_form() {
    let now = at();
    let epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let twitch = headers(&[
        ("ratelimit-limit", "800".into()),
        ("ratelimit-remaining", "799".into()),
        ("ratelimit-reset", (epoch + 60).to_string()),
    ]);
    let q = quota(&twitch, now).expect("a quota");
    assert_eq!(
        (q.remaining, q.reset_hi, q.epoch),
        (799, Duration::from_secs(60), true)
    );
    assert_eq!(q.reset_lo, Duration::from_secs(59));
    // Against the answer's `Date`, with its second of doubt.
    let mut dated = headers(&[("ratelimit", format!("\"d\";r=5;t={}", epoch + 10))]);
    dated.insert("date", "Wed, 21 Oct 2015 07:28:02 GMT".parse().unwrap());
    let q = quota(&dated, now).expect("a quota");
    assert_eq!(
        (q.remaining, q.reset_hi, q.reset_lo),
        (5, Duration::from_secs(8), Duration::from_secs(6))
    );
    // A delta stays a delta.
    let delta = headers(&[
        ("ratelimit-remaining", "4".into()),
        ("ratelimit-reset", "2".into()),
    ]);
    let q = quota(&delta, now).expect("a quota");
    assert_eq!((q.reset_hi, q.epoch), (Duration::from_secs(2), false));
}

#[test]
fn a_decimal_remaining_counts_its_whole_requests() {
    // Reddit's form.
    let reddit = headers(&[
        ("x-ratelimit-used", "2".into()),
        ("x-ratelimit-remaining", "598.0".into()),
        ("x-ratelimit-reset", "412".into()),
    ]);
    let q = quota(&reddit, at()).expect("a quota");
    assert_eq!((q.remaining, q.reset_hi), (598, Duration::from_secs(412)));
    for junk in ["-1.0", "NaN", "inf", "1e400", "x"] {
        let h = headers(&[
            ("x-ratelimit-remaining", junk.into()),
            ("x-ratelimit-reset", "5".into()),
        ]);
        assert_eq!(quota(&h, at()), None, "{junk}");
    }
}

#[test]
fn resets_farther_than_any_quota_window_are_ignored_in_every_form() {
    let now = at();
    for h in [
        headers(&[("ratelimit", "\"d\";r=5;t=99999999999".into())]),
        headers(&[("ratelimit", "\"d\";r=5;t=20000000".into())]),
        headers(&[
            ("ratelimit-remaining", "0".into()),
            ("ratelimit-reset", "20000000".into()),
        ]),
        headers(&[
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", "99999999999".into()),
        ]),
    ] {
        assert_eq!(quota(&h, now), None, "{h:?}");
    }
    // A day's quota is a quota.
    let daily = headers(&[("ratelimit", "\"daily\";r=100;t=86400".into())]);
    assert!(quota(&daily, now).is_some());
}

#[test]
fn a_spent_quota_holds_no_longer_than_the_cap_and_a_live_one_is_paced_as_named() {
    let cap = Duration::from_secs(60);
    let spent = headers(&[
        ("ratelimit-remaining", "0".into()),
        ("ratelimit-reset", "3600".into()),
    ]);
    let q = quota_held_at_most(&spent, cap).expect("a quota");
    assert_eq!((q.reset_lo, q.reset_hi), (cap, cap));
    let live = headers(&[
        ("ratelimit-remaining", "10".into()),
        ("ratelimit-reset", "3600".into()),
    ]);
    let q = quota_held_at_most(&live, cap).expect("a quota");
    assert_eq!(q.reset_hi, Duration::from_secs(3600));
    assert_eq!(quota_held_at_most(&HeaderMap::new(), cap), None);
}

#[test]
fn springs_bucket_names_its_rate_and_junk_names_none() {
    let spring = |pairs: &[(&'static str, &str)]| replenish_rate(&texts(pairs));
    let rate = "x-ratelimit-replenish-rate";
    let tokens = "x-ratelimit-requested-tokens";
    assert_eq!(
        spring(&[(rate, "10"), ("x-ratelimit-burst-capacity", "20")]),
        Some(10.0)
    );
    assert_eq!(spring(&[(rate, " 10 "), (tokens, "1")]), Some(10.0));
    // A request a minute: one token a second, sixty a request.
    assert_eq!(spring(&[(rate, "1"), (tokens, "60")]), Some(1.0 / 60.0));
    for junk in ["", "ten", "0", "-5", "NaN", "inf", "0x10"] {
        assert_eq!(spring(&[(rate, junk)]), None, "{junk:?}");
        assert_eq!(spring(&[(rate, "10"), (tokens, junk)]), None, "{junk:?}");
    }
    assert_eq!(spring(&[(rate, "1e300")]), None, "faster than any limiter");
    // Remaining tokens alone name no rate.
    assert_eq!(spring(&[("x-ratelimit-remaining", "5")]), None);
}

#[test]
fn an_announced_rate_is_one_request_per_cap_at_the_least() {
    let cap = Duration::from_secs(60);
    let h = headers(&[
        ("x-ratelimit-replenish-rate", "1".into()),
        ("x-ratelimit-requested-tokens", "100000".into()),
    ]);
    assert_eq!(Announced::read(&h, cap).rate, Some(1.0 / 60.0));
    let h = headers(&[("x-ratelimit-replenish-rate", "10".into())]);
    assert_eq!(
        Announced::read(&h, cap),
        Announced {
            quota: None,
            rate: Some(10.0)
        }
    );
    assert_eq!(Announced::read(&HeaderMap::new(), cap), Announced::default());
}

#[test]
fn a_wait_in_milliseconds_wins_over_whole_seconds() {
    let ms = |pairs: &[(&'static str, &str)]| {
        let h = texts(pairs);
        retry_after(&h, at())
    };
    // OpenAI's and Azure's: the seconds rounded, the milliseconds exact.
    assert_eq!(
        ms(&[("retry-after", "1"), ("retry-after-ms", "150")]),
        Some(Duration::from_millis(150))
    );
    assert_eq!(
        ms(&[("x-ms-retry-after-ms", "2500.5")]),
        Some(Duration::from_micros(2_500_500))
    );
    // Garbage, zero or negative: `Retry-After` answers.
    for junk in ["soon", "0", "-5", "NaN", "inf", ""] {
        assert_eq!(
            ms(&[("retry-after", "2"), ("retry-after-ms", junk)]),
            Some(Duration::from_secs(2)),
            "{junk:?}"
        );
    }
    assert_eq!(ms(&[("retry-after-ms", "0")]), None);
    // Rounded either way, the exact one; disagreeing, the longer.
    assert_eq!(
        ms(&[("retry-after", "1"), ("retry-after-ms", "1500")]),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        ms(&[("retry-after", "2"), ("retry-after-ms", "1500")]),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        ms(&[("retry-after", "60"), ("x-retry-in", "5ms")]),
        Some(Duration::from_secs(60))
    );
    // Absurd: saturates at a year (the layer caps it at `max_retry_after`).
    assert_eq!(
        ms(&[("retry-after-ms", "1e300")]),
        Some(Duration::from_secs(365 * 86_400))
    );
}

#[test]
fn an_epoch_in_milliseconds_is_an_instant_too() {
    let now = at();
    let epoch_ms = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() + 30_000;
    let h = headers(&[
        ("x-ratelimit-remaining", "7".into()),
        ("x-ratelimit-reset", epoch_ms.to_string()),
    ]);
    let q = quota(&h, now).expect("a quota");
    assert_eq!(
        (q.remaining, q.reset_hi, q.epoch),
        (7, Duration::from_secs(30), true)
    );
}
