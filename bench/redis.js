'use strict'

// `node bench/redis.js`: save and load operations per second on the local
// Redis (127.0.0.1:6379, database 0), at concurrency 1 and 64 (that many
// async loops in flight), for
//   (a) this addon, callback API;
//   (b) actionhero 16's own JS cache (initializers/cache.js) on ioredis;
// in the same run, next to `redis-benchmark -t set,get` as the floor (the
// raw SET/GET rate the server and loopback allow).
// Usage: node bench/redis.js [seconds per case, default 2]
// Keys live under bench:<pid>:… and are deleted at the end.

const { execFileSync } = require('child_process')
const Redis = require('ioredis')

const { Cache } = require('..')
const { measure: measureFor, VALUE, format: f } = require('./measure')
const { createActionheroCache } = require('../__tests__/support/actionhero-js-cache')

const SECONDS = Number(process.argv[2]) || 2
const REDIS = { host: '127.0.0.1', port: 6379, db: 0 }
const ROOT = `bench:${process.pid}:`
const PREFIXES = { cachePrefix: `${ROOT}cache:`, lockPrefix: `${ROOT}lock:` }
const CONCURRENCY = [1, 64]

const measure = (concurrency, op) => measureFor(concurrency, SECONDS, op)

const saveOp = (cache) => (worker, done) => cache.save(`bench-${worker}`, VALUE, 60000, (error) => done(error))
const loadOp = (cache) => (worker, done) => cache.load(`bench-${worker}`, (error, value) => {
  if (!error && (!value || value.id !== 42)) error = new Error(`bench-${worker} loaded ${JSON.stringify(value)}`)
  done(error)
})

/** `redis-benchmark -q -t set,get -n 100000 -c <c>`: { SET, GET } requests per second. */
function redisBenchmark (concurrency) {
  const output = execFileSync('redis-benchmark', [
    '-h', REDIS.host, '-p', String(REDIS.port), '-q', '-t', 'set,get', '-n', '100000', '-c', String(concurrency)
  ], { encoding: 'utf8' })
  const rates = {}
  for (const line of output.split(/[\r\n]+/)) {
    const match = /^(SET|GET): ([\d.]+) requests per second/.exec(line.trim())
    if (match) rates[match[1]] = Number(match[2])
  }
  if (!rates.SET || !rates.GET) throw new Error(`cannot read redis-benchmark's output:\n${output}`)
  return rates
}

async function cleanup () {
  const redis = new Redis({ ...REDIS, lazyConnect: true })
  await redis.connect()
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${ROOT}*`, 'COUNT', 1000)
      if (keys.length) await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

async function main () {
  const native = new Cache({ ...PREFIXES, redis: { ...REDIS }, lockName: `bench-native-${process.pid}` })
  const js = await createActionheroCache({ ...PREFIXES, lockName: `bench-js-${process.pid}`, redis: REDIS })
  const rows = { native: {}, js: {}, floor: {} }
  try {
    // Warm both connections (and the addon's script cache) before timing.
    await measure(8, saveOp(native))
    await measure(8, saveOp(js.cache))
    for (const concurrency of CONCURRENCY) {
      for (const [name, cache] of [['native', native], ['js', js.cache]]) {
        const save = await measure(concurrency, saveOp(cache))
        const load = await measure(concurrency, loadOp(cache))
        rows[name][concurrency] = { save, load }
      }
      const floor = redisBenchmark(concurrency)
      rows.floor[concurrency] = { save: floor.SET, load: floor.GET }
    }
  } finally {
    await native.close()
    await js.close()
    await cleanup()
  }

  const ratio = (a, b) => `${(a / b).toFixed(2)}×`
  console.log(`Redis ${REDIS.host}:${REDIS.port}, ${SECONDS} s per case, Node ${process.version}; operations per second`)
  console.log('')
  console.log('| implementation | save c=1 | load c=1 | save c=64 | load c=64 |')
  console.log('|---|---|---|---|---|')
  const line = (label, row) => console.log(`| ${label} | ${f(row[1].save)} | ${f(row[1].load)} | ${f(row[64].save)} | ${f(row[64].load)} |`)
  line('addon (callbacks)', rows.native)
  line('actionhero 16 JS cache (ioredis)', rows.js)
  line('redis-benchmark SET / GET (floor)', rows.floor)
  console.log(`| addon / JS cache | ${ratio(rows.native[1].save, rows.js[1].save)} | ${ratio(rows.native[1].load, rows.js[1].load)} | ` +
    `${ratio(rows.native[64].save, rows.js[64].save)} | ${ratio(rows.native[64].load, rows.js[64].load)} |`)
  console.log(`| addon / redis-benchmark | ${ratio(rows.native[1].save, rows.floor[1].save)} | ${ratio(rows.native[1].load, rows.floor[1].load)} | ` +
    `${ratio(rows.native[64].save, rows.floor[64].save)} | ${ratio(rows.native[64].load, rows.floor[64].load)} |`)
  console.log('')
  console.log('save: one entry per loop, 60 s lifetime. load: that entry (each load also rewrites readAt).')
  console.log('Round trips per call: addon 1 (one Lua script); JS cache save 3 (GET lock, SET, EXPIRE), load 4 (GET, GET lock, SET, EXPIRE).')
}

main().catch((error) => { console.error(error); process.exitCode = 1 })
