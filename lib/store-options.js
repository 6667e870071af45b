'use strict'

// Where the cache keeps its data, from an app's `redis` config.

const NOT_SUPPORTED = 'the cache connects to one Redis server, by host and port or a redis:// URL; ' +
  'Redis Cluster, Sentinel and Unix sockets are not supported'

/**
 * Where the data lives, from every shape of `redis` config actionhero has
 * used, so that an app's `api.config.redis` can be passed as it is:
 * - none, or `{ fake: true }`: the in-memory store;
 * - 14.0.2-16: `{ client: { konstructor, args } }`, `args` being ioredis's
 *   (or fakeredis's) constructor arguments: `[options]`, `[port, host,
 *   options]` or `[url, options]`; a fakeredis `konstructor` means memory;
 * - 13.0-14.0.1 `{ pkg, host, port, database, options }`, and 9-12 the same
 *   with `package`; `fakeredis` means memory;
 * - plain `{ host, port, password, db | database, url }`.
 */
function storeOptions (redis) {
  const memory = { memory: (redis && redis.name) || 'default' }
  if (redis === undefined || redis === null || redis.fake === true) return memory
  if (typeof redis !== 'object') throw new TypeError('options.redis must be an object')
  const timeouts = { connectTimeoutMs: redis.connectTimeoutMS, commandTimeoutMs: redis.commandTimeoutMS }
  if (redis.client && typeof redis.client === 'object') {
    const { konstructor, args } = redis.client
    if (isFakeredis(konstructor)) return memory
    if (typeof konstructor === 'function' && konstructor.name === 'Cluster') throw new TypeError(NOT_SUPPORTED)
    return { ...connectionOptions(mergeClientArgs(args)), ...timeouts }
  }
  const pkg = redis.package !== undefined ? redis.package : redis.pkg
  if (pkg === 'fakeredis') return memory
  const options = (pkg !== undefined && redis.options && typeof redis.options === 'object') ? redis.options : {}
  return {
    ...connectionOptions({
      ...redis,
      password: given(redis.password) ? redis.password : options.password,
      // actionhero selected `database` after connecting: it wins over options.db.
      db: given(redis.db) ? redis.db : given(redis.database) ? redis.database : options.db
    }),
    ...timeouts
  }
}

function given (value) {
  return value !== undefined && value !== null && value !== ''
}

/** ioredis's constructor arguments as one options object. */
function mergeClientArgs (args) {
  const merged = {}
  for (const arg of Array.isArray(args) ? args : []) {
    if (typeof arg === 'number') merged.port = arg
    else if (typeof arg === 'string') {
      if (/^\d+$/.test(arg)) merged.port = Number(arg)
      else if (arg.includes('://')) merged.url = arg
      else if (arg.startsWith('/')) merged.path = arg
      else merged.host = arg
    } else if (Array.isArray(arg)) throw new TypeError(NOT_SUPPORTED) // Redis.Cluster's nodes
    else if (arg !== null && typeof arg === 'object') Object.assign(merged, arg)
  }
  if (Array.isArray(merged.sentinels) || merged.path) throw new TypeError(NOT_SUPPORTED)
  return merged
}

function connectionOptions ({ url, host, port, username, password, db }) {
  const number = (name, value) => {
    if (!given(value)) return undefined
    const n = Number(value) // actionhero's config reads these from env vars, as strings
    if (!Number.isInteger(n) || n < 0) throw new TypeError(`options.redis.${name} must be a whole number, got ${value}`)
    return n
  }
  return {
    url: url || undefined,
    host: host || undefined,
    port: number('port', port),
    username: username || undefined,
    password: password || undefined,
    db: number('db', db)
  }
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
