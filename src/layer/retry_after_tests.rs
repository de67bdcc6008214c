//! Tests of `retry_after.rs`: each form of each header, and the garbage a
//! server sends instead.

use super::*;

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
