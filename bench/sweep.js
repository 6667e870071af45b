'use strict'

// `node bench/sweep.js`: the in-memory store does not grow with dead keys.
// Writes rounds of N entries that expire after one second; after each round
// the background sweep empties the store, and the process's memory stays
// where the first round left it instead of growing round by round.
// Usage: node bench/sweep.js [entries per round, default 200000] [rounds, default 4]

const { Cache, memoryServerKeyCount } = require('..')

const N = Number(process.argv[2]) || 200000
const ROUNDS = Number(process.argv[3]) || 4
const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(0)} MB`
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main () {
  const cache = new Cache({ redis: { fake: true, name: 'sweep-bench' } })
  const value = { id: 1, text: 'x'.repeat(100) }
  console.log(`start: rss ${mb(process.memoryUsage().rss)}`)
  for (let round = 1; round <= ROUNDS; round++) {
    for (let i = 0; i < N; i += 1000) {
      await Promise.all(Array.from({ length: Math.min(1000, N - i) }, (_, j) => cache.save(`r${round}-${i + j}`, value, 1000)))
    }
    const peak = process.memoryUsage().rss
    await sleep(2500) // lifetimes of 1 s; the sweep runs every second
    // Expired keys not swept yet still count here (keys() would hide them).
    const left = memoryServerKeyCount('sweep-bench')
    console.log(`round ${round}: ${N} entries written (rss ${mb(peak)}); 2.5 s later ${left} left, rss ${mb(process.memoryUsage().rss)}`)
  }
  await cache.close()
}

main().catch((error) => { console.error(error); process.exit(1) })
