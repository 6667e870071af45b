'use strict'

// The stores every behaviour test runs against. Each call of `options(tag)`
// gives a cache that shares nothing with other tags: its own in-memory
// server name, or its own key prefixes on the local Redis (database 0), on
// the Redis Cluster or on the Sentinels' master global-setup.js starts.
// Caches built with the same tag share data, as two nodes of one fleet do.

const Redis = require('ioredis')

const RUN = `${process.pid}-${Date.now().toString(36)}`
const REDIS = { host: '127.0.0.1', port: 6379, db: 0 }

function prefixes (tag) {
  return { cachePrefix: `test:${RUN}:${tag}:cache:`, lockPrefix: `test:${RUN}:${tag}:lock:` }
}

/** The cluster's startup nodes, and the Sentinels' options (from jest's global setup). */
const CLUSTER = JSON.parse(process.env.TEST_CLUSTER_NODES)
const SENTINELS = JSON.parse(process.env.TEST_SENTINELS)

const stores = [
  { name: 'memory', options: (tag) => ({ ...prefixes(tag), redis: { fake: true, name: `test-${RUN}-${tag}` } }) },
  { name: 'redis', options: (tag) => ({ ...prefixes(tag), redis: { ...REDIS } }) },
  { name: 'cluster', options: (tag) => ({ ...prefixes(tag), redis: { cluster: CLUSTER } }) },
  { name: 'sentinel', options: (tag) => ({ ...prefixes(tag), redis: { ...SENTINELS } }) }
]

/** Deletes every Redis key this test run made (in database 0, or `db`). */
async function cleanupRedis (db = REDIS.db) {
  const redis = new Redis({ ...REDIS, db, lazyConnect: true })
  try {
    await redis.connect()
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `test:${RUN}:*`, 'COUNT', 1000)
      if (keys.length) await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

module.exports = { stores, prefixes, cleanupRedis, RUN, REDIS }
