//! Unit tests of the snapshotter's private parts.

use super::*;

fn snapshot(used: u64, at: Instant) -> MemorySnapshot {
    MemorySnapshot {
        current_size: used,
        system_wide_used_size: None,
        max_memory_size: 8 << 30,
        system_wide_memory_size: None,
        max_used_memory_ratio: 0.9,
        created_at: at,
    }
}

#[test]
fn memory_warning_fires_once_per_cooldown_and_not_below_its_threshold() {
    // Crawlee's case: an 8 GiB budget, r = 0.9, reserve 0.5: the warning
    // line is 95 % of the budget.
    let cooldown = Duration::from_secs(10);
    let t0 = Instant::now();
    let gib = |g: f64| (g * (1u64 << 30) as f64) as u64;
    let mut w = MemoryWarning::default();
    assert!(
        !w.check(&snapshot(gib(8.0 * 0.80), t0), 0.5, cooldown),
        "80 % never warns"
    );
    assert!(
        !w.check(&snapshot(gib(8.0 * 0.95), t0), 0.5, cooldown),
        "95 % exactly is not above"
    );
    assert!(w.check(&snapshot(gib(8.0 * 0.96), t0), 0.5, cooldown));
    let later = |s: u64| t0 + Duration::from_secs(s);
    assert!(
        !w.check(&snapshot(gib(8.0 * 0.99), later(5)), 0.5, cooldown),
        "within the cooldown"
    );
    assert!(!w.check(&snapshot(gib(8.0 * 0.99), later(9)), 0.5, cooldown));
    assert!(
        w.check(&snapshot(gib(8.0 * 0.99), later(10)), 0.5, cooldown),
        "after it"
    );
    assert!(!w.check(&snapshot(gib(8.0 * 0.5), later(30)), 0.5, cooldown));
}

#[test]
fn the_reserve_ratio_moves_the_warning_line() {
    let t0 = Instant::now();
    let mut w = MemoryWarning::default();
    // reserve 0: the line is r·M itself (90 %).
    assert!(w.check(&snapshot((8u64 << 30) / 100 * 91, t0), 0.0, Duration::ZERO));
    let mut w = MemoryWarning::default();
    // reserve 1: the line is M (100 %).
    assert!(!w.check(&snapshot((8u64 << 30) / 100 * 99, t0), 1.0, Duration::ZERO));
}
