'use strict'

// README claims that no other suite checks. Each claim of "Where it differs
// from actionhero 16's JS cache" has a test that fails if it is false:
//   (a) atomic check-then-write: contention.test.js, cache-locks.test.js (many concurrent lock() calls)
//   (b) retry gives up; Object Locked at once without it: cache-locks.test.js
//   (c) lock(key, next): cache-locks.test.js, and its lifetime here (pttl)
//   (d) VALUE_NOT_SERIALIZABLE: cache-errors.test.js (values JSON cannot carry)
//   (e) dumpRead checks the file first: cache-lists-dump.test.js (a bad dump file …)
//   (f) a plain load ends the lifetime at expireTimestamp: here, and cache-expiry.test.js
//   (g) SCAN, never KEYS: here
//   (h) a Redis that does not answer: redis-connection.test.js, redis-restart.test.js
//   (i) OBJECT_CORRUPT, left as it was: cache-errors.test.js (corrupt entries)
//   (j) own connection; in fake mode the native store, not fakeredis: here
//   (k) Promise forms: cache-save-load.test.js, cache-errors.test.js (every method returns a Promise)
// And from the API section: dumpWrite with a list, writable prefixes, pttl,
// the lazy connection; callbacks in their caller's async context:
// async-context.test.js; calls under jest's fake timers, and envelope times
// from its fake Date: fake-timers.test.js.

const fs = require('fs')
const Redis = require('ioredis')
const fakeredis = require('fakeredis')

const { Cache } = require('..')
const initializer = require('../initializer')
const { viaCallback, expectCacheError, expectLoadError, rejectionOf, harness, sleepUntil, tempFiles, expectLoadEndsLifetime, sleep } = require('./support/harness')
const { stores, prefixes, cleanupRedis, REDIS } = require('./support/stores')
const { startRedis, silentServer } = require('./support/redis-server')

afterAll(() => cleanupRedis())

const tmpFile = tempFiles('readme-claims')

describe.each(stores)('README claims on the $name store', (store) => {
  const { tag, make } = harness(store, 'claims')

  test('dumpWrite fails with WRONGTYPE when a list lives under the cache prefix, as actionhero 16 does', async () => {
    const cache = make(tag())
    await cache.save('entry', 1)
    await cache.push('list', 'item')
    const file = tmpFile('wrongtype')
    const [error] = await viaCallback((done) => cache.dumpWrite(file, done))
    expectCacheError(error, undefined, 'WRONGTYPE')
    expectCacheError(await rejectionOf(cache.dumpWrite(file)), undefined, 'WRONGTYPE')
    expect(fs.existsSync(file)).toBe(false)
    // Without the list it dumps again.
    await cache.pop('list')
    await expect(cache.dumpWrite(file)).resolves.toBe(1)
  })

  test('redisPrefix (alias cachePrefix) and lockPrefix are writable, in force from the next call', async () => {
    const shared = tag()
    const cache = make(shared, { lockName: 'me' })
    const other = make(shared, { lockName: 'other' })
    const { cachePrefix, lockPrefix } = cache
    await cache.save('a', 'first prefix')

    cache.redisPrefix = `${cachePrefix}moved:`
    expect(cache.cachePrefix).toBe(`${cachePrefix}moved:`)
    await expectLoadError(cache, 'a', 'Object not found', 'OBJECT_NOT_FOUND')
    await cache.save('b', 'second prefix')
    expect(await cache.keys()).toEqual([`${cachePrefix}moved:b`])
    expectCacheError(await rejectionOf(other.load('b')), 'Object not found', 'OBJECT_NOT_FOUND')

    cache.cachePrefix = cachePrefix
    expect(cache.redisPrefix).toBe(cachePrefix)
    expect((await cache.load('a')).value).toBe('first prefix')

    // Not under the old prefix, so the old prefix's SCAN cannot match it.
    const movedLockPrefix = lockPrefix.replace(/:$/, '-moved:')
    cache.lockPrefix = movedLockPrefix
    await expect(cache.lock('k')).resolves.toBe(true)
    expect(await cache.locks()).toEqual([`${movedLockPrefix}k`])
    // A cache on the old lock prefix does not see that lock.
    await expect(other.checkLock('k')).resolves.toBe(true)
    expect(await other.locks()).toEqual([])
  })

  test('pttl answers a full key\'s remaining lifetime in ms as Redis PTTL: -2 missing, -1 no expiry', async () => {
    const cache = make(tag(), { lockDuration: 3000 })
    expect(await viaCallback((done) => cache.pttl(cache.cachePrefix + 'missing', done))).toEqual([null, -2])
    await expect(cache.pttl(cache.cachePrefix + 'missing')).resolves.toBe(-2)

    await cache.save('forever', 1)
    await expect(cache.pttl(cache.cachePrefix + 'forever')).resolves.toBe(-1)
    await cache.push('list', 1)
    await expect(cache.pttl(cache.cachePrefix + 'list')).resolves.toBe(-1)

    await cache.save('expiring', 1, 4500)
    const [error, ms] = await viaCallback((done) => cache.pttl(cache.cachePrefix + 'expiring', done))
    expect(error).toBeNull()
    expect(ms).toBeGreaterThan(4000)
    expect(ms).toBeLessThanOrEqual(5000)
    // A plain load moves the end to expireTimestamp exactly (not ceil(4500 / 1000) s after the save).
    await expectLoadEndsLifetime(cache, 'expiring', () => cache.pttl(cache.cachePrefix + 'expiring'))

    // lock(key, next) takes lockDuration (actionhero 16 throws on this form).
    expect(await viaCallback((done) => cache.lock('k', done))).toEqual([null, true])
    const lockMs = await cache.pttl(cache.lockPrefix + 'k')
    expect(lockMs).toBeGreaterThan(2000)
    expect(lockMs).toBeLessThanOrEqual(3000)
  })

  // actionhero 16 re-sets the lifetime to floor(remaining seconds): 0 here,
  // which deletes the entry as it is read; keeping the TTL instead would
  // leave it answering Object Expired after its expireTimestamp.
  test('a plain load ends the lifetime exactly at expireTimestamp, even in the entry\'s last second', async () => {
    const cache = make(tag())
    const savedAt = Date.now()
    await cache.save('k', 'v', 1500)
    await sleepUntil(savedAt, 700)
    const first = await cache.load('k')
    expect(first.value).toBe('v')
    // Read in its last second, it is still there for the next read.
    expect((await cache.load('k')).value).toBe('v')

    await sleepUntil(first.expireTimestamp, 400)
    await expectLoadError(cache, 'k', 'Object not found', 'OBJECT_NOT_FOUND')
  })
})

describe('the Redis connection', () => {
  test('is made lazily: the constructor sends nothing, the first call connects', async () => {
    const server = await silentServer()
    const timeouts = { connectTimeoutMS: 300, commandTimeoutMS: 300 }
    const cache = new Cache({ ...prefixes('claims-lazy'), redis: { host: '127.0.0.1', port: server.port, ...timeouts } })
    try {
      await sleep(200)
      expect(server.accepted()).toBe(0)
      const error = await cache.save('k', 1).then(() => null, (e) => e)
      expect(server.accepted()).toBeGreaterThan(0)
      expectCacheError(error)
      expect(['REDIS_TIMEOUT', 'REDIS_CONNECTION']).toContain(error.code)
    } finally {
      await cache.close()
      await server.close()
    }
  })

  test('keys, locks, size, clear and dumpWrite use SCAN, never KEYS', async () => {
    const server = await startRedis()
    const raw = new Redis({ port: server.port, lazyConnect: true })
    const cache = new Cache({ redis: { host: '127.0.0.1', port: server.port }, lockName: 'scan' })
    try {
      await raw.connect()
      for (let i = 0; i < 20; i++) await cache.save(`k${i}`, i)
      await cache.lock('held')
      await raw.config('RESETSTAT')
      expect(await cache.keys()).toHaveLength(20)
      expect(await cache.locks()).toEqual(['actionhero:lock:held'])
      expect(await cache.size()).toBe(20)
      expect(await cache.dumpWrite(tmpFile('scan'))).toBe(20)
      await cache.clear()
      expect(await cache.size()).toBe(0)
      const stats = await raw.info('commandstats')
      expect(stats).not.toMatch(/^cmdstat_keys:/m)
      expect(Number(/^cmdstat_scan:calls=(\d+)/m.exec(stats)[1])).toBeGreaterThanOrEqual(6)
    } finally {
      await cache.close()
      raw.disconnect()
      await server.stop()
    }
  })
})

describe('beside actionhero\'s own Redis clients (the initializer)', () => {
  let apps = 0
  /** An `api` as actionhero 16 has it when the initializer loads, with its Redis client. */
  function appApi (redisConfig, client) {
    const name = `claims-app-${++apps}`
    return {
      id: name,
      config: { redis: redisConfig, general: { ...prefixes(name), lockDuration: 10000 } },
      redis: { clients: { client } },
      i18n: { localize: (message) => message },
      log () {}
    }
  }

  const initialize = (api) => new Promise((resolve, reject) =>
    initializer.initialize(api, (error) => (error ? reject(error) : resolve(api.cache))))
  const ask = (client, command, ...args) => new Promise((resolve, reject) =>
    client[command](...args, (error, answer) => (error ? reject(error) : resolve(answer))))

  test('on Redis, the cache has its own connection: actionhero\'s client is never touched', async () => {
    const touched = []
    const client = new Proxy({}, { get: (_, name) => { touched.push(String(name)); return undefined } })
    const api = appApi({ client: { konstructor: Redis, args: [{ ...REDIS }] } }, client)
    const cache = await initialize(api)
    try {
      await cache.save('k', 'v', 60000)
      expect((await cache.load('k')).value).toBe('v')
      expect(touched).toEqual([])
    } finally {
      await cache.close()
    }
  })

  test('in fake mode entries live in the native store, and fakeredis\'s ttl/pttl of cache and lock keys answer from it', async () => {
    const client = fakeredis.createClient(6379, '127.0.0.1', { fast: true })
    const api = appApi({ client: { konstructor: fakeredis.createClient, args: [6379, '127.0.0.1', { fast: true }] } }, client)
    const cache = await initialize(api)
    const { cachePrefix, lockPrefix } = api.config.general
    try {
      await cache.save('k', 'v', 5000)
      await cache.lock('held', 10000)
      expect(await ask(client, 'get', cachePrefix + 'k')).toBeNull()
      const ms = await ask(client, 'pttl', cachePrefix + 'k')
      expect(ms).toBeGreaterThan(4000)
      expect(ms).toBeLessThanOrEqual(5000)
      // actionhero 16's own test reads a lock's TTL this way.
      const ttl = await ask(client, 'ttl', lockPrefix + 'held')
      expect(ttl).toBeGreaterThanOrEqual(9)
      expect(ttl).toBeLessThanOrEqual(10)
      // Other keys are fakeredis's own.
      await ask(client, 'set', 'claims-other', 'x')
      await ask(client, 'expire', 'claims-other', 100)
      expect(await ask(client, 'ttl', 'claims-other')).toBe(100)
      await expect(ask(client, 'pttl', cachePrefix + 'missing')).resolves.toBe(-2)
    } finally {
      await cache.close()
      await ask(client, 'del', 'claims-other')
    }
  })
})
