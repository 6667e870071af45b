'use strict'

// `npm run bench`: save+load round trips on the in-memory store, next to the
// same loop on a small JS Map-based cache with the same contract (JSON
// envelope, lock check, callbacks on a later tick), in the same run.
// Usage: node bench/memory.js [seconds per case, default 2]

const { Cache } = require('..')
const { measure, VALUE, format: f } = require('./measure')

const SECONDS = Number(process.argv[2]) || 2

/** The baseline: what a plain-JS in-memory cache does per call. */
class MapCache {
  constructor () {
    this.entries = new Map()
    this.locks = new Map()
    this.lockName = 'bench'
  }

  lockedByOther (key) {
    const lock = this.locks.get(key)
    return lock !== undefined && lock.expiresAt > Date.now() && lock.name !== this.lockName
  }

  save (key, value, expireTimeMS, next) {
    const now = Date.now()
    if (this.lockedByOther(key)) return process.nextTick(next, new Error('Object Locked'))
    const expireTimestamp = expireTimeMS == null ? null : now + expireTimeMS
    this.entries.set(key, JSON.stringify({ value, expireTimestamp, createdAt: now, readAt: null }))
    process.nextTick(next, null, true)
  }

  load (key, next) {
    const now = Date.now()
    const text = this.entries.get(key)
    if (text === undefined) return process.nextTick(next, new Error('Object not found'), null, null, null, null)
    const entry = JSON.parse(text)
    if (entry.expireTimestamp !== null && entry.expireTimestamp < now) return process.nextTick(next, new Error('Object Expired'), null, null, null, null)
    if (this.lockedByOther(key)) return process.nextTick(next, new Error('Object Locked'), null, null, null, null)
    const lastReadAt = entry.readAt
    entry.readAt = now
    this.entries.set(key, JSON.stringify(entry))
    process.nextTick(next, null, entry.value, entry.expireTimestamp, entry.createdAt, lastReadAt)
  }
}

/** One round trip: save, then load what was saved. */
const roundTrip = (cache) => (worker, done) => {
  const key = `bench-${worker}`
  cache.save(key, VALUE, 60000, (error) => {
    if (error) return done(error)
    cache.load(key, (error, value) => done(error || (value.id === 42 ? null : new Error('wrong value'))))
  })
}

async function main () {
  const native = new Cache({ redis: { fake: true, name: 'bench' }, lockName: 'bench' })
  const map = new MapCache()
  const rows = []
  for (const concurrency of [1, 64]) {
    const nativeRate = await measure(concurrency, SECONDS, roundTrip(native))
    const mapRate = await measure(concurrency, SECONDS, roundTrip(map))
    rows.push([concurrency, nativeRate, mapRate])
  }
  await native.close()
  console.log(`save+load round trips per second, ${SECONDS} s per case, Node ${process.version}`)
  console.log('| concurrency | native (in-memory store) | JS Map baseline | native / Map |')
  console.log('|---|---|---|---|')
  for (const [c, n, m] of rows) console.log(`| ${c} | ${f(n)} | ${f(m)} | ${(n / m).toFixed(2)} |`)
}

main().catch((error) => { console.error(error); process.exit(1) })
