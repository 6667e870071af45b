'use strict'

// The JavaScript face of the addon: checks and shifts optional arguments
// the way actionhero's cache accepts them, calls the native side, and hands
// each outcome on (lib/replies.js). Cache semantics live in Rust
// (src/cache.rs); actionhero's redis config shapes in lib/store-options.js.

const os = require('os')
const crypto = require('crypto')
const { AsyncResource } = require('async_hooks')

const { openCache, methods: native, memoryServerKeyCount } = require('./lib/native')
const { storeOptions } = require('./lib/store-options')
const { checkKey, optionalMs, checkMs, checkPrefix, checkLockName, checkCallback, checkFile, describe, toJson } = require('./lib/args')
const { single, noResult, loaded, popped, deliverSoon, settle, id, waitFor, onSettled, isError } = require('./lib/replies')
const { queueMicrotask } = require('./lib/node-timers')
const { callerNow } = require('./lib/caller-clock')

const DEFAULTS = {
  cachePrefix: 'actionhero:cache:',
  lockPrefix: 'actionhero:lock:',
  lockDuration: 10000,
  lockRetry: 100
}

function defaultLockName () {
  return `${os.hostname()}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`
}

class Cache {
  #handle // this cache's native side, which every `native` function takes first
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
    this.#handle = openCache({ store: storeOptions(options.redis), caller: this.#caller }, onSettled)
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
    native.setCaller(this.#handle, this.#caller)
  }

  save (key, value, expireTimeMS, next) {
    if (typeof expireTimeMS === 'function' && next === undefined) { next = expireTimeMS; expireTimeMS = undefined }
    checkKey(key)
    const ms = optionalMs('expireTimeMS', expireTimeMS)
    checkCallback(next)
    const json = toJson(value)
    if (isError(json)) return this.#answer(0, json, next, single, key)
    const callId = id()
    return this.#answer(callId, native.save(this.#handle, callId, key, json, ms, callerNow()), next, single, key)
  }

  load (key, options, next) {
    if (typeof options === 'function' && next === undefined) { next = options; options = undefined }
    checkKey(key)
    if (options !== undefined && options !== null && typeof options !== 'object') {
      throw new TypeError(`options must be an object, got ${describe(options)}`)
    }
    const ms = optionalMs('options.expireTimeMS', options?.expireTimeMS)
    const retryMs = optionalMs('options.retry', options?.retry)
    checkCallback(next)
    const callId = id()
    return this.#answer(callId, native.load(this.#handle, callId, key, ms, retryMs, callerNow()), next, loaded, key)
  }

  destroy (key, next) {
    checkKey(key)
    checkCallback(next)
    const callId = id()
    return this.#answer(callId, native.destroy(this.#handle, callId, key), next, single, key)
  }

  lock (key, expireTimeMS, next) {
    if (typeof expireTimeMS === 'function' && next === undefined) { next = expireTimeMS; expireTimeMS = undefined }
    checkKey(key)
    const ms = optionalMs('expireTimeMS', expireTimeMS)
    checkCallback(next)
    const callId = id()
    return this.#answer(callId, native.lock(this.#handle, callId, key, ms), next, single, key)
  }

  unlock (key, next) {
    checkKey(key)
    checkCallback(next)
    const callId = id()
    return this.#answer(callId, native.unlock(this.#handle, callId, key), next, single, key)
  }

  checkLock (key, retry, next) {
    if (typeof retry === 'function' && next === undefined) { next = retry; retry = undefined }
    checkKey(key)
    const retryMs = optionalMs('retry', retry)
    checkCallback(next)
    const callId = id()
    return this.#answer(callId, native.checkLock(this.#handle, callId, key, retryMs), next, single, key)
  }

  locks (next) { return this.#plain('locks', next) }
  keys (next) { return this.#plain('keys', next) }
  size (next) { return this.#plain('size', next) }
  clear (next) { return this.#plain('clear', next, noResult) }
  close (next) {
    const closed = this.#plain('close', next)
    this.#closing = true
    this.#releaseIfDone()
    return closed
  }

  dumpWrite (file, next) {
    checkFile(file)
    checkCallback(next)
    const callId = id()
    return this.#answer(callId, native.dumpWrite(this.#handle, callId, file), next, single, file)
  }

  dumpRead (file, next) {
    checkFile(file)
    checkCallback(next)
    const callId = id()
    return this.#answer(callId, native.dumpRead(this.#handle, callId, file, callerNow()), next, single, file)
  }

  push (key, item, next) {
    checkKey(key)
    checkCallback(next)
    const json = toJson(item)
    if (isError(json)) return this.#answer(0, json, next, noResult, key)
    const callId = id()
    return this.#answer(callId, native.push(this.#handle, callId, key, json), next, noResult, key)
  }

  pop (key, next) {
    checkKey(key)
    checkCallback(next)
    const callId = id()
    return this.#answer(callId, native.pop(this.#handle, callId, key), next, popped, key)
  }

  listLength (key, next) {
    checkKey(key)
    checkCallback(next)
    const callId = id()
    return this.#answer(callId, native.listLength(this.#handle, callId, key), next, single, key)
  }

  /**
   * The remaining lifetime in ms of a full store key (prefix included), as
   * Redis's PTTL answers it: -2 when missing, -1 when it does not expire.
   */
  pttl (storeKey, next) {
    checkKey(storeKey)
    checkCallback(next)
    const callId = id()
    return this.#answer(callId, native.pttl(this.#handle, callId, storeKey), next, single, storeKey)
  }

  #plain (method, next, shape = single) {
    checkCallback(next)
    const callId = id()
    return this.#answer(callId, native[method](this.#handle, callId), next, shape, undefined)
  }

  /**
   * `reply` is the native outcome (a result or an Error), or undefined when
   * the call is still under way: its outcome then comes to `onSettled` under
   * `callId`. Callbacks run on a later tick, outside any Promise chain, so
   * that a callback never runs before its method returns and a throwing
   * callback surfaces as an uncaught exception, as with Node's own APIs.
   */
  #answer (callId, reply, next, shape, key) {
    if (reply !== undefined) {
      if (next === undefined) return new Promise((resolve, reject) => settle(reply, shape, key, this.localize, resolve, reject))
      deliverSoon(reply, next, shape, this.localize)
      return undefined
    }
    this.#pending++
    this.#flushSoon()
    const done = () => {
      this.#pending--
      this.#releaseIfDone()
    }
    if (next === undefined) {
      return new Promise((resolve, reject) => waitFor(callId, (outcome) => {
        done()
        settle(outcome, shape, key, this.localize, resolve, reject)
      }))
    }
    // The callback runs in its caller's async context (AsyncLocalStorage),
    // as it does with actionhero's JS cache, not in that of the batch of
    // replies it came back in. (A resource destroyed by hand: one that waits
    // for the GC to destroy it cost 12 µs to make.)
    const scope = new AsyncResource('ActionheroNativeCacheCall', { requireManualDestroy: true })
    waitFor(callId, (outcome) => {
      done()
      scope.runInAsyncScope(deliverSoon, null, outcome, next, shape, this.localize)
      scope.emitDestroy()
    })
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
      native.flush(this.#handle)
    })
  }

  /** After close, once no call is under way, the reply channel goes too. */
  #releaseIfDone () {
    if (this.#closing && this.#pending === 0) native.release(this.#handle)
  }
}

/** Whether a cache built with this `redis` option keeps its data in memory (fakeredis configs do). */
function usesMemoryStore (redis) {
  return 'memory' in storeOptions(redis)
}

module.exports = { Cache, usesMemoryStore, memoryServerKeyCount }
