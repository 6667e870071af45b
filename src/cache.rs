//! actionhero's cache semantics, over any [`Store`]: key prefixes, the
//! envelope, expiry rounding, lock defaults and retry polling. Nothing here
//! knows which backend it runs on.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::envelope::{self, Envelope};
use crate::error::CacheError;
use crate::store::{DumpedEntry, EntryKeys, Guarded, LoadOutcome, Loaded, Refresh, Store, Touch};

pub type CacheResult<T> = Result<T, CacheError>;

/// The settings actionhero keeps as writable properties (`api.cache.lockName
/// = …` between calls): each call runs with them as they were when it started.
#[derive(Clone, Debug)]
pub struct Caller {
  pub lock_name: String,
  pub lock_duration_ms: f64,
  pub lock_retry_ms: f64,
}

pub struct Cache {
  store: Arc<dyn Store>,
  cache_prefix: String,
  lock_prefix: String,
  closed: AtomicBool,
}

impl Cache {
  pub fn new(store: Arc<dyn Store>, cache_prefix: String, lock_prefix: String) -> Self {
    Cache { store, cache_prefix, lock_prefix, closed: AtomicBool::new(false) }
  }

  /// Whether calls usually finish without waiting (see
  /// `Store::answers_at_once`); a closed cache always answers at once.
  pub fn answers_at_once(&self) -> bool {
    self.closed.load(Ordering::Acquire) || self.store.answers_at_once()
  }

  /// The store, unless `close` was called: a closed cache answers every call
  /// with an error rather than touching a connection it gave up.
  fn store(&self) -> CacheResult<&dyn Store> {
    if self.closed.load(Ordering::Acquire) {
      return Err(CacheError::Closed);
    }
    Ok(&*self.store)
  }

  pub async fn save(
    &self,
    key: &str,
    value_json: &str,
    expire_ms: Option<f64>,
    caller: &Caller,
  ) -> CacheResult<bool> {
    let expire_ms = finite("expireTimeMS", expire_ms)?;
    let now = now_ms();
    let text = envelope::encode(value_json, expire_ms.map(|ms| now + ms), Some(now), None);
    let ttl = expire_ms.map(lifetime_secs);
    match self.store()?.save(&self.entry_keys(key), &caller.lock_name, text, ttl).await? {
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
    caller: &Caller,
  ) -> CacheResult<Loaded> {
    let expire_ms = finite("expireTimeMS", expire_ms)?.filter(|ms| *ms != 0.0);
    let keys = self.entry_keys(key);
    retry_while_locked(retry_ms, caller, || async {
      let now = now_ms();
      let refresh = expire_ms.map(|ms| Refresh { expire_timestamp: now + ms, ttl_secs: lifetime_secs(ms) });
      match self.store()?.load(&keys, &caller.lock_name, Touch { now, refresh }).await? {
        LoadOutcome::Loaded(loaded) => Ok(loaded),
        LoadOutcome::Missing => Err(CacheError::NotFound),
        LoadOutcome::Expired => Err(CacheError::Expired),
        LoadOutcome::Locked => Err(CacheError::Locked),
      }
    })
    .await
  }

  pub async fn destroy(&self, key: &str, caller: &Caller) -> CacheResult<bool> {
    match self.store()?.destroy(&self.entry_keys(key), &caller.lock_name).await? {
      Guarded::Done(existed) => Ok(existed),
      Guarded::Locked => Err(CacheError::Locked),
    }
  }

  pub async fn lock(&self, key: &str, expire_ms: Option<f64>, caller: &Caller) -> CacheResult<bool> {
    let expire_ms = finite("expireTimeMS", expire_ms)?.unwrap_or(caller.lock_duration_ms);
    self.store()?.lock(&self.lock_key(key), &caller.lock_name, lifetime_secs(expire_ms)).await
  }

  pub async fn unlock(&self, key: &str, caller: &Caller) -> CacheResult<bool> {
    self.store()?.unlock(&self.lock_key(key), &caller.lock_name).await
  }

  /// True when the lock is free or `caller`'s; with `retry_ms`, keeps asking
  /// every `lockRetry` ms until it is, or the time is up.
  pub async fn check_lock(&self, key: &str, retry_ms: Option<f64>, caller: &Caller) -> CacheResult<bool> {
    let lock_key = self.lock_key(key);
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

  pub async fn locks(&self) -> CacheResult<Vec<String>> {
    self.store()?.keys(&self.lock_prefix).await
  }

  pub async fn keys(&self) -> CacheResult<Vec<String>> {
    self.store()?.keys(&self.cache_prefix).await
  }

  pub async fn size(&self) -> CacheResult<u32> {
    Ok(self.keys().await?.len() as u32)
  }

  /// Removes every entry and list under the cache prefix; locks stay.
  pub async fn clear(&self) -> CacheResult<bool> {
    self.store()?.delete_prefix(&self.cache_prefix).await?;
    Ok(true)
  }

  /// Writes actionhero's dump file, `{ "<prefix><key>": "<envelope>" }`, and
  /// answers how many entries it holds.
  pub async fn dump_write(&self, file: &str) -> CacheResult<u32> {
    let entries = self.store()?.dump(&self.cache_prefix).await?;
    let count = entries.len() as u32;
    let object: serde_json::Map<String, serde_json::Value> =
      entries.into_iter().map(|(key, text)| (key, serde_json::Value::String(text))).collect();
    let json = serde_json::Value::Object(object).to_string();
    tokio::fs::write(file, json).await.map_err(|e| dump_file_error("write", file, e))?;
    Ok(count)
  }

  /// Replaces the cache with a dump file's entries, each keeping what is
  /// left of its expiry, and answers how many the file holds. The file is
  /// read and checked whole first, so a bad file leaves the cache untouched.
  pub async fn dump_read(&self, file: &str) -> CacheResult<u32> {
    let store = self.store()?;
    let json = tokio::fs::read_to_string(file).await.map_err(|e| dump_file_error("read", file, e))?;
    let dumped: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json)
      .map_err(|e| CacheError::DumpFile(format!("dump file {file} is not a JSON object: {e}")))?;
    let count = dumped.len() as u32;
    let now = now_ms();
    let mut entries = Vec::with_capacity(dumped.len());
    for (key, text) in dumped {
      let serde_json::Value::String(text) = text else {
        return Err(CacheError::DumpFile(format!("dump file {file}: the entry {key} is not a string")));
      };
      let expire_timestamp = Envelope::parse(&text)
        .ok_or_else(|| CacheError::DumpFile(format!("dump file {file}: the entry {key} is not a cache envelope")))?
        .expire_timestamp;
      let ttl_secs = match expire_timestamp {
        None => None,
        Some(at) => match remaining_secs(at, now) {
          Some(secs) => Some(secs),
          None => continue, // Redis would already have dropped it
        },
      };
      entries.push(DumpedEntry { key, text, ttl_secs });
    }
    store.delete_prefix(&self.cache_prefix).await?;
    store.restore(entries).await?;
    Ok(count)
  }

  /// Appends to a list; items are stored as actionhero does, `{"data": item}`.
  pub async fn push(&self, key: &str, item_json: &str) -> CacheResult<bool> {
    self.store()?.push(&self.entry_key(key), format!("{{\"data\":{item_json}}}")).await?;
    Ok(true)
  }

  /// Takes the first item of a list: its JSON text, or None when the list is empty.
  pub async fn pop(&self, key: &str) -> CacheResult<Option<String>> {
    let Some(text) = self.store()?.pop(&self.entry_key(key)).await? else {
      return Ok(None);
    };
    #[derive(Deserialize)]
    struct ListItem<'a> {
      #[serde(borrow)]
      data: Option<&'a RawValue>,
    }
    let item: ListItem = serde_json::from_str(&text).map_err(|_| CacheError::Corrupt)?;
    Ok(Some(item.data.map_or("null", RawValue::get).to_owned()))
  }

  pub async fn list_length(&self, key: &str) -> CacheResult<u32> {
    Ok(self.store()?.list_length(&self.entry_key(key)).await? as u32)
  }

  /// Closing twice is harmless, as with a socket.
  pub async fn close(&self) -> CacheResult<bool> {
    if !self.closed.swap(true, Ordering::AcqRel) {
      self.store.close().await?;
    }
    Ok(true)
  }

  fn entry_key(&self, key: &str) -> String {
    [&self.cache_prefix, key].concat()
  }

  fn lock_key(&self, key: &str) -> String {
    [&self.lock_prefix, key].concat()
  }

  fn entry_keys(&self, key: &str) -> EntryKeys {
    EntryKeys { entry: self.entry_key(key), lock: self.lock_key(key) }
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
  let retry_ms = finite("retry", retry_ms)?.unwrap_or(0.0);
  let interval = Duration::from_secs_f64(finite("lockRetry", Some(caller.lock_retry_ms))?.unwrap_or(0.0).max(1.0) / 1000.0);
  let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(retry_ms.max(0.0) / 1000.0);
  loop {
    match attempt().await {
      Err(CacheError::Locked) if tokio::time::Instant::now() < deadline => {
        tokio::time::sleep(interval).await;
      }
      outcome => return outcome,
    }
  }
}

/// The physical lifetime actionhero gives an entry or lock: whole seconds,
/// rounded up (a 1 ms lock holds for 1 s). Zero and negative times get one
/// second, so an entry that is already logically expired still answers
/// `Object Expired` for a moment instead of living forever or not at all.
pub fn lifetime_secs(expire_ms: f64) -> u64 {
  (expire_ms / 1000.0).ceil().max(1.0) as u64
}

/// Whole seconds left until `expire_timestamp`, rounded up as actionhero does
/// when it restores a dump; None when nothing is left.
fn remaining_secs(expire_timestamp: f64, now: f64) -> Option<u64> {
  let secs = ((expire_timestamp - now) / 1000.0).ceil();
  (secs >= 1.0).then_some(secs as u64)
}

pub fn now_ms() -> f64 {
  SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64)
}

fn finite(name: &str, ms: Option<f64>) -> CacheResult<Option<f64>> {
  match ms {
    Some(ms) if !ms.is_finite() => Err(CacheError::InvalidArgument(format!("{name} must be a finite number, got {ms}"))),
    _ => Ok(ms),
  }
}

fn dump_file_error(action: &str, file: &str, error: std::io::Error) -> CacheError {
  CacheError::DumpFile(format!("cannot {action} dump file {file}: {error}"))
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::store::memory::MemoryStore;

  fn caller(name: &str) -> Caller {
    Caller { lock_name: name.to_owned(), lock_duration_ms: 10_000.0, lock_retry_ms: 10.0 }
  }

  fn cache() -> Cache {
    Cache::new(Arc::new(MemoryStore::new()), "c:".into(), "l:".into())
  }

  #[test]
  fn lifetimes_round_up_to_whole_seconds() {
    assert_eq!(lifetime_secs(1.0), 1);
    assert_eq!(lifetime_secs(1000.0), 1);
    assert_eq!(lifetime_secs(1001.0), 2);
    assert_eq!(lifetime_secs(0.0), 1);
    assert_eq!(lifetime_secs(-5000.0), 1);
    assert_eq!(remaining_secs(10_500.0, 10_000.0), Some(1));
    assert_eq!(remaining_secs(10_000.0, 10_000.0), None);
  }

  #[tokio::test]
  async fn save_then_load_reports_the_previous_read() {
    let cache = cache();
    let me = caller("me");
    assert!(cache.save("k", r#"{"a":1}"#, Some(60_000.0), &me).await.unwrap());
    let first = cache.load("k", None, None, &me).await.unwrap();
    assert_eq!(first.value_json, r#"{"a":1}"#);
    assert_eq!(first.last_read_at, None);
    let second = cache.load("k", None, None, &me).await.unwrap();
    assert!(second.last_read_at.is_some());
    assert_eq!(second.expire_timestamp, first.expire_timestamp);
  }

  #[tokio::test]
  async fn another_holders_lock_refuses_writes_and_reads() {
    let cache = cache();
    let (me, other) = (caller("me"), caller("other"));
    cache.save("k", "1", None, &me).await.unwrap();
    assert!(cache.lock("k", None, &other).await.unwrap());
    assert_eq!(cache.save("k", "2", None, &me).await, Err(CacheError::Locked));
    assert_eq!(cache.load("k", None, None, &me).await, Err(CacheError::Locked));
    assert_eq!(cache.destroy("k", &me).await, Err(CacheError::Locked));
    assert!(!cache.lock("k", None, &me).await.unwrap());
    assert!(!cache.unlock("k", &me).await.unwrap());
    assert!(!cache.check_lock("k", None, &me).await.unwrap());
    assert!(cache.check_lock("k", None, &other).await.unwrap());
    assert!(cache.unlock("k", &other).await.unwrap());
    assert!(cache.save("k", "2", None, &me).await.unwrap());
  }

  #[tokio::test]
  async fn load_with_retry_waits_for_the_lock_to_go() {
    let cache = Arc::new(cache());
    let (me, other) = (caller("me"), caller("other"));
    cache.save("k", "1", None, &me).await.unwrap();
    cache.lock("k", None, &other).await.unwrap();
    let unlocker = {
      let cache = cache.clone();
      tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cache.unlock("k", &caller("other")).await.unwrap();
      })
    };
    assert_eq!(cache.load("k", None, Some(1000.0), &me).await.unwrap().value_json, "1");
    unlocker.await.unwrap();
  }

  #[tokio::test]
  async fn bad_numbers_are_refused_before_anything_is_written() {
    let cache = cache();
    let me = caller("me");
    assert!(matches!(cache.save("k", "1", Some(f64::NAN), &me).await, Err(CacheError::InvalidArgument(_))));
    assert_eq!(cache.load("k", None, None, &me).await, Err(CacheError::NotFound));
  }

  #[tokio::test]
  async fn lists_keep_their_order_and_items() {
    let cache = cache();
    cache.push("q", r#"{"n":1}"#).await.unwrap();
    cache.push("q", "2").await.unwrap();
    assert_eq!(cache.list_length("q").await.unwrap(), 2);
    assert_eq!(cache.pop("q").await.unwrap().as_deref(), Some(r#"{"n":1}"#));
    assert_eq!(cache.pop("q").await.unwrap().as_deref(), Some("2"));
    assert_eq!(cache.pop("q").await.unwrap(), None);
    assert_eq!(cache.list_length("q").await.unwrap(), 0);
  }
}
