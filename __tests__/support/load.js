'use strict'

// Load for the topology tests (a master killed, a failover, a resharding):
// one loop per key, each saving its key with a counter that goes up by one
// per save and reading it back, through callbacks, until stopped. It
// records whether every call was answered exactly once, every error with
// its time, and per key the last counter saved (acknowledged) and the last
// one tried, so that what a disruption lost can be counted afterwards.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** `count` keys named `<prefix>-<n>`, or the first `count` such that `wanted(key)`. */
function loadKeys (prefix, count = 64, wanted = () => true) {
  const keys = []
  for (let n = 0; keys.length < count; n++) if (wanted(`${prefix}-${n}`)) keys.push(`${prefix}-${n}`)
  return keys
}

function startLoad (cache, keys) {
  const acked = new Map()
  const tried = new Map()
  const errors = []
  const wrongReads = []
  const successes = [] // per worker, the times its saves were acknowledged
  const calls = { made: 0, answered: 0, answeredTwice: 0 }
  let stopping = false

  /** The method called with a callback that counts how often it is called. */
  function call (method, ...args) {
    calls.made++
    return new Promise((resolve) => {
      let answered = false
      cache[method](...args, (...results) => {
        if (answered) {
          calls.answeredTwice++
          return
        }
        answered = true
        calls.answered++
        resolve(results)
      })
    })
  }

  async function worker (key, n) {
    successes[n] = []
    for (let count = 1; !stopping; count++) {
      tried.set(key, count)
      const [saveError] = await call('save', key, count)
      if (saveError) {
        errors.push({ at: Date.now(), code: saveError.code })
        await sleep(10) // a failing cluster answers at once; no need to spin
        continue
      }
      acked.set(key, count)
      successes[n].push(Date.now())
      const [loadError, value] = await call('load', key)
      if (loadError) errors.push({ at: Date.now(), code: loadError.code })
      else if (value !== count) wrongReads.push(`${key}: saved ${count}, read ${value}`)
    }
  }

  const running = Promise.all(keys.map(worker))

  return {
    keys,
    async stop () {
      stopping = true
      await running
    },
    /**
     * Resolves once every worker has had a save acknowledged since the last
     * error after `since` (at most `limitMs` after it).
     */
    async recovered (since, limitMs = 30000) {
      for (;;) {
        const lastError = Math.max(since, ...errors.map(({ at }) => at))
        if (successes.every((times) => times.length > 0 && times[times.length - 1] > lastError)) return
        if (Date.now() - since > limitMs) return
        await sleep(50)
      }
    },
    /**
     * What the load saw around a disruption at `since`: the errors by code,
     * and the recovery time, until the last error or, when later, until
     * every worker had a save acknowledged again.
     */
    report (since) {
      const codes = {}
      for (const { code } of errors) codes[code] = (codes[code] || 0) + 1
      const lastError = Math.max(since, ...errors.map(({ at }) => at))
      const back = successes.map((times) => times.find((at) => at > since) ?? Infinity)
      return { calls, codes, errors: errors.length, wrongReads, recoveryMs: Math.max(lastError, ...back) - since }
    },
    /**
     * Reads every key back (with `reader`, a cache on the recovered
     * topology) and answers the keys whose acknowledged save is missing:
     * holding less than the last acknowledged counter. More is fine: a save
     * that failed may still have been written.
     */
    async lost (reader) {
      const lost = []
      for (const key of keys) {
        const value = await reader.load(key).then(({ value }) => value, () => undefined)
        if (acked.has(key) && !(value >= acked.get(key) && value <= tried.get(key))) lost.push({ key, acked: acked.get(key), found: value })
      }
      return lost
    }
  }
}

module.exports = { startLoad, loadKeys }
