//! The depths (requests in flight at send) of a host's successes and
//! losses: what tells a limit on requests in flight from a rate limiter.

/// The depths (requests in flight at send) that successes and losses were
/// sent at, as moving averages. A rate limiter refuses whatever the depth,
/// so both average alike; a limit on requests in flight (nginx's
/// `limit_conn`, a server out of workers) refuses only past it.
/// NaN until the first (an `Option<f32>` each took eight bytes more of a
/// host's state, which a test bounds).
#[derive(Debug, Clone, Copy)]
pub(super) struct Depths {
    ok: f32,
    lost: f32,
}

/// How much one success moves the successes' mean: slowly, over about
/// fifty of them.
const OK_WEIGHT: f32 = 0.02;
/// How much one loss moves the losses' mean: losses are fewer, and each
/// says more.
const LOST_WEIGHT: f32 = 0.2;

impl Default for Depths {
    fn default() -> Self {
        Self {
            ok: f32::NAN,
            lost: f32::NAN,
        }
    }
}

impl Depths {
    /// A success of a request sent at `depth`.
    pub(super) fn success_at(&mut self, depth: usize) {
        Self::add(&mut self.ok, depth, OK_WEIGHT);
    }

    /// A loss of a request sent at `depth`.
    pub(super) fn loss_at(&mut self, depth: usize) {
        Self::add(&mut self.lost, depth, LOST_WEIGHT);
    }

    fn add(mean: &mut f32, depth: usize, weight: f32) {
        let d = depth as f32;
        *mean = if mean.is_nan() {
            d
        } else {
            *mean + weight * (d - *mean)
        };
    }

    /// Whether losses come from deeper than successes, and this one at
    /// `depth` too: past one request and a tenth, beyond the jitter of
    /// counting in-flight requests at the client. A refusal at a depth
    /// that succeeds is not a limit on requests in flight, whatever the
    /// average of the refusals before it says.
    pub(super) fn losses_follow_depth(&self, depth: usize) -> bool {
        // NaN compares false: no verdict before both are seen.
        let (ok, lost) = (self.ok, self.lost);
        let past = ok + (0.1 * ok).max(1.0);
        lost > past && depth as f32 > past
    }
}
