'use strict'

/**
 * Runs `concurrency` loops of `op(worker, done)` for `seconds`; answers
 * operations per second. Each loop waits for its operation's callback
 * before starting the next, so `concurrency` operations are in flight at
 * any moment.
 */
function measure (concurrency, seconds, op) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + seconds * 1000
    const started = process.hrtime.bigint()
    let count = 0
    let running = concurrency
    let failed = false
    const loop = (worker) => {
      const again = () => {
        if (failed) return
        if (Date.now() >= deadline) {
          if (--running === 0) resolve(count / (Number(process.hrtime.bigint() - started) / 1e9))
          return
        }
        op(worker, (error) => {
          if (error) { failed = true; return reject(error) }
          count++
          again()
        })
      }
      again()
    }
    for (let worker = 0; worker < concurrency; worker++) loop(worker)
  })
}

/** A cached value of a typical size, for every benchmark. */
const VALUE = { id: 42, name: 'a cached thing', tags: ['x', 'y'], nested: { ok: true, n: 3.5 } }

const format = (n) => Math.round(n).toLocaleString('en-US')

module.exports = { measure, VALUE, format }
