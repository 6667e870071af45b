//! The Redis store, wire-compatible with actionhero's JS cache: the same
//! keys and values, so JS and native nodes can share one Redis. Every guarded
//! write is one Lua script (atomic on the server); all calls share one
//! multiplexed connection, so concurrent calls pipeline.

use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
  AsyncCommands, Cmd, ConnectionAddr, ErrorKind, FromRedisValue, IntoConnectionInfo, Pipeline, ServerErrorKind, SetExpiry,
  SetOptions,
};

use super::scripts::{self, lifetime_args};
use super::{DumpedEntry, EntryKeys, Guarded, LoadOutcome, Store, StoreResult, Touch};
use crate::envelope::{Envelope, Lifetime, Rewrite, Touched};
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
  /// does not finish in time, so that no call hangs forever. When Redis has
  /// forgotten the scripts (NOSCRIPT), loads them all and tries once more.
  async fn run<T, F, Fut>(&self, attempt: F) -> StoreResult<T>
  where
    F: Fn(ConnectionManager) -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
  {
    let connection = self.connection()?;
    let exchange = async {
      match attempt(connection.clone()).await {
        Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
          let _: () = scripts::load_all().query_async(&mut connection.clone()).await?;
          attempt(connection).await
        }
        outcome => outcome,
      }
    };
    match tokio::time::timeout(self.deadline, exchange).await {
      Ok(outcome) => outcome.map_err(redis_error),
      Err(_) => Err(CacheError::Timeout(format!("Redis did not answer within {} ms", self.deadline.as_millis()))),
    }
  }

  async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> StoreResult<T> {
    self.run(|mut c| async move { cmd.query_async(&mut c).await }).await
  }

  async fn query_pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> StoreResult<T> {
    self.run(|mut c| async move { pipe.query_async(&mut c).await }).await
  }

  /// The entry's text and its lock's holder, read together (MULTI), so the
  /// lock state is the one the text was read under.
  async fn read_entry(&self, keys: &EntryKeys) -> StoreResult<(Option<Vec<u8>>, Option<String>)> {
    self.query_pipe(redis::pipe().atomic().get(&keys.entry).get(&keys.lock)).await
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

#[async_trait]
impl Store for RedisStore {
  fn answers_at_once(&self) -> bool {
    false
  }

  /// One round trip, the value never passing through Lua: a plain SET of
  /// the new envelope beside the entry, then a small script that checks the
  /// lock and renames it into place (or drops it).
  async fn save(&self, keys: &EntryKeys, lock_name: &str, envelope: String, lifetime: Lifetime)
    -> StoreResult<Guarded<()>> {
    let keys = &self.entry_keys(keys);
    // Under keyPrefix too: an ACL that confines the app to it allows it.
    let staging = self.key(&staging_key(&keys.entry)).into_owned();
    let (mode, arg) = lifetime_args(lifetime);
    let mut save = redis::pipe();
    save.set_options(&staging, envelope, SetOptions::default().with_expiration(SetExpiry::PX(STAGING_MS))).ignore();
    save.add_command(scripts::SAVE.call(&[&keys.entry, &keys.lock, &staging]).arg(lock_name).arg(mode).arg(arg).take());
    let (saved,): (bool,) = self.query_pipe(&save).await?;
    Ok(if saved { Guarded::Done(()) } else { Guarded::Locked })
  }

  /// Two round trips, the value never passing through Lua: a plain read
  /// of the entry and its lock, checked here (so nothing is written for an
  /// entry that is not an envelope), then a small script that rewrites the
  /// envelope's tail unless the entry changed meanwhile. The answer waits
  /// for the write, as actionhero's does: a node told of this read finds it
  /// recorded.
  async fn load(&self, keys: &EntryKeys, lock_name: &str, touch: Touch) -> StoreResult<LoadOutcome> {
    let keys = &self.entry_keys(keys);
    let (text, holder) = self.read_entry(keys).await?;
    let Some(text) = text else {
      return Ok(LoadOutcome::Missing);
    };
    let text = String::from_utf8(text).map_err(|_| CacheError::Corrupt)?;
    let envelope = Envelope::parse(&text).ok_or(CacheError::Corrupt)?;
    if envelope.is_expired(touch.now) {
      return Ok(LoadOutcome::Expired);
    }
    if holder.is_some_and(|holder| holder != lock_name) {
      return Ok(LoadOutcome::Locked);
    }
    let Touched { rewrite, loaded, lifetime } = envelope.touched(&text, touch);
    let _: i64 = self.query(&touch_cmd(keys, lock_name, &text, rewrite, lifetime)).await?;
    Ok(LoadOutcome::Loaded(loaded))
  }

  async fn destroy(&self, keys: &EntryKeys, lock_name: &str) -> StoreResult<Guarded<bool>> {
    let keys = &self.entry_keys(keys);
    let deleted: i64 = self.query(scripts::DESTROY.call(&[&keys.entry, &keys.lock]).arg(lock_name)).await?;
    Ok(if deleted < 0 { Guarded::Locked } else { Guarded::Done(deleted == 1) })
  }

  async fn lock(&self, lock_key: &str, lock_name: &str, lifetime: Lifetime) -> StoreResult<bool> {
    let lock_key = &self.key(lock_key);
    let (mode, arg) = lifetime_args(lifetime);
    self.query(scripts::LOCK.call(&[lock_key]).arg(lock_name).arg(mode).arg(arg)).await
  }

  async fn unlock(&self, lock_key: &str, lock_name: &str) -> StoreResult<bool> {
    let lock_key = &self.key(lock_key);
    self.query(scripts::UNLOCK.call(&[lock_key]).arg(lock_name)).await
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
      // One GET per key, as actionhero does: a list fails with WRONGTYPE.
      let mut pipe = redis::pipe();
      for key in batch {
        pipe.get(self.key(key));
      }
      let texts: Vec<Option<String>> = self.query_pipe(&pipe).await?;
      // A key deleted since the SCAN is left out.
      entries.extend(batch.iter().cloned().zip(texts).filter_map(|(key, text)| Some((key, text?))));
    }
    Ok(entries)
  }

  async fn restore(&self, entries: Vec<DumpedEntry>) -> StoreResult<()> {
    for batch in entries.chunks(BATCH) {
      let mut pipe = redis::pipe();
      for entry in batch {
        let key = self.key(&entry.key);
        pipe.set(&key, &entry.text).ignore();
        match entry.lifetime {
          Lifetime::Forever => {}
          Lifetime::Secs(secs) => {
            pipe.expire(&key, secs as i64).ignore();
          }
          Lifetime::Until(at) => {
            pipe.pexpire_at(&key, at.ceil() as i64).ignore();
          }
          Lifetime::Gone => {
            pipe.del(&key).ignore();
          }
        }
      }
      let _: () = self.query_pipe(&pipe).await?;
    }
    Ok(())
  }

  async fn push(&self, key: &str, item: String) -> StoreResult<u64> {
    let key = &self.key(key);
    self.query(redis::cmd("RPUSH").arg(key).arg(item)).await
  }

  async fn pop(&self, key: &str) -> StoreResult<Option<String>> {
    let key = &self.key(key);
    self.run(|mut c| async move { c.lpop(key, None).await }).await
  }

  async fn list_length(&self, key: &str) -> StoreResult<u64> {
    let key = &self.key(key);
    self.run(|mut c| async move { c.llen(key).await }).await
  }

  async fn pttl(&self, key: &str) -> StoreResult<i64> {
    let key = &self.key(key);
    self.run(|mut c| async move { c.pttl(key).await }).await
  }

  /// Drops this store's handle on the connection; the socket closes once
  /// calls still under way have finished.
  async fn close(&self) -> StoreResult<()> {
    self.connection.lock().unwrap_or_else(|e| e.into_inner()).take();
    Ok(())
  }
}

/// How long a new envelope may wait beside its entry: far longer than the
/// round trip that moves it, so that only a save cut off halfway leaves
/// one, and not for long.
const STAGING_MS: u64 = 60_000;

/// Where `save` writes a new envelope before moving it into place: outside
/// the cache prefix (no `keys` or `size` of any node sees it), in the
/// entry's hash slot (`{…}`: the same node in a cluster), unique.
fn staging_key(entry: &str) -> String {
  static NEXT: AtomicU64 = AtomicU64::new(0);
  static PROCESS: LazyLock<String> =
    LazyLock::new(|| format!("{}.{}", std::process::id(), crate::envelope::now_ms() as u64));
  let n = NEXT.fetch_add(1, Ordering::Relaxed);
  let tag = hash_tag(entry).unwrap_or(entry);
  format!("actionhero-native-cache:staging:{{{tag}}}:{}.{n}", *PROCESS)
}

/// The part of a key Redis Cluster hashes, when it has one: what stands
/// between its first `{` and the next `}`, when not empty.
fn hash_tag(key: &str) -> Option<&str> {
  let open = key.find('{')?;
  let close = key[open + 1..].find('}')?;
  (close > 0).then(|| &key[open + 1..open + 1 + close])
}

/// The script that writes a load's changes (see `scripts::TOUCH_TAIL`).
fn touch_cmd(keys: &EntryKeys, lock_name: &str, text: &str, rewrite: Rewrite, lifetime: Lifetime) -> Cmd {
  let (mode, arg) = lifetime_args(lifetime);
  let entry_keys = [keys.entry.as_str(), keys.lock.as_str()];
  match rewrite {
    Rewrite::Tail { at, old, new } if new.len() >= old.len() => {
      scripts::TOUCH_TAIL.call(&entry_keys).arg(lock_name).arg(text.len()).arg(at).arg(old).arg(new).arg(mode).arg(arg).clone()
    }
    rewrite => {
      let whole = match rewrite {
        Rewrite::Tail { at, new, .. } => [&text[..at], &new].concat(),
        Rewrite::Whole(whole) => whole,
      };
      scripts::TOUCH_WHOLE.call(&entry_keys).arg(lock_name).arg(text).arg(whole).arg(mode).arg(arg).clone()
    }
  }
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
