'use strict'

// Locks: lock / unlock / checkLock / locks, the writable lockName,
// lockDuration and lockRetry properties, load's retry option, locks guarding
// load and destroy, sharing between caches, and atomicity under contention.

const { viaCallback, expectCacheError, rejectionOf, harness, sleepUntil } = require('./support/harness')
const { stores, cleanupRedis } = require('./support/stores')


afterAll(() => cleanupRedis())

/** How long a retry of `retryMs` may take to give up: a bound that catches a hang, not a speed requirement. */
const givesUpWithin = (retryMs, cache) => retryMs + 2 * cache.lockRetry + 250

describe.each(stores)('locks on the $name store', (store) => {
  const { tag, make } = harness(store, 'locks')

  /** Two caches on the same data, as two nodes with their own lockNames. */
  function pair (extra = {}) {
    const shared = tag()
    return [make(shared, { lockName: 'node-a', ...extra }), make(shared, { lockName: 'node-b', ...extra })]
  }

  // SETNX, as every actionhero version: the holder's own lock is taken too.
  test('lock answers true, then false for another lockName and for the holder itself', async () => {
    const [a, b] = pair()
    expect(await viaCallback((done) => a.lock('k', done))).toEqual([null, true])
    expect(await viaCallback((done) => a.lock('k', done))).toEqual([null, false])
    expect(await viaCallback((done) => b.lock('k', done))).toEqual([null, false])
    expect(await viaCallback((done) => b.lock('k', 5000, done))).toEqual([null, false])
    await expect(a.lock('k', 5000)).resolves.toBe(false)
    await expect(b.lock('k')).resolves.toBe(false)
    await expect(a.checkLock('k')).resolves.toBe(true)
    await expect(b.lock('other-key')).resolves.toBe(true)
  })

  test('unlock: true when you hold it or nobody does; false (and the lock stays) when another holds it', async () => {
    const [a, b] = pair()
    expect(await viaCallback((done) => a.unlock('free', done))).toEqual([null, true])
    await expect(b.unlock('free')).resolves.toBe(true)

    await a.lock('k')
    expect(await viaCallback((done) => b.unlock('k', done))).toEqual([null, false])
    await expect(b.unlock('k')).resolves.toBe(false)
    // still held by a
    await expect(b.lock('k')).resolves.toBe(false)
    await expect(b.checkLock('k')).resolves.toBe(false)
    expect(await a.locks()).toEqual([a.lockPrefix + 'k'])

    expect(await viaCallback((done) => a.unlock('k', done))).toEqual([null, true])
    await expect(b.lock('k')).resolves.toBe(true)
    await expect(b.unlock('k')).resolves.toBe(true)
    expect(await a.locks()).toEqual([])
  })

  test('checkLock: true when free or yours, false when another holds it', async () => {
    const [a, b] = pair()
    expect(await viaCallback((done) => a.checkLock('k', null, done))).toEqual([null, true])
    expect(await viaCallback((done) => a.checkLock('k', done))).toEqual([null, true])
    await expect(b.checkLock('k')).resolves.toBe(true)
    await a.lock('k')
    expect(await viaCallback((done) => a.checkLock('k', null, done))).toEqual([null, true])
    expect(await viaCallback((done) => b.checkLock('k', null, done))).toEqual([null, false])
    await expect(a.checkLock('k', null)).resolves.toBe(true)
    await expect(b.checkLock('k', null)).resolves.toBe(false)
    await expect(b.checkLock('k')).resolves.toBe(false)
  })

  test('checkLock with retry keeps asking until the other holder unlocks', async () => {
    const [a, b] = pair()
    await a.lock('callback')
    await a.lock('promise')
    let unlocked = false
    setTimeout(() => {
      Promise.all([a.unlock('callback'), a.unlock('promise')]).then(() => { unlocked = true })
    }, 200)
    const [[error, free], freePromise] = await Promise.all([
      viaCallback((done) => b.checkLock('callback', 2000, done), 6000),
      b.checkLock('promise', 2000)
    ])
    expect(error).toBeNull()
    expect(free).toBe(true)
    expect(freePromise).toBe(true)
    expect(unlocked).toBe(true)
  })

  test('checkLock with retry answers false once the time is up, after at least ~retry ms', async () => {
    const [a, b] = pair()
    await a.lock('k')
    const started = Date.now()
    const [error, free] = await viaCallback((done) => b.checkLock('k', 500, done), 6000)
    const elapsed = Date.now() - started
    expect(error).toBeNull()
    expect(free).toBe(false)
    expect(elapsed).toBeGreaterThanOrEqual(450)
    expect(elapsed).toBeLessThanOrEqual(givesUpWithin(500, b))

    const startedPromise = Date.now()
    await expect(b.checkLock('k', 300)).resolves.toBe(false)
    const elapsedPromise = Date.now() - startedPromise
    expect(elapsedPromise).toBeGreaterThanOrEqual(250)
    expect(elapsedPromise).toBeLessThanOrEqual(givesUpWithin(300, b))
  })

  test('load of an entry locked by another: Object Locked and four nulls; the holder can load it', async () => {
    const [a, b] = pair()
    await a.save('k', { v: 1 })
    await a.lock('k')
    const args = await viaCallback((done) => b.load('k', done))
    expect(args).toHaveLength(5)
    expectCacheError(args[0], 'Object Locked', 'OBJECT_LOCKED')
    expect(args.slice(1)).toEqual([null, null, null, null])
    expectCacheError(await rejectionOf(b.load('k')), 'Object Locked', 'OBJECT_LOCKED')
    const [error, value] = await viaCallback((done) => a.load('k', done))
    expect(error).toBeNull()
    expect(value).toEqual({ v: 1 })
  })

  test('destroy of an entry locked by another: Object Locked and the entry stays', async () => {
    const [a, b] = pair()
    await a.save('k', 'v')
    await a.lock('k')
    const [error] = await viaCallback((done) => b.destroy('k', done))
    expectCacheError(error, 'Object Locked', 'OBJECT_LOCKED')
    expectCacheError(await rejectionOf(b.destroy('k')), 'Object Locked', 'OBJECT_LOCKED')
    expect((await a.load('k')).value).toBe('v')
    // the holder may destroy it
    await expect(a.destroy('k')).resolves.toBe(true)
  })

  test('load with retry waits for another holder\'s lock to go', async () => {
    const [a, b] = pair()
    await a.save('callback', 'c')
    await a.save('promise', 'p')
    await a.lock('callback')
    await a.lock('promise')
    let unlocked = false
    setTimeout(() => {
      Promise.all([a.unlock('callback'), a.unlock('promise')]).then(() => { unlocked = true })
    }, 200)
    const [[error, value], loaded] = await Promise.all([
      viaCallback((done) => b.load('callback', { retry: 2000 }, done), 6000),
      b.load('promise', { retry: 2000 })
    ])
    expect(error).toBeNull()
    expect(value).toBe('c')
    expect(loaded.value).toBe('p')
    expect(unlocked).toBe(true)
  })

  test('load with retry gives up with Object Locked after at least ~retry ms', async () => {
    const [a, b] = pair()
    await a.save('k', 'v')
    await a.lock('k')
    const started = Date.now()
    const args = await viaCallback((done) => b.load('k', { retry: 400 }, done), 6000)
    const elapsed = Date.now() - started
    expect(elapsed).toBeGreaterThanOrEqual(350)
    expect(elapsed).toBeLessThanOrEqual(givesUpWithin(400, b))
    expectCacheError(args[0], 'Object Locked', 'OBJECT_LOCKED')
    expect(args.slice(1)).toEqual([null, null, null, null])
    const startedPromise = Date.now()
    expectCacheError(await rejectionOf(b.load('k', { retry: 300 })), 'Object Locked', 'OBJECT_LOCKED')
    const elapsedPromise = Date.now() - startedPromise
    expect(elapsedPromise).toBeGreaterThanOrEqual(250)
    expect(elapsedPromise).toBeLessThanOrEqual(givesUpWithin(300, b))
  })

  test('lockName is read on every call', async () => {
    const cache = make(tag(), { lockName: 'first' })
    expect(cache.lockName).toBe('first')
    await cache.save('k', 'v')
    await expect(cache.lock('k')).resolves.toBe(true)

    cache.lockName = 'otherId'
    expect(cache.lockName).toBe('otherId')
    await expect(cache.lock('k')).resolves.toBe(false)
    await expect(cache.checkLock('k')).resolves.toBe(false)
    await expect(cache.unlock('k')).resolves.toBe(false)
    const [error] = await viaCallback((done) => cache.load('k', done))
    expectCacheError(error, 'Object Locked', 'OBJECT_LOCKED')

    cache.lockName = 'first'
    await expect(cache.checkLock('k')).resolves.toBe(true)
    expect((await cache.load('k')).value).toBe('v')
    await expect(cache.unlock('k')).resolves.toBe(true)
    cache.lockName = 'otherId'
    await expect(cache.lock('k')).resolves.toBe(true)
  })

  test('the default lockName is a string unique to each instance', async () => {
    const shared = tag()
    const a = make(shared)
    const b = make(shared)
    expect(typeof a.lockName).toBe('string')
    expect(a.lockName.length).toBeGreaterThan(0)
    expect(a.lockName).not.toBe(b.lockName)
    await expect(a.lock('k')).resolves.toBe(true)
    await expect(b.lock('k')).resolves.toBe(false)
    await expect(b.checkLock('k')).resolves.toBe(false)
    await expect(a.checkLock('k')).resolves.toBe(true)
  })

  test('the default lock duration is lockDuration, read on every call', async () => {
    const [a, b] = pair()
    a.lockDuration = 1000
    const lockedAt = Date.now()
    await expect(a.lock('short')).resolves.toBe(true)
    a.lockDuration = 10000
    await expect(a.lock('long')).resolves.toBe(true)
    await expect(b.lock('short')).resolves.toBe(false)
    await sleepUntil(lockedAt, 2500)
    await expect(b.lock('short')).resolves.toBe(true)
    await expect(b.lock('long')).resolves.toBe(false)
    await expect(b.checkLock('long')).resolves.toBe(false)
  })

  // actionhero 16 sets EXPIRE ceil(ms / 1000): 0 or less deletes the lock it just took.
  test('a lock taken for 0 or a negative time answers true and is gone at once', async () => {
    const [a, b] = pair()
    expect(await viaCallback((done) => a.lock('zero', 0, done))).toEqual([null, true])
    await expect(a.lock('negative', -5000)).resolves.toBe(true)
    await expect(b.checkLock('zero')).resolves.toBe(true)
    await expect(b.checkLock('negative')).resolves.toBe(true)
    expect(await b.locks()).toEqual([])
    await expect(b.lock('zero')).resolves.toBe(true)
  })

  test('a lock taken for 1 ms still holds for about a second', async () => {
    const [a, b] = pair()
    const lockedAt = Date.now()
    expect(await viaCallback((done) => a.lock('k', 1, done))).toEqual([null, true])
    await expect(a.lock('own', 1)).resolves.toBe(true)
    await sleepUntil(lockedAt, 200)
    await expect(b.lock('k')).resolves.toBe(false)
    await expect(b.checkLock('k')).resolves.toBe(false)
    expect((await b.locks()).sort()).toEqual([b.lockPrefix + 'k', b.lockPrefix + 'own'])
    await sleepUntil(lockedAt, 2500)
    await expect(b.checkLock('k')).resolves.toBe(true)
    expect(await b.locks()).toEqual([])
    // Gone: unlocking answers true, for the holder as for another.
    await expect(a.unlock('own')).resolves.toBe(true)
    await expect(b.unlock('k')).resolves.toBe(true)
    await expect(b.lock('k')).resolves.toBe(true)
  })

  test('re-locking a key you hold answers false and does not extend it', async () => {
    const [a, b] = pair()
    const lockedAt = Date.now()
    await expect(a.lock('k', 1000)).resolves.toBe(true)
    await sleepUntil(lockedAt, 500)
    await expect(a.lock('k', 5000)).resolves.toBe(false)
    await expect(b.checkLock('k')).resolves.toBe(false)
    // The first lock's 1 s is over.
    await sleepUntil(lockedAt, 1800)
    await expect(b.checkLock('k')).resolves.toBe(true)
    await expect(b.lock('k')).resolves.toBe(true)
  })

  test('lockRetry is read on every call', async () => {
    const [a, b] = pair()
    await a.lock('k')
    setTimeout(() => { a.unlock('k') }, 200)
    // Built with lockRetry 100; asking only every 1500 ms means the free lock
    // is seen on the second ask, not right after the unlock.
    b.lockRetry = 1500
    const started = Date.now()
    await expect(b.checkLock('k', 4000)).resolves.toBe(true)
    const elapsed = Date.now() - started
    expect(elapsed).toBeGreaterThanOrEqual(1400)
    // Seen on the second ask, well before a third (at 3000 ms).
    expect(elapsed).toBeLessThan(2 * b.lockRetry)
  })

  test('locks() lists lock keys with the lockPrefix, from every node', async () => {
    const [a, b] = pair()
    expect(await viaCallback((done) => a.locks(done))).toEqual([null, []])
    await a.lock('x')
    await b.lock('y')
    await a.save('entry-not-a-lock', 1)
    const [error, locks] = await viaCallback((done) => b.locks(done))
    expect(error).toBeNull()
    expect([...locks].sort()).toEqual([a.lockPrefix + 'x', a.lockPrefix + 'y'])
    expect([...(await a.locks())].sort()).toEqual([a.lockPrefix + 'x', a.lockPrefix + 'y'])
    await a.unlock('x')
    expect(await b.locks()).toEqual([a.lockPrefix + 'y'])
  })

  test('two caches with the same tag share locks; another tag does not', async () => {
    const [a, b] = pair()
    const stranger = make(tag(), { lockName: 'node-b' })
    const strangerOther = make(tag(), { lockName: 'node-c' })
    await a.lock('k')
    await expect(b.checkLock('k')).resolves.toBe(false)
    await expect(stranger.checkLock('k')).resolves.toBe(true)
    await expect(strangerOther.lock('k')).resolves.toBe(true)
  })

  test('many concurrent lock() calls from many caches: exactly one wins', async () => {
    const shared = tag()
    const caches = Array.from({ length: 40 }, (_, i) => make(shared, { lockName: `contender-${i}` }))
    for (const key of ['hot-1', 'hot-2', 'hot-3']) {
      const answers = await Promise.all(caches.map((cache) => cache.lock(key)))
      expect(answers.filter((answer) => answer === true)).toHaveLength(1)
      expect(answers.filter((answer) => answer === false)).toHaveLength(caches.length - 1)
      const winner = caches[answers.indexOf(true)]
      const checks = await Promise.all(caches.map((cache) => cache.checkLock(key)))
      expect(checks).toEqual(caches.map((cache) => cache === winner))
    }
  })

  test('many concurrent lock() calls through callbacks, lockName changed between calls: exactly one wins', async () => {
    const cache = make(tag())
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => {
      cache.lockName = `caller-${i}`
      return viaCallback((done) => cache.lock('hot', done))
    }))
    expect(answers.every(([error]) => error === null)).toBe(true)
    const wins = answers.map(([, locked]) => locked)
    expect(wins.filter((locked) => locked === true)).toHaveLength(1)
    cache.lockName = `caller-${wins.indexOf(true)}`
    await expect(cache.checkLock('hot')).resolves.toBe(true)
    cache.lockName = 'nobody'
    await expect(cache.checkLock('hot')).resolves.toBe(false)
  })
})
