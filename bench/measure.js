'use strict'

// The timing loop every benchmark shares, and its numbers.

/**
 * Runs `concurrency` loops of `op(worker, done)`, each waiting for its
 * operation's callback before starting the next, so that `concurrency`
 * operations are in flight at any moment. Stops after `seconds`, or after
 * `ops` operations in all when given.
 *
 * Answers { ops, seconds, opsPerSecond, cpuMicrosPerOp, p50, p99 }: the
 * latencies in µs, from hrtime around each operation (null with
 * `latencies: false`, which keeps memory flat for long runs);
 * cpuMicrosPerOp is this process's CPU (every thread: Node's and the
 * addon's runtime) per operation.
 */
function measure ({ concurrency, seconds = Infinity, ops: limit = Infinity, latencies = true }, op) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + seconds * 1000
    const times = latencies ? new Latencies() : null
    const cpuBefore = process.cpuUsage()
    const started = process.hrtime.bigint()
    let startedOps = 0
    let doneOps = 0
    let running = concurrency
    let failed = false
    const finish = () => {
      const elapsed = Number(process.hrtime.bigint() - started) / 1e9
      const cpu = process.cpuUsage(cpuBefore)
      resolve({
        ops: doneOps,
        seconds: elapsed,
        opsPerSecond: doneOps / elapsed,
        cpuMicrosPerOp: (cpu.user + cpu.system) / doneOps,
        p50: times && percentile(times.sorted(), 0.5),
        p99: times && percentile(times.sorted(), 0.99)
      })
    }
    const loop = (worker) => {
      const again = () => {
        if (failed) return
        if (startedOps >= limit || Date.now() >= deadline) {
          if (--running === 0) finish()
          return
        }
        startedOps++
        const begin = process.hrtime.bigint()
        op(worker, (error) => {
          if (failed) return
          if (error) { failed = true; return reject(error) }
          if (times) times.push(Number(process.hrtime.bigint() - begin) / 1000)
          doneOps++
          again()
        })
      }
      again()
    }
    for (let worker = 0; worker < concurrency; worker++) loop(worker)
  })
}

/** A growing list of latencies; a typed array sorts millions in a blink. */
class Latencies {
  constructor () {
    this.values = new Float64Array(1 << 16)
    this.length = 0
    this.sortedValues = null
  }

  push (value) {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2)
      grown.set(this.values)
      this.values = grown
    }
    this.values[this.length++] = value
  }

  sorted () {
    if (this.sortedValues === null) this.sortedValues = this.values.subarray(0, this.length).sort()
    return this.sortedValues
  }
}

/** The value below which a `share` of the sorted `values` lie. */
function percentile (sorted, share) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * share))]
}

/** The middle of `numbers` (of the two middle ones, their mean); NaN for none. */
function median (numbers) {
  const sorted = [...numbers].sort((a, b) => a - b)
  const half = sorted.length / 2
  return (sorted[Math.ceil(half) - 1] + sorted[Math.floor(half)]) / 2
}

/** A cached value whose JSON text is `bytes` long: `{"blob":"xxx…"}`. */
function valueOfSize (bytes) {
  const overhead = JSON.stringify({ blob: '' }).length
  return { blob: 'x'.repeat(Math.max(0, bytes - overhead)) }
}

/** 1234567 → "1,234,567". */
const format = (n) => Math.round(n).toLocaleString('en-US')

/** A count or duration with about three significant digits: 0.123, 1.23, 12.3, 123, 1,234. */
function short (n) {
  if (!Number.isFinite(n)) return '—'
  if (Math.abs(n) >= 100) return format(n)
  return Number(n.toPrecision(3)).toString()
}

/** A ratio as the tables write it: 1.23×. */
const times = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '—')

/**
 * How `a` compares with `b` (two entries of the operations table) in calls
 * per second: the median of their rounds' ratios, each round of one against
 * the other's taken just before or after it, so that other work on the
 * machine weighs on both alike. NaN when either has no result (a failed
 * case, or one the run left out).
 */
function pairedRatio (a, b) {
  if (!a || !a.result || !b || !b.result) return NaN
  return median(a.roundOps.map((ops, i) => ops / b.roundOps[i]))
}

// How the tables name the operations and the value sizes.
const OPS = ['save', 'load', 'mix', 'lock']
const OP_LABELS = { save: 'save', load: 'load', mix: 'save/load 50/50', lock: 'lock+unlock' }
const SIZE_LABELS = { 100: '100 B', 10000: '10 kB', 100000: '100 kB' }

module.exports = { measure, median, valueOfSize, format, short, times, pairedRatio, OPS, OP_LABELS, SIZE_LABELS }
