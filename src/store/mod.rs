//! The storage backends. Each operation of [`Store`] is atomic on its own: the
//! memory store runs it under one mutex, the Redis store as one Lua script or
//! one command, so a lock check and the write it guards can never be split by
//! another caller, in this process or anywhere in the fleet.

mod connection;
pub mod memory;
pub mod redis;
mod scripts;

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

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

/// Statically dispatched (a cache is generic over its store): a call to the
/// in-memory store is polled once on the JS thread, and its future, boxed
/// behind a `dyn Store`, cost an allocation and a virtual call per call.
pub trait Store: Send + Sync + 'static {
  /// True when operations finish without waiting (in memory), so that a
  /// call is worth trying at once on the JS thread.
  fn answers_at_once(&self) -> bool;

  /// Writes `envelope` to live for `lifetime` unless another name holds the
  /// entry's lock.
  fn save(&self, keys: &EntryKeys, lock_name: &str, envelope: String, lifetime: Lifetime)
    -> impl Future<Output = StoreResult<Guarded<()>>> + Send;

  /// Reads the entry and, when it is live and not locked by another name,
  /// writes it back touched (see [`Envelope::touched`]). Nothing is written
  /// for an entry that is not an envelope.
  ///
  /// [`Envelope::touched`]: crate::envelope::Envelope::touched
  fn load(&self, keys: &EntryKeys, lock_name: &str, touch: Touch)
    -> impl Future<Output = StoreResult<LoadOutcome>> + Send;

  /// Deletes the entry unless another name holds its lock; `Done(existed)`.
  fn destroy(&self, keys: &EntryKeys, lock_name: &str) -> impl Future<Output = StoreResult<Guarded<bool>>> + Send;

  /// Takes the lock when nobody holds it (the holder too is refused, as
  /// with SETNX); a lock given no lifetime left is gone at once. The key is
  /// owned: the memory store keeps it as it is.
  fn lock(&self, lock_key: String, lock_name: &str, lifetime: Lifetime) -> impl Future<Output = StoreResult<bool>> + Send;

  /// Releases the lock when `lock_name` holds it or nobody does.
  fn unlock(&self, lock_key: &str, lock_name: &str) -> impl Future<Output = StoreResult<bool>> + Send;

  fn lock_holder(&self, lock_key: &str) -> impl Future<Output = StoreResult<Option<String>>> + Send;

  /// Every live key that starts with `prefix`.
  fn keys(&self, prefix: &str) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

  fn delete_prefix(&self, prefix: &str) -> impl Future<Output = StoreResult<()>> + Send;

  /// The entries under `prefix` as (key, stored text); WRONGTYPE when a
  /// list is among them, as a Redis GET of it would be.
  fn dump(&self, prefix: &str) -> impl Future<Output = StoreResult<Vec<(String, String)>>> + Send;

  fn restore(&self, entries: Vec<DumpedEntry>) -> impl Future<Output = StoreResult<()>> + Send;

  /// Appends to the list and answers its new length.
  fn push(&self, key: &str, item: String) -> impl Future<Output = StoreResult<u64>> + Send;

  fn pop(&self, key: &str) -> impl Future<Output = StoreResult<Option<String>>> + Send;

  fn list_length(&self, key: &str) -> impl Future<Output = StoreResult<u64>> + Send;

  /// The key's remaining lifetime in ms, as Redis's PTTL answers it: -2
  /// when it does not exist, -1 when it does not expire.
  fn pttl(&self, key: &str) -> impl Future<Output = StoreResult<i64>> + Send;

  fn close(&self) -> impl Future<Output = StoreResult<()>> + Send;
}
