//! What a script's answer does to its host's entry (`apply`), and what
//! a failed call puts back for the next round (`undo`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::Value;
use tokio::time::Instant;

use super::{Job, Task, CYCLE_LATE_READ, CYCLE_LATE_US, MAX_PAUSE_MS};
use crate::fleet::answers::FleetLoad;
use crate::fleet::cycle::{merge, CycleRecord};
use crate::fleet::host::{HostEntry, MAX_RATE};
use crate::fleet::learned::unix_ms;
use crate::fleet::script::{int, LeaseReply};

impl Task {
    pub(super) fn apply(&self, entry: &HostEntry, job: Job, value: &Value, sent: Instant, got: Instant) {
        let mut st = entry.lock();
        match job {
            Job::Lease { want, rate, .. } => {
                st.in_flight = false;
                st.hungry = false;
                st.needs_sync = false;
                st.synced = Some(got);
                let Some(r) = LeaseReply::parse(value) else {
                    return;
                };
                // Only a lease sums the paces: a read leaves the load as it was.
                if r.paces > 0.0 {
                    st.load = FleetLoad::from_buckets(&r.spans, r.through, r.paces);
                }
                if r.granted > 0 {
                    // The server's now lies between sending and receiving.
                    let mid = sent + (got - sent) / 2;
                    // The fleet's schedule grants a run of slots at its
                    // own interval (the whole host's, with room); this
                    // process spends them at its caller's pace (the host's
                    // rate over its share). At the host's interval
                    // a batch would be due within a fraction of the lease,
                    // faster than the pace can spend, and most of it would
                    // expire unspent. With the room, a tenth of every batch
                    // would, and the processes together would lease the
                    // whole schedule: it would run ahead of the server's
                    // clock by its lookahead, and each new batch would
                    // start that far in the future, after the one before
                    // ran out.
                    let procs = f64::from(r.procs.max(1));
                    let interval = Duration::from_secs_f64(procs / rate.min(MAX_RATE));
                    if st
                        .slots
                        .add(mid + Duration::from_micros(r.start_us), r.granted, interval)
                    {
                        self.inner
                            .counters
                            .leased
                            .fetch_add(u64::from(r.granted), Ordering::Relaxed);
                    }
                }
                if want > 0 {
                    st.next_lease = (r.wait_us > 0).then(|| got + Duration::from_micros(r.wait_us));
                }
                // While the fleet re-forms after a rejoin, the processes
                // come back one lease at a time: the count does not fall
                // below the one before (the gone expire once it has formed).
                st.procs = if st.forming(got) {
                    st.procs.max(r.procs)
                } else {
                    r.procs
                };
                let wall = unix_ms(SystemTime::now());
                if r.pause_ms <= wall + MAX_PAUSE_MS {
                    st.merge_pause(r.pause_ms);
                }
                st.epoch_ms = st.epoch_ms.max(r.epoch_ms);
                if let Some((rate, measured)) = r.learned {
                    st.merge_learned(rate, measured, r.last_loss_ms);
                } else {
                    st.last_loss_ms = st.last_loss_ms.max(r.last_loss_ms);
                }
            }
            Job::Pause { .. } => {
                if let Some(until) = int(value) {
                    st.merge_pause(until.max(0) as u64);
                }
            }
            Job::Learn(_) => {
                if let Some(loss) = int(value) {
                    st.last_loss_ms = st.last_loss_ms.max(loss.max(0) as u64);
                }
            }
            Job::Epoch => {
                if let Value::Array(items) = value {
                    if let Some(at) = items.get(1).and_then(int) {
                        let at = at.max(0) as u64;
                        st.epoch_ms = st.epoch_ms.max(at);
                        st.last_loss_ms = st.last_loss_ms.max(at);
                    }
                }
            }
            Job::CyclePut(_) => {}
            Job::CycleGet { own_end_us, reads } => {
                // Fields that are not records are bad data: left out.
                let records: Vec<CycleRecord> = match value {
                    Value::Array(items) => items
                        .iter()
                        .filter_map(|v| match v {
                            Value::BulkString(b) => CycleRecord::decode(b),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let window = self.inner.cycle_window().as_micros() as u64;
                let seq = st.cycles_merged + 1;
                let merged = merge(seq, own_end_us, window, CYCLE_LATE_US, &records);
                // The late read (no reads left): the cycle merged a second
                // ago, again, only if records came since (the fits of the
                // merges without them lay up to 6 % apart in one fleet).
                let again = reads == 0;
                let merged = merged.filter(|c| {
                    !again
                        || st
                            .cycle
                            .as_ref()
                            .is_some_and(|was| was.end_us == c.end_us && c.processes > was.processes)
                });
                if !again && merged.as_ref().is_some_and(|c| c.processes < st.procs as usize) && reads > 1 {
                    // A live process has not published its cycle yet: it
                    // heard of the pause late, or its task is slow.
                    st.cycle_read = Some((got + self.inner.config.refresh(), own_end_us, reads - 1));
                } else if let Some(mut cycle) = merged {
                    cycle.complete = st.procs > 0 && cycle.processes >= st.procs as usize;
                    cycle.replaces = again;
                    st.cycles_merged = seq;
                    st.cycle = Some(Arc::new(cycle));
                    self.inner.counters.cycles_merged.fetch_add(1, Ordering::Relaxed);
                    if again {
                        self.inner
                            .counters
                            .cycles_remerged
                            .fetch_add(1, Ordering::Relaxed);
                    } else {
                        st.cycle_read = Some((got + CYCLE_LATE_READ, own_end_us, 0));
                    }
                }
            }
        }
    }
}

/// Puts back what a failed call was to send, so it goes after the rejoin.
/// Epoch claims are dropped: by then the burst they were about is over.
pub(super) fn undo(entry: &HostEntry, job: Job) {
    let mut st = entry.lock();
    match job {
        Job::Lease { report, .. } => {
            st.in_flight = false;
            st.tally.restore(report);
        }
        Job::Pause { until_ms } => st.pause_pending = st.pause_pending.max(until_ms),
        Job::Learn(l) => {
            if st.learned_pending.is_none() {
                st.learned_pending = Some(l);
            }
        }
        Job::Epoch => {}
        Job::CyclePut(record) => {
            if st.cycle_pending.is_none() {
                st.cycle_pending = Some(record);
            }
        }
        // Too late to be of use after a rejoin: the next cycle's read is.
        Job::CycleGet { .. } => {}
    }
}
