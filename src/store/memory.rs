//! The embedded store: an in-process stand-in for one Redis server. Keys,
//! lifetimes and lists follow Redis's rules, and every operation runs under
//! one mutex, which is what makes it atomic.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{DumpedEntry, EntryKeys, Guarded, LoadOutcome, Store, StoreResult, Touch};
use crate::envelope::{now_ms, Envelope, Lifetime, Rewrite};
use crate::error::CacheError;

/// How often dead keys are swept out, as Redis's active expiry does.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The named in-memory servers of this process: like fakeredis, every cache
/// built with the same name sees the same keys, so one process can play a
/// whole fleet of actionhero nodes.
static SERVERS: LazyLock<Mutex<HashMap<String, Arc<MemoryStore>>>> = LazyLock::new(Default::default);

#[derive(Default)]
pub struct MemoryStore {
  slots: Mutex<HashMap<String, Slot>>,
}

struct Slot {
  value: Value,
  deadline: Option<Instant>,
}

enum Value {
  Text(String),
  List(VecDeque<String>),
}

impl MemoryStore {
  pub fn new() -> Self {
    Self::default()
  }

  /// The server called `name`, created (with its sweeper task) on first use.
  /// Must be called within a tokio runtime.
  pub fn shared(name: &str) -> Arc<MemoryStore> {
    let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    servers
      .entry(name.to_owned())
      .or_insert_with(|| {
        let store = Arc::new(MemoryStore::new());
        tokio::spawn(sweep_until_dropped(Arc::downgrade(&store)));
        store
      })
      .clone()
  }

  fn slots(&self) -> Slots<'_> {
    // A panic elsewhere cannot leave a half-applied operation behind (each
    // one mutates at most one map entry last), so a poisoned map is usable.
    Slots { map: self.slots.lock().unwrap_or_else(|e| e.into_inner()), now: Instant::now() }
  }

  fn sweep(&self) {
    let mut slots = self.slots();
    let now = slots.now;
    slots.map.retain(|_, slot| slot.is_live(now));
  }
}

async fn sweep_until_dropped(store: Weak<MemoryStore>) {
  loop {
    tokio::time::sleep(SWEEP_INTERVAL).await;
    match store.upgrade() {
      Some(store) => store.sweep(),
      None => return,
    }
  }
}

impl Slot {
  fn is_live(&self, now: Instant) -> bool {
    self.deadline.is_none_or(|deadline| deadline > now)
  }
}

/// The deadline of a key given `lifetime` at `now`: `Some(None)` for none,
/// None when the lifetime is over already (the key is deleted). A deadline
/// past what the clock can count is no deadline.
fn deadline(now: Instant, lifetime: Lifetime) -> Option<Option<Instant>> {
  let after = |left: Duration| Some(now.checked_add(left));
  match lifetime {
    Lifetime::Forever => Some(None),
    Lifetime::Secs(secs) => after(Duration::from_secs(secs)),
    Lifetime::Gone => None,
    Lifetime::Until(at) => {
      let left_ms = at - now_ms();
      (left_ms > 0.0).then(|| after(Duration::try_from_secs_f64(left_ms / 1000.0).unwrap_or(Duration::MAX)))?
    }
  }
}

/// The locked key space, seen at one instant; dead keys are dropped as they
/// are met, as Redis's lazy expiry does.
struct Slots<'a> {
  map: MutexGuard<'a, HashMap<String, Slot>>,
  now: Instant,
}

impl Slots<'_> {
  fn live(&mut self, key: &str) -> Option<&mut Slot> {
    let now = self.now;
    if self.map.get(key).is_some_and(|slot| !slot.is_live(now)) {
      self.map.remove(key);
    }
    self.map.get_mut(key)
  }

  fn text(&mut self, key: &str) -> StoreResult<Option<&String>> {
    match self.live(key) {
      None => Ok(None),
      Some(Slot { value: Value::Text(text), .. }) => Ok(Some(text)),
      Some(_) => Err(CacheError::WrongType),
    }
  }

  /// Redis SET and then EXPIRE: replaces the value, and the lifetime.
  fn set(&mut self, key: &str, text: String, lifetime: Lifetime) {
    let Some(deadline) = deadline(self.now, lifetime) else {
      self.map.remove(key);
      return;
    };
    let slot = Slot { value: Value::Text(text), deadline };
    // Overwrite in place when the key exists: no new key allocation.
    match self.map.get_mut(key) {
      Some(existing) => *existing = slot,
      None => {
        self.map.insert(key.to_owned(), slot);
      }
    }
  }

  fn held_by_other(&mut self, lock_key: &str, lock_name: &str) -> StoreResult<bool> {
    Ok(self.text(lock_key)?.is_some_and(|holder| holder != lock_name))
  }

  fn list(&mut self, key: &str) -> StoreResult<Option<&mut VecDeque<String>>> {
    match self.live(key) {
      None => Ok(None),
      Some(Slot { value: Value::List(list), .. }) => Ok(Some(list)),
      Some(_) => Err(CacheError::WrongType),
    }
  }

  fn live_keys<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = (&'s String, &'s Slot)> + 's {
    let now = self.now;
    self.map.iter().filter(move |(key, slot)| key.starts_with(prefix) && slot.is_live(now))
  }
}

#[async_trait]
impl Store for MemoryStore {
  fn answers_at_once(&self) -> bool {
    true
  }

  async fn save(&self, keys: &EntryKeys, lock_name: &str, envelope: String, lifetime: Lifetime)
    -> StoreResult<Guarded<()>> {
    let mut slots = self.slots();
    if slots.held_by_other(&keys.lock, lock_name)? {
      return Ok(Guarded::Locked);
    }
    slots.set(&keys.entry, envelope, lifetime);
    Ok(Guarded::Done(()))
  }

  async fn load(&self, keys: &EntryKeys, lock_name: &str, touch: Touch) -> StoreResult<LoadOutcome> {
    let mut slots = self.slots();
    let Some(text) = slots.text(&keys.entry)? else {
      return Ok(LoadOutcome::Missing);
    };
    let envelope = Envelope::parse(text).ok_or(CacheError::Corrupt)?;
    if envelope.is_expired(touch.now) {
      return Ok(LoadOutcome::Expired);
    }
    let touched = envelope.touched(text, touch);
    if slots.held_by_other(&keys.lock, lock_name)? {
      return Ok(LoadOutcome::Locked);
    }
    let now = slots.now;
    let Some(new_deadline) = deadline(now, touched.lifetime) else {
      slots.map.remove(&keys.entry);
      return Ok(LoadOutcome::Loaded(touched.loaded));
    };
    if let Some(Slot { value: Value::Text(text), deadline }) = slots.live(&keys.entry) {
      match touched.rewrite {
        Rewrite::Tail { at, new, .. } => {
          text.truncate(at);
          text.push_str(&new);
        }
        Rewrite::Whole(whole) => *text = whole,
      }
      *deadline = new_deadline;
    }
    Ok(LoadOutcome::Loaded(touched.loaded))
  }

  async fn destroy(&self, keys: &EntryKeys, lock_name: &str) -> StoreResult<Guarded<bool>> {
    let mut slots = self.slots();
    if slots.held_by_other(&keys.lock, lock_name)? {
      return Ok(Guarded::Locked);
    }
    let existed = slots.live(&keys.entry).is_some();
    slots.map.remove(&keys.entry);
    Ok(Guarded::Done(existed))
  }

  async fn lock(&self, lock_key: &str, lock_name: &str, lifetime: Lifetime) -> StoreResult<bool> {
    let mut slots = self.slots();
    if slots.text(lock_key)?.is_some() {
      return Ok(false);
    }
    slots.set(lock_key, lock_name.to_owned(), lifetime);
    Ok(true)
  }

  async fn unlock(&self, lock_key: &str, lock_name: &str) -> StoreResult<bool> {
    let mut slots = self.slots();
    if slots.held_by_other(lock_key, lock_name)? {
      return Ok(false);
    }
    slots.map.remove(lock_key);
    Ok(true)
  }

  async fn lock_holder(&self, lock_key: &str) -> StoreResult<Option<String>> {
    Ok(self.slots().text(lock_key)?.cloned())
  }

  async fn keys(&self, prefix: &str) -> StoreResult<Vec<String>> {
    Ok(self.slots().live_keys(prefix).map(|(key, _)| key.clone()).collect())
  }

  async fn delete_prefix(&self, prefix: &str) -> StoreResult<()> {
    self.slots().map.retain(|key, _| !key.starts_with(prefix));
    Ok(())
  }

  async fn dump(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
    let slots = self.slots();
    let entries = slots.live_keys(prefix).map(|(key, slot)| match &slot.value {
      Value::Text(text) => Ok((key.clone(), text.clone())),
      Value::List(_) => Err(CacheError::WrongType),
    });
    entries.collect()
  }

  async fn restore(&self, entries: Vec<DumpedEntry>) -> StoreResult<()> {
    let mut slots = self.slots();
    for entry in entries {
      slots.set(&entry.key, entry.text, entry.lifetime);
    }
    Ok(())
  }

  async fn push(&self, key: &str, item: String) -> StoreResult<u64> {
    let mut slots = self.slots();
    if let Some(list) = slots.list(key)? {
      list.push_back(item);
      return Ok(list.len() as u64);
    }
    let slot = Slot { value: Value::List(VecDeque::from([item])), deadline: None };
    slots.map.insert(key.to_owned(), slot);
    Ok(1)
  }

  async fn pop(&self, key: &str) -> StoreResult<Option<String>> {
    let mut slots = self.slots();
    let Some(list) = slots.list(key)? else {
      return Ok(None);
    };
    let item = list.pop_front();
    if list.is_empty() {
      // Redis deletes a list with its last item.
      slots.map.remove(key);
    }
    Ok(item)
  }

  async fn list_length(&self, key: &str) -> StoreResult<u64> {
    Ok(self.slots().list(key)?.map_or(0, |list| list.len() as u64))
  }

  async fn pttl(&self, key: &str) -> StoreResult<i64> {
    let mut slots = self.slots();
    let now = slots.now;
    Ok(match slots.live(key) {
      None => -2,
      Some(Slot { deadline: None, .. }) => -1,
      Some(Slot { deadline: Some(deadline), .. }) => deadline.duration_since(now).as_millis().try_into().unwrap_or(i64::MAX),
    })
  }

  /// The server outlives any one cache built on it, as a Redis server does.
  async fn close(&self) -> StoreResult<()> {
    Ok(())
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn keys(key: &str) -> EntryKeys {
    EntryKeys { entry: format!("c:{key}"), lock: format!("l:{key}") }
  }

  #[tokio::test]
  async fn a_lock_is_taken_refreshed_and_refused() {
    let store = MemoryStore::new();
    let ten = Lifetime::Secs(10);
    assert!(store.lock("l:k", "a", ten).await.unwrap());
    assert!(!store.lock("l:k", "a", ten).await.unwrap(), "the holder is refused too, as with SETNX");
    assert!(!store.lock("l:k", "b", ten).await.unwrap());
    assert_eq!(store.lock_holder("l:k").await.unwrap().as_deref(), Some("a"));
    assert!(!store.unlock("l:k", "b").await.unwrap());
    assert!(store.unlock("l:k", "a").await.unwrap());
    assert!(store.unlock("l:k", "b").await.unwrap());
    assert_eq!(store.lock_holder("l:k").await.unwrap(), None);
  }

  #[tokio::test]
  async fn a_corrupt_entry_is_an_error_and_a_list_is_the_wrong_type() {
    let store = MemoryStore::new();
    let touch = Touch { now: 0.0, refresh: None };
    store.restore(vec![DumpedEntry { key: "c:bad".into(), text: "{nope".into(), lifetime: Lifetime::Forever }]).await.unwrap();
    assert_eq!(store.load(&keys("bad"), "a", touch).await, Err(CacheError::Corrupt));
    store.push("c:list", "1".into()).await.unwrap();
    assert_eq!(store.load(&keys("list"), "a", touch).await, Err(CacheError::WrongType));
    assert_eq!(store.push("c:bad", "1".into()).await, Err(CacheError::WrongType));
  }

  #[tokio::test]
  async fn dead_keys_are_gone_for_reads_and_for_the_sweeper() {
    let store = MemoryStore::new();
    store.save(&keys("k"), "a", "{}".into(), Lifetime::Secs(1)).await.unwrap();
    store.slots().map.get_mut("c:k").unwrap().deadline = Some(Instant::now() - Duration::from_millis(1));
    assert_eq!(store.keys("c:").await.unwrap(), Vec::<String>::new());
    assert_eq!(store.slots().map.len(), 1);
    store.sweep();
    assert_eq!(store.slots().map.len(), 0);
  }
}
