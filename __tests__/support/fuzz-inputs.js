'use strict'

// The inputs the fuzz test (fuzz.test.js) draws from, by name. The test
// generates names (plain strings: they cross to the worker process and read
// well in a counterexample); the worker turns them into values here. Which
// inputs the API must refuse with a synchronous TypeError is decided from
// the values themselves (`classify*`), not listed by hand.

const MB = 1 << 20
/** JS Date's range in ms: times beyond it are refused. */
const TIME_LIMIT = 8.64e15
/** Stands for an argument left out of the call. */
const OMIT = Symbol('omit')

const VALID = 'valid'
const INVALID = 'invalid'
/** The API may accept or refuse it (false as an expire time). */
const EITHER = 'either'

const nested = (depth) => {
  let value = 'bottom'
  for (let i = 0; i < depth; i++) value = [value]
  return value
}
const cycle = () => {
  const object = { name: 'cycle' }
  object.self = object
  return object
}
const arrayCycle = () => {
  const array = [1]
  array.push(array)
  return array
}

const KEYS = {
  plain: 'k',
  other: 'k2',
  unicode: 'ключ-鍵',
  emoji: '🔑🎉',
  nul: 'a\u0000b',
  glob: '*?[x]\\',
  space: ' ',
  'lone-surrogate': 'x\uD800',
  // Under a cache prefix equal to the namespace root, this entry key is the
  // lock key of `k`.
  'prefix-like': 'l:k',
  'long-1mb': 'K'.repeat(MB),
  // refused
  empty: '',
  number: 42,
  zero: 0,
  object: { key: 'k' },
  array: ['k'],
  null: null,
  undefined,
  true: true,
  bigint: 42n,
  symbol: Symbol('k'),
  'string-object': Object('k'),
  function: () => 'k'
}

const VALUES = {
  string: 'v',
  'empty-string': '',
  number: 42,
  float: 1.5,
  'negative-zero': -0,
  NaN,
  Infinity,
  true: true,
  null: null,
  undefined,
  object: { a: [1, { b: null }], c: 'd' },
  'empty-array': [],
  'empty-object': {},
  unicode: 'значение 🎉 値',
  'lone-surrogate': '\uD800',
  nul: 'a\u0000b',
  date: new Date(0),
  'huge-number': Number.MAX_VALUE,
  // Look like an envelope's tail inside the value.
  'envelope-like': { value: 1, expireTimestamp: 1, createdAt: 2, readAt: 3 },
  'envelope-like-string': '","expireTimestamp":1,"createdAt":1,"readAt":1}',
  'object-with-function': { a: 1, f () {} },
  'array-with-undefined': [undefined, () => 1, Symbol('s')],
  map: new Map([[1, 2]]),
  'deep-200': nested(200),
  'deep-1000': nested(1000),
  'string-1mb': 'v'.repeat(MB),
  'array-100k': Array.from({ length: 100000 }, (_, i) => i),
  'object-10k': Object.fromEntries(Array.from({ length: 10000 }, (_, i) => [`key${i}`, i])),
  // JSON cannot carry these
  bigint: 10n,
  'nested-bigint': { n: [1n] },
  cycle: cycle(),
  'array-cycle': arrayCycle(),
  function: () => 1,
  symbol: Symbol('s'),
  'toJSON-throws': { toJSON () { throw new Error('toJSON refuses') } },
  'toJSON-undefined': { toJSON: () => undefined },
  'getter-throws': { get a () { throw new Error('getter refuses') } },
  // JSON.stringify overflows the stack
  'deep-100k': nested(100000)
}

/** Expire times (save, lock, load's options.expireTimeMS) and lockDuration. */
const TIMES = {
  omit: OMIT,
  undefined,
  null: null,
  false: false,
  zero: 0,
  'negative-zero': -0,
  one: 1,
  half: 0.5,
  'min-value': Number.MIN_VALUE,
  second: 1000,
  'second+1': 1001,
  minute: 60000,
  'minus-one': -1,
  'minus-999': -999,
  'minus-second': -1000,
  'minus-1001': -1001,
  'minus-5s': -5000,
  'far-future': 1e12,
  limit: TIME_LIMIT,
  'minus-limit': -TIME_LIMIT,
  'past-limit': TIME_LIMIT + 2,
  'minus-past-limit': -TIME_LIMIT - 2,
  '1e300': 1e300,
  'minus-1e300': -1e300,
  'max-value': Number.MAX_VALUE,
  'minus-max-value': -Number.MAX_VALUE,
  NaN,
  Infinity,
  '-Infinity': -Infinity,
  'numeric-string': '100',
  word: 'soon',
  object: {},
  array: [],
  true: true,
  bigint: 1000n,
  'number-object': Object(1000)
}

// A valid positive retry or lockRetry really waits while another holds the
// lock, so those stay short here: a long valid wait is a wait, not a bug.
const LONG_WAITS = ['second', 'second+1', 'minute', 'far-future', 'limit']
const RETRY_NAMES = Object.keys(TIMES).filter((name) => !LONG_WAITS.includes(name))

const LOCK_NAMES = {
  a: 'fuzz-a',
  b: 'fuzz-b',
  unicode: 'имя 🎉',
  long: 'n'.repeat(10000),
  // the holder of the locks planted before the calls
  other: 'fuzz-other',
  // refused
  empty: '',
  number: 7,
  null: null,
  undefined,
  object: { name: 'a' }
}

/** Prefixes, each under the batch's namespace `ns` (so every key stays in it). */
const PREFIXES = {
  c: 'c:',
  l: 'l:',
  unicode: 'кэш🎉:',
  glob: '*?[g]\\:',
  root: '',
  'c-nested': 'c:2:'
}

const CALLBACKS = { function: 'function', string: 'next', number: 7, object: {} }

/** Dump files by name; paths come from the worker's batch directory. */
const DUMP_WRITE_FILES = ['dump-a', 'dump-b', 'no-such-dir', 'directory', 'empty', 'number', 'null']
const DUMP_READ_FILES = [...DUMP_WRITE_FILES, 'not-json', 'json-array', 'entry-not-string', 'entry-not-envelope', 'foreign', 'missing']
const BAD_FILES = { empty: '', number: 7, null: null }

/**
 * Entries planted before the calls, straight into the store. `text` is the
 * raw string; `valueText`, where given, is the value's JSON as stored, which
 * a load must keep byte for byte (null: the envelope has no `value` key).
 */
const PLANTS = {
  'not-json': { text: 'nope' },
  'empty-string': { text: '' },
  truncated: { text: '{"value":"abc","expireTimestamp":nu' },
  'truncated-head': { text: '{"value":' },
  'json-array': { text: '[1]' },
  'json-string': { text: '"text"' },
  'json-number': { text: '42' },
  'json-null': { text: 'null' },
  'bad-value-good-frame': { text: '{"value":{bad,"expireTimestamp":null,"createdAt":1,"readAt":null}' },
  'expire-not-a-number': { text: '{"value":1,"expireTimestamp":"soon","createdAt":1,"readAt":null}' },
  'expire-overflows': { text: '{"value":1,"expireTimestamp":1e400,"createdAt":1,"readAt":null}' },
  'created-huge': { text: '{"value":1,"expireTimestamp":null,"createdAt":1e308,"readAt":null}' },
  expired: { text: '{"value":1,"expireTimestamp":1,"createdAt":1,"readAt":null}' },
  'no-value': { text: '{"expireTimestamp":null,"createdAt":1,"readAt":null}', valueText: null, memory: true },
  reordered: { text: '{"readAt":null,"createdAt":1,"expireTimestamp":null,"value":[]}', valueText: '[]', memory: true },
  spaced: {
    text: '{ "value" : {"a" : 1.50, "b":[]} , "expireTimestamp" : null , "createdAt" : 1 , "readAt" : null }',
    valueText: '{"a" : 1.50, "b":[]}',
    memory: true
  },
  'extra-field': { text: '{"value":"x","expireTimestamp":null,"createdAt":1,"readAt":null,"extra":true}', valueText: '"x"', memory: true },
  escapes: { text: '{"value":"\\u00e9\\ud83d\\ude00","expireTimestamp":null,"createdAt":1,"readAt":null}', valueText: '"\\u00e9\\ud83d\\ude00"', memory: true },
  'standard-with-ttl': { text: (now) => `{"value":[1,{}],"expireTimestamp":${now + 60000},"createdAt":${now},"readAt":null}`, ttlMs: 60000, valueText: '[1,{}]', memory: true },
  list: { list: ['{"data":1}', 'garbage', '[1]', '{"nodata":1}'], memory: true },
  hash: { hash: { field: 'value' } },
  set: { set: ['member'] }
}
/** Planted under lock keys. */
const LOCK_PLANTS = {
  'lock-other': { text: LOCK_NAMES.other, ttlMs: 60000, memory: true },
  'lock-mine-no-ttl': { text: LOCK_NAMES.a },
  'lock-list': { list: ['x'], memory: true },
  'lock-hash': { hash: { field: 'value' } }
}

const isBlank = (value) => value === undefined || value === null || value === OMIT

function classifyKey (key) {
  return typeof key === 'string' && key.length > 0 ? VALID : INVALID
}

/** An expire time or retry; `falseMeansNone`: false is documented as "no retry". */
function classifyTime (value, { optional = true, falseMeansNone = false } = {}) {
  if (isBlank(value)) return optional ? VALID : INVALID
  if (value === false) return !optional ? INVALID : falseMeansNone ? VALID : EITHER
  return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= TIME_LIMIT ? VALID : INVALID
}

/** Any refused argument makes the call throw; otherwise it must not throw. */
function combine (classes) {
  if (classes.includes(INVALID)) return INVALID
  return classes.includes(EITHER) ? EITHER : VALID
}

module.exports = {
  KEYS,
  VALUES,
  TIMES,
  RETRY_NAMES,
  LOCK_NAMES,
  PREFIXES,
  CALLBACKS,
  DUMP_WRITE_FILES,
  DUMP_READ_FILES,
  BAD_FILES,
  PLANTS,
  LOCK_PLANTS,
  OMIT,
  VALID,
  INVALID,
  EITHER,
  classifyKey,
  classifyTime,
  combine
}
