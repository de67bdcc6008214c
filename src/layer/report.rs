//! What a request tells the layer when its answer arrives, and what it
//! holds until then.

use std::sync::Arc;

use super::adaptive::Outcome;
use super::hosts::HostName;
use super::http_parts::HttpResponse;
use super::permit::AdaptivePermit;
use super::shard::Shard;
use super::shared::{Ticket, WATCH_MS};
use super::{forbidden, forbidden_trial};
use crate::integrations::metrics::AnswerClass;
use crate::retry_after::{is_throttled, Announced};

/// Carried by every response future: where the request went, when, and the
/// admission it holds (given back when the report is).
#[derive(Debug)]
pub(crate) struct Report {
    shard: Arc<Shard>,
    host: HostName,
    sent_ms: u64,
    /// Report a success too: some host was paused recently.
    watch: bool,
    /// Admitted under overload or by a concurrency limit.
    pub(crate) ticket: Option<Ticket>,
    /// A permit of the host's adaptive controller.
    pub(crate) permit: Option<AdaptivePermit>,
}

impl Report {
    /// A request to `host`, sent (or to be sent) at `now_ms`, holding
    /// `ticket`.
    #[inline]
    pub(crate) fn new(shard: Arc<Shard>, host: HostName, now_ms: u64, ticket: Option<Ticket>) -> Self {
        let watch = watching(now_ms, shard.shared.watch_horizon_ms());
        Self {
            shard,
            host,
            sent_ms: now_ms,
            watch,
            ticket,
            permit: None,
        }
    }

    pub(crate) fn host(&self) -> &HostName {
        &self.host
    }

    /// The request goes out now, after waiting for its host: its success
    /// must reach the host map (it may end a back-off).
    pub(crate) fn sent_after_wait(&mut self, now_ms: u64) {
        self.sent_ms = now_ms;
        self.watch = true;
    }

    /// Learns from the answer (or the inner error) and gives back what the
    /// request held.
    #[inline]
    pub(crate) fn answered<R: HttpResponse, E>(&mut self, result: &Result<R, E>) {
        let permit = self.permit.take();
        match result {
            Ok(response) => {
                let status = response.status();
                self.shard
                    .shared
                    .metrics
                    .answered(AnswerClass::of(status), self.host.as_str());
                let mut status = as_rate_status(status, response.headers());
                let bare_403 = status == http::StatusCode::FORBIDDEN;
                if bare_403
                    && (permit
                        .as_ref()
                        .is_some_and(|p| forbidden_trial::refuse_for_rate(p.host()))
                        || self.shard.shared.forbidden(&self.host))
                {
                    // A rate limiter's 403, or a block's (see
                    // `forbidden_trial.rs`, `forbidden.rs`).
                    status = http::StatusCode::TOO_MANY_REQUESTS;
                }
                let pause = if status.as_u16() >= 400 || self.watch {
                    self.shard
                        .shared
                        .on_answer(&self.host, self.sent_ms, status, response.headers())
                } else {
                    None
                };
                if let Some(p) = permit {
                    let (shared, host) = (&self.shard.shared, &self.host);
                    let outcome = if bare_403 && forbidden_trial::forbidden_pages(p.host()) {
                        // Pages forbidden on their merits, as a trial
                        // found: served by the host's limiter as the
                        // others (a GCRA of 100/s that forbade two pages
                        // in three was held at 45 % of its rate, its
                        // 403s counted as nothing).
                        Outcome::Served
                    } else {
                        outcome_of(status)
                    };
                    let accepted = outcome.accepted();
                    if accepted == Some(true) {
                        forbidden::end_run(p.host());
                    }
                    // A trial of the pace for a host whose 403s may be a
                    // rate limiter's (see `forbidden_trial.rs`).
                    let verdict = forbidden_trial::trial_answer(p.host(), self.sent_ms, bare_403);
                    let cap = shared.settings.max_retry_after;
                    let announced = Announced::read(response.headers(), cap);
                    p.finish(outcome, announced, pause, |state, c, now| {
                        if verdict.is_some() || bare_403 {
                            forbidden_trial::trial_step(state, c, now, verdict, &shared.clock);
                        }
                        shared.fleet.on_answer(host, state, c, now, accepted)
                    });
                }
            }
            Err(_) => {
                self.shard
                    .shared
                    .metrics
                    .answered(AnswerClass::InnerError, self.host.as_str());
                if let Some(p) = permit {
                    p.finish(Outcome::Failed, Announced::default(), None, |_, _, _| {});
                }
            }
        }
        // The admission goes back last; tested first, so that the common
        // case (none held) costs no call to the ticket's drop.
        if self.ticket.is_some() {
            self.ticket = None;
        }
    }
}

/// Whether a request sent at `now_ms` should report its success: a pause
/// ended less than [`WATCH_MS`] ago (a horizon of 0: never paused).
#[inline]
fn watching(now_ms: u64, horizon_ms: u64) -> bool {
    horizon_ms != 0 && now_ms < horizon_ms.saturating_add(WATCH_MS)
}

/// The status the layer learns from: a 403 that refuses for rate (see
/// [`is_throttled`]; GitHub's) is a 429 to it, for the pause, the back-off
/// and the pace alike.
fn as_rate_status(status: http::StatusCode, headers: &http::HeaderMap) -> http::StatusCode {
    if status == http::StatusCode::FORBIDDEN && is_throttled(status, headers) {
        http::StatusCode::TOO_MANY_REQUESTS
    } else {
        status
    }
}

/// What an answer says about load, for the adaptive controller (a 403
/// that refuses for rate, or a block's, comes here as a 429).
fn outcome_of(status: http::StatusCode) -> Outcome {
    match status.as_u16() {
        429 => Outcome::Throttled,
        503 => Outcome::Loss,
        100..=399 => Outcome::Success,
        401 | 403 | 407 | 408 => Outcome::Neutral,
        400..=499 => Outcome::Served,
        _ => Outcome::Neutral,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, StatusCode};

    #[test]
    fn a_403_for_a_spent_quota_is_a_throttle_and_any_other_403_neutral() {
        let mut spent = HeaderMap::new();
        spent.insert("x-ratelimit-remaining", "0".parse().unwrap());
        spent.insert("x-ratelimit-reset", "1700000060".parse().unwrap());
        let outcome = |status, headers: &HeaderMap| outcome_of(as_rate_status(status, headers));
        assert_eq!(outcome(StatusCode::FORBIDDEN, &spent), Outcome::Throttled);
        assert_eq!(
            outcome(StatusCode::FORBIDDEN, &HeaderMap::new()),
            Outcome::Neutral
        );
        assert_eq!(
            outcome(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new()),
            Outcome::Throttled
        );
        assert_eq!(outcome(StatusCode::NOT_FOUND, &HeaderMap::new()), Outcome::Served);
        assert_eq!(
            outcome(StatusCode::INTERNAL_SERVER_ERROR, &HeaderMap::new()),
            Outcome::Neutral
        );
    }
}
