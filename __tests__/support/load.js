'use strict'

// Load for the topology tests (a master killed, a failover, a resharding):
// one loop per key, each saving its key with a counter that goes up by one
// per save and reading it back, through callbacks, until stopped. It
// records whether every call was answered exactly once, every error with
// its time, and every acknowledged save found missing: a read right after
// it, or the first read after an error, that finds an older counter (the
// save went to a master that died, or was demoted, before replicating it).

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
  const lostSaves = []
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

  /** Reads `key` back: an older counter than `count` acknowledged means a lost save. */
  async function check (key, count) {
    const [error, value] = await call('load', key)
    if (error) {
      errors.push({ at: Date.now(), code: error.code })
      return false
    }
    if (value < count) lostSaves.push({ key, acked: count, found: value })
    else if (value !== count && value !== tried.get(key)) wrongReads.push(`${key}: saved ${count}, read ${value}`)
    return true
  }

  async function worker (key, n) {
    successes[n] = []
    let unsure = false // after an error: was the last acknowledged save kept?
    for (let count = 1; !stopping; count++) {
      if (unsure && acked.has(key)) unsure = !(await check(key, acked.get(key)))
      tried.set(key, count)
      const [saveError] = await call('save', key, count)
      if (saveError) {
        errors.push({ at: Date.now(), code: saveError.code })
        unsure = true
        await sleep(10) // a failing cluster answers at once; no need to spin
        continue
      }
      acked.set(key, count)
      successes[n].push(Date.now())
      unsure = !(await check(key, count))
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
      return { calls, codes, errors: errors.length, wrongReads, lostSaves, recoveryMs: Math.max(lastError, ...back) - since }
    },
    /**
     * Reads every key back once the load has stopped (with `reader`, a
     * cache on the recovered topology) and answers the keys whose last
     * acknowledged save is missing: holding less than its counter. More is
     * fine: a save that failed may still have been written.
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
