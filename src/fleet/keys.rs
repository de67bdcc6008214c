//! The key schema and the event messages.
//!
//! Every key of a host is `<namespace>:{<host>}:<field>`. The namespace may
//! not hold braces, so the first `{` is always the one before the host and
//! every key of one host has the same Redis Cluster hash tag: a script may
//! touch them all. No field name is a suffix of another, so two hosts never
//! share a key whatever bytes their names hold.

/// The keys of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostKeys {
    /// GCRA theoretical arrival time: server-clock microseconds, a string.
    pub(crate) tat: String,
    /// Live processes leasing the host: sorted set, member the process id,
    /// score its last lease in server-clock milliseconds.
    pub(crate) procs: String,
    /// End of the fleet's pause of the host: Unix milliseconds, a string
    /// that expires when the pause ends.
    pub(crate) pause: String,
    /// What was learned: hash of `rate`, `measured` (0/1), `last_loss` (Unix
    /// ms, 0 for none) and `at` (Unix ms of the write).
    pub(crate) learned: String,
    /// Start of the current loss epoch: Unix milliseconds, a string set with
    /// `NX` that expires after the epoch's window.
    pub(crate) epoch: String,
    /// Each leasing process's pace: hash, field the process id, value its
    /// requests per second as of its last lease.
    pub(crate) paces: String,
    /// Each process's latest sending cycle: hash, field the process id,
    /// value a [`CycleRecord`](super::cycle::CycleRecord) as text.
    pub(crate) cycles: String,
    /// The fleet's answers: hash, fields `a<span>` and `r<span>` the
    /// accepted and refused answers in a tenth of a second of Unix time
    /// (the span its index), `p<process id>` the first span that process
    /// has not reported yet (see `answers.rs`).
    pub(crate) answers: String,
}

impl HostKeys {
    pub(crate) fn new(namespace: &str, host: &str) -> Self {
        let key = |field: &str| format!("{namespace}:{{{host}}}:{field}");
        Self {
            tat: key("tat"),
            procs: key("procs"),
            pause: key("pause"),
            learned: key("learned"),
            epoch: key("epoch"),
            paces: key("paces"),
            cycles: key("cycles"),
            answers: key("answers"),
        }
    }
}

/// The namespace's event channel: pauses, learned values and loss epochs
/// are published there as they are written.
pub(crate) fn channel(namespace: &str) -> String {
    format!("{namespace}:events")
}

/// A message on the event channel. The host comes last, so it may hold any
/// byte, spaces included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Event<'a> {
    /// `p <until ms> <host>`: the host is paused until then.
    Pause { host: &'a str, until_ms: u64 },
    /// `l <rate> <measured 0|1> <last loss ms> <host>`.
    Learned {
        host: &'a str,
        rate: f64,
        measured: bool,
        last_loss_ms: u64,
    },
    /// `e <start ms> <host>`: a loss epoch began then.
    Epoch { host: &'a str, at_ms: u64 },
}

impl<'a> Event<'a> {
    /// The event in `payload`, or `None` for anything else (garbage on the
    /// channel is ignored).
    pub(crate) fn parse(payload: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(payload).ok()?;
        let (kind, rest) = text.split_once(' ')?;
        match kind {
            "p" => {
                let (until, host) = rest.split_once(' ')?;
                Some(Event::Pause {
                    host: nonempty(host)?,
                    until_ms: until.parse().ok()?,
                })
            }
            "e" => {
                let (at, host) = rest.split_once(' ')?;
                Some(Event::Epoch {
                    host: nonempty(host)?,
                    at_ms: at.parse().ok()?,
                })
            }
            "l" => {
                let mut parts = rest.splitn(4, ' ');
                let rate: f64 = parts.next()?.parse().ok()?;
                let measured = match parts.next()? {
                    "1" => true,
                    "0" => false,
                    _ => return None,
                };
                let last_loss_ms = parts.next()?.parse().ok()?;
                let host = nonempty(parts.next()?)?;
                (rate.is_finite() && rate > 0.0).then_some(Event::Learned {
                    host,
                    rate,
                    measured,
                    last_loss_ms,
                })
            }
            _ => None,
        }
    }
}

fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_hash_tag() {
        let k = HostKeys::new("crawl", "example.com:8080");
        assert_eq!(k.tat, "crawl:{example.com:8080}:tat");
        assert_eq!(k.procs, "crawl:{example.com:8080}:procs");
        assert_eq!(k.pause, "crawl:{example.com:8080}:pause");
        assert_eq!(k.learned, "crawl:{example.com:8080}:learned");
        assert_eq!(k.epoch, "crawl:{example.com:8080}:epoch");
        assert_eq!(k.answers, "crawl:{example.com:8080}:answers");
        // Braces in a host: still one tag for all of its keys.
        let tag = |key: &str| {
            let open = key.find('{').unwrap();
            let close = open + key[open..].find('}').unwrap();
            key[open + 1..close].to_owned()
        };
        let k = HostKeys::new("ns", "a}b{c");
        assert_eq!(tag(&k.tat), tag(&k.epoch));
    }

    #[test]
    fn events_round_trip_and_garbage_is_ignored() {
        assert_eq!(
            Event::parse(b"p 1700000000000 a b.example"),
            Some(Event::Pause {
                host: "a b.example",
                until_ms: 1_700_000_000_000
            })
        );
        assert_eq!(
            Event::parse(b"e 17 h"),
            Some(Event::Epoch { host: "h", at_ms: 17 })
        );
        assert_eq!(
            Event::parse(b"l 12.5 1 0 h:1"),
            Some(Event::Learned {
                host: "h:1",
                rate: 12.5,
                measured: true,
                last_loss_ms: 0
            })
        );
        for bad in [
            &b""[..],
            b"p",
            b"p 12",
            b"p x h",
            b"p 12 ",
            b"l inf 1 0 h",
            b"l -1 1 0 h",
            b"l 1 2 0 h",
            b"q 1 h",
            b"\xff\xfe",
        ] {
            assert_eq!(Event::parse(bad), None, "{bad:?}");
        }
    }
}
