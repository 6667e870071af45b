'use strict'

// The actionhero initializer (initializer.js) on its own: where it runs in
// actionhero 16's boot order, how each shape of actionhero's Redis config
// maps onto a store, and what start and stop do. The full boot is in
// actionhero-app.test.js.

const path = require('path')
const Redis = require('ioredis')
const fakeredis = require('fakeredis')
const { Cache } = require('..')
const initializer = require('../initializer')

const { RUN, cleanupRedis } = require('./support/stores')
const REDIS_DB = 11
const REDIS = { host: '127.0.0.1', port: 6379, db: REDIS_DB }

const core = (name) => require(path.join(path.dirname(require.resolve('actionhero')), 'initializers', name))

let serial = 0
const built = []

/** An `api` as actionhero 16 has it when our initializer loads. */
function fakeApi (redis, general = {}) {
  serial++
  return {
    id: `test-node-${serial}`,
    config: {
      redis,
      general: {
        cachePrefix: `test:${RUN}:${serial}:cache:`,
        lockPrefix: `test:${RUN}:${serial}:lock:`,
        lockDuration: 10000,
        ...general
      }
    },
    i18n: { localize: jest.fn((message) => message) },
    log: jest.fn()
  }
}

function step (fn, api) {
  return new Promise((resolve) => fn.call(initializer, api, (error) => resolve(error)))
}

async function initialize (api) {
  const error = await step(initializer.initialize, api)
  if (!error) built.push(api.cache)
  return error
}

async function withRedis (work, db = REDIS_DB) {
  const redis = new Redis({ ...REDIS, db, lazyConnect: true })
  try {
    await redis.connect()
    return await work(redis)
  } finally {
    redis.disconnect()
  }
}

afterAll(async () => {
  for (const cache of built) await cache.close()
  // Database 0 too: a config whose database is lost would have written there.
  for (const db of [REDIS_DB, 0]) await cleanupRedis(db)
})

describe('its place in actionhero 16 boot order', () => {
  test('loads after actionhero builds its own api.cache, before anything app-facing loads', () => {
    expect(initializer.loadPriority).toBeGreaterThan(core('cache.js').loadPriority)
    expect(initializer.loadPriority).toBeGreaterThan(core('redis.js').loadPriority)
    expect(initializer.loadPriority).toBeGreaterThan(core('i18n.js').loadPriority)
    expect(initializer.loadPriority).toBeGreaterThan(core('id.js').loadPriority)
    for (const later of ['connections.js', 'actions.js', 'servers.js', 'tasks.js', 'resque.js', 'specHelper.js']) {
      expect(initializer.loadPriority).toBeLessThan(core(later).loadPriority)
    }
  })

  test('starts after the Redis connections, before servers and task workers take work', () => {
    expect(initializer.startPriority).toBeGreaterThan(core('redis.js').startPriority)
    expect(initializer.startPriority).toBeLessThan(core('servers.js').startPriority)
    expect(initializer.startPriority).toBeLessThan(core('tasks.js').startPriority)
  })

  test('stops after servers and task workers, before actionhero closes Redis', () => {
    expect(initializer.stopPriority).toBeGreaterThan(core('servers.js').stopPriority)
    expect(initializer.stopPriority).toBeGreaterThan(core('resque.js').stopPriority)
    expect(initializer.stopPriority).toBeLessThan(core('redis.js').stopPriority)
  })
})

describe('api.config.redis in each shape actionhero used', () => {
  // Where an entry saved through the app's api.cache ends up.
  async function whereDoesItLand (redis) {
    const api = fakeApi(redis)
    expect(await initialize(api)).toBeUndefined()
    await expect(api.cache.save('probe', { shape: true }, 60000)).resolves.toBe(true)
    const key = `${api.config.general.cachePrefix}probe`
    const inRedis = await withRedis((client) => client.exists(key))
    const memory = new Cache({ redis: { fake: true }, cachePrefix: api.config.general.cachePrefix })
    built.push(memory)
    const inMemory = await memory.load('probe').then(() => 1, () => 0)
    return { inRedis, inMemory }
  }

  const onRedis = { inRedis: 1, inMemory: 0 }
  const inMemory = { inRedis: 0, inMemory: 1 }

  test.each([
    ['16: ioredis with one options object', { _toExpand: false, client: { konstructor: Redis, args: [{ ...REDIS, password: null }], buildNew: true } }, onRedis],
    ['16: ioredis with (port, host, options)', { client: { konstructor: Redis, args: [6379, '127.0.0.1', { db: REDIS_DB }], buildNew: true } }, onRedis],
    ['16: ioredis with a URL', { client: { konstructor: Redis, args: [`redis://127.0.0.1:6379/${REDIS_DB}`], buildNew: true } }, onRedis],
    ['16: fakeredis', { _toExpand: false, client: { konstructor: fakeredis.createClient, args: [6379, '127.0.0.1', { fast: true }], buildNew: false } }, inMemory],
    ['13: pkg ioredis, password in options', { pkg: 'ioredis', host: '127.0.0.1', port: 6379, database: REDIS_DB, options: { password: null } }, onRedis],
    ['13: pkg fakeredis', { pkg: 'fakeredis', host: '127.0.0.1', port: 6379, database: REDIS_DB }, inMemory],
    ['12: package ioredis, port and database as env text', { package: 'ioredis', host: '127.0.0.1', port: '6379', database: String(REDIS_DB), options: {} }, onRedis],
    ['11: package fakeredis', { package: 'fakeredis' }, inMemory],
    ['fake: true', { fake: true }, inMemory]
  ])('%s', async (name, redis, expected) => {
    await expect(whereDoesItLand(redis)).resolves.toEqual(expected)
  })

  test('the Redis database given in the config is the one used', async () => {
    const shapes = [
      { client: { konstructor: Redis, args: [6379, '127.0.0.1', { db: REDIS_DB }] } },
      { client: { konstructor: Redis, args: [`redis://127.0.0.1:6379/${REDIS_DB}`] } },
      { pkg: 'ioredis', host: '127.0.0.1', port: 6379, database: REDIS_DB, options: {} }
    ]
    for (const redis of shapes) {
      const api = fakeApi(redis)
      expect(await initialize(api)).toBeUndefined()
      await api.cache.save('db', 1)
      const key = `${api.config.general.cachePrefix}db`
      await expect(withRedis((client) => client.exists(key))).resolves.toBe(1)
      // The same key is not in database 0.
      await expect(withRedis((client) => client.exists(key), 0)).resolves.toBe(0)
    }
  })

  test.each([
    ['12: options.password', { package: 'ioredis', host: '127.0.0.1', port: 6379, database: REDIS_DB, options: { password: 'not-the-password' } }],
    ['13: options.password', { pkg: 'ioredis', host: '127.0.0.1', port: 6379, options: { password: 'not-the-password' } }],
    ['16: password after port and host', { client: { konstructor: Redis, args: [6379, '127.0.0.1', { password: 'not-the-password' }] } }]
  ])('%s reaches Redis (which has no password, so it refuses)', async (name, redis) => {
    const api = fakeApi(redis)
    expect(await initialize(api)).toBeUndefined()
    await expect(api.cache.save('auth', 1)).rejects.toThrow(/AUTH|password|auth/i)
  })

  test.each([
    ['a Unix socket path', { client: { konstructor: Redis, args: ['/tmp/redis.sock'] } }],
    ['a NAT map', { client: { konstructor: Redis.Cluster, args: [[{ host: '127.0.0.1', port: 7000 }], { natMap: { a: 'b' } }] } }]
  ])('%s fails the boot with a clear error rather than using another server', async (name, redis) => {
    const api = fakeApi(redis)
    const error = await initialize(api)
    expect(error).toBeInstanceOf(Error)
    expect(error.message).toMatch(/^actionhero-native-cache: .*not supported/)
    expect(api.cache).toBeUndefined()
  })
})

describe('ioredis options in actionhero 16\'s client config', () => {
  test('actionhero 16\'s own Redis config (options with a retryStrategy) boots on Redis', async () => {
    const retryStrategy = (times) => Math.min(times * 50, 1000)
    const api = fakeApi({ _toExpand: false, client: { konstructor: Redis, args: [{ ...REDIS, password: null, retryStrategy }], buildNew: true } })
    expect(await initialize(api)).toBeUndefined()
    await expect(step(initializer.start, api)).resolves.toBeUndefined()
    await api.cache.save('retry', 1)
    await expect(withRedis((client) => client.exists(`${api.config.general.cachePrefix}retry`))).resolves.toBe(1)
  })

  test('keyPrefix: entries and locks land under keyPrefix + prefix, as ioredis puts them', async () => {
    const keyPrefix = `test:${RUN}:app:`
    const api = fakeApi({ client: { konstructor: Redis, args: [{ ...REDIS, keyPrefix }], buildNew: true } })
    expect(await initialize(api)).toBeUndefined()
    await api.cache.save('prefixed', 1)
    await api.cache.lock('prefixed', 10000)
    const { cachePrefix, lockPrefix } = api.config.general
    expect(api.cache.redisPrefix).toBe(cachePrefix) // as actionhero's: the config's prefix
    await expect(withRedis((client) => client.exists(`${keyPrefix}${cachePrefix}prefixed`, `${keyPrefix}${lockPrefix}prefixed`))).resolves.toBe(2)
    await expect(withRedis((client) => client.exists(`${cachePrefix}prefixed`, `${lockPrefix}prefixed`))).resolves.toBe(0)
  })

  test.each([
    ['readOnly', { readOnly: true }, /options\.redis\.readOnly: /],
    ['a TLS certificate authority', { tls: { ca: 'PEM' } }, /options\.redis\.tls: /],
    ['a misspelt option', { dB: 3 }, /"dB" is not an ioredis option/]
  ])('%s fails the boot with a clear error', async (name, option, message) => {
    const api = fakeApi({ client: { konstructor: Redis, args: [{ ...REDIS, ...option }], buildNew: true } })
    const error = await initialize(api)
    expect(error).toBeInstanceOf(TypeError)
    expect(error.message).toMatch(/^actionhero-native-cache: /)
    expect(error.message).toMatch(message)
    expect(api.cache).toBeUndefined()
  })
})

describe('the rest of the app config', () => {
  test('prefixes, lock duration and lock name come from api.config.general and api.id', async () => {
    const api = fakeApi({ fake: true }, { lockDuration: '2500', lockRetry: 25 })
    expect(await initialize(api)).toBeUndefined()
    expect(api.cache).toBeInstanceOf(Cache)
    expect(api.cache.redisPrefix).toBe(api.config.general.cachePrefix)
    expect(api.cache.lockPrefix).toBe(api.config.general.lockPrefix)
    expect(api.cache.lockDuration).toBe(2500)
    expect(api.cache.lockRetry).toBe(25)
    expect(api.cache.lockName).toBe(api.id)
    await api.cache.lock('mine')
    await expect(api.cache.locks()).resolves.toEqual([`${api.config.general.lockPrefix}mine`])
  })

  test('without lockRetry in the config, locks are polled every 100 ms as actionhero did', async () => {
    const api = fakeApi({ fake: true })
    expect(await initialize(api)).toBeUndefined()
    expect(api.cache.lockRetry).toBe(100)
  })

  test('actionhero\'s own messages go through api.i18n.localize', async () => {
    const api = fakeApi({ fake: true })
    api.i18n.localize.mockImplementation((message) => `<${message}>`)
    expect(await initialize(api)).toBeUndefined()
    await expect(api.cache.load('missing')).rejects.toThrow('<Object not found>')
    expect(api.i18n.localize).toHaveBeenCalledWith('Object not found')
  })

  test('other messages reach the app as they are', async () => {
    const api = fakeApi({ fake: true })
    api.i18n.localize.mockImplementation((message) => `<${message}>`)
    expect(await initialize(api)).toBeUndefined()
    await api.cache.close()
    await expect(api.cache.size()).rejects.toMatchObject({ code: 'CACHE_CLOSED', message: 'Cache is closed' })
    expect(api.i18n.localize).not.toHaveBeenCalled()
  })

  test('a message i18n has no text for stays as it was', async () => {
    const api = fakeApi({ fake: true })
    // i18n without a catalog for the locale (no locale file, updateFiles off).
    api.i18n.localize.mockImplementation(() => undefined)
    expect(await initialize(api)).toBeUndefined()
    await expect(api.cache.load('missing')).rejects.toThrow('Object not found')
    expect(api.i18n.localize).toHaveBeenCalled()
  })

  test('an app without i18n gets the messages untranslated', async () => {
    const api = fakeApi({ fake: true })
    delete api.i18n
    expect(await initialize(api)).toBeUndefined()
    await expect(api.cache.load('missing')).rejects.toThrow('Object not found')
  })
})

describe('start and stop', () => {
  test('start answers without error when the store answers', async () => {
    const api = fakeApi({ client: { konstructor: Redis, args: [{ ...REDIS }] } })
    expect(await initialize(api)).toBeUndefined()
    await expect(step(initializer.start, api)).resolves.toBeUndefined()
  })

  test('start fails the boot when Redis does not answer', async () => {
    // Port 1 on localhost: nothing listens there, so the connection is refused.
    const api = fakeApi({ client: { konstructor: Redis, args: [{ host: '127.0.0.1', port: 1 }] } })
    expect(await initialize(api)).toBeUndefined()
    const error = await step(initializer.start, api)
    expect(error).toHaveProperty('message')
    expect(error.message).toMatch(/^actionhero-native-cache: the cache store did not answer: /)
  })

  test('stop closes the cache and lets actionhero go on', async () => {
    const api = fakeApi({ client: { konstructor: Redis, args: [{ ...REDIS }] } })
    expect(await initialize(api)).toBeUndefined()
    await api.cache.save('before-stop', 1)
    await expect(step(initializer.stop, api)).resolves.toBeUndefined()
    await expect(api.cache.load('before-stop')).rejects.toMatchObject({ code: 'CACHE_CLOSED' })
    expect(api.log).not.toHaveBeenCalled()
  })

  test('stop leaves a cache it did not build alone', async () => {
    const api = fakeApi({ fake: true })
    const close = jest.fn((next) => next())
    api.cache = { close }
    await expect(step(initializer.stop, api)).resolves.toBeUndefined()
    expect(close).not.toHaveBeenCalled()
  })
})

describe('on the in-memory store, api.redis.clients.client answers TTLs of cache and lock keys', () => {
  // actionhero 16's default config: fakeredis for every client.
  const FAKEREDIS = { _toExpand: false, client: { konstructor: fakeredis.createClient, args: [6379, '127.0.0.1', { fast: true }], buildNew: false } }

  /** An api whose redis initializer has built a fakeredis client of its own, then ours ran. */
  async function bootOnFakeredis () {
    const api = fakeApi(FAKEREDIS)
    // A host name of its own: fakeredis clients of one host share their data.
    const client = fakeredis.createClient(6379, `test-${RUN}-${serial}`, { fast: true })
    api.redis = { clients: { client } }
    expect(await initialize(api)).toBeUndefined()
    return { api, client, cacheKey: (key) => api.cache.redisPrefix + key, lockKey: (key) => api.cache.lockPrefix + key }
  }

  /** client[command](key) in callback form: answers [error, result]. */
  function ask (client, command, ...args) {
    return new Promise((resolve) => client[command](...args, (error, result) => resolve([error, result])))
  }

  test('a lock\'s lifetime, as actionhero\'s suite reads it after lock(key, null)', async () => {
    const { api, client, lockKey } = await bootOnFakeredis()
    await expect(api.cache.lock('held', null)).resolves.toBe(true)
    const [error, ttl] = await ask(client, 'ttl', lockKey('held'))
    expect(error).toBeNull()
    // lockDuration is 10000 ms; Redis rounds the remaining ms to whole seconds.
    expect(ttl).toBeGreaterThanOrEqual(9)
    expect(ttl).toBeLessThanOrEqual(10)
    const [pttlError, ms] = await ask(client, 'pttl', lockKey('held'))
    expect(pttlError).toBeNull()
    expect(ms).toBeGreaterThan(0)
    expect(ms).toBeLessThanOrEqual(10000)
  })

  test('entries: with a lifetime, without one (-1) and missing (-2); Promise form too', async () => {
    const { api, client, cacheKey } = await bootOnFakeredis()
    await api.cache.save('lives', 1, 60000)
    await api.cache.save('forever', 1)
    const [, ttl] = await ask(client, 'ttl', cacheKey('lives'))
    expect(ttl).toBeGreaterThanOrEqual(59)
    expect(ttl).toBeLessThanOrEqual(60)
    await expect(client.pttl(cacheKey('lives'))).resolves.toBeGreaterThan(50000)
    await expect(ask(client, 'ttl', cacheKey('forever'))).resolves.toEqual([null, -1])
    await expect(client.ttl(cacheKey('forever'))).resolves.toBe(-1)
    await expect(ask(client, 'pttl', cacheKey('missing'))).resolves.toEqual([null, -2])
    await expect(client.pttl(cacheKey('missing'))).resolves.toBe(-2)
  })

  test('keys under the prefixes come from the native store even when fakeredis has them', async () => {
    const { client, cacheKey } = await bootOnFakeredis()
    await ask(client, 'set', cacheKey('only-in-fakeredis'), 'x')
    await ask(client, 'expire', cacheKey('only-in-fakeredis'), 30)
    await expect(ask(client, 'ttl', cacheKey('only-in-fakeredis'))).resolves.toEqual([null, -2])
  })

  test('every other key still goes to fakeredis', async () => {
    const { client } = await bootOnFakeredis()
    const other = `test:${RUN}:not-the-cache`
    await ask(client, 'set', other, 'x')
    await ask(client, 'expire', other, 30)
    await expect(ask(client, 'ttl', other)).resolves.toEqual([null, 30])
    const [error, ms] = await ask(client, 'pttl', other)
    expect(error).toBeNull()
    expect(ms).toBeGreaterThan(25000)
    expect(ms).toBeLessThanOrEqual(30000)
    // fakeredis's own answer for a missing key (-1, as Redis before 2.8), not the cache's -2.
    await expect(ask(client, 'ttl', `test:${RUN}:missing`)).resolves.toEqual([null, -1])
  })

  test('a prefix set at run time is the one that counts', async () => {
    const { api, client } = await bootOnFakeredis()
    api.cache.lockPrefix = `test:${RUN}:moved-lock:`
    await api.cache.lock('moved', 5000)
    const [, ttl] = await ask(client, 'ttl', `test:${RUN}:moved-lock:moved`)
    expect(ttl).toBeGreaterThanOrEqual(4)
    expect(ttl).toBeLessThanOrEqual(5)
  })

  test('TTL is Redis\'s rounding of PTTL: half a second up, -1 and -2 as they are', () => {
    const cases = [[0, 0], [499, 0], [500, 1], [1499, 1], [1500, 2], [9999, 10], [-1, -1], [-2, -2]]
    expect(cases.map(([ms]) => initializer.ttlFromPttl(ms))).toEqual(cases.map(([, seconds]) => seconds))
  })

  test('on Redis, actionhero\'s client is left as it is', async () => {
    const api = fakeApi({ client: { konstructor: Redis, args: [{ ...REDIS }] } })
    const client = { ttl () {}, pttl () {} }
    const { ttl, pttl } = client
    api.redis = { clients: { client } }
    expect(await initialize(api)).toBeUndefined()
    expect(client.ttl).toBe(ttl)
    expect(client.pttl).toBe(pttl)
  })
})
