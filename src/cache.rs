//! actionhero's cache semantics, over any [`Store`]: key prefixes, the
//! envelope, expiry rounding, lock defaults and retry polling. Nothing here
//! knows which backend it runs on.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::envelope::{self, duration_ms, Clock, Envelope, Head, Lifetime, Loaded, Refresh, Touch, MAX_MS};
use crate::error::CacheError;
use crate::store::{DumpedEntry, EntryKeys, Guarded, LoadOutcome, Store};

pub type CacheResult<T> = Result<T, CacheError>;

/// The settings actionhero keeps as writable properties (`api.cache.lockName
/// = …` between calls): each call runs with them as they were when it started.
#[derive(Clone, Debug)]
pub struct Caller {
  pub cache_prefix: String,
  pub lock_prefix: String,
  pub lock_name: String,
  pub lock_duration_ms: f64,
  pub lock_retry_ms: f64,
}

/// How a cache key and its prefix become a store key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyNaming {
  /// `<prefix><key>`, as actionhero names them.
  Plain,
  /// `<prefix>{<key>}`, for Redis Cluster: the braces make the key its hash
  /// tag, so an entry, its lock and a save's staging key share one slot
  /// (one node), where one script can reach them all.
  HashTagged,
}

impl KeyNaming {
  fn name(self, prefix: &str, key: &str) -> String {
    match self {
      KeyNaming::Plain => [prefix, key].concat(),
      KeyNaming::HashTagged => [prefix, "{", key, "}"].concat(),
    }
  }

  /// A store key under `prefix` as `keys`, `locks` and dumps name it,
  /// `<prefix><key>`: the same answers as on one server. Keys not named
  /// this way (a JS node's) are answered as they are.
  fn unname(self, prefix: &str, stored: String) -> String {
    let tagged = stored.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('{')?.strip_suffix('}'));
    match (self, tagged) {
      (KeyNaming::HashTagged, Some(key)) => [prefix, key].concat(),
      _ => stored,
    }
  }

  /// The store key of a full key named `<prefix><key>` (from a dump file,
  /// or given to `pttl`), for the first of `prefixes` it starts with.
  fn store_key(self, prefixes: &[&str], full: &str) -> String {
    prefixes.iter().find_map(|prefix| Some(self.name(prefix, full.strip_prefix(prefix)?))).unwrap_or_else(|| full.to_owned())
  }
}

impl Caller {
  fn entry_key(&self, naming: KeyNaming, key: &str) -> String {
    naming.name(&self.cache_prefix, key)
  }

  fn lock_key(&self, naming: KeyNaming, key: &str) -> String {
    naming.name(&self.lock_prefix, key)
  }

  fn entry_keys(&self, naming: KeyNaming, key: &str) -> EntryKeys {
    EntryKeys { entry: self.entry_key(naming, key), lock: self.lock_key(naming, key) }
  }

  /// Both prefixes, the longer first, so that a key under both is taken for the more specific.
  fn prefixes(&self) -> [&str; 2] {
    let (cache, lock) = (self.cache_prefix.as_str(), self.lock_prefix.as_str());
    if cache.len() >= lock.len() { [cache, lock] } else { [lock, cache] }
  }
}

pub struct Cache<S> {
  store: Arc<S>,
  naming: KeyNaming,
  closed: AtomicBool,
}

impl<S: Store> Cache<S> {
  pub fn new(store: Arc<S>, naming: KeyNaming) -> Self {
    Cache { store, naming, closed: AtomicBool::new(false) }
  }

  /// Whether calls usually finish without waiting (see
  /// `Store::answers_at_once`); a closed cache always answers at once.
  pub fn answers_at_once(&self) -> bool {
    self.closed.load(Ordering::Acquire) || self.store.answers_at_once()
  }

  /// The store, unless `close` was called: a closed cache answers every call
  /// with an error rather than touching a connection it gave up.
  fn store(&self) -> CacheResult<&S> {
    if self.closed.load(Ordering::Acquire) {
      return Err(CacheError::Closed);
    }
    Ok(&*self.store)
  }

  /// `value` holds the value's JSON, or none where JSON leaves it out
  /// (`undefined`).
  pub async fn save(
    &self,
    key: &str,
    value: Head,
    expire_ms: Option<f64>,
    clock: Clock,
    caller: &Caller,
  ) -> CacheResult<bool> {
    let expire_ms = checked_ms("expireTimeMS", expire_ms)?;
    let now = clock.now();
    let text = envelope::encode(value, expire_ms.map(|ms| now + ms), Some(now), None);
    match self.store()?.save(&caller.entry_keys(self.naming, key), &caller.lock_name, text, save_lifetime(expire_ms)).await? {
      Guarded::Done(()) => Ok(true),
      Guarded::Locked => Err(CacheError::Locked),
    }
  }

  /// `expire_ms` resets the expiry of an entry that has one (actionhero's
  /// `options.expireTimeMS`, where 0 means "leave it"); `retry_ms` waits for
  /// another holder's lock.
  pub async fn load(
    &self,
    key: &str,
    expire_ms: Option<f64>,
    retry_ms: Option<f64>,
    clock: Clock,
    caller: &Caller,
  ) -> CacheResult<Loaded> {
    let expire_ms = checked_ms("expireTimeMS", expire_ms)?.filter(|ms| *ms != 0.0);
    let keys = caller.entry_keys(self.naming, key);
    retry_while_locked(retry_ms, caller, || async {
      let touch = clock.touch();
      let refresh = expire_ms.map(|ms| Refresh { expire_timestamp: touch.now + ms, lifetime: expire_lifetime(ms) });
      match self.store()?.load(&keys, &caller.lock_name, Touch { refresh, ..touch }).await? {
        LoadOutcome::Loaded(loaded) => Ok(loaded),
        LoadOutcome::Missing => Err(CacheError::NotFound),
        LoadOutcome::Expired => Err(CacheError::Expired),
        LoadOutcome::Locked => Err(CacheError::Locked),
      }
    })
    .await
  }

  pub async fn destroy(&self, key: &str, caller: &Caller) -> CacheResult<bool> {
    match self.store()?.destroy(&caller.entry_keys(self.naming, key), &caller.lock_name).await? {
      Guarded::Done(existed) => Ok(existed),
      Guarded::Locked => Err(CacheError::Locked),
    }
  }

  pub async fn lock(&self, key: &str, expire_ms: Option<f64>, caller: &Caller) -> CacheResult<bool> {
    let expire_ms = checked_ms("expireTimeMS", expire_ms)?.unwrap_or(caller.lock_duration_ms);
    self.store()?.lock(caller.lock_key(self.naming, key), &caller.lock_name, expire_lifetime(expire_ms)).await
  }

  pub async fn unlock(&self, key: &str, caller: &Caller) -> CacheResult<bool> {
    self.store()?.unlock(&caller.lock_key(self.naming, key), &caller.lock_name).await
  }

  /// True when the lock is free or `caller`'s; with `retry_ms`, keeps asking
  /// every `lockRetry` ms until it is, or the time is up.
  pub async fn check_lock(&self, key: &str, retry_ms: Option<f64>, caller: &Caller) -> CacheResult<bool> {
    let lock_key = caller.lock_key(self.naming, key);
    let free_or_mine = retry_while_locked(retry_ms, caller, || async {
      match self.store()?.lock_holder(&lock_key).await? {
        Some(holder) if holder != caller.lock_name => Err(CacheError::Locked),
        _ => Ok(()),
      }
    })
    .await;
    match free_or_mine {
      Ok(()) => Ok(true),
      Err(CacheError::Locked) => Ok(false),
      Err(other) => Err(other),
    }
  }

  pub async fn locks(&self, caller: &Caller) -> CacheResult<Vec<String>> {
    self.listed(&caller.lock_prefix).await
  }

  pub async fn keys(&self, caller: &Caller) -> CacheResult<Vec<String>> {
    self.listed(&caller.cache_prefix).await
  }

  async fn listed(&self, prefix: &str) -> CacheResult<Vec<String>> {
    let keys = self.store()?.keys(prefix).await?;
    Ok(keys.into_iter().map(|key| self.naming.unname(prefix, key)).collect())
  }

  pub async fn size(&self, caller: &Caller) -> CacheResult<u32> {
    Ok(self.store()?.keys(&caller.cache_prefix).await?.len() as u32)
  }

  /// Removes every entry and list under the cache prefix; locks stay.
  pub async fn clear(&self, caller: &Caller) -> CacheResult<bool> {
    self.store()?.delete_prefix(&caller.cache_prefix).await?;
    Ok(true)
  }

  /// Writes actionhero's dump file, `{ "<prefix><key>": "<envelope>" }`, and
  /// answers how many entries it holds.
  pub async fn dump_write(&self, file: &str, caller: &Caller) -> CacheResult<u32> {
    let entries = self.store()?.dump(&caller.cache_prefix).await?;
    let count = entries.len() as u32;
    let object: serde_json::Map<String, serde_json::Value> =
      entries.into_iter().map(|(key, text)| (self.naming.unname(&caller.cache_prefix, key), serde_json::Value::String(text))).collect();
    let json = serde_json::Value::Object(object).to_string();
    tokio::fs::write(file, json).await.map_err(|e| dump_file_error("write", file, e))?;
    Ok(count)
  }

  /// Replaces the cache with a dump file's entries, each keeping what is
  /// left of its expiry, and answers how many the file holds. The file is
  /// read and checked whole first, so a bad file leaves the cache untouched.
  pub async fn dump_read(&self, file: &str, clock: Clock, caller: &Caller) -> CacheResult<u32> {
    let store = self.store()?;
    let json = tokio::fs::read_to_string(file).await.map_err(|e| dump_file_error("read", file, e))?;
    let dumped: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json)
      .map_err(|e| CacheError::DumpFile(format!("dump file {file} is not a JSON object: {e}")))?;
    let count = dumped.len() as u32;
    let now = clock.now();
    let mut entries = Vec::with_capacity(dumped.len());
    for (key, text) in dumped {
      let serde_json::Value::String(text) = text else {
        return Err(CacheError::DumpFile(format!("dump file {file}: the entry {key} is not a string")));
      };
      let expire_timestamp = Envelope::parse(&text)
        .ok_or_else(|| CacheError::DumpFile(format!("dump file {file}: the entry {key} is not a cache envelope")))?
        .expire_timestamp;
      // As actionhero restores an entry: SET, then EXPIRE the seconds left,
      // rounded up; an entry whose time is up is gone again at once.
      let lifetime = expire_timestamp.map_or(Lifetime::Forever, |at| expire_lifetime(at - now));
      if lifetime != Lifetime::Gone {
        entries.push(DumpedEntry { key: self.naming.store_key(&[&caller.cache_prefix], &key), text, lifetime });
      }
    }
    store.delete_prefix(&caller.cache_prefix).await?;
    store.restore(entries).await?;
    Ok(count)
  }

  /// Appends to a list; items are stored as actionhero does, `{"data": item}`
  /// (`{}` for an item JSON leaves out).
  pub async fn push(&self, key: &str, item_json: Option<&str>, caller: &Caller) -> CacheResult<bool> {
    let item = item_json.map_or_else(|| "{}".to_owned(), |json| ["{\"data\":", json, "}"].concat());
    self.store()?.push(&caller.entry_key(self.naming, key), item).await?;
    Ok(true)
  }

  /// Takes the first item of a list: its stored `{"data": …}` text, checked
  /// to be a JSON object, or None when the list is empty.
  pub async fn pop(&self, key: &str, caller: &Caller) -> CacheResult<Option<String>> {
    let Some(text) = self.store()?.pop(&caller.entry_key(self.naming, key)).await? else {
      return Ok(None);
    };
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text) {
      Ok(_) => Ok(Some(text)),
      Err(_) => Err(CacheError::Corrupt),
    }
  }

  pub async fn list_length(&self, key: &str, caller: &Caller) -> CacheResult<u32> {
    Ok(self.store()?.list_length(&caller.entry_key(self.naming, key)).await? as u32)
  }

  /// The remaining lifetime of a full key (`<prefix><key>`), in ms, as Redis's PTTL.
  pub async fn pttl(&self, full_key: &str, caller: &Caller) -> CacheResult<f64> {
    let store_key = self.naming.store_key(&caller.prefixes(), full_key);
    Ok(self.store()?.pttl(&store_key).await? as f64)
  }

  /// Closing twice is harmless, as with a socket.
  pub async fn close(&self) -> CacheResult<bool> {
    if !self.closed.swap(true, Ordering::AcqRel) {
      self.store.close().await?;
    }
    Ok(true)
  }
}

/// Runs `attempt` until it is not refused by a lock, or `retry_ms` is spent,
/// asking again every `lockRetry` ms. Sleeping is a timer on the runtime, so
/// a waiting call holds no thread.
async fn retry_while_locked<T, F, Fut>(retry_ms: Option<f64>, caller: &Caller, mut attempt: F) -> CacheResult<T>
where
  F: FnMut() -> Fut,
  Fut: Future<Output = CacheResult<T>>,
{
  let retry = duration_ms(checked_ms("retry", retry_ms)?.unwrap_or(0.0));
  let interval = duration_ms(checked_ms("lockRetry", Some(caller.lock_retry_ms))?.unwrap_or(0.0).max(1.0));
  let started = tokio::time::Instant::now();
  loop {
    match attempt().await {
      Err(CacheError::Locked) if started.elapsed() < retry => {
        tokio::time::sleep(interval).await;
      }
      outcome => return outcome,
    }
  }
}

/// A save's lifetime, as actionhero 16 gives it: `EXPIRE ceil(ms / 1000)`
/// when that is non-zero (zero or less: the key goes at once), and no
/// expiry at all when it is zero (its `if (expireTimeSeconds)` skips it),
/// so an entry saved with -999..0 ms stays, answering `Object Expired`.
fn save_lifetime(expire_ms: Option<f64>) -> Lifetime {
  match expire_ms {
    Some(ms) if (ms / 1000.0).ceil() != 0.0 => expire_lifetime(ms),
    _ => Lifetime::Forever,
  }
}

/// `EXPIRE ceil(ms / 1000)`: whole seconds rounded up (a 1 ms lock holds
/// for 1 s); zero or less deletes the key.
pub fn expire_lifetime(ms: f64) -> Lifetime {
  let secs = (ms / 1000.0).ceil();
  if secs >= 1.0 {
    Lifetime::Secs(secs as u64)
  } else {
    Lifetime::Gone
  }
}

fn checked_ms(name: &str, ms: Option<f64>) -> CacheResult<Option<f64>> {
  match ms {
    Some(ms) if !ms.is_finite() || ms.abs() > MAX_MS => Err(CacheError::InvalidArgument(format!(
      "{name} must be a finite number of milliseconds within ±{MAX_MS}, got {ms}"
    ))),
    _ => Ok(ms),
  }
}

fn dump_file_error(action: &str, file: &str, error: std::io::Error) -> CacheError {
  CacheError::DumpFile(format!("cannot {action} dump file {file}: {error}"))
}

#[cfg(test)]
mod tests {
  use std::time::Duration;

  use super::*;
  use crate::store::memory::{MemoryStore, SharedMemoryStore};
  use crate::store::redis::{RedisConfig, RedisOptions, RedisStore};

  fn caller(name: &str) -> Caller {
    Caller {
      cache_prefix: "c:".into(),
      lock_prefix: "l:".into(),
      lock_name: name.to_owned(),
      lock_duration_ms: 10_000.0,
      lock_retry_ms: 10.0,
    }
  }

  /// A cache on an in-memory server of its own.
  fn cache() -> Cache<SharedMemoryStore> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Cache::new(MemoryStore::shared(&format!("cache-tests-{n}")), KeyNaming::Plain)
  }

  /// A call's future is copied whole, from the stack into its box and on,
  /// so a rare path kept inline costs every call its size: asking the
  /// Sentinels once made a save's future 4,136 bytes and a load's 4,920
  /// (now about 1,100 and 1,800). Nothing is sent: the store connects lazily.
  #[tokio::test]
  async fn a_redis_calls_future_stays_small() {
    let store = RedisStore::new(RedisConfig::from_options(RedisOptions::default()).unwrap()).unwrap();
    let cache = Cache::new(Arc::new(store), KeyNaming::Plain);
    let me = caller("me");
    let save = cache.save("k", Head::new(Some("1")), None, Clock::of_caller(None), &me);
    let load = cache.load("k", None, None, Clock::of_caller(None), &me);
    assert!(size_of_val(&save) <= 1536, "a save's future is {} bytes", size_of_val(&save));
    assert!(size_of_val(&load) <= 2560, "a load's future is {} bytes", size_of_val(&load));
  }

  #[test]
  fn lifetimes_are_actionhero_16s() {
    assert_eq!(expire_lifetime(1.0), Lifetime::Secs(1));
    assert_eq!(expire_lifetime(1000.0), Lifetime::Secs(1));
    assert_eq!(expire_lifetime(1001.0), Lifetime::Secs(2));
    assert_eq!(expire_lifetime(0.0), Lifetime::Gone);
    assert_eq!(expire_lifetime(-5000.0), Lifetime::Gone);
    assert_eq!(save_lifetime(None), Lifetime::Forever);
    assert_eq!(save_lifetime(Some(0.0)), Lifetime::Forever);
    assert_eq!(save_lifetime(Some(-999.0)), Lifetime::Forever);
    assert_eq!(save_lifetime(Some(-1000.0)), Lifetime::Gone);
    assert_eq!(save_lifetime(Some(1500.0)), Lifetime::Secs(2));
    assert_eq!(expire_lifetime(MAX_MS), Lifetime::Secs(8_640_000_000_000));
  }

  #[test]
  fn hash_tagged_keys_are_listed_and_dumped_as_on_one_server() {
    let tagged = KeyNaming::HashTagged;
    assert_eq!(tagged.name("c:", "user:1"), "c:{user:1}");
    assert_eq!(tagged.unname("c:", "c:{user:1}".into()), "c:user:1");
    assert_eq!(tagged.unname("c:", "c:js-node-key".into()), "c:js-node-key");
    assert_eq!(tagged.store_key(&["c:", "l:"], "l:k"), "l:{k}");
    assert_eq!(tagged.store_key(&["c:"], "other:k"), "other:k");
    assert_eq!(KeyNaming::Plain.name("c:", "k"), "c:k");
    assert_eq!(KeyNaming::Plain.unname("c:", "c:{k}".into()), "c:{k}");
    let nested = Caller { cache_prefix: "a:".into(), lock_prefix: "a:lock:".into(), ..caller("me") };
    assert_eq!(tagged.store_key(&nested.prefixes(), "a:lock:k"), "a:lock:{k}");
  }

  #[tokio::test]
  async fn save_then_load_reports_the_previous_read() {
    let cache = cache();
    let me = caller("me");
    assert!(cache.save("k", Head::new(Some(r#"{"a":1}"#)), Some(60_000.0), Clock::System, &me).await.unwrap());
    let first = cache.load("k", None, None, Clock::System, &me).await.unwrap();
    assert_eq!(first.value_json.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(first.last_read_at, None);
    let second = cache.load("k", None, None, Clock::System, &me).await.unwrap();
    assert!(second.last_read_at.is_some());
    assert_eq!(second.expire_timestamp, first.expire_timestamp);
  }

  #[tokio::test]
  async fn envelope_times_are_the_callers_and_lifetimes_run_on_the_system_clock() {
    let cache = cache();
    let me = caller("me");
    // A caller whose Date reads the first day of 1970 (jest's setSystemTime).
    let then = 86_400_000.0;
    let at = |ms: f64| Clock::of_caller(Some(then + ms));
    assert!(cache.save("k", Head::new(Some("1")), Some(60_000.0), at(0.0), &me).await.unwrap());
    let loaded = cache.load("k", None, None, at(1000.0), &me).await.unwrap();
    assert_eq!((loaded.created_at, loaded.expire_timestamp), (Some(then), Some(then + 60_000.0)));
    // The read kept the entry until its expireTimestamp on the caller's
    // clock: 59 s more on the system's, not gone at once as that time is.
    let left = cache.pttl("c:k", &me).await.unwrap();
    assert!((58_000.0..=59_000.0).contains(&left), "{left} ms left");
    assert_eq!(cache.load("k", None, None, at(60_000.0), &me).await, Err(CacheError::Expired));
    assert_eq!(cache.load("k", None, None, at(59_999.0), &me).await.unwrap().last_read_at, Some(then + 1000.0));
  }

  #[tokio::test]
  async fn another_holders_lock_refuses_writes_and_reads() {
    let cache = cache();
    let (me, other) = (caller("me"), caller("other"));
    cache.save("k", Head::new(Some("1")), None, Clock::System, &me).await.unwrap();
    assert!(cache.lock("k", None, &other).await.unwrap());
    assert!(!cache.lock("k", None, &other).await.unwrap(), "re-locking is refused, as with SETNX");
    assert_eq!(cache.save("k", Head::new(Some("2")), None, Clock::System, &me).await, Err(CacheError::Locked));
    assert_eq!(cache.load("k", None, None, Clock::System, &me).await, Err(CacheError::Locked));
    assert_eq!(cache.destroy("k", &me).await, Err(CacheError::Locked));
    assert!(!cache.lock("k", None, &me).await.unwrap());
    assert!(!cache.unlock("k", &me).await.unwrap());
    assert!(!cache.check_lock("k", None, &me).await.unwrap());
    assert!(cache.check_lock("k", None, &other).await.unwrap());
    assert!(cache.unlock("k", &other).await.unwrap());
    assert!(cache.save("k", Head::new(Some("2")), None, Clock::System, &me).await.unwrap());
  }

  #[tokio::test]
  async fn load_with_retry_waits_for_the_lock_to_go() {
    let cache = Arc::new(cache());
    let (me, other) = (caller("me"), caller("other"));
    cache.save("k", Head::new(Some("1")), None, Clock::System, &me).await.unwrap();
    cache.lock("k", None, &other).await.unwrap();
    let unlocker = {
      let cache = cache.clone();
      tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cache.unlock("k", &caller("other")).await.unwrap();
      })
    };
    assert_eq!(cache.load("k", None, Some(1000.0), Clock::System, &me).await.unwrap().value_json.as_deref(), Some("1"));
    unlocker.await.unwrap();
  }

  #[tokio::test]
  async fn bad_numbers_are_refused_before_anything_is_written() {
    let cache = cache();
    let me = caller("me");
    for bad in [f64::NAN, f64::INFINITY, 1e300, -f64::MAX] {
      assert!(matches!(cache.save("k", Head::new(Some("1")), Some(bad), Clock::System, &me).await, Err(CacheError::InvalidArgument(_))));
      assert!(matches!(cache.lock("k", Some(bad), &me).await, Err(CacheError::InvalidArgument(_))));
      assert!(matches!(cache.load("k", None, Some(bad), Clock::System, &me).await, Err(CacheError::InvalidArgument(_))));
    }
    let slow = Caller { lock_retry_ms: 1e300, ..me.clone() };
    assert!(matches!(cache.check_lock("k", Some(1.0), &slow).await, Err(CacheError::InvalidArgument(_))));
    assert_eq!(cache.load("k", None, None, Clock::System, &me).await, Err(CacheError::NotFound));
  }

  #[tokio::test]
  async fn lists_keep_their_order_and_items() {
    let cache = cache();
    let me = caller("me");
    cache.push("q", Some(r#"{"n":1}"#), &me).await.unwrap();
    cache.push("q", None, &me).await.unwrap();
    assert_eq!(cache.list_length("q", &me).await.unwrap(), 2);
    assert_eq!(cache.pop("q", &me).await.unwrap().as_deref(), Some(r#"{"data":{"n":1}}"#));
    assert_eq!(cache.pop("q", &me).await.unwrap().as_deref(), Some("{}"));
    assert_eq!(cache.pop("q", &me).await.unwrap(), None);
    assert_eq!(cache.list_length("q", &me).await.unwrap(), 0);
  }
}
