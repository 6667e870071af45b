'use strict'

// Expiry: the logical expireTimestamp ('Object Expired') against the physical
// lifetime of ceil(expireTimeMS / 1000) whole seconds ('Object not found'),
// which a plain load moves to end at expireTimestamp, and load's expireTimeMS
// option. Every wait keeps a wide margin from the boundary it checks.

const { viaCallback, harness, expectLoadError, expectLoadRejects, sleep, sleepUntil, redisHarness, expectLoadEndsLifetime } = require('./support/harness')
const { stores, cleanupRedis } = require('./support/stores')


afterAll(() => cleanupRedis())

describe.each(stores)('expiry on the $name store', (store) => {
  const { tag, make } = harness(store, 'expiry')

  test('saved for 100 ms: Object Expired at ~300 ms, Object not found after ~1.5 s; once read, gone at ~300 ms', async () => {
    const cache = make(tag())
    const savedAt = Date.now()
    expect(await viaCallback((done) => cache.save('short', { v: 1 }, 100, done))).toEqual([null, true])
    await cache.save('read', { v: 2 }, 100)
    // A plain load ends the entry's lifetime at its expireTimestamp.
    const fresh = await cache.load('read')
    expect(fresh.value).toEqual({ v: 2 })

    await sleepUntil(savedAt, 300)
    await expectLoadError(cache, 'short', 'Object Expired', 'OBJECT_EXPIRED')
    await expectLoadRejects(cache, 'short', 'Object Expired', 'OBJECT_EXPIRED')
    await expectLoadError(cache, 'read', 'Object not found', 'OBJECT_NOT_FOUND')

    await sleepUntil(savedAt, 1500)
    await expectLoadError(cache, 'short', 'Object not found', 'OBJECT_NOT_FOUND')
    await expectLoadRejects(cache, 'short', 'Object not found', 'OBJECT_NOT_FOUND')
  })

  test('the physical lifetime rounds up to whole seconds: 1100 ms lives 2 s', async () => {
    const cache = make(tag())
    const savedAt = Date.now()
    await cache.save('k', 'v', 1100)
    // Logically expired at 1.1 s, still present until 2 s.
    await sleepUntil(savedAt, 1550)
    await expectLoadError(cache, 'k', 'Object Expired', 'OBJECT_EXPIRED')
    await sleepUntil(savedAt, 3000)
    await expectLoadError(cache, 'k', 'Object not found', 'OBJECT_NOT_FOUND')
  })

  // ceil(ms / 1000) is 0 for -1000 < ms <= 0: no lifetime at all, as actionhero 16 sets none.
  test('an expireTimeMS in (-1000, 0) stores an entry that never loads and stays', async () => {
    const cache = make(tag())
    const savedAt = Date.now()
    expect(await viaCallback((done) => cache.save('neg', 'v', -999, done))).toEqual([null, true])
    await expect(cache.save('neg-promise', 'v', -5)).resolves.toBe(true)
    await expectLoadError(cache, 'neg', 'Object Expired', 'OBJECT_EXPIRED')
    await expectLoadRejects(cache, 'neg-promise', 'Object Expired', 'OBJECT_EXPIRED')
    await sleepUntil(savedAt, 1600)
    await expectLoadError(cache, 'neg', 'Object Expired', 'OBJECT_EXPIRED')
    await expectLoadRejects(cache, 'neg-promise', 'Object Expired', 'OBJECT_EXPIRED')
    expect([...(await cache.keys())].sort()).toEqual([cache.cachePrefix + 'neg', cache.cachePrefix + 'neg-promise'])
  })

  // ceil(ms / 1000) < 0: Redis's EXPIRE with a negative time deletes the key.
  test('an expireTimeMS of -1000 or less: save answers true and the entry is gone at once', async () => {
    const cache = make(tag())
    expect(await viaCallback((done) => cache.save('neg', 'v', -1000, done))).toEqual([null, true])
    await expect(cache.save('neg-promise', 'v', -5000)).resolves.toBe(true)
    await expectLoadError(cache, 'neg', 'Object not found', 'OBJECT_NOT_FOUND')
    await expectLoadRejects(cache, 'neg-promise', 'Object not found', 'OBJECT_NOT_FOUND')
    expect(await cache.keys()).toEqual([])
  })

  test('load with expireTimeMS moves the expiry to now + ms and the entry outlives its first expiry', async () => {
    const cache = make(tag())
    const savedAt = Date.now()
    await cache.save('callback', 'c', 1000)
    await cache.save('promise', 'p', 1000)

    const before = Date.now()
    const [error, value, expireTimestamp] = await viaCallback((done) => cache.load('callback', { expireTimeMS: 3000 }, done))
    const loaded = await cache.load('promise', { expireTimeMS: 3000 })
    const after = Date.now()
    expect(error).toBeNull()
    expect(value).toBe('c')
    expect(expireTimestamp).toBeGreaterThanOrEqual(before + 3000)
    expect(expireTimestamp).toBeLessThanOrEqual(after + 3000)
    expect(loaded.value).toBe('p')
    expect(loaded.expireTimestamp).toBeGreaterThanOrEqual(before + 3000)
    expect(loaded.expireTimestamp).toBeLessThanOrEqual(after + 3000)

    // The new expiry is stored, not just reported.
    expect((await cache.load('callback')).expireTimestamp).toBe(expireTimestamp)

    // Both the old logical expiry (1 s) and the old lifetime (1 s) are past.
    await sleepUntil(savedAt, 2000)
    const [lateError, lateValue, lateExpire] = await viaCallback((done) => cache.load('callback', done))
    expect(lateError).toBeNull()
    expect(lateValue).toBe('c')
    expect(lateExpire).toBe(expireTimestamp)
    const late = await cache.load('promise')
    expect(late.value).toBe('p')

    // And past the new expiry, both are gone.
    await sleepUntil(Math.max(expireTimestamp, late.expireTimestamp), 500)
    await expectLoadError(cache, 'callback', 'Object not found', 'OBJECT_NOT_FOUND')
    await expectLoadRejects(cache, 'promise', 'Object not found', 'OBJECT_NOT_FOUND')
  })

  // ceil(ms / 1000) <= 0: actionhero's EXPIRE with 0 or less deletes the key.
  test('load with a negative expireTimeMS answers the value, then the entry is gone', async () => {
    const cache = make(tag())
    await cache.save('callback', 'c', 60000)
    await cache.save('promise', 'p', 60000)
    const [error, value, expireTimestamp] = await viaCallback((done) => cache.load('callback', { expireTimeMS: -500 }, done))
    expect(error).toBeNull()
    expect(value).toBe('c')
    expect(expireTimestamp).toBeLessThan(Date.now())
    expect((await cache.load('promise', { expireTimeMS: -5000 })).value).toBe('p')
    await expectLoadError(cache, 'callback', 'Object not found', 'OBJECT_NOT_FOUND')
    await expectLoadRejects(cache, 'promise', 'Object not found', 'OBJECT_NOT_FOUND')
  })

  test('load with expireTimeMS leaves an entry saved without expiry without one', async () => {
    const cache = make(tag())
    await cache.save('forever', 'f')
    const [error, value, expireTimestamp] = await viaCallback((done) => cache.load('forever', { expireTimeMS: 100 }, done))
    expect(error).toBeNull()
    expect(value).toBe('f')
    expect(expireTimestamp).toBeNull()
    expect((await cache.load('forever', { expireTimeMS: 100 })).expireTimestamp).toBeNull()
    await sleep(1500)
    const later = await cache.load('forever')
    expect(later.value).toBe('f')
    expect(later.expireTimestamp).toBeNull()
  })

  test('an entry saved without expiry is still there after a while', async () => {
    const cache = make(tag())
    await cache.save('forever', 1)
    await cache.save('long', 2, 60000)
    await sleep(1500)
    expect((await cache.load('forever')).value).toBe(1)
    expect((await cache.load('long')).value).toBe(2)
  })
})

describe('expiry as Redis holds it', () => {
  const { tag, make, redis } = redisHarness('expiry-raw')

  test('lifetimes are ceil(ms / 1000) seconds: none when that is 0, gone when it is negative', async () => {
    const cache = make(tag())
    await cache.save('ms100', 1, 100)
    await cache.save('ms2500', 1, 2500)
    await cache.save('zero', 1, 0)
    await cache.save('ms-500', 1, -500)
    await cache.save('negative', 1, -5000)
    const pttl = (key) => redis.pttl(cache.cachePrefix + key)
    expect(await pttl('ms100')).toBeGreaterThan(500)
    expect(await pttl('ms100')).toBeLessThanOrEqual(1000)
    expect(await pttl('ms2500')).toBeGreaterThan(2000)
    expect(await pttl('ms2500')).toBeLessThanOrEqual(3000)
    expect(await pttl('zero')).toBe(-1)
    expect(await pttl('ms-500')).toBe(-1)
    expect(await pttl('negative')).toBe(-2)
  })

  test('load with expireTimeMS gives the entry a new lifetime; without an expiry it keeps none', async () => {
    const cache = make(tag())
    await cache.save('expiring', 1, 1000)
    await cache.save('forever', 1)
    await cache.load('expiring', { expireTimeMS: 4500 })
    await cache.load('forever', { expireTimeMS: 4500 })
    const pttl = await redis.pttl(cache.cachePrefix + 'expiring')
    expect(pttl).toBeGreaterThan(4000)
    expect(pttl).toBeLessThanOrEqual(5000)
    expect(await redis.ttl(cache.cachePrefix + 'forever')).toBe(-1)
    // A plain load ends the lifetime exactly at expireTimestamp (PEXPIREAT),
    // not at the ceil(4500 / 1000) = 5 s the load above gave it.
    await expectLoadEndsLifetime(cache, 'expiring', () => redis.pttl(cache.cachePrefix + 'expiring'))
  })

  // A save writes its envelope beside the entry and moves it into place
  // (RENAME), that key carrying the entry's lifetime when it has one in
  // seconds: nothing of a save may stay beside the entry, nor a lifetime
  // the entry should not have.
  test('a save leaves nothing beside its entry, landed or refused by another lock, and the entry only its own lifetime', async () => {
    const tagged = tag()
    const cache = make(tagged)
    const other = make(tagged, { lockName: 'other' })
    await cache.save('timed', 1, 60000)
    await cache.save('timed-then-forever', 1, 60000)
    await cache.save('timed-then-forever', 2)
    await cache.save('forever-then-timed', 1)
    await cache.save('forever-then-timed', 2, 5000)
    expect(await other.lock('locked', 60000)).toBe(true)
    await expect(cache.save('locked', 1, 60000)).rejects.toThrow('Object Locked')
    await expect(cache.save('locked', 1)).rejects.toThrow('Object Locked')
    expect(await redis.keys(`actionhero-native-cache:staging:{${cache.cachePrefix}*`)).toEqual([])
    expect(await redis.exists(cache.cachePrefix + 'locked')).toBe(0)
    const ttl = (key) => redis.ttl(cache.cachePrefix + key)
    expect(await ttl('timed')).toBeGreaterThan(50)
    expect(await ttl('timed')).toBeLessThanOrEqual(60)
    expect(await ttl('timed-then-forever')).toBe(-1)
    expect(await ttl('forever-then-timed')).toBeGreaterThan(0)
    expect(await ttl('forever-then-timed')).toBeLessThanOrEqual(5)
  })

  // The touch script reads the entry's last 192 bytes, and its length only
  // when the entry is longer: envelopes on either side of that edge.
  test('loads rewrite readAt in place in envelopes of every length around 192 bytes', async () => {
    const cache = make(tag())
    const lengths = new Set()
    for (let n = 60; n <= 150; n++) {
      const key = `n${n}`
      await cache.save(key, 'x'.repeat(n), 60000)
      const first = await cache.load(key)
      const second = await cache.load(key)
      const text = await redis.get(cache.cachePrefix + key)
      lengths.add(text.length)
      expect(second.value).toBe('x'.repeat(n))
      expect(second.lastReadAt).toBeGreaterThanOrEqual(first.createdAt)
      expect(JSON.parse(text)).toEqual({ value: 'x'.repeat(n), expireTimestamp: first.expireTimestamp, createdAt: first.createdAt, readAt: JSON.parse(text).readAt })
      expect(JSON.parse(text).readAt).toBeGreaterThanOrEqual(second.lastReadAt)
    }
    expect([...lengths].some((length) => length < 192)).toBe(true)
    expect(lengths.has(192)).toBe(true)
    expect([...lengths].some((length) => length > 192)).toBe(true)
  })

  // The touch script, sent before Rust has seen the entry, must judge
  // expiry as Rust does: read in that very millisecond it once took the
  // entry for live and ended its lifetime, while the load answered Object
  // Expired (a failed call that changed something).
  test('an entry read in the millisecond of its expireTimestamp answers Object Expired and stays as it was', async () => {
    const cache = make(tag())
    const key = cache.cachePrefix + 'now'
    // Twenty tries, so that some loads fall in the very millisecond the entry was planted in.
    for (let i = 0; i < 20; i++) {
      const expireTimestamp = Date.now()
      const text = JSON.stringify({ value: i, expireTimestamp, createdAt: expireTimestamp - 1000, readAt: null })
      await redis.set(key, text, 'EX', 10)
      await expectLoadError(cache, 'now', 'Object Expired', 'OBJECT_EXPIRED')
      expect(await redis.get(key)).toBe(text)
    }
  })
})
