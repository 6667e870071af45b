'use strict'

// A key space of 5,000 entries (plus a few lists and locks): keys, size,
// locks, clear and dump files see all of it. On Redis that takes many SCAN
// steps and several MGET and DEL batches (500 keys each in src/store/redis.rs).

const fs = require('fs')
const { viaCallback, expectCacheError, rejectionOf, harness, redisHarness, tempFiles } = require('./support/harness')
const { stores, cleanupRedis } = require('./support/stores')

const ENTRIES = 5000
const LISTS = ['list-0', 'list-1', 'list-2']
const LOCKS = ['lock-0', 'lock-1', 'lock-2']
const GUARD_MS = 20000 // only turns a lost callback into a failure; not a speed requirement

afterAll(() => cleanupRedis())

const tmpFile = tempFiles('large-keyspace')

const sorted = (array) => [...array].sort()
const entryKey = (n) => `entry-${n}`
const valueOf = (n) => ({ n, text: `entry number ${n}` })
const ENTRY_KEYS = Array.from({ length: ENTRIES }, (_, n) => entryKey(n))

/** 5,000 entries (every tenth expiring in a minute), the locks and, with `lists`, the lists. */
async function fill (cache, { lists = true } = {}) {
  await Promise.all(ENTRY_KEYS.map((key, n) => (n % 10 === 0 ? cache.save(key, valueOf(n), 60000) : cache.save(key, valueOf(n)))))
  for (const key of LOCKS) expect(await cache.lock(key, 60000)).toBe(true)
  if (lists) for (const key of LISTS) for (const item of ['first', 'second']) await cache.push(key, item)
}

const full = (prefix, keys) => sorted(keys.map((key) => prefix + key))

describe.each(stores)('5,000 keys on the $name store', (store) => {
  const { tag, make } = harness(store, 'large')

  test('keys, size and locks see every key; clear removes entries and lists, locks stay', async () => {
    const cache = make(tag(), { lockName: 'holder' })
    await fill(cache)

    const [error, keys] = await viaCallback((done) => cache.keys(done), GUARD_MS)
    expect(error).toBeNull()
    expect(keys).toHaveLength(ENTRIES + LISTS.length) // no key twice
    expect(sorted(keys)).toEqual(full(cache.cachePrefix, [...ENTRY_KEYS, ...LISTS]))
    expect(await viaCallback((done) => cache.size(done), GUARD_MS)).toEqual([null, ENTRIES + LISTS.length])
    expect(sorted(await cache.locks())).toEqual(full(cache.lockPrefix, LOCKS))

    await expect(cache.clear()).resolves.toBe(true)
    expect(await cache.keys()).toEqual([])
    await expect(cache.size()).resolves.toBe(0)
    for (const key of LISTS) await expect(cache.listLength(key)).resolves.toBe(0)
    const [missing] = await viaCallback((done) => cache.load(entryKey(ENTRIES - 1), done))
    expectCacheError(missing, 'Object not found', 'OBJECT_NOT_FOUND')

    expect(sorted(await cache.locks())).toEqual(full(cache.lockPrefix, LOCKS))
    cache.lockName = 'someone-else'
    for (const key of LOCKS) await expect(cache.lock(key)).resolves.toBe(false)
  }, 60000)

  test('dumpWrite then clear then dumpRead gives back the same 5,000 entries', async () => {
    const cache = make(tag(), { lockName: 'holder' })
    await fill(cache, { lists: false })

    const file = tmpFile('dump')
    expect(await viaCallback((done) => cache.dumpWrite(file, done), GUARD_MS)).toEqual([null, ENTRIES])
    const dump = JSON.parse(fs.readFileSync(file, 'utf8'))
    expect(sorted(Object.keys(dump))).toEqual(full(cache.cachePrefix, ENTRY_KEYS))
    ENTRY_KEYS.forEach((key, n) => {
      const envelope = JSON.parse(dump[cache.cachePrefix + key])
      expect(envelope.value).toEqual(valueOf(n))
      expect(envelope.expireTimestamp === null).toBe(n % 10 !== 0)
    })

    await cache.clear()
    await expect(cache.size()).resolves.toBe(0)
    expect(await viaCallback((done) => cache.dumpRead(file, done), GUARD_MS)).toEqual([null, ENTRIES])
    expect(sorted(await cache.keys())).toEqual(full(cache.cachePrefix, ENTRY_KEYS))

    // Written again before any load touches readAt: the very same file content.
    const again = tmpFile('dump-again')
    await expect(cache.dumpWrite(again)).resolves.toBe(ENTRIES)
    expect(JSON.parse(fs.readFileSync(again, 'utf8'))).toEqual(dump)

    const loaded = await Promise.all(ENTRY_KEYS.map((key) => cache.load(key)))
    expect(loaded.map(({ value }) => value)).toEqual(ENTRY_KEYS.map((_, n) => valueOf(n)))
    expect(sorted(await cache.locks())).toEqual(full(cache.lockPrefix, LOCKS)) // dumpRead's clear kept them
  }, 60000)

  test('dumpWrite fails with WRONGTYPE when a list is among the 5,000 entries, as actionhero 16 does', async () => {
    const cache = make(tag())
    await fill(cache)
    const file = tmpFile('wrongtype')
    const [error, count] = await viaCallback((done) => cache.dumpWrite(file, done), GUARD_MS)
    expectCacheError(error, undefined, 'WRONGTYPE')
    expect(count).toBeUndefined()
    expectCacheError(await rejectionOf(cache.dumpWrite(file)), undefined, 'WRONGTYPE')
    expect(fs.existsSync(file)).toBe(false) // actionhero writes the file only when every GET worked
  }, 60000)
})

describe('5,000 keys on Redis: the walk is done in steps and batches', () => {
  const { tag, make, redis } = redisHarness('large-raw')

  /** Calls of each command so far, as Redis counts them (on the whole server). */
  async function commandCalls () {
    const stats = await redis.info('commandstats')
    const calls = (command) => Number((new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats) || [0, 0])[1])
    return { scan: calls('scan'), get: calls('get'), del: calls('del') }
  }

  test('keys and clear take more than one SCAN step and DEL each; dumpWrite GETs every key, as actionhero does', async () => {
    const cache = make(tag())
    await fill(cache, { lists: false })
    // Redis counts every client's commands: only lower bounds can be read from these.
    let before = await commandCalls()
    expect(await cache.keys()).toHaveLength(ENTRIES)
    let after = await commandCalls()
    expect(after.scan - before.scan).toBeGreaterThanOrEqual(2)

    before = after
    await expect(cache.dumpWrite(tmpFile('batches'))).resolves.toBe(ENTRIES)
    after = await commandCalls()
    expect(after.get - before.get).toBeGreaterThanOrEqual(ENTRIES)

    before = after
    await cache.clear()
    after = await commandCalls()
    expect(after.del - before.del).toBeGreaterThanOrEqual(2)
    await expect(cache.size()).resolves.toBe(0)
  }, 60000)
})
