'use strict'

// Probes run beside the operations table, in the same process and run: the
// fixed costs that bound what the in-memory store can reach against a
// plain-JS Map (bench/RESULTS.md, "Targets").

const { openCache, methods: native } = require('../lib/native')
const { Cache } = require('..')
const { MapCache } = require('./map-cache')
const { median, valueOfSize } = require('./measure')

const KEYS = Array.from({ length: 64 }, (_, i) => `w${i}`)

/** The fastest of `rounds` timings of `loop(n)`, in ns per iteration. */
function nsPerIteration (n, loop, rounds = 5) {
  let best = Infinity
  for (let round = 0; round < rounds; round++) {
    const started = process.hrtime.bigint()
    loop(n)
    best = Math.min(best, Number(process.hrtime.bigint() - started) / n)
  }
  return best
}

/** Lets the callbacks the timed loops queued run, untimed. */
const drainTicks = () => new Promise((resolve) => setImmediate(resolve))

/**
 * crossingNs: one call into the addon that does nothing (`flush` with no
 * call queued): what any native method costs before its own work.
 * lockCallsNs: a lock and an unlock called back to back, their callbacks
 * left queued (both queue two process.nextTick), for the addon's in-memory
 * store and the Map: the calling side of a lock+unlock op, without the ticks
 * and the benchmark loop that both pay alike.
 * copyOutUs / flattenUs: by value size, copying the value's JSON text out
 * of V8 as UTF-8 into a buffer of its own (TextEncoder.encodeInto, the same
 * V8 call N-API's napi_get_value_string_utf8 makes), which storing it
 * natively needs and a Map does not, and the part of that which flattens
 * it. Timed on JSON.stringify's fresh output (less the stringify alone), as
 * a save reads it: a long one is a rope of the parts V8 built it in, which
 * every V8 string read (N-API's, TextEncoder's, Buffer's) first copies into
 * one new flat string; flattenUs times that by itself (charCodeAt of a
 * rope flattens it).
 */
async function measureLimits (sizes) {
  const caller = { cachePrefix: 'limits:', lockPrefix: 'limits:lock:', lockName: 'limits', lockDuration: 10000, lockRetry: 100 }
  const handle = openCache({ store: { memory: `limits-${process.pid}` }, caller }, () => {})
  const crossingNs = nsPerIteration(2e6, (n) => { for (let i = 0; i < n; i++) native.flush(handle) })
  native.close(handle, 0)
  native.release(handle)

  const noop = () => {}
  const lockCallsNs = {}
  const memory = new Cache({ redis: { fake: true, name: `limits-${process.pid}` }, lockName: 'limits' })
  for (const [id, cache] of [['memory', memory], ['map', new MapCache('limits')]]) {
    lockCallsNs[id] = Infinity
    for (let round = 0; round < 200; round++) {
      // Short rounds, so that the queued callbacks stay few.
      lockCallsNs[id] = Math.min(lockCallsNs[id], nsPerIteration(1000, (n) => {
        for (let i = 0; i < n; i++) {
          const key = KEYS[i & 63]
          cache.lock(key, 10000, noop)
          cache.unlock(key, noop)
        }
      }, 1))
      await drainTicks()
    }
  }
  await memory.close()

  const encoder = new TextEncoder()
  const copyOutUs = {}
  const flattenUs = {}
  const medianUs = (ns) => Math.max(0, median(ns)) / 1000
  for (const size of sizes) {
    const value = valueOfSize(size)
    const target = new Uint8Array(JSON.stringify(value).length * 3)
    const iterations = Math.max(200, Math.round(2e7 / size))
    // In turn, round by round: the difference of two timings taken apart
    // was lost in the machine's noise.
    const copies = []
    const flattens = []
    for (let round = 0; round < 9; round++) {
      const stringifyNs = nsPerIteration(iterations, (n) => {
        for (let i = 0; i < n; i++) target[0] = JSON.stringify(value).length
      }, 1)
      const stringifyAndFlattenNs = nsPerIteration(iterations, (n) => {
        for (let i = 0; i < n; i++) target[0] = JSON.stringify(value).charCodeAt(1)
      }, 1)
      const stringifyAndCopyNs = nsPerIteration(iterations, (n) => {
        for (let i = 0; i < n; i++) encoder.encodeInto(JSON.stringify(value), target)
      }, 1)
      copies.push(stringifyAndCopyNs - stringifyNs)
      flattens.push(stringifyAndFlattenNs - stringifyNs)
    }
    copyOutUs[size] = medianUs(copies)
    flattenUs[size] = medianUs(flattens)
  }
  return { crossingNs, lockCallsNs, copyOutUs, flattenUs }
}

module.exports = { measureLimits }
