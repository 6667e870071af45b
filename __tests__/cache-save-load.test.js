'use strict'

// save / load: results in callback and promise form, the stored envelope,
// read bookkeeping (createdAt, lastReadAt) and JSON round trips.

const fs = require('fs')
const os = require('os')
const path = require('path')
const { types } = require('util')
const { viaCallback, expectCacheError, harness, redisHarness } = require('./support/harness')
const { stores, cleanupRedis } = require('./support/stores')

afterAll(() => cleanupRedis())

const tmpFiles = []
afterAll(() => { for (const file of tmpFiles) fs.rmSync(file, { force: true }) })
function tmpFile (name) {
  const file = path.join(os.tmpdir(), `cache-save-load-${process.pid}-${Date.now()}-${name}.json`)
  tmpFiles.push(file)
  return file
}

/** The raw stored envelope of `key`, as the dump file shows it. */
async function storedEnvelope (cache, key) {
  const file = tmpFile(key)
  await cache.dumpWrite(file)
  const dump = JSON.parse(fs.readFileSync(file, 'utf8'))
  const text = dump[cache.cachePrefix + key]
  expect(typeof text).toBe('string')
  return JSON.parse(text)
}

// Every JSON type; loaded values must come back deep-equal AND with the same
// JSON text (so key order and number forms survive too).
const VALUES = [
  ['a nested object', { a: 1, b: 'two', c: [1, 2, 3], d: { e: { f: null, g: [true, false] } } }],
  ['an object whose keys are not sorted', { zebra: 1, apple: 2, mango: [3, { y: 1, b: 2 }] }],
  ['empty arrays and objects at every depth', [[], {}, [[[]]], [{}], { x: [], y: {} }]],
  ['an empty array', []],
  ['an empty object', {}],
  ['an object that looks like an envelope', { value: { expireTimestamp: 5 }, expireTimestamp: 1, createdAt: 2, readAt: 3 }],
  ['a plain string', 'hello'],
  ['an empty string', ''],
  ['a unicode string', 'café 日本語 ✓ 😀 Ω \u2028\u2029 \u0000 end'],
  // Their low bytes are ASCII ('A'): read as Latin-1 they would come back as 'AA'.
  ['characters whose low byte is an ASCII letter', '\u0141\u4e41'],
  ['a long ASCII string ending in one other character', `${'x'.repeat(10000)}é`],
  ['a long string of two-byte characters', 'Ł'.repeat(10000)],
  ['a string with quotes, backslashes and newlines', 'say "hi" \'there\'\\ \n second line\r\n\ttabbed'],
  ['a string that mimics the envelope tail', '","expireTimestamp":1,"createdAt":2,"readAt":3}'],
  ['zero', 0],
  ['a negative integer', -42],
  ['a negative float', -273.15],
  ['pi', 3.141592653589793],
  ['a large number', 1e21],
  ['the smallest float', 5e-324],
  ['MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER],
  ['minus MAX_VALUE', -Number.MAX_VALUE],
  ['true', true],
  ['false', false],
  ['null', null],
  ['an array of mixed types', [1, 'two', null, false, { three: [3] }, -0.5]]
]

describe.each(stores)('save and load on the $name store', (store) => {
  const { tag, make } = harness(store, 'save-load')

  test('save answers (null, true) through the callback and true through the promise', async () => {
    const cache = make(tag())
    const args = await viaCallback((done) => cache.save('k', { a: 1 }, 60000, done))
    expect(args).toEqual([null, true])
    await expect(cache.save('k2', 'x', 60000)).resolves.toBe(true)
    await expect(cache.save('k3', 'y')).resolves.toBe(true)
  })

  test('load hands (null, value, expireTimestamp, createdAt, lastReadAt) to the callback', async () => {
    const cache = make(tag())
    const before = Date.now()
    await viaCallback((done) => cache.save('k', { hello: 'world' }, 60000, done))
    const after = Date.now()
    const args = await viaCallback((done) => cache.load('k', done))
    expect(args).toHaveLength(5)
    const [error, value, expireTimestamp, createdAt, lastReadAt] = args
    expect(error).toBeNull()
    expect(value).toEqual({ hello: 'world' })
    expect(createdAt).toBeGreaterThanOrEqual(before)
    expect(createdAt).toBeLessThanOrEqual(after)
    expect(expireTimestamp).toBe(createdAt + 60000)
    expect(lastReadAt).toBeNull()
  })

  test('load without a callback resolves { key, value, expireTimestamp, createdAt, lastReadAt }', async () => {
    const cache = make(tag())
    const before = Date.now()
    await cache.save('the-key', [1, { two: 2 }], 30000)
    const after = Date.now()
    const loaded = await cache.load('the-key')
    expect(Object.keys(loaded).sort()).toEqual(['createdAt', 'expireTimestamp', 'key', 'lastReadAt', 'value'])
    expect(loaded.key).toBe('the-key')
    expect(loaded.value).toEqual([1, { two: 2 }])
    expect(loaded.createdAt).toBeGreaterThanOrEqual(before)
    expect(loaded.createdAt).toBeLessThanOrEqual(after)
    expect(loaded.expireTimestamp).toBe(loaded.createdAt + 30000)
    expect(loaded.lastReadAt).toBeNull()
  })

  test('load with an options object and a callback', async () => {
    const cache = make(tag())
    await cache.save('k', 'v')
    const [error, value] = await viaCallback((done) => cache.load('k', {}, done))
    expect(error).toBeNull()
    expect(value).toBe('v')
  })

  test('lastReadAt is the time of the previous read; createdAt and expireTimestamp stay', async () => {
    const cache = make(tag())
    await cache.save('k', 1, 60000)
    const first = await cache.load('k')
    expect(first.lastReadAt).toBeNull()

    const beforeSecond = Date.now()
    const [, , expireAtSecond, createdAtSecond, lastReadAtSecond] = await viaCallback((done) => cache.load('k', done))
    const afterSecond = Date.now()
    expect(lastReadAtSecond).toEqual(expect.any(Number))
    expect(lastReadAtSecond).toBeGreaterThanOrEqual(first.createdAt)
    expect(lastReadAtSecond).toBeLessThanOrEqual(beforeSecond)
    expect(createdAtSecond).toBe(first.createdAt)
    expect(expireAtSecond).toBe(first.expireTimestamp)

    await new Promise((resolve) => setTimeout(resolve, 20))
    const third = await cache.load('k')
    // The second read happened in [beforeSecond, afterSecond].
    expect(third.lastReadAt).toBeGreaterThanOrEqual(beforeSecond)
    expect(third.lastReadAt).toBeLessThanOrEqual(afterSecond)
    expect(third.lastReadAt).toBeGreaterThanOrEqual(lastReadAtSecond)
    expect(third.createdAt).toBe(first.createdAt)
    expect(third.expireTimestamp).toBe(first.expireTimestamp)
  })

  test('expireTimeMS omitted, null or undefined: the entry never expires', async () => {
    const cache = make(tag())
    expect(await viaCallback((done) => cache.save('omitted', 1, done))).toEqual([null, true])
    expect(await viaCallback((done) => cache.save('null', 2, null, done))).toEqual([null, true])
    expect(await viaCallback((done) => cache.save('undefined', 3, undefined, done))).toEqual([null, true])
    await expect(cache.save('promise-omitted', 4)).resolves.toBe(true)
    await expect(cache.save('promise-null', 5, null)).resolves.toBe(true)
    await expect(cache.save('promise-undefined', 6, undefined)).resolves.toBe(true)
    const expected = { omitted: 1, null: 2, undefined: 3, 'promise-omitted': 4, 'promise-null': 5, 'promise-undefined': 6 }
    for (const [key, value] of Object.entries(expected)) {
      const loaded = await cache.load(key)
      expect(loaded.value).toBe(value)
      expect(loaded.expireTimestamp).toBeNull()
    }
  })

  test('the stored envelope is {value, expireTimestamp, createdAt, readAt: null}, then readAt is set by a read', async () => {
    const cache = make(tag())
    await cache.save('forever', { n: 1 })
    await cache.save('expiring', [2], 45000)

    const forever = await storedEnvelope(cache, 'forever')
    expect(Object.keys(forever)).toEqual(['value', 'expireTimestamp', 'createdAt', 'readAt'])
    expect(forever.value).toEqual({ n: 1 })
    expect(forever.expireTimestamp).toBeNull()
    expect(forever.createdAt).toEqual(expect.any(Number))
    expect(forever.readAt).toBeNull()

    const expiring = await storedEnvelope(cache, 'expiring')
    expect(Object.keys(expiring)).toEqual(['value', 'expireTimestamp', 'createdAt', 'readAt'])
    expect(expiring.value).toEqual([2])
    expect(expiring.expireTimestamp).toBe(expiring.createdAt + 45000)
    expect(expiring.readAt).toBeNull()

    const before = Date.now()
    await cache.load('expiring')
    const after = Date.now()
    const read = await storedEnvelope(cache, 'expiring')
    expect(read.readAt).toBeGreaterThanOrEqual(before)
    expect(read.readAt).toBeLessThanOrEqual(after)
    expect(read.value).toEqual([2])
    expect(read.createdAt).toBe(expiring.createdAt)
    expect(read.expireTimestamp).toBe(expiring.expireTimestamp)
  })

  test.each(VALUES)('%s round-trips exactly (callback form)', async (_, value) => {
    const cache = make(tag())
    expect(await viaCallback((done) => cache.save('v', value, done))).toEqual([null, true])
    const [error, loaded] = await viaCallback((done) => cache.load('v', done))
    expect(error).toBeNull()
    expect(loaded).toEqual(value)
    expect(JSON.stringify(loaded)).toBe(JSON.stringify(value))
  })

  test.each(VALUES)('%s round-trips exactly (promise form, with an expiry)', async (_, value) => {
    const cache = make(tag())
    await expect(cache.save('v', value, 60000)).resolves.toBe(true)
    const { value: loaded } = await cache.load('v')
    expect(loaded).toEqual(value)
    expect(JSON.stringify(loaded)).toBe(JSON.stringify(value))
    // A second read goes through the rewritten envelope.
    const { value: again } = await cache.load('v')
    expect(JSON.stringify(again)).toBe(JSON.stringify(value))
  })

  // JSON.stringify leaves `value` out of the envelope for these, as in actionhero.
  test.each([['undefined', undefined], ['a function', () => 1], ['a symbol', Symbol('s')]])(
    '%s is saved as actionhero saves it: no value in the envelope, and load answers undefined',
    async (_, value) => {
      const cache = make(tag())
      expect(await viaCallback((done) => cache.save('u', value, done))).toEqual([null, true])
      const [error, loaded, expireTimestamp] = await viaCallback((done) => cache.load('u', done))
      expect(error).toBeNull()
      expect(loaded).toBeUndefined()
      expect(expireTimestamp).toBeNull()
      await cache.save('u2', value, 60000)
      const promised = await cache.load('u2')
      expect('value' in promised).toBe(true)
      expect(promised.value).toBeUndefined()
      expect(promised.expireTimestamp).toEqual(expect.any(Number))
      expect(Object.keys(await storedEnvelope(cache, 'u2'))).toEqual(['expireTimestamp', 'createdAt', 'readAt'])
    }
  )

  test('saving again replaces the value', async () => {
    const cache = make(tag())
    await cache.save('k', 'first')
    await cache.save('k', { second: true }, 60000)
    const { value, expireTimestamp } = await cache.load('k')
    expect(value).toEqual({ second: true })
    expect(expireTimestamp).toEqual(expect.any(Number))
  })

  test('two caches with the same tag share entries; another tag does not see them', async () => {
    const shared = tag()
    const a = make(shared, { lockName: 'node-a' })
    const b = make(shared, { lockName: 'node-b' })
    const stranger = make(tag())
    await viaCallback((done) => a.save('shared', { from: 'a' }, done))
    const [error, value] = await viaCallback((done) => b.load('shared', done))
    expect(error).toBeNull()
    expect(value).toEqual({ from: 'a' })
    await b.save('shared', { from: 'b' })
    expect((await a.load('shared')).value).toEqual({ from: 'b' })
    const [missing] = await viaCallback((done) => stranger.load('shared', done))
    expectCacheError(missing, 'Object not found', 'OBJECT_NOT_FOUND')
  })

  test('keys of every length around the native side\'s short-key buffer (128 bytes) come back whole, ending in 1- to 4-byte characters', async () => {
    const cache = make(tag())
    const keys = []
    for (const last of ['a', 'é', '日', '😀']) {
      for (let bytes = 110; bytes <= 140; bytes++) {
        const lastBytes = Buffer.byteLength(last)
        keys.push('k'.repeat(bytes - lastBytes) + last)
      }
    }
    for (const [i, key] of keys.entries()) await cache.save(key, i)
    for (const [i, key] of keys.entries()) expect((await cache.load(key)).value).toBe(i)
    expect((await cache.keys()).sort()).toEqual(keys.map((key) => cache.cachePrefix + key).sort())
    for (const key of keys) {
      await expect(cache.lock(key, 1000)).resolves.toBe(true)
      await expect(cache.unlock(key)).resolves.toBe(true)
    }
  })

  test('destroy answers true when the entry existed and false when it did not', async () => {
    const cache = make(tag())
    await cache.save('k', 1)
    expect(await viaCallback((done) => cache.destroy('k', done))).toEqual([null, true])
    expect(await viaCallback((done) => cache.destroy('k', done))).toEqual([null, false])
    const [error] = await viaCallback((done) => cache.load('k', done))
    expectCacheError(error, 'Object not found', 'OBJECT_NOT_FOUND')
    await cache.save('p', 2, 60000)
    await expect(cache.destroy('p')).resolves.toBe(true)
    await expect(cache.destroy('p')).resolves.toBe(false)
    await expect(cache.destroy('never-was')).resolves.toBe(false)
  })
})

describe('the envelope as Redis holds it', () => {
  const { tag, make, redis } = redisHarness('save-load-raw')

  test('an entry is a JSON string at <cachePrefix><key>, with a whole-second TTL or none', async () => {
    const cache = make(tag())
    await cache.save('forever', { a: [] })
    await cache.save('expiring', 'x', 1500)
    const forever = JSON.parse(await redis.get(cache.cachePrefix + 'forever'))
    expect(forever).toEqual({ value: { a: [] }, expireTimestamp: null, createdAt: expect.any(Number), readAt: null })
    expect(await redis.ttl(cache.cachePrefix + 'forever')).toBe(-1)
    const expiring = JSON.parse(await redis.get(cache.cachePrefix + 'expiring'))
    expect(expiring).toEqual({ value: 'x', expireTimestamp: expiring.createdAt + 1500, createdAt: expect.any(Number), readAt: null })
    // ceil(1500 / 1000) = 2 seconds
    const pttl = await redis.pttl(cache.cachePrefix + 'expiring')
    expect(pttl).toBeGreaterThan(1000)
    expect(pttl).toBeLessThanOrEqual(2000)
  })

  // The touch script's own write is the one Rust would make, so no second
  // script puts it right (commandstats counts the scripts Redis ran).
  test('a load of a standard envelope is written by the one script sent with its read', async () => {
    const cache = make(tag())
    const scriptsRun = async () => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await redis.info('commandstats'))[1])
    await cache.save('expiring', { a: 1 }, 60000)
    await cache.save('forever', 'x')
    await cache.save('fraction', 'y', 1500.5)
    const before = await scriptsRun()
    await cache.load('expiring')
    await cache.load('expiring', { expireTimeMS: 30000 })
    await cache.load('forever')
    await cache.load('fraction')
    expect(await scriptsRun() - before).toBe(4)
    expect(JSON.parse(await redis.get(cache.cachePrefix + 'fraction')).readAt).toEqual(expect.any(Number))
  })
})

describe('an envelope not in JSON.stringify\'s form (Redis)', () => {
  const { tag, make, redis } = redisHarness('save-load-foreign')

  test('a load keeps its value text byte for byte', async () => {
    const cache = make(tag())
    // Key order, spacing and number forms JSON.stringify would not write.
    const valueText = '{"b": [], "a": 1.0}'
    await redis.set(cache.cachePrefix + 'foreign', `{"readAt":null, "value":${valueText}, "createdAt":5, "expireTimestamp":null}`)
    const [error, value, expireTimestamp, createdAt, lastReadAt] = await viaCallback((done) => cache.load('foreign', done))
    expect(error).toBeNull()
    expect(value).toEqual({ b: [], a: 1 })
    expect([expireTimestamp, createdAt, lastReadAt]).toEqual([null, 5, null])
    expect(await redis.get(cache.cachePrefix + 'foreign')).toContain(valueText)
    expect((await cache.load('foreign')).value).toEqual({ b: [], a: 1 })
    expect(await redis.get(cache.cachePrefix + 'foreign')).toContain(valueText)
  })

  // The load's write goes with its read and finds the tail itself; here it
  // finds one that looks standard, so the rest is put right afterwards.
  test('an extra key before a standard tail: the whole envelope is rewritten into the standard form', async () => {
    const cache = make(tag())
    await redis.set(cache.cachePrefix + 'extra', '{"value":[1, 2],"extra":true,"expireTimestamp":null,"createdAt":5,"readAt":null}')
    const before = Date.now()
    const loaded = await cache.load('extra')
    expect([loaded.value, loaded.expireTimestamp, loaded.createdAt, loaded.lastReadAt]).toEqual([[1, 2], null, 5, null])
    const stored = await redis.get(cache.cachePrefix + 'extra')
    const readAt = JSON.parse(stored).readAt
    expect(readAt).toBeGreaterThanOrEqual(before)
    expect(stored).toBe(`{"value":[1, 2],"expireTimestamp":null,"createdAt":5,"readAt":${readAt}}`)
    expect(await redis.pttl(cache.cachePrefix + 'extra')).toBe(-1)
  })

  test('a refresh that shortens the tail rewrites the whole envelope', async () => {
    const cache = make(tag())
    const long = `{"value":"v","expireTimestamp":${Date.now() + 60000}.123456,"createdAt":5.5,"readAt":${Date.now()}.25}`
    await redis.set(cache.cachePrefix + 'shrinks', long)
    const before = Date.now()
    const loaded = await cache.load('shrinks', { expireTimeMS: 30000 })
    expect(loaded.value).toBe('v')
    const stored = await redis.get(cache.cachePrefix + 'shrinks')
    const { expireTimestamp, readAt } = JSON.parse(stored)
    expect(expireTimestamp).toBeGreaterThanOrEqual(before + 30000)
    expect(stored).toBe(`{"value":"v","expireTimestamp":${expireTimestamp},"createdAt":5.5,"readAt":${readAt}}`)
    const pttl = await redis.pttl(cache.cachePrefix + 'shrinks')
    expect(pttl).toBeGreaterThan(29000)
    expect(pttl).toBeLessThanOrEqual(30000)
  })
})
