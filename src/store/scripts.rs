//! The Redis store's Lua scripts: each guarded write, atomic on the server.
//! No script reads or receives a stored value: strings passed through Lua
//! cost Redis about fifty times what a plain SET of them does, so values
//! travel in plain commands beside the scripts (see `store::redis`).

use std::sync::LazyLock;

use redis::Cmd;

use crate::envelope::{Lifetime, MAX_MS};

/// What every script starts with: the lock check, and how a key is given
/// its lifetime (`mode`, `arg` as [`lifetime_args`] writes them).
const PRELUDE: &str = r"
local function held_by_other(lock_key, lock_name)
  local holder = redis.call('GET', lock_key)
  return holder and holder ~= lock_name
end
local function apply_lifetime(key, mode, arg)
  if mode == 'secs' then redis.call('EXPIRE', key, arg)
  elseif mode == 'until' then redis.call('PEXPIREAT', key, arg)
  elseif mode == 'gone' then redis.call('DEL', key)
  elseif mode == 'forever' then redis.call('PERSIST', key) end
end
";

/// A script, called by its SHA1 (EVALSHA); `RedisStore::run` loads every script
/// again when Redis has forgotten them (NOSCRIPT, after a restart or a
/// SCRIPT FLUSH).
pub struct Lua {
  code: String,
  hash: String,
}

impl Lua {
  fn new(body: &str) -> Self {
    let code = format!("{PRELUDE}{body}");
    let hash = redis::Script::new(&code).get_hash().to_owned();
    Lua { code, hash }
  }

  /// EVALSHA with these keys; the caller adds the arguments.
  pub fn call(&self, keys: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&self.hash).arg(keys.len()).arg(keys);
    cmd
  }

  fn load(&self) -> Cmd {
    let mut cmd = redis::cmd("SCRIPT");
    cmd.arg("LOAD").arg(&self.code);
    cmd
  }
}

/// SCRIPT LOAD of every script: separate commands, which a cluster
/// connection sends to every node (a pipeline would go to one).
pub fn load_all() -> impl Iterator<Item = Cmd> {
  [&SAVE, &TOUCH, &TOUCH_TAIL, &TOUCH_WHOLE, &DESTROY, &LOCK, &UNLOCK].into_iter().map(|script| script.load())
}

/// The whole ms to give PEXPIREAT (or PXAT) for a key to live until `at`:
/// Redis keeps a key through that ms, so the one before `at`'s (rounded
/// up); the key is gone from `at` on, as the memory store's is.
pub fn last_kept_ms(at: f64) -> i64 {
  at.ceil() as i64 - 1
}

/// A lifetime as a script's two arguments.
pub fn lifetime_args(lifetime: Lifetime) -> (&'static str, String) {
  match lifetime {
    Lifetime::Forever => ("forever", String::new()),
    Lifetime::Secs(secs) => ("secs", secs.to_string()),
    Lifetime::Until(at) => ("until", last_kept_ms(at).to_string()),
    Lifetime::Gone => ("gone", String::new()),
  }
}

/// Moves a new envelope, written beside the entry by a plain SET just
/// before, into place unless another name holds the lock.
/// KEYS: entry, lock, the new envelope's key. ARGV: lock name, then the
/// lifetime's mode and argument, or neither when the new envelope's key
/// already has the entry's lifetime (RENAME carries it over): each call a
/// script makes costs Redis about as much as a plain command, so a lifetime
/// set by the command that wrote the key is not set again.
pub static SAVE: LazyLock<Lua> = LazyLock::new(|| {
  Lua::new(
    r"
if held_by_other(KEYS[2], ARGV[1]) then
  redis.call('DEL', KEYS[3])
  return 0
end
if ARGV[2] == 'gone' then
  redis.call('DEL', KEYS[3], KEYS[1])
  return 1
end
redis.call('RENAME', KEYS[3], KEYS[1])
apply_lifetime(KEYS[1], ARGV[2], ARGV[3])
return 1
",
  )
});

/// A load's write, sent in the same round trip as its read (so before Rust
/// has seen the entry): the script finds the envelope's tail in its last
/// 192 bytes (a tail takes at most about 120; the value is never read) and,
/// unless the lock is another's or the entry has expired, sets `readAt`
/// there in place (and, with a refresh, the new expiry), with the lifetime
/// that follows. Rust then checks the write against the text it read (see
/// `RedisStore::load`): a tail that only looked right is put right or back.
/// KEYS: entry, lock. ARGV: lock name, readAt (now) as JSON, how far
/// readAt's clock is ahead of the system's (`Touch::skew`; 0 unless the
/// caller's `Date` is faked), then for a refresh the new expireTimestamp as
/// JSON and its lifetime mode and argument. What is not needed is left out
/// (the refresh without one, the skew when 0 with no refresh after it): each
/// argument costs Redis about a sixth of a µs, and most loads need two.
/// Answers nil when nothing was written, else one integer: the entry's
/// length times 256 plus the length of the tail it replaced (at most the
/// window's 192 bytes). What it wrote follows from the text Rust read (see
/// `TailWritten`): a table of the offset, both tails and the lifetime cost
/// Redis about 0.7 µs more per load, an eighth of the script's time.
/// Fails with WRONGTYPE when the entry is not a string.
/// This script is most of what a load costs Redis, so it does little: each
/// `redis.call` costs it about as much as a whole plain command costs
/// Redis, and it makes as few as it can; the tail is taken apart with
/// plain searches, as a pattern with captures took a sixth of its time; and
/// the numbers it hands Redis are strings it writes with `%d` (a Lua number
/// passed to `redis.call` is written with `%.17g`, about half what a call
/// to STRLEN costs). The tail starts at the window's last
/// `"expireTimestamp":` (its three numbers hold no quote, so no other can
/// follow), and each number is a number or null, or nothing is written.
pub static TOUCH: LazyLock<Lua> = LazyLock::new(|| {
  let body = r#"
-- The window's size, and where it starts as GETRANGE takes it (a string:
-- Redis writes a number it is handed with %.17g).
local WINDOW, WINDOW_START = 192, '-192'
-- The farthest expiry a PEXPIREAT is given, as Rust writes it in.
local FARTHEST = __MAX_MS__
local window = redis.call('GETRANGE', KEYS[1], WINDOW_START, '-1')
if window == '' or held_by_other(KEYS[2], ARGV[1]) then return false end
-- A window shorter than WINDOW bytes is the whole entry.
local length = #window
if length == WINDOW then length = redis.call('STRLEN', KEYS[1]) end
local from = length - #window
local find, sub, format = string.find, string.sub, string.format
local at = find(window, '"expireTimestamp":', 1, true)
if not at then return false end
local later = find(window, '"expireTimestamp":', at + 1, true)
while later do at, later = later, find(window, '"expireTimestamp":', later + 1, true) end
local created_at = find(window, ',"createdAt":', at + 18, true)
local read_at = created_at and find(window, ',"readAt":', created_at + 13, true)
if not read_at or sub(window, -1) ~= '}' then return false end
local expire, created, read = sub(window, at + 18, created_at - 1), sub(window, created_at + 13, read_at - 1), sub(window, read_at + 10, -2)
local expire_at = tonumber(expire)
if (expire ~= 'null' and not expire_at) or (created ~= 'null' and not tonumber(created)) or (read ~= 'null' and not tonumber(read)) then return false end
-- readAt is now, as JSON.
local now = tonumber(ARGV[2])
-- Expired from the ms of its expireTimestamp on, as Rust judges it.
if expire_at and expire_at <= now then return false end
local mode, arg = 'forever', ''
if expire_at and ARGV[4] then
  expire, mode, arg = ARGV[4], ARGV[5], ARGV[6]
elseif expire_at and expire_at - now <= FARTHEST then
  -- The ms before on the system clock, as last_kept_ms gives it: a whole
  -- number below 2^53, which %d writes in full.
  mode, arg = 'until', format('%d', math.ceil(expire_at - (tonumber(ARGV[3]) or 0)) - 1)
end
local tail = '"expireTimestamp":' .. expire .. ',"createdAt":' .. created .. ',"readAt":' .. ARGV[2] .. '}'
local old_tail_length = #window - at + 1
if #tail < old_tail_length then return false end
redis.call('SETRANGE', KEYS[1], format('%d', from + at - 1), tail)
apply_lifetime(KEYS[1], mode, arg)
return length * 256 + old_tail_length
"#;
  Lua::new(&body.replace("__MAX_MS__", &(MAX_MS as i64).to_string()))
});

/// A load's write, once Rust has read and checked the entry, when `TOUCH`
/// did not write (the tail would shrink, or the entry or its lock changed
/// between the read and the script): only the envelope's tail changes, in
/// place. Skipped (0) when the entry changed since it was read, or another
/// name took the lock meanwhile: the read stands, as of the moment it was
/// made.
/// KEYS: entry, lock. ARGV: lock name, the length read, the tail's offset,
/// old tail, new tail (not shorter), lifetime mode and argument.
pub static TOUCH_TAIL: LazyLock<Lua> = LazyLock::new(|| {
  Lua::new(
    r"
if held_by_other(KEYS[2], ARGV[1]) then return 0 end
if redis.call('TYPE', KEYS[1]).ok ~= 'string' or redis.call('STRLEN', KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
if redis.call('GETRANGE', KEYS[1], ARGV[3], -1) ~= ARGV[4] then return 0 end
redis.call('SETRANGE', KEYS[1], ARGV[3], ARGV[5])
apply_lifetime(KEYS[1], ARGV[6], ARGV[7])
return 1
",
  )
});

/// The same for an envelope not in JSON.stringify's exact form (or a tail
/// that shrinks), rare: the whole text is compared and replaced.
/// KEYS: entry, lock. ARGV: lock name, text read, new text, lifetime mode and argument.
pub static TOUCH_WHOLE: LazyLock<Lua> = LazyLock::new(|| {
  Lua::new(
    r"
if held_by_other(KEYS[2], ARGV[1]) then return 0 end
if redis.call('TYPE', KEYS[1]).ok ~= 'string' or redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
apply_lifetime(KEYS[1], ARGV[4], ARGV[5])
return 1
",
  )
});

/// KEYS: entry, lock. ARGV: lock name. Answers -1 when locked, else DEL's count.
pub static DESTROY: LazyLock<Lua> = LazyLock::new(|| {
  Lua::new(
    r"
if held_by_other(KEYS[2], ARGV[1]) then return -1 end
return redis.call('DEL', KEYS[1])
",
  )
});

/// KEYS: lock. ARGV: lock name, lifetime mode and argument. A held lock is
/// refused to everyone, its holder too, as actionhero's SETNX does.
pub static LOCK: LazyLock<Lua> = LazyLock::new(|| {
  Lua::new(
    r"
if redis.call('GET', KEYS[1]) then return 0 end
if ARGV[2] ~= 'gone' then redis.call('SET', KEYS[1], ARGV[1]) end
apply_lifetime(KEYS[1], ARGV[2], ARGV[3])
return 1
",
  )
});

/// KEYS: lock. ARGV: lock name.
pub static UNLOCK: LazyLock<Lua> = LazyLock::new(|| {
  Lua::new(
    r"
if held_by_other(KEYS[1], ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
",
  )
});

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn touch_is_given_the_farthest_expiry_rust_knows() {
    assert!(TOUCH.code.contains("local FARTHEST = 8640000000000000\n"), "{}", TOUCH.code);
  }
}
