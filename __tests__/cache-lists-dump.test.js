'use strict'

// Lists (push / pop / listLength), the key space (keys / size / clear) and
// dump files (dumpWrite / dumpRead).

const fs = require('fs')
const { viaCallback, expectCacheError, rejectionOf, harness, sleepUntil, redisHarness, tempFiles } = require('./support/harness')
const { stores, cleanupRedis } = require('./support/stores')


afterAll(() => cleanupRedis())

const tmpFile = tempFiles('cache-lists-dump')

const sorted = (array) => [...array].sort()

describe.each(stores)('lists on the $name store', (store) => {
  const { tag, make } = harness(store, 'lists')

  test('push then pop gives the items back first in, first out (callback form)', async () => {
    const cache = make(tag())
    const items = [1, 'two', { three: [3, { deep: true }] }, [4, []], null, false, -5.5, '', {}]
    for (const item of items) {
      // No result, as actionhero 16's push passes none.
      expect(await viaCallback((done) => cache.push('queue', item, done))).toEqual([null])
    }
    for (const item of items) {
      const args = await viaCallback((done) => cache.pop('queue', done))
      expect(args).toEqual([null, item])
      expect(JSON.stringify(args[1])).toBe(JSON.stringify(item))
    }
    expect(await viaCallback((done) => cache.pop('queue', done))).toEqual([null, undefined])
  })

  test('push then pop gives the items back first in, first out (promise form)', async () => {
    const cache = make(tag())
    await expect(cache.push('queue', { n: 1 })).resolves.toBe(true)
    await cache.push('queue', { n: 2 })
    await cache.push('queue', 'three')
    await expect(cache.pop('queue')).resolves.toEqual({ n: 1 })
    await cache.push('queue', 4)
    await expect(cache.pop('queue')).resolves.toEqual({ n: 2 })
    await expect(cache.pop('queue')).resolves.toBe('three')
    await expect(cache.pop('queue')).resolves.toBe(4)
    await expect(cache.pop('queue')).resolves.toBeUndefined()
  })

  test('pop of a list that never existed answers undefined', async () => {
    const cache = make(tag())
    const args = await viaCallback((done) => cache.pop('nothing', done))
    expect(args[0]).toBeNull()
    expect(args[1]).toBeUndefined()
    await expect(cache.pop('nothing')).resolves.toBeUndefined()
  })

  test('pushing undefined stores an item that pops as undefined', async () => {
    const cache = make(tag())
    await cache.push('queue', undefined)
    await cache.push('queue', 'after')
    expect(await cache.listLength('queue')).toBe(2)
    expect(await viaCallback((done) => cache.pop('queue', done))).toEqual([null, undefined])
    expect(await cache.listLength('queue')).toBe(1)
    await expect(cache.pop('queue')).resolves.toBe('after')
  })

  test('listLength counts the items, 0 for a missing list', async () => {
    const cache = make(tag())
    expect(await viaCallback((done) => cache.listLength('queue', done))).toEqual([null, 0])
    await expect(cache.listLength('queue')).resolves.toBe(0)
    await cache.push('queue', 'a')
    await cache.push('queue', 'b')
    await cache.push('queue', 'c')
    expect(await viaCallback((done) => cache.listLength('queue', done))).toEqual([null, 3])
    await cache.pop('queue')
    await expect(cache.listLength('queue')).resolves.toBe(2)
    await cache.pop('queue')
    await cache.pop('queue')
    await expect(cache.listLength('queue')).resolves.toBe(0)
  })

  test('lists are shared between caches with the same tag, in one order', async () => {
    const shared = tag()
    const a = make(shared, { lockName: 'a' })
    const b = make(shared, { lockName: 'b' })
    await a.push('q', 'from-a-1')
    await b.push('q', 'from-b')
    await a.push('q', 'from-a-2')
    await expect(b.listLength('q')).resolves.toBe(3)
    await expect(b.pop('q')).resolves.toBe('from-a-1')
    await expect(a.pop('q')).resolves.toBe('from-b')
    await expect(b.pop('q')).resolves.toBe('from-a-2')
    await expect(a.listLength('q')).resolves.toBe(0)
  })

  test('concurrent pushes are all kept and each pop takes a different item', async () => {
    const cache = make(tag())
    await Promise.all(Array.from({ length: 50 }, (_, i) => cache.push('q', i)))
    await expect(cache.listLength('q')).resolves.toBe(50)
    const popped = await Promise.all(Array.from({ length: 50 }, () => cache.pop('q')))
    expect([...popped].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    await expect(cache.pop('q')).resolves.toBeUndefined()
  })
})

describe.each(stores)('keys, size and clear on the $name store', (store) => {
  const { tag, make } = harness(store, 'keys')

  test('keys() lists entry keys with the cachePrefix; size() counts them', async () => {
    const cache = make(tag())
    expect(await viaCallback((done) => cache.keys(done))).toEqual([null, []])
    expect(await viaCallback((done) => cache.size(done))).toEqual([null, 0])
    await cache.save('a', 1)
    await cache.save('b', { two: 2 }, 60000)
    await cache.save('c:with:colons', 'three')
    await cache.lock('a')
    const [error, keys] = await viaCallback((done) => cache.keys(done))
    expect(error).toBeNull()
    expect(sorted(keys)).toEqual(sorted(['a', 'b', 'c:with:colons'].map((key) => cache.cachePrefix + key)))
    expect(sorted(await cache.keys())).toEqual(sorted(keys))
    expect(await viaCallback((done) => cache.size(done))).toEqual([null, 3])
    await expect(cache.size()).resolves.toBe(3)
    await cache.destroy('b')
    await expect(cache.size()).resolves.toBe(2)
    expect(sorted(await cache.keys())).toEqual([cache.cachePrefix + 'a', cache.cachePrefix + 'c:with:colons'])
  })

  test('keys() and size() only see this cache\'s prefix', async () => {
    const mine = make(tag())
    const other = make(tag())
    await mine.save('x', 1)
    await other.save('y', 1)
    await other.save('z', 1)
    expect(await mine.keys()).toEqual([mine.cachePrefix + 'x'])
    await expect(mine.size()).resolves.toBe(1)
    await expect(other.size()).resolves.toBe(2)
  })

  test('clear() removes entries and lists but not locks (callback form)', async () => {
    const cache = make(tag(), { lockName: 'me' })
    await cache.save('a', 1)
    await cache.save('b', 2, 60000)
    await cache.push('list', 'item')
    await cache.lock('held')
    // No result, as actionhero 16's clear passes none.
    expect(await viaCallback((done) => cache.clear(done))).toEqual([null])
    await expect(cache.size()).resolves.toBe(0)
    expect(await cache.keys()).toEqual([])
    await expect(cache.listLength('list')).resolves.toBe(0)
    await expect(cache.pop('list')).resolves.toBeUndefined()
    const [missing] = await viaCallback((done) => cache.load('a', done))
    expectCacheError(missing, 'Object not found', 'OBJECT_NOT_FOUND')
    expect(await cache.locks()).toEqual([cache.lockPrefix + 'held'])
    cache.lockName = 'someone-else'
    await expect(cache.lock('held')).resolves.toBe(false)
  })

  test('clear() in promise form; the cache works afterwards', async () => {
    const cache = make(tag())
    await cache.save('a', 1)
    await expect(cache.clear()).resolves.toBe(true) // as actionhero 18+ resolves it
    await expect(cache.size()).resolves.toBe(0)
    await cache.save('b', 2)
    expect((await cache.load('b')).value).toBe(2)
    await expect(cache.size()).resolves.toBe(1)
  })

  test('clear() leaves other prefixes alone', async () => {
    const mine = make(tag())
    const other = make(tag())
    await mine.save('a', 1)
    await other.save('a', 'kept')
    await mine.clear()
    expect((await other.load('a')).value).toBe('kept')
  })
})

describe.each(stores)('dump files on the $name store', (store) => {
  const { tag, make } = harness(store, 'dump')

  test('dumpWrite answers the count and writes { "<cachePrefix><key>": "<envelope JSON>" }', async () => {
    const cache = make(tag())
    const before = Date.now()
    await cache.save('forever', { a: [1, {}] })
    await cache.save('expiring', 'text "quoted"\n', 60000)
    const after = Date.now()
    const file = tmpFile('write')
    expect(await viaCallback((done) => cache.dumpWrite(file, done))).toEqual([null, 2])

    const dump = JSON.parse(fs.readFileSync(file, 'utf8'))
    expect(dump).toEqual(expect.any(Object))
    expect(Array.isArray(dump)).toBe(false)
    expect(sorted(Object.keys(dump))).toEqual(sorted([cache.cachePrefix + 'forever', cache.cachePrefix + 'expiring']))
    for (const text of Object.values(dump)) expect(typeof text).toBe('string')

    const forever = JSON.parse(dump[cache.cachePrefix + 'forever'])
    expect(Object.keys(forever)).toEqual(['value', 'expireTimestamp', 'createdAt', 'readAt'])
    expect(forever.value).toEqual({ a: [1, {}] })
    expect(forever.expireTimestamp).toBeNull()
    expect(forever.createdAt).toBeGreaterThanOrEqual(before)
    expect(forever.createdAt).toBeLessThanOrEqual(after)
    expect(forever.readAt).toBeNull()

    const expiring = JSON.parse(dump[cache.cachePrefix + 'expiring'])
    expect(expiring.value).toBe('text "quoted"\n')
    expect(expiring.expireTimestamp).toBe(expiring.createdAt + 60000)
    expect(expiring.readAt).toBeNull()

    // promise form
    const again = tmpFile('write-promise')
    await expect(cache.dumpWrite(again)).resolves.toBe(2)
    expect(JSON.parse(fs.readFileSync(again, 'utf8'))).toEqual(dump)
  })

  test('dumpWrite of an empty cache writes {} and answers 0', async () => {
    const cache = make(tag())
    const file = tmpFile('empty')
    await expect(cache.dumpWrite(file)).resolves.toBe(0)
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({})
  })

  test('dumpRead by another cache restores the entries, after clearing what it had', async () => {
    const writer = make(tag())
    await writer.save('forever', { kept: true })
    await writer.save('expiring', [1, 2, 3], 60000)
    await writer.save('read-before', 'r')
    await writer.load('read-before')
    const original = await writer.load('expiring')
    const file = tmpFile('read')
    await expect(writer.dumpWrite(file)).resolves.toBe(3)

    // A dump restores keys as written, so the reader shares the writer's
    // cachePrefix; everything else about it (memory server, lockPrefix) is
    // another tag's. The writer's entries are cleared first, so whatever
    // loads afterwards came from the file.
    await writer.clear()
    const reader = make(tag(), { cachePrefix: writer.cachePrefix })
    await reader.save('stale', 'should be cleared')
    const [missing] = await viaCallback((done) => reader.load('forever', done))
    expectCacheError(missing, 'Object not found', 'OBJECT_NOT_FOUND')

    expect(await viaCallback((done) => reader.dumpRead(file, done))).toEqual([null, 3])
    expect((await reader.load('forever')).value).toEqual({ kept: true })
    const restored = await reader.load('expiring')
    expect(restored.value).toEqual([1, 2, 3])
    expect(restored.expireTimestamp).toBe(original.expireTimestamp)
    expect(restored.createdAt).toBe(original.createdAt)
    expect((await reader.load('read-before')).value).toBe('r')
    const [stale] = await viaCallback((done) => reader.load('stale', done))
    expectCacheError(stale, 'Object not found', 'OBJECT_NOT_FOUND')
    await expect(reader.size()).resolves.toBe(3)
  })

  test('dumpRead in promise form answers the count', async () => {
    const writer = make(tag())
    await writer.save('one', 1)
    await writer.save('two', 2)
    const file = tmpFile('read-promise')
    await writer.dumpWrite(file)
    await writer.clear()
    await expect(writer.size()).resolves.toBe(0)
    await expect(writer.dumpRead(file)).resolves.toBe(2)
    expect((await writer.load('one')).value).toBe(1)
    expect((await writer.load('two')).value).toBe(2)
  })

  test('dumpRead restores each entry with what is left of its expiry', async () => {
    const writer = make(tag())
    const savedAt = Date.now()
    await writer.save('short', 's', 1000)
    await writer.save('forever', 'f')
    const file = tmpFile('expiry')
    await writer.dumpWrite(file)
    await writer.clear()

    const reader = make(tag(), { cachePrefix: writer.cachePrefix })
    await expect(reader.dumpRead(file)).resolves.toBe(2)
    expect((await reader.load('short')).value).toBe('s')
    await sleepUntil(savedAt, 2500)
    const [gone] = await viaCallback((done) => reader.load('short', done))
    expectCacheError(gone, 'Object not found', 'OBJECT_NOT_FOUND')
    const forever = await reader.load('forever')
    expect(forever.value).toBe('f')
    expect(forever.expireTimestamp).toBeNull()
  })

  describe('a bad dump file gives an error and leaves the cache untouched', () => {
    const cases = [
      ['a file that is not JSON', (file) => fs.writeFileSync(file, 'this is { not json')],
      ['a missing file', () => {}],
      ['a JSON file that is not an object', (file) => fs.writeFileSync(file, '[1, 2, 3]')],
      ['an entry whose text is not an envelope', (file, prefix) => fs.writeFileSync(file, JSON.stringify({ [prefix + 'bad']: 'not json', [prefix + 'good']: '{"value":1,"expireTimestamp":null,"createdAt":1,"readAt":null}' }))],
      ['an entry that is not a string', (file, prefix) => fs.writeFileSync(file, JSON.stringify({ [prefix + 'bad']: { value: 1 } }))],
      // actionhero 16 clears, then throws on this one (it reads null.expireTimestamp).
      ['an entry that is null', (file, prefix) => fs.writeFileSync(file, JSON.stringify({ [prefix + 'good']: '{"value":1,"expireTimestamp":null,"createdAt":1,"readAt":null}', [prefix + 'bad']: null }))]
    ]

    test.each(cases)('%s (callback form)', async (_, write) => {
      const cache = make(tag())
      await cache.save('existing', 'still here')
      const file = tmpFile('bad')
      write(file, cache.cachePrefix)
      const [error] = await viaCallback((done) => cache.dumpRead(file, done))
      expectCacheError(error)
      expect(typeof error.message).toBe('string')
      expect(error.message.length).toBeGreaterThan(0)
      expect((await cache.load('existing')).value).toBe('still here')
      await expect(cache.size()).resolves.toBe(1)
      expect(await cache.keys()).toEqual([cache.cachePrefix + 'existing'])
    })

    test.each(cases)('%s (promise form)', async (_, write) => {
      const cache = make(tag())
      await cache.save('existing', 'still here')
      const file = tmpFile('bad-promise')
      write(file, cache.cachePrefix)
      expectCacheError(await rejectionOf(cache.dumpRead(file)))
      expect((await cache.load('existing')).value).toBe('still here')
      await expect(cache.size()).resolves.toBe(1)
    })
  })
})

describe('dump files and Redis', () => {
  const { tag, make, redis } = redisHarness('dump-raw')

  test('dumpRead writes the envelope text as is, with the remaining lifetime in whole seconds', async () => {
    const cache = make(tag())
    const now = Date.now()
    const envelope = JSON.stringify({ value: { x: [] }, expireTimestamp: now + 4500, createdAt: now - 500, readAt: null })
    const file = tmpFile('raw')
    fs.writeFileSync(file, JSON.stringify({ [cache.cachePrefix + 'k']: envelope }))
    await expect(cache.dumpRead(file)).resolves.toBe(1)
    expect(await redis.get(cache.cachePrefix + 'k')).toBe(envelope)
    const pttl = await redis.pttl(cache.cachePrefix + 'k')
    expect(pttl).toBeGreaterThan(3000)
    expect(pttl).toBeLessThanOrEqual(5000)
    expect((await cache.load('k')).value).toEqual({ x: [] })
  })
})
