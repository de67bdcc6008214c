//! Scenarios 5 and 6: the layer's machine gates under a CPU hog and under
//! event-loop starvation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tower_snapshotter::{Config, GatePolicy, Resources, SnapshotLayer};

use crate::clients::{client, snapshotter, Variant};
use crate::load::drive;
use crate::report::{print_row, shown, Row};
use crate::server::{server, Behaviour};

/// Time from `t0` until the layer's gate holds `resource`, polled each
/// 10 ms for up to `limit`.
async fn gate_closes(
    layer: &SnapshotLayer,
    resource: Resources,
    t0: Instant,
    limit: Duration,
) -> Option<f64> {
    while t0.elapsed() < limit {
        if layer.stats().gate.contains(resource) {
            return Some(t0.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// 5. Busy threads saturate both cores.
pub(crate) async fn cpu_hog() {
    let config = Config::builder()
        .system_info_interval(Duration::from_millis(250))
        .build()
        .expect("config");
    let s = snapshotter(config);
    let srv = server(Behaviour::Fast).await;
    let (svc, layer) = client(Variant::Policy(GatePolicy::Wait), &s);
    let Some(layer) = layer else { return };
    // Moderate load first: 200 requests/s for 4 s, watching for false gates.
    let watch = {
        let layer = layer.clone();
        tokio::spawn(async move {
            let mut false_gate = false;
            for _ in 0..400 {
                false_gate |= layer.stats().gate.contains(Resources::CPU);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            false_gate
        })
    };
    drive(
        svc.clone(),
        vec![(0, format!("http://{}/", srv.addr))],
        |_| 200.0,
        Duration::from_secs(4),
    )
    .await;
    let false_gate = watch.await.unwrap_or(true);
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..std::thread::available_parallelism().map_or(2, |n| n.get()))
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    let closed = gate_closes(&layer, Resources::CPU, t0, Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        let _ = h.join();
    }
    let cpu = if s.unavailable().contains(Resources::CPU) {
        " (CPU probe unavailable)"
    } else {
        ""
    };
    print_row(&Row {
        scenario: "5 CPU hog (both cores)",
        variant: "wait".into(),
        goodput: "-".into(),
        share_429: "-".into(),
        react: shown(closed),
        recover: "-".into(),
        note: format!(
            "react: hog start to gate closed on CPU (sampling every 250 ms, window 5 s, threshold 0.4); false gate at 200 req/s before the hog: {}{cpu}",
            if false_gate { "yes" } else { "no" }
        ),
    });
}

/// 6. A task blocks the runtime 200 ms in every second.
pub(crate) async fn starvation() {
    let s = snapshotter(Config::default());
    let srv = server(Behaviour::Fast).await;
    let (svc, layer) = client(Variant::Policy(GatePolicy::Wait), &s);
    let Some(layer) = layer else { return };
    let stop = Arc::new(AtomicBool::new(false));
    let st = Arc::clone(&stop);
    let t0 = Instant::now();
    let blocker = tokio::spawn(async move {
        while !st.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
    });
    let load = tokio::spawn(drive(
        svc,
        vec![(0, format!("http://{}/", srv.addr))],
        |_| 200.0,
        Duration::from_secs(8),
    ));
    let detected = gate_closes(&layer, Resources::EVENT_LOOP, t0, Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = blocker.await;
    let _ = load.await;
    print_row(&Row {
        scenario: "6 event-loop starvation (200 ms/s)",
        variant: "wait".into(),
        goodput: "-".into(),
        share_429: "-".into(),
        react: shown(detected),
        recover: "-".into(),
        note: "react: first block to gate closed on the event loop (snapshot every 500 ms, > 50 ms late, 0.6 of 5 s)".into(),
    });
}
