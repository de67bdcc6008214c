//! The parsers of server hints and of cgroup and `/proc` files never panic
//! on arbitrary input, and keep their contracts. (CI keeps this guarantee
//! without a fuzzer.)

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use tower_snapshotter::probe::__private::parse;
use tower_snapshotter::retry_after::{parse_retry_after, rate_limit, retry_after};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

proptest! {
    #[test]
    fn retry_after_never_panics_and_never_says_wait_zero(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Some(d) = parse_retry_after(&bytes, now()) {
            prop_assert!(!d.is_zero());
        }
        if let Ok(v) = HeaderValue::from_bytes(&bytes) {
            let mut h = HeaderMap::new();
            h.insert("retry-after", v.clone());
            h.append("retry-after", v);
            let _ = retry_after(&h, now());
        }
    }

    #[test]
    fn retry_after_seconds_round_trip(secs in 1u64..10_000_000_000) {
        prop_assert_eq!(parse_retry_after(secs.to_string().as_bytes(), now()), Some(Duration::from_secs(secs)));
    }

    #[test]
    fn retry_after_dates_in_the_future(ahead in 1u64..10_000_000) {
        let date = httpdate::fmt_http_date(now() + Duration::from_secs(ahead));
        prop_assert_eq!(parse_retry_after(date.as_bytes(), now()), Some(Duration::from_secs(ahead)));
    }

    #[test]
    fn rate_limit_never_panics(a in ".{0,80}", b in "[0-9a-z ]{0,12}", c in "[0-9a-z ]{0,12}") {
        let mut h = HeaderMap::new();
        for (name, value) in [("ratelimit", &a), ("ratelimit-remaining", &b), ("ratelimit-reset", &c)] {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        }
        let _ = rate_limit(&h);
    }

    #[test]
    fn cgroup_and_proc_parsers_never_panic(text in ".{0,200}", other in ".{0,40}", total in any::<u64>()) {
        let _ = parse::cpu_max(&text);
        let _ = parse::cfs_quota(&text, &other);
        let _ = parse::cpu_stat_usage(&text);
        let _ = parse::cpuacct_usage(&text);
        let _ = parse::memory_max(&text);
        let _ = parse::v1_memory_limit(&text, total);
        let _ = parse::memory_usage(&text);
        let _ = parse::self_cgroup(&text);
        let _ = parse::meminfo(&text);
        let _ = parse::smaps_rollup_pss(&text);
        let _ = parse::status_rss(&text);
        if let Ok(Some(q)) = parse::cpu_max(&text) {
            prop_assert!(q.cpus() > 0.0);
        }
    }
}
