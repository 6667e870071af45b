'use strict'

// Every shape of `redis` option actionhero apps use reaches the right Redis
// server and database, fakeredis shapes stay in memory, and a Redis that
// does not answer (or is not there) ends a call with an error instead of
// leaving it hanging.

const { types } = require('util')
const Redis = require('ioredis')

const { Cache } = require('..')
const { prefixes, cleanupRedis, REDIS, RUN } = require('./support/stores')
const { silentServer, freePort } = require('./support/redis-server')

const HOST = REDIS.host
const PORT = REDIS.port
const OTHER_DB = 5

/** Calls `cache[method](...args, callback)`; answers `{ error, results }`. */
function call (cache, method, ...args) {
  return new Promise((resolve) => {
    cache[method](...args, (error, ...results) => resolve({ error: error || null, results }))
  })
}

/** The test-run keys in one database. */
async function keysIn (client, db, pattern = `test:${RUN}:*`) {
  await client.select(db)
  const found = []
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    found.push(...keys)
    cursor = next
  } while (cursor !== '0')
  return found.sort()
}

let tagCount = 0
const tag = () => `connection-${++tagCount}`

describe('connection options', () => {
  let raw

  beforeAll(async () => {
    raw = new Redis({ host: HOST, port: PORT, db: 0, lazyConnect: true })
    await raw.connect()
  })

  afterAll(async () => {
    for (const key of await keysIn(raw, OTHER_DB)) await raw.del(key)
    await raw.select(0)
    await cleanupRedis()
    raw.disconnect()
  })

  /**
   * Saves and loads through a cache built with `redis`, then answers in
   * which databases (0 and OTHER_DB) the entry landed.
   */
  async function whereItLands (redis) {
    const keys = prefixes(tag())
    const cache = new Cache({ ...keys, redis, lockName: 'connection-test' })
    try {
      expect(await call(cache, 'save', 'k', { where: 'here' })).toEqual({ error: null, results: [true] })
      const { error, results } = await call(cache, 'load', 'k')
      expect(error).toBeNull()
      expect(results[0]).toEqual({ where: 'here' })
    } finally {
      await cache.close()
    }
    const pattern = `${keys.cachePrefix}*`
    return { db0: await keysIn(raw, 0, pattern), other: await keysIn(raw, OTHER_DB, pattern), entry: `${keys.cachePrefix}k` }
  }

  test('{ host, port, db }', async () => {
    const { db0, other, entry } = await whereItLands({ host: HOST, port: PORT, db: 0 })
    expect(db0).toEqual([entry])
    expect(other).toEqual([])
  })

  test(`{ host, port, db: ${OTHER_DB} } writes to database ${OTHER_DB} only`, async () => {
    const { db0, other, entry } = await whereItLands({ host: HOST, port: PORT, db: OTHER_DB })
    expect(other).toEqual([entry])
    expect(db0).toEqual([])
  })

  test('database is an alias of db', async () => {
    const { db0, other, entry } = await whereItLands({ host: HOST, port: PORT, database: OTHER_DB })
    expect(other).toEqual([entry])
    expect(db0).toEqual([])
  })

  test('db given as a string, as actionhero reads it from the environment', async () => {
    const { db0, other, entry } = await whereItLands({ host: HOST, port: String(PORT), db: String(OTHER_DB) })
    expect(other).toEqual([entry])
    expect(db0).toEqual([])
  })

  test('{ url: "redis://127.0.0.1:6379/0" }', async () => {
    const { db0, other, entry } = await whereItLands({ url: `redis://${HOST}:${PORT}/0` })
    expect(db0).toEqual([entry])
    expect(other).toEqual([])
  })

  test(`a url naming database ${OTHER_DB}`, async () => {
    const { db0, other, entry } = await whereItLands({ url: `redis://${HOST}:${PORT}/${OTHER_DB}` })
    expect(other).toEqual([entry])
    expect(db0).toEqual([])
  })

  test('actionhero 13-16: { client: { konstructor: ioredis, args: [{ host, port, db }] } }', async () => {
    const { db0, other, entry } = await whereItLands({
      client: { konstructor: require('ioredis'), args: [{ host: HOST, port: PORT, db: OTHER_DB }] }
    })
    expect(other).toEqual([entry])
    expect(db0).toEqual([])
  })

  test('actionhero 13-16 with args [port, host]', async () => {
    const { db0, other, entry } = await whereItLands({ client: { konstructor: require('ioredis'), args: [PORT, HOST] } })
    expect(db0).toEqual([entry])
    expect(other).toEqual([])
  })

  test('a bad db number is refused when the cache is built', () => {
    expect(() => new Cache({ redis: { host: HOST, port: PORT, db: -1 } })).toThrow(TypeError)
    expect(() => new Cache({ redis: { host: HOST, port: PORT, db: 'five' } })).toThrow(TypeError)
  })

  describe('fakeredis shapes stay in memory', () => {
    /** Two caches built with `redis` share data, and nothing reaches Redis. */
    async function staysInMemory (redis) {
      const keys = prefixes(tag())
      const a = new Cache({ ...keys, redis, lockName: 'a' })
      const b = new Cache({ ...keys, redis, lockName: 'b' })
      try {
        expect((await call(a, 'save', 'k', 'in memory')).results).toEqual([true])
        expect((await call(a, 'lock', 'held', 10000)).results).toEqual([true])
        expect((await call(b, 'load', 'k')).results[0]).toBe('in memory') // same in-memory server
        expect((await call(b, 'lock', 'held', 10000)).results).toEqual([false])
      } finally {
        await a.close()
        await b.close()
      }
      const anything = `test:${RUN}:${keys.cachePrefix.split(':')[2]}:*`
      expect(await keysIn(raw, 0, anything)).toEqual([])
      expect(await keysIn(raw, OTHER_DB, anything)).toEqual([])
    }

    test('konstructor: fakeredis.createClient (the real module)', async () => {
      const fakeredis = require('fakeredis')
      await staysInMemory({
        name: `fake-${RUN}-module`,
        client: { konstructor: fakeredis.createClient, args: [{ host: HOST, port: PORT, db: 0 }] }
      })
    })

    test('konstructor: a function whose name contains fakeredis', async () => {
      const fakeredisCreateClient = function () { throw new Error('never called') }
      await staysInMemory({
        name: `fake-${RUN}-named`,
        client: { konstructor: fakeredisCreateClient, args: [{ host: HOST, port: PORT, db: 0 }] }
      })
    })

    test('actionhero 9-12: { package: "fakeredis" }', async () => {
      await staysInMemory({ name: `fake-${RUN}-package`, package: 'fakeredis', host: HOST, port: PORT })
    })
  })
})

describe('a Redis that does not answer', () => {
  const isError = (value) => types.isNativeError(value)

  const TIMEOUTS = { connectTimeoutMS: 300, commandTimeoutMS: 300 }
  /** When a call to a Redis that does not answer must have failed: a bound that catches a hang. */
  const FAILS_WITHIN = TIMEOUTS.connectTimeoutMS + TIMEOUTS.commandTimeoutMS + 250

  /** Runs `work` and answers its outcome, checking that it ended within FAILS_WITHIN. */
  async function bounded (work) {
    const started = Date.now()
    const outcome = await work()
    expect(Date.now() - started).toBeLessThanOrEqual(FAILS_WITHIN)
    return outcome
  }

  test('a silent server: calls end with REDIS_TIMEOUT (or REDIS_CONNECTION)', async () => {
    const server = await silentServer()
    const cache = new Cache({
      ...prefixes(tag()),
      redis: { host: '127.0.0.1', port: server.port, ...TIMEOUTS },
      lockName: 'silent'
    })
    try {
      const started = Date.now()
      const save = await bounded(() => call(cache, 'save', 'k', 1))
      const saveMs = Date.now() - started
      expect(isError(save.error)).toBe(true)
      expect(['REDIS_TIMEOUT', 'REDIS_CONNECTION']).toContain(save.error && save.error.code)
      expect(server.connections()).toBeGreaterThan(0) // it did reach the server

      const load = await bounded(() => call(cache, 'load', 'k'))
      expect(isError(load.error)).toBe(true)
      expect(['REDIS_TIMEOUT', 'REDIS_CONNECTION']).toContain(load.error && load.error.code)
      expect(load.results).toEqual([null, null, null, null])

      const lock = await bounded(() => call(cache, 'lock', 'k', 1000))
      expect(['REDIS_TIMEOUT', 'REDIS_CONNECTION']).toContain(lock.error && lock.error.code)

      let rejected = null
      await bounded(() => cache.keys().catch((error) => { rejected = error }))
      expect(isError(rejected)).toBe(true)
      expect(['REDIS_TIMEOUT', 'REDIS_CONNECTION']).toContain(rejected && rejected.code)

      console.log(`silent server: save failed with ${save.error && save.error.code} after ${saveMs} ms ` +
        `(load: ${load.error && load.error.code}, lock: ${lock.error && lock.error.code}, keys: ${rejected && rejected.code}); ` +
        `message: ${save.error && save.error.message}`)
    } finally {
      await cache.close()
      await server.close()
    }
  }, 15000)

  test('nothing listening: calls end with REDIS_CONNECTION', async () => {
    const port = await freePort() // nothing listens there once it is given back
    const cache = new Cache({
      ...prefixes(tag()),
      redis: { host: '127.0.0.1', port, ...TIMEOUTS },
      lockName: 'nobody'
    })
    try {
      const save = await bounded(() => call(cache, 'save', 'k', 1))
      expect(isError(save.error)).toBe(true)
      expect(save.error && save.error.code).toBe('REDIS_CONNECTION')

      const load = await bounded(() => call(cache, 'load', 'k'))
      expect(load.error && load.error.code).toBe('REDIS_CONNECTION')

      let rejected = null
      await bounded(() => cache.lock('k', 1000).catch((error) => { rejected = error }))
      expect(rejected && rejected.code).toBe('REDIS_CONNECTION')
      console.log(`nothing listening: ${save.error && save.error.code}: ${save.error && save.error.message}`)
    } finally {
      await cache.close()
    }
  }, 15000)
})
