//! Tests of `host.rs`: the lease arithmetic, the bounded map of names, and
//! when a host asks for a sync.

use super::*;

const IDLE: Duration = Duration::from_secs(5);
const WAIT: Duration = Duration::from_millis(100);

#[test]
fn names_fold_case_and_the_map_is_capped() {
    let hosts = Hosts::new("ns", 2);
    let now = Instant::now();
    let ((), new) = hosts.with("A.example", now, IDLE, |_| ());
    assert!(new);
    let ((), new) = hosts.with("a.example", now, IDLE, |_| ());
    assert!(!new);
    assert_eq!(hosts.peek("a.example").unwrap().keys.tat, "ns:{a.example}:tat");
    hosts.with("b.example", now, IDLE, |_| ());
    hosts.with("c.example", now, IDLE, |_| ());
    assert_eq!(hosts.len(), 2);
    assert!(hosts.peek("a.example").is_none());
}

#[test]
fn idle_hosts_ask_for_a_sync() {
    let hosts = Hosts::new("ns", 8);
    let t0 = Instant::now();
    hosts.with("h", t0, IDLE, |st| st.needs_sync = false);
    let ((), stale) = hosts.with("h", t0 + IDLE, IDLE, |st| assert!(!st.needs_sync));
    assert!(!stale);
    let ((), stale) = hosts.with("h", t0 + IDLE * 3, IDLE, |st| assert!(st.needs_sync));
    assert!(stale);
    assert_eq!(hosts.active(t0 + IDLE * 3, IDLE).len(), 1);
    assert_eq!(hosts.active(t0 + IDLE * 5, IDLE).len(), 0);
}

#[test]
fn starving_asks_once_then_leases_a_full_batch() {
    let mut st = HostState::default();
    let t0 = Instant::now();
    let rtt = Duration::from_micros(300);
    let (slot, wake) = st.try_send(100.0, t0, rtt, WAIT);
    assert_eq!(slot, Slot::WaitUntil(t0 + Duration::from_millis(1)));
    assert!(wake);
    let (_, wake) = st.try_send(100.0, t0, rtt, WAIT);
    assert!(!wake, "one wake per hunger");
    st.procs = 2;
    // 200 ms × 100/s ÷ 2 processes.
    assert_eq!(
        st.lease_wanted(t0, Duration::from_millis(200), Duration::ZERO),
        Some(10)
    );
    st.leasing();
    assert!(st.in_flight);
    st.in_flight = false;
    st.hungry = false;
    st.slots.add(t0, 10, Duration::from_millis(10));
    assert_eq!(st.try_send(100.0, t0, rtt, WAIT).0, Slot::Granted);
    // Nine held: no lease until fewer than half a batch are left, plus
    // what the pace (50/s) spends before the next look.
    let lease = Duration::from_millis(200);
    assert_eq!(st.lease_wanted(t0, lease, Duration::ZERO), None);
    assert_eq!(
        st.lease_wanted(t0, lease, Duration::from_millis(100)),
        Some(10),
        "five spent before a look 100 ms away: 5 + 5 > 9"
    );
    assert_eq!(
        st.lease_wanted(t0 + Duration::from_millis(80), lease, Duration::ZERO),
        Some(10)
    );
    st.next_lease = Some(t0 + Duration::from_secs(1));
    assert_eq!(
        st.lease_wanted(t0 + Duration::from_millis(80), lease, Duration::ZERO),
        None
    );
}

#[test]
fn waits_are_capped_and_a_cut_drops_the_slots_held() {
    let mut st = HostState::default();
    let t0 = Instant::now();
    let rtt = Duration::from_micros(300);
    st.rate = 100.0;
    st.demand = true;
    st.leasing();
    st.in_flight = false;
    st.slots
        .add(t0 + Duration::from_secs(1), 5, Duration::from_millis(10));
    assert_eq!(st.try_send(100.0, t0, rtt, WAIT).0, Slot::WaitUntil(t0 + WAIT));
    assert_eq!(st.try_send(95.0, t0, rtt, WAIT).0, Slot::WaitUntil(t0 + WAIT));
    assert_eq!(st.slots.remaining(t0), 5, "a small change keeps the slots");
    let (slot, wake) = st.try_send(50.0, t0, rtt, WAIT);
    assert_eq!(st.slots.remaining(t0), 0, "a cut drops them");
    assert_eq!(slot, Slot::WaitUntil(t0 + Duration::from_millis(1)));
    assert!(wake);
}

#[test]
fn no_rate_or_no_demand_leases_nothing() {
    let mut st = HostState::default();
    let t0 = Instant::now();
    assert_eq!(
        st.lease_wanted(t0, Duration::from_millis(200), Duration::ZERO),
        None
    );
    st.demand = true;
    st.rate = f64::NAN;
    assert_eq!(
        st.lease_wanted(t0, Duration::from_millis(200), Duration::ZERO),
        None
    );
    st.rate = 1e12;
    // Capped at MAX_RATE.
    assert_eq!(
        st.lease_wanted(t0, Duration::from_millis(200), Duration::ZERO),
        Some(20_000)
    );
}
