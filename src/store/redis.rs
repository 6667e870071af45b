//! The Redis store, wire-compatible with actionhero's JS cache: the same
//! keys and values, so JS and native nodes can share one Redis. Every guarded
//! write is one Lua script (atomic on the server); all calls share one
//! multiplexed connection (one per node of a cluster), so concurrent calls
//! pipeline. One server, a Redis Cluster or a Sentinel-managed master: see
//! `store::connection`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{
  AsyncCommands, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, FromRedisValue, IntoConnectionInfo, Pipeline,
  RedisConnectionInfo, ServerErrorKind, SetExpiry, SetOptions, TlsMode, Value,
};

use super::connection::{Connection, Failure, Link, Servers, Timeouts};
use super::scripts::{self, last_kept_ms, lifetime_args};
use super::{lock, DumpedEntry, EntryKeys, Guarded, LoadOutcome, Store, StoreResult, Touch};
use crate::envelope::{js_number, now_ms, Envelope, Lifetime, Rewrite, Touched, CREATED_MARK, EXPIRE_MARK, READ_MARK};
use crate::error::CacheError;

const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);
/// setTimeout's limit; far larger values would overflow a Duration.
const MAX_TIMEOUT_MS: f64 = 2_147_483_647.0;
/// Keys per SCAN step, and per DEL or MGET when working through a prefix.
const BATCH: usize = 500;

pub struct RedisConfig {
  servers: Servers,
  key_prefix: String,
  timeouts: Timeouts,
}

/// Where to connect, as index.js worked it out from the app's config the
/// way ioredis does (lib/store-options.js): URLs are already taken apart.
#[derive(Clone, Default)]
pub struct RedisOptions {
  pub host: Option<String>,
  pub port: Option<u32>,
  /// A Redis Cluster's startup nodes; host and port are then unused.
  pub cluster: Option<Vec<(String, u32)>>,
  /// The master the Sentinels name; host and port are then unused.
  pub sentinel: Option<SentinelOptions>,
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

/// ioredis's Sentinel options: where the Sentinels are, the master's name,
/// and the Sentinels' own credentials.
#[derive(Clone, Default)]
pub struct SentinelOptions {
  pub sentinels: Vec<(String, u32)>,
  pub name: String,
  pub username: Option<String>,
  pub password: Option<String>,
}

impl RedisConfig {
  pub fn from_options(options: RedisOptions) -> Result<Self, CacheError> {
    let servers = match (options.cluster.as_deref(), options.sentinel.as_ref()) {
      (Some(nodes), _) => Servers::Cluster(nodes.iter().map(|node| node_info(node, &options)).collect::<Result<_, _>>()?),
      (None, Some(sentinel)) => sentinel_servers(sentinel, &options)?,
      (None, None) => {
        let host = options.host.clone().unwrap_or_else(|| "localhost".to_owned());
        Servers::One(node_info(&(host, options.port.unwrap_or(6379)), &options)?)
      }
    };
    Ok(RedisConfig {
      servers,
      key_prefix: options.key_prefix,
      timeouts: Timeouts {
        connect: timeout_option("connectTimeoutMS", options.connect_timeout_ms)?,
        command: timeout_option("commandTimeoutMS", options.command_timeout_ms)?,
      },
    })
  }
}

fn invalid(error: redis::RedisError) -> CacheError {
  CacheError::InvalidArgument(format!("invalid Redis options: {error}"))
}

fn port_number(port: u32) -> Result<u16, CacheError> {
  u16::try_from(port).map_err(|_| CacheError::InvalidArgument(format!("invalid Redis port {port}")))
}

/// How to reach one Redis server (or cluster node), and log in to it.
fn node_info((host, port): &(String, u32), options: &RedisOptions) -> Result<ConnectionInfo, CacheError> {
  let (host, port) = (host.clone(), port_number(*port)?);
  let addr = if options.tls {
    ConnectionAddr::TcpTls { host, port, insecure: options.tls_insecure, tls_params: None }
  } else {
    ConnectionAddr::Tcp(host, port)
  };
  let info = addr.into_connection_info().map_err(invalid)?;
  let settings = login(info.redis_settings().clone(), options);
  Ok(info.set_redis_settings(settings))
}

fn login(mut settings: RedisConnectionInfo, options: &RedisOptions) -> RedisConnectionInfo {
  if let Some(username) = &options.username {
    settings = settings.set_username(username);
  }
  if let Some(password) = &options.password {
    settings = settings.set_password(password);
  }
  if let Some(db) = options.db {
    settings = settings.set_db(db);
  }
  settings
}

/// The Sentinels to ask for the master, with how to log in to the master
/// (the options' credentials, database and TLS) and to the Sentinels.
fn sentinel_servers(sentinel: &SentinelOptions, options: &RedisOptions) -> Result<Servers, CacheError> {
  let addresses =
    sentinel.sentinels.iter().map(|(host, port)| Ok(ConnectionAddr::Tcp(host.clone(), port_number(*port)?))).collect::<Result<Vec<_>, CacheError>>()?;
  let mut builder = SentinelClientBuilder::new(addresses.clone(), &sentinel.name, SentinelServerType::Master).map_err(invalid)?;
  builder = builder.set_client_to_redis_db(options.db.unwrap_or(0));
  if let Some(username) = &options.username {
    builder = builder.set_client_to_redis_username(username);
  }
  if let Some(password) = &options.password {
    builder = builder.set_client_to_redis_password(password);
  }
  if options.tls {
    builder = builder.set_client_to_redis_tls_mode(if options.tls_insecure { TlsMode::Insecure } else { TlsMode::Secure });
  }
  let mut sentinel_login = RedisConnectionInfo::default();
  if let Some(username) = &sentinel.username {
    builder = builder.set_client_to_sentinel_username(username);
    sentinel_login = sentinel_login.set_username(username);
  }
  if let Some(password) = &sentinel.password {
    builder = builder.set_client_to_sentinel_password(password);
    sentinel_login = sentinel_login.set_password(password);
  }
  let sentinels = addresses
    .into_iter()
    .map(|addr| Ok(addr.into_connection_info().map_err(invalid)?.set_redis_settings(sentinel_login.clone())))
    .collect::<Result<_, CacheError>>()?;
  Ok(Servers::Sentinel { client: builder.build().map_err(invalid)?, sentinels, name: sentinel.name.clone() })
}

fn timeout_option(name: &str, ms: Option<f64>) -> Result<Duration, CacheError> {
  match ms {
    None => Ok(DEFAULT_TIMEOUT),
    Some(ms) if ms.is_finite() && ms > 0.0 && ms <= MAX_TIMEOUT_MS => Ok(Duration::from_secs_f64(ms / 1000.0)),
    Some(ms) => Err(CacheError::InvalidArgument(format!("{name} must be a positive number, got {ms}"))),
  }
}

pub struct RedisStore {
  /// None once closed.
  connection: Mutex<Option<Arc<Connection>>>,
  /// How long one call may take, connecting included.
  deadline: Duration,
  key_prefix: String,
}

impl RedisStore {
  /// Connects lazily: nothing is sent until the first call. Must be called
  /// within a tokio runtime.
  pub fn new(config: RedisConfig) -> Result<Self, CacheError> {
    let deadline = config.timeouts.connect + config.timeouts.command;
    let connection = Connection::open(config.servers, config.timeouts).map_err(redis_error)?;
    Ok(RedisStore { connection: Mutex::new(Some(Arc::new(connection))), deadline, key_prefix: config.key_prefix })
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

  /// An entry's keys as `key` sends them; the same keys without a keyPrefix.
  fn entry_keys<'a>(&self, keys: &'a EntryKeys) -> Cow<'a, EntryKeys> {
    if self.key_prefix.is_empty() {
      Cow::Borrowed(keys)
    } else {
      Cow::Owned(EntryKeys { entry: self.key(&keys.entry).into_owned(), lock: self.key(&keys.lock).into_owned() })
    }
  }

  fn connection(&self) -> StoreResult<Arc<Connection>> {
    let connection = lock(&self.connection);
    connection.clone().ok_or(CacheError::Closed)
  }

  /// Runs one exchange with Redis, giving up with REDIS_TIMEOUT when it
  /// does not finish in time, so that no call hangs forever. When Redis has
  /// forgotten the scripts (NOSCRIPT), loads them all and tries once more.
  async fn run<T, F, Fut>(&self, attempt: F) -> StoreResult<T>
  where
    F: Fn(Link) -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
  {
    let connection = self.connection()?;
    let mut used = None;
    let exchange = async {
      let link = connection.link().await?;
      used = Some(link.clone());
      let outcome = match attempt(link.clone()).await {
        Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
          try_join_all(scripts::load_all().map(|load| {
            let mut link = link.clone();
            async move { load.query_async::<()>(&mut link).await }
          }))
          .await?;
          attempt(link.clone()).await
        }
        outcome => outcome,
      };
      if let Err(error) = &outcome {
        connection.failed(&link, Failure::Redis(error));
      }
      outcome
    };
    let outcome = tokio::time::timeout(self.deadline, exchange).await;
    match outcome {
      Ok(outcome) => outcome.map_err(redis_error),
      Err(_) => {
        if let Some(link) = &used {
          connection.failed(link, Failure::Deadline);
        }
        Err(CacheError::Timeout(format!("Redis did not answer within {} ms", self.deadline.as_millis())))
      }
    }
  }

  async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> StoreResult<T> {
    self.run(|mut link| async move { cmd.query_async(&mut link).await }).await
  }

  /// The pipeline's commands in one round trip. While their slot moves
  /// between cluster nodes they may need ASKING, which redis-rs sends once
  /// for a redirected pipeline, covering only its first command; then they
  /// go one by one, each redirected on its own.
  async fn query_pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> StoreResult<T> {
    self
      .run(|mut link| async move {
        match pipe.query_async(&mut link).await {
          Err(error) if slot_moving(&error) => {
            let mut replies = Vec::new();
            for cmd in pipe.cmd_iter() {
              replies.push(cmd.query_async::<Value>(&mut link).await?);
            }
            T::from_redis_value(Value::Array(replies)).map_err(Into::into)
          }
          outcome => outcome,
        }
      })
      .await
  }

  /// SCAN, not KEYS: it never blocks the server for long; on a cluster, a
  /// walk of each master. Each step is one exchange with its own deadline,
  /// so a large key space takes as many steps as it needs. Keys may come
  /// back twice, hence the set.
  async fn scan(&self, prefix: &str) -> StoreResult<Vec<String>> {
    let pattern = format!("{}*", escape_glob(prefix));
    let mut keys = HashSet::new();
    for node in self.run(|mut link| async move { Connection::masters(&mut link).await }).await? {
      let mut cursor: u64 = 0;
      loop {
        let scan = redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(BATCH).clone();
        let (node, scan) = (&node, &scan);
        let (next, batch): (u64, Vec<String>) =
          self.run(|mut link| async move { Connection::query_on(&mut link, node, scan).await }).await?;
        keys.extend(batch);
        if next == 0 {
          break;
        }
        cursor = next;
      }
    }
    Ok(keys.into_iter().collect())
  }
}

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
    // A lifetime in seconds (any expireTimeMS) goes on the new envelope's
    // key itself, and RENAME carries it over: the script then makes two
    // calls, not three, and is not told of it (each argument costs Redis
    // about a sixth of a µs). Any other is the script's to set.
    let mut guard = scripts::SAVE.call(&[&keys.entry, &keys.lock, &staging]);
    guard.arg(lock_name);
    let expiry = match lifetime {
      Lifetime::Secs(secs) => SetExpiry::EX(secs),
      other => {
        let (mode, arg) = lifetime_args(other);
        guard.arg(mode).arg(arg);
        SetExpiry::PX(STAGING_MS)
      }
    };
    let mut save = redis::pipe();
    save.set_options(&staging, envelope, SetOptions::default().with_expiration(expiry));
    save.add_command(guard);
    let ((), saved): ((), bool) = self.query_pipe(&save).await?;
    Ok(if saved { Guarded::Done(()) } else { Guarded::Locked })
  }

  /// One round trip, the value never passing through Lua: a plain read of
  /// the entry and its lock (one MGET: atomic, and followed through a
  /// cluster's redirections as a MULTI block is not), and beside it
  /// `scripts::TOUCH`, which finds the envelope's tail and rewrites it in
  /// place (and fails with WRONGTYPE on a list, which MGET reads as
  /// missing). The answer comes from the text read, checked here; the
  /// script's write is checked against it, and where they part (an envelope not in
  /// JSON.stringify's form, or no envelope at all but with a tail that looks
  /// like one, both rare) a second round trip puts the entry right, or back,
  /// so that nothing stays written for an entry that is not an envelope.
  /// The answer waits for the write, as actionhero's does: a node told of
  /// this read finds it recorded.
  async fn load(&self, keys: &EntryKeys, lock_name: &str, touch: Touch) -> StoreResult<LoadOutcome> {
    let keys = &self.entry_keys(keys);
    let mut read = redis::pipe();
    // PTTL, read beside the entry, is only for putting back what the script
    // wrote to an entry that turns out not to be an envelope.
    read.cmd("MGET").arg(&keys.entry).arg(&keys.lock).cmd("PTTL").arg(&keys.entry);
    read.add_command(touch_in_place_cmd(keys, lock_name, touch));
    let ((text, holder), pttl, written): LoadReplies = self.query_pipe(&read).await?;
    let Some(text) = text else {
      return Ok(LoadOutcome::Missing);
    };
    // A write to an entry saved between the read and the script is that
    // entry's own business.
    let written = written.filter(|written| written.saw_same_length_as(&text));
    let Some((text, envelope)) = std::str::from_utf8(&text).ok().and_then(|text| Some((text, Envelope::parse(text)?)))
    else {
      if let Some(left) = written.and_then(|written| written.applied_to(&text, touch)) {
        self.query::<i64>(&whole_cmd(keys, lock_name, &left, &text, lifetime_from_pttl(pttl))).await?;
      }
      return Err(CacheError::Corrupt);
    };
    if envelope.is_expired(touch.now) {
      return Ok(LoadOutcome::Expired);
    }
    if holder.is_some_and(|holder| holder != lock_name) {
      return Ok(LoadOutcome::Locked);
    }
    let Touched { rewrite, loaded, lifetime } = envelope.touched(text, touch);
    match written {
      Some(written) if written.agrees(&rewrite) => {}
      Some(written) => {
        if let Some(left) = written.applied_to(text.as_bytes(), touch) {
          let wanted = rewritten(text, rewrite);
          self.query::<i64>(&whole_cmd(keys, lock_name, &left, wanted.as_bytes(), lifetime)).await?;
        }
      }
      None => {
        self.query::<i64>(&touch_cmd(keys, lock_name, text, rewrite, lifetime)).await?;
      }
    }
    Ok(LoadOutcome::Loaded(loaded))
  }

  async fn destroy(&self, keys: &EntryKeys, lock_name: &str) -> StoreResult<Guarded<bool>> {
    let keys = &self.entry_keys(keys);
    let deleted: i64 = self.query(scripts::DESTROY.call(&[&keys.entry, &keys.lock]).arg(lock_name)).await?;
    Ok(if deleted < 0 { Guarded::Locked } else { Guarded::Done(deleted == 1) })
  }

  async fn lock(&self, lock_key: String, lock_name: &str, lifetime: Lifetime) -> StoreResult<bool> {
    let lock_key = &self.key(&lock_key);
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
      // Sent together, not as a pipeline: on a cluster the keys live in many slots.
      let texts = try_join_all(batch.iter().map(|key| async move {
        self.query::<Option<String>>(redis::cmd("GET").arg(self.key(key))).await
      }))
      .await?;
      // A key deleted since the SCAN is left out.
      entries.extend(batch.iter().cloned().zip(texts).filter_map(|(key, text)| Some((key, text?))));
    }
    Ok(entries)
  }

  async fn restore(&self, entries: Vec<DumpedEntry>) -> StoreResult<()> {
    for batch in entries.chunks(BATCH) {
      try_join_all(batch.iter().map(|entry| async move { self.query::<()>(&restore_cmd(&self.key(&entry.key), entry)).await }))
        .await?;
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
    lock(&self.connection).take();
    Ok(())
  }
}

/// How long a new envelope may wait beside its entry: far longer than the
/// round trip that moves it, so that only a save cut off halfway leaves
/// one, and not for long. (An entry with a lifetime in seconds has its
/// envelope written with that lifetime instead: one left behind lasts no
/// longer than the entry would have.)
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

/// A load's three replies: MGET's (the entry's text, the lock's holder),
/// PTTL's, and what `scripts::TOUCH` wrote.
type LoadReplies = ((Option<Vec<u8>>, Option<String>), i64, Option<TailWritten>);

/// `scripts::TOUCH` for this load: the tail is found by the script, the
/// numbers it writes are formatted here, as JavaScript writes them.
fn touch_in_place_cmd(keys: &EntryKeys, lock_name: &str, touch: Touch) -> Cmd {
  let mut cmd = scripts::TOUCH.call(&[&keys.entry, &keys.lock]);
  cmd.arg(lock_name).arg(js_number(Some(touch.now)));
  if touch.skew != 0.0 || touch.refresh.is_some() {
    cmd.arg(touch.skew);
  }
  if let Some(refresh) = touch.refresh {
    let (mode, arg) = lifetime_args(refresh.lifetime);
    cmd.arg(js_number(Some(refresh.expire_timestamp))).arg(mode).arg(arg);
  }
  cmd
}

/// Where `scripts::TOUCH` wrote: the tail it found at `offset` of an entry
/// of `length` bytes, as its one integer answers it.
struct TailWritten {
  offset: usize,
  length: usize,
}

impl FromRedisValue for TailWritten {
  fn from_redis_value(value: Value) -> Result<Self, redis::ParsingError> {
    let packed = u64::from_redis_value(value)?;
    let (length, old_tail) = ((packed >> 8) as usize, (packed & 0xff) as usize);
    let offset = length.checked_sub(old_tail).ok_or("TOUCH answered a tail longer than its entry")?;
    Ok(TailWritten { offset, length })
  }
}

impl TailWritten {
  /// Whether the script may have seen the entry as `text`: of its length
  /// (the text itself, if it changed meanwhile, tells in `applied_to`).
  fn saw_same_length_as(&self, text: &[u8]) -> bool {
    self.length == text.len()
  }

  /// Whether it wrote what Rust would have. It did when Rust's rewrite is
  /// a tail at the same offset: that tail is then in JSON.stringify's exact
  /// form, which the script copies number for number, and both judge the
  /// lifetime by the same rule from the same numbers.
  fn agrees(&self, rewrite: &Rewrite) -> bool {
    matches!(rewrite, Rewrite::Tail { at, .. } if *at == self.offset)
  }

  /// `text` as the script left it, its tail found and rebuilt as the script
  /// does; None when `text` has no such tail there (it is not what the
  /// script saw: the entry was written between the read and the script).
  fn applied_to(&self, text: &[u8], touch: Touch) -> Option<Vec<u8>> {
    let (expire_mark, created_mark, read_mark) = (EXPIRE_MARK.as_bytes(), CREATED_MARK.as_bytes(), READ_MARK.as_bytes());
    let rest = text.get(self.offset..)?.strip_prefix(expire_mark)?;
    let created = find(rest, created_mark)?;
    let read = created + created_mark.len() + find(&rest[created + created_mark.len()..], read_mark)?;
    // A refresh replaces an expiry, not a null.
    let refreshed = touch.refresh.filter(|_| &rest[..created] != b"null").map(|refresh| js_number(Some(refresh.expire_timestamp)));
    let expire = refreshed.as_deref().map_or(&rest[..created], str::as_bytes);
    let created_at = &rest[created + created_mark.len()..read];
    let now = js_number(Some(touch.now));
    Some([&text[..self.offset], expire_mark, expire, created_mark, created_at, read_mark, now.as_bytes(), b"}"].concat())
  }
}

/// Where `needle` first starts in `haystack` (a tail: a hundred bytes or so).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
  haystack.windows(needle.len()).position(|window| window == needle)
}

/// The lifetime a PTTL read says a key has: kept through the ms `pttl`
/// after the read, so gone from the one after (counted from now: a little
/// later never ends it early).
fn lifetime_from_pttl(pttl: i64) -> Lifetime {
  match pttl {
    pttl if pttl >= 0 => Lifetime::Until(now_ms() + pttl as f64 + 1.0),
    _ => Lifetime::Forever,
  }
}

/// `text` after `rewrite`.
fn rewritten(text: &str, rewrite: Rewrite) -> String {
  let mut text = text.to_owned();
  rewrite.apply(&mut text);
  text
}

/// The script that writes a load's changes once Rust has read the entry
/// (see `scripts::TOUCH_TAIL`).
fn touch_cmd(keys: &EntryKeys, lock_name: &str, text: &str, rewrite: Rewrite, lifetime: Lifetime) -> Cmd {
  match rewrite {
    Rewrite::Tail { at, new } if new.len() >= text.len() - at => {
      let (mode, arg) = lifetime_args(lifetime);
      let entry_keys = [keys.entry.as_str(), keys.lock.as_str()];
      scripts::TOUCH_TAIL.call(&entry_keys).arg(lock_name).arg(text.len()).arg(at).arg(&text[at..]).arg(new).arg(mode).arg(arg).clone()
    }
    rewrite => whole_cmd(keys, lock_name, text.as_bytes(), rewritten(text, rewrite).as_bytes(), lifetime),
  }
}

/// Replaces the entry's whole text, if it is still `expected`, by `wanted`.
fn whole_cmd(keys: &EntryKeys, lock_name: &str, expected: &[u8], wanted: &[u8], lifetime: Lifetime) -> Cmd {
  let (mode, arg) = lifetime_args(lifetime);
  scripts::TOUCH_WHOLE.call(&[&keys.entry, &keys.lock]).arg(lock_name).arg(expected).arg(wanted).arg(mode).arg(arg).clone()
}

/// One SET that writes a dumped entry with its lifetime.
fn restore_cmd(key: &str, entry: &DumpedEntry) -> Cmd {
  let mut set = redis::cmd("SET");
  set.arg(key).arg(&entry.text);
  match entry.lifetime {
    Lifetime::Forever => {}
    Lifetime::Secs(secs) => {
      set.arg("EX").arg(secs);
    }
    Lifetime::Until(at) => {
      set.arg("PXAT").arg(last_kept_ms(at));
    }
    Lifetime::Gone => return redis::cmd("DEL").arg(key).clone(),
  }
  set
}

/// Whether a cluster answered that the slot is being moved, after redis-rs
/// has followed the redirections it could.
fn slot_moving(error: &redis::RedisError) -> bool {
  matches!(error.kind(), ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask | ServerErrorKind::TryAgain))
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
  } else if error.kind() == ErrorKind::Server(ServerErrorKind::ClusterDown) {
    CacheError::ClusterDown(format!("Redis Cluster is down: {error}"))
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

  /// The one server's connection info.
  fn info(options: RedisOptions) -> ConnectionInfo {
    match RedisConfig::from_options(options).unwrap().servers {
      Servers::One(info) => info,
      _ => panic!("not one server"),
    }
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
    assert_eq!(RedisConfig::from_options(options.clone()).unwrap().timeouts.command, Duration::from_millis(250));
    let info = info(options);
    assert_eq!(info.redis_settings().db(), 3);
    assert_eq!(info.redis_settings().password(), Some("pw"));
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
      info(options).addr().clone()
    };
    assert!(matches!(tls(false, false), ConnectionAddr::Tcp(host, 6379) if host == "h"));
    assert!(matches!(tls(true, false), ConnectionAddr::TcpTls { insecure: false, .. }));
    assert!(matches!(tls(true, true), ConnectionAddr::TcpTls { insecure: true, .. }));
  }

  #[test]
  fn a_username_goes_with_its_password_even_when_empty() {
    let options = RedisOptions { username: Some("app".into()), password: Some(String::new()), ..RedisOptions::default() };
    let info = info(options);
    assert_eq!(info.redis_settings().username(), Some("app"));
    assert_eq!(info.redis_settings().password(), Some(""));
  }

  #[test]
  fn cluster_nodes_each_log_in_and_a_bad_port_is_refused() {
    let nodes = vec![("a".to_owned(), 7000), ("b".to_owned(), 7001)];
    let options = RedisOptions { cluster: Some(nodes), password: Some("pw".into()), ..RedisOptions::default() };
    let Servers::Cluster(infos) = RedisConfig::from_options(options).unwrap().servers else { panic!("not a cluster") };
    assert_eq!(infos.len(), 2);
    assert!(infos.iter().all(|info| info.redis_settings().password() == Some("pw")));
    let bad = RedisOptions { cluster: Some(vec![("a".to_owned(), 70000)]), ..RedisOptions::default() };
    assert!(RedisConfig::from_options(bad).is_err());
  }

  #[test]
  fn a_hash_tag_is_what_cluster_hashes() {
    assert_eq!(hash_tag("c:{user:1}"), Some("user:1"));
    assert_eq!(hash_tag("c:{}x"), None);
    assert_eq!(hash_tag("plain"), None);
    assert!(staging_key("c:{user:1}").contains("{user:1}"));
  }
}
