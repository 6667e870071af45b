//! How the Redis store reaches Redis: one server, a Redis Cluster, or the
//! master a group of Sentinels names. [`Connection`] hides which, so that
//! each store operation is written once, against [`Link`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::sentinel::SentinelClient;
use redis::{
  AsyncConnectionConfig, Cmd, ConnectionInfo, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, RedisResult,
  ServerErrorKind, Value,
};

/// Where the data lives, as the config names it.
pub enum Servers {
  One(ConnectionInfo),
  /// A Redis Cluster's startup nodes; the rest are discovered.
  Cluster(Vec<ConnectionInfo>),
  /// The Sentinels to ask, for the master of one name.
  Sentinel(SentinelClient),
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
  Cluster { client: ClusterClient, connection: OnceLock<ClusterConnection> },
  Sentinel(SentinelMaster),
}

/// One exchange's way to Redis: what [`Connection::link`] hands out.
#[derive(Clone)]
pub enum Link {
  One(ConnectionManager),
  Cluster(ClusterConnection),
  /// A connection to the master the Sentinels named, and which resolution
  /// made it (see [`SentinelMaster::forget`]).
  Master(MultiplexedConnection, u64),
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
        Connection::Cluster { client, connection: OnceLock::new() }
      }
      Servers::Sentinel(sentinels) => Connection::Sentinel(SentinelMaster {
        sentinels: tokio::sync::Mutex::new(sentinels),
        master: Mutex::default(),
        resolutions: AtomicU64::new(0),
        config: AsyncConnectionConfig::new()
          .set_connection_timeout(Some(timeouts.connect))
          .set_response_timeout(Some(timeouts.command)),
      }),
    })
  }

  pub async fn link(&self) -> RedisResult<Link> {
    Ok(match self {
      Connection::One(manager) => Link::One(manager.clone()),
      Connection::Cluster { client, connection } => {
        Link::Cluster(connection.get_or_init(|| client.get_pending_async_connection_with_config(ClusterConfig::new())).clone())
      }
      Connection::Sentinel(sentinel) => sentinel.link().await?,
    })
  }

  /// Told of every failed exchange: after a Sentinel failover the old
  /// master drops its clients or refuses writes, and the next call asks
  /// the Sentinels again.
  pub fn failed(&self, link: &Link, error: &RedisError) {
    if let (Connection::Sentinel(sentinel), Link::Master(_, resolution)) = (self, link) {
      if master_may_have_moved(error) {
        sentinel.forget(*resolution);
      }
    }
  }

  /// The nodes that hold the data: every master of a cluster, as its
  /// client sees them now.
  pub async fn masters(link: &mut Link) -> RedisResult<Vec<Node>> {
    let Link::Cluster(cluster) = link else {
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
      (Link::Cluster(cluster), Node::At { host, port }) => {
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

/// The master a group of Sentinels names, resolved on the first call and
/// again after a failover.
pub struct SentinelMaster {
  /// Asked by one call at a time; the others wait for its answer.
  sentinels: tokio::sync::Mutex<SentinelClient>,
  master: Mutex<Option<(MultiplexedConnection, u64)>>,
  resolutions: AtomicU64,
  config: AsyncConnectionConfig,
}

impl SentinelMaster {
  fn current(&self) -> Option<Link> {
    let master = self.master.lock().unwrap_or_else(|e| e.into_inner());
    master.as_ref().map(|(connection, resolution)| Link::Master(connection.clone(), *resolution))
  }

  async fn link(&self) -> RedisResult<Link> {
    if let Some(link) = self.current() {
      return Ok(link);
    }
    let mut sentinels = self.sentinels.lock().await;
    // Another call may have resolved it while this one waited.
    if let Some(link) = self.current() {
      return Ok(link);
    }
    let connection = sentinels.async_get_client().await?.get_multiplexed_async_connection_with_config(&self.config).await?;
    let resolution = self.resolutions.fetch_add(1, Ordering::Relaxed) + 1;
    *self.master.lock().unwrap_or_else(|e| e.into_inner()) = Some((connection.clone(), resolution));
    Ok(Link::Master(connection, resolution))
  }

  /// Drops the master connection made by `resolution`, unless a newer
  /// one has replaced it already (many calls fail together in a failover;
  /// only the first should cause a new resolution).
  fn forget(&self, resolution: u64) {
    let mut master = self.master.lock().unwrap_or_else(|e| e.into_inner());
    if master.as_ref().is_some_and(|(_, current)| *current == resolution) {
      *master = None;
    }
  }
}

impl ConnectionLike for Link {
  fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
    match self {
      Link::One(connection) => connection.req_packed_command(cmd),
      Link::Cluster(connection) => connection.req_packed_command(cmd),
      Link::Master(connection, _) => connection.req_packed_command(cmd),
    }
  }

  fn req_packed_commands<'a>(&'a mut self, pipeline: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<Value>> {
    match self {
      Link::One(connection) => connection.req_packed_commands(pipeline, offset, count),
      Link::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
      Link::Master(connection, _) => connection.req_packed_commands(pipeline, offset, count),
    }
  }

  fn get_db(&self) -> i64 {
    match self {
      Link::One(connection) => connection.get_db(),
      Link::Cluster(connection) => connection.get_db(),
      Link::Master(connection, _) => connection.get_db(),
    }
  }
}
