//! Window arithmetic against a naive, obviously correct reference, over
//! random snapshot sequences (equal timestamps, out-of-order inserts,
//! single snapshots, empty windows).

use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;
use tower_snapshotter::history::History;
use tower_snapshotter::snapshot::CpuSnapshot;
use tower_snapshotter::status::overloaded_ratio;

fn snap(base: Instant, ms: u64, over: bool) -> CpuSnapshot {
    CpuSnapshot {
        used_ratio: if over { 1.0 } else { 0.0 },
        max_used_ratio: 0.5,
        created_at: base + Duration::from_millis(ms),
    }
}

/// The definition, written as plainly as possible: sort, weigh each gap by
/// the later snapshot's flag.
fn naive_ratio(items: &[(u64, bool)]) -> f64 {
    let mut v = items.to_vec();
    v.sort_by_key(|(t, _)| *t);
    match v.len() {
        0 => 0.0,
        1 => {
            if v[0].1 {
                1.0
            } else {
                0.0
            }
        }
        _ => {
            let mut total = 0u64;
            let mut over = 0u64;
            for w in v.windows(2) {
                let gap = w[1].0 - w[0].0;
                total += gap;
                if w[1].1 {
                    over += gap;
                }
            }
            if total == 0 {
                0.0
            } else {
                ((over as f64 / total as f64) * 1000.0).round() / 1000.0
            }
        }
    }
}

fn sequence() -> impl Strategy<Value = Vec<(u64, bool)>> {
    // Timestamps drawn from a small range so that equal ones are common.
    prop::collection::vec((0u64..50, any::<bool>()), 0..40)
        .prop_map(|v| v.into_iter().map(|(t, b)| (t * 100, b)).collect())
}

proptest! {
    #[test]
    fn ratio_matches_the_definition(items in sequence()) {
        let base = Instant::now();
        let mut sorted = items.clone();
        sorted.sort_by_key(|(t, _)| *t);
        let snaps: Vec<_> = sorted.iter().map(|(t, b)| snap(base, *t, *b)).collect();
        prop_assert_eq!(overloaded_ratio(&snaps), naive_ratio(&items));
    }

    #[test]
    fn history_keeps_what_the_definition_keeps(items in sequence(), retention_ms in 0u64..3000, window_ms in 0u64..3000) {
        let base = Instant::now();
        let mut h = History::new(Duration::from_millis(retention_ms));
        // Naive: the window is defined after every insert, from the newest
        // seen so far, so replay the same pruning rule step by step.
        let mut kept: Vec<(u64, bool)> = Vec::new();
        for &(t, b) in &items {
            h.insert(snap(base, t, b));
            kept.push((t, b));
            kept.sort_by_key(|(t, _)| *t);
            let newest = kept.last().map_or(0, |(t, _)| *t);
            kept.retain(|(t, _)| newest - t <= retention_ms);
        }
        let got: Vec<u64> = h.iter().map(|s| (s.created_at - base).as_millis() as u64).collect();
        let want: Vec<u64> = kept.iter().map(|(t, _)| *t).collect();
        prop_assert_eq!(&got, &want);
        // Sorted, and a sample is the tail within the window of the newest.
        prop_assert!(got.windows(2).all(|w| w[0] <= w[1]));
        let newest = want.last().copied().unwrap_or(0);
        let sample: Vec<u64> = h
            .sample(Some(Duration::from_millis(window_ms)))
            .iter()
            .map(|s| (s.created_at - base).as_millis() as u64)
            .collect();
        let want_sample: Vec<u64> = if window_ms == 0 {
            want.clone()
        } else {
            want.iter().copied().filter(|t| newest - t <= window_ms).collect()
        };
        prop_assert_eq!(sample, want_sample);
    }
}
