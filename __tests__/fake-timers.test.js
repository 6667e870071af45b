'use strict'

// Under jest's fake timers (jest.useFakeTimers() fakes process.nextTick,
// queueMicrotask, setTimeout and setInterval too), every call still answers,
// as actionhero's JS cache's calls do: its replies come from Redis's socket.
// They fake Date too, and envelope times follow it, as actionhero's do.

const { harness, within, viaCallback, tempFiles } = require('./support/harness')
const { stores, prefixes, cleanupRedis, REDIS } = require('./support/stores')
const { createActionheroCache } = require('./support/actionhero-js-cache')

afterAll(() => cleanupRedis())

const tmpFile = tempFiles('fake-timers')

/** `promise`, or a failure naming `what` once 4 s of real time have passed. */
const answered = (promise, what) => within(promise, 4000, `${what} did not answer within 4000 ms`)

/** Runs `body` with jest's fake timers installed, and real ones again after; answers what it answers. */
async function withFakeTimers (body) {
  jest.useFakeTimers()
  try {
    return await body()
  } finally {
    jest.useRealTimers()
  }
}

describe.each(stores)('jest fake timers, $name store', (store) => {
  const { tag, make } = harness(store, 'fake-timers')

  test('each method answers through its callback', async () => {
    const cache = make(tag())
    await withFakeTimers(async () => {
      expect(await viaCallback((done) => cache.save('k', { a: 1 }, 60000, done))).toEqual([null, true])
      const [error, value] = await viaCallback((done) => cache.load('k', done))
      expect([error, value]).toEqual([null, { a: 1 }])
      expect(await viaCallback((done) => cache.lock('k', 10000, done))).toEqual([null, true])
      expect(await viaCallback((done) => cache.checkLock('k', done))).toEqual([null, true])
      expect(await viaCallback((done) => cache.locks(done))).toEqual([null, [cache.lockPrefix + 'k']])
      expect(await viaCallback((done) => cache.unlock('k', done))).toEqual([null, true])
      expect(await viaCallback((done) => cache.push('list', 1, done))).toEqual([null])
      expect(await viaCallback((done) => cache.pop('list', done))).toEqual([null, 1])
      expect(await viaCallback((done) => cache.keys(done))).toEqual([null, [cache.cachePrefix + 'k']])
      expect(await viaCallback((done) => cache.destroy('k', done))).toEqual([null, true])
      const [missing] = await viaCallback((done) => cache.load('k', done))
      expect(missing.message).toBe('Object not found')
    })
  })

  test('each method resolves its promise', async () => {
    const cache = make(tag())
    await withFakeTimers(async () => {
      await expect(answered(cache.save('k', 'v'), 'save')).resolves.toBe(true)
      await expect(answered(cache.load('k'), 'load')).resolves.toMatchObject({ key: 'k', value: 'v' })
      await expect(answered(cache.lock('k'), 'lock')).resolves.toBe(true)
      await expect(answered(cache.unlock('k'), 'unlock')).resolves.toBe(true)
      await expect(answered(cache.size(), 'size')).resolves.toBe(1)
      await expect(answered(cache.destroy('k'), 'destroy')).resolves.toBe(true)
      await expect(answered(cache.load('k'), 'load of a missing key')).rejects.toThrow('Object not found')
    })
  })
})

// The first day of 2001: far enough from the system clock that a lifetime
// taken for one on the other ends at once, or a quarter century late.
const FAKE_NOW = Date.UTC(2001, 0, 1)

/**
 * What a test sees of an entry's times with Date faked: saved with a
 * minute to live, read one second later, then again just past its expiry. `pttl`
 * answers the entry's remaining physical lifetime in the store.
 */
function timesUnderFakeDate (cache, pttl) {
  return withFakeTimers(async () => {
    jest.setSystemTime(FAKE_NOW)
    await viaCallback((done) => cache.save('k', 'v', 60000, done))
    jest.setSystemTime(FAKE_NOW + 1000)
    const loaded = await viaCallback((done) => cache.load('k', done))
    const afterRead = await pttl()
    jest.setSystemTime(FAKE_NOW + 60001)
    const [expired] = await viaCallback((done) => cache.load('k', done))
    return { loaded, afterRead, expired: expired && expired.message }
  })
}

/**
 * An entry saved with a minute to live, dumped, and read back from the dump
 * half a minute later by the faked Date: what is left of its lifetime.
 */
function leftAfterDumpRead (cache, pttl) {
  const file = tmpFile('dump')
  return withFakeTimers(async () => {
    jest.setSystemTime(FAKE_NOW)
    await viaCallback((done) => cache.save('dumped', 'v', 60000, done))
    await viaCallback((done) => cache.dumpWrite(file, done))
    jest.setSystemTime(FAKE_NOW + 30000)
    await viaCallback((done) => cache.dumpRead(file, done))
    return pttl()
  })
}

/** What actionhero's cache leaves of it: EXPIRE of the 30 s left. */
function expectActionherosDumpRead (left) {
  expect(left).toBeGreaterThan(29000)
  expect(left).toBeLessThanOrEqual(30000)
}

/** What actionhero's cache answers, as timesUnderFakeDate reports it. */
function expectActionherosTimes ({ loaded, afterRead, expired }) {
  expect(loaded).toEqual([null, 'v', FAKE_NOW + 60000, FAKE_NOW, null])
  // Kept by the store until the faked expireTimestamp, 59 s after the read
  // (actionhero's EXPIRE takes whole seconds), on the system's clock.
  expect(afterRead).toBeGreaterThan(58000)
  expect(afterRead).toBeLessThanOrEqual(59000)
  expect(expired).toBe('Object Expired')
}

describe.each(stores)('jest fake Date, $name store', (store) => {
  const { tag, make } = harness(store, 'fake-date')

  test('envelope times come from the faked Date, and lifetimes from the system clock', async () => {
    const cache = make(tag())
    const entryKey = cache.cachePrefix + 'k'
    expectActionherosTimes(await timesUnderFakeDate(cache, () => cache.pttl(entryKey)))
  })

  test('dumpRead gives an entry what is left of it by the faked Date', async () => {
    const cache = make(tag())
    expectActionherosDumpRead(await leftAfterDumpRead(cache, () => cache.pttl(cache.cachePrefix + 'dumped')))
  })
})

test('actionhero\'s own JS cache stamps and expires entries by the faked Date (the behaviour kept)', async () => {
  const js = await createActionheroCache({ ...prefixes('fake-date-js'), redis: REDIS })
  try {
    expectActionherosTimes(await timesUnderFakeDate(js.cache, () => js.client.pttl(js.cache.redisPrefix + 'k')))
    expectActionherosDumpRead(await leftAfterDumpRead(js.cache, () => js.client.pttl(js.cache.redisPrefix + 'dumped')))
  } finally {
    await js.close()
  }
})

test('actionhero\'s own JS cache answers under fake timers too (the behaviour kept)', async () => {
  const js = await createActionheroCache({ ...prefixes('fake-timers-js'), redis: REDIS })
  try {
    await withFakeTimers(async () => {
      expect(await viaCallback((done) => js.cache.save('k', 'v', 60000, done))).toEqual([null, true])
      const [error, value] = await viaCallback((done) => js.cache.load('k', done))
      expect([error, value]).toEqual([null, 'v'])
      expect(await viaCallback((done) => js.cache.destroy('k', done))).toEqual([null, true])
    })
  } finally {
    await js.close()
  }
})
