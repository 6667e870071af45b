'use strict'

// What the behaviour suites (cache-*.test.js) share: building caches that
// are closed after each test, waiting for callbacks, checking errors.

const fs = require('fs')
const os = require('os')
const path = require('path')
const timers = require('timers')
const { spawnSync } = require('child_process')
const Redis = require('ioredis')
const { Cache } = require('../..')
const { stores, REDIS } = require('./stores')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** Sleeps until `ms` after `since` (a Date.now() value). */
const sleepUntil = (since, ms) => sleep(Math.max(0, since + ms - Date.now()))

/**
 * When a call to a Redis that does not answer must have failed, with these
 * timeouts: the store's deadline (connect + command) and room for a busy
 * machine. A bound that catches a hang, not a speed requirement.
 */
const failsWithin = ({ connectTimeoutMS, commandTimeoutMS }) => connectTimeoutMS + commandTimeoutMS + 250

/**
 * `promise`, or a failure with `message` once `ms` have passed: a guard
 * that turns a hang into a failure, not a speed requirement. It keeps time
 * with Node's own timers, which jest's fake timers leave alone.
 */
function within (promise, ms, message) {
  return new Promise((resolve, reject) => {
    const guard = timers.setTimeout(() => reject(new Error(message)), ms)
    promise.then(resolve, reject).finally(() => timers.clearTimeout(guard))
  })
}

/** Calls `invoke(callback)` and resolves with the arguments of the callback (guarded as `within` does). */
function viaCallback (invoke, guardMs = 4000) {
  return within(new Promise((resolve) => invoke((...args) => resolve(args))), guardMs, `the callback was not called within ${guardMs} ms`)
}

/** An Error of the test's own realm, with this message and code (each when given). */
function expectCacheError (error, message, code) {
  expect(error).toBeInstanceOf(Error)
  if (message !== undefined) expect(error.message).toBe(message)
  if (code !== undefined) expect(error.code).toBe(code)
}

function rejectionOf (promise) {
  return promise.then(
    (result) => { throw new Error(`expected a rejection, got ${JSON.stringify(result)}`) },
    (error) => error
  )
}

/** load through the callback answers this error and four nulls. */
async function expectLoadError (cache, key, message, code) {
  const args = await viaCallback((done) => cache.load(key, done))
  expect(args).toHaveLength(5)
  expectCacheError(args[0], message, code)
  expect(args.slice(1)).toEqual([null, null, null, null])
}

/** load through the promise rejects with this error. */
async function expectLoadRejects (cache, key, message, code) {
  expectCacheError(await rejectionOf(cache.load(key)), message, code)
}

/**
 * Paths of files in a directory of the test file's own, removed after all
 * its tests: the function it answers names a new one, `<n>-<name>.json`,
 * each time.
 */
function tempFiles (label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
  let count = 0
  return (name) => path.join(dir, `${++count}-${name}.json`)
}

/** A plain load of `key` ends its lifetime exactly at its expireTimestamp; `pttl()` reads what is left. */
async function expectLoadEndsLifetime (cache, key, pttl) {
  const before = Date.now()
  const { expireTimestamp } = await cache.load(key)
  const left = await pttl()
  const after = Date.now()
  expect(left).toBeLessThanOrEqual(expireTimestamp - before)
  expect(left).toBeGreaterThanOrEqual(expireTimestamp - after - 1)
}

/**
 * Per describe block: `make(tag, extra)` builds a cache on `store` (caches
 * with the same tag share data), closed after each test; `tag()` gives a
 * fresh tag.
 */
function harness (store, file) {
  let caches = []
  let count = 0
  afterEach(async () => {
    const open = caches
    caches = []
    // A close that never settles fails the test here, not as a hook timeout.
    await Promise.all(open.map((cache) => within(cache.close(), 5000, 'close() did not settle within 5000 ms')))
  })
  return {
    tag: () => `${file}-${store.name}-${++count}`,
    make (tag, extra = {}) {
      const cache = new Cache({ ...store.options(tag), lockDuration: 10000, lockRetry: 100, ...extra })
      caches.push(cache)
      return cache
    }
  }
}

/** For blocks that look at Redis itself: a harness on the Redis store, and a raw client. */
function redisHarness (file) {
  const redis = new Redis({ ...REDIS, lazyConnect: true })
  afterAll(() => redis.disconnect())
  return { ...harness(stores.find((store) => store.name === 'redis'), file), redis }
}

const PACKAGE_DIR = path.join(__dirname, '..', '..')

/**
 * Runs `body` in a fresh Node process with `cache` built from `options`
 * (and `Cache` in scope); answers spawnSync's result. For calls that could
 * hang or take the process down: jest survives and sees what happened.
 */
function runInChild (options, body) {
  const script = [
    `const { Cache } = require(${JSON.stringify(PACKAGE_DIR)})`,
    `const cache = new Cache(${JSON.stringify(options)})`,
    body
  ].join('\n')
  return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 15000 })
}

module.exports = { sleep, sleepUntil, failsWithin, within, viaCallback, expectCacheError, rejectionOf, expectLoadError, expectLoadRejects, tempFiles, expectLoadEndsLifetime, harness, redisHarness, runInChild }
