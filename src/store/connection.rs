//! How the Redis store reaches Redis: one server, a Redis Cluster, or the
//! master a group of Sentinels names. [`Connection`] hides which, so that
//! each store operation is written once, against [`Link`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::sentinel::SentinelClient;
use redis::{
  AsyncConnectionConfig, Cmd, ConnectionInfo, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, RedisResult,
  ServerErrorKind, Value,
};

use super::lock;

/// Where the data lives, as the config names it.
pub enum Servers {
  One(ConnectionInfo),
  /// A Redis Cluster's startup nodes; the rest are discovered.
  Cluster(Vec<ConnectionInfo>),
  /// The Sentinels to ask for the master called `name`, as redis-rs's
  /// client, and each Sentinel's address to follow failovers on.
  Sentinel { client: SentinelClient, sentinels: Vec<ConnectionInfo>, name: String },
}

pub struct Timeouts {
  pub connect: Duration,
  pub command: Duration,
}

pub enum Connection {
  /// Reconnects by itself after a drop, as ioredis does.
  One(ConnectionManager),
  /// Made on the first call (the constructor sends nothing); redis-rs's
  /// cluster client follows MOVED and ASK, and finds the new master after a
  /// failover by itself.
  /// (The client boxed: it is several times the size of the other variants.)
  Cluster { client: Box<ClusterClient>, current: Current<ClusterConnection> },
  Sentinel(Arc<SentinelMaster>),
}

/// One exchange's way to Redis: what [`Connection::link`] hands out, with
/// which of the connections made so far it is (see [`Current`]).
#[derive(Clone)]
pub enum Link {
  One(ConnectionManager),
  Cluster(ClusterConnection, u64),
  /// A connection to the master the Sentinels named.
  Master(MultiplexedConnection, u64),
}

/// What went wrong with an exchange, for [`Connection::failed`].
pub enum Failure<'a> {
  Redis(&'a RedisError),
  /// The call's deadline passed.
  Deadline,
}

/// A node a SCAN walks: the one server, or one master of a cluster.
pub enum Node {
  Only,
  At { host: String, port: u16 },
}

/// Retries of a cluster call while a slot moves or a master fails over
/// (TRYAGAIN, CLUSTERDOWN, a node gone): waits between 10 and 200 ms, and
/// as many as the call's deadline leaves room for, which bounds it anyway.
const CLUSTER_RETRIES: u32 = 100;
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 10;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 200;

impl Connection {
  /// Connects lazily: nothing is sent until the first call. Must be called
  /// within a tokio runtime.
  pub fn open(servers: Servers, timeouts: Timeouts) -> RedisResult<Self> {
    Ok(match servers {
      Servers::One(info) => {
        let config = ConnectionManagerConfig::new()
          .set_connection_timeout(Some(timeouts.connect))
          .set_response_timeout(Some(timeouts.command))
          .set_number_of_retries(1);
        Connection::One(ConnectionManager::new_lazy_with_config(redis::Client::open(info)?, config)?)
      }
      Servers::Cluster(nodes) => {
        let client = ClusterClientBuilder::new(nodes)
          .connection_timeout(timeouts.connect)
          .response_timeout(timeouts.command)
          // The store's own deadline bounds the whole call, retries included.
          .overall_response_timeout(None)
          .retries(CLUSTER_RETRIES)
          .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
          .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
          .build()?;
        Connection::Cluster { client: Box::new(client), current: Current::default() }
      }
      Servers::Sentinel { client, sentinels, name } => Connection::Sentinel(Arc::new(SentinelMaster {
        client: tokio::sync::Mutex::new(client),
        master: Current::default(),
        config: AsyncConnectionConfig::new()
          .set_connection_timeout(Some(timeouts.connect))
          .set_response_timeout(Some(timeouts.command)),
        sentinels,
        name,
        watcher: Mutex::new(None),
      })),
    })
  }

  pub async fn link(&self) -> RedisResult<Link> {
    Ok(match self {
      Connection::One(manager) => Link::One(manager.clone()),
      Connection::Cluster { client, current } => {
        let (connection, made) =
          current.get_or_make(|| client.get_pending_async_connection_with_config(ClusterConfig::new()));
        Link::Cluster(connection, made)
      }
      Connection::Sentinel(sentinel) => match sentinel.master.get() {
        Some((connection, made)) => Link::Master(connection, made),
        // Boxed: asking the Sentinels is a future of over 3 kB, which every
        // call's own future was sized for, and moved about with it, though
        // only a first call or one after a failover asks.
        None => Box::pin(SentinelMaster::resolve(sentinel)).await?,
      },
    })
  }

  /// Told of every failed exchange. After a Sentinel failover the old
  /// master drops its clients or refuses writes: the next call asks the
  /// Sentinels again. A cluster call that hits its deadline drops the
  /// cluster connection, and the next call makes a new one: redis-rs 1.8's
  /// cluster client can deadlock when a slot refresh (after a MOVED) waits
  /// for its table of nodes while a request it no longer polls has been
  /// handed the table's read lock (a fair lock, first come first served);
  /// it then never answers again.
  pub fn failed(&self, link: &Link, failure: Failure) {
    match (self, link, failure) {
      (Connection::Sentinel(sentinel), Link::Master(_, made), failure)
        if matches!(failure, Failure::Deadline) || matches!(failure, Failure::Redis(error) if master_may_have_moved(error)) =>
      {
        sentinel.master.retire(*made)
      }
      (Connection::Cluster { current, .. }, Link::Cluster(_, made), Failure::Deadline) => current.retire(*made),
      _ => {}
    }
  }

  /// The nodes that hold the data: every master of a cluster, as its
  /// client sees them now.
  pub async fn masters(link: &mut Link) -> RedisResult<Vec<Node>> {
    let Link::Cluster(cluster, _) = link else {
      return Ok(vec![Node::Only]);
    };
    // Without a response policy, a fan-out answers each node's reply under its address.
    let all_masters = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
    let Value::Map(replies) = cluster.route_command(redis::cmd("PING"), all_masters).await? else {
      return Err(unexpected("PING to every master"));
    };
    replies
      .into_iter()
      .map(|(address, _)| {
        let address = String::from_redis_value(address)?;
        let (host, port) = address.rsplit_once(':').ok_or_else(|| unexpected("a node address"))?;
        Ok(Node::At { host: host.to_owned(), port: port.parse().map_err(|_| unexpected("a node port"))? })
      })
      .collect()
  }

  /// `cmd` on one node (a SCAN step, which has no key to route it by).
  pub async fn query_on<T: FromRedisValue>(link: &mut Link, node: &Node, cmd: &Cmd) -> RedisResult<T> {
    match (link, node) {
      (Link::Cluster(cluster, _), Node::At { host, port }) => {
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host: host.clone(), port: *port });
        T::from_redis_value(cluster.route_command(cmd.clone(), route).await?).map_err(Into::into)
      }
      (link, _) => cmd.query_async(link).await,
    }
  }
}

fn unexpected(what: &str) -> RedisError {
  RedisError::from((ErrorKind::UnexpectedReturnType, "unexpected reply from Redis Cluster", what.to_owned()))
}

/// Whether an error means the master may be another server now: the
/// connection broke or timed out, or the server was made a replica.
fn master_may_have_moved(error: &RedisError) -> bool {
  error.is_io_error()
    || error.is_connection_dropped()
    || error.is_connection_refusal()
    || error.is_timeout()
    || error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}

/// A connection that calls share until a failure retires it; the next
/// call then makes a new one. Each is numbered, so that of the many calls
/// that fail together only the first retires it, not its successor.
pub struct Current<T> {
  connection: Mutex<Option<(T, u64)>>,
  made: AtomicU64,
}

impl<T> Default for Current<T> {
  fn default() -> Self {
    Current { connection: Mutex::new(None), made: AtomicU64::new(0) }
  }
}

impl<T: Clone> Current<T> {
  fn lock(&self) -> std::sync::MutexGuard<'_, Option<(T, u64)>> {
    lock(&self.connection)
  }

  fn get(&self) -> Option<(T, u64)> {
    self.lock().clone()
  }

  fn get_or_make(&self, make: impl FnOnce() -> T) -> (T, u64) {
    let mut current = self.lock();
    current.get_or_insert_with(|| (make(), self.made.fetch_add(1, Ordering::Relaxed) + 1)).clone()
  }

  fn set(&self, connection: T) -> u64 {
    let made = self.made.fetch_add(1, Ordering::Relaxed) + 1;
    *self.lock() = Some((connection, made));
    made
  }

  fn retire(&self, made: u64) {
    let mut current = self.lock();
    if current.as_ref().is_some_and(|(_, number)| *number == made) {
      *current = None;
    }
  }

  fn retire_any(&self) {
    self.lock().take();
  }
}

/// The master a group of Sentinels names, resolved on the first call and
/// again after a failover.
pub struct SentinelMaster {
  /// Asked by one call at a time; the others wait for its answer.
  client: tokio::sync::Mutex<SentinelClient>,
  master: Current<MultiplexedConnection>,
  config: AsyncConnectionConfig,
  sentinels: Vec<ConnectionInfo>,
  name: String,
  /// Follows the Sentinels' failovers from the first call on; stopped with the cache.
  watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// How long to wait before following failovers again when no Sentinel answers.
const SENTINEL_RETRY: Duration = Duration::from_secs(1);

impl SentinelMaster {
  /// Asks the Sentinels for the master and connects to it.
  async fn resolve(this: &Arc<Self>) -> RedisResult<Link> {
    let mut client = this.client.lock().await;
    // Another call may have resolved it while this one waited.
    if let Some((connection, made)) = this.master.get() {
      return Ok(Link::Master(connection, made));
    }
    lock(&this.watcher).get_or_insert_with(|| tokio::spawn(watch(Arc::downgrade(this))));
    let connection = client.async_get_client().await?.get_multiplexed_async_connection_with_config(&this.config).await?;
    Ok(Link::Master(connection.clone(), this.master.set(connection)))
  }
}

impl Drop for SentinelMaster {
  fn drop(&mut self) {
    if let Some(watcher) = lock(&self.watcher).take() {
      watcher.abort();
    }
  }
}

/// Follows `+switch-master` on one Sentinel after another, as ioredis's
/// `failoverDetector` does: when they promote a replica, the connection to
/// the old master is dropped at once. Sentinel leaves the old master taking
/// writes for seconds after a promotion (until it tells it to step down),
/// writes the promoted replica never sees.
async fn watch(master: Weak<SentinelMaster>) {
  loop {
    let Some(sentinels) = master.upgrade().map(|master| master.sentinels.clone()) else {
      return;
    };
    for sentinel in sentinels {
      // A Sentinel that cannot be reached, or goes away: the next one.
      let _ = follow(&master, sentinel).await;
    }
    tokio::time::sleep(SENTINEL_RETRY).await;
  }
}

async fn follow(master: &Weak<SentinelMaster>, sentinel: ConnectionInfo) -> RedisResult<()> {
  let mut pubsub = redis::Client::open(sentinel)?.get_async_pubsub().await?;
  pubsub.subscribe("+switch-master").await?;
  let mut switches = pubsub.on_message();
  while let Some(switch) = switches.next().await {
    // "<name> <old host> <old port> <new host> <new port>"
    let payload: String = switch.get_payload()?;
    let Some(master) = master.upgrade() else {
      return Ok(());
    };
    if payload.split(' ').next() == Some(master.name.as_str()) {
      master.master.retire_any();
    }
  }
  Ok(())
}

impl ConnectionLike for Link {
  fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
    match self {
      Link::One(connection) => connection.req_packed_command(cmd),
      Link::Cluster(connection, _) => connection.req_packed_command(cmd),
      Link::Master(connection, _) => connection.req_packed_command(cmd),
    }
  }

  fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
    match self {
      Link::One(connection) => connection.req_packed_commands(pipeline, offset, count),
      Link::Cluster(connection, _) => connection.req_packed_commands(pipeline, offset, count),
      Link::Master(connection, _) => connection.req_packed_commands(pipeline, offset, count),
    }
  }

  fn get_db(&self) -> i64 {
    match self {
      Link::One(connection) => connection.get_db(),
      Link::Cluster(connection, _) => connection.get_db(),
      Link::Master(connection, _) => connection.get_db(),
    }
  }
}
