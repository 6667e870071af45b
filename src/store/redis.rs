//! The Redis store, wire-compatible with actionhero's JS cache: the same
//! keys and values, so JS and native nodes can share one Redis. Every guarded
//! operation is one Lua script (one round trip, atomic on the server); all
//! calls share one multiplexed connection, so concurrent calls pipeline.

use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, ConnectionAddr, IntoConnectionInfo, Script};
use serde_json::value::RawValue;

use super::{DumpedEntry, EntryKeys, Guarded, LoadOutcome, Loaded, Store, StoreResult, Touch};
use crate::envelope::js_number;
use crate::error::CacheError;

const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);
/// setTimeout's limit; far larger values would overflow a Duration.
const MAX_TIMEOUT_MS: f64 = 2_147_483_647.0;
/// Keys per SCAN step, and per DEL or MGET when working through a prefix.
const BATCH: usize = 500;

pub struct RedisConfig {
  info: redis::ConnectionInfo,
  key_prefix: String,
  connect_timeout: Duration,
  command_timeout: Duration,
}

/// Where to connect, as index.js worked it out from the app's config the
/// way ioredis does (lib/store-options.js): URLs are already taken apart.
#[derive(Default)]
pub struct RedisOptions {
  pub host: Option<String>,
  pub port: Option<u32>,
  pub username: Option<String>,
  /// Sent as given (even empty, beside a username), as ioredis sends it.
  pub password: Option<String>,
  pub db: Option<i64>,
  pub tls: bool,
  /// TLS without checking the server's certificate.
  pub tls_insecure: bool,
  /// ioredis's `keyPrefix`, which ioredis puts before every key a command names.
  pub key_prefix: String,
  pub connect_timeout_ms: Option<f64>,
  pub command_timeout_ms: Option<f64>,
}

impl RedisConfig {
  pub fn from_options(options: RedisOptions) -> Result<Self, CacheError> {
    let invalid = |e: redis::RedisError| CacheError::InvalidArgument(format!("invalid Redis options: {e}"));
    let port = options.port.unwrap_or(6379);
    let port = u16::try_from(port).map_err(|_| CacheError::InvalidArgument(format!("invalid Redis port {port}")))?;
    let host = options.host.unwrap_or_else(|| "localhost".to_owned());
    let addr = if options.tls {
      ConnectionAddr::TcpTls { host, port, insecure: options.tls_insecure, tls_params: None }
    } else {
      ConnectionAddr::Tcp(host, port)
    };
    let info = addr.into_connection_info().map_err(invalid)?;
    let mut settings = info.redis_settings().clone();
    if let Some(username) = options.username {
      settings = settings.set_username(username);
    }
    if let Some(password) = options.password {
      settings = settings.set_password(password);
    }
    if let Some(db) = options.db {
      settings = settings.set_db(db);
    }
    Ok(RedisConfig {
      info: info.set_redis_settings(settings),
      key_prefix: options.key_prefix,
      connect_timeout: timeout_option("connectTimeoutMS", options.connect_timeout_ms)?,
      command_timeout: timeout_option("commandTimeoutMS", options.command_timeout_ms)?,
    })
  }
}

fn timeout_option(name: &str, ms: Option<f64>) -> Result<Duration, CacheError> {
  match ms {
    None => Ok(DEFAULT_TIMEOUT),
    Some(ms) if ms.is_finite() && ms > 0.0 && ms <= MAX_TIMEOUT_MS => Ok(Duration::from_secs_f64(ms / 1000.0)),
    Some(ms) => Err(CacheError::InvalidArgument(format!("{name} must be a positive number, got {ms}"))),
  }
}

pub struct RedisStore {
  /// None once closed. A ConnectionManager reconnects by itself after the
  /// connection drops, as ioredis does.
  connection: Mutex<Option<ConnectionManager>>,
  /// How long one call may take, connecting included.
  deadline: Duration,
  key_prefix: String,
}

impl RedisStore {
  /// Connects lazily: nothing is sent until the first call. Must be called
  /// within a tokio runtime.
  pub fn new(config: RedisConfig) -> Result<Self, CacheError> {
    let client = redis::Client::open(config.info).map_err(redis_error)?;
    let manager_config = ConnectionManagerConfig::new()
      .set_connection_timeout(Some(config.connect_timeout))
      .set_response_timeout(Some(config.command_timeout))
      .set_number_of_retries(1);
    let manager = ConnectionManager::new_lazy_with_config(client, manager_config).map_err(redis_error)?;
    Ok(RedisStore {
      connection: Mutex::new(Some(manager)),
      deadline: config.connect_timeout + config.command_timeout,
      key_prefix: config.key_prefix,
    })
  }

  /// A key as ioredis's `keyPrefix` sends it: prefixed wherever a command
  /// names a key, but not in SCAN patterns, nor in the keys Redis answers.
  fn key<'a>(&self, key: &'a str) -> Cow<'a, str> {
    if self.key_prefix.is_empty() {
      Cow::Borrowed(key)
    } else {
      Cow::Owned([&self.key_prefix, key].concat())
    }
  }

  fn entry_keys(&self, keys: &EntryKeys) -> EntryKeys {
    EntryKeys { entry: self.key(&keys.entry).into_owned(), lock: self.key(&keys.lock).into_owned() }
  }

  fn connection(&self) -> StoreResult<ConnectionManager> {
    let connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
    connection.clone().ok_or(CacheError::Closed)
  }

  /// Runs one exchange with Redis, giving up with REDIS_TIMEOUT when it
  /// does not finish in time, so that no call hangs forever.
  async fn run<T, F, Fut>(&self, exchange: F) -> StoreResult<T>
  where
    F: FnOnce(ConnectionManager) -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
  {
    let connection = self.connection()?;
    match tokio::time::timeout(self.deadline, exchange(connection)).await {
      Ok(outcome) => outcome.map_err(redis_error),
      Err(_) => Err(CacheError::Timeout(format!("Redis did not answer within {} ms", self.deadline.as_millis()))),
    }
  }

  /// SCAN, not KEYS: it never blocks the server for long. Each step is one
  /// exchange with its own deadline, so a large key space takes as many
  /// steps as it needs. Keys may come back twice, hence the set.
  async fn scan(&self, prefix: &str) -> StoreResult<Vec<String>> {
    let pattern = format!("{}*", escape_glob(prefix));
    let mut keys = HashSet::new();
    let mut cursor: u64 = 0;
    loop {
      let pattern = &pattern;
      let (next, batch): (u64, Vec<String>) = self
        .run(|mut c| async move {
          redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(BATCH).query_async(&mut c).await
        })
        .await?;
      keys.extend(batch);
      if next == 0 {
        return Ok(keys.into_iter().collect());
      }
      cursor = next;
    }
  }
}

/// The lock check every guarded script starts with.
const HELD_BY_OTHER: &str = r"
local function held_by_other(lock_key, lock_name)
  local holder = redis.call('GET', lock_key)
  return holder and holder ~= lock_name
end
";

fn guarded_script(body: &str) -> Script {
  Script::new(&format!("{HELD_BY_OTHER}{body}"))
}

/// KEYS: entry, lock. ARGV: lock name, envelope, lifetime in seconds or ''.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
  guarded_script(
    r"
if held_by_other(KEYS[2], ARGV[1]) then return 0 end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 1
",
  )
});

/// KEYS: entry, lock. ARGV: lock name, now, new expireTimestamp or '', its
/// lifetime in seconds or ''. The envelope is rewritten as text, keeping the
/// value's JSON exactly as stored: decoding and re-encoding it with cjson
/// would change it (`[]` would come back as `{}`). Answers a status word,
/// then the value's JSON and the expireTimestamp, createdAt and previous
/// readAt as JSON numbers or 'null'.
static LOAD: LazyLock<Script> = LazyLock::new(|| {
  guarded_script(
    r#"
-- A timestamp as JSON text: 'null' when absent, nil when not a number.
local function number_text(n)
  if n == nil or n == cjson.null then return 'null' end
  if type(n) ~= 'number' then return nil end
  if n == math.floor(n) and math.abs(n) < 2^53 then return string.format('%d', n) end
  return string.format('%.17g', n)
end
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing'} end
-- The envelope as JSON.stringify writes it; anything else goes through cjson.
local value, expire, created, read_at =
  string.match(raw, '^{"value":(.*),"expireTimestamp":([^,]*),"createdAt":([^,]*),"readAt":([^,}]*)}$')
if not value then
  local ok, entry = pcall(cjson.decode, raw)
  -- An envelope is a JSON object (cjson decodes arrays to tables too).
  if not ok or type(entry) ~= 'table' or string.sub(raw, 1, 1) ~= '{' then return {'corrupt'} end
  value = entry.value == nil and 'null' or cjson.encode(entry.value)
  expire, created, read_at = number_text(entry.expireTimestamp), number_text(entry.createdAt), number_text(entry.readAt)
  if not (expire and created and read_at) then return {'corrupt'} end
end
if expire ~= 'null' then
  local at = tonumber(expire)
  if not at then return {'corrupt'} end
  if at < tonumber(ARGV[2]) then return {'expired'} end
end
if held_by_other(KEYS[2], ARGV[1]) then return {'locked'} end
local ttl = nil
if expire ~= 'null' and ARGV[3] ~= '' then
  expire, ttl = ARGV[3], ARGV[4]
end
local text = '{"value":' .. value .. ',"expireTimestamp":' .. expire .. ',"createdAt":' .. created .. ',"readAt":' .. ARGV[2] .. '}'
if ttl then
  redis.call('SET', KEYS[1], text, 'EX', ttl)
else
  redis.call('SET', KEYS[1], text, 'KEEPTTL')
end
return {'loaded', value, expire, created, read_at}
"#,
  )
});

/// KEYS: entry, lock. ARGV: lock name. Answers -1 when locked, else DEL's count.
static DESTROY: LazyLock<Script> = LazyLock::new(|| {
  guarded_script(
    r"
if held_by_other(KEYS[2], ARGV[1]) then return -1 end
return redis.call('DEL', KEYS[1])
",
  )
});

/// KEYS: lock. ARGV: lock name, lifetime in seconds. Taking a lock one holds
/// already refreshes its lifetime.
static LOCK: LazyLock<Script> = LazyLock::new(|| {
  guarded_script(
    r"
if held_by_other(KEYS[1], ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
",
  )
});

/// KEYS: lock. ARGV: lock name.
static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
  guarded_script(
    r"
if held_by_other(KEYS[1], ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
",
  )
});

#[async_trait]
impl Store for RedisStore {
  fn answers_at_once(&self) -> bool {
    false
  }

  async fn save(&self, keys: &EntryKeys, lock_name: &str, envelope: String, ttl_secs: Option<u64>)
    -> StoreResult<Guarded<()>> {
    let keys = &self.entry_keys(keys);
    let ttl = ttl_secs.map_or_else(String::new, |secs| secs.to_string());
    let saved: bool = self
      .run(|mut c| async move {
        SAVE.key(&keys.entry).key(&keys.lock).arg(lock_name).arg(envelope).arg(ttl).invoke_async(&mut c).await
      })
      .await?;
    Ok(if saved { Guarded::Done(()) } else { Guarded::Locked })
  }

  async fn load(&self, keys: &EntryKeys, lock_name: &str, touch: Touch) -> StoreResult<LoadOutcome> {
    let keys = &self.entry_keys(keys);
    let (expire, ttl) = touch.refresh.map_or_else(
      || (String::new(), String::new()),
      |r| (js_number(r.expire_timestamp), r.ttl_secs.to_string()),
    );
    let reply: Vec<String> = self
      .run(|mut c| async move {
        LOAD
          .key(&keys.entry)
          .key(&keys.lock)
          .arg(lock_name)
          .arg(js_number(touch.now))
          .arg(expire)
          .arg(ttl)
          .invoke_async(&mut c)
          .await
      })
      .await?;
    match reply.as_slice() {
      [status] if status == "missing" => Ok(LoadOutcome::Missing),
      [status] if status == "expired" => Ok(LoadOutcome::Expired),
      [status] if status == "locked" => Ok(LoadOutcome::Locked),
      [status, value, expire, created, read_at] if status == "loaded" => {
        // The script matched the envelope as text; make sure the value
        // really is JSON before handing it to JSON.parse.
        serde_json::from_str::<&RawValue>(value).map_err(|_| CacheError::Corrupt)?;
        Ok(LoadOutcome::Loaded(Loaded {
          value_json: value.clone(),
          expire_timestamp: json_number(expire),
          created_at: json_number(created),
          last_read_at: json_number(read_at),
        }))
      }
      _ => Err(CacheError::Corrupt),
    }
  }

  async fn destroy(&self, keys: &EntryKeys, lock_name: &str) -> StoreResult<Guarded<bool>> {
    let keys = &self.entry_keys(keys);
    let deleted: i64 = self
      .run(|mut c| async move { DESTROY.key(&keys.entry).key(&keys.lock).arg(lock_name).invoke_async(&mut c).await })
      .await?;
    Ok(if deleted < 0 { Guarded::Locked } else { Guarded::Done(deleted == 1) })
  }

  async fn lock(&self, lock_key: &str, lock_name: &str, ttl_secs: u64) -> StoreResult<bool> {
    let lock_key = &self.key(lock_key);
    self.run(|mut c| async move { LOCK.key(lock_key).arg(lock_name).arg(ttl_secs).invoke_async(&mut c).await }).await
  }

  async fn unlock(&self, lock_key: &str, lock_name: &str) -> StoreResult<bool> {
    let lock_key = &self.key(lock_key);
    self.run(|mut c| async move { UNLOCK.key(lock_key).arg(lock_name).invoke_async(&mut c).await }).await
  }

  async fn lock_holder(&self, lock_key: &str) -> StoreResult<Option<String>> {
    let lock_key = &self.key(lock_key);
    self.run(|mut c| async move { c.get(lock_key).await }).await
  }

  async fn keys(&self, prefix: &str) -> StoreResult<Vec<String>> {
    self.scan(prefix).await
  }

  async fn delete_prefix(&self, prefix: &str) -> StoreResult<()> {
    let keys = self.scan(prefix).await?;
    for batch in keys.chunks(BATCH) {
      let batch: Vec<_> = batch.iter().map(|key| self.key(key)).collect();
      let batch = &batch;
      let _: () = self.run(|mut c| async move { c.del(batch).await }).await?;
    }
    Ok(())
  }

  async fn dump(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
    let keys = self.scan(prefix).await?;
    let mut entries = Vec::with_capacity(keys.len());
    for batch in keys.chunks(BATCH) {
      // MGET answers nil for a list instead of failing, which leaves lists
      // out of the dump as the memory store does.
      let stored: Vec<_> = batch.iter().map(|key| self.key(key)).collect();
      let stored = &stored;
      let texts: Vec<Option<String>> =
        self.run(|mut c| async move { redis::cmd("MGET").arg(stored).query_async(&mut c).await }).await?;
      entries.extend(batch.iter().cloned().zip(texts).filter_map(|(key, text)| Some((key, text?))));
    }
    Ok(entries)
  }

  async fn restore(&self, entries: Vec<DumpedEntry>) -> StoreResult<()> {
    for batch in entries.chunks(BATCH) {
      let mut pipe = redis::pipe();
      for entry in batch {
        let key = self.key(&entry.key);
        match entry.ttl_secs {
          Some(secs) => pipe.set_ex(key, &entry.text, secs).ignore(),
          None => pipe.set(key, &entry.text).ignore(),
        };
      }
      let _: () = self.run(|mut c| async move { pipe.query_async(&mut c).await }).await?;
    }
    Ok(())
  }

  async fn push(&self, key: &str, item: String) -> StoreResult<u64> {
    let key = &self.key(key);
    self.run(|mut c| async move { c.rpush(key, item).await }).await
  }

  async fn pop(&self, key: &str) -> StoreResult<Option<String>> {
    let key = &self.key(key);
    self.run(|mut c| async move { c.lpop(key, None).await }).await
  }

  async fn list_length(&self, key: &str) -> StoreResult<u64> {
    let key = &self.key(key);
    self.run(|mut c| async move { c.llen(key).await }).await
  }

  /// Drops this store's handle on the connection; the socket closes once
  /// calls still under way have finished.
  async fn close(&self) -> StoreResult<()> {
    self.connection.lock().unwrap_or_else(|e| e.into_inner()).take();
    Ok(())
  }
}

fn json_number(text: &str) -> Option<f64> {
  text.parse().ok()
}

/// Makes a key prefix match itself literally in a SCAN pattern.
fn escape_glob(prefix: &str) -> String {
  let mut escaped = String::with_capacity(prefix.len());
  for c in prefix.chars() {
    if matches!(c, '*' | '?' | '[' | ']' | '\\') {
      escaped.push('\\');
    }
    escaped.push(c);
  }
  escaped
}

fn redis_error(error: redis::RedisError) -> CacheError {
  // Inside a script, Redis reports WRONGTYPE as part of the script's error.
  if error.code() == Some("WRONGTYPE") || error.to_string().contains("WRONGTYPE") {
    CacheError::WrongType
  } else if error.is_timeout() {
    CacheError::Timeout(format!("Redis timed out: {error}"))
  } else if error.is_connection_refusal() || error.is_io_error() || error.is_connection_dropped() {
    CacheError::Connection(format!("Redis connection failed: {error}"))
  } else {
    CacheError::Redis(error.to_string())
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn prefixes_are_matched_literally() {
    assert_eq!(escape_glob("app:*cache[1]?\\"), "app:\\*cache\\[1\\]\\?\\\\");
  }

  #[test]
  fn options_build_a_connection() {
    let options = RedisOptions {
      port: Some(6380),
      password: Some("pw".into()),
      db: Some(3),
      command_timeout_ms: Some(250.0),
      ..RedisOptions::default()
    };
    let config = RedisConfig::from_options(options).unwrap();
    assert_eq!(config.info.redis_settings().db(), 3);
    assert_eq!(config.info.redis_settings().password(), Some("pw"));
    assert_eq!(config.command_timeout, Duration::from_millis(250));
    assert!(RedisConfig::from_options(RedisOptions { port: Some(70000), ..RedisOptions::default() }).is_err());
    let negative = RedisOptions { connect_timeout_ms: Some(-1.0), ..RedisOptions::default() };
    assert!(RedisConfig::from_options(negative).is_err());
    let huge = RedisOptions { command_timeout_ms: Some(1e30), ..RedisOptions::default() };
    assert!(RedisConfig::from_options(huge).is_err());
  }

  #[test]
  fn tls_and_its_certificate_check_are_chosen_by_flags() {
    let tls = |tls, tls_insecure| {
      let options = RedisOptions { host: Some("h".into()), tls, tls_insecure, ..RedisOptions::default() };
      RedisConfig::from_options(options).unwrap().info.addr().clone()
    };
    assert!(matches!(tls(false, false), ConnectionAddr::Tcp(host, 6379) if host == "h"));
    assert!(matches!(tls(true, false), ConnectionAddr::TcpTls { insecure: false, .. }));
    assert!(matches!(tls(true, true), ConnectionAddr::TcpTls { insecure: true, .. }));
  }

  #[test]
  fn a_username_goes_with_its_password_even_when_empty() {
    let options = RedisOptions { username: Some("app".into()), password: Some(String::new()), ..RedisOptions::default() };
    let config = RedisConfig::from_options(options).unwrap();
    assert_eq!(config.info.redis_settings().username(), Some("app"));
    assert_eq!(config.info.redis_settings().password(), Some(""));
  }
}
