'use strict'

// `npm run bench`: the full benchmark (issue 8), one table in bench/RESULTS.md.
//
//   node bench/full.js [--seconds S] [--quick] [--only IDS] [--redis HOST:PORT] [--out FILE]
//
// --seconds  length of each timed case (default 1.5)
// --quick    a smoke run of every section on a smaller matrix (well under a
//            minute with --seconds 1); writes no file unless --out is given
// --only     only the operations table, for these implementations (a comma-
//            separated list of ids: native, js, cluster, memory, map), e.g.
//            `--quick --only memory,map` to compare the in-memory store with
//            the Map in a few seconds; writes no file unless --out is given
// --redis    use this Redis instead of a private one (INFO deltas then count
//            every other client's work too)
// --out      where to write the table (default bench/RESULTS.md)
//
// By default the script starts a redis-server of its own on a free loopback
// port, so that the server's CPU time and command counts (INFO deltas) are
// this benchmark's alone. Everything uses database 15 and keys under
// bench:<pid>:, deleted at the end. It also starts (and stops) a socat relay,
// redis-benchmark runs, and child processes for the actionhero apps and the
// memory-growth runs (this file again, with --child).

const fs = require('fs')
const os = require('os')
const path = require('path')
const { spawn, execFileSync } = require('child_process')
const Redis = require('ioredis')

const { Cache } = require('..')
const { measure, valueOfSize, format, short, times, pairedRatio, OPS, OP_LABELS, SIZE_LABELS } = require('./measure')
const { MapCache } = require('./map-cache')
const { PlainRedis } = require('./plain-redis')
const { measureLimits } = require('./limits')
const { renderTargets, growthOverSecond } = require('./targets')
const { createActionheroCache } = require('../__tests__/support/actionhero-js-cache')
const { startRedis, freePort, accepts } = require('../__tests__/support/redis-server')
const { startCluster } = require('../__tests__/support/topology')

const DB = 15
const ROOT = `bench:${process.pid}:`
const LIFETIME_MS = 60000 // every saved entry's expireTimeMS
const LOCK_MS = 10000
const APP_DIR = path.join(__dirname, '..', 'examples', 'actionhero-app')
// Where redis-benchmark -t set,get keeps its value (it takes no prefix).
const REDIS_BENCHMARK_KEY = 'key:__rand_int__'

function parseArgs (argv) {
  const options = { seconds: 1.5, quick: false, only: null, redis: null, out: null, child: null }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`)
      return argv[++i]
    }
    if (arg === '--seconds') options.seconds = Number(value())
    else if (arg === '--quick') options.quick = true
    else if (arg === '--only') options.only = value().split(',')
    else if (arg === '--redis') options.redis = value()
    else if (arg === '--out') options.out = value()
    else if (arg === '--child') options.child = JSON.parse(value())
    else throw new Error(`unknown argument ${arg}`)
  }
  if (!(options.seconds > 0)) throw new Error('--seconds must be a positive number')
  const unknown = (options.only || []).filter((id) => !IMPLEMENTATIONS.some((implementation) => implementation.id === id))
  if (unknown.length) throw new Error(`--only: no implementation ${unknown.join(', ')}`)
  if (options.out === null && !options.quick && !options.only) options.out = path.join(__dirname, 'RESULTS.md')
  return options
}

/** What runs, by mode. */
function plan ({ quick }) {
  return {
    sizes: quick ? [100] : [100, 10000, 100000],
    concurrency: quick ? [1, 64] : [1, 64, 512],
    relay: { concurrency: quick ? [1] : [1, 64], sizes: quick ? [100] : [100, 10000], ops: ['save', 'load'] },
    app: { concurrency: quick ? [64] : [1, 64] },
    // Calls (saves and loads, half each) per step of the memory-growth run.
    growthCalls: quick ? 50000 : 1000000
  }
}

// The implementations, each built on its own key prefixes.

const prefixes = (name, root = ROOT) => ({ cachePrefix: `${root}${name}:cache:`, lockPrefix: `${root}${name}:lock:` })

const IMPLEMENTATIONS = [
  {
    id: 'native',
    onRedis: true,
    async make (redis) {
      const cache = new Cache({ ...prefixes('native'), redis, lockName: 'bench-native' })
      return { cache, close: () => cache.close() }
    }
  },
  {
    id: 'js',
    onRedis: true,
    make (redis) {
      return createActionheroCache({ ...prefixes('js'), redis, lockName: 'bench-js' })
    }
  },
  {
    // A Redis Cluster of three masters of its own, on this machine too.
    id: 'cluster',
    async make () {
      const cluster = await startCluster({ masters: 3 })
      const cache = new Cache({ ...prefixes('cluster'), redis: { cluster: cluster.nodes }, lockName: 'bench-cluster' })
      return { cache, close: async () => { await cache.close(); await cluster.stop() } }
    }
  },
  {
    id: 'memory',
    inProcess: true,
    async make () {
      const cache = new Cache({ ...prefixes('memory'), redis: { fake: true, name: `bench-${process.pid}` }, lockName: 'bench-memory' })
      return { cache, close: () => cache.close() }
    }
  },
  {
    id: 'map',
    inProcess: true,
    async make () {
      return { cache: new MapCache('bench-map'), close: async () => {} }
    }
  }
]

/**
 * `op(worker, done)` for `kind` on `cache`, each worker on its own key.
 * `tally` counts the saves and loads a mix made.
 */
function operation (kind, cache, value, tally = { save: 0, load: 0 }) {
  const blobLength = value.blob.length
  const save = (key, done) => cache.save(key, value, LIFETIME_MS, (error) => done(error))
  const load = (key, done) => cache.load(key, (error, loaded) => {
    if (!error && !(loaded && loaded.blob && loaded.blob.length === blobLength)) error = new Error(`${key} loaded something else`)
    done(error)
  })
  const key = (worker) => `w${worker}`
  switch (kind) {
    case 'save': return (worker, done) => save(key(worker), done)
    case 'load': return (worker, done) => load(key(worker), done)
    case 'mix': return (worker, done) => {
      const which = Math.random() < 0.5 ? 'save' : 'load'
      tally[which]++
      return which === 'save' ? save(key(worker), done) : load(key(worker), done)
    }
    case 'lock': return (worker, done) => cache.lock(key(worker), LOCK_MS, (error, locked) => {
      if (error || !locked) return done(error || new Error(`${key(worker)} was not locked`))
      cache.unlock(key(worker), (error, unlocked) => done(error || (unlocked ? null : new Error(`${key(worker)} was not unlocked`))))
    })
    default: throw new Error(`no operation ${kind}`)
  }
}

/** Saves every worker's key, so that loads find it (untimed). */
async function fill (cache, concurrency, value) {
  await measure({ concurrency, ops: concurrency, latencies: false }, operation('save', cache, value))
}

// What the Redis server did: INFO cpu and commandstats, before and after.

async function serverSample (client) {
  const text = await client.info('cpu', 'commandstats')
  const field = (name) => Number((new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text) || [])[1])
  const commands = {}
  const usec = {}
  for (const [, name, calls, micros] of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    commands[name] = Number(calls)
    usec[name] = Number(micros)
  }
  return { cpuSeconds: field('used_cpu_sys') + field('used_cpu_user'), commands, usec }
}

/**
 * Server CPU µs and each command's count per operation, and each command's
 * own time per call (commandstats' usec: a script's includes the commands
 * it runs); the bench's own INFO left out.
 */
function serverDelta (before, after, ops) {
  const commands = {}
  const usecPerCall = {}
  for (const [name, calls] of Object.entries(after.commands)) {
    if (name === 'info') continue
    const delta = calls - (before.commands[name] || 0)
    if (delta > 0) {
      commands[name] = delta / ops
      usecPerCall[name] = (after.usec[name] - (before.usec[name] || 0)) / delta
    }
  }
  return { cpuMicrosPerOp: (after.cpuSeconds - before.cpuSeconds) * 1e6 / ops, commands, usecPerCall }
}

/** `measure`, with what Redis did meanwhile as `result.server` (see serverDelta). */
async function measureOnRedis (probe, options, op) {
  const before = await serverSample(probe)
  const result = await measure(options, op)
  result.server = serverDelta(before, await serverSample(probe), result.ops)
  return result
}

/**
 * The commands Lua scripts ran per operation (commandstats counts them
 * with the client's own): MONITOR marks them with the source "lua". Runs
 * `ops` operations one at a time with a MONITOR connection open; counts
 * only commands on keys under `keyPrefix` (the implementation's own).
 */
async function scriptCommandsPerOp (redis, probe, keyPrefix, run, ops) {
  const monitorClient = new Redis({ ...redis, lazyConnect: true })
  await monitorClient.connect()
  const monitor = await monitorClient.monitor()
  const counts = {}
  const marker = `${ROOT}census-${Date.now()}`
  try {
    const seenMarker = new Promise((resolve) => monitor.on('monitor', (time, args, source) => {
      const name = args[0].toLowerCase()
      if (source === 'lua' && String(args[1]).startsWith(keyPrefix)) counts[name] = (counts[name] || 0) + 1
      else if (name === 'echo' && args[1] === marker) resolve()
    }))
    await run()
    // MONITOR's feed may trail the replies: wait until it shows this marker.
    await probe.echo(marker)
    await seenMarker
  } finally {
    monitor.disconnect()
    monitorClient.disconnect()
  }
  for (const name of Object.keys(counts)) counts[name] /= ops
  return counts
}

/** Top-level commands per op: commandstats' counts less those run inside scripts. */
function topLevel (commands, inScripts) {
  const top = {}
  for (const [name, perOp] of Object.entries(commands)) {
    const count = perOp - (inScripts[name] || 0)
    if (count >= 0.01) top[name] = count
  }
  return top
}

/** Weighted sum of per-op command counts: { name: count } × weight. */
function blend (parts) {
  const sum = {}
  for (const [counts, weight] of parts) {
    for (const [name, count] of Object.entries(counts)) sum[name] = (sum[name] || 0) + count * weight
  }
  return sum
}

// redis-benchmark, the raw SET / GET floor.

function redisBenchmark (redis, { test, concurrency, size, requests }) {
  const output = execFileSync('redis-benchmark', [
    '-h', redis.host, '-p', String(redis.port), '--dbnum', String(DB),
    '-c', String(concurrency), '-n', String(requests), '-d', String(size), '-t', test, '--csv'
  ], { encoding: 'utf8', maxBuffer: 1 << 20 })
  const line = output.split('\n').find((row) => row.startsWith(`"${test.toUpperCase()}"`))
  if (!line) throw new Error(`cannot read redis-benchmark's output:\n${output}`)
  const [, rps, , , p50, , p99] = line.split(',').map((cell) => Number(cell.replace(/"/g, '')))
  return { opsPerSecond: rps, p50: p50 * 1000, p99: p99 * 1000, ops: requests }
}

/** How many requests make a redis-benchmark run of `test` last about `seconds`, from a short first run. */
function redisBenchmarkRequests (redis, test, concurrency, size, seconds) {
  const trial = redisBenchmark(redis, { test, concurrency, size, requests: Math.max(1000, concurrency * 4) })
  return Math.max(concurrency * 4, Math.round(trial.opsPerSecond * seconds))
}

/** One timed redis-benchmark run of SET (as save) or GET (as load), with Redis's CPU and commands per op. */
async function redisBenchmarkRound (redis, probe, { test, concurrency, size, requests }) {
  const before = await serverSample(probe)
  const result = redisBenchmark(redis, { test, concurrency, size, requests })
  const server = serverDelta(before, await serverSample(probe), requests)
  // Each client's SELECT and redis-benchmark's CONFIG GET are setup, not per call.
  delete server.commands.select
  delete server.commands['config|get']
  return { ...result, server, top: server.commands }
}

// The socat relay: one more hop on every round trip.

async function startRelay (redis) {
  const port = await freePort()
  // nodelay on both sides, as Redis and both clients set it: without it,
  // Nagle's algorithm and delayed ACKs hold a multi-segment reply (10 kB)
  // for ~40 ms, and the relay would measure that instead of the extra hop.
  const relay = spawn('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,nodelay`, `TCP:${redis.host}:${redis.port},nodelay`],
    { detached: true, stdio: 'ignore' })
  const exited = new Promise((resolve) => relay.once('exit', resolve))
  for (let i = 0; i < 50 && !(await accepts(port)); i++) await sleep(100)
  if (!(await accepts(port))) throw new Error(`socat did not listen on ${port}`)
  return {
    port,
    async stop () {
      // Its group: the listener and the child it forked per connection.
      try { process.kill(-relay.pid, 'SIGTERM') } catch (_) {}
      await exited
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Children: an actionhero app, and the memory-growth runs.

/** Runs this script with `--child job`; answers the JSON its last stdout line holds. */
function runChild (job, env = {}, nodeArgs = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, __filename, '--child', JSON.stringify(job)],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (chunk) => { stdout += chunk })
    child.once('error', reject)
    child.once('exit', (code) => {
      const last = stdout.trim().split('\n').pop()
      if (code !== 0) return reject(new Error(`child ${job.kind} exited with ${code}: ${stdout}`))
      try { resolve(JSON.parse(last)) } catch (error) { reject(new Error(`child ${job.kind} printed ${stdout}`)) }
    })
  })
}

/**
 * The CPU time Node's own thread (`node`) and the addon's runtime thread
 * (`runtime`) have used so far, in s. From /proc/self/task, so none
 * elsewhere than Linux.
 */
function threadCpuSeconds () {
  const totals = { node: 0, runtime: 0 }
  let tasks
  try {
    tasks = fs.readdirSync('/proc/self/task')
  } catch {
    return null
  }
  for (const tid of tasks) {
    let stat
    try {
      stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
    } catch {
      continue // the thread ended meanwhile
    }
    // The name may hold spaces: the fields that follow it are counted from its closing parenthesis.
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const seconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
    if (Number(tid) === process.pid) totals.node += seconds
    else if (name.startsWith('actionhero-nat')) totals.runtime += seconds // src/runtime.rs names it; Linux keeps 15 characters
  }
  return totals
}

// /proc's utime and stime unit (USER_HZ), 100 on every Linux build.
const CLOCK_TICKS = 100

/** `measureOnRedis`, with how busy each of this process's threads was meanwhile (a fraction of the run) as `result.threads`. */
async function measureWithThreads (probe, options, op) {
  const before = threadCpuSeconds()
  const result = await measureOnRedis(probe, options, op)
  const after = threadCpuSeconds()
  if (before && after) {
    result.threads = Object.fromEntries(Object.keys(after).map((thread) => [thread, (after[thread] - before[thread]) / result.seconds]))
  }
  return result
}

/**
 * In a child: boots the example actionhero 16 app (as
 * __tests__/actionhero-app.test.js does) on database 15, with or without
 * the native initializer, and times api.cache.save and load.
 */
async function appChild ({ native, seconds, concurrency, root, redis }) {
  const ActionHero = require('actionhero')
  const server = new ActionHero()
  const general = {
    cachePrefix: `${root}app:cache:`,
    lockPrefix: `${root}app:lock:`,
    channel: `${root}app:channel`
  }
  // No project initializers: actionhero's own JS cache stays.
  if (!native) general.paths = { initializer: [] }
  const api = await new Promise((resolve, reject) => {
    server.start({ configChanges: { general } }, (error, api) => (error ? reject(error) : resolve(api)))
  })
  if ((api.cache instanceof Cache) !== native) throw new Error(`api.cache is ${native ? 'not ' : ''}the native cache`)
  const value = valueOfSize(100)
  const results = {}
  const probe = new Redis(redis)
  // A fresh process: both paths warmed (JIT, connections) before timing.
  await fill(api.cache, 8, value)
  for (const kind of ['save', 'load']) await measure({ concurrency: 8, seconds: 0.5, latencies: false }, operation(kind, api.cache, value))
  for (const c of concurrency) {
    await fill(api.cache, c, value)
    for (const kind of ['save', 'load']) {
      results[`${kind}:${c}`] = await measureWithThreads(probe, { concurrency: c, seconds }, operation(kind, api.cache, value))
    }
  }
  probe.disconnect()
  await new Promise((resolve, reject) => server.stop((error) => (error ? reject(error) : resolve())))
  return results
}

/**
 * In a child: `calls` save+load calls (64 in flight, 100 B values, on 64
 * keys), twice; the RSS after a full GC at the start, after the first step
 * and after each eighth of the second.
 */
async function growthChild ({ store, redis, calls, root }) {
  const where = store === 'redis' ? redis : { fake: true, name: `growth-${process.pid}` }
  const cache = new Cache({ ...prefixes('growth', root), redis: where, lockName: 'bench-growth' })
  const value = valueOfSize(100)
  const save = operation('save', cache, value)
  const load = operation('load', cache, value)
  const roundTrip = (worker, done) => save(worker, (error) => (error ? done(error) : load(worker, done)))
  const rss = () => { global.gc(); return process.memoryUsage().rss }
  const concurrency = 64
  await fill(cache, concurrency, value)
  const atStart = rss()
  await measure({ concurrency, ops: calls / 2, latencies: false }, roundTrip)
  const first = rss()
  const readings = []
  for (let reading = 0; reading < GROWTH_READINGS; reading++) {
    await measure({ concurrency, ops: calls / 2 / GROWTH_READINGS, latencies: false }, roundTrip)
    readings.push(rss())
  }
  await cache.close()
  return { atStart, first, readings }
}

// The parent.

async function scanDelete (client, pattern) {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    if (keys.length) await client.del(...keys)
    cursor = next
  } while (cursor !== '0')
}

/** Short rounds per case, each implementation in turn; the median round counts. */
const ROUNDS = 3
// The in-memory store and the Map answer on this thread in a µs or so: a
// few ms of other work on the machine outweigh a round of them. They take
// more, shorter rounds, by themselves, in turn, and are compared round by
// round (see pairedRatio): with three rounds, their ratio for one case moved
// by up to a fifth between runs. The cluster, which answers from Redis
// though INFO is not read for it, once took these rounds too, each just
// before the in-memory store's: what its round left behind (garbage, three
// busy servers) weighed on the in-memory store's rounds and not on the
// Map's.
const IN_PROCESS_ROUNDS = 9

/** The round with the median calls per second. */
function median (rounds) {
  return [...rounds].sort((a, b) => a.opsPerSecond - b.opsPerSecond)[Math.floor(rounds.length / 2)]
}

/**
 * One timed round of `kind` on `cache`; on Redis, with the server's CPU and
 * top-level commands per op (a mix's scripts blended by what it did).
 */
async function measureCase (probe, implementation, scripts, kind, cache, value, concurrency, seconds) {
  const tally = { save: 0, load: 0 }
  const op = operation(kind, cache, value, tally)
  if (!implementation.onRedis) return measure({ concurrency, seconds }, op)
  const result = await measureOnRedis(probe, { concurrency, seconds }, op)
  const ownScripts = kind === 'mix'
    ? blend([[scripts.save, tally.save / (tally.save + tally.load)], [scripts.load, tally.load / (tally.save + tally.load)]])
    : scripts[kind]
  result.top = topLevel(result.server.commands, ownScripts)
  return result
}

async function runMatrix (redis, probe, options, results, log) {
  const { sizes, concurrency } = plan(options)
  const built = []
  const chosen = IMPLEMENTATIONS.filter((implementation) => !options.only || options.only.includes(implementation.id))
  for (const implementation of chosen) built.push({ implementation, ...(await implementation.make(redis)) })
  const plain = await PlainRedis.connect({ ...redis, db: DB, prefix: `${ROOT}plain:` })
  try {
    // Warm every connection (and the addon's script cache) before timing.
    const warmValue = valueOfSize(100)
    for (const { cache } of built) {
      await measure({ concurrency: 8, seconds: 0.1, latencies: false }, operation('save', cache, warmValue))
      await measure({ concurrency: 8, seconds: 0.1, latencies: false }, operation('load', cache, warmValue))
    }
    const inScripts = {} // by implementation, then op
    for (const size of sizes) {
      const value = valueOfSize(size)
      // The commands Lua scripts run, per op (one at a time, a few ops);
      // lock+unlock's do not depend on the value.
      for (const { implementation, cache } of built.filter((b) => b.implementation.onRedis)) {
        const counts = inScripts[implementation.id] = inScripts[implementation.id] || {}
        await fill(cache, 1, value)
        for (const kind of counts.lock ? ['save', 'load'] : ['save', 'load', 'lock']) {
          const ops = 20
          counts[kind] = await scriptCommandsPerOp(redis, probe, `${ROOT}${implementation.id}:`,
            () => measure({ concurrency: 1, ops, latencies: false }, operation(kind, cache, value)), ops)
        }
      }

      for (const c of concurrency) {
        for (const { cache } of built) await fill(cache, c, value)
        // Op by op, every implementation in turn, in ROUNDS short rounds:
        // what they are compared with ran moments before, under the same
        // load from the machine, and each keeps its median round, so that a
        // moment of other work on the machine does not decide a ratio.
        for (const kind of OPS) {
          if (kind === 'lock' && size !== sizes[0]) continue // the value plays no part
          const rowSize = kind === 'lock' ? null : size
          const rounds = built.map(() => [])
          const failed = built.map(() => null)
          // redis-benchmark's SET / GET, the floor of a save / load, takes
          // its rounds among the implementations on Redis: run once,
          // apart, a moment of other work on the machine moved it alone.
          const test = options.only ? null : { save: 'set', load: 'get' }[kind]
          const floor = test && { test, concurrency: c, size, requests: redisBenchmarkRequests(redis, test, c, size, options.seconds / ROUNDS) }
          const floorRounds = []
          for (const [inProcess, count] of [[false, ROUNDS], [true, IN_PROCESS_ROUNDS]]) {
            for (let round = 0; round < count; round++) {
              if (floor && !inProcess && round % 2 === 0) floorRounds.push(await redisBenchmarkRound(redis, probe, floor))
              // In turn, first to last, then last to first: none always
              // runs just after the same other one.
              const inTurn = round % 2 === 0 ? [...built.entries()] : [...built.entries()].reverse()
              for (const [i, { implementation, cache }] of inTurn) {
                if (failed[i] || Boolean(implementation.inProcess) !== inProcess) continue
                try {
                  rounds[i].push(await measureCase(probe, implementation, inScripts[implementation.id], kind, cache, value, c, options.seconds / count))
                } catch (error) {
                  failed[i] = error
                }
              }
              if (floor && !inProcess && round % 2 === 1) floorRounds.push(await redisBenchmarkRound(redis, probe, floor))
            }
          }
          if (floor) results.cases.push({ kind, size, concurrency: c, id: 'redis-benchmark', result: median(floorRounds) })
          for (const [i, { implementation }] of built.entries()) {
            const entry = { kind, size: rowSize, concurrency: c, id: implementation.id }
            if (failed[i]) {
              results.cases.push({ ...entry, error: failed[i].message })
              results.failures++
            } else {
              results.cases.push({ ...entry, result: median(rounds[i]), roundOps: rounds[i].map((r) => r.opsPerSecond) })
            }
          }
          log(`${OP_LABELS[kind]} ${rowSize ? SIZE_LABELS[size] : ''} c=${c}`)
        }
        if (options.only) continue
        for (const kind of ['save', 'load']) {
          await fill(plain, c, value)
          const plainResult = await measureOnRedis(probe, { concurrency: c, seconds: options.seconds }, operation(kind, plain, value))
          plainResult.top = plainResult.server.commands
          results.cases.push({ kind, size, concurrency: c, id: 'plain', result: plainResult })
        }
        log(`plain SET / GET ${SIZE_LABELS[size]} c=${c}`)
        if (size === sizes[0] && c === 1) {
          results.crossing = await crossingFloor(probe, built.find((b) => b.implementation.id === 'native').cache, plain, options.seconds)
          log('PTTL one at a time: addon, plain')
        }
      }
    }
  } finally {
    for (const { close } of built) await close()
    plain.close()
  }
}

/**
 * The addon's plainest call, one at a time: `pttl`, a bare PTTL of an
 * entry (no script, no envelope, nothing to write), beside the same PTTL
 * from the bare socket. What one answers later than the other is what the
 * way between Node's thread and the runtime's costs a call by itself.
 */
async function crossingFloor (probe, cache, plain, seconds) {
  const options = { concurrency: 1, seconds }
  return {
    native: await measureOnRedis(probe, options, (worker, done) => cache.pttl(`${cache.cachePrefix}w${worker}`, done)),
    plain: await measureOnRedis(probe, options, (worker, done) => plain.pttl(`w${worker}`, done))
  }
}

async function runRelay (redis, options, results, log) {
  const { relay: { concurrency, sizes, ops } } = plan(options)
  const relay = await startRelay(redis)
  const throughRelay = { ...redis, port: relay.port }
  try {
    for (const implementation of IMPLEMENTATIONS.filter((i) => i.onRedis)) {
      const { cache, close } = await implementation.make(throughRelay)
      try {
        for (const size of sizes) {
          const value = valueOfSize(size)
          for (const c of concurrency) {
            await fill(cache, c, value)
            for (const kind of ops) {
              const result = await measure({ concurrency: c, seconds: options.seconds }, operation(kind, cache, value))
              results.relay.push({ kind, size, concurrency: c, id: implementation.id, result })
            }
          }
        }
      } finally {
        await close()
      }
      log(`relay ${implementation.id}`)
    }
  } finally {
    await relay.stop()
  }
}

async function runApps (redis, probe, options, results, log) {
  const { app: { concurrency } } = plan(options)
  const env = {
    PROJECT_ROOT: APP_DIR,
    NODE_ENV: 'test',
    FAKEREDIS: 'false',
    REDIS_HOST: redis.host,
    REDIS_PORT: String(redis.port),
    REDIS_DB: String(DB),
    REDIS_PASSWORD: ''
  }
  // As the operations: the two apps in turn, ROUNDS times, each case's
  // median round; but each round takes a case's whole time, where the
  // operations' rounds share it: in a round of 0.5 s the ratio of the two
  // apps, one call at a time, ranged from 1.35x to 2x between runs.
  const rounds = { native: [], js: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const native of [true, false]) {
      await probe.flushdb()
      try {
        rounds[native ? 'native' : 'js'].push(await runChild({ kind: 'app', native, seconds: options.seconds, concurrency, root: ROOT, redis }, env))
      } finally {
        await probe.flushdb()
      }
      log(`actionhero app, ${native ? 'native initializer' : 'JS cache'}, round ${round + 1} of ${ROUNDS}`)
    }
  }
  for (const [id, runs] of Object.entries(rounds)) {
    results.app[id] = Object.fromEntries(Object.keys(runs[0]).map((key) => [key, median(runs.map((run) => run[key]))]))
  }
}

// The growth children's V8 young generation at its full size from the
// start. Left to itself, V8 grows it from 1 MB to 16 MB per semi-space
// whenever a burst of short-lived garbage calls for it, at no fixed point of
// the run: RSS then rises 16 or 32 MB once, in any step, and levels off (a
// plain-JS Map cache does the same), which is not the leak this looks for.
const YOUNG_GENERATION = ['--min-semi-space-size=16', '--max-semi-space-size=16']

// The second step's RSS is read after each eighth of it, and judged by its
// halves (see growthOverSecond): the allocators' own steps move RSS up and
// down by several MB from one reading to the next (a run of five million
// calls on Redis: 93.1, 89.7, 95.7, 91.3, 93.6 MB, V8's heap flat; on an
// Intel machine 102.3 after the first million, then 109.2, 109.1, 109.1,
// 102.2 over the second), where a leak raises every reading after it.
const GROWTH_READINGS = 8

async function runGrowth (redis, options, results, log) {
  const { growthCalls } = plan(options)
  results.growthCalls = growthCalls
  for (const store of ['memory', 'redis']) {
    results.growth[store] = await runChild({ kind: 'growth', store, redis, calls: growthCalls, root: ROOT }, {}, ['--expose-gc', ...YOUNG_GENERATION])
    log(`memory growth, ${store} store`)
  }
}

// The table.

const ratio = (a, b) => times(a / b)

function commandsText (top) {
  const entries = Object.entries(top || {}).sort((a, b) => b[1] - a[1])
  if (entries.length === 0) return '—'
  return entries.map(([name, count]) => `${name.toUpperCase()} ${short(count)}`).join(', ')
}

function cell (entry) {
  if (!entry) return '—'
  if (entry.error) return `failed: ${entry.error}`
  const r = entry.result
  const parts = [`${format(r.opsPerSecond)}/s`, `${short(r.p50)} / ${short(r.p99)} µs`]
  if (r.server) parts.push(`srv ${short(r.server.cpuMicrosPerOp)} µs`)
  if (r.cpuMicrosPerOp !== undefined) parts.push(`cli ${short(r.cpuMicrosPerOp)} µs`)
  if (r.top) parts.push(commandsText(r.top))
  return parts.join(' · ')
}

function render (options, results, meta) {
  const { sizes, concurrency, app } = plan(options)
  const find = (list, kind, size, c, id) => list.find((e) => e.kind === kind && e.size === size && e.concurrency === c && e.id === id)
  const opsOf = (entry) => (entry && entry.result ? entry.result.opsPerSecond : NaN)
  const srvOf = (entry) => (entry && entry.result && entry.result.server ? entry.result.server.cpuMicrosPerOp : NaN)
  const lines = []
  const out = (line = '') => lines.push(line)

  out('# actionhero-native-cache benchmark')
  out()
  out(`- date: ${meta.date}; whole run ${Math.round(meta.elapsedSeconds)} s; ${options.seconds} s per case${options.quick ? ' (--quick)' : ''}`)
  out(`- machine: ${os.cpus().length} cores (${os.cpus()[0].model}), ${os.type()} ${os.release()}; ` +
    `load average ${meta.loadBefore} before the run, ${loadAverage()} after (other work on the machine shows as noise)`)
  out(`- Node ${process.version}; Redis ${meta.redisVersion}, ${meta.redisWhere}, database ${DB}`)
  out(`- addon: ${meta.binary}; checkout at commit ${meta.commit}; actionhero ${require('actionhero/package.json').version}, ioredis ${require('ioredis/package.json').version}`)
  out()
  if (!options.only) lines.push(...renderTargets(results, results.limits))
  out('## Operations')
  out()
  out('Each cell: operations per second · p50 / p99 latency (µs, per call from hrtime) · Redis server CPU per op (INFO cpu delta / ops) · ' +
    'this process\'s CPU per op (every thread) · top-level commands per op (INFO commandstats delta, less the commands Lua scripts ran, which MONITOR counts in a short separate run). ' +
    'c = operations in flight (async loops, each waiting for its callback). A lock+unlock op is two calls. ' +
    `The implementations take each case in turn (the order reversed every other round), in ${ROUNDS} rounds that share the case's time (the in-memory store and the Map: ${IN_PROCESS_ROUNDS}, by themselves, after the others'); a cell is the round with the median operations per second (plain and relay: one run); redis-benchmark takes its rounds among those on Redis, first in one round and last in the next, ` +
    'and in-memory / Map is the median of the ratios of their rounds, each round of one against the other\'s round run just before or after it. ' +
    'redis-benchmark: `-t set` for save, `-t get` for load, `-d` the value\'s JSON size, same c; its latencies are its own (at these latencies its p50 moves in steps of 8 µs). ' +
    'Plain SET / GET: one plain `SET` (save) or `GET` (load) per call from this Node process on a bare socket (bench/plain-redis.js), timed as the caches are: ' +
    'the round trip as any Node client pays it, its reply waking Node\'s thread.')
  out()
  out('| op | value | c | addon / JS cache, ops/s | addon / JS cache, server CPU | in-memory / Map, ops/s | addon on Redis | JS cache on ioredis | redis-benchmark | plain SET / GET from Node | via socat relay: addon, JS (addon / JS) | addon, in-memory store | JS Map | addon on a 3-master Redis Cluster (cluster / one Redis) |')
  out('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const size of sizes) {
    for (const c of concurrency) {
      for (const kind of OPS) {
        if (kind === 'lock' && size !== sizes[0]) continue
        const rowSize = kind === 'lock' ? null : size
        const get = (id) => find(results.cases, kind, rowSize, c, id)
        const native = get('native')
        const js = get('js')
        const memory = get('memory')
        const map = get('map')
        const cluster = get('cluster')
        const relayNative = find(results.relay, kind, size, c, 'native')
        const relayJs = find(results.relay, kind, size, c, 'js')
        const relay = relayNative && relayJs
          ? `${format(opsOf(relayNative))}/s, ${format(opsOf(relayJs))}/s (${ratio(opsOf(relayNative), opsOf(relayJs))})`
          : '—'
        out(`| ${OP_LABELS[kind]} | ${kind === 'lock' ? '—' : SIZE_LABELS[size]} | ${c} | ` +
          `**${ratio(opsOf(native), opsOf(js))}** | **${ratio(srvOf(native), srvOf(js))}** | **${times(pairedRatio(memory, map))}** | ` +
          `${cell(native)} | ${cell(js)} | ${cell(get('redis-benchmark'))} | ${cell(get('plain'))} | ${relay} | ${cell(memory)} | ${cell(map)} | ` +
          `${cell(cluster)}${cluster ? ` (${ratio(opsOf(cluster), opsOf(native))})` : ''} |`)
      }
    }
  }
  out()
  out(`save: expireTimeMS ${LIFETIME_MS}. load: each worker's own saved entry (a plain load, which also rewrites readAt). ` +
    'Server CPU below 1 µs/op is within INFO\'s resolution over a short run. The relay column: the same two caches through ' +
    '`socat TCP-LISTEN:…,fork,nodelay TCP:<redis>,nodelay`, where each extra round trip per call costs one more hop. ' +
    'The cluster column: the addon on a Redis Cluster of three masters the script starts on this machine (database 0, keys hash-tagged), ' +
    'so three servers and this process share its cores; in brackets, its ops/s over the addon on one Redis in the same run.')
  out()
  // --only ran the operations alone.
  if (options.only) return lines.join('\n') + '\n'
  out('## Inside an actionhero 16 app')
  out()
  out('The example app (examples/actionhero-app) booted in a child process on database 15 (flushed before and after), ' +
    'with its native initializer and without it (actionhero\'s own JS cache); `api.cache.save` / `load`, 100 B values. ' +
    `Cells as above (each app booted ${ROUNDS} times, in turn with the other, each case ${options.seconds} s per boot; the median round); cli is the app process's CPU (every thread), srv all of Redis's (the app's own clients included).`)
  out()
  out('| op | c | native / JS | with the native initializer | actionhero\'s JS cache |')
  out('|---|---|---|---|---|')
  for (const c of app.concurrency) {
    for (const kind of ['save', 'load']) {
      const native = results.app.native && results.app.native[`${kind}:${c}`]
      const js = results.app.js && results.app.js[`${kind}:${c}`]
      const appCell = (r) => (r ? cell({ result: r }) : '')
      out(`| ${kind} | ${c} | **${ratio(native && native.opsPerSecond, js && js.opsPerSecond)}** | ${appCell(native)} | ${appCell(js)} |`)
    }
  }
  out()
  out('## Memory growth')
  out()
  const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`
  const million = results.growthCalls === 1000000 ? 'million' : `${format(results.growthCalls)}`
  out(`RSS of a child process (after a full GC) doing save+load calls, half each, 64 in flight on 64 keys, 100 B values: ` +
    `before, after the first ${million} calls and after each eighth of the second. V8's young generation is fixed at its full size ` +
    `(${YOUNG_GENERATION.join(' ')}), which V8 would otherwise reach by growing at some point of the run. RSS moves in steps, up and down ` +
    '(allocator arenas), so the second is judged by its halves: the mean of its last four readings less the mean of its first four. ' +
    'A step comes and goes; a leak raises every reading after it.')
  out()
  out(`| store | before | after the first ${million} | after each eighth of the second ${million} | second half − first half |`)
  out('|---|---|---|---|---|')
  for (const [store, label] of [['memory', 'in-memory'], ['redis', 'Redis']]) {
    const g = results.growth[store]
    if (!g) continue
    const delta = growthOverSecond(g)
    out(`| ${label} | ${mb(g.atStart)} | ${mb(g.first)} | ${g.readings.map(mb).join(', ')} | ${delta >= 0 ? '+' : '−'}${mb(Math.abs(delta))} |`)
  }
  return lines.join('\n') + '\n'
}

async function main () {
  const options = parseArgs(process.argv.slice(2))
  if (options.child) {
    const job = options.child
    const result = job.kind === 'app' ? await appChild(job) : await growthChild(job)
    process.stdout.write(`${JSON.stringify(result)}\n`)
    process.exit(0) // actionhero may leave timers behind
  }

  const begun = Date.now()
  const loadBefore = loadAverage()
  const log = (message) => process.stderr.write(`[${((Date.now() - begun) / 1000).toFixed(0)} s] ${message}\n`)
  let server = null
  let redis
  if (options.redis) {
    const [host, port] = options.redis.split(':')
    redis = { host, port: Number(port), db: DB }
  } else {
    server = await startRedis()
    redis = { host: '127.0.0.1', port: server.port, db: DB }
  }
  const probe = new Redis({ ...redis, lazyConnect: true })
  const results = { cases: [], relay: [], app: {}, growth: {}, failures: 0 }
  const stopAll = async () => {
    if (probe.status === 'ready') {
      await scanDelete(probe, `${ROOT}*`)
      await probe.del(REDIS_BENCHMARK_KEY)
    }
    probe.disconnect()
    if (server) await server.stop()
  }
  process.once('SIGINT', () => stopAll().finally(() => process.exit(130)))
  let redisVersion
  try {
    await probe.connect()
    redisVersion = /redis_version:(\S+)/.exec(await probe.info('server'))[1]
    await runMatrix(redis, probe, options, results, log)
    if (!options.only) {
      results.limits = await measureLimits(plan(options).sizes)
      log('limits of the in-memory store')
      await runRelay(redis, options, results, log)
      await runApps(redis, probe, options, results, log)
      await runGrowth(redis, options, results, log)
    }
  } finally {
    await stopAll()
  }

  const table = render(options, results, {
    date: new Date().toISOString(),
    elapsedSeconds: (Date.now() - begun) / 1000,
    loadBefore,
    redisVersion,
    redisWhere: server ? 'a private redis-server on loopback started by the script' : `the server at ${options.redis}`,
    commit: gitCommit(),
    binary: binaryDescription()
  })
  process.stdout.write(table)
  if (options.out) {
    fs.writeFileSync(options.out, table)
    log(`written to ${path.relative(process.cwd(), options.out)}`)
  }
  if (results.failures) {
    log(`${results.failures} case(s) failed`)
    process.exitCode = 1
  }
}

/** The 1-minute load average. */
const loadAverage = () => os.loadavg()[0].toFixed(2)

/** Which build ran: the binary is copied in, not built from the checkout. */
function binaryDescription () {
  const dir = path.join(__dirname, '..')
  const file = fs.readdirSync(dir).find((name) => /^actionhero-native-cache\..*\.node$/.test(name))
  if (!file) return 'no binary found'
  const bytes = fs.readFileSync(path.join(dir, file))
  const sha = require('crypto').createHash('sha256').update(bytes).digest('hex').slice(0, 12)
  return `${file}, sha256 ${sha}…, modified ${fs.statSync(path.join(dir, file)).mtime.toISOString()}`
}

/** HEAD, and the files that differ from it (but this table), which a run's numbers come from too. */
function gitCommit () {
  const git = (...args) => execFileSync('git', ['-C', path.join(__dirname, '..'), ...args], { encoding: 'utf8' })
  try {
    const changed = git('status', '--porcelain', '--untracked-files=no').split('\n')
      .map((line) => line.slice(3)).filter((file) => file !== '' && file !== 'bench/RESULTS.md')
    return git('rev-parse', '--short', 'HEAD').trim() + (changed.length ? ` with uncommitted changes to ${changed.join(', ')}` : '')
  } catch (_) {
    return 'unknown'
  }
}

main().catch((error) => { console.error(error); process.exit(1) })
