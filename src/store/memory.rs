//! The embedded store: an in-process stand-in for one Redis server. Keys,
//! lifetimes and lists follow Redis's rules, and every operation runs under
//! one mutex, which is what makes it atomic.

use std::collections::{HashMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use indexmap::map::Entry;
use indexmap::IndexMap;

use super::{lock, DumpedEntry, EntryKeys, Guarded, LoadOutcome, Store, StoreResult, Touch};
use crate::envelope::{duration_ms, exact_now_ms, Envelope, Lifetime};
use crate::error::CacheError;

/// How often dead keys are swept out, as Redis's active expiry does.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// How many slots one sweep step visits while it holds the lock: calls wait
/// at most one step (under a millisecond even when every slot is dead), not
/// a walk of the whole key space.
const SWEEP_STEP_SLOTS: usize = 1024;

/// The rest between two steps, so that calls waiting for the lock get it
/// (merely yielding, the sweeper would take it back before they wake). A
/// walk of a million keys takes about a second and a half.
const SWEEP_STEP_PAUSE: Duration = Duration::from_millis(1);

/// The named in-memory servers of this process that some cache holds: like
/// fakeredis, every cache built with the same name sees the same keys, so
/// one process can play a whole fleet of actionhero nodes. The registry does
/// not keep a server alive: when its last cache is closed or collected, the
/// name is removed, and the keys and the sweeper go with the last `Arc`.
static SERVERS: LazyLock<Mutex<HashMap<String, Registered>>> = LazyLock::new(Default::default);

struct Registered {
  server: Weak<MemoryStore>,
  /// The caches holding the server; changed only under the registry's lock.
  open_caches: usize,
}

fn servers() -> MutexGuard<'static, HashMap<String, Registered>> {
  lock(&SERVERS)
}

#[derive(Default)]
pub struct MemoryStore {
  slots: Mutex<KeySpace>,
}

/// The key space: a map with index access, so that the sweeper can walk it
/// in bounded steps with a cursor. It reads like a `HashMap`; `remove` is
/// IndexMap's O(1) `swap_remove` (the last slot takes the removed one's place).
/// Hashed with foldhash, seeded per process: several times faster than the
/// standard SipHash on short keys, and still not predictable from outside.
#[derive(Default)]
struct KeySpace(IndexMap<String, Slot, foldhash::fast::RandomState>);

impl KeySpace {
  fn remove(&mut self, key: &str) -> Option<Slot> {
    self.0.swap_remove(key)
  }
}

impl Deref for KeySpace {
  type Target = IndexMap<String, Slot, foldhash::fast::RandomState>;

  fn deref(&self) -> &Self::Target {
    &self.0
  }
}

impl DerefMut for KeySpace {
  fn deref_mut(&mut self) -> &mut Self::Target {
    &mut self.0
  }
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

  /// A new cache's hold on the server called `name`, created (with its
  /// sweeper task) when no open cache holds one. Must be called within a
  /// tokio runtime.
  pub fn shared(name: &str) -> Arc<SharedMemoryStore> {
    let mut servers = servers();
    let registered = servers
      .entry(name.to_owned())
      .or_insert_with(|| Registered { server: Weak::new(), open_caches: 0 });
    let server = registered.server.upgrade().unwrap_or_else(|| {
      let server = Arc::new(MemoryStore::new());
      tokio::spawn(sweep_until_dropped(Arc::downgrade(&server)));
      *registered = Registered { server: Arc::downgrade(&server), open_caches: 0 };
      server
    });
    registered.open_caches += 1;
    Arc::new(SharedMemoryStore { name: name.to_owned(), server: RwLock::new(Some(server)) })
  }

  /// How many keys the server called `name` holds, dead ones the sweeper has
  /// not reclaimed yet included (as Redis's DBSIZE counts them); `None` when
  /// no open cache holds a server of that name.
  pub fn key_count(name: &str) -> Option<usize> {
    let server = servers().get(name)?.server.upgrade()?;
    let count = server.slots().map.len();
    Some(count)
  }

  fn slots(&self) -> Slots<'_> {
    // A panic elsewhere cannot leave a half-applied operation behind (each
    // one mutates at most one map entry last), so a poisoned map is usable.
    Slots { map: lock(&self.slots), now: None }
  }

  /// One step of a sweep: visits at most `max_slots` slots from `cursor`,
  /// removing the dead ones, and answers where the next step starts, or
  /// `None` when this walk of the key space is done. A slot that other calls
  /// move behind the cursor meanwhile (by removing a key before it) is
  /// visited on the next walk.
  fn sweep_step(&self, mut cursor: usize, max_slots: usize) -> Option<usize> {
    let mut dead = Vec::new();
    let mut slots = self.slots();
    let now = slots.now();
    for _ in 0..max_slots {
      let Some((_, slot)) = slots.map.get_index(cursor) else { break };
      if slot.is_live(now) {
        cursor += 1;
      } else {
        // The last slot moves to `cursor`, and is visited next.
        dead.extend(slots.map.swap_remove_index(cursor));
      }
    }
    let next = (cursor < slots.map.len()).then_some(cursor);
    drop(slots);
    // Freed once the lock is released: calls need not wait for that.
    drop(dead);
    next
  }
}

/// Walks the key space once a second, a bounded step at a time, until the
/// server is gone.
async fn sweep_until_dropped(store: Weak<MemoryStore>) {
  loop {
    tokio::time::sleep(SWEEP_INTERVAL).await;
    let mut cursor = 0;
    loop {
      let Some(server) = store.upgrade() else { return };
      let Some(next) = server.sweep_step(cursor, SWEEP_STEP_SLOTS) else { break };
      cursor = next;
      // The last `Arc` may be the cache's, not ours, when it is let go.
      drop(server);
      tokio::time::sleep(SWEEP_STEP_PAUSE).await;
    }
  }
}

/// One cache's hold on a named server (see [`SERVERS`]). Closing the cache
/// or collecting it lets go of the server; calls after that answer
/// `Cache is closed`.
pub struct SharedMemoryStore {
  name: String,
  server: RwLock<Option<Arc<MemoryStore>>>,
}

impl SharedMemoryStore {
  /// Runs `operation` on the held server (a read lock, no `Arc` traffic).
  fn on_server<T>(&self, operation: impl FnOnce(&MemoryStore) -> StoreResult<T>) -> StoreResult<T> {
    let server = self.server.read().unwrap_or_else(PoisonError::into_inner);
    operation(server.as_deref().ok_or(CacheError::Closed)?)
  }

  /// The last cache to let go of a server removes its name, so that the
  /// next cache of that name starts a fresh one.
  fn release(&self) {
    let Some(server) = self.server.write().unwrap_or_else(PoisonError::into_inner).take() else {
      return;
    };
    let mut servers = servers();
    // Present: each open cache of the name counts, under this lock.
    if let Some(registered) = servers.get_mut(&self.name) {
      registered.open_caches -= 1;
      if registered.open_caches == 0 {
        servers.remove(&self.name);
      }
    }
    drop(servers);
    // Dropping the last `Arc` frees every key: outside the registry's lock.
    drop(server);
  }
}

impl Drop for SharedMemoryStore {
  fn drop(&mut self) {
    self.release();
  }
}

impl Slot {
  fn is_live(&self, now: Instant) -> bool {
    self.deadline.is_none_or(|deadline| deadline > now)
  }

  /// Whether a lock here is held at `now`, by anyone: a live string; a
  /// live list is WRONGTYPE, as Redis would answer.
  fn holds_lock(&self, now: Instant) -> StoreResult<bool> {
    match self.value {
      _ if !self.is_live(now) => Ok(false),
      Value::Text(_) => Ok(true),
      Value::List(_) => Err(CacheError::WrongType),
    }
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
      let left_ms = at - exact_now_ms();
      (left_ms > 0.0).then(|| after(duration_ms(left_ms)))?
    }
  }
}

/// The locked key space, seen at one instant; dead keys are dropped as they
/// are met, as Redis's lazy expiry does.
struct Slots<'a> {
  map: MutexGuard<'a, KeySpace>,
  now: Option<Instant>,
}

impl Slots<'_> {
  /// The instant the operation sees, read when first needed: a holder's
  /// unlock needs no clock (a clock read is a twentieth of a lock+unlock;
  /// see `held_by_other`).
  fn now(&mut self) -> Instant {
    *self.now.get_or_insert_with(Instant::now)
  }

  fn live(&mut self, key: &str) -> Option<&mut Slot> {
    // One hash of the key, then by index.
    let index = self.map.get_index_of(key)?;
    let now = self.now();
    if !self.map[index].is_live(now) {
      self.map.swap_remove_index(index);
      return None;
    }
    Some(&mut self.map[index])
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
    let Some(deadline) = deadline(self.now(), lifetime) else {
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
    // No lock, or the caller's own, alive or not: no clock read needed.
    match self.map.get(lock_key) {
      None => return Ok(false),
      Some(Slot { value: Value::Text(holder), .. }) if holder == lock_name => return Ok(false),
      Some(_) => {}
    }
    Ok(self.text(lock_key)?.is_some_and(|holder| holder != lock_name))
  }

  fn list(&mut self, key: &str) -> StoreResult<Option<&mut VecDeque<String>>> {
    match self.live(key) {
      None => Ok(None),
      Some(Slot { value: Value::List(list), .. }) => Ok(Some(list)),
      Some(_) => Err(CacheError::WrongType),
    }
  }

  fn live_keys<'s>(&'s mut self, prefix: &'s str) -> impl Iterator<Item = (&'s String, &'s Slot)> + 's {
    let now = self.now();
    self.map.iter().filter(move |(key, slot)| key.starts_with(prefix) && slot.is_live(now))
  }
}

/// The server's operations, each under the one lock; `SharedMemoryStore`
/// makes them the `Store` of a cache.
impl MemoryStore {
  fn save(&self, keys: &EntryKeys, lock_name: &str, envelope: String, lifetime: Lifetime)
    -> StoreResult<Guarded<()>> {
    let mut slots = self.slots();
    if slots.held_by_other(&keys.lock, lock_name)? {
      return Ok(Guarded::Locked);
    }
    slots.set(&keys.entry, envelope, lifetime);
    Ok(Guarded::Done(()))
  }

  fn load(&self, keys: &EntryKeys, lock_name: &str, touch: Touch) -> StoreResult<LoadOutcome> {
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
    let now = slots.now();
    let Some(new_deadline) = deadline(now, touched.lifetime) else {
      slots.map.remove(&keys.entry);
      return Ok(LoadOutcome::Loaded(touched.loaded));
    };
    if let Some(Slot { value: Value::Text(text), deadline }) = slots.live(&keys.entry) {
      touched.rewrite.apply(text);
      *deadline = new_deadline;
    }
    Ok(LoadOutcome::Loaded(touched.loaded))
  }

  fn destroy(&self, keys: &EntryKeys, lock_name: &str) -> StoreResult<Guarded<bool>> {
    let mut slots = self.slots();
    if slots.held_by_other(&keys.lock, lock_name)? {
      return Ok(Guarded::Locked);
    }
    let now = slots.now();
    let existed = slots.map.remove(&keys.entry).is_some_and(|slot| slot.is_live(now));
    Ok(Guarded::Done(existed))
  }

  /// One lookup of the key, which becomes the map's own when the lock is taken.
  fn lock(&self, lock_key: String, lock_name: &str, lifetime: Lifetime) -> StoreResult<bool> {
    let mut slots = self.slots();
    let now = slots.now();
    let entry = slots.map.entry(lock_key);
    if let Entry::Occupied(slot) = &entry {
      if slot.get().holds_lock(now)? {
        return Ok(false);
      }
    }
    let lock = |deadline| Slot { value: Value::Text(lock_name.to_owned()), deadline };
    match (deadline(now, lifetime), entry) {
      (None, Entry::Occupied(dead)) => drop(dead.swap_remove()),
      (None, Entry::Vacant(_)) => {}
      (Some(deadline), Entry::Occupied(mut dead)) => drop(dead.insert(lock(deadline))),
      (Some(deadline), Entry::Vacant(free)) => drop(free.insert(lock(deadline))),
    }
    Ok(true)
  }

  /// One lookup of the key: its index serves the check and the removal.
  fn unlock(&self, lock_key: &str, lock_name: &str) -> StoreResult<bool> {
    let mut slots = self.slots();
    let Some(index) = slots.map.get_index_of(lock_key) else {
      return Ok(true);
    };
    // The caller's own lock, alive or not: no clock read needed.
    if !matches!(&slots.map[index].value, Value::Text(holder) if holder == lock_name) {
      let now = slots.now();
      if slots.map[index].holds_lock(now)? {
        return Ok(false);
      }
    }
    slots.map.swap_remove_index(index);
    Ok(true)
  }

  fn lock_holder(&self, lock_key: &str) -> StoreResult<Option<String>> {
    Ok(self.slots().text(lock_key)?.cloned())
  }

  fn keys(&self, prefix: &str) -> StoreResult<Vec<String>> {
    Ok(self.slots().live_keys(prefix).map(|(key, _)| key.clone()).collect())
  }

  fn delete_prefix(&self, prefix: &str) -> StoreResult<()> {
    self.slots().map.retain(|key, _| !key.starts_with(prefix));
    Ok(())
  }

  fn dump(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
    let mut slots = self.slots();
    let entries = slots.live_keys(prefix).map(|(key, slot)| match &slot.value {
      Value::Text(text) => Ok((key.clone(), text.clone())),
      Value::List(_) => Err(CacheError::WrongType),
    });
    entries.collect()
  }

  fn restore(&self, entries: Vec<DumpedEntry>) -> StoreResult<()> {
    let mut slots = self.slots();
    for entry in entries {
      slots.set(&entry.key, entry.text, entry.lifetime);
    }
    Ok(())
  }

  fn push(&self, key: &str, item: String) -> StoreResult<u64> {
    let mut slots = self.slots();
    if let Some(list) = slots.list(key)? {
      list.push_back(item);
      return Ok(list.len() as u64);
    }
    let slot = Slot { value: Value::List(VecDeque::from([item])), deadline: None };
    slots.map.insert(key.to_owned(), slot);
    Ok(1)
  }

  fn pop(&self, key: &str) -> StoreResult<Option<String>> {
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

  fn list_length(&self, key: &str) -> StoreResult<u64> {
    Ok(self.slots().list(key)?.map_or(0, |list| list.len() as u64))
  }

  fn pttl(&self, key: &str) -> StoreResult<i64> {
    let mut slots = self.slots();
    let now = slots.now();
    Ok(match slots.live(key) {
      None => -2,
      Some(Slot { deadline: None, .. }) => -1,
      Some(Slot { deadline: Some(deadline), .. }) => deadline.duration_since(now).as_millis().try_into().unwrap_or(i64::MAX),
    })
  }
}

/// Every operation runs on the held server; `close` lets go of it.
impl Store for SharedMemoryStore {
  fn answers_at_once(&self) -> bool {
    true
  }

  async fn save(&self, keys: &EntryKeys, lock_name: &str, envelope: String, lifetime: Lifetime)
    -> StoreResult<Guarded<()>> {
    self.on_server(|server| server.save(keys, lock_name, envelope, lifetime))
  }

  async fn load(&self, keys: &EntryKeys, lock_name: &str, touch: Touch) -> StoreResult<LoadOutcome> {
    self.on_server(|server| server.load(keys, lock_name, touch))
  }

  async fn destroy(&self, keys: &EntryKeys, lock_name: &str) -> StoreResult<Guarded<bool>> {
    self.on_server(|server| server.destroy(keys, lock_name))
  }

  async fn lock(&self, lock_key: String, lock_name: &str, lifetime: Lifetime) -> StoreResult<bool> {
    self.on_server(|server| server.lock(lock_key, lock_name, lifetime))
  }

  async fn unlock(&self, lock_key: &str, lock_name: &str) -> StoreResult<bool> {
    self.on_server(|server| server.unlock(lock_key, lock_name))
  }

  async fn lock_holder(&self, lock_key: &str) -> StoreResult<Option<String>> {
    self.on_server(|server| server.lock_holder(lock_key))
  }

  async fn keys(&self, prefix: &str) -> StoreResult<Vec<String>> {
    self.on_server(|server| server.keys(prefix))
  }

  async fn delete_prefix(&self, prefix: &str) -> StoreResult<()> {
    self.on_server(|server| server.delete_prefix(prefix))
  }

  async fn dump(&self, prefix: &str) -> StoreResult<Vec<(String, String)>> {
    self.on_server(|server| server.dump(prefix))
  }

  async fn restore(&self, entries: Vec<DumpedEntry>) -> StoreResult<()> {
    self.on_server(|server| server.restore(entries))
  }

  async fn push(&self, key: &str, item: String) -> StoreResult<u64> {
    self.on_server(|server| server.push(key, item))
  }

  async fn pop(&self, key: &str) -> StoreResult<Option<String>> {
    self.on_server(|server| server.pop(key))
  }

  async fn list_length(&self, key: &str) -> StoreResult<u64> {
    self.on_server(|server| server.list_length(key))
  }

  async fn pttl(&self, key: &str) -> StoreResult<i64> {
    self.on_server(|server| server.pttl(key))
  }

  async fn close(&self) -> StoreResult<()> {
    self.release();
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
    assert!(store.lock("l:k".into(), "a", ten).unwrap());
    assert!(!store.lock("l:k".into(), "a", ten).unwrap(), "the holder is refused too, as with SETNX");
    assert!(!store.lock("l:k".into(), "b", ten).unwrap());
    assert_eq!(store.lock_holder("l:k").unwrap().as_deref(), Some("a"));
    assert!(!store.unlock("l:k", "b").unwrap());
    assert!(store.unlock("l:k", "a").unwrap());
    assert!(store.unlock("l:k", "b").unwrap());
    assert_eq!(store.lock_holder("l:k").unwrap(), None);
  }

  #[tokio::test]
  async fn a_dead_lock_is_anyones_and_a_list_is_no_lock() {
    let store = MemoryStore::new();
    let ten = Lifetime::Secs(10);
    let expire = |store: &MemoryStore| store.slots().map.get_mut("l:k").unwrap().deadline = Some(Instant::now() - Duration::from_millis(1));
    assert!(store.lock("l:k".into(), "a", ten).unwrap());
    expire(&store);
    assert!(store.lock("l:k".into(), "b", ten).unwrap(), "taken over in place");
    assert_eq!(store.lock_holder("l:k").unwrap().as_deref(), Some("b"));
    expire(&store);
    assert!(store.lock("l:k".into(), "a", Lifetime::Gone).unwrap(), "taken and gone at once");
    assert_eq!(store.slots().map.len(), 0);
    assert!(store.lock("l:k".into(), "b", ten).unwrap());
    expire(&store);
    assert!(store.unlock("l:k", "a").unwrap(), "another's dead lock is released");
    assert_eq!(store.slots().map.len(), 0);
    store.push("l:k", "1".into()).unwrap();
    assert_eq!(store.lock("l:k".into(), "a", ten), Err(CacheError::WrongType));
    assert_eq!(store.unlock("l:k", "a"), Err(CacheError::WrongType));
  }

  #[tokio::test]
  async fn a_corrupt_entry_is_an_error_and_a_list_is_the_wrong_type() {
    let store = MemoryStore::new();
    let touch = Touch { now: 0.0, skew: 0.0, refresh: None };
    store.restore(vec![DumpedEntry { key: "c:bad".into(), text: "{nope".into(), lifetime: Lifetime::Forever }]).unwrap();
    assert_eq!(store.load(&keys("bad"), "a", touch), Err(CacheError::Corrupt));
    store.push("c:list", "1".into()).unwrap();
    assert_eq!(store.load(&keys("list"), "a", touch), Err(CacheError::WrongType));
    assert_eq!(store.push("c:bad", "1".into()), Err(CacheError::WrongType));
  }

  #[tokio::test]
  async fn dead_keys_are_gone_for_reads_and_for_the_sweeper() {
    let store = MemoryStore::new();
    store.save(&keys("k"), "a", "{}".into(), Lifetime::Secs(1)).unwrap();
    store.slots().map.get_mut("c:k").unwrap().deadline = Some(Instant::now() - Duration::from_millis(1));
    assert_eq!(store.keys("c:").unwrap(), Vec::<String>::new());
    assert_eq!(store.slots().map.len(), 1);
    sweep_fully(&store, SWEEP_STEP_SLOTS);
    assert_eq!(store.slots().map.len(), 0);
  }

  /// Walks the key space once, as the sweeper does; answers the steps taken.
  fn sweep_fully(store: &MemoryStore, max_slots: usize) -> usize {
    let mut cursor = 0;
    let mut steps = 1;
    while let Some(next) = store.sweep_step(cursor, max_slots) {
      cursor = next;
      steps += 1;
    }
    steps
  }

  /// `count` keys `k0`, `k1`…; those for which `dead(i)` already expired.
  fn store_with_keys(count: usize, dead: impl Fn(usize) -> bool) -> MemoryStore {
    let store = MemoryStore::new();
    let past = Instant::now() - Duration::from_secs(1);
    let mut slots = store.slots();
    for i in 0..count {
      let deadline = dead(i).then_some(past);
      slots.map.insert(format!("k{i}"), Slot { value: Value::Text("{}".into()), deadline });
    }
    drop(slots);
    store
  }

  #[test]
  fn a_sweep_step_visits_at_most_its_share_of_slots() {
    let all_dead = store_with_keys(10, |_| true);
    assert_eq!(all_dead.sweep_step(0, 3), Some(0));
    assert_eq!(all_dead.slots().map.len(), 7);

    let all_live = store_with_keys(10, |_| false);
    assert_eq!(all_live.sweep_step(0, 3), Some(3));
    assert_eq!(all_live.sweep_step(3, 3), Some(6));
    assert_eq!(all_live.sweep_step(8, 3), None);
    assert_eq!(all_live.slots().map.len(), 10);
  }

  #[test]
  fn a_full_walk_removes_every_dead_key_and_keeps_every_live_one() {
    let store = store_with_keys(10_000, |i| i % 3 == 0);
    let steps = sweep_fully(&store, 100);
    // 10,000 visits, 100 a step.
    assert_eq!(steps, 100);
    let mut left: Vec<String> = store.slots().map.keys().cloned().collect();
    left.sort();
    let mut live: Vec<String> = (0..10_000).filter(|i| i % 3 != 0).map(|i| format!("k{i}")).collect();
    live.sort();
    assert_eq!(left, live);
  }

  fn server_of(handle: &SharedMemoryStore) -> Arc<MemoryStore> {
    let server = handle.server.read().unwrap();
    server.clone().expect("an open handle holds its server")
  }

  #[tokio::test]
  async fn caches_of_one_name_share_its_server_while_one_is_open() {
    let name = "unit-shared";
    let first = MemoryStore::shared(name);
    let second = MemoryStore::shared(name);
    assert!(Arc::ptr_eq(&server_of(&first), &server_of(&second)));
    first.save(&keys("k"), "a", "{}".into(), Lifetime::Forever).await.unwrap();
    first.close().await.unwrap();
    assert_eq!(first.keys("c:").await, Err(CacheError::Closed));
    let third = MemoryStore::shared(name);
    assert!(Arc::ptr_eq(&server_of(&second), &server_of(&third)));
    assert_eq!(third.keys("c:").await.unwrap(), vec!["c:k".to_owned()]);
    assert_eq!(MemoryStore::key_count(name), Some(1));
  }

  #[tokio::test(start_paused = true)]
  async fn a_server_goes_with_its_last_cache_and_its_sweeper_ends() {
    let name = "unit-released";
    let closed = MemoryStore::shared(name);
    let collected = MemoryStore::shared(name);
    let server = Arc::downgrade(&server_of(&closed));
    let tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
    assert_eq!(tasks(), 1);

    closed.close().await.unwrap();
    assert_eq!(MemoryStore::key_count(name), Some(0));
    drop(collected);
    assert_eq!(MemoryStore::key_count(name), None);
    assert!(server.upgrade().is_none());

    // The sweeper notices on its next wake-up (time is paused: no real wait).
    tokio::time::sleep(SWEEP_INTERVAL * 2).await;
    assert_eq!(tasks(), 0);
  }

  #[tokio::test]
  async fn a_cache_of_a_released_name_gets_a_fresh_server() {
    let name = "unit-fresh";
    let before = MemoryStore::shared(name);
    before.save(&keys("k"), "a", "{}".into(), Lifetime::Forever).await.unwrap();
    // Held elsewhere for a moment, as during a sweep step: gone all the same.
    let still_held = server_of(&before);
    before.close().await.unwrap();

    let after = MemoryStore::shared(name);
    assert!(!Arc::ptr_eq(&still_held, &server_of(&after)));
    assert_eq!(after.keys("c:").await.unwrap(), Vec::<String>::new());
    assert_eq!(MemoryStore::key_count(name), Some(0));
  }
}
