'use strict'

// Under jest's fake timers (jest.useFakeTimers() fakes process.nextTick,
// queueMicrotask, setTimeout and setInterval too), every call still answers,
// as actionhero's JS cache's calls do: its replies come from Redis's socket.

const timers = require('timers')
const { harness } = require('./support/harness')
const { stores, prefixes, cleanupRedis, REDIS } = require('./support/stores')
const { createActionheroCache } = require('./support/actionhero-js-cache')

afterAll(() => cleanupRedis())

/** `promise`, or a failure once `ms` of real time have passed: a bound on a hang, not a speed requirement. */
function within (promise, what, ms = 4000) {
  return new Promise((resolve, reject) => {
    const guard = timers.setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms)
    promise.then(resolve, reject).finally(() => timers.clearTimeout(guard))
  })
}

/** The callback's arguments, with a hang bounded as `within` does. */
const called = (what, invoke) => within(new Promise((resolve) => invoke((...args) => resolve(args))), what)

/** Runs `body` with jest's fake timers installed, and real ones again after. */
async function withFakeTimers (body) {
  jest.useFakeTimers()
  try {
    await body()
  } finally {
    jest.useRealTimers()
  }
}

describe.each(stores)('jest fake timers, $name store', (store) => {
  const { tag, make } = harness(store, 'fake-timers')

  test('each method answers through its callback', async () => {
    const cache = make(tag())
    await withFakeTimers(async () => {
      expect(await called('save', (done) => cache.save('k', { a: 1 }, 60000, done))).toEqual([null, true])
      const [error, value] = await called('load', (done) => cache.load('k', done))
      expect([error, value]).toEqual([null, { a: 1 }])
      expect(await called('lock', (done) => cache.lock('k', 10000, done))).toEqual([null, true])
      expect(await called('checkLock', (done) => cache.checkLock('k', done))).toEqual([null, true])
      expect(await called('locks', (done) => cache.locks(done))).toEqual([null, [cache.lockPrefix + 'k']])
      expect(await called('unlock', (done) => cache.unlock('k', done))).toEqual([null, true])
      expect(await called('push', (done) => cache.push('list', 1, done))).toEqual([null])
      expect(await called('pop', (done) => cache.pop('list', done))).toEqual([null, 1])
      expect(await called('keys', (done) => cache.keys(done))).toEqual([null, [cache.cachePrefix + 'k']])
      expect(await called('destroy', (done) => cache.destroy('k', done))).toEqual([null, true])
      const [missing] = await called('load of a missing key', (done) => cache.load('k', done))
      expect(missing.message).toBe('Object not found')
    })
  })

  test('each method resolves its promise', async () => {
    const cache = make(tag())
    await withFakeTimers(async () => {
      await expect(within(cache.save('k', 'v'), 'save')).resolves.toBe(true)
      await expect(within(cache.load('k'), 'load')).resolves.toMatchObject({ key: 'k', value: 'v' })
      await expect(within(cache.lock('k'), 'lock')).resolves.toBe(true)
      await expect(within(cache.unlock('k'), 'unlock')).resolves.toBe(true)
      await expect(within(cache.size(), 'size')).resolves.toBe(1)
      await expect(within(cache.destroy('k'), 'destroy')).resolves.toBe(true)
      await expect(within(cache.load('k'), 'load of a missing key')).rejects.toThrow('Object not found')
    })
  })
})

test('actionhero\'s own JS cache answers under fake timers too (the behaviour kept)', async () => {
  const js = await createActionheroCache({ ...prefixes('fake-timers-js'), redis: REDIS })
  try {
    await withFakeTimers(async () => {
      expect(await called('save', (done) => js.cache.save('k', 'v', 60000, done))).toEqual([null, true])
      const [error, value] = await called('load', (done) => js.cache.load('k', done))
      expect([error, value]).toEqual([null, 'v'])
      expect(await called('destroy', (done) => js.cache.destroy('k', done))).toEqual([null, true])
    })
  } finally {
    await js.close()
  }
})
