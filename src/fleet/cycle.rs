//! Sending cycles shared by the fleet: each process's send times in the
//! cycle a refusal with `Retry-After` ended, merged into the fleet's.
//!
//! A GCRA counts every process's requests. Fitted to one process's sends
//! alone, two cycles give that process's share of the rate, but a share
//! of a tenth sees a tenth of the burst: an excess of five requests, read
//! to the request, is a fit to 10 or 20 %, and four processes together
//! settled anywhere from 89 % to 101 % of the rate. Fitted to the fleet's
//! sends, every process finds the same rate, to a fraction of a percent,
//! and paces its share of it.
//!
//! Each process publishes its latest cycle under its id in the host's
//! `cycles` hash; a little later (once every process saw the pause) it
//! reads them all and merges those that ended with its own.

pub(crate) use crate::layer::adaptive::FleetCycle;

/// The most send times a record holds (the latest).
pub(crate) const MAX_SENDS: usize = 4096;
/// A send longer than this before its cycle's end is garbage: an hour, µs.
const MAX_BEFORE_END_US: u64 = 3_600_000_000;

/// One process's cycle: when it ended and what it sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CycleRecord {
    /// When the cycle ended: Unix µs.
    pub(crate) end_us: u64,
    /// It ended at this process's own refusal (the refused request's send
    /// time), not at a pause another process started.
    pub(crate) told: bool,
    /// A GCRA could have ended it (no refusal without `Retry-After` came
    /// before its end).
    pub(crate) fits: bool,
    /// Send times before the end, µs, in ascending order of time (so
    /// descending values).
    pub(crate) before_end_us: Vec<u64>,
}

impl CycleRecord {
    /// The record from send times in seconds relative to the end (the
    /// controller's log: ascending, at most 0).
    pub(crate) fn from_log(end_us: u64, told: bool, fits: bool, log: &[f32]) -> Self {
        let start = log.len().saturating_sub(MAX_SENDS);
        let before_end_us = log[start..]
            .iter()
            .map(|&t| (f64::from(-t).max(0.0) * 1e6).round() as u64)
            .collect();
        Self {
            end_us,
            told,
            fits,
            before_end_us,
        }
    }

    /// `<end µs> <told 0|1> <fits 0|1> <µs before end>…`: text, so a script
    /// can read the end, and short enough (4096 sends are some 30 KiB).
    pub(crate) fn encode(&self) -> String {
        let mut s = format!("{} {} {}", self.end_us, u8::from(self.told), u8::from(self.fits));
        for t in &self.before_end_us {
            s.push(' ');
            s.push_str(&t.to_string());
        }
        s
    }

    /// The record in `text`, or `None` for anything else: a field is bad
    /// data when any part of it is.
    pub(crate) fn decode(text: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(text).ok()?;
        let mut parts = text.split(' ');
        let end_us = parts.next()?.parse().ok()?;
        let flag = |p: Option<&str>| match p {
            Some("0") => Some(false),
            Some("1") => Some(true),
            _ => None,
        };
        let told = flag(parts.next())?;
        let fits = flag(parts.next())?;
        let before_end_us = parts
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<Vec<u64>>>()?;
        let ordered = before_end_us.windows(2).all(|w| w[0] >= w[1]);
        let plausible = before_end_us
            .first()
            .is_none_or(|&b| b <= MAX_BEFORE_END_US.min(end_us));
        (ordered && plausible && before_end_us.len() <= MAX_SENDS).then_some(Self {
            end_us,
            told,
            fits,
            before_end_us,
        })
    }
}

/// Merges the records of one pause into the fleet's cycle. It ends at the
/// earliest refusal that ended a record from `late_us` before `own_end_us`
/// to `window_us` after it (a process paused by another's refusal stopped
/// later: a round trip, or until its next request, which its pace may
/// have held back), and holds the records that ended from `window_us`
/// before that to `window_us` after this process's end, and those the
/// pause ended (not their own refusal) up to `late_us` after it, so that
/// every process merges the same records. Sends after the
/// refusal are not part of the cycle, but for a record no GCRA could have
/// ended (the opening flood), whose later sends count at the end: the
/// flood's count bounds the burst. `None` when there is no record.
pub(crate) fn merge(
    seq: u64,
    own_end_us: u64,
    window_us: u64,
    late_us: u64,
    records: &[CycleRecord],
) -> Option<FleetCycle> {
    let end_us = records
        .iter()
        .filter(|r| {
            r.told
                && r.end_us.saturating_add(late_us) >= own_end_us
                && r.end_us <= own_end_us.saturating_add(window_us)
        })
        .map(|r| r.end_us)
        .min()
        .unwrap_or(own_end_us);
    // A record this pause ended, told of it up to `late_us` after its
    // refusal, is in the cycle whoever merges it: bounded by this
    // process's own end, a process that heard early left out the sends
    // of one that heard late, which merged them, and the two fitted
    // rates 6 % apart.
    let near: Vec<&CycleRecord> = records
        .iter()
        .filter(|r| {
            let heard_by = if r.told { 0 } else { end_us.saturating_add(late_us) };
            r.end_us.saturating_add(window_us) >= end_us
                && r.end_us <= own_end_us.max(end_us).saturating_add(window_us).max(heard_by)
        })
        .collect();
    if near.is_empty() {
        return None;
    }
    let mut log: Vec<f32> = near
        .iter()
        .flat_map(|r| {
            r.before_end_us.iter().filter_map(move |&b| {
                let at = r.end_us.checked_sub(b)?;
                // At or before the fleet's end. A cycle no GCRA could end
                // (the opening flood) keeps its later sends, at the end:
                // requests race, the server may have taken them before
                // the refused one, and what counts is how many it took.
                (at <= end_us || !r.fits).then(|| -(end_us.saturating_sub(at) as f64 / 1e6) as f32)
            })
        })
        .collect();
    log.sort_by(f32::total_cmp);
    if log.len() > MAX_SENDS {
        log.drain(..log.len() - MAX_SENDS);
    }
    Some(FleetCycle {
        seq,
        end_us,
        fits: near.iter().all(|r| r.fits),
        processes: near.len(),
        complete: false,
        replaces: false,
        log: log.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as a process publishes it.
    fn record(end_us: u64, told: bool, fits: bool, before_end_us: Vec<u64>) -> CycleRecord {
        CycleRecord {
            end_us,
            told,
            fits,
            before_end_us,
        }
    }

    #[test]
    fn a_record_survives_its_text_and_garbage_is_none() {
        let r = CycleRecord::from_log(1_700_000_000_000_000, true, false, &[-0.5, -0.25, 0.0]);
        assert_eq!(r.before_end_us, vec![500_000, 250_000, 0]);
        assert_eq!(CycleRecord::decode(r.encode().as_bytes()), Some(r));
        for bad in [
            "",
            "x 1 1",
            "5 2 1",
            "5 1 1 3 x",
            "5 1 1 1 2", // out of order
            "5 1 1 6",   // sent before the epoch
            "4000000000000 1 1 3600000001",
            "5 1",
        ] {
            assert_eq!(CycleRecord::decode(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(CycleRecord::decode(&[0xff, 0x20]), None);
        let long = format!("5 1 1{}", " 0".repeat(MAX_SENDS + 1));
        assert_eq!(CycleRecord::decode(long.as_bytes()), None);
    }

    #[test]
    fn a_flood_keeps_the_sends_after_the_refusal_at_the_end() {
        let s = 1_000_000u64;
        // Refused at 10 s; its flood sent once more 2 ms later (the
        // server may have taken that one first).
        let a = record(10 * s, true, false, vec![3_000, 1_000, 0]);
        let b = record(10 * s + 4_000, true, false, vec![6_000, 2_000]);
        let m = merge(1, b.end_us, 250_000, 1_000_000, &[a.clone(), b.clone()]).unwrap();
        assert_eq!(m.end_us, 10 * s);
        assert_eq!(&*m.log, &[-0.003, -0.002, -0.001, 0.0, 0.0]);
        // A paced cycle's sends after the refusal are left out.
        let paced = |r: CycleRecord| CycleRecord { fits: true, ..r };
        let m = merge(2, b.end_us, 250_000, 1_000_000, &[paced(a), paced(b)]).unwrap();
        assert_eq!(&*m.log, &[-0.003, -0.002, -0.001, 0.0]);
    }

    #[test]
    fn a_long_log_keeps_its_latest_sends() {
        let log: Vec<f32> = (0..MAX_SENDS + 10).rev().map(|i| -(i as f32) / 1000.0).collect();
        let r = CycleRecord::from_log(1, true, true, &log);
        assert_eq!(r.before_end_us.len(), MAX_SENDS);
        assert_eq!(r.before_end_us.last(), Some(&0));
    }

    #[test]
    fn records_merge_at_the_earliest_refusal_and_others_are_left_out() {
        let s = 1_000_000u64;
        // Refused at 10 s, with sends at 9.0 and 9.5 s.
        let a = record(10 * s, true, true, vec![s, s / 2, 0]);
        // Paused by it 20 ms later, having sent at 9.75 s and 10.01 s.
        let b = record(10 * s + 20_000, false, true, vec![270_000, 10_000]);
        // An old cycle of a third process.
        let c = record(3 * s, true, true, vec![0]);
        let m = merge(
            7,
            b.end_us,
            250_000,
            1_000_000,
            &[a.clone(), b.clone(), c.clone()],
        )
        .unwrap();
        assert_eq!(m.seq, 7);
        assert_eq!(m.end_us, 10 * s);
        assert_eq!(m.processes, 2);
        assert!(m.fits);
        assert_eq!(&*m.log, &[-1.0, -0.5, -0.25, 0.0]);
        // A process that heard of the pause 800 ms late, its sends held
        // back by its pace, merges the same cycle.
        let late = record(10 * s + 800_000, false, true, vec![]);
        let m = merge(
            7,
            late.end_us,
            250_000,
            1_000_000,
            &[a.clone(), b.clone(), c, late.clone()],
        )
        .unwrap();
        assert_eq!((m.end_us, m.processes), (10 * s, 3));
        assert_eq!(m.log.len(), 4);
        // And so does the process refused first: the late record is in
        // its merge too.
        let m = merge(
            7,
            a.end_us,
            250_000,
            1_000_000,
            &[a.clone(), b.clone(), late.clone()],
        )
        .unwrap();
        assert_eq!((m.end_us, m.processes), (10 * s, 3));
        // One record that a GCRA could not have ended spoils the merge.
        let spoilt = CycleRecord { fits: false, ..b };
        assert!(!merge(8, a.end_us, 250_000, 1_000_000, &[a, spoilt]).unwrap().fits);
        assert_eq!(merge(9, 50 * s, 250_000, 1_000_000, &[]), None);
        // Ends at the edge of the numbers overflow nothing.
        let edge = record(u64::MAX, true, true, vec![0]);
        let m = merge(10, u64::MAX - 1, 250_000, 1_000_000, std::slice::from_ref(&edge)).unwrap();
        assert_eq!(m.end_us, u64::MAX);
        assert_eq!(merge(11, 5, 250_000, 1_000_000, &[edge]), None);
    }
}
