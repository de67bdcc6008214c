//! Every cgroup and `/proc` parser: never panics, whatever the file holds.
//! The first byte picks the parser; the rest is the file's text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_snapshotter::probe::__private::parse;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (a, b) = text.split_once('\n').unwrap_or((&text, ""));
    match which % 11 {
        0 => {
            if let Ok(Some(q)) = parse::cpu_max(&text) {
                assert!(q.cpus() > 0.0);
            }
        }
        1 => {
            let _ = parse::cfs_quota(a, b);
        }
        2 => {
            let _ = parse::cpu_stat_usage(&text);
        }
        3 => {
            let _ = parse::cpuacct_usage(&text);
        }
        4 => {
            let _ = parse::memory_max(&text);
        }
        5 => {
            let total = rest.iter().fold(0u64, |h, b| h.rotate_left(8) ^ u64::from(*b));
            let _ = parse::v1_memory_limit(&text, total);
        }
        6 => {
            let _ = parse::memory_usage(&text);
        }
        7 => {
            let _ = parse::self_cgroup(&text);
        }
        8 => {
            if let Ok((total, available)) = parse::meminfo(&text) {
                assert!(available <= total);
            }
        }
        9 => {
            let _ = parse::smaps_rollup_pss(&text);
        }
        _ => {
            let _ = parse::status_rss(&text);
        }
    }
});
