'use strict'

// Every shape of `redis` option actionhero apps use reaches the right Redis
// server and database, fakeredis shapes stay in memory, and a Redis that
// does not answer (or is not there) ends a call with an error instead of
// leaving it hanging.

const { types } = require('util')
const Redis = require('ioredis')

const { Cache } = require('..')
const { prefixes, cleanupRedis, REDIS, RUN } = require('./support/stores')
const { createActionheroCache } = require('./support/actionhero-js-cache')
const { silentServer, freePort, startRedis, ioredisAnswers } = require('./support/redis-server')
const { failsWithin } = require('./support/harness')

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
  const FAILS_WITHIN = failsWithin(TIMEOUTS)

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

describe('ioredis constructor arguments, read as ioredis reads them', () => {
  const DBS = [0, OTHER_DB, 11]
  const URL_BASE = `redis://${HOST}:${PORT}`
  let raw

  beforeAll(async () => {
    raw = new Redis({ host: HOST, port: PORT, lazyConnect: true })
    await raw.connect()
  })

  afterAll(async () => {
    for (const db of DBS) await cleanupRedis(db)
    raw.disconnect()
  })

  /** The databases (of 0, 5 and 11) that hold `key`. */
  async function databasesHolding (key) {
    const found = []
    for (const db of DBS) {
      await raw.select(db)
      if (await raw.exists(key)) found.push(db)
    }
    return found
  }

  /** Where ioredis itself, given `args`, writes a key. */
  async function whereIoredisWrites (args) {
    const key = `test:${RUN}:${tag()}:ioredis`
    const client = new Redis(...args)
    try {
      await client.set(key, 'ioredis')
    } finally {
      await client.quit()
    }
    return databasesHolding(key)
  }

  /** Where the cache, given `args` as actionhero 16's client config, writes an entry. */
  async function whereTheCacheWrites (args) {
    const keys = prefixes(tag())
    const cache = new Cache({ ...keys, redis: { client: { konstructor: Redis, args } }, lockName: 'args-test' })
    try {
      expect(await call(cache, 'save', 'k', 'cache')).toEqual({ error: null, results: [true] })
    } finally {
      await cache.close()
    }
    return databasesHolding(`${keys.cachePrefix}k`)
  }

  test.each([
    ['a URL, then options: the URL\'s database', [`${URL_BASE}/11`, { db: OTHER_DB }], [11]],
    ['options, then a URL: the options\' database', [{ db: OTHER_DB }, `${URL_BASE}/11`], [OTHER_DB]],
    ['port, host, options', [PORT, HOST, { db: 11 }], [11]],
    ['port and host as text', [String(PORT), HOST, { db: OTHER_DB }], [OTHER_DB]],
    ['a URL\'s path wins over its ?db=', [`${URL_BASE}/${OTHER_DB}?db=11`], [OTHER_DB]],
    ['?db= alone', [`${URL_BASE}?db=11`], [11]],
    ['a number sets the port even after options that name one', [{ port: 1, host: HOST, db: 11 }, PORT], [11]],
    ['db: null given first is kept, so no database is selected', [{ db: null }, `${URL_BASE}/11`], [0]],
    ['an undefined db is filled in by what follows', [{ db: undefined, host: HOST }, { db: OTHER_DB }], [OTHER_DB]],
    ['host and port in a URL without redis://', [`${HOST}:${PORT}?db=11`], [11]]
  ])('%s', async (_, args, expected) => {
    const ioredis = await whereIoredisWrites(args)
    expect(ioredis).toEqual(expected) // the case says what ioredis does
    expect(await whereTheCacheWrites(args)).toEqual(ioredis)
  })

  test('ioredis reads three arguments; a fourth is not read', async () => {
    const args = [PORT, HOST, { db: 11 }, { db: OTHER_DB, path: '/never/read' }]
    expect(await whereIoredisWrites(args)).toEqual([11])
    expect(await whereTheCacheWrites(args)).toEqual([11])
  })

  test('ioredis\'s own defaults, spelled out, are all accepted', async () => {
    const { DEFAULT_REDIS_OPTIONS } = require('ioredis/built/redis/RedisOptions')
    const keys = prefixes(tag())
    const defaults = { ...DEFAULT_REDIS_OPTIONS, host: HOST, db: OTHER_DB }
    const cache = new Cache({ ...keys, redis: { client: { konstructor: Redis, args: [defaults] } }, lockName: 'defaults' })
    try {
      expect(await call(cache, 'save', 'k', 1)).toEqual({ error: null, results: [true] })
    } finally {
      await cache.close()
    }
    expect(await databasesHolding(`${keys.cachePrefix}k`)).toEqual([OTHER_DB])
  })

  test('options that change only how ioredis connects or retries are accepted', async () => {
    const harmless = {
      family: 4,
      keepAlive: 1000,
      noDelay: false,
      connectionName: 'cache',
      disableClientInfo: true,
      clientInfoTag: 'tag',
      retryStrategy: () => 100,
      reconnectOnError: () => false,
      maxRetriesPerRequest: null,
      maxLoadingRetryTime: 100,
      enableOfflineQueue: false,
      offlineQueue: false,
      commandQueue: true,
      enableReadyCheck: false,
      lazyConnect: true,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      showFriendlyErrorStack: true,
      enableAutoPipelining: true,
      autoPipeliningIgnoredCommands: ['get'],
      scripts: { hello: { lua: 'return 1', numberOfKeys: 0 } },
      socketTimeout: 5000,
      disconnectTimeout: 100,
      blockingTimeout: 100,
      blockingTimeoutGrace: 10,
      name: 'mymaster', // Sentinel's master name: ioredis ignores it without `sentinels`
      role: 'master'
    }
    const keys = prefixes(tag())
    const cache = new Cache({ ...keys, redis: { client: { konstructor: Redis, args: [HOST, { ...harmless, port: PORT, db: 11 }] } }, lockName: 'harmless' })
    try {
      expect(await call(cache, 'save', 'k', 'kept')).toEqual({ error: null, results: [true] })
      expect((await call(cache, 'load', 'k')).results[0]).toBe('kept')
    } finally {
      await cache.close()
    }
    expect(await databasesHolding(`${keys.cachePrefix}k`)).toEqual([11])
  })

  test('ioredis\'s connectTimeout and commandTimeout become connectTimeoutMS and commandTimeoutMS, which win when given', () => {
    const { storeOptions } = require('../lib/store-options')
    const client = (options) => ({ client: { konstructor: Redis, args: [options] } })
    expect(storeOptions(client({ connectTimeout: 300, commandTimeout: '400' }))).toMatchObject({ connectTimeoutMs: 300, commandTimeoutMs: 400 })
    expect(storeOptions({ ...client({ connectTimeout: 300, commandTimeout: 400 }), connectTimeoutMS: 700 }))
      .toMatchObject({ connectTimeoutMs: 700, commandTimeoutMs: 400 })
    expect(storeOptions({ host: HOST, connectTimeout: 300, commandTimeoutMS: 500 })).toMatchObject({ connectTimeoutMs: 300, commandTimeoutMs: 500 })
    expect(storeOptions(client(`${URL_BASE}/?connectTimeout=250`))).toMatchObject({ connectTimeoutMs: 250 })
  })

  test('Redis Cluster and Sentinel configs are read as ioredis reads them', () => {
    const { storeOptions } = require('../lib/store-options')
    const cluster = { konstructor: Redis.Cluster, args: [[{ host: HOST, port: 7000 }, 7001, 'redis://h:7002'], { redisOptions: { password: 'pw', keyPrefix: 'node:' }, keyPrefix: 'c:' }] }
    expect(storeOptions({ client: cluster })).toMatchObject({
      cluster: [{ host: HOST, port: 7000 }, { host: '127.0.0.1', port: 7001 }, { host: 'h', port: 7002 }], password: 'pw', keyPrefix: 'c:', db: 0
    })
    expect(storeOptions({ cluster: [7000], username: 'u', password: 'p', commandTimeoutMS: 300 }))
      .toMatchObject({ cluster: [{ host: '127.0.0.1', port: 7000 }], username: 'u', password: 'p', commandTimeoutMs: 300 })
    expect(storeOptions({ sentinels: [{ host: HOST }], name: 'm', sentinelPassword: 's', password: 'p', db: 3 }))
      .toMatchObject({ sentinels: [{ host: HOST, port: 26379 }], sentinelName: 'm', sentinelPassword: 's', password: 'p', db: 3 })
    const clusterWith = (options) => ({ client: { konstructor: Redis.Cluster, args: [[7000], options] } })
    for (const refused of [{ cluster: [7000], db: 1 }, { cluster: [] }, clusterWith({ scaleReads: 'slave' }), clusterWith({ typo: 1 }), clusterWith({ natMap: {} })]) {
      expect(() => storeOptions(refused)).toThrow(TypeError)
    }
  })

  describe('what the cache cannot honour is refused with a TypeError', () => {
    const refused = [
      ['a Unix socket path', [{ path: '/tmp/redis.sock' }], /not supported/],
      ['a Unix socket as a string', ['/tmp/redis.sock?db=1'], /not supported/],
      ['a path after host:port without redis:// (a socket path to ioredis)', [`${HOST}:${PORT}/5`], /not supported/],
      ['Sentinel without the master\'s name', [{ sentinels: [{ host: HOST, port: 26379 }] }], /name/],
      ['Sentinel for a replica', [{ sentinels: [{ host: HOST, port: 26379 }], name: 'mymaster', role: 'slave' }], /role/],
      ['TLS to the Sentinels', [{ sentinels: [{ host: HOST, port: 26379 }], name: 'mymaster', sentinelTLS: {} }], /sentinelTLS/],
      ['natMap', [{ natMap: { '10.0.0.1:6379': { host: HOST, port: PORT } } }], /not supported/],
      ['Redis Cluster startup nodes as a Redis argument', [[{ host: HOST, port: 7000 }]], /Redis.Cluster/],
      ['a custom Connector', [{ Connector: function Connector () {} }], /Connector/],
      ['readOnly', [{ readOnly: true }], /readOnly/],
      ['stringNumbers', [{ stringNumbers: true }], /stringNumbers/],
      ['monitor', [{ monitor: true }], /MONITOR/],
      ['an option ioredis does not have', [{ host: HOST, hots: 'typo' }], /"hots" is not an ioredis option/],
      ['url inside ioredis options (ioredis has no such option)', [{ url: `${URL_BASE}/5` }], /"url" is not an ioredis option/],
      ['an unknown option in a URL\'s query', [`${URL_BASE}/5?timeout=5`], /"timeout" is not an ioredis option/],
      ['a TLS certificate authority', [{ tls: { ca: 'PEM' } }], /tls/],
      ['a TLS profile name', [{ tls: 'RedisCloudFixed' }], /tls/],
      ['rejectUnauthorized that is not a boolean', [{ tls: { rejectUnauthorized: 'no' } }], /rejectUnauthorized/],
      ['a URL fragment other than #insecure', [`rediss://${HOST}:${PORT}/5#verify`], /#insecure/],
      ['a Buffer keyPrefix', [{ keyPrefix: Buffer.from('k:') }], /keyPrefix/],
      ['connectTimeout 0 (ioredis: no connect timeout at all)', [{ connectTimeout: 0 }], /connectTimeout/],
      ['a negative commandTimeout', [{ commandTimeout: -1 }], /commandTimeout/],
      ['a port out of range', [{ port: 70000 }], /port/],
      ['a database that is not a whole number', [{ db: 'five' }], /db/],
      ['an argument ioredis refuses', [true], /invalid ioredis argument/]
    ]

    test.each(refused)('%s', (_, args, message) => {
      const build = () => new Cache({ ...prefixes(tag()), redis: { client: { konstructor: Redis, args } } })
      expect(build).toThrow(TypeError)
      expect(build).toThrow(message)
    })

    test.each([
      ['connectTimeoutMS beyond setTimeout\'s range', { connectTimeoutMS: 1e30 }],
      ['commandTimeoutMS that is not a number', { commandTimeoutMS: 'soon' }],
      ['an unknown key beside host and port', { host: HOST, port: PORT, hots: 'typo' }],
      ['tls with a client certificate', { host: HOST, tls: { cert: 'PEM', key: 'PEM' } }]
    ])('plain options: %s', (_, redis) => {
      expect(() => new Cache({ ...prefixes(tag()), redis })).toThrow(TypeError)
    })

    test('refused options set to what ioredis does by default are accepted', async () => {
      const keys = prefixes(tag())
      const unset = { path: null, sentinels: null, natMap: null, Connector: undefined, readOnly: false, stringNumbers: false, monitor: false }
      const cache = new Cache({ ...keys, redis: { client: { konstructor: Redis, args: [{ ...unset, host: HOST, port: PORT, db: 11 }] } } })
      try {
        expect(await call(cache, 'save', 'k', 1)).toEqual({ error: null, results: [true] })
      } finally {
        await cache.close()
      }
    })
  })
})

describe('keyPrefix, as ioredis applies it, beside actionhero 16\'s JS cache', () => {
  const DB = 11
  const KEY_PREFIX = `test:${RUN}:key-prefix:`
  const keys = { cachePrefix: `test:${RUN}:kp-cache:`, lockPrefix: `test:${RUN}:kp-lock:` }
  const ioredisOptions = { host: HOST, port: PORT, db: DB, keyPrefix: KEY_PREFIX }
  let raw
  let js
  let native

  beforeAll(async () => {
    raw = new Redis({ host: HOST, port: PORT, db: DB, lazyConnect: true })
    await raw.connect()
  })

  beforeEach(async () => {
    js = await createActionheroCache({ ...keys, lockName: 'js-node', redis: ioredisOptions })
    native = new Cache({ ...keys, redis: { client: { konstructor: Redis, args: [ioredisOptions] } }, lockName: 'native-node' })
  })

  afterEach(async () => {
    await native.close()
    await js.close()
    await cleanupRedis(DB)
  })

  afterAll(() => raw.disconnect())

  const stored = async () => (await keysIn(raw, DB, `test:${RUN}:*`))

  test('both keep entries and locks under keyPrefix + prefix, and read each other\'s', async () => {
    expect((await call(native, 'save', 'from-native', { n: 1 }, 60000)).results).toEqual([true])
    expect((await call(js.cache, 'save', 'from-js', { j: 2 }, 60000)).results).toEqual([true])
    expect((await call(js.cache, 'load', 'from-native')).results[0]).toEqual({ n: 1 })
    expect((await call(native, 'load', 'from-js')).results[0]).toEqual({ j: 2 })

    expect((await call(native, 'lock', 'from-js', 60000)).results).toEqual([true])
    expect((await call(js.cache, 'checkLock', 'from-js', null)).results).toEqual([false])
    expect((await call(js.cache, 'save', 'from-js', 'overwrite', 60000)).error).toMatchObject({ message: 'Object Locked' })

    expect(await stored()).toEqual([
      `${KEY_PREFIX}${keys.cachePrefix}from-js`,
      `${KEY_PREFIX}${keys.cachePrefix}from-native`,
      `${KEY_PREFIX}${keys.lockPrefix}from-js`
    ].sort())
  })

  /**
   * What keys, locks, size and clear see, through `cache`: ioredis puts the
   * keyPrefix before keys but not before a KEYS pattern, so these look at
   * the unprefixed names, as actionhero 16's do. An unprefixed entry is
   * planted beside the cache's own to show it.
   */
  async function enumerations (cache) {
    await raw.set(`${keys.cachePrefix}unprefixed`, 'planted')
    await raw.set(`${keys.lockPrefix}unprefixed`, 'someone')
    await call(cache, 'save', 'unprefixed', 'own')
    await call(cache, 'save', 'own', 'own')
    await call(cache, 'lock', 'own', 60000)
    const seen = {
      keys: (await call(cache, 'keys')).results[0].sort(),
      locks: (await call(cache, 'locks')).results[0].sort(),
      size: (await call(cache, 'size')).results[0]
    }
    expect((await call(cache, 'clear')).error).toBeNull()
    seen.afterClear = await stored()
    await cleanupRedis(DB)
    return seen
  }

  test('keys, locks, size and clear answer what actionhero 16\'s do', async () => {
    const fromJs = await enumerations(js.cache)
    const fromNative = await enumerations(native)
    expect(fromJs.keys).toEqual([`${keys.cachePrefix}unprefixed`]) // what actionhero 16 answers
    expect(fromNative).toEqual(fromJs)
  })
})

describe('credentials, from a URL or options, as ioredis sends them', () => {
  let server

  beforeAll(async () => {
    // The default user needs "secret"; user "app" has password "pw".
    server = await startRedis({ args: ['--requirepass', 'secret', '--user', 'app', 'on', '>pw', '~*', '&*', '+@all'] })
  })

  afterAll(async () => {
    if (server) await server.stop()
  })


  async function cacheAnswers (args) {
    const cache = new Cache({ redis: { client: { konstructor: Redis, args } }, lockName: 'auth' })
    try {
      return (await cache.checkLock('auth')) === true
    } catch (error) {
      expect(error.message).toMatch(/WRONGPASS|NOAUTH|AUTH|password/i)
      return false
    } finally {
      await cache.close()
    }
  }

  const url = (auth) => `redis://${auth}${HOST}:${server.port}/0`
  test.each([
    ['a password in the URL', () => [url(':secret@')], true],
    ['user and password in the URL', () => [url('app:pw@')], true],
    ['a wrong password for the user', () => [url('app:wrong@')], false],
    ['a user with no password sends an empty one', () => [url('app@')], false],
    ['no credentials at all', () => [url('')], false],
    ['username and password options', () => [{ host: HOST, port: server.port, username: 'app', password: 'pw' }], true],
    ['a URL without credentials, then a password option', () => [url(''), { password: 'secret' }], true],
    ['a URL\'s wrong password wins over a later option', () => [url(':wrong@'), { password: 'secret' }], false],
    ['an earlier password option wins over the URL\'s', () => [{ password: 'secret' }, url(':wrong@')], true],
    ['percent-encoded credentials are decoded', () => [`redis://a%70p:%70w@${HOST}:${server.port}`], true]
  ])('%s: as ioredis', async (_, args, answers) => {
    expect(await ioredisAnswers(args())).toBe(answers) // the case says what ioredis does
    expect(await cacheAnswers(args())).toBe(answers)
  })
})
