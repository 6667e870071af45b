'use strict'

// One contender for contention-writes.test.js, run as a process or a worker
// thread (see contenders.js). It builds two caches with lock names of their
// own and, once the parent says "go", runs one loop on each for
// `durationMs`: take the lock of a shared counter, load it, save it plus
// one, unlock. Each counter's value is { count, holder }: the holder's name
// is the marker that shows whose write is there.
//
// While one cache holds a counter, the other cache (another lock name) makes
// stray writes to it, a save of its own name and a destroy, which must answer
// `Object Locked`; the holder then reads the counter back and must find its
// own write unchanged. Those stray writes are made only while the lock is
// known to be held (the holder waits for them), so any that lands is a
// violation, never a write that legitimately came between two holders.
//
// Every call goes through a callback that is counted: made, answered,
// answered more than once. A call not answered within `lostAfterMs` is given
// up on so that the loop goes on; it shows as made but never answered.

const { Cache } = require('../..')
const { parentChannel } = require('./contenders')

const { config, serve } = parentChannel()
const { name, counters, durationMs, lostAfterMs, cacheOptions } = config
const LOCK_MS = 10000
const LISTED = 20 // violations and errors reported in full; the rest are counted

const caches = ['a', 'b'].map((suffix) => {
  const lockName = `${name}-${suffix}`
  return { lockName, cache: new Cache({ ...cacheOptions, lockName, lockDuration: LOCK_MS }) }
})

const stats = {
  name,
  calls: 0,
  answered: 0,
  answeredTwice: 0,
  holds: 0,
  misses: 0,
  increments: Object.fromEntries(counters.map((counter) => [counter, 0])),
  straysRefused: 0,
  readOthersWrites: 0, // loads that found a counter last written by another contender
  violations: [],
  violationCount: 0,
  errors: [],
  errorCount: 0
}

function note (kind, text) {
  stats[`${kind === 'violations' ? 'violation' : 'error'}Count`]++
  if (stats[kind].length < LISTED) stats[kind].push(text)
}

const describeOutcome = ({ error, result }) => (error ? `${error.code} ${error.message}` : JSON.stringify(result))

/** cache[method](...args, callback), counted; answers { error, result }. */
function call (cache, method, ...args) {
  stats.calls++
  return new Promise((resolve) => {
    let answers = 0
    const lost = setTimeout(() => resolve({ error: Object.assign(new Error(`${method} not answered within ${lostAfterMs} ms`), { code: 'LOST' }) }), lostAfterMs)
    cache[method](...args, (error, result) => {
      if (++answers > 1) {
        stats.answeredTwice++
        return
      }
      stats.answered++
      clearTimeout(lost)
      resolve({ error, result })
    })
  })
}

/** Lets the other loop (and, on the memory store, timers) run. */
const yieldToOthers = () => new Promise((resolve) => setImmediate(resolve))

/** What `holder` does while it holds `counter`, with `stray` writing at it. */
async function whileHolding (holder, stray, counter) {
  const read = await call(holder.cache, 'load', counter)
  if (read.error) return note('errors', `${holder.lockName} load ${counter}: ${describeOutcome(read)}`)
  const { count, holder: lastWriter } = read.result
  if (!lastWriter.startsWith(`${name}-`) && lastWriter !== 'setup') stats.readOthersWrites++

  const mine = { count: count + 1, holder: holder.lockName }
  const saved = await call(holder.cache, 'save', counter, mine)
  if (saved.error || saved.result !== true) return note('errors', `${holder.lockName} save ${counter}: ${describeOutcome(saved)}`)
  stats.increments[counter]++

  const strays = await Promise.all([
    call(stray.cache, 'save', counter, { count: -1, holder: stray.lockName }),
    call(stray.cache, 'destroy', counter)
  ])
  for (const [method, outcome] of [['save', strays[0]], ['destroy', strays[1]]]) {
    if (outcome.error && outcome.error.message === 'Object Locked') stats.straysRefused++
    else note('violations', `${stray.lockName} ${method} ${counter} under ${holder.lockName}'s lock answered ${describeOutcome(outcome)}`)
  }

  const check = await call(holder.cache, 'load', counter)
  if (check.error || check.result.count !== mine.count || check.result.holder !== mine.holder) {
    note('violations', `${holder.lockName} wrote ${JSON.stringify(mine)} to ${counter}, read back ${describeOutcome(check)}`)
  }
}

async function loop (holder, stray, endAt) {
  while (Date.now() < endAt) {
    const counter = counters[Math.floor(Math.random() * counters.length)]
    const lock = await call(holder.cache, 'lock', counter, LOCK_MS)
    if (lock.error) {
      note('errors', `${holder.lockName} lock ${counter}: ${describeOutcome(lock)}`)
    } else if (lock.result !== true) {
      stats.misses++
    } else {
      stats.holds++
      await whileHolding(holder, stray, counter)
      const unlock = await call(holder.cache, 'unlock', counter)
      if (unlock.error || unlock.result !== true) note('violations', `${holder.lockName} unlock ${counter}: ${describeOutcome(unlock)}`)
    }
    await yieldToOthers()
  }
}

serve(async () => {
  const endAt = Date.now() + durationMs
  try {
    await Promise.all([loop(caches[0], caches[1], endAt), loop(caches[1], caches[0], endAt)])
    // Calls given up on may still be answered late; wait for them once more.
    const graceEnd = Date.now() + lostAfterMs
    while (stats.answered < stats.calls && Date.now() < graceEnd) await new Promise((resolve) => setTimeout(resolve, 50))
  } finally {
    await Promise.all(caches.map(({ cache }) => cache.close()))
  }
  return stats
})
