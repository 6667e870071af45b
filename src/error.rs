//! Every failure a cache call can report, with actionhero's message and a
//! stable `code` that JavaScript callers can branch on.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum CacheError {
  NotFound,
  Expired,
  Locked,
  /// The stored entry is not an envelope (not JSON, or not an object).
  Corrupt,
  /// Redis's WRONGTYPE: a list used as an entry, or the reverse.
  WrongType,
  Closed,
  InvalidArgument(String),
  DumpFile(String),
  Timeout(String),
  Connection(String),
  /// Redis Cluster's CLUSTERDOWN: some slots have no master (one failed and
  /// no replica has taken over yet).
  ClusterDown(String),
  Redis(String),
  /// A bug: the call panicked. It answers this instead of taking the
  /// process (or other calls) down with it.
  Internal(String),
}

impl CacheError {
  pub fn code(&self) -> &'static str {
    match self {
      CacheError::NotFound => "OBJECT_NOT_FOUND",
      CacheError::Expired => "OBJECT_EXPIRED",
      CacheError::Locked => "OBJECT_LOCKED",
      CacheError::Corrupt => "OBJECT_CORRUPT",
      CacheError::WrongType => "WRONGTYPE",
      CacheError::Closed => "CACHE_CLOSED",
      CacheError::InvalidArgument(_) => "ERR_INVALID_ARG_VALUE",
      CacheError::DumpFile(_) => "DUMP_FILE",
      CacheError::Timeout(_) => "REDIS_TIMEOUT",
      CacheError::Connection(_) => "REDIS_CONNECTION",
      CacheError::ClusterDown(_) => "REDIS_CLUSTERDOWN",
      CacheError::Redis(_) => "REDIS_ERROR",
      CacheError::Internal(_) => "INTERNAL_ERROR",
    }
  }
}

impl fmt::Display for CacheError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      // actionhero's own messages, which apps match on and localise.
      CacheError::NotFound => f.write_str("Object not found"),
      CacheError::Expired => f.write_str("Object Expired"),
      CacheError::Locked => f.write_str("Object Locked"),
      CacheError::Corrupt => f.write_str("Object corrupt: the stored entry is not a cache envelope"),
      CacheError::WrongType => f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value"),
      CacheError::Closed => f.write_str("Cache is closed"),
      CacheError::InvalidArgument(message)
      | CacheError::DumpFile(message)
      | CacheError::Timeout(message)
      | CacheError::Connection(message)
      | CacheError::ClusterDown(message)
      | CacheError::Redis(message) => f.write_str(message),
      CacheError::Internal(message) => write!(f, "actionhero-native-cache internal error: {message}"),
    }
  }
}

impl std::error::Error for CacheError {}
