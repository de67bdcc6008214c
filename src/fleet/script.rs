//! The Lua scripts, how they are called, and what their replies mean.
//!
//! Over 400 lines with its tests: the six scripts' sources are most of it,
//! each beside its contract.
//!
//! Each script reads the server's clock (`TIME`; scripts replicate by
//! effects since Redis 5, so this is safe on replicas), treats a key of the
//! wrong type or a value that is not a finite number as absent, and
//! overwrites it with the right type when it writes. Every key it writes
//! gets a TTL. Events are published with `redis.pcall`: a user whom ACLs
//! deny the channel still shares state, by polling.
//!
//! # The lease: GCRA with a batch
//!
//! A host's schedule is one theoretical arrival time `tat` (µs, server
//! clock). With tolerance `τ = burst / rate` (the caller's) and emission
//! interval `T = 1 s / max(rate, paces summed × room)` (the live
//! processes' paces, see the module docs), a request for `n` slots at
//! `now` may take
//! `⌊(now + τ − max(tat, now)) / T⌋` slots, at most `n` (go-redis/redis_rate's
//! "allow at most"): the batch takes `[max(tat, now), + n·T)` of the
//! schedule, and `tat` moves past it. The reply gives the batch's offset
//! from `now` and the wait until one more slot would fit. The process
//! spreads the batch over its share of the schedule at its pace (see the
//! module docs), so the fleet together sends at most the faster of `rate`
//! and its paces with their room; `burst` only says how far ahead the
//! schedule may be leased.

use std::sync::atomic::{AtomicU64, Ordering};

use redis::aio::ConnectionManager;
use redis::{RedisResult, Value};

use crate::tally::Span;

/// Helpers every script starts with.
macro_rules! prelude {
    () => {
        r#"
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function finite(n)
  if n == nil or n ~= n or n == math.huge or n == -math.huge then return nil end
  return n
end
-- A number in [0, max] stored as a string at key; nil when absent, of
-- another type, or garbage.
local function get_num(key, max)
  local v = redis.pcall('GET', key)
  if type(v) ~= 'string' then return nil end
  local n = finite(tonumber(v))
  if n == nil or n < 0 or n > max then return nil end
  return n
end
-- Deletes key if it holds another type than want; true if it holds want.
local function ensure_type(key, want)
  local t = redis.call('TYPE', key)
  if type(t) == 'table' then t = t['ok'] end
  if t ~= want and t ~= 'none' then redis.call('DEL', key) end
  return t == want
end
local function int(n) return string.format('%.0f', n) end
local DAY_MS = 86400000
local function old_loss(key, now_ms)
  local v = redis.pcall('HGET', key, 'last_loss')
  if type(v) ~= 'string' then return 0 end
  local n = finite(tonumber(v))
  if n == nil or n < 0 or n > now_ms + DAY_MS then return 0 end
  return n
end
"#
    };
}

/// `KEYS`: tat, procs, pause, learned, epoch, paces, answers.
/// `ARGV`: process id, rate (slots/s), burst (slots), wanted (slots; 0 only
/// reads), key TTL (ms), liveness window (ms), this process's pace
/// (requests/s), room (the factor over the paces the schedule allows),
/// this process's answers since its last report (`<span> <accepted>
/// <refused>…`, spans of 100 ms of Unix time; see `answers.rs`).
/// A slot costs the schedule the interval of the faster of `rate` and the
/// live processes' paces summed times the room.
/// Reply: granted, first slot's offset (µs), wait for the next slot (µs),
/// live processes, pause end (ms), epoch start (ms), learned rate (string,
/// "" for none), measured (0/1), last loss (ms), server time (ms), the live
/// processes' paces summed (string, "0" unless slots were wanted), the
/// first span some live process has not reported (0 for none), and the
/// fleet's kept spans as `[span, accepted, refused, …]`.
const LEASE: &str = concat!(
    prelude!(),
    r#"
local now = now_us()
local now_ms = math.floor(now / 1000)
local rate = finite(tonumber(ARGV[2]))
local burst = tonumber(ARGV[3]) or 1
local want = tonumber(ARGV[4]) or 0
local ttl = tonumber(ARGV[5]) or 60000
local live = tonumber(ARGV[6]) or 1000
local granted, start, wait, paces = 0, 0, 0, 0
local BUCKET_MS, KEPT = tonumber(ARGV[10]) or 100, tonumber(ARGV[11]) or 60
if want > 0 and rate ~= nil and rate > 0 then
  local tau = burst * 1000000 / rate
  -- The paces of the processes that leased lately, this one's fresh.
  local own = finite(tonumber(ARGV[7]))
  ensure_type(KEYS[6], 'hash')
  if own ~= nil and own > 0 then
    redis.call('HSET', KEYS[6], ARGV[1], string.format('%.3f', own))
    redis.call('PEXPIRE', KEYS[6], int(ttl))
  end
  local zset = ensure_type(KEYS[2], 'zset')
  local sum = 0
  local all = redis.call('HGETALL', KEYS[6])
  for i = 1, #all, 2 do
    local p = finite(tonumber(all[i + 1]))
    local seen = nil
    if all[i] == ARGV[1] then
      seen = now_ms
    elseif zset then
      local z = redis.call('ZSCORE', KEYS[2], all[i])
      if z then seen = tonumber(z) end
    end
    local fresh = seen ~= nil and seen >= now_ms - live and seen <= now_ms + live
    if p ~= nil and p > 0 and p <= 100000 and fresh then
      sum = sum + p
    else
      redis.call('HDEL', KEYS[6], all[i])
    end
  end
  local room = finite(tonumber(ARGV[8])) or 1
  paces = sum
  rate = math.max(rate, sum * room)
  local emission = 1000000 / rate
  local tat = get_num(KEYS[1], now + tau + ttl * 1000)
  if tat == nil or tat < now then tat = now end
  local avail = math.floor((now + tau - tat) / emission + 1e-6)
  if avail > 0 then
    granted = math.min(want, avail)
    start = tat - now
    tat = tat + granted * emission
    redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', int(math.ceil((tat - now) / 1000) + ttl))
  end
  wait = math.max(0, tat + emission - tau - now)
  -- `procs` is a sorted set or absent: its type was ensured above.
  redis.call('ZADD', KEYS[2], int(now_ms), ARGV[1])
  redis.call('PEXPIRE', KEYS[2], int(ttl))
  if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('PEXPIRE', KEYS[4], int(ttl)) end
end
local procs = 0
if ensure_type(KEYS[2], 'zset') then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. int(now_ms - live))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '(' .. int(now_ms + live), '+inf')
  procs = redis.call('ZCARD', KEYS[2])
end
local pause = get_num(KEYS[3], now_ms + DAY_MS) or 0
local epoch = get_num(KEYS[5], now_ms + DAY_MS) or 0
local lrate, lmeasured, lloss = '', 0, 0
local h = redis.pcall('HMGET', KEYS[4], 'rate', 'measured', 'last_loss')
if type(h) == 'table' and h['err'] == nil then
  local r = finite(tonumber(h[1]))
  if r ~= nil and r > 0 then
    lrate = h[1]
    if h[2] == '1' then lmeasured = 1 end
  end
  lloss = old_loss(KEYS[4], now_ms)
end
-- The fleet's answers: this process's report added, spans older than
-- KEPT (or ahead of the clock) and the marks of processes no longer live
-- dropped; what every live process has reported, returned.
local spans, through = {}, 0
local nb = math.floor(now_ms / BUCKET_MS)
ensure_type(KEYS[7], 'hash')
local report = ARGV[9] or ''
local nums = {}
for n in string.gmatch(report, '%d+') do nums[#nums + 1] = tonumber(n) end
-- A field that is no integer, or would overflow, is garbage: replaced.
local function add(field, n)
  if n <= 0 then return end
  local r = redis.pcall('HINCRBY', KEYS[7], field, n)
  if type(r) == 'table' and r['err'] then redis.call('HSET', KEYS[7], field, n) end
end
for i = 1, #nums - 2, 3 do
  local b = nums[i]
  if b >= nb - KEPT and b <= nb + 1 then
    add('a' .. b, nums[i + 1])
    add('r' .. b, nums[i + 2])
  end
end
if want > 0 then redis.call('HSET', KEYS[7], 'p' .. ARGV[1], nb) end
local counts = {}
local all = redis.call('HGETALL', KEYS[7])
for i = 1, #all, 2 do
  local kind, rest = string.sub(all[i], 1, 1), string.sub(all[i], 2)
  local v = finite(tonumber(all[i + 1]))
  if kind == 'p' then
    local live_here = procs > 0 and redis.call('ZSCORE', KEYS[2], rest)
    if v ~= nil and live_here then
      if through == 0 or v < through then through = v end
    else
      redis.call('HDEL', KEYS[7], all[i])
    end
  else
    local b = tonumber(rest)
    local bad = v == nil or v < 0 or v > 1000000000
    if (kind ~= 'a' and kind ~= 'r') or b == nil or bad or b < nb - KEPT or b > nb + 1 then
      redis.call('HDEL', KEYS[7], all[i])
    else
      local c = counts[b]
      if c == nil then c = {0, 0}; counts[b] = c end
      if kind == 'a' then c[1] = c[1] + v else c[2] = c[2] + v end
    end
  end
end
for b, c in pairs(counts) do
  spans[#spans + 1] = b
  spans[#spans + 1] = c[1]
  spans[#spans + 1] = c[2]
end
if #all > 0 or #nums > 0 then redis.call('PEXPIRE', KEYS[7], int(ttl)) end
return {granted, math.floor(start), math.ceil(wait), procs, pause, epoch, lrate, lmeasured, lloss, now_ms,
  string.format('%.3f', paces), through, spans}
"#
);

/// `KEYS`: pause. `ARGV`: pause end (Unix ms), channel, host.
/// Keeps the later end; publishes `p <end> <host>` when it grew.
/// Reply: the pause end now in force (ms, 0 for none).
const PAUSE: &str = concat!(
    prelude!(),
    r#"
local now_ms = math.floor(now_us() / 1000)
local want = tonumber(ARGV[1]) or 0
local cur = get_num(KEYS[1], now_ms + DAY_MS) or 0
if want > cur and want > now_ms and want <= now_ms + DAY_MS then
  redis.call('SET', KEYS[1], int(want), 'PX', int(want - now_ms))
  redis.pcall('PUBLISH', ARGV[2], 'p ' .. int(want) .. ' ' .. ARGV[3])
  return want
end
return cur
"#
);

/// `KEYS`: learned. `ARGV`: rate, measured (0/1), last loss (Unix ms, 0 for
/// none), key TTL (ms), channel, host.
/// The last writer's rate wins; the last loss is the latest of both.
/// Publishes `l <rate> <measured> <last loss> <host>`. Reply: last loss.
const LEARN: &str = concat!(
    prelude!(),
    r#"
local now_ms = math.floor(now_us() / 1000)
ensure_type(KEYS[1], 'hash')
local loss = math.max(tonumber(ARGV[3]) or 0, old_loss(KEYS[1], now_ms))
redis.call('HSET', KEYS[1], 'rate', ARGV[1], 'measured', ARGV[2], 'last_loss', int(loss), 'at', int(now_ms))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.pcall('PUBLISH', ARGV[5], 'l ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. int(loss) .. ' ' .. ARGV[6])
return loss
"#
);

/// `KEYS`: epoch, learned. `ARGV`: window (ms), key TTL (ms), channel, host.
/// `SET epoch now NX PX window`: the first loss in a window starts an epoch
/// (and records the last loss, and publishes `e <start> <host>`); a later
/// one joins it. A garbage epoch key (wrong type, not a number, no TTL) is
/// deleted first. Reply: {1 if this call started the epoch, epoch start}.
const EPOCH: &str = concat!(
    prelude!(),
    r#"
local now_ms = math.floor(now_us() / 1000)
local cur = get_num(KEYS[1], now_ms + DAY_MS)
if cur == nil or redis.call('PTTL', KEYS[1]) < 0 then redis.call('DEL', KEYS[1]) end
if redis.call('SET', KEYS[1], int(now_ms), 'NX', 'PX', ARGV[1]) then
  ensure_type(KEYS[2], 'hash')
  redis.call('HSET', KEYS[2], 'last_loss', int(math.max(now_ms, old_loss(KEYS[2], now_ms))))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.pcall('PUBLISH', ARGV[3], 'e ' .. int(now_ms) .. ' ' .. ARGV[4])
  return {1, now_ms}
end
return {0, cur}
"#
);

/// `KEYS`: cycles. `ARGV`: process id, record, key TTL (ms).
/// Stores this process's latest cycle (a hash of another type is
/// replaced). Reply: 1.
const CYCLE_PUT: &str = concat!(
    prelude!(),
    r#"
ensure_type(KEYS[1], 'hash')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"#
);

/// `KEYS`: cycles. `ARGV`: key TTL (ms).
/// Every process's latest cycle; fields that ended longer than the TTL
/// ago, or that do not start with an end time, are deleted (the cycles of
/// processes gone). Reply: the records (none when the key is of another
/// type).
const CYCLE_GET: &str = concat!(
    prelude!(),
    r#"
if not ensure_type(KEYS[1], 'hash') then return {} end
local oldest = now_us() - (tonumber(ARGV[1]) or 0) * 1000
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local v = all[i + 1]
  local e = finite(tonumber(string.match(v, '^(%d+) ')))
  if e == nil or e < oldest then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = v
  end
end
return out
"#
);

/// A script and its SHA1.
#[derive(Debug)]
pub(crate) struct Lua {
    source: &'static str,
    sha: String,
}

impl Lua {
    fn new(source: &'static str) -> Self {
        Self {
            source,
            sha: redis::Script::new(source).get_hash().to_owned(),
        }
    }

    /// Runs the script: `EVALSHA`, and on `NOSCRIPT` (Redis restarted or
    /// `SCRIPT FLUSH`ed) `EVAL` with the source, which also caches it
    /// again. Counts each command sent in `commands`.
    pub(crate) async fn run(
        &self,
        conn: &mut ConnectionManager,
        keys: &[&str],
        args: &[String],
        commands: &AtomicU64,
    ) -> RedisResult<Value> {
        let call = |name: &str, head: &str| {
            let mut cmd = redis::cmd(name);
            cmd.arg(head).arg(keys.len()).arg(keys).arg(args);
            cmd
        };
        commands.fetch_add(1, Ordering::Relaxed);
        match call("EVALSHA", &self.sha).query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                commands.fetch_add(1, Ordering::Relaxed);
                call("EVAL", self.source).query_async(conn).await
            }
            other => other,
        }
    }
}

/// The scripts.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) lease: Lua,
    pub(crate) pause: Lua,
    pub(crate) learn: Lua,
    pub(crate) epoch: Lua,
    pub(crate) cycle_put: Lua,
    pub(crate) cycle_get: Lua,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            lease: Lua::new(LEASE),
            pause: Lua::new(PAUSE),
            learn: Lua::new(LEARN),
            epoch: Lua::new(EPOCH),
            cycle_put: Lua::new(CYCLE_PUT),
            cycle_get: Lua::new(CYCLE_GET),
        }
    }
}

/// The lease script's reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LeaseReply {
    pub(crate) granted: u32,
    /// Offset of the first granted slot from the server's now.
    pub(crate) start_us: u64,
    /// Wait until one more slot would fit.
    pub(crate) wait_us: u64,
    pub(crate) procs: u32,
    pub(crate) pause_ms: u64,
    pub(crate) epoch_ms: u64,
    /// Rate, measured.
    pub(crate) learned: Option<(f64, bool)>,
    pub(crate) last_loss_ms: u64,
    /// The live processes' paces summed (0 unless slots were wanted).
    pub(crate) paces: f64,
    /// The first span some live process has not reported (0 for none).
    pub(crate) through: u64,
    /// The fleet's kept spans of answers.
    pub(crate) spans: Vec<Span>,
}

impl LeaseReply {
    pub(crate) fn parse(v: &Value) -> Option<Self> {
        let Value::Array(items) = v else { return None };
        if items.len() < 10 {
            return None;
        }
        let n = |i: usize| int(&items[i]).map(|x| x.max(0) as u64);
        let rate = text(&items[6])
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|r| r.is_finite() && *r > 0.0);
        Some(Self {
            granted: u32::try_from(n(0)?).unwrap_or(u32::MAX),
            start_us: n(1)?,
            wait_us: n(2)?,
            procs: u32::try_from(n(3)?).unwrap_or(u32::MAX),
            pause_ms: n(4)?,
            epoch_ms: n(5)?,
            learned: rate.map(|r| (r, n(7) == Some(1))),
            last_loss_ms: n(8)?,
            paces: items
                .get(10)
                .and_then(text)
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|p| p.is_finite() && *p >= 0.0)
                .unwrap_or(0.0),
            through: items.get(11).and_then(int).map_or(0, |x| x.max(0) as u64),
            spans: items.get(12).map_or_else(Vec::new, spans),
        })
    }
}

/// An integer reply (or a number sent as text).
pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Double(d) if d.is_finite() => Some(*d as i64),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

/// The spans of answers in `[span, accepted, refused, …]`; triples that are
/// not three integers ≥ 0 are left out.
fn spans(v: &Value) -> Vec<Span> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    let count = |v: &Value| int(v).and_then(|x| u32::try_from(x).ok());
    items
        .chunks_exact(3)
        .filter_map(|c| {
            Some(Span {
                index: u64::try_from(int(&c[0])?).ok()?,
                accepted: count(&c[1])?,
                refused: count(&c[2])?,
            })
        })
        .collect()
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_reply_reads_the_fleets_answers_and_drops_bad_spans() {
        let mut items: Vec<Value> = (0..10).map(Value::Int).collect();
        items[6] = Value::BulkString(Vec::new());
        items.push(Value::BulkString(b"512.500".to_vec()));
        items.push(Value::Int(170));
        items.push(Value::Array(vec![
            Value::Int(168),
            Value::Int(40),
            Value::Int(2),
            // A negative count: the triple is dropped.
            Value::Int(169),
            Value::Int(-1),
            Value::Int(0),
            Value::BulkString(b"167".to_vec()),
            Value::Int(55),
            Value::Int(0),
            // A triple cut short: ignored.
            Value::Int(166),
        ]));
        let r = LeaseReply::parse(&Value::Array(items)).unwrap();
        assert_eq!(r.paces, 512.5);
        assert_eq!(r.through, 170);
        assert_eq!(
            r.spans,
            vec![
                Span {
                    index: 168,
                    accepted: 40,
                    refused: 2
                },
                Span {
                    index: 167,
                    accepted: 55,
                    refused: 0
                },
            ]
        );
    }

    #[test]
    fn lease_reply_parses_and_rejects_garbage() {
        let ok = Value::Array(vec![
            Value::Int(3),
            Value::Int(1500),
            Value::Int(0),
            Value::Int(2),
            Value::Int(0),
            Value::Int(17),
            Value::BulkString(b"12.5".to_vec()),
            Value::Int(1),
            Value::Int(99),
            Value::Int(1_700_000_000_000),
        ]);
        let r = LeaseReply::parse(&ok).unwrap();
        assert_eq!(
            (r.paces, r.through, r.spans.len()),
            (0.0, 0, 0),
            "an older reply: no answers"
        );
        assert_eq!(r.granted, 3);
        assert_eq!(r.start_us, 1500);
        assert_eq!(r.procs, 2);
        assert_eq!(r.epoch_ms, 17);
        assert_eq!(r.learned, Some((12.5, true)));
        assert_eq!(r.last_loss_ms, 99);
        let mut items = match ok {
            Value::Array(items) => items,
            _ => unreachable!(),
        };
        items[6] = Value::BulkString(Vec::new());
        items[1] = Value::Int(-5);
        let r = LeaseReply::parse(&Value::Array(items.clone())).unwrap();
        assert_eq!(r.learned, None);
        assert_eq!(r.start_us, 0);
        items.pop();
        assert_eq!(LeaseReply::parse(&Value::Array(items)), None);
        assert_eq!(LeaseReply::parse(&Value::Nil), None);
    }

    #[test]
    fn scripts_have_distinct_hashes() {
        let s = Scripts::new();
        let mut hashes = [
            &s.lease.sha,
            &s.pause.sha,
            &s.learn.sha,
            &s.epoch.sha,
            &s.cycle_put.sha,
            &s.cycle_get.sha,
        ];
        hashes.sort();
        assert!(hashes.windows(2).all(|w| w[0] != w[1]));
    }
}
