'use strict'

// Contention with writes: four contenders, two caches each, increment a few
// shared counters under their locks for a few seconds while the other cache
// of each contender makes stray saves and destroys under those locks (see
// support/write-contender.js). On Redis the contenders are processes; on the
// in-memory store they are worker threads of this process sharing one named
// in-memory server, which the addon keeps per process.
//
// No increment may be lost, no stray write may land, and every call must be
// answered exactly once.

const path = require('path')

const { Cache } = require('..')
const { prefixes, cleanupRedis, REDIS, RUN } = require('./support/stores')
const { startContender } = require('./support/contenders')

const CONTENDER = path.join(__dirname, 'support', 'write-contender.js')
const CONTENDERS = 4
const COUNTERS = ['counter-0', 'counter-1', 'counter-2']
const DURATION_MS = 4000
// Only turns a call that is never answered into a failure instead of a
// hang: Redis's default connect and command timeouts (5 s each), plus 5 s.
const LOST_AFTER_MS = 15000

/**
 * Sets the counters to 0 through `setup`, runs the contenders with
 * `cacheOptions` and answers their results and the final counters.
 */
async function runContenders (setup, cacheOptions, { thread }) {
  for (const counter of COUNTERS) await setup.save(counter, { count: 0, holder: 'setup' })

  const contenders = Array.from({ length: CONTENDERS }, (_, n) => startContender(CONTENDER, {
    name: `w${n}-${RUN}`, counters: COUNTERS, durationMs: DURATION_MS, lostAfterMs: LOST_AFTER_MS, cacheOptions
  }, { thread }))
  try {
    await Promise.all(contenders.map((c) => c.ready))
    for (const contender of contenders) contender.go()
    const results = await Promise.all(contenders.map((c) => c.done))
    const finals = {}
    for (const counter of COUNTERS) finals[counter] = (await setup.load(counter)).value.count
    return { results, finals }
  } finally {
    for (const contender of contenders) contender.stop()
  }
}

function expectNoLostUpdateNorViolation ({ results, finals }, label) {
  const sum = (pick) => results.reduce((total, result) => total + pick(result), 0)
  for (const result of results) {
    expect(result.fatal).toBeUndefined()
    expect(result.errors).toEqual([])
    expect(result.violations).toEqual([])
    expect(result.answered).toBe(result.calls) // every call answered...
    expect(result.answeredTwice).toBe(0) // ...once
    expect(result.holds).toBeGreaterThan(0)
    expect(result.straysRefused).toBe(2 * result.holds)
    // The contenders share one store: each read counters the others wrote.
    expect(result.readOthersWrites).toBeGreaterThan(0)
  }
  for (const counter of COUNTERS) expect(finals[counter]).toBe(sum((r) => r.increments[counter]))
  expect(sum((r) => r.misses)).toBeGreaterThan(0) // there was contention

  const increments = sum((r) => Object.values(r.increments).reduce((a, b) => a + b, 0))
  console.log(`${label}: ${sum((r) => r.calls)} calls made, ${sum((r) => r.answered)} answered, ` +
    `${sum((r) => r.calls - r.answered)} lost, ${sum((r) => r.answeredTwice)} answered twice; ` +
    `${sum((r) => r.holds)} holds, ${sum((r) => r.misses)} lock misses, ${increments} increments ` +
    `(final counters ${JSON.stringify(finals)}), ${sum((r) => r.straysRefused)} stray writes refused, ` +
    `${sum((r) => r.violationCount)} violations, ${sum((r) => r.errorCount)} errors`)
}

describe('contention with writes on Redis: four processes, two caches each', () => {
  const keys = prefixes('contention-writes')
  afterAll(() => cleanupRedis())

  test(`${DURATION_MS} ms of lock, load, save + 1, unlock, with stray writes; nothing lost, nothing lands`, async () => {
    const setup = new Cache({ ...keys, redis: { ...REDIS }, lockName: `setup-${RUN}` })
    try {
      const outcome = await runContenders(setup, { ...keys, redis: { ...REDIS } }, { thread: false })
      expectNoLostUpdateNorViolation(outcome, 'Redis, 4 processes')
      expect(await setup.locks()).toEqual([]) // every holder let go
    } finally {
      await setup.close()
    }
  }, 60000)
})

describe('contention with writes in memory: four worker threads, two caches each, one named server', () => {
  test(`${DURATION_MS} ms of lock, load, save + 1, unlock, with stray writes; nothing lost, nothing lands`, async () => {
    const options = { cachePrefix: 'c:', lockPrefix: 'l:', redis: { fake: true, name: `contention-writes-${RUN}` } }
    const setup = new Cache({ ...options, lockName: `setup-${RUN}` })
    try {
      const outcome = await runContenders(setup, options, { thread: true })
      // That the threads share the server shows in readOthersWrites, and in
      // the counters this thread set up and reads back.
      expectNoLostUpdateNorViolation(outcome, 'memory, 4 worker threads')
      expect(await setup.locks()).toEqual([])
    } finally {
      await setup.close()
    }
  }, 60000)
})
