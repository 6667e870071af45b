'use strict'

// Under jest's fake timers (jest.useFakeTimers() fakes process.nextTick,
// queueMicrotask, setTimeout and setInterval too), every call still answers,
// as actionhero's JS cache's calls do: its replies come from Redis's socket.

const { harness, within, viaCallback } = require('./support/harness')
const { stores, prefixes, cleanupRedis, REDIS } = require('./support/stores')
const { createActionheroCache } = require('./support/actionhero-js-cache')

afterAll(() => cleanupRedis())

/** `promise`, or a failure naming `what` once 4 s of real time have passed. */
const answered = (promise, what) => within(promise, 4000, `${what} did not answer within 4000 ms`)

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
