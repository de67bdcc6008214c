//! The Snapshotter and SystemStatus under tokio's paused clock, with fake
//! probes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tower_snapshotter::probe::{CpuProbe, MemoryProbe, MemoryReading, ProbeError};
use tower_snapshotter::snapshot::Snapshot;
use tower_snapshotter::status::overloaded_ratio;
use tower_snapshotter::{Config, LoadRatioInfo, NotActive, Resources, Snapshotter, StartError};

/// CPU readings set by the test (an f64 in an atomic); fails while `broken`.
#[derive(Clone, Default)]
struct FakeCpu {
    bits: Arc<AtomicU64>,
    broken: Arc<AtomicBool>,
}

impl FakeCpu {
    fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Ordering::SeqCst);
    }
}

impl CpuProbe for FakeCpu {
    fn used_ratio(&mut self) -> Result<f64, ProbeError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(ProbeError::new("fake", "unreadable"));
        }
        Ok(f64::from_bits(self.bits.load(Ordering::SeqCst)))
    }
}

/// Memory readings: `used` bytes against a `limit` the test moves.
#[derive(Clone)]
struct FakeMemory {
    used: Arc<AtomicU64>,
    limit: Arc<AtomicU64>,
}

impl MemoryProbe for FakeMemory {
    fn read(&mut self) -> Result<MemoryReading, ProbeError> {
        let limit = self.limit.load(Ordering::SeqCst);
        Ok(MemoryReading {
            current_size: self.used.load(Ordering::SeqCst),
            limit,
            system_wide_used_size: Some(0),
            system_wide_memory_size: Some(limit),
        })
    }
}

fn memory(used: u64, limit: u64) -> FakeMemory {
    FakeMemory {
        used: Arc::new(AtomicU64::new(used)),
        limit: Arc::new(AtomicU64::new(limit)),
    }
}

fn with(config: Config) -> (Snapshotter, FakeCpu, FakeMemory) {
    let cpu = FakeCpu::default();
    let mem = memory(1, 1 << 30);
    (
        Snapshotter::with_probes(config, cpu.clone(), mem.clone()),
        cpu,
        mem,
    )
}

/// Lets the sampler run up to `d` of paused time.
async fn run_for(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(start_paused = true)]
async fn lifecycle_errors_as_in_crawlee() {
    let (s, _, _) = with(Config::default());
    assert_eq!(
        s.cpu_sample(None),
        Err(NotActive),
        "reading an inactive snapshotter"
    );
    assert_eq!(s.stop(), Err(NotActive));
    s.start().unwrap();
    assert!(s.is_active());
    assert_eq!(s.start(), Err(StartError::AlreadyActive));
    run_for(Duration::from_secs(3)).await;
    assert!(!s.cpu_sample(None).unwrap().is_empty());
    s.stop().unwrap();
    assert!(!s.is_active());
    assert_eq!(s.event_loop_sample(None), Err(NotActive));
    // A restart begins with empty windows.
    s.start().unwrap();
    assert_eq!(s.cpu_sample(None).unwrap().len(), 0);
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let (s, _, _) = with(Config::default());
    assert_eq!(s.start(), Err(StartError::NoRuntime));
}

#[tokio::test(start_paused = true)]
async fn event_loop_snapshots_every_interval_first_with_no_delay() {
    let (s, _, _) = with(Config::default());
    s.start().unwrap();
    run_for(Duration::from_millis(2100)).await;
    let sample = s.event_loop_sample(None).unwrap();
    assert_eq!(sample.len(), 5, "at 0, 0.5, 1, 1.5 and 2 s");
    assert_eq!(sample[0].delay, Duration::ZERO);
    assert!(
        sample.iter().all(|e| !e.is_overloaded()),
        "paused time never runs late"
    );
}

#[tokio::test(start_paused = true)]
async fn client_deltas_zero_one_two_four_with_a_limit_of_one() {
    let (s, _, _) = with(Config::builder().max_client_errors(1).build().unwrap());
    let rec = s.client_recorder();
    s.start().unwrap();
    // Snapshots at 0, 1, 2, 3 s; errors reach 1, 2, 4 in between.
    run_for(Duration::from_millis(500)).await;
    rec.record_error();
    run_for(Duration::from_secs(1)).await;
    rec.record_error();
    run_for(Duration::from_secs(1)).await;
    rec.record_error();
    rec.record_error();
    run_for(Duration::from_secs(1)).await;
    let sample = s.client_sample(None).unwrap();
    let counts: Vec<_> = sample
        .iter()
        .map(|c| (c.error_count, c.new_error_count))
        .collect();
    assert_eq!(counts, [(0, 0), (1, 1), (2, 1), (4, 2)]);
    let flags: Vec<_> = sample.iter().map(|c| c.is_overloaded()).collect();
    assert_eq!(
        flags,
        [false, false, false, true],
        "only more than one new error overloads"
    );
}

#[tokio::test(start_paused = true)]
async fn cpu_samples_of_several_durations() {
    let (s, cpu, _) = with(Config::default());
    cpu.set(0.1);
    s.start().unwrap();
    run_for(Duration::from_millis(5500)).await; // CPU at 1, 2, 3, 4, 5 s
    assert_eq!(s.cpu_sample(None).unwrap().len(), 5);
    assert_eq!(s.cpu_sample(Some(Duration::from_millis(2500))).unwrap().len(), 3);
    assert_eq!(s.cpu_sample(Some(Duration::from_millis(500))).unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn current_versus_historical_on_cpu_readings() {
    // Crawlee's case: 0.6, 0.7, 0.8, 0.9 against a limit of 0.75.
    let (s, cpu, _) = with(Config::builder().max_used_cpu_ratio(0.75).build().unwrap());
    let status = s.system_status();
    s.start().unwrap();
    // Readings at 1, 2, 3 and 4 s; each value is set half a second before.
    run_for(Duration::from_millis(500)).await;
    for v in [0.6, 0.7, 0.8, 0.9] {
        cpu.set(v);
        run_for(Duration::from_secs(1)).await;
    }
    let sample = s.cpu_sample(None).unwrap();
    let used: Vec<f64> = sample.iter().map(|c| c.used_ratio).collect();
    assert_eq!(used, [0.6, 0.7, 0.8, 0.9]);
    assert_eq!(overloaded_ratio(&sample), 0.667);
    assert_eq!(status.historical().unwrap().cpu.actual_ratio, 0.667);
    assert!(status.historical().unwrap().cpu.is_overloaded(), "0.667 > 0.4");
    let reversed: Vec<_> = sample
        .iter()
        .zip(sample.iter().rev())
        .map(|(at, v)| tower_snapshotter::snapshot::CpuSnapshot {
            created_at: at.created_at,
            ..*v
        })
        .collect();
    assert_eq!(overloaded_ratio(&reversed), 0.333);
    // Ten calm seconds later the current window (5 s) is clear while the
    // historical one (30 s) still remembers.
    cpu.set(0.1);
    run_for(Duration::from_secs(10)).await;
    let (current, historical) = (status.current().unwrap(), status.historical().unwrap());
    assert_eq!(current.cpu.actual_ratio, 0.0);
    assert!(historical.cpu.actual_ratio > 0.0);
    assert!(current.is_system_idle());
}

#[test]
fn thresholds_are_strict() {
    let info = |limit| LoadRatioInfo {
        limit_ratio: limit,
        actual_ratio: 0.667,
    };
    assert!(info(0.66).is_overloaded(), "2/3 is above 0.66");
    assert!(!info(0.67).is_overloaded(), "2/3 is not above 0.67");
    assert!(!info(0.667).is_overloaded(), "equal is not above");
}

#[tokio::test(start_paused = true)]
async fn the_verdict_follows_the_current_window_and_notifies_changes() {
    let (s, cpu, _) = with(Config::default());
    let mut rx = s.subscribe();
    s.start().unwrap();
    run_for(Duration::from_secs(3)).await;
    assert!(s.overloaded().is_empty());
    cpu.set(1.0);
    tokio::time::timeout(Duration::from_secs(10), rx.changed())
        .await
        .expect("notified within the window")
        .unwrap();
    assert!(s.overloaded().contains(Resources::CPU));
    assert_eq!(s.verdict().overloaded, Resources::CPU);
    cpu.set(0.0);
    tokio::time::timeout(Duration::from_secs(10), rx.changed())
        .await
        .expect("notified when it clears")
        .unwrap();
    assert!(s.overloaded().is_empty());
}

#[tokio::test(start_paused = true)]
async fn dynamic_memory_limit_follows_the_probe_fixed_does_not() {
    // Used 0.6 GiB of a 1 GiB limit: budget 0.25 GiB, overloaded.
    let mem = memory(600 << 20, 1 << 30);
    let s = Snapshotter::with_probes(Config::default(), FakeCpu::default(), mem.clone());
    s.start().unwrap();
    run_for(Duration::from_millis(1500)).await;
    let m = *s.memory_sample(None).unwrap().last().unwrap();
    assert_eq!(m.max_memory_size, 256 << 20);
    assert!(m.is_overloaded());
    // The limit grows (a burstable pod): the budget follows.
    mem.limit.store(4 << 30, Ordering::SeqCst);
    run_for(Duration::from_secs(1)).await;
    let m = *s.memory_sample(None).unwrap().last().unwrap();
    assert_eq!(m.max_memory_size, 1 << 30);
    assert!(!m.is_overloaded());

    let fixed = Config::builder()
        .max_memory_size(Some(256 << 20))
        .build()
        .unwrap();
    let mem = memory(600 << 20, 1 << 30);
    let s = Snapshotter::with_probes(fixed, FakeCpu::default(), mem.clone());
    s.start().unwrap();
    run_for(Duration::from_millis(1500)).await;
    mem.limit.store(4 << 30, Ordering::SeqCst);
    run_for(Duration::from_secs(1)).await;
    let m = *s.memory_sample(None).unwrap().last().unwrap();
    assert_eq!(m.max_memory_size, 256 << 20, "a fixed budget does not move");
    assert!(m.is_overloaded());
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_probe_marks_its_resource_unavailable_until_it_recovers() {
    let (s, cpu, _) = with(Config::default());
    cpu.broken.store(true, Ordering::SeqCst);
    s.start().unwrap();
    run_for(Duration::from_millis(2500)).await;
    assert!(s.unavailable().contains(Resources::CPU));
    assert!(
        !s.unavailable().contains(Resources::MEMORY),
        "the other probe goes on"
    );
    assert!(s.cpu_sample(None).unwrap().is_empty());
    assert_eq!(s.memory_sample(None).unwrap().len(), 2);
    cpu.broken.store(false, Ordering::SeqCst);
    run_for(Duration::from_secs(1)).await;
    assert!(s.unavailable().is_empty());
    assert_eq!(s.cpu_sample(None).unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_background_work_outlives_the_last_handle() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let (s, _, _) = with(Config::default());
    s.start().unwrap();
    let clone = s.clone();
    drop(s);
    run_for(Duration::from_secs(2)).await;
    assert!(
        metrics.num_alive_tasks() > baseline,
        "a clone keeps sampling alive"
    );
    assert!(!clone.event_loop_sample(None).unwrap().is_empty());
    drop(clone);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    run_for(Duration::from_millis(10)).await;
    assert_eq!(metrics.num_alive_tasks(), baseline);
}
