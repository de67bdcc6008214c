//! The `metrics` feature: what the layer and the snapshotter report, read
//! back from `metrics-util`'s `DebuggingRecorder`, against real hyper
//! servers on loopback under tokio's paused clock.
//!
//! Each test installs its own recorder for its thread
//! (`metrics::with_local_recorder`) and runs a current-thread runtime inside
//! it, so the layer (built in the test), the server, the client and the
//! snapshotter's sampler all register with that recorder and tests do not
//! share one.

#![cfg(feature = "metrics")]

#[path = "../common/mod.rs"]
mod common;

mod counters;
mod gauges;
mod host_labels;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use common::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter as Recorded};
use metrics_util::MetricKind;

/// A metric's labels, sorted.
type Labels = Vec<(String, String)>;

/// What the recorder holds, read at chosen instants. Counters add up over
/// reads; a gauge keeps the value of the latest read (the debugging
/// recorder zeroes both when read, and the layer sets its gauges at each
/// client snapshot, every 100 ms with the tests' configuration).
struct Metrics {
    recorded: Recorded,
    counters: HashMap<(MetricKind, String, Labels), u64>,
    gauges: HashMap<(String, Labels), f64>,
    described: Vec<String>,
}

impl Metrics {
    fn new(recorded: Recorded) -> Self {
        Self {
            recorded,
            counters: HashMap::new(),
            gauges: HashMap::new(),
            described: Vec::new(),
        }
    }

    /// Lets 250 ms of tokio time pass (two client snapshots at least), then
    /// reads the recorder.
    async fn observe(&mut self) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        self.read();
    }

    fn read(&mut self) {
        self.gauges.clear();
        for (key, _unit, description, value) in self.recorded.snapshot().into_vec() {
            let (kind, key) = key.into_parts();
            let name = key.name().to_owned();
            let mut labels: Labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            if description.is_some() && !self.described.contains(&name) {
                self.described.push(name.clone());
            }
            match value {
                DebugValue::Counter(n) => *self.counters.entry((kind, name, labels)).or_default() += n,
                DebugValue::Gauge(g) => {
                    self.gauges.insert((name, labels), g.0);
                }
                DebugValue::Histogram(_) => panic!("no histogram expected: {name}"),
            }
        }
    }

    /// A counter's total so far; panics if it was never registered.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let key = (MetricKind::Counter, name.to_owned(), labels_of(labels));
        *self
            .counters
            .get(&key)
            .unwrap_or_else(|| panic!("no counter {key:?} in {:?}", self.counters.keys()))
    }

    /// A gauge's value at the latest read; panics if it was never registered.
    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = (name.to_owned(), labels_of(labels));
        *self
            .gauges
            .get(&key)
            .unwrap_or_else(|| panic!("no gauge {key:?} in {:?}", self.gauges.keys()))
    }

    /// The label sets registered under `name`, counters and gauges.
    fn label_sets(&self, name: &str) -> Vec<Labels> {
        let mut sets: Vec<Labels> = self
            .counters
            .keys()
            .filter(|(_, n, _)| n == name)
            .map(|(_, _, l)| l.clone())
            .chain(
                self.gauges
                    .keys()
                    .filter(|(n, _)| n == name)
                    .map(|(_, l)| l.clone()),
            )
            .collect();
        sets.sort();
        sets
    }
}

fn labels_of(labels: &[(&str, &str)]) -> Labels {
    let mut l: Labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    l.sort();
    l
}

/// Runs `body` under tokio's paused clock, on a current-thread runtime,
/// with a fresh `DebuggingRecorder` installed for this thread.
fn run<F, Fut>(body: F)
where
    F: FnOnce(Metrics) -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let metrics = Metrics::new(recorder.snapshotter());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || rt.block_on(bounded(body(metrics))));
}
