'use strict'

// The JavaScript face of the addon: loads the native module, checks and
// shifts optional arguments the way actionhero's cache accepts them, and
// hands each outcome to a Node-style callback or a Promise. Cache semantics
// live in Rust (src/cache.rs).

const fs = require('fs')
const os = require('os')
const path = require('path')
const crypto = require('crypto')
// The addon's errors are made in Node's main realm, where `instanceof Error`
// of another realm (a jest test's) does not see them; this does.
const { isNativeError } = require('util').types

const { storeOptions } = require('./lib/store-options')

const { NativeCache, memoryServerKeyCount } = loadNative()

const DEFAULTS = {
  cachePrefix: 'actionhero:cache:',
  lockPrefix: 'actionhero:lock:',
  lockDuration: 10000,
  lockRetry: 100
}

/** The binary built for this platform (the napi-rs naming, as `npm run build` writes it). */
function loadNative () {
  const { platform, arch } = process
  const abis = { linux: ['-gnu', '-musl'], win32: ['-msvc'] }[platform] || ['']
  const files = abis.map((abi) => path.join(__dirname, `actionhero-native-cache.${platform}-${arch}${abi}.node`))
  const file = files.find((candidate) => fs.existsSync(candidate))
  if (file === undefined) {
    throw new Error(`actionhero-native-cache has no binary for ${platform}-${arch}: none of ${files.join(', ')} (build it with \`npm run build\`)`)
  }
  return require(file)
}

function defaultLockName () {
  return `${os.hostname()}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`
}

// Argument checks: bad arguments throw at once, as Node's own APIs do.

function checkKey (key) {
  if (typeof key !== 'string' || key.length === 0) {
    throw new TypeError(`key must be a non-empty string, got ${describe(key)}`)
  }
}

/** A time in ms that may be left out (undefined or null, or false for retry). */
function optionalMs (name, value) {
  if (value === undefined || value === null || value === false) return undefined
  return checkMs(name, value)
}

// JavaScript's Date range: beyond any real lifetime, and no clock or Redis
// arithmetic on it overflows.
const MAX_MS = 8.64e15

function checkMs (name, value) {
  if (typeof value !== 'number' || !Number.isFinite(value) || Math.abs(value) > MAX_MS) {
    throw new TypeError(`${name} must be a finite number of milliseconds within ±${MAX_MS}, got ${describe(value)}`)
  }
  return value
}

function checkPrefix (name, prefix) {
  if (typeof prefix !== 'string') throw new TypeError(`${name} must be a string, got ${describe(prefix)}`)
  return prefix
}

function checkLockName (name) {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(`lockName must be a non-empty string, got ${describe(name)}`)
  }
  return name
}

function checkCallback (next) {
  if (next !== undefined && typeof next !== 'function') {
    throw new TypeError(`the callback must be a function, got ${describe(next)}`)
  }
}

function checkFile (file) {
  if (typeof file !== 'string' || file.length === 0) {
    throw new TypeError(`file must be a non-empty string, got ${describe(file)}`)
  }
}

function describe (value) {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  return typeof value === 'function' ? 'a function' : String(value)
}

/**
 * A value's JSON text, undefined for a value JSON.stringify leaves out of
 * an object (undefined, a function, a symbol: actionhero's envelope then
 * has no `value`), or an Error when JSON cannot carry it (BigInt, a cycle).
 */
function toJson (value) {
  try {
    return JSON.stringify(value)
  } catch (error) {
    return withCode(new Error(`value cannot be stored as JSON: ${error.message}`), 'VALUE_NOT_SERIALIZABLE')
  }
}

function withCode (error, code) {
  error.code = code
  return error
}

// How each call's result reaches the caller.
const single = { callback: (result) => [result], promise: (result) => result, errorResults: [] }
// push and clear: actionhero 16 calls back with the error alone; 18+ resolves true.
const noResult = { callback: () => [], promise: (result) => result, errorResults: [] }
// load answers the JSON array [expireTimestamp, createdAt, lastReadAt, value],
// without the value when the entry has none (it reads as undefined).
const loaded = {
  callback: (json) => {
    const [expireTimestamp, createdAt, lastReadAt, value] = JSON.parse(json)
    return [value, expireTimestamp, createdAt, lastReadAt]
  },
  // As actionhero 18+ resolves it.
  promise: (json, key) => {
    const [expireTimestamp, createdAt, lastReadAt, value] = JSON.parse(json)
    return { key, value, expireTimestamp, createdAt, lastReadAt }
  },
  errorResults: [null, null, null, null]
}
// pop answers the stored item, `{"data": …}`, or null for an empty list.
const parseItem = (item) => (item === null ? undefined : JSON.parse(item).data)
const popped = { callback: (item) => [parseItem(item)], promise: parseItem, errorResults: [] }

// Calls still under way on the runtime, by id, across all caches. Ids and
// the dispatcher are module-wide so that no native object holds a reference
// back to its Cache (which would keep both from ever being collected).
const waiting = new Map()
let lastId = 0
let keepAlive = null

function id () {
  lastId = (lastId + 1) >>> 0 // the native side takes a u32
  return lastId
}

function waitFor (callId, resume) {
  waiting.set(callId, resume)
  // The native side does not hold the event loop open: a ref'd timer does,
  // while calls are under way, as a pending socket would.
  if (keepAlive === null) keepAlive = setInterval(() => {}, 2 ** 31 - 1)
  else if (waiting.size === 1) keepAlive.ref()
}

/** The native side hands over replies in batches: ids[i] answered outcomes[i]. */
function onSettled (ids, outcomes) {
  for (let i = 0; i < ids.length; i++) {
    const resume = waiting.get(ids[i])
    if (resume === undefined) continue
    waiting.delete(ids[i])
    resume(outcomes[i])
  }
  if (waiting.size === 0) keepAlive.unref()
}

class Cache {
  #native
  #pending = 0 // this cache's calls under way
  #flushQueued = false
  #closing = false
  #caller

  constructor (options = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object')
    this.#caller = {
      cachePrefix: String(options.cachePrefix ?? DEFAULTS.cachePrefix),
      lockPrefix: String(options.lockPrefix ?? DEFAULTS.lockPrefix),
      lockName: checkLockName(options.lockName ?? defaultLockName()),
      lockDuration: checkMs('lockDuration', options.lockDuration ?? DEFAULTS.lockDuration),
      lockRetry: checkMs('lockRetry', options.lockRetry ?? DEFAULTS.lockRetry)
    }
    // Error messages go through this when set (actionhero's api.i18n.localize).
    this.localize = options.localize
    this.#native = new NativeCache({ store: storeOptions(options.redis), caller: this.#caller }, onSettled)
  }

  // Writable, and in force from the next call: actionhero code changes them
  // between calls (api.cache.lockName = 'otherId').
  /** actionhero's name for the entry key prefix. */
  get redisPrefix () { return this.#caller.cachePrefix }
  set redisPrefix (prefix) { this.#setCaller({ cachePrefix: checkPrefix('redisPrefix', prefix) }) }
  get cachePrefix () { return this.#caller.cachePrefix }
  set cachePrefix (prefix) { this.#setCaller({ cachePrefix: checkPrefix('cachePrefix', prefix) }) }
  get lockPrefix () { return this.#caller.lockPrefix }
  set lockPrefix (prefix) { this.#setCaller({ lockPrefix: checkPrefix('lockPrefix', prefix) }) }
  get lockName () { return this.#caller.lockName }
  set lockName (name) { this.#setCaller({ lockName: checkLockName(name) }) }
  get lockDuration () { return this.#caller.lockDuration }
  set lockDuration (ms) { this.#setCaller({ lockDuration: checkMs('lockDuration', ms) }) }
  get lockRetry () { return this.#caller.lockRetry }
  set lockRetry (ms) { this.#setCaller({ lockRetry: checkMs('lockRetry', ms) }) }

  #setCaller (change) {
    this.#caller = { ...this.#caller, ...change }
    this.#native.setCaller(this.#caller)
  }

  save (key, value, expireTimeMS, next) {
    if (typeof expireTimeMS === 'function' && next === undefined) [expireTimeMS, next] = [undefined, expireTimeMS]
    checkKey(key)
    const ms = optionalMs('expireTimeMS', expireTimeMS)
    checkCallback(next)
    const json = toJson(value)
    if (isNativeError(json)) return this.#reply(0, json, next, single)
    return this.#call(single, next, 'save', key, json, ms)
  }

  load (key, options, next) {
    if (typeof options === 'function' && next === undefined) [options, next] = [undefined, options]
    checkKey(key)
    if (options !== undefined && options !== null && typeof options !== 'object') {
      throw new TypeError(`options must be an object, got ${describe(options)}`)
    }
    const { expireTimeMS, retry } = options || {}
    const ms = optionalMs('options.expireTimeMS', expireTimeMS)
    const retryMs = optionalMs('options.retry', retry)
    checkCallback(next)
    return this.#call(loaded, next, 'load', key, ms, retryMs)
  }

  destroy (key, next) {
    checkKey(key)
    checkCallback(next)
    return this.#call(single, next, 'destroy', key)
  }

  lock (key, expireTimeMS, next) {
    if (typeof expireTimeMS === 'function' && next === undefined) [expireTimeMS, next] = [undefined, expireTimeMS]
    checkKey(key)
    const ms = optionalMs('expireTimeMS', expireTimeMS)
    checkCallback(next)
    return this.#call(single, next, 'lock', key, ms)
  }

  unlock (key, next) {
    checkKey(key)
    checkCallback(next)
    return this.#call(single, next, 'unlock', key)
  }

  checkLock (key, retry, next) {
    if (typeof retry === 'function' && next === undefined) [retry, next] = [undefined, retry]
    checkKey(key)
    const retryMs = optionalMs('retry', retry)
    checkCallback(next)
    return this.#call(single, next, 'checkLock', key, retryMs)
  }

  locks (next) { return this.#plain('locks', next) }
  keys (next) { return this.#plain('keys', next) }
  size (next) { return this.#plain('size', next) }
  clear (next) {
    checkCallback(next)
    return this.#call(noResult, next, 'clear')
  }
  close (next) {
    checkCallback(next)
    this.#closing = true
    const closed = this.#plain('close', next)
    this.#releaseIfDone()
    return closed
  }

  dumpWrite (file, next) {
    checkFile(file)
    checkCallback(next)
    return this.#call(single, next, 'dumpWrite', file)
  }

  dumpRead (file, next) {
    checkFile(file)
    checkCallback(next)
    return this.#call(single, next, 'dumpRead', file)
  }

  push (key, item, next) {
    checkKey(key)
    checkCallback(next)
    const json = toJson(item)
    if (isNativeError(json)) return this.#reply(0, json, next, noResult)
    return this.#call(noResult, next, 'push', key, json)
  }

  pop (key, next) {
    checkKey(key)
    checkCallback(next)
    return this.#call(popped, next, 'pop', key)
  }

  listLength (key, next) {
    checkKey(key)
    checkCallback(next)
    return this.#call(single, next, 'listLength', key)
  }

  /**
   * The remaining lifetime in ms of a full store key (prefix included), as
   * Redis's PTTL answers it: -2 when missing, -1 when it does not expire.
   */
  pttl (storeKey, next) {
    checkKey(storeKey)
    checkCallback(next)
    return this.#call(single, next, 'pttl', storeKey)
  }

  #plain (method, next) {
    checkCallback(next)
    return this.#call(single, next, method)
  }

  /** Calls the native method with a fresh call id and hands on its outcome. */
  #call (shape, next, method, ...args) {
    const callId = id()
    // args[0] is the key, for the methods that take one.
    return this.#reply(callId, this.#native[method](callId, ...args), next, shape, args[0])
  }

  /**
   * `reply` is the native outcome (a result or an Error), or undefined when
   * the call is still under way: its outcome then comes to `onSettled` under
   * `callId`. Callbacks run on a later tick, outside any Promise chain, so
   * that a callback never runs before its method returns and a throwing
   * callback surfaces as an uncaught exception, as with Node's own APIs.
   */
  #reply (callId, reply, next, shape, key) {
    const settle = (outcome, resolve, reject) => {
      if (isNativeError(outcome)) reject(this.#localized(outcome))
      else resolve(shape.promise(outcome, key))
    }
    const deliver = (outcome) => {
      if (isNativeError(outcome)) next(this.#localized(outcome), ...shape.errorResults)
      else next(null, ...shape.callback(outcome))
    }
    if (reply !== undefined) {
      if (next === undefined) return new Promise((resolve, reject) => settle(reply, resolve, reject))
      process.nextTick(deliver, reply)
      return undefined
    }
    this.#pending++
    this.#flushSoon()
    const done = () => {
      this.#pending--
      this.#releaseIfDone()
    }
    if (next === undefined) {
      return new Promise((resolve, reject) => waitFor(callId, (outcome) => { done(); settle(outcome, resolve, reject) }))
    }
    waitFor(callId, (outcome) => { done(); process.nextTick(deliver, outcome) })
    return undefined
  }

  /**
   * Calls that wait are queued on the native side and handed to its runtime
   * together once the current tick's code is done: one wake-up of the
   * runtime for all of them.
   */
  #flushSoon () {
    if (this.#flushQueued) return
    this.#flushQueued = true
    queueMicrotask(() => {
      this.#flushQueued = false
      this.#native.flush()
    })
  }

  /** After close, once no call is under way, the reply channel goes too. */
  #releaseIfDone () {
    if (this.#closing && this.#pending === 0) this.#native.release()
  }

  /**
   * The native error as an Error of this realm, so that `instanceof Error`
   * holds where callers test it (jest runs each test file in a realm of its
   * own), with its message localized.
   */
  #localized ({ message, code }) {
    const error = new Error(typeof this.localize === 'function' ? this.localize(message) : message)
    error.code = code
    return error
  }
}

/** Whether a cache built with this `redis` option keeps its data in memory (fakeredis configs do). */
function usesMemoryStore (redis) {
  return 'memory' in storeOptions(redis)
}

module.exports = { Cache, usesMemoryStore, memoryServerKeyCount }
