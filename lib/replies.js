'use strict'

// How a call's outcome reaches its caller: a Node-style callback on a later
// tick, or a Promise. Calls that wait for the runtime are kept here by id
// until their reply comes back in a batch.

// The addon's errors are made in Node's main realm, where `instanceof Error`
// of another realm (a jest test's) does not see them; this does.
const { isNativeError } = require('util').types
const { performance } = require('perf_hooks')
const { nextTick, setInterval, setImmediate } = require('./node-timers')
const { yieldThread } = require('./native')

/** Whether an outcome is an Error; the typeof test spares most replies (true, a string) a call into C++. */
const isError = (outcome) => typeof outcome === 'object' && outcome !== null && isNativeError(outcome)

// Each shape says how a result is passed on: `deliver(next, result)`,
// `resolve(result, key)` for a Promise, `fail(next, error)`.
const single = {
  deliver: (next, result) => next(null, result),
  resolve: (result) => result,
  fail: (next, error) => next(error)
}
// push and clear: actionhero 16 calls back with the error alone; 18+ resolves true.
const noResult = { deliver: (next) => next(null), resolve: single.resolve, fail: single.fail }
// load answers the JSON array [expireTimestamp, createdAt, lastReadAt, value],
// without the value when the entry has none (it reads as undefined).
const loaded = {
  deliver: (next, json) => {
    const [expireTimestamp, createdAt, lastReadAt, value] = JSON.parse(json)
    next(null, value, expireTimestamp, createdAt, lastReadAt)
  },
  // As actionhero 18+ resolves it.
  resolve: (json, key) => {
    const [expireTimestamp, createdAt, lastReadAt, value] = JSON.parse(json)
    return { key, value, expireTimestamp, createdAt, lastReadAt }
  },
  fail: (next, error) => next(error, null, null, null, null)
}
// pop answers the stored item, `{"data": …}`, or null for an empty list.
const parseItem = (item) => (item === null ? undefined : JSON.parse(item).data)
const popped = { deliver: (next, item) => next(null, parseItem(item)), resolve: parseItem, fail: single.fail }

/**
 * The native error as an Error of this realm, so that `instanceof Error`
 * holds where callers test it (jest runs each test file in a realm of its
 * own), its message through `localize` when that is a function.
 */
function localized ({ message, code }, localize) {
  const error = new Error(typeof localize === 'function' ? localize(message) : message)
  error.code = code
  return error
}

/**
 * Hands `outcome` to the callback on a later tick (see Cache#answer). A
 * result goes with two arguments and no more (process.nextTick copies four
 * or more through a loop): the callback's own for a single result (no
 * deliver in between: in-memory lock+unlock ran 3 to 5% faster), else the
 * shape's deliver and the callback.
 */
function deliverSoon (outcome, next, shape, localize) {
  if (isError(outcome)) nextTick(fail, outcome, next, shape, localize)
  else if (shape === single) nextTick(next, null, outcome)
  else nextTick(shape.deliver, next, outcome)
}

function fail (error, next, shape, localize) {
  shape.fail(next, localized(error, localize))
}

function settle (outcome, shape, key, localize, resolve, reject) {
  if (isError(outcome)) reject(localized(outcome, localize))
  else resolve(shape.resolve(outcome, key))
}

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

// A reply wakes Node's thread through a thread-safe function: when the
// event loop sleeps, the kernel wakes it, which cost a call one at a time
// 10 to 25 µs on the 2-core virtual machines here, more than Redis's own
// work for it. So while one or two calls are under way the loop keeps
// turning (a setImmediate, which makes it poll without sleeping; timers
// and I/O run as ever) for up to TURN_MS after the last call, as the
// runtime's thread spins on its side (src/runtime.rs), and each turn
// yields the core to any thread waiting for one (without that, one save
// at a time fell to a third: the two spinners held both cores and Redis
// waited for a time slice). Only while replies come back within TURN_MS:
// with a Redis farther away, turning would only burn the CPU. With more
// calls under way, replies come often enough.
const TURN_MS = 0.25
const TURN_IN_FLIGHT = 2
let turnUntil = 0 // while the loop turns, when it stops; 0 when it does not
let lastFewCallAt = 0 // the last call made with at most TURN_IN_FLIGHT under way
let repliesComeSoon = true

function turnWhileWaiting () {
  if (waiting.size > TURN_IN_FLIGHT) return
  lastFewCallAt = performance.now()
  if (!repliesComeSoon) return
  const idle = turnUntil === 0
  turnUntil = lastFewCallAt + TURN_MS
  if (idle) setImmediate(keepTurning)
}

function keepTurning () {
  if (waiting.size === 0 || waiting.size > TURN_IN_FLIGHT || performance.now() > turnUntil) {
    turnUntil = 0
    return
  }
  yieldThread()
  setImmediate(keepTurning)
}

function waitFor (callId, resume) {
  waiting.set(callId, resume)
  // The native side does not hold the event loop open: a ref'd timer does,
  // while calls are under way, as a pending socket would.
  if (keepAlive === null) keepAlive = setInterval(() => {}, 2 ** 31 - 1)
  else if (waiting.size === 1) keepAlive.ref()
  turnWhileWaiting()
}

/** The native side hands over replies in batches: ids[i] answered outcomes[i]. */
function onSettled (ids, outcomes) {
  for (let i = 0; i < ids.length; i++) {
    const resume = waiting.get(ids[i])
    if (resume === undefined) continue
    waiting.delete(ids[i])
    resume(outcomes[i])
  }
  if (waiting.size === 0) {
    keepAlive.unref()
    repliesComeSoon = performance.now() - lastFewCallAt <= TURN_MS
  }
}

module.exports = { single, noResult, loaded, popped, deliverSoon, settle, id, waitFor, onSettled, isError }
