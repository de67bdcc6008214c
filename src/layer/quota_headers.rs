//! Quota headers: the IETF httpapi `RateLimit` fields and the older
//! `X-RateLimit-*` ones, and a rate named outright (Spring Cloud
//! Gateway's bucket). Public through [`retry_after`](super::retry_after).

use std::str::Split;
use std::time::{Duration, SystemTime};

use http::header::HeaderMap;

/// A quota a server announced: `remaining` requests until `reset` from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests left in the window (`r`).
    pub remaining: u64,
    /// Time until the quota is restored (`t`).
    pub reset: Duration,
}

/// The tightest quota announced by the response headers, if any.
///
/// Reads the `RateLimit` field of draft-ietf-httpapi-ratelimit-headers in
/// its current form (`"default";r=50;t=30`, several policies separated by
/// commas), its draft-07 dictionary form (`limit=100, remaining=50,
/// reset=30`), and the older separate `RateLimit-Remaining` and
/// `RateLimit-Reset` fields. Of several policies, the one that allows the
/// lowest rate (`remaining / reset`) wins. A malformed field is ignored, as
/// the draft requires; nothing here panics.
///
/// ```
/// use std::time::Duration;
/// use http::HeaderMap;
/// use tower_snapshotter::retry_after::{rate_limit, Quota};
///
/// let mut h = HeaderMap::new();
/// h.insert("ratelimit", r#""burst";r=10;t=1, "daily";r=100;t=86400"#.parse().unwrap());
/// assert_eq!(rate_limit(&h), Some(Quota { remaining: 100, reset: Duration::from_secs(86400) }));
/// ```
pub fn rate_limit(headers: &HeaderMap) -> Option<Quota> {
    let mut best: Option<Quota> = None;
    let mut consider = |q: Quota| {
        let rate = |q: &Quota| q.remaining as f64 / q.reset.as_secs_f64().max(1.0);
        if best.as_ref().is_none_or(|b| rate(&q) < rate(b)) {
            best = Some(q);
        }
    };
    for value in headers.get_all("ratelimit") {
        let Ok(text) = value.to_str() else { continue };
        for member in text.split(',') {
            if let Some(q) = parse_policy(member) {
                consider(q);
            }
        }
        // Draft-07 dictionary: the members together form one policy.
        if let Some(q) = parse_dictionary(text) {
            consider(q);
        }
    }
    let int = |name: &str| {
        let v = headers.get(name)?.to_str().ok()?.trim();
        v.parse::<u64>().ok()
    };
    if let (Some(remaining), Some(reset)) = (int("ratelimit-remaining"), int("ratelimit-reset")) {
        consider(Quota {
            remaining,
            reset: Duration::from_secs(reset),
        });
    }
    best
}

/// A quota with the reset known to lie in `(reset_lo, reset_hi]` from now:
/// header values are whole seconds, so each answer narrows the instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuotaWindow {
    /// Requests left in the window.
    pub remaining: u64,
    /// The earliest the quota can be restored.
    pub reset_lo: Duration,
    /// The latest the quota can be restored.
    pub reset_hi: Duration,
    /// The reset was named as an instant (an epoch `X-RateLimit-Reset`),
    /// not as seconds from now: rounded to a whole second, it is off by
    /// the same fraction in every window of one server.
    pub epoch: bool,
}

/// Whether any header's name is one a quota is announced in: one pass
/// over the names, where reading them is eight lookups by name, each
/// parsing and hashing it. Most answers carry none.
pub(crate) fn names_a_quota(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with("ratelimit") || name.starts_with("x-ratelimit") || name.starts_with("x-rate-limit")
    })
}

/// Reset values at or above this are UTC epoch seconds, below it seconds
/// from now (2001-09-09: no delta is that long).
const EPOCH_THRESHOLD: f64 = 1e9;

/// Reset values at or above this are epochs in milliseconds (2001-09-09
/// again): no epoch in seconds is that large for thirty thousand years.
const EPOCH_MS_THRESHOLD: f64 = 1e12;

/// Resets farther than this (115 days) are garbage, and the quota with
/// them is ignored: no window of a real quota is that long.
const MAX_RESET_S: f64 = 1e7;

/// The tightest quota the headers announce, in any of the forms servers
/// send: the IETF `RateLimit` fields (see [`rate_limit`]), GitHub's and
/// X's `X-RateLimit-Remaining` / `X-Rate-Limit-Remaining` with a `-Reset`,
/// and Discord's fractional `X-RateLimit-Reset-After`. A reset in either
/// form that is as large as an epoch is one (Twitch names its
/// `Ratelimit-Reset` so), in seconds or, larger still, in milliseconds
/// (JavaScript's clock), told from a delta by its size and measured
/// against the `Date` header when there is one, else `now`. A remaining
/// count written as a decimal (Reddit's `598.0`) counts its whole
/// requests. Malformed fields, and resets farther than 115 days, are
/// ignored.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tower_snapshotter::retry_after::quota;
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let mut h = HeaderMap::new();
/// h.insert("x-ratelimit-remaining", "42".parse().unwrap());
/// h.insert("x-ratelimit-reset", "1700000010".parse().unwrap());
/// let q = quota(&h, now).unwrap();
/// assert_eq!(q.remaining, 42);
/// assert_eq!(q.reset_hi, Duration::from_secs(10));
/// ```
pub fn quota(headers: &HeaderMap, now: SystemTime) -> Option<QuotaWindow> {
    if !names_a_quota(headers) {
        return None;
    }
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    let reset = Reset {
        date: text("date"),
        now,
    };
    let ietf = rate_limit(headers).and_then(|q| reset.window(q.remaining, q.reset.as_secs_f64()));
    let remaining = text("x-ratelimit-remaining")
        .or_else(|| text("x-rate-limit-remaining"))
        .and_then(count);
    let x = remaining.and_then(|remaining| {
        if let Some(after) = text("x-ratelimit-reset-after").and_then(non_negative) {
            return reset.exact(remaining, after);
        }
        let v = text("x-ratelimit-reset")
            .or_else(|| text("x-rate-limit-reset"))
            .and_then(non_negative)?;
        reset.window(remaining, v)
    });
    let rate = |q: &QuotaWindow| q.remaining as f64 / q.reset_hi.as_secs_f64().max(1.0);
    match (ietf, x) {
        (Some(a), Some(b)) => Some(if rate(&b) < rate(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// A count of requests: a whole number, or a decimal whose whole part
/// counts.
fn count(v: &str) -> Option<u64> {
    v.parse::<u64>()
        .ok()
        .or_else(|| non_negative(v).map(|x| x as u64))
}

/// A finite number, zero or more (seconds, milliseconds, a count).
pub(super) fn non_negative(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0)
}

/// Reads a reset named in seconds, for one answer.
struct Reset<'a> {
    /// The answer's `Date` (whole seconds), read only for an epoch.
    date: Option<&'a str>,
    now: SystemTime,
}

impl Reset<'_> {
    /// `remaining` until a reset of `v` whole seconds: from now, or an
    /// epoch when it is that large (against `Date`, which adds up to one
    /// more second of doubt, else `now`).
    fn window(&self, remaining: u64, v: f64) -> Option<QuotaWindow> {
        if v < EPOCH_THRESHOLD {
            return self.within(remaining, (v - 1.0).max(0.0), v, false);
        }
        // An epoch in milliseconds, as JavaScript's `Date.now()` gives.
        let v = if v >= EPOCH_MS_THRESHOLD { v / 1000.0 } else { v };
        let date = self.date.and_then(|d| httpdate::parse_http_date(d).ok());
        let (base, doubt) = date.map_or((self.now, 0.0), |d| (d, 1.0));
        let base = base
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let left = (v - base).max(0.0);
        self.within(remaining, (left - 1.0 - doubt).max(0.0), left, true)
    }

    /// `remaining` until a reset of exactly `after` seconds from now.
    fn exact(&self, remaining: u64, after: f64) -> Option<QuotaWindow> {
        self.within(remaining, after, after, false)
    }

    fn within(&self, remaining: u64, lo: f64, hi: f64, epoch: bool) -> Option<QuotaWindow> {
        (hi < MAX_RESET_S).then(|| QuotaWindow {
            remaining,
            reset_lo: Duration::from_secs_f64(lo),
            reset_hi: Duration::from_secs_f64(hi),
            epoch,
        })
    }
}

/// The fastest rate [`replenish_rate`] takes for one: no limiter is set
/// faster, and a larger value is garbage.
const MAX_ANNOUNCED_RATE: f64 = 1e6;

/// The rate a server announces outright, in requests a second: Spring
/// Cloud Gateway's `RequestRateLimiter` names its token bucket on every
/// answer, `X-RateLimit-Replenish-Rate` tokens a second of which each
/// request takes `X-RateLimit-Requested-Tokens` (one when absent; rates
/// under a request a second are written with more). A value that is not
/// a positive number, or a rate over a million a second, is ignored.
///
/// ```
/// use http::HeaderMap;
/// use tower_snapshotter::retry_after::replenish_rate;
///
/// let mut h = HeaderMap::new();
/// h.insert("x-ratelimit-replenish-rate", "10".parse().unwrap());
/// assert_eq!(replenish_rate(&h), Some(10.0));
/// h.insert("x-ratelimit-requested-tokens", "20".parse().unwrap());
/// assert_eq!(replenish_rate(&h), Some(0.5));
/// ```
pub fn replenish_rate(headers: &HeaderMap) -> Option<f64> {
    let number = |name: &str| {
        let v = headers.get(name)?.to_str().ok()?.trim();
        non_negative(v).filter(|&x| x > 0.0)
    };
    let tokens = number("x-ratelimit-replenish-rate")?;
    let per_request = match headers.get("x-ratelimit-requested-tokens") {
        Some(_) => number("x-ratelimit-requested-tokens")?,
        None => 1.0,
    };
    Some(tokens / per_request).filter(|&rate| rate > 0.0 && rate <= MAX_ANNOUNCED_RATE)
}

/// What an answer's headers announce of the host's limit, as the layer
/// follows it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Announced {
    /// A quota left until a reset (see [`quota_held_at_most`]).
    pub(crate) quota: Option<QuotaWindow>,
    /// A rate named outright (see [`replenish_rate`]).
    pub(crate) rate: Option<f64>,
}

impl Announced {
    /// What `headers` announce; a spent quota is held at most `cap`, and
    /// a rate is taken as one request per `cap` at the least (both bound
    /// what a broken or hostile server's headers can stall).
    /// Most answers name no limit, and cost one pass over their names.
    pub(crate) fn read(headers: &HeaderMap, cap: Duration) -> Self {
        if !names_a_quota(headers) {
            return Self::default();
        }
        let slowest = 1.0 / cap.as_secs_f64().max(1e-3);
        Self {
            quota: quota_held_at_most(headers, cap),
            rate: replenish_rate(headers).map(|rate| rate.max(slowest)),
        }
    }
}

/// The quota an answer announces, as the layer follows it: a spent
/// quota holds the host until its reset, but no longer than `cap` (the
/// layer's `max_retry_after`, which bounds a `Retry-After` pause too),
/// after which one request finds out whether it is spent still.
/// Called by [`Announced::read`] once the names could announce one.
pub(super) fn quota_held_at_most(headers: &HeaderMap, cap: Duration) -> Option<QuotaWindow> {
    let mut q = quota(headers, SystemTime::now())?;
    if q.remaining == 0 {
        q.reset_lo = q.reset_lo.min(cap);
        q.reset_hi = q.reset_hi.min(cap);
    }
    Some(q)
}

/// `"name";r=50;t=30` (the item may be a token or a quoted string). A
/// parameter that is not `key=number` spoils the policy.
fn parse_policy(member: &str) -> Option<Quota> {
    let mut parts = member.split(';');
    let item = parts.next()?.trim();
    if item.is_empty() || item.contains('=') {
        return None;
    }
    let [r, t] = numbers(parts, ["r", "t"], true)?;
    Some(Quota {
        remaining: r?,
        reset: Duration::from_secs(t.unwrap_or(0)),
    })
}

/// `limit=100, remaining=50, reset=30`. Members that are not `key=number`
/// are passed over.
fn parse_dictionary(text: &str) -> Option<Quota> {
    let [remaining, reset] = numbers(text.split(','), ["remaining", "reset"], false)?;
    Some(Quota {
        remaining: remaining?,
        reset: Duration::from_secs(reset?),
    })
}

/// The whole numbers of the two `keys` among `key=number` members (the
/// last of a key counts). A member of another form makes the answer
/// `None` when `strict`, and is passed over otherwise.
fn numbers(members: Split<'_, char>, keys: [&str; 2], strict: bool) -> Option<[Option<u64>; 2]> {
    let mut values = [None; 2];
    for member in members {
        match member.split_once('=').map(|(k, v)| (k.trim(), v.trim().parse())) {
            Some((k, Ok(v))) => {
                if let Some(i) = keys.iter().position(|key| *key == k) {
                    values[i] = Some(v);
                }
            }
            _ if strict => return None,
            _ => {}
        }
    }
    Some(values)
}
