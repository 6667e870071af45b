'use strict'

// What an ioredis user expects of a connection, on a redis-server of the
// test's own: scripts flushed from Redis are loaded again, and after the
// server goes away and comes back the cache reconnects by itself, failing
// calls with an error (never a hang) while it is gone.

const Redis = require('ioredis')
const { Cache } = require('..')
const { startRedis } = require('./support/redis-server')
const { failsWithin } = require('./support/harness')

const TIMEOUTS = { connectTimeoutMS: 500, commandTimeoutMS: 500 }

let server
let cache

beforeEach(async () => {
  server = await startRedis()
  cache = new Cache({ redis: { host: '127.0.0.1', port: server.port, ...TIMEOUTS }, lockName: 'me' })
})

afterEach(async () => {
  await cache.close()
  await server.stop()
})

test('scripts flushed from Redis (SCRIPT FLUSH) are loaded again on NOSCRIPT', async () => {
  expect(await cache.save('k', 1)).toBe(true)
  const raw = new Redis({ port: server.port, lazyConnect: true })
  const cachedScripts = async () => Number(/number_of_cached_scripts:(\d+)/.exec(await raw.info('memory'))[1])
  await raw.connect()
  try {
    expect(await cachedScripts()).toBeGreaterThan(0)
    await raw.script('FLUSH')
    expect(await cachedScripts()).toBe(0)
  } finally {
    raw.disconnect()
  }
  expect(await cache.save('k', 2)).toBe(true)
  expect((await cache.load('k')).value).toBe(2)
  expect(await cache.lock('k')).toBe(true)
  expect(await cache.destroy('k')).toBe(true)
})

test('a server that goes away fails calls with an error, and the cache reconnects when it is back', async () => {
  expect(await cache.save('k', 'before')).toBe(true)
  const { port } = server
  await server.stop()
  const started = Date.now()
  const error = await cache.load('k').then(() => null, (e) => e)
  expect(Date.now() - started).toBeLessThanOrEqual(failsWithin(TIMEOUTS))
  expect(error).toBeInstanceOf(Error)
  expect(['REDIS_CONNECTION', 'REDIS_TIMEOUT']).toContain(error.code)

  // The same port again: an empty server (it keeps nothing on disk).
  server = await startRedis({ port })
  let saved = null
  for (let attempt = 0; attempt < 20 && saved !== true; attempt++) {
    saved = await cache.save('k', 'after').catch(() => null)
    if (saved !== true) await new Promise((resolve) => setTimeout(resolve, 250))
  }
  expect(saved).toBe(true)
  expect((await cache.load('k')).value).toBe('after')
})
