'use strict'

// `node bench/sweep-pause.js`: how long the in-memory store's background
// sweep can stall the event loop. Fills one server with LIVE keys that never
// expire and DYING keys that expire after one second, then, while the sweep
// reclaims the dying ones, runs a tight setImmediate loop that makes one
// load per turn (a load takes the store's lock on the JS thread, so it waits
// whenever the sweep holds it). Reports the worst load call, the worst gap
// between two turns, and the worst delay perf_hooks.monitorEventLoopDelay
// saw (the last two also count garbage collection and a busy machine).
// Usage: node bench/sweep-pause.js [live keys, default 1000000] [dying keys, default 100000] [seconds, default 5]

const { monitorEventLoopDelay } = require('perf_hooks')
const { Cache, memoryServerKeyCount } = require('..')

const argument = (index, otherwise) => (process.argv[index] === undefined ? otherwise : Number(process.argv[index]))
const LIVE = argument(2, 1000000)
const DYING = argument(3, 100000)
const SECONDS = argument(4, 5)
const BATCH = 1000
const VALUE = { id: 1, text: 'x'.repeat(20) }

async function fill (cache, count, name, expireTimeMS) {
  for (let i = 0; i < count; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => cache.save(`${name}-${i + j}`, VALUE, expireTimeMS))
    await Promise.all(batch)
  }
}

/**
 * Loads a random live key every turn of the event loop for `seconds`.
 * Answers the worst gap between two turns and the worst time one load call
 * took on the JS thread (it waits there while the sweep holds the lock), in
 * ms, and the slowest calls with when they happened.
 */
function turnLoop (cache, seconds) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint()
    const end = start + BigInt(seconds * 1e9)
    const ms = (ns) => Number(ns) / 1e6
    let last = start
    let worstGap = 0n
    let worstCall = 0n
    const slowCalls = []
    const turn = () => {
      const now = process.hrtime.bigint()
      if (now - last > worstGap) worstGap = now - last
      last = now
      if (now >= end) return resolve({ worstGap: ms(worstGap), worstCall: ms(worstCall), slowCalls })
      cache.load(`live-${Math.floor(Math.random() * LIVE)}`, (error) => {
        if (error) return reject(error)
        setImmediate(turn)
      })
      // The callback comes on a later tick: this is the call itself.
      const took = process.hrtime.bigint() - now
      if (took > worstCall) worstCall = took
      if (took > 2e6) slowCalls.push(`${ms(took).toFixed(1)} ms at ${(ms(now - start) / 1000).toFixed(2)} s`)
    }
    setImmediate(turn)
  })
}

async function main () {
  const cache = new Cache({ redis: { fake: true, name: 'sweep-pause-bench' } })
  const filling = Date.now()
  await fill(cache, LIVE, 'live')
  await fill(cache, DYING, 'dying', 1000)
  console.log(`${LIVE} live + ${DYING} dying keys written in ${((Date.now() - filling) / 1000).toFixed(1)} s`)

  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  const { worstGap, worstCall, slowCalls } = await turnLoop(cache, SECONDS)
  histogram.disable()
  console.log(`over ${SECONDS} s: worst load call ${worstCall.toFixed(2)} ms; worst gap between two turns ${worstGap.toFixed(2)} ms; ` +
    `monitorEventLoopDelay max ${(histogram.max / 1e6).toFixed(2)} ms, p99 ${(histogram.percentile(99) / 1e6).toFixed(2)} ms`)
  console.log(`load calls over 2 ms: ${slowCalls.length ? slowCalls.join(', ') : 'none'}`)
  // Dead keys the sweep has not reclaimed yet still count here, as in Redis's DBSIZE.
  console.log(`keys the server holds: ${memoryServerKeyCount('sweep-pause-bench')} (live: ${LIVE})`)
  await cache.close()
}

main().catch((error) => { console.error(error); process.exit(1) })
