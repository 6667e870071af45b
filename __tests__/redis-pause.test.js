'use strict'

// A Redis that stops answering for a while (SIGSTOP: the connection stays
// open, nothing comes back) and then answers again, late replies included.
// While it is paused each load must fail with REDIS_TIMEOUT in bounded
// time; afterwards each load must answer its own key's value: a late reply
// to a call given up on must never reach another call's callback. Every
// callback is called exactly once.

const { Cache } = require('..')
const { startRedis } = require('./support/redis-server')
const { sleep, failsWithin } = require('./support/harness')

const CONNECT_TIMEOUT_MS = 300
const COMMAND_TIMEOUT_MS = 300
// The bound asked of a call to a paused server.
const TIMEOUT_BUDGET_MS = failsWithin({ connectTimeoutMS: CONNECT_TIMEOUT_MS, commandTimeoutMS: COMMAND_TIMEOUT_MS })
const KEYS = Array.from({ length: 60 }, (_, n) => `key-${n}`)
const valueOf = (key) => ({ key, text: `the value of ${key}` })

let server
let cache

beforeAll(async () => {
  server = await startRedis()
  cache = new Cache({
    redis: { host: '127.0.0.1', port: server.port, connectTimeoutMS: CONNECT_TIMEOUT_MS, commandTimeoutMS: COMMAND_TIMEOUT_MS },
    lockName: 'pause-test'
  })
})

afterAll(async () => {
  await cache.close()
  await server.stop()
})

// Every load made, with how many times its callback was called.
const calls = []

/** load through its callback, timed; answers { key, error, value, ms }. */
function timedLoad (key) {
  const record = { key, answers: 0 }
  calls.push(record)
  return new Promise((resolve) => {
    const started = Date.now()
    cache.load(key, (error, value) => {
      if (++record.answers === 1) resolve({ key, error, value, ms: Date.now() - started })
    })
  })
}

/** Loads of all `keys` at once. */
const wave = (keys) => Promise.all(keys.map(timedLoad))

/** Each load answered its own key's value. */
function expectOwnValues (outcomes) {
  for (const { key, error, value } of outcomes) {
    expect({ key, error: error && `${error.code} ${error.message}`, value }).toEqual({ key, error: null, value: valueOf(key) })
  }
}

test('loads time out while Redis is paused, and afterwards each load gets its own value', async () => {
  await Promise.all(KEYS.map((key) => cache.save(key, valueOf(key))))
  expectOwnValues(await wave(KEYS))

  server.pause()
  const pausedAt = Date.now()
  let during
  try {
    // Waves at several moments of the pause, each a different slice of keys.
    const waves = []
    for (let n = 0; n < 3; n++) {
      waves.push(wave(KEYS.slice(n * 20, n * 20 + 20)))
      await sleep(COMMAND_TIMEOUT_MS / 2)
    }
    during = (await Promise.all(waves)).flat()
  } finally {
    server.resume()
  }
  const pausedMs = Date.now() - pausedAt
  expect(pausedMs).toBeGreaterThan(COMMAND_TIMEOUT_MS)
  for (const { key, error, ms } of during) {
    expect({ key, code: error && error.code }).toEqual({ key, code: 'REDIS_TIMEOUT' })
    expect(ms).toBeLessThanOrEqual(TIMEOUT_BUDGET_MS)
  }

  // Right as the server answers again (its late replies to the calls
  // above come now, on the same connection), then twice more.
  expectOwnValues(await wave([...KEYS].reverse()))
  expectOwnValues(await wave(KEYS))
  await sleep(500)
  expectOwnValues(await wave(KEYS))

  // A callback called twice would have been called by now.
  await sleep(TIMEOUT_BUDGET_MS)
  expect(calls.filter((call) => call.answers !== 1)).toEqual([])
  console.log(`redis pause: ${calls.length} loads, ${during.length} during the ${pausedMs} ms pause, slowest timeout ${Math.max(...during.map((o) => o.ms))} ms`)
}, 30000)
