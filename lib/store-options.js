'use strict'

// Where the cache keeps its data, from an app's `redis` config. ioredis
// arguments are read exactly as ioredis 5 reads them (Redis#parseOptions and
// utils.parseURL in node_modules/ioredis/built), so that the cache reaches
// the server, database and keys the app's own ioredis client reaches. An
// ioredis option the cache cannot honour is refused with a TypeError, never
// ignored; README's "Stores and connection options" classifies every one.

const { describe } = require('./args')

const NOT_SUPPORTED = 'the cache connects by TCP (host and port, a redis:// URL, Redis Cluster nodes or Sentinels); ' +
  'Unix sockets and NAT maps are not supported'

/** ioredis options the Rust store is handed (the Sentinel ones when `sentinels` is set). */
const HONOURED = [
  'host', 'port', 'username', 'password', 'db', 'tls', 'keyPrefix', 'connectTimeout', 'commandTimeout',
  'sentinels', 'name', 'role', 'sentinelUsername', 'sentinelPassword', 'enableTLSForSentinelMode', 'sentinelTLS'
]

/**
 * ioredis options no cache answer depends on: how ioredis reconnects,
 * queues, tunes its socket or names its client. The cache reconnects by
 * itself and bounds every call with connectTimeoutMS + commandTimeoutMS.
 */
const ACCEPTED = [
  'family', 'keepAlive', 'noDelay', 'connectionName', 'disableClientInfo', 'clientInfoTag',
  'retryStrategy', 'reconnectOnError', 'maxRetriesPerRequest', 'maxLoadingRetryTime',
  'enableOfflineQueue', 'offlineQueue', 'commandQueue', 'enableReadyCheck', 'lazyConnect',
  'autoResubscribe', 'autoResendUnfulfilledCommands', 'showFriendlyErrorStack',
  'enableAutoPipelining', 'autoPipeliningIgnoredCommands', 'scripts',
  'socketTimeout', 'disconnectTimeout', 'blockingTimeout', 'blockingTimeoutGrace',
  // How ioredis talks to Sentinels: the cache asks them again after every failover, within its timeouts.
  'sentinelRetryStrategy', 'sentinelReconnectStrategy', 'preferredSlaves', 'sentinelCommandTimeout',
  'updateSentinels', 'sentinelMaxConnections', 'failoverDetector'
]

/** ioredis options refused whenever set (truthy, as ioredis tests them), with why. */
const REFUSED = {
  path: NOT_SUPPORTED,
  natMap: NOT_SUPPORTED,
  Connector: 'a custom ioredis Connector cannot carry the cache\'s connection',
  readOnly: 'readOnly is for Redis Cluster replicas, and the cache writes',
  stringNumbers: 'stringNumbers would turn the cache\'s numeric answers into strings',
  monitor: 'a MONITOR connection cannot run the cache\'s commands'
}

const KNOWN = new Set([...HONOURED, ...ACCEPTED, ...Object.keys(REFUSED)])

/** The cache's own keys beside ioredis's in the plain shape (`name` is a Sentinel master's name beside `sentinels`). */
const PLAIN_EXTRAS = ['url', 'database', 'fake', 'name', 'cluster', 'connectTimeoutMS', 'commandTimeoutMS']

/**
 * ioredis's Redis.Cluster options beside `redisOptions` (every node's
 * ioredis options) and `keyPrefix`: how ioredis retries, refreshes slots
 * and queues, none of which any answer depends on (redis-rs's cluster
 * client follows MOVED and ASK, retries TRYAGAIN and CLUSTERDOWN, and
 * finds a new master after a failover, within the cache's timeouts).
 */
const CLUSTER_ACCEPTED = [
  'clusterRetryStrategy', 'enableOfflineQueue', 'enableReadyCheck', 'maxRedirections', 'retryDelayOnFailover',
  'retryDelayOnClusterDown', 'retryDelayOnTryAgain', 'retryDelayOnMoved', 'slotsRefreshTimeout',
  'slotsRefreshInterval', 'lazyConnect', 'enableAutoPipelining', 'autoPipeliningIgnoredCommands', 'scripts',
  'showFriendlyErrorStack', 'shardedSubscribers', 'dnsLookup'
]

/** Redis.Cluster options refused when set, with why. */
const CLUSTER_REFUSED = {
  natMap: NOT_SUPPORTED,
  useSRVRecords: 'the cache finds cluster nodes by host and port, not SRV records',
  resolveSrv: 'the cache finds cluster nodes by host and port, not SRV records'
}

const CLUSTER_KNOWN = new Set([...CLUSTER_ACCEPTED, ...Object.keys(CLUSTER_REFUSED), 'redisOptions', 'keyPrefix', 'scaleReads'])

/** setTimeout's limit, and far more than any connection should wait. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/**
 * Where the data lives, from every shape of `redis` config actionhero has
 * used, so that an app's `api.config.redis` can be passed as it is:
 * - none, or `{ fake: true }`: the in-memory store;
 * - 14.0.2-16: `{ client: { konstructor, args } }`, `args` being ioredis's
 *   (or fakeredis's) constructor arguments; a fakeredis `konstructor` means
 *   memory;
 * - 13.0-14.0.1 `{ pkg, host, port, password, database, options }`, and 9-12
 *   the same with `package`; `fakeredis` means memory;
 * - plain: ioredis options, plus `url` and `database` (an alias of `db`).
 * Beside any of them, `connectTimeoutMS` and `commandTimeoutMS`.
 */
function storeOptions (redis) {
  const memory = { memory: (redis && redis.name) || 'default' }
  if (redis === undefined || redis === null || redis.fake === true) return memory
  if (typeof redis !== 'object') throw new TypeError('options.redis must be an object')
  const timeouts = { connectTimeoutMS: redis.connectTimeoutMS, commandTimeoutMS: redis.commandTimeoutMS }
  if (redis.client && typeof redis.client === 'object') {
    const { konstructor, args } = redis.client
    if (isFakeredis(konstructor)) return memory
    if (typeof konstructor === 'function' && konstructor.name === 'Cluster') {
      const [nodes, options] = Array.isArray(args) ? args : []
      return clusterStore(nodes, clusterOptions(options), timeouts)
    }
    // ioredis's constructor reads three arguments (and actionhero 16 passes three).
    return redisStore(parseArgs(Array.isArray(args) ? args.slice(0, 3) : []), timeouts)
  }
  const pkg = redis.package !== undefined ? redis.package : redis.pkg
  if (pkg === 'fakeredis') return memory
  if (pkg !== undefined) return redisStore(legacyOptions(redis), timeouts)
  if (given(redis.cluster)) return clusterStore(redis.cluster, plainOptions(redis), timeouts)
  return redisStore(plainOptions(redis), timeouts)
}

/**
 * ioredis's Redis.Cluster options as the options of each node: its
 * `redisOptions`, with the cluster's own `keyPrefix` (which wins, as
 * ioredis applies it above the nodes).
 */
function clusterOptions (options) {
  if (options === undefined || options === null) return { options: {}, insecure: false }
  if (typeof options !== 'object') throw new TypeError(`options.redis: Redis.Cluster options must be an object, got ${describe(options)}`)
  checkNames(options, CLUSTER_KNOWN, CLUSTER_REFUSED,
    (name) => `options.redis: ${describe(name)} is not a Redis.Cluster option`,
    (name, why) => `options.redis: Redis.Cluster's ${name}: ${why}`)
  if (given(options.scaleReads) && options.scaleReads !== 'master') {
    throw new TypeError('options.redis: Redis.Cluster\'s scaleReads must be "master": the cache reads what it has just written')
  }
  const parsed = parseArgs([options.redisOptions])
  if (given(options.keyPrefix)) parsed.options.keyPrefix = options.keyPrefix
  return parsed
}

/**
 * A Redis Cluster: `nodes` are the startup nodes, as ioredis takes them
 * (`{ host, port }`, a port, or a URL), and `parsed` every node's options.
 * Redis Cluster has database 0 only; host and port are the nodes'.
 */
function clusterStore (nodes, parsed, timeouts) {
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw new TypeError(`options.redis: Redis Cluster needs a non-empty array of startup nodes, got ${describe(nodes)}`)
  }
  const { host, port, ...rest } = parsed.options
  const store = redisStore({ ...parsed, options: rest }, timeouts)
  if (store.db !== 0) throw new TypeError('options.redis.db: Redis Cluster has database 0 only')
  if (store.sentinels) throw new TypeError('options.redis: Redis Cluster and Sentinel cannot go together')
  return { ...store, host: undefined, port: undefined, cluster: nodes.map((node) => address(node, 6379)) }
}

/** A cluster node or Sentinel as ioredis takes one: `{ host, port }`, a port, or a URL. */
function address (node, defaultPort) {
  let parsed
  if (typeof node === 'number') parsed = { port: node }
  else if (typeof node === 'string') parsed = parseURL(node)
  else if (typeof node === 'object' && node !== null) parsed = node
  else throw new TypeError(`options.redis: a node must be { host, port }, a port or a URL, got ${describe(node)}`)
  const { host, port } = parsed
  return { host: given(host) ? text('host', host) : '127.0.0.1', port: wholeNumber('port', port, defaultPort, 65535) }
}

/**
 * actionhero 9-14.0.1 called `createClient(port, host, options)`, then sent
 * AUTH with `password` and SELECT with `database`: both win over `options`.
 */
function legacyOptions (redis) {
  const parsed = parseArgs([redis.port, redis.host, redis.options])
  if (given(redis.password)) parsed.options.password = redis.password
  const database = given(redis.database) ? redis.database : redis.db
  if (given(database)) parsed.options.db = database
  return parsed
}

/** ioredis options and an optional URL; a field given beside the URL wins over the URL's. */
function plainOptions (redis) {
  const options = {}
  for (const [name, value] of Object.entries(redis)) {
    const extra = PLAIN_EXTRAS.includes(name) && !(name === 'name' && given(redis.sentinels))
    if (!extra && given(value)) options[name] = value
  }
  if (!given(options.db) && given(redis.database)) options.db = redis.database
  const { url } = redis
  if (url !== undefined && url !== null && typeof url !== 'string') {
    throw new TypeError(`options.redis.url must be a string, got ${describe(url)}`)
  }
  return parseArgs([options, url])
}

/**
 * ioredis's constructor arguments merged as Redis#parseOptions merges them:
 * objects and URLs first-wins (lodash `defaults`), a number sets the port
 * outright, `rediss://` asks for TLS unless `tls` was given. Answers the
 * merged options, and whether a TLS URL ended in `#insecure`.
 */
function parseArgs (args) {
  const options = {}
  let tls = false
  let insecure = false
  for (const arg of args) {
    if (arg === null || arg === undefined) continue
    if (Array.isArray(arg)) throw new TypeError('options.redis: an array of nodes is not supported as a Redis argument: use Redis.Cluster (or redis.cluster)')
    if (typeof arg === 'object') defaults(options, arg)
    else if (typeof arg === 'string') {
      defaults(options, parseURL(arg))
      if (arg.startsWith('rediss://')) {
        tls = true
        insecure = insecure || insecureFragment(arg)
      }
    } else if (typeof arg === 'number') options.port = arg
    else throw new TypeError(`options.redis: invalid ioredis argument ${describe(arg)}`)
  }
  if (tls) defaults(options, { tls: true })
  return { options, insecure }
}

/** lodash's `defaults`: copies what `options` does not have yet (undefined counts as not having it). */
function defaults (options, source) {
  for (const name in source) {
    if (!Object.prototype.hasOwnProperty.call(options, name) || options[name] === undefined) options[name] = source[name]
  }
}

/** ioredis's utils.parseURL. */
function parseURL (url) {
  if (isInt(url)) return { port: url }
  const hasProtocol = /^rediss?:\/\//i.test(url)
  const isProtocolRelative = url.startsWith('//')
  if (url[0] === '/' && !isProtocolRelative) {
    const query = url.indexOf('?')
    const result = { path: query === -1 ? url : url.slice(0, query) }
    if (query !== -1) defaults(result, queryOptions(new URLSearchParams(url.slice(query + 1))))
    return result
  }
  let parsed
  try {
    parsed = new URL(hasProtocol ? url : isProtocolRelative ? `redis:${url}` : `redis://${url}`)
  } catch (error) {
    throw new TypeError(`options.redis: invalid Redis URL ${describe(url)}: ${error.message}`)
  }
  const result = {}
  if (parsed.username || parsed.password) {
    result.username = decodeURIComponent(parsed.username)
    result.password = decodeURIComponent(parsed.password)
  }
  if (parsed.pathname && parsed.pathname !== '/') {
    if (hasProtocol || isProtocolRelative) {
      if (parsed.pathname.length > 1) result.db = parsed.pathname.slice(1)
    } else {
      result.path = parsed.pathname
    }
  }
  if (parsed.hostname) result.host = parsed.hostname.replace(/^\[|\]$/g, '')
  if (parsed.port) result.port = parsed.port
  defaults(result, queryOptions(parsed.searchParams))
  return result
}

function queryOptions (params) {
  const options = {}
  params.forEach((value, name) => {
    const family = name === 'family' ? Number.parseInt(value, 10) : NaN
    options[name] = Number.isNaN(family) ? value : family
  })
  return options
}

/** ioredis's utils.isInt. */
function isInt (value) {
  const x = parseFloat(value)
  return !isNaN(value) && (x | 0) === x
}

/**
 * `#insecure` after a rediss:// URL skips the certificate check (this
 * package's convention; ioredis ignores fragments). Any other fragment is
 * refused rather than ignored.
 */
function insecureFragment (url) {
  const hash = url.indexOf('#')
  if (hash === -1) return false
  if (url.slice(hash) === '#insecure') return true
  throw new TypeError(`options.redis: only #insecure may end a rediss:// URL, got ${describe(url)}`)
}

/** A TypeError for a name that is not an option (`known`), or for one set that `refused` says why not. */
function checkNames (options, known, refused, notAnOption, refusal) {
  for (const name of Object.keys(options)) {
    if (!known.has(name)) throw new TypeError(notAnOption(name))
    if (refused[name] && options[name]) throw new TypeError(refusal(name, refused[name]))
  }
}

/** The Rust store's options from merged ioredis options. */
function redisStore ({ options, insecure }, { connectTimeoutMS, commandTimeoutMS }) {
  checkNames(options, KNOWN, REFUSED,
    (name) => `options.redis: ${describe(name)} is not an ioredis option`,
    (name, why) => `options.redis.${name}: ${why}`)
  const tls = tlsMode(options.tls)
  return {
    ...sentinel(options),
    // ioredis connects to localhost when host is left out, null or ''.
    host: given(options.host) ? text('host', options.host) : 'localhost',
    port: wholeNumber('port', options.port, 6379, 65535),
    db: wholeNumber('db', options.db, 0, Infinity),
    ...credentials(options.username, options.password),
    tls: tls !== 'off',
    tlsInsecure: tls === 'insecure' || (tls !== 'off' && insecure),
    keyPrefix: keyPrefix(options.keyPrefix),
    connectTimeoutMs: timeout('connectTimeoutMS', connectTimeoutMS, 'connectTimeout', options.connectTimeout),
    commandTimeoutMs: timeout('commandTimeoutMS', commandTimeoutMS, 'commandTimeout', options.commandTimeout)
  }
}

/**
 * ioredis's Sentinel options, when `sentinels` is set: the master `name`
 * to ask for, and the Sentinels' own credentials (`username`, `password`,
 * `db` and `tls` are the master's). The cache writes, so `role` must be
 * the master's; Sentinels are reached over plain TCP.
 */
function sentinel (options) {
  if (!given(options.sentinels)) return {}
  const { sentinels, name, role, sentinelUsername, sentinelPassword } = options
  if (!Array.isArray(sentinels) || sentinels.length === 0) {
    throw new TypeError(`options.redis.sentinels must be a non-empty array, got ${describe(sentinels)}`)
  }
  if (!given(name)) throw new TypeError('options.redis.name: Sentinel needs the name of the master to ask for')
  if (given(role) && role !== 'master') throw new TypeError('options.redis.role must be "master": the cache writes')
  for (const tls of ['enableTLSForSentinelMode', 'sentinelTLS']) {
    if (options[tls]) throw new TypeError(`options.redis.${tls}: the cache reaches Sentinels over plain TCP`)
  }
  return {
    sentinels: sentinels.map((node) => address(node, 26379)),
    sentinelName: text('name', name),
    ...(given(sentinelUsername) ? { sentinelUsername: text('sentinelUsername', sentinelUsername) } : {}),
    ...(given(sentinelPassword) ? { sentinelPassword: text('sentinelPassword', sentinelPassword) } : {})
  }
}

/**
 * ioredis hands `tls` to tls.connect. Honoured: unset or falsy (plain TCP),
 * `true` or `{}` (certificate checked against the system's roots), and
 * `{ rejectUnauthorized: false }` (not checked). Anything else (a CA, a
 * client certificate, a profile name) is refused.
 */
function tlsMode (tls) {
  if (!tls) return 'off'
  if (tls === true) return 'verified'
  if (typeof tls === 'object' && !Array.isArray(tls)) {
    const other = Object.keys(tls).find((name) => name !== 'rejectUnauthorized')
    const { rejectUnauthorized } = tls
    if (other === undefined && (rejectUnauthorized === undefined || typeof rejectUnauthorized === 'boolean')) {
      return rejectUnauthorized === false ? 'insecure' : 'verified'
    }
    const shown = other === undefined ? `rejectUnauthorized: ${describe(rejectUnauthorized)}` : describe(other)
    throw new TypeError(`options.redis.tls: only { rejectUnauthorized: true | false } can be honoured, got ${shown}`)
  }
  throw new TypeError(`options.redis.tls must be true or an object, got ${describe(tls)}`)
}

/** As ioredis authenticates: AUTH user password when a username is given, AUTH password when only a password is. */
function credentials (username, password) {
  const user = given(username) ? text('username', username) : undefined
  const pass = given(password) ? text('password', password) : undefined
  if (user !== undefined) return { username: user, password: pass === undefined ? '' : pass }
  return pass === undefined ? {} : { password: pass }
}

function keyPrefix (prefix) {
  if (prefix === undefined || prefix === null) return ''
  if (typeof prefix !== 'string') throw new TypeError(`options.redis.keyPrefix must be a string, got ${describe(prefix)}`)
  return prefix
}

/** `ours` (the cache's own option) when given, else ioredis's `theirs`. */
function timeout (ours, oursValue, theirs, theirsValue) {
  const [name, value] = given(oursValue) ? [ours, oursValue] : [theirs, theirsValue]
  if (!given(value)) return undefined
  const ms = Number(value) // from the environment or a URL's query, as text
  if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_TIMEOUT_MS) {
    throw new TypeError(`options.redis.${name} must be a number of ms above 0 and at most ${MAX_TIMEOUT_MS}, got ${describe(value)}`)
  }
  return ms
}

/** ioredis parses ports and databases from text (env vars, URLs); anything but a whole number is refused. */
function wholeNumber (name, value, fallback, max) {
  if (!given(value)) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new TypeError(`options.redis.${name} must be a whole number${max < Infinity ? ` up to ${max}` : ''}, got ${describe(value)}`)
  }
  return n
}

function text (name, value) {
  if (typeof value === 'string') return value
  if (typeof value === 'number') return String(value)
  throw new TypeError(`options.redis.${name} must be a string, got ${describe(value)}`)
}

function given (value) {
  return value !== undefined && value !== null && value !== ''
}

function isFakeredis (konstructor) {
  if (typeof konstructor !== 'function') return false
  try {
    const fakeredis = require(require.resolve('fakeredis', { paths: [process.cwd(), __dirname] }))
    if (konstructor === fakeredis.createClient) return true
  } catch (_) {}
  return /fakeredis/i.test(konstructor.name)
}

module.exports = { storeOptions }
