//! The storage backends. Each operation of [`Store`] is atomic on its own: the
//! memory store runs it under one mutex, the Redis store as one Lua script or
//! one command, so a lock check and the write it guards can never be split by
//! another caller, in this process or anywhere in the fleet.

mod connection;
pub mod memory;
pub mod redis;
mod scripts;

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

pub use crate::envelope::{Lifetime, Loaded, Touch};
use crate::error::CacheError;

pub type StoreResult<T> = Result<T, CacheError>;

/// A mutex's guard even after a panic elsewhere poisoned it: nothing kept
/// under these locks is left half-changed by a panic, so it stays usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
  mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The Redis keys of one cache entry: the entry itself and its lock.
#[derive(Clone)]
pub struct EntryKeys {
  pub entry: String,
  pub lock: String,
}

/// The outcome of an operation that a lock held by another name may refuse.
#[derive(Debug, PartialEq)]
pub enum Guarded<T> {
  Done(T),
  Locked,
}

#[derive(Debug, PartialEq)]
pub enum LoadOutcome {
  Missing,
  Expired,
  Locked,
  Loaded(Loaded),
}

/// One string entry of a dump, with the physical lifetime to restore it with.
pub struct DumpedEntry {
  pub key: String,
  pub text: String,
  pub lifetime: Lifetime,
}

#[async_trait]
pub trait Store: Send + Sync {
  /// True when operations finish without waiting (in memory), so that a
  /// call is worth trying at once on the JS thread.
  fn answers_at_once(&self) -> bool;

  /// Writes `envelope` to live for `lifetime` unless another name holds the
  /// entry's lock.
  async fn save(&self, keys: &EntryKeys, lock_name: &str, envelope: String, lifetime: Lifetime)
    -> StoreResult<Guarded<()>>;

  /// Reads the entry and, when it is live and not locked by another name,
  /// writes it back touched (see [`Envelope::touched`]). Nothing is written
  /// for an entry that is not an envelope.
  ///
  /// [`Envelope::touched`]: crate::envelope::Envelope::touched
  async fn load(&self, keys: &EntryKeys, lock_name: &str, touch: Touch) -> StoreResult<LoadOutcome>;

  /// Deletes the entry unless another name holds its lock; `Done(existed)`.
  async fn destroy(&self, keys: &EntryKeys, lock_name: &str) -> StoreResult<Guarded<bool>>;

  /// Takes the lock when nobody holds it (the holder too is refused, as
  /// with SETNX); a lock given no lifetime left is gone at once.
  async fn lock(&self, lock_key: &str, lock_name: &str, lifetime: Lifetime) -> StoreResult<bool>;

  /// Releases the lock when `lock_name` holds it or nobody does.
  async fn unlock(&self, lock_key: &str, lock_name: &str) -> StoreResult<bool>;

  async fn lock_holder(&self, lock_key: &str) -> StoreResult<Option<String>>;

  /// Every live key that starts with `prefix`.
  async fn keys(&self, prefix: &str) -> StoreResult<Vec<String>>;

  async fn delete_prefix(&self, prefix: &str) -> StoreResult<()>;

  /// The entries under `prefix` as (key, stored text); WRONGTYPE when a
  /// list is among them, as a Redis GET of it would be.
  async fn dump(&self, prefix: &str) -> StoreResult<Vec<(String, String)>>;

  async fn restore(&self, entries: Vec<DumpedEntry>) -> StoreResult<()>;

  /// Appends to the list and answers its new length.
  async fn push(&self, key: &str, item: String) -> StoreResult<u64>;

  async fn pop(&self, key: &str) -> StoreResult<Option<String>>;

  async fn list_length(&self, key: &str) -> StoreResult<u64>;

  /// The key's remaining lifetime in ms, as Redis's PTTL answers it: -2
  /// when it does not exist, -1 when it does not expire.
  async fn pttl(&self, key: &str) -> StoreResult<i64>;

  async fn close(&self) -> StoreResult<()>;
}
