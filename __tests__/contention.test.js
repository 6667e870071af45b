'use strict'

// Mutual exclusion under contention: many contenders with different lock
// names race for one lock, and every holder checks that nobody else wrote
// while it held it. On Redis the contenders are separate Node processes (as
// actionhero nodes are); on the in-memory store, concurrent async loops in
// this process on two Cache objects sharing one in-memory server.

const Redis = require('ioredis')

const { Cache } = require('..')
const { prefixes, cleanupRedis, REDIS, RUN } = require('./support/stores')
const { raceForTheLock } = require('./support/contenders')

const ATTEMPTS = 1000

describe('lock contention on Redis: two processes', () => {
  const keys = prefixes('contention')
  let raw

  beforeAll(async () => {
    raw = new Redis({ ...REDIS, lazyConnect: true })
    await raw.connect()
  })

  afterAll(async () => {
    await cleanupRedis()
    raw.disconnect()
  })

  test(`each tries the lock ${ATTEMPTS} times; holders never overlap`, async () => {
    // The counter every holder increments, written by a cache of its own.
    const setup = new Cache({ ...keys, redis: { ...REDIS }, lockName: `setup-${RUN}` })
    try {
      await setup.save('counter', 0)
    } finally {
      await setup.close()
    }

    const holds = await raceForTheLock({ label: 'Redis contention', attempts: ATTEMPTS, cacheOptions: { ...keys, redis: { ...REDIS } }, run: RUN })
    const counter = JSON.parse(await raw.get(`${keys.cachePrefix}counter`)).value
    expect(counter).toBe(holds) // no increment lost to an overlapping holder
    expect(await raw.exists(`${keys.lockPrefix}mutex`)).toBe(0) // the last holder let go
  }, 60000)
})

describe('lock contention on the in-memory store: one process, two Cache objects', () => {
  const LOOPS_PER_CACHE = 8

  test(`${LOOPS_PER_CACHE * 2} async loops, ${ATTEMPTS} attempts each; holders never overlap`, async () => {
    const server = `contention-${RUN}`
    const options = { cachePrefix: 'c:', lockPrefix: 'l:', redis: { fake: true, name: server }, lockDuration: 10000 }
    const caches = [new Cache({ ...options, lockName: 'A' }), new Cache({ ...options, lockName: 'B' })]
    try {
      await caches[0].save('counter', 0)

      // Every loop has its own lock name, set on its cache right before each
      // call (the name is taken when the call is made), so two loops of one
      // cache are two contenders, not one holder sharing a lock.
      const as = (cache, name, method, ...args) => {
        cache.lockName = name
        return cache[method](...args)
      }

      async function loop (cache, name) {
        const result = { name, holds: 0, misses: 0, violations: [], errors: [] }
        for (let i = 0; i < ATTEMPTS; i++) {
          let got
          try {
            got = await as(cache, name, 'lock', 'mutex', 10000)
          } catch (error) {
            result.errors.push(`lock: ${error.code}`)
            continue
          }
          if (got !== true) {
            result.misses++
            // The memory store answers at once, so without this a loop that
            // misses would spin through its attempts before anyone else ran.
            await new Promise((resolve) => setImmediate(resolve))
            continue
          }
          result.holds++
          try {
            await as(cache, name, 'save', 'owner', name)
            await new Promise((resolve) => setImmediate(resolve)) // let the others run mid-hold
            const { value: owner } = await as(cache, name, 'load', 'owner')
            if (owner !== name) result.violations.push(`${name} hold #${i}: read owner ${owner}`)
            const { value: count } = await as(cache, name, 'load', 'counter')
            await new Promise((resolve) => setImmediate(resolve))
            await as(cache, name, 'save', 'counter', count + 1)
          } catch (error) {
            result.errors.push(`${name} hold #${i}: ${error.code} ${error.message}`)
          } finally {
            if ((await as(cache, name, 'unlock', 'mutex')) !== true) result.violations.push(`${name} hold #${i}: unlock refused`)
          }
          await new Promise((resolve) => setImmediate(resolve)) // give the others a go at the free lock
        }
        return result
      }

      const runs = []
      for (let n = 0; n < LOOPS_PER_CACHE; n++) {
        runs.push(loop(caches[0], `A${n}`), loop(caches[1], `B${n}`))
      }
      const results = await Promise.all(runs)

      for (const result of results) {
        expect(result.errors).toEqual([])
        expect(result.violations).toEqual([])
        expect(result.holds + result.misses).toBe(ATTEMPTS)
      }
      const holdsOf = (prefix) => results.filter((r) => r.name.startsWith(prefix)).reduce((sum, r) => sum + r.holds, 0)
      expect(holdsOf('A')).toBeGreaterThan(0)
      expect(holdsOf('B')).toBeGreaterThan(0)
      expect(results.reduce((sum, r) => sum + r.misses, 0)).toBeGreaterThan(0) // there was contention
      const { value: counter } = await caches[1].load('counter')
      expect(counter).toBe(holdsOf('A') + holdsOf('B'))
      expect(await caches[0].locks()).toEqual([])
      console.log(`in-memory contention: A loops held ${holdsOf('A')}, B loops held ${holdsOf('B')} of ${ATTEMPTS * LOOPS_PER_CACHE * 2} attempts`)
    } finally {
      for (const cache of caches) await cache.close()
    }
  }, 60000)
})
