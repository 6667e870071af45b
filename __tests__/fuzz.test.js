'use strict'

// Property test (fast-check) on both stores: random calls over every method
// and setter, with keys, values, times and options of every type, on top of
// entries planted corrupt or of the wrong type. Every call must
//   - throw a TypeError synchronously (exactly when an argument is refused:
//     see support/fuzz-inputs.js), or call its callback exactly once, after
//     returning, with an Error carrying a string `code`, or with results;
//   - change no key but the ones it may (none at all when it fails);
//   - leave the process alive.
// The calls run in a worker process (support/fuzz-worker.js), so that a
// native crash is a failed property here, not a dead jest.

const fs = require('fs')
const os = require('os')
const path = require('path')
const { fork } = require('child_process')
const fc = require('fast-check')
const inputs = require('./support/fuzz-inputs')
const { RUN, REDIS, cleanupRedis } = require('./support/stores')

const WORKER = path.join(__dirname, 'support', 'fuzz-worker.js')
const DB = 13
// 4 properties x 50 runs x 50 calls = 10,000 calls per store.
const CALLS_PER_RUN = 50
const RUNS_PER_PROPERTY = 50
/** Only turns a worker that stops answering into a failure; not a speed requirement. */
const BATCH_GUARD_MS = 60000

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-'))
// The memory store is seen through dump files, written twice a call: in memory where the system has that.
const snapshotDir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'fuzz-snapshots-'))
afterAll(async () => {
  fs.rmSync(tmpDir, { recursive: true, force: true })
  fs.rmSync(snapshotDir, { recursive: true, force: true })
  await cleanupRedis(DB)
})

// ------------------------------------------------------------ the inputs

const names = (pool, keep = () => true) => Object.keys(pool).filter((name) => keep(pool[name], name))
const constants = (list) => fc.constantFrom(...list)
/** Mostly `common`, now and then `rare`. */
const mostly = (common, rare, rareWeight = 1, commonWeight = 10) =>
  fc.oneof({ weight: commonWeight, arbitrary: common }, { weight: rareWeight, arbitrary: rare })

const KEY_NAMES = names(inputs.KEYS, (key, name) => inputs.classifyKey(key) === inputs.VALID && name !== 'long-1mb')
const BAD_KEY_NAMES = names(inputs.KEYS, (key) => inputs.classifyKey(key) === inputs.INVALID)
const key = fc.oneof(
  { weight: 100, arbitrary: constants(KEY_NAMES) },
  { weight: 1, arbitrary: fc.constant('long-1mb') },
  { weight: 12, arbitrary: constants(BAD_KEY_NAMES) }
)

const BIG_VALUES = ['string-1mb', 'array-100k', 'object-10k', 'deep-1000', 'deep-100k']
// Big values are rare: once stored, every later snapshot of the batch copies them.
const value = mostly(constants(names(inputs.VALUES, (_, name) => !BIG_VALUES.includes(name))), constants(BIG_VALUES), 1, 60)

const anyTime = constants(names(inputs.TIMES))
const anyRetry = constants(inputs.RETRY_NAMES)
const SETTER_TIMES = names(inputs.TIMES, (_, name) => name !== 'omit')
const SETTER_RETRIES = inputs.RETRY_NAMES.filter((name) => name !== 'omit')

const callback = mostly(fc.constant('function'), constants(names(inputs.CALLBACKS, (_, name) => name !== 'function')), 1, 40)

const loadOptions = (time, retry) => fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'omit' }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('object'), expireTimeMS: time, retry }) },
  { weight: 1, arbitrary: constants(['undefined', 'null', 'string', 'number', 'true', 'array', 'function'].map((kind) => ({ kind }))) }
)

/** Call descriptors by method; `time` and `retry` are the theme's. */
function callArbitraries ({ time, retry }) {
  const withKey = (m, extra = {}) => fc.record({ m: fc.constant(m), key, ...extra, cb: callback })
  const plain = (m) => fc.record({ m: fc.constant(m), cb: callback })
  const setter = (prop, values) => fc.record({ m: fc.constant('set'), prop: fc.constant(prop), value: values })
  return {
    save: withKey('save', { value, ms: time }),
    load: withKey('load', { options: loadOptions(time, retry) }),
    destroy: withKey('destroy'),
    lock: withKey('lock', { ms: time }),
    unlock: withKey('unlock'),
    checkLock: withKey('checkLock', { retry }),
    locks: plain('locks'),
    keys: plain('keys'),
    size: plain('size'),
    clear: plain('clear'),
    dumpWrite: fc.record({ m: fc.constant('dumpWrite'), file: constants(inputs.DUMP_WRITE_FILES), cb: callback }),
    dumpRead: fc.record({ m: fc.constant('dumpRead'), file: constants(inputs.DUMP_READ_FILES), cb: callback }),
    push: withKey('push', { value }),
    pop: withKey('pop'),
    listLength: withKey('listLength'),
    lockName: setter('lockName', constants(names(inputs.LOCK_NAMES))),
    lockDuration: setter('lockDuration', constants(SETTER_TIMES)),
    // A valid long lockRetry is a long wait between tries, as a long retry is.
    lockRetry: setter('lockRetry', constants(SETTER_RETRIES)),
    redisPrefix: setter('redisPrefix', constants(names(inputs.PREFIXES))),
    cachePrefix: setter('cachePrefix', constants(names(inputs.PREFIXES))),
    lockPrefix: setter('lockPrefix', constants(names(inputs.PREFIXES)))
  }
}

function plantsArbitrary (store, minLength, maxLength) {
  const kinds = names({ ...inputs.PLANTS, ...inputs.LOCK_PLANTS }, (spec) => store === 'redis' || spec.memory)
  const plant = fc.record({ key: mostly(constants(KEY_NAMES), fc.constant('long-1mb'), 1, 100), kind: constants(kinds) })
  return fc.uniqueArray(plant, { minLength, maxLength, selector: ({ key, kind }) => `${key} ${kind in inputs.LOCK_PLANTS}` })
}

/** Each property weighs the methods its own way; together they call every one. */
const THEMES = [
  {
    name: 'keys and values',
    seed: 1601,
    weights: { save: 6, load: 4, destroy: 2, push: 3, pop: 3, listLength: 2, keys: 1, size: 1 },
    times: 'rarely',
    plants: [0, 2]
  },
  {
    name: 'times, retries and lock settings',
    seed: 1602,
    weights: { save: 4, load: 4, lock: 4, unlock: 2, checkLock: 3, locks: 1, lockName: 2, lockDuration: 2, lockRetry: 2 },
    times: 'always',
    plants: [0, 2]
  },
  {
    name: 'planted entries',
    seed: 1603,
    weights: { load: 6, save: 2, destroy: 2, push: 2, pop: 2, listLength: 2, lock: 1, checkLock: 1, keys: 1, size: 1, clear: 1, dumpWrite: 1, dumpRead: 1 },
    times: 'rarely',
    plants: [2, 6]
  },
  {
    name: 'every method and setter',
    seed: 1604,
    weights: Object.fromEntries(Object.keys(callArbitraries({ time: anyTime, retry: anyRetry })).map((m) => [m, 1])),
    times: 'often',
    plants: [0, 3]
  }
]

function batchArbitrary (store, theme) {
  const leftOut = fc.constant('omit')
  const timesWeight = { rarely: 1, often: 5, always: 100 }[theme.times]
  const time = mostly(leftOut, anyTime, timesWeight, 10)
  const retry = mostly(leftOut, anyRetry, timesWeight, 10)
  const arbitraries = callArbitraries({ time, retry })
  const call = fc.oneof(...Object.entries(theme.weights).map(([m, weight]) => ({ weight, arbitrary: arbitraries[m] })))
  return fc.record({
    plants: plantsArbitrary(store, ...theme.plants),
    calls: fc.array(call, { minLength: CALLS_PER_RUN, maxLength: CALLS_PER_RUN })
  })
}

// ------------------------------------------------------------ the worker

let workerCount = 0

function startWorker (store) {
  const progressFile = path.join(tmpDir, `progress-${store}-${++workerCount}.log`)
  const config = {
    store,
    // Short native deadlines, so that a slow Redis answers REDIS_TIMEOUT well
    // before the worker's guard calls the callback lost.
    redis: { ...REDIS, db: DB, connectTimeoutMS: 2000, commandTimeoutMS: 2000 },
    memoryName: `fuzz-${RUN}`,
    progressFile,
    snapshotDir
  }
  const child = fork(WORKER, [JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [] })
  // The tail of what it printed (a panic's message, say), and how much it printed in all.
  let output = ''
  let printed = 0
  const keep = (chunk) => {
    output = (output + chunk).slice(-3000)
    printed += String(chunk).length
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  // Not the 'close' event: it never comes once the parent has disconnected.
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const drained = (stream) => new Promise((resolve) => stream.once('close', resolve))
  const closed = Promise.all([exited, drained(child.stdout), drained(child.stderr)]).then(([exit]) => exit)
  const ready = new Promise((resolve, reject) => {
    child.once('message', resolve)
    closed.then(({ code, signal }) => reject(new Error(`the worker exited (${code ?? signal}) before it was ready: ${output}`)))
  })
  const outputSince = (mark) => (printed > mark ? output.slice(-(printed - mark)) : '')
  return { child, closed, ready, progressFile, printed: () => printed, outputSince }
}

/** What the progress file says of the batch that starts at byte `offset`. */
function progressSince (file, offset) {
  const lines = fs.readFileSync(file).subarray(offset).toString('utf8').split('\n').filter(Boolean)
  const started = lines.filter((line) => line.startsWith('start '))
  const ended = lines.filter((line) => line.startsWith('end '))
  return {
    made: started.length,
    threw: ended.filter((line) => line.endsWith(' threw')).length,
    answered: ended.filter((line) => line.endsWith(' answered')).length,
    inFlight: started.length > ended.length ? started[started.length - 1].replace(/^start /, '#') : null
  }
}

// ------------------------------------------------------------ the properties

describe.each(['memory', 'redis'])('fuzz on the %s store', (store) => {
  const totals = { made: 0, answered: 0, threw: 0, lost: 0, crashed: 0 }
  let worker = null
  let batchCount = 0

  afterAll(async () => {
    if (worker) {
      worker.child.disconnect()
      await worker.closed
    }
    console.log(`fuzz ${store}: ${totals.made} calls made, ${totals.answered} answered by their callback or setter, ` +
      `${totals.threw} threw a TypeError, ${totals.lost} lost (no callback), ${totals.crashed} crashed the process`)
  })

  /** Runs one batch in the worker (a new one after a crash); throws what went wrong. */
  async function runInWorker ({ plants, calls }) {
    if (worker === null) {
      worker = startWorker(store)
      await worker.ready
    }
    const id = ++batchCount
    const batch = { id, ns: `test:${RUN}:fuzz:${store}:${id}:`, dir: path.join(tmpDir, `${store}-${id}`), plants, calls }
    const offset = fs.statSync(worker.progressFile, { throwIfNoEntry: false })?.size ?? 0
    const current = worker
    const mark = current.printed()
    const reply = new Promise((resolve) => {
      const onMessage = (message) => {
        if (message.id !== id) return
        current.child.off('message', onMessage)
        resolve({ report: message.report })
      }
      current.child.on('message', onMessage)
    })
    let guard
    const hung = new Promise((resolve) => { guard = setTimeout(() => resolve({ hung: true }), BATCH_GUARD_MS) })
    current.child.send(batch)
    const outcome = await Promise.race([reply, current.closed.then((exit) => ({ exit })), hung])
    clearTimeout(guard)

    if (outcome.report) {
      const { made, answered, threw, lost, violations } = outcome.report
      Object.assign(totals, { made: totals.made + made, answered: totals.answered + answered, threw: totals.threw + threw, lost: totals.lost + lost })
      if (violations.length === 0) return
      const output = current.printed() > mark ? `\n--- the worker printed:\n${current.outputSince(mark)}` : ''
      throw new Error(`${violations.length} violation(s):\n${violations.join('\n')}${output}`)
    }
    if (outcome.hung) current.child.kill('SIGKILL')
    const exit = await current.closed
    worker = null
    const progress = progressSince(current.progressFile, offset)
    totals.made += progress.made
    totals.answered += progress.answered
    totals.threw += progress.threw
    if (progress.inFlight) totals.crashed++
    const how = outcome.hung ? `stopped answering for ${BATCH_GUARD_MS} ms` : `died (exit code ${exit.code}, signal ${exit.signal})`
    throw new Error(`the worker process ${how} during call ${progress.inFlight || '(none under way)'}\n--- its output:\n${current.outputSince(0)}`)
  }

  test.each(THEMES)('$name: every call throws a TypeError or calls back once, and changes only its own keys', async (theme) => {
    await fc.assert(fc.asyncProperty(batchArbitrary(store, theme), runInWorker), {
      seed: theme.seed, // fast-check prints it with the counterexample's path on failure
      numRuns: RUNS_PER_PROPERTY,
      // A failure names its call; shrinking would re-run the worker many times over.
      endOnFailure: true
    })
  }, 300000)
})
