'use strict'

// Runs the fuzz test's generated calls (fuzz.test.js) in a Node process of
// its own, so that a native crash (an abort, a panic crossing N-API) shows
// to the test as this process dying instead of taking jest down.
//
// The parent sends batches: { id, ns, dir, plants, calls }. For each batch
// this plants entries under the namespace `ns`, makes the calls one after
// the other on a fresh Cache, checks each one, and answers
// { id, report: { made, answered, threw, lost, violations } }.
// Before each call it appends `start <i> <call> with <settings>` to the
// progress file, and after it `end <i> <outcome>`, with synchronous writes:
// when the process dies, the parent reads there which call was under way.

const fs = require('fs')
const path = require('path')
const Redis = require('ioredis')
const { Cache } = require('../..')
const inputs = require('./fuzz-inputs')

const { KEYS, VALUES, TIMES, LOCK_NAMES, PREFIXES, CALLBACKS, BAD_FILES, PLANTS, LOCK_PLANTS, OMIT, VALID, INVALID } = inputs

const { store, redis: redisOptions, memoryName, progressFile, snapshotDir } = JSON.parse(process.argv[2])
const progress = fs.openSync(progressFile, 'a')

/** Only turns a callback that never comes into a failure; not a speed requirement. */
const CALLBACK_GUARD_MS = 8000
/** How long after the last call a second invocation of any callback is still looked for. */
const GRACE_MS = 20
/** Natural expiry: every lifetime the cache gives is a whole second or more (or none at all). */
const SHORTEST_LIFETIME_MS = 1000
const MAX_VIOLATIONS = 10

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** The key as it reaches the store: UTF-8, where lone surrogates become U+FFFD. */
const storedKey = (key) => Buffer.from(key, 'utf8').toString('utf8')
const describeCall = (call) => JSON.stringify(call)

const raw = store === 'redis' ? new Redis({ ...redisOptions, lazyConnect: true }) : null
if (raw) {
  // Every key under the namespace with its type, a hash of its content, and
  // its PTTL, in one atomic step. Lists and hashes are hashed item by item,
  // length first, so that no two contents hash alike by concatenation.
  raw.defineCommand('snapshot', {
    numberOfKeys: 0,
    lua: `
      local function joined (items)
        local parts = {}
        for i, item in ipairs(items) do parts[i] = #item .. ':' .. item end
        return table.concat(parts, ',')
      end
      local out = {}
      local cursor = '0'
      repeat
        local step = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
        cursor = step[1]
        for _, key in ipairs(step[2]) do
          local kind = redis.call('TYPE', key)['ok']
          local content = ''
          if kind == 'string' then content = redis.call('GET', key)
          elseif kind == 'list' then content = joined(redis.call('LRANGE', key, 0, -1))
          elseif kind == 'hash' then content = joined(redis.call('HGETALL', key))
          elseif kind == 'set' then
            local members = redis.call('SMEMBERS', key)
            table.sort(members)
            content = joined(members)
          end
          out[#out + 1] = key
          out[#out + 1] = kind
          out[#out + 1] = redis.sha1hex(content)
          out[#out + 1] = redis.call('PTTL', key)
        end
      until cursor == '0'
      return out
    `
  })
}

/** Answers a callback's arguments, or null when it never comes (a lost call). */
function waitFor (record) {
  return new Promise((resolve) => {
    const guard = setTimeout(() => resolve(null), CALLBACK_GUARD_MS)
    record.onFirst = (args) => {
      clearTimeout(guard)
      resolve(args)
    }
  })
}

/** A callback that counts every invocation, for as long as the process lives. */
function countingCallback (record) {
  return (...args) => {
    record.invocations++
    if (record.invocations === 1) {
      record.beforeReturn = !record.returned
      record.onFirst(args)
    }
  }
}

// ---------------------------------------------------------------- the store

/**
 * Key → { kind, content, ttl } for every key under the namespace: kind is
 * 'string', 'list', …; content what the key holds (null where it cannot be
 * read); ttl PTTL's answer (-1: none), or null where the store cannot tell.
 */
async function redisSnapshot (ns) {
  const flat = await raw.snapshot(`${ns}*`)
  const keys = new Map()
  for (let i = 0; i < flat.length; i += 4) keys.set(flat[i], { kind: flat[i + 1], content: flat[i + 2], ttl: flat[i + 3] })
  return keys
}

/**
 * The in-memory store, seen through caches of its own (`observe(prefix)`):
 * keys from the namespace's, lists by listLength, and string keys' texts,
 * byte for byte, from dump files (a load would change readAt).
 */
async function memorySnapshot (observe, ns, file) {
  const root = observe(ns)
  const keys = new Map()
  const strings = []
  const lists = []
  for (const key of await root.keys()) {
    const length = await root.listLength(key.slice(ns.length)).catch((error) => {
      if (error.code === 'WRONGTYPE') return null
      throw error
    })
    if (length === null) strings.push(key)
    else if (length > 0) { // 0: gone since keys() listed it
      lists.push(key)
      keys.set(key, { kind: 'list', content: String(length), ttl: null })
    }
  }
  const texts = await readTexts(observe, ns, strings, lists, file)
  for (const key of strings) {
    const text = texts.has(key) ? texts.get(key) : null
    keys.set(key, { kind: 'string', content: text, ttl: null, text })
  }
  return keys
}

/**
 * The texts of string keys under `prefix`, read by dumping prefixes that
 * hold no list (a dump may fail on a list, as actionhero 16's does): this
 * prefix when it can, else each prefix one character longer, and so on. A
 * string key that a list key starts with cannot be read so: it is left out.
 */
async function readTexts (observe, prefix, strings, lists, file, texts = new Map()) {
  if (strings.length === 0) return texts
  if (!lists.some((key) => key.startsWith(prefix))) {
    await observe(prefix).dumpWrite(file)
    const dumped = JSON.parse(fs.readFileSync(file, 'utf8'))
    for (const key of strings) if (Object.hasOwn(dumped, key)) texts.set(key, dumped[key])
    return texts
  }
  const groups = new Map()
  for (const key of strings) {
    if (key === prefix) continue
    const longer = prefix + String.fromCodePoint(key.codePointAt(prefix.length))
    groups.set(longer, [...(groups.get(longer) || []), key])
  }
  for (const [longer, group] of groups) {
    await readTexts(observe, longer, group, lists.filter((key) => key.startsWith(longer)), file, texts)
  }
  return texts
}

/** Whether `key` may have expired by itself between two snapshots. */
function mayHaveExpired (before, elapsedMs, batchAgeMs) {
  if (before.ttl !== null) return before.ttl > 0 && before.ttl <= elapsedMs + 50
  // The memory store does not tell lifetimes: a key cannot expire before
  // its shortest lifetime has passed since the batch began, or before its
  // envelope's expireTimestamp (a load may end its life there).
  if (batchAgeMs >= SHORTEST_LIFETIME_MS - 100) return true
  try {
    const { expireTimestamp } = JSON.parse(before.text)
    return typeof expireTimestamp === 'number' && expireTimestamp <= Date.now() + 50
  } catch (_) {
    return false
  }
}

/**
 * Differences between two snapshots outside the keys the call may change:
 * [{ key, change }], where change is 'vanished', 'appeared', 'content' or 'lifetime'.
 */
function unexpectedChanges (before, after, mayChange, elapsedMs, batchAgeMs) {
  const changes = []
  for (const [key, was] of before) {
    if (mayChange(key)) continue
    const now = after.get(key)
    if (now === undefined) {
      if (!mayHaveExpired(was, elapsedMs, batchAgeMs)) changes.push({ key, change: 'vanished' })
    } else if (now.kind !== was.kind || (now.content !== null && was.content !== null && now.content !== was.content)) {
      changes.push({ key, change: 'content', was, now })
    } else if (was.ttl !== null && (was.ttl > 0) !== (now.ttl > 0)) {
      changes.push({ key, change: `lifetime ${was.ttl} ms -> ${now.ttl} ms` })
    }
  }
  for (const key of after.keys()) {
    if (!before.has(key) && !mayChange(key)) changes.push({ key, change: 'appeared' })
  }
  return changes
}

/** The changes in words, with the text each changed string key holds now. */
async function describeChanges (changes) {
  const words = []
  for (const { key, change, was, now } of changes) {
    if (change !== 'content') {
      words.push(`${shortKey(key)} ${change}`)
      continue
    }
    const text = raw ? await raw.get(key).catch(() => null) : now.text
    const what = typeof text === 'string' ? `now ${shortText(text)}` : `${was.kind} -> ${now.kind}`
    words.push(`${shortKey(key)} changed (${what})`)
  }
  return words.join('; ')
}

const shortText = (text) => (text.length > 80 ? `${JSON.stringify(text.slice(0, 80))}… (${text.length} chars)` : JSON.stringify(text))
const shortKey = (key) => shortText(key)

// ------------------------------------------------------------------ planting

function writeFiles (ns, dir) {
  fs.mkdirSync(dir, { recursive: true })
  const file = (name) => path.join(dir, `${name}.json`)
  const envelope = (expireTimestamp) => JSON.stringify({ value: { from: 'file' }, expireTimestamp, createdAt: 1, readAt: null })
  fs.writeFileSync(file('not-json'), '{ nope')
  fs.writeFileSync(file('json-array'), '[1, 2]')
  fs.writeFileSync(file('entry-not-string'), JSON.stringify({ [`${ns}c:k`]: { value: 1 } }))
  fs.writeFileSync(file('entry-not-envelope'), JSON.stringify({ [`${ns}c:k`]: '[1]' }))
  // A good dump, with a key outside the cache prefix (restored as it is, as
  // actionhero does) and one already expired.
  fs.writeFileSync(file('foreign'), JSON.stringify({
    [`${ns}c:k`]: envelope(null),
    [`${ns}c:🔑🎉`]: envelope(Date.now() + 60000),
    [`${ns}elsewhere:k`]: envelope(null),
    [`${ns}c:gone`]: envelope(1)
  }))
  const paths = {
    'dump-a': file('dump-a'),
    'dump-b': file('dump-b'),
    'no-such-dir': path.join(dir, 'no-such-dir', 'dump.json'),
    directory: dir,
    missing: file('missing'),
    ...BAD_FILES
  }
  for (const name of ['not-json', 'json-array', 'entry-not-string', 'entry-not-envelope', 'foreign']) paths[name] = file(name)
  return paths
}

/** The keys a dump file names, when it is one. */
function dumpFileKeys (file) {
  try {
    const data = JSON.parse(fs.readFileSync(file, 'utf8'))
    return data && typeof data === 'object' ? Object.keys(data) : []
  } catch (_) {
    return []
  }
}

function plantTarget (ns, { key, kind }) {
  return kind in LOCK_PLANTS ? `${ns}l:${KEYS[key]}` : `${ns}c:${KEYS[key]}`
}

async function plantRedis (ns, plants) {
  for (const plant of plants) {
    const target = plantTarget(ns, plant)
    const { text, ttlMs, list, hash, set } = PLANTS[plant.kind] || LOCK_PLANTS[plant.kind]
    if (list) await raw.rpush(target, ...list)
    else if (hash) await raw.hset(target, hash)
    else if (set) await raw.sadd(target, ...set)
    else await raw.set(target, typeof text === 'function' ? text(Date.now()) : text)
    if (ttlMs) await raw.pexpire(target, ttlMs)
  }
}

/**
 * On memory, through the observer: envelopes by a dump file (dumpRead
 * clears the namespace first, so it goes first), then lists by push and
 * locks by lock.
 */
async function plantMemory (ns, plants, observer, dir) {
  const spec = (plant) => PLANTS[plant.kind] || LOCK_PLANTS[plant.kind]
  const dump = {}
  for (const plant of plants) {
    const { text, list } = spec(plant)
    if (!list && plant.kind !== 'lock-other') dump[storedKey(plantTarget(ns, plant))] = typeof text === 'function' ? text(Date.now()) : text
  }
  if (Object.keys(dump).length) {
    const file = path.join(dir, 'plants.json')
    fs.writeFileSync(file, JSON.stringify(dump))
    await observer.dumpRead(file)
  }
  for (const plant of plants) {
    const { list } = spec(plant)
    if (list) {
      for (const item of list) await observer.push(plantTarget(ns, plant).slice(ns.length), item)
    } else if (plant.kind === 'lock-other' && !(await observer.lock(KEYS[plant.key], 60000))) {
      throw new Error(`could not plant ${plant.kind} on ${plant.key}`)
    }
  }
}

// ------------------------------------------------------------------ one call

/** The value of a named input; OMIT stays OMIT. */
function pick (pool, name) {
  if (!(name in pool)) throw new Error(`no input named ${name}`)
  return pool[name]
}

function loadOptions (spec) {
  switch (spec.kind) {
    case 'omit': return OMIT
    case 'undefined': return undefined
    case 'null': return null
    case 'string': return 'options'
    case 'number': return 5
    case 'true': return true
    case 'array': return []
    case 'function': return () => {}
    case 'object': {
      const options = {}
      if (spec.expireTimeMS !== 'omit') options.expireTimeMS = pick(TIMES, spec.expireTimeMS)
      if (spec.retry !== 'omit') options.retry = pick(TIMES, spec.retry)
      return options
    }
    default: throw new Error(`no load options named ${spec.kind}`)
  }
}

function classifyLoadOptions (options) {
  if (options === OMIT || options === undefined || options === null) return VALID
  if (typeof options !== 'object') return INVALID
  return inputs.combine([
    inputs.classifyTime(options.expireTimeMS),
    inputs.classifyTime(options.retry, { falseMeansNone: true })
  ])
}

/**
 * The call as arguments to pass (a left-out trailing argument is not
 * passed), with what the API must do with them: VALID (no throw), INVALID
 * (a synchronous TypeError) or EITHER.
 */
function prepare (call, files) {
  const callback = call.cb === 'function' ? null : pick(CALLBACKS, call.cb)
  const key = 'key' in call ? pick(KEYS, call.key) : undefined
  const classes = ['key' in call ? inputs.classifyKey(key) : VALID, callback === null ? VALID : INVALID]
  let args
  switch (call.m) {
    case 'save': {
      const ms = pick(TIMES, call.ms)
      classes.push(inputs.classifyTime(ms))
      args = [key, pick(VALUES, call.value), ms]
      break
    }
    case 'push':
      args = [key, pick(VALUES, call.value)]
      break
    case 'load': {
      const options = loadOptions(call.options)
      classes.push(classifyLoadOptions(options))
      args = [key, options]
      break
    }
    case 'lock': {
      const ms = pick(TIMES, call.ms)
      classes.push(inputs.classifyTime(ms))
      args = [key, ms]
      break
    }
    case 'checkLock': {
      const retry = pick(TIMES, call.retry)
      classes.push(inputs.classifyTime(retry, { falseMeansNone: true }))
      args = [key, retry]
      break
    }
    case 'destroy': case 'unlock': case 'pop': case 'listLength':
      args = [key]
      break
    case 'locks': case 'keys': case 'size': case 'clear':
      args = []
      break
    case 'dumpWrite': case 'dumpRead': {
      const file = pick(files, call.file)
      classes.push(typeof file === 'string' && file.length > 0 ? VALID : INVALID)
      args = [file]
      break
    }
    default:
      throw new Error(`no method ${call.m}`)
  }
  // A left-out optional argument is not passed, unless the callback is bad:
  // then an object in its place would turn the call into the promise form.
  if (args.length && args[args.length - 1] === OMIT) {
    if (callback === null) args.pop()
    else args[args.length - 1] = undefined
  }
  return { args, callback, expected: inputs.combine(classes) }
}

/** The setter's value, and whether it must be accepted. */
function prepareSetter ({ prop, value: name }, ns) {
  switch (prop) {
    case 'lockName': {
      const value = pick(LOCK_NAMES, name)
      return { value, expected: typeof value === 'string' && value.length > 0 ? VALID : INVALID }
    }
    case 'lockDuration': case 'lockRetry': {
      const value = pick(TIMES, name)
      return { value, expected: inputs.classifyTime(value === OMIT ? undefined : value, { optional: false }) }
    }
    case 'redisPrefix': case 'cachePrefix': case 'lockPrefix':
      return { value: ns + pick(PREFIXES, name), expected: VALID }
    default:
      throw new Error(`no setter ${prop}`)
  }
}

const isCount = (n) => Number.isInteger(n) && n >= 0
const isTime = (n) => n === null || typeof n === 'number'
const isStrings = (list) => Array.isArray(list) && list.every((item) => typeof item === 'string')

/** What a successful callback answers, by method; null when it is right. */
function resultProblem (method, args) {
  const [, result] = args
  const ok = {
    save: () => args.length === 2 && result === true,
    load: () => args.length === 5 && isTime(args[2]) && isTime(args[3]) && isTime(args[4]),
    destroy: () => typeof result === 'boolean',
    lock: () => typeof result === 'boolean',
    unlock: () => typeof result === 'boolean',
    checkLock: () => typeof result === 'boolean',
    locks: () => isStrings(result),
    keys: () => isStrings(result),
    size: () => isCount(result),
    // actionhero 16 calls these back with no result.
    clear: () => args.length === 1,
    push: () => args.length === 1,
    dumpWrite: () => isCount(result),
    dumpRead: () => isCount(result),
    pop: () => args.length <= 2,
    listLength: () => isCount(result)
  }[method]
  return ok() ? null : `answered ${safeJson(args.slice(1))}`
}

function safeJson (value) {
  try {
    const text = JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))
    return text === undefined ? String(value) : shortText(text)
  } catch (_) {
    return String(value)
  }
}

/**
 * What keys, locks, size and dumpWrite answered, against the store itself:
 * every key under the prefix in both snapshots must be there, none that is
 * in neither. Null when it is right.
 */
function storeProblem (method, outcome, before, after) {
  const { cachePrefix, lockPrefix } = outcome.prefixes
  const prefix = method === 'locks' ? lockPrefix : cachePrefix
  const under = (snapshot, kind) => [...snapshot].filter(([key, entry]) => key.startsWith(prefix) && (!kind || entry.kind === kind)).map(([key]) => key)
  const range = (kind) => {
    const afterKeys = new Set(under(after, kind))
    const surely = under(before, kind).filter((key) => afterKeys.has(key))
    return { surely, maybe: new Set([...under(before, kind), ...afterKeys]) }
  }
  const result = outcome.args[1]
  if ((method === 'keys' || method === 'locks') && isStrings(result)) {
    const { surely, maybe } = range()
    const missing = surely.filter((key) => !result.includes(key))
    const extra = result.filter((key) => !maybe.has(key))
    if (missing.length || extra.length) return `left out ${missing.map(shortKey).join(', ') || 'nothing'}, added ${extra.map(shortKey).join(', ') || 'nothing'}`
  } else if (method === 'size') {
    const { surely, maybe } = range()
    if (result < surely.length || result > maybe.size) return `size ${result}; the store holds ${surely.length} to ${maybe.size} keys under the prefix`
  } else if (method === 'dumpWrite') {
    // actionhero 16 reads every key under the prefix with GET, which fails on a list.
    const lists = range('list').surely
    if (lists.length) return `succeeded with a list under the prefix (${shortKey(lists[0])}); actionhero 16 fails with WRONGTYPE`
    const { surely, maybe } = range('string')
    if (result < surely.length || result > maybe.size) return `counted ${result} entries; the store holds ${surely.length} to ${maybe.size} under the prefix`
  }
  return null
}

// ----------------------------------------------------------------- a batch

async function runBatch ({ ns, dir, plants, calls }) {
  const report = { made: 0, answered: 0, threw: 0, lost: 0, violations: [] }
  const violation = (text) => { if (report.violations.length < MAX_VIOLATIONS) report.violations.push(text) }
  const files = writeFiles(ns, dir)
  const redis = store === 'redis' ? { ...redisOptions } : { fake: true, name: memoryName }
  // On memory: caches that see the store beside the one under test, by prefix.
  const observers = new Map()
  const observe = (prefix) => {
    if (!observers.has(prefix)) observers.set(prefix, new Cache({ cachePrefix: prefix, lockPrefix: `${ns}l:`, lockName: LOCK_NAMES.other, redis }))
    return observers.get(prefix)
  }
  const snapshotFile = path.join(snapshotDir, `snapshot-${process.pid}.json`)
  const snapshot = () => (raw ? redisSnapshot(ns) : memorySnapshot(observe, ns, snapshotFile))

  if (raw) await plantRedis(ns, plants)
  else await plantMemory(ns, plants, observe(ns), dir)
  const planted = await snapshot()

  const cache = new Cache({ cachePrefix: `${ns}c:`, lockPrefix: `${ns}l:`, lockName: LOCK_NAMES.a, lockDuration: 10000, lockRetry: 10, redis })
  const records = []
  const batchStart = Date.now()
  // Nothing touches the store between two calls: each call's after is the next one's before.
  let before = planted
  let beforeAt = batchStart
  try {
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i]
      const where = `call #${i} ${describeCall(call)}`
      fs.writeSync(progress, `start ${i} ${describeCall(call)} with ${settings(cache)}\n`)
      report.made++
      const outcome = call.m === 'set'
        ? setProperty(cache, call, ns, where, violation)
        : await invoke(cache, call, files, where, violation, records)
      if (outcome.lost) {
        report.lost++
        fs.writeSync(progress, `end ${i} lost\n`)
        violation(`${where} with ${settings(cache)}: the callback was not called within ${CALLBACK_GUARD_MS} ms`)
        break
      }
      if (outcome.threw) report.threw++
      else report.answered++
      fs.writeSync(progress, `end ${i} ${outcome.threw ? 'threw' : 'answered'}\n`)

      const after = await snapshot()
      const changes = unexpectedChanges(before, after, outcome.mayChange, Date.now() - beforeAt, Date.now() - batchStart)
      if (changes.length) {
        const rule = outcome.failed ? 'it failed, so it may change nothing' : 'it changed keys it may not'
        violation(`${where} -> ${outcome.summary}: ${rule}: ${await describeChanges(changes)}`)
      }
      if (outcome.args && outcome.args[0] === null) {
        const problem = storeProblem(call.m, outcome, before, after)
        if (problem) violation(`${where}: ${problem}`)
        if (call.m === 'load') await checkPlantedValue(outcome.key, outcome.args[1], { ns, plants, planted, before, after, where, violation })
      }
      before = after
      beforeAt = Date.now()
    }
    await sleep(GRACE_MS)
    for (const record of records) {
      if (record.threw && record.invocations > 0) violation(`${record.where}: threw, yet called its callback ${record.invocations} time(s)`)
      if (!record.threw && record.invocations > 1) violation(`${record.where}: called its callback ${record.invocations} times`)
    }
  } finally {
    await Promise.race([cache.close(), sleep(CALLBACK_GUARD_MS)])
    if (raw) {
      await deleteNamespace(ns)
    } else {
      await observe(ns).clear()
      await Promise.all([...observers.values()].map((observer) => observer.close()))
    }
    fs.rmSync(dir, { recursive: true, force: true })
    fs.rmSync(snapshotFile, { force: true })
  }
  return report
}

/** The settings in force, for messages about a call that never answered or crashed. */
function settings (cache) {
  const { lockName, lockDuration, lockRetry, redisPrefix, lockPrefix } = cache
  return `lockName ${shortText(lockName)}, lockDuration ${lockDuration}, lockRetry ${lockRetry}, redisPrefix ${shortText(redisPrefix)}, lockPrefix ${shortText(lockPrefix)}`
}

function setProperty (cache, { prop, value: name }, ns, where, violation) {
  const { value, expected } = prepareSetter({ prop, value: name }, ns)
  const previous = cache[prop]
  let thrown = null
  try {
    cache[prop] = value
  } catch (error) {
    thrown = error
  }
  const summary = thrown ? `threw ${thrown.constructor.name}: ${thrown.message}` : 'set'
  if (thrown && !(thrown instanceof TypeError)) violation(`${where}: threw ${summary}, not a TypeError`)
  if (thrown && expected === VALID) violation(`${where}: must be accepted, ${summary}`)
  if (!thrown && expected === INVALID) violation(`${where}: must throw a TypeError, was accepted`)
  if (thrown && !Object.is(cache[prop], previous)) violation(`${where}: threw, yet ${prop} changed to ${safeJson(cache[prop])}`)
  if (!thrown && !Object.is(cache[prop], value)) violation(`${where}: ${prop} reads back ${safeJson(cache[prop])}`)
  return { threw: Boolean(thrown), failed: Boolean(thrown), summary, mayChange: () => false }
}

async function invoke (cache, call, files, where, violation, records) {
  const { args, callback, expected } = prepare(call, files)
  const prefixes = { cachePrefix: storedKey(cache.redisPrefix), lockPrefix: storedKey(cache.lockPrefix) }
  const entryKey = (key) => storedKey(cache.redisPrefix + key)
  const lockKey = (key) => storedKey(cache.lockPrefix + key)
  const prefix = prefixes.cachePrefix
  const fileKeys = call.m === 'dumpRead' && typeof args[0] === 'string' ? dumpFileKeys(args[0]).map(storedKey) : []

  const record = { where, invocations: 0, returned: false, threw: false, onFirst: () => {} }
  records.push(record)
  const answered = waitFor(record)
  let thrown = null
  try {
    cache[call.m](...args, callback === null ? countingCallback(record) : callback)
  } catch (error) {
    thrown = error
  }
  record.returned = true

  if (thrown) {
    record.threw = true
    const summary = `threw ${thrown.constructor.name}: ${thrown.message}`
    if (!(thrown instanceof TypeError)) violation(`${where}: ${summary}, not a TypeError`)
    else if (expected === VALID) violation(`${where}: must not throw, ${summary}`)
    return { threw: true, failed: true, summary, mayChange: () => false }
  }
  if (expected === INVALID) violation(`${where}: must throw a TypeError synchronously, did not`)
  if (callback !== null) return { threw: false, failed: false, summary: 'no callback', mayChange: () => false }

  const callbackArgs = await answered
  if (callbackArgs === null) return { lost: true }
  if (record.beforeReturn) violation(`${where}: called its callback before returning`)
  const [error] = callbackArgs
  const failed = error !== null
  let summary
  if (failed) {
    summary = error instanceof Error ? `${error.code}: ${error.message}` : `error ${safeJson(error)}`
    if (!(error instanceof Error) || typeof error.code !== 'string' || typeof error.message !== 'string') {
      violation(`${where}: answered ${safeJson(error)}, not an Error with a string code`)
    }
  } else {
    summary = `answered ${safeJson(callbackArgs.slice(1))}`
    const problem = resultProblem(call.m, callbackArgs)
    if (problem) violation(`${where}: ${problem}`)
  }

  const key = args[0]
  let mayChange
  if (call.m === 'pop') {
    // As actionhero, pop takes the item before parsing it: an item that is
    // not JSON is gone even though the call answers an error.
    mayChange = (k) => k === entryKey(key)
  } else if (failed) {
    mayChange = () => false
  } else {
    mayChange = {
      save: (k) => k === entryKey(key),
      load: (k) => k === entryKey(key),
      destroy: (k) => k === entryKey(key),
      push: (k) => k === entryKey(key),
      lock: (k) => k === lockKey(key),
      unlock: (k) => k === lockKey(key),
      clear: (k) => k.startsWith(prefix),
      dumpRead: (k) => k.startsWith(prefix) || fileKeys.includes(k)
    }[call.m] || (() => false)
  }
  return { threw: false, failed, summary, args: callbackArgs, mayChange, prefixes, key: typeof key === 'string' ? entryKey(key) : null }
}

/**
 * A load of a planted envelope that was still as planted keeps the value's
 * JSON text byte for byte, and answers that value (undefined when the
 * envelope has none).
 */
async function checkPlantedValue (key, value, { ns, plants, planted, before, after, where, violation }) {
  const plant = plants.find((p) => PLANTS[p.kind] && PLANTS[p.kind].valueText !== undefined && storedKey(plantTarget(ns, p)) === key)
  if (!plant) return
  // Only while the entry is still as planted.
  const intact = planted.has(key) && before.has(key) && planted.get(key).content !== null && before.get(key).content === planted.get(key).content
  if (!intact) return
  const { valueText } = PLANTS[plant.kind]
  const text = raw ? await raw.get(key) : after.has(key) ? after.get(key).text : null
  if (text === null) return // expired meanwhile
  if (valueText === null) {
    if (value !== undefined) violation(`${where}: the planted envelope has no value; load answered ${safeJson(value)}, not undefined`)
    if (/"value"\s*:/.test(text)) violation(`${where}: the planted envelope had no value key; after the load it is ${shortText(text)}`)
    return
  }
  if (JSON.stringify(value) !== JSON.stringify(JSON.parse(valueText))) {
    violation(`${where}: load answered ${safeJson(value)} for the planted value ${valueText}`)
  }
  if (!text.includes(valueText)) violation(`${where}: the planted value text ${valueText} was rewritten: ${shortText(text)}`)
}

async function deleteNamespace (ns) {
  let cursor = '0'
  do {
    const [next, keys] = await raw.scan(cursor, 'MATCH', `${ns}*`, 'COUNT', 1000)
    if (keys.length) await raw.del(...keys)
    cursor = next
  } while (cursor !== '0')
}

process.on('message', async (batch) => {
  let report
  try {
    report = await runBatch(batch)
  } catch (error) {
    report = { made: 0, answered: 0, threw: 0, lost: 0, violations: [`the worker failed: ${error.stack}`] }
  }
  process.send({ id: batch.id, report })
})

process.on('disconnect', () => {
  if (raw) raw.disconnect()
  process.exit(0)
})

process.send({ ready: true })
