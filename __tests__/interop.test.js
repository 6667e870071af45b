'use strict'

// actionhero 16's own JS cache and the addon on one Redis with the same
// prefixes, as JS and native nodes of one fleet would run: each reads what
// the other writes, their stored bytes match, and locks, lifetimes, lists and
// dump files carry over both ways.

const fs = require('fs')
const os = require('os')
const path = require('path')
const { types } = require('util')
const Redis = require('ioredis')

const { Cache } = require('..')
const { prefixes, cleanupRedis, REDIS } = require('./support/stores')
const { createActionheroCache } = require('./support/actionhero-js-cache')

const JS_NAME = 'js-node'
const NATIVE_NAME = 'native-node'

/** Calls `target[method](...args, callback)`; answers `{ error, results }`. */
function call (target, method, ...args) {
  return new Promise((resolve) => {
    target[method](...args, (error, ...results) => resolve({ error: error || null, results }))
  })
}

/** Like `call`, but fails the test on an error and answers the results. */
async function ok (target, method, ...args) {
  const { error, results } = await call(target, method, ...args)
  if (error) throw new Error(`${method}(${args.map((a) => JSON.stringify(a)).join(', ')}) failed: ${error.message}`)
  return results
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A stored envelope with its three timestamps replaced by placeholders, and
 * a check that it ends the way JSON.stringify writes the envelope.
 */
function normalize (raw) {
  const tail = /,"expireTimestamp":(null|-?[0-9.e+-]+),"createdAt":(null|[0-9.e+-]+),"readAt":(null|[0-9.e+-]+)}$/
  expect(raw).toMatch(tail)
  return raw.replace(tail, (_, expire, created, read) =>
    `,"expireTimestamp":${expire === 'null' ? 'null' : 'E'},"createdAt":${created === 'null' ? 'null' : 'C'},"readAt":${read === 'null' ? 'null' : 'R'}}`)
}

const VALUES = [
  ['an empty array', []],
  ['an empty object', {}],
  ['a nested object', { a: { b: { c: [1, 2, { d: 'e' }] } }, list: [[], {}, [[]]], flag: false, none: null }],
  ['an array of mixed things', [1, 'two', { three: 3 }, [4], null, true]],
  ['a unicode string', 'héllo wörld ✓ 日本語 Ελληνικά 🎉👩‍👩‍👧'],
  ['a string with JSON specials', 'quote " backslash \\ newline \n tab \t nul \u0000 slash /'],
  ['a string that looks like an envelope tail', '","expireTimestamp":1,"createdAt":2,"readAt":3}'],
  ['an object whose keys look like the envelope', { value: 1, expireTimestamp: 2, createdAt: 3, readAt: 4 }],
  ['an empty string', ''],
  ['zero', 0],
  ['a negative fraction', -1.5],
  ['pi', 3.141592653589793],
  ['a big integer', Number.MAX_SAFE_INTEGER],
  ['a number JSON writes with an exponent', 1e21],
  ['a tiny number', 5e-324],
  ['true', true],
  ['false', false],
  ['null', null]
]

let tagCount = 0
const tag = () => `interop-${++tagCount}`

describe('actionhero 16 JS cache ⇄ addon on one Redis', () => {
  let raw
  let js
  let native
  let keys // the prefixes both use

  beforeAll(async () => {
    raw = new Redis({ ...REDIS, lazyConnect: true })
    await raw.connect()
  })

  beforeEach(async () => {
    keys = prefixes(tag())
    js = await createActionheroCache({ ...keys, lockName: JS_NAME, lockDuration: 10000, redis: REDIS })
    native = new Cache({ ...keys, redis: { ...REDIS }, lockName: NATIVE_NAME })
  })

  afterEach(async () => {
    await native.close()
    await js.close()
  })

  afterAll(async () => {
    await cleanupRedis()
    raw.disconnect()
  })

  const entryKey = (key) => keys.cachePrefix + key
  const lockKey = (key) => keys.lockPrefix + key
  const envelope = async (key) => JSON.parse(await raw.get(entryKey(key)))

  describe('entries saved by the JS cache load in the addon', () => {
    test.each(VALUES)('%s', async (_, value) => {
      const [saved] = await ok(js.cache, 'save', 'k', value, 60000)
      expect(saved).toBe(true)
      const stored = await envelope('k')
      expect(stored.readAt).toBeNull()

      const [loaded, expireTimestamp, createdAt, lastReadAt] = await ok(native, 'load', 'k')
      expect(loaded).toEqual(value)
      expect(expireTimestamp).toBe(stored.expireTimestamp)
      expect(createdAt).toBe(stored.createdAt)
      expect(lastReadAt).toBeNull()

      // The addon's read is recorded where the JS cache looks for it.
      const afterNativeRead = await envelope('k')
      expect(typeof afterNativeRead.readAt).toBe('number')
      expect(afterNativeRead.expireTimestamp).toBe(stored.expireTimestamp)
      expect(afterNativeRead.createdAt).toBe(stored.createdAt)
      const [jsLoaded, , , jsLastReadAt] = await ok(js.cache, 'load', 'k')
      expect(jsLoaded).toEqual(value)
      expect(jsLastReadAt).toBe(afterNativeRead.readAt)

      // And the JS read is what the addon reports next.
      const afterJsRead = await envelope('k')
      const [, , , nativeLastReadAt] = await ok(native, 'load', 'k')
      expect(nativeLastReadAt).toBe(afterJsRead.readAt)
    })

    test('an entry without expiry', async () => {
      await ok(js.cache, 'save', 'forever', { x: 1 })
      const [value, expireTimestamp, createdAt, lastReadAt] = await ok(native, 'load', 'forever')
      expect(value).toEqual({ x: 1 })
      expect(expireTimestamp).toBeNull()
      expect(createdAt).toBe((await envelope('forever')).createdAt)
      expect(lastReadAt).toBeNull()
    })

    test('undefined, which JSON.stringify leaves out of the envelope, loads as undefined', async () => {
      await ok(js.cache, 'save', 'undef', undefined, 60000)
      const jsRaw = await raw.get(entryKey('undef'))
      expect(jsRaw).not.toContain('"value"')
      const [value] = await ok(native, 'load', 'undef')
      expect(value).toBeUndefined()
      // and the addon stores it the same way, but for the timestamps
      await ok(native, 'save', 'native-undef', undefined, 60000)
      const timestamps = (text) => text.replace(/\d+/g, 'N')
      expect(timestamps(await raw.get(entryKey('native-undef')))).toBe(timestamps(jsRaw))
      expect((await ok(js.cache, 'load', 'native-undef'))[0]).toBeUndefined()
    })
  })

  describe('entries saved by the addon load in the JS cache', () => {
    test.each(VALUES)('%s', async (_, value) => {
      const [saved] = await ok(native, 'save', 'k', value, 60000)
      expect(saved).toBe(true)
      const stored = await envelope('k')
      expect(stored.readAt).toBeNull()
      expect(stored.expireTimestamp - stored.createdAt).toBe(60000)

      const [loaded, expireTimestamp, createdAt, lastReadAt] = await ok(js.cache, 'load', 'k')
      expect(loaded).toEqual(value)
      expect(expireTimestamp).toBe(stored.expireTimestamp)
      expect(createdAt).toBe(stored.createdAt)
      expect(lastReadAt).toBeNull()

      const afterJsRead = await envelope('k')
      expect(typeof afterJsRead.readAt).toBe('number')
      const [nativeLoaded, , , nativeLastReadAt] = await ok(native, 'load', 'k')
      expect(nativeLoaded).toEqual(value)
      expect(nativeLastReadAt).toBe(afterJsRead.readAt)

      const afterNativeRead = await envelope('k')
      const [, , , jsLastReadAt] = await ok(js.cache, 'load', 'k')
      expect(jsLastReadAt).toBe(afterNativeRead.readAt)
    })

    test('an entry without expiry', async () => {
      await ok(native, 'save', 'forever', [1, 2])
      const [value, expireTimestamp, createdAt, lastReadAt] = await ok(js.cache, 'load', 'forever')
      expect(value).toEqual([1, 2])
      expect(expireTimestamp).toBeNull()
      expect(createdAt).toBe((await envelope('forever')).createdAt)
      expect(lastReadAt).toBeNull()
    })
  })

  describe('the stored bytes are the same, but for the timestamps', () => {
    const cases = [
      ...VALUES.map(([name, value]) => [`${name}, lifetime 60000 ms`, value, 60000]),
      ['a nested object without lifetime', { a: [1, { b: 'ü' }] }, null],
      ['a number, lifetime 1500.5 ms', 42, 1500.5]
    ]

    test.each(cases)('%s', async (_, value, ms) => {
      if (ms === null) {
        await ok(js.cache, 'save', 'by-js', value)
        await ok(native, 'save', 'by-native', value)
      } else {
        await ok(js.cache, 'save', 'by-js', value, ms)
        await ok(native, 'save', 'by-native', value, ms)
      }
      const jsRaw = await raw.get(entryKey('by-js'))
      const nativeRaw = await raw.get(entryKey('by-native'))
      expect(nativeRaw.startsWith(`{"value":${JSON.stringify(value)},"expireTimestamp":`)).toBe(true)
      expect(normalize(nativeRaw)).toBe(normalize(jsRaw))

      // After a read by the other side, they still match.
      await ok(native, 'load', 'by-js')
      await ok(js.cache, 'load', 'by-native')
      expect(normalize(await raw.get(entryKey('by-native')))).toBe(normalize(await raw.get(entryKey('by-js'))))
    })

    test('a fractional lifetime gives the same fractional expireTimestamp text', async () => {
      await ok(native, 'save', 'frac', 1, 1500.5)
      const text = await raw.get(entryKey('frac'))
      const { expireTimestamp, createdAt } = JSON.parse(text)
      expect(expireTimestamp).toBe(createdAt + 1500.5)
      expect(text).toContain(`"expireTimestamp":${JSON.stringify(createdAt + 1500.5)},`)
    })

    test('the lock value is the lock name, from both', async () => {
      expect(await ok(js.cache, 'lock', 'a', 10000)).toEqual([true])
      expect(await ok(native, 'lock', 'b', 10000)).toEqual([true])
      expect(await raw.get(lockKey('a'))).toBe(JS_NAME)
      expect(await raw.get(lockKey('b'))).toBe(NATIVE_NAME)
      await ok(js.cache, 'unlock', 'a')
      await ok(native, 'unlock', 'b')
    })

    test('list items are the same bytes', async () => {
      const items = [[], {}, { a: [1] }, 'ü', 0, null, undefined]
      for (const item of items) {
        await ok(js.cache, 'push', 'list-js', item)
        await ok(native, 'push', 'list-native', item)
      }
      expect(await raw.lrange(entryKey('list-native'), 0, -1)).toEqual(await raw.lrange(entryKey('list-js'), 0, -1))
      expect(await raw.lrange(entryKey('list-native'), 0, 0)).toEqual(['{"data":[]}'])
    })
  })

  describe('a lock held by one side blocks the other', () => {
    test('held by the JS cache: the addon cannot save, destroy, load, lock or unlock', async () => {
      await ok(js.cache, 'save', 'k', 'original', 60000)
      expect(await ok(js.cache, 'lock', 'k', 10000)).toEqual([true])

      const save = await call(native, 'save', 'k', 'changed')
      expect(types.isNativeError(save.error)).toBe(true)
      expect(save.error.message).toBe('Object Locked')
      expect(save.error.code).toBe('OBJECT_LOCKED')

      const destroy = await call(native, 'destroy', 'k')
      expect(destroy.error && destroy.error.code).toBe('OBJECT_LOCKED')

      const load = await call(native, 'load', 'k')
      expect(load.error && load.error.message).toBe('Object Locked')

      expect(await ok(native, 'lock', 'k', 10000)).toEqual([false])
      expect(await ok(native, 'unlock', 'k')).toEqual([false])
      expect(await ok(native, 'checkLock', 'k', null)).toEqual([false])
      expect(await raw.get(lockKey('k'))).toBe(JS_NAME)

      // The holder still can, and the entry is untouched by the refused calls.
      const [value] = await ok(js.cache, 'load', 'k')
      expect(value).toBe('original')
      expect(await ok(js.cache, 'save', 'k', 'by holder')).toEqual([true])

      await ok(js.cache, 'unlock', 'k')
      expect(await raw.exists(lockKey('k'))).toBe(0)
      expect(await ok(native, 'save', 'k', 'after unlock')).toEqual([true])
      expect((await ok(js.cache, 'load', 'k'))[0]).toBe('after unlock')
    })

    test('held by the addon: the JS cache cannot save, destroy, load, lock or unlock', async () => {
      await ok(native, 'save', 'k', 'original', 60000)
      expect(await ok(native, 'lock', 'k', 10000)).toEqual([true])

      const save = await call(js.cache, 'save', 'k', 'changed', null)
      expect(save.error && save.error.message).toBe('Object Locked')
      const destroy = await call(js.cache, 'destroy', 'k')
      expect(destroy.error && destroy.error.message).toBe('Object Locked')
      // retry: false, as the JS cache otherwise polls a held lock forever.
      const load = await call(js.cache, 'load', 'k', { retry: false })
      expect(load.error && load.error.message).toBe('Object Locked')
      expect(await ok(js.cache, 'lock', 'k', 10000)).toEqual([false])
      expect(await ok(js.cache, 'unlock', 'k')).toEqual([false])
      expect(await raw.get(lockKey('k'))).toBe(NATIVE_NAME)

      const [value] = await ok(native, 'load', 'k')
      expect(value).toBe('original')

      expect(await ok(native, 'unlock', 'k')).toEqual([true])
      expect(await raw.exists(lockKey('k'))).toBe(0)
      expect(await ok(js.cache, 'save', 'k', 'after unlock', null)).toEqual([true])
      expect((await ok(native, 'load', 'k'))[0]).toBe('after unlock')
    })

    test('a reader waiting with retry gets the entry once the other side unlocks', async () => {
      await ok(js.cache, 'save', 'k', 'v', 60000)
      await ok(native, 'lock', 'k', 10000)
      setTimeout(() => native.unlock('k', () => {}), 150)
      const [value] = await ok(js.cache, 'load', 'k', { retry: 5000 })
      expect(value).toBe('v')

      await ok(js.cache, 'lock', 'k', 10000)
      setTimeout(() => js.cache.unlock('k', () => {}), 150)
      const [again] = await ok(native, 'load', 'k', { retry: 5000 })
      expect(again).toBe('v')
      await sleep(200) // let the JS unlock above finish before the caches close
    })
  })

  describe('lifetimes set by one side are seen by the other', () => {
    test('save with 5500 ms gives a 6 s TTL from both', async () => {
      await ok(js.cache, 'save', 'js', 1, 5500)
      await ok(native, 'save', 'native', 1, 5500)
      expect(await raw.ttl(entryKey('js'))).toBe(6)
      expect(await raw.ttl(entryKey('native'))).toBe(6)
      // Each side reads the other's expireTimestamp.
      const [, jsExpire] = await ok(js.cache, 'load', 'native')
      const [, nativeExpire] = await ok(native, 'load', 'js')
      expect(jsExpire).toBe((await envelope('native')).expireTimestamp)
      expect(nativeExpire).toBe((await envelope('js')).expireTimestamp)
    })

    test('save without a lifetime leaves no TTL, from both', async () => {
      await ok(js.cache, 'save', 'js', 1)
      await ok(native, 'save', 'native', 1)
      expect(await raw.ttl(entryKey('js'))).toBe(-1)
      expect(await raw.ttl(entryKey('native'))).toBe(-1)
    })

    test('load with expireTimeMS moves the other side\'s lifetime', async () => {
      await ok(js.cache, 'save', 'js', 1, 60000)
      await ok(native, 'save', 'native', 1, 60000)
      const [, nativeExpire] = await ok(native, 'load', 'js', { expireTimeMS: 2500 })
      const [, jsExpire] = await ok(js.cache, 'load', 'native', { expireTimeMS: 2500 })
      expect(await raw.ttl(entryKey('js'))).toBe(3)
      expect(await raw.ttl(entryKey('native'))).toBe(3)
      expect((await envelope('js')).expireTimestamp).toBe(nativeExpire)
      expect((await envelope('native')).expireTimestamp).toBe(jsExpire)
    })

    test('lock with 5500 ms gives a 6 s TTL from both', async () => {
      await ok(js.cache, 'lock', 'js', 5500)
      await ok(native, 'lock', 'native', 5500)
      expect(await raw.ttl(lockKey('js'))).toBe(6)
      expect(await raw.ttl(lockKey('native'))).toBe(6)
      await ok(js.cache, 'unlock', 'js')
      await ok(native, 'unlock', 'native')
    })

    test('an entry past its expireTimestamp is expired for the other side', async () => {
      await ok(js.cache, 'save', 'js', 1, 1)
      await ok(native, 'save', 'native', 1, 1)
      await sleep(20) // past the logical expiry, inside the 1 s physical lifetime
      const fromNative = await call(native, 'load', 'js')
      expect(fromNative.error && fromNative.error.message).toBe('Object Expired')
      expect(fromNative.error.code).toBe('OBJECT_EXPIRED')
      const fromJs = await call(js.cache, 'load', 'native')
      expect(fromJs.error && fromJs.error.message).toBe('Object Expired')
    })
  })

  describe('lists', () => {
    const items = [[], {}, { nested: { a: [1, { b: null }] } }, 'ünïcödé 🎉', 0, -2.5, true, null, '']

    test('pushed by the JS cache, popped by the addon', async () => {
      for (const item of items) await ok(js.cache, 'push', 'q', item)
      expect(await ok(native, 'listLength', 'q')).toEqual([items.length])
      for (const item of items) expect(await ok(native, 'pop', 'q')).toEqual([item])
      expect((await ok(native, 'pop', 'q'))[0]).toBeUndefined()
      expect(await ok(js.cache, 'listLength', 'q')).toEqual([0])
    })

    test('pushed by the addon, popped by the JS cache', async () => {
      for (const item of items) await ok(native, 'push', 'q', item)
      expect(await ok(js.cache, 'listLength', 'q')).toEqual([items.length])
      for (const item of items) expect(await ok(js.cache, 'pop', 'q')).toEqual([item])
      expect((await ok(js.cache, 'pop', 'q'))[0]).toBeUndefined()
      expect(await ok(native, 'listLength', 'q')).toEqual([0])
    })

    test('pushes from both sides interleave in order', async () => {
      for (let i = 0; i < 10; i++) await ok(i % 2 ? native : js.cache, 'push', 'q', { i })
      const popped = []
      for (let i = 0; i < 10; i++) popped.push((await ok(i % 3 ? js.cache : native, 'pop', 'q'))[0])
      expect(popped).toEqual(Array.from({ length: 10 }, (_, i) => ({ i })))
    })
  })

  describe('keys, size and clear agree', () => {
    test('both list the same keys and sizes, and either clears the other\'s entries', async () => {
      await ok(js.cache, 'save', 'a', 1)
      await ok(native, 'save', 'b', 2)
      await ok(js.cache, 'push', 'c', 3)
      const [jsKeys] = await ok(js.cache, 'keys')
      const [nativeKeys] = await ok(native, 'keys')
      const expected = ['a', 'b', 'c'].map(entryKey)
      expect([...jsKeys].sort()).toEqual(expected)
      expect([...nativeKeys].sort()).toEqual(expected)
      expect(await ok(js.cache, 'size')).toEqual([3])
      expect(await ok(native, 'size')).toEqual([3])

      await ok(native, 'clear')
      expect(await ok(js.cache, 'size')).toEqual([0])
      await ok(native, 'save', 'd', 4)
      await new Promise((resolve, reject) => js.cache.clear((error) => (error ? reject(error) : resolve())))
      expect(await ok(native, 'size')).toEqual([0])
    })
  })

  describe('dump files', () => {
    let dir
    beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ah-native-interop-')) })
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

    const entries = {
      plain: 'text',
      forever: { nested: [1, { a: [] }] },
      empty: [],
      unicode: '日本語 🎉'
    }

    async function fill (writer) {
      for (const [key, value] of Object.entries(entries)) {
        if (key === 'forever') await ok(writer, 'save', key, value)
        else await ok(writer, 'save', key, value, 60000)
      }
    }

    test('written by the JS cache, read by the addon', async () => {
      await fill(js.cache)
      const before = {}
      for (const key of Object.keys(entries)) before[key] = await raw.get(entryKey(key))
      const file = path.join(dir, 'from-js.json')
      expect(await ok(js.cache, 'dumpWrite', file)).toEqual([4])

      await ok(native, 'save', 'stray', 'gone after dumpRead')
      expect(await ok(native, 'dumpRead', file)).toEqual([4])
      expect(await raw.exists(entryKey('stray'))).toBe(0)
      for (const [key, value] of Object.entries(entries)) {
        expect(await raw.get(entryKey(key))).toBe(before[key]) // restored byte for byte
        expect((await ok(native, 'load', key))[0]).toEqual(value)
      }
      expect(await raw.ttl(entryKey('forever'))).toBe(-1)
      const ttl = await raw.ttl(entryKey('plain'))
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(60)
    })

    test('written by the addon, read by the JS cache', async () => {
      await fill(native)
      const before = {}
      for (const key of Object.keys(entries)) before[key] = await raw.get(entryKey(key))
      const file = path.join(dir, 'from-native.json')
      expect(await ok(native, 'dumpWrite', file)).toEqual([4])

      await ok(js.cache, 'save', 'stray', 'gone after dumpRead')
      expect(await ok(js.cache, 'dumpRead', file)).toEqual([4])
      expect(await raw.exists(entryKey('stray'))).toBe(0)
      for (const [key, value] of Object.entries(entries)) {
        expect(await raw.get(entryKey(key))).toBe(before[key])
        expect((await ok(js.cache, 'load', key))[0]).toEqual(value)
      }
      expect(await raw.ttl(entryKey('forever'))).toBe(-1)
      const ttl = await raw.ttl(entryKey('plain'))
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(60)
    })

    test('both write the same dump of the same entries', async () => {
      await fill(js.cache)
      await fill(native) // overwrites with the addon's bytes for half the story
      await ok(js.cache, 'save', 'only-js', { from: 'js' }, 60000)
      const jsFile = path.join(dir, 'same-js.json')
      const nativeFile = path.join(dir, 'same-native.json')
      await ok(js.cache, 'dumpWrite', jsFile)
      await ok(native, 'dumpWrite', nativeFile)
      const jsDump = JSON.parse(fs.readFileSync(jsFile, 'utf8'))
      const nativeDump = JSON.parse(fs.readFileSync(nativeFile, 'utf8'))
      expect(Object.keys(nativeDump).sort()).toEqual([...Object.keys(entries), 'only-js'].map(entryKey).sort())
      expect(nativeDump).toEqual(jsDump)
    })
  })
})
