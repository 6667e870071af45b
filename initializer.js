'use strict'

// An actionhero initializer (the form actionhero 10 to 16 use) that swaps actionhero's
// `api.cache` for the native one, built from the app's own configuration.
// An app switches by adding one file, `initializers/nativeCache.js`:
//
//   module.exports = require('actionhero-native-cache/initializer')
//
// The file must not be called `cache.js`: actionhero refuses a project
// initializer that has the name of one of its own.

const { Cache, usesMemoryStore } = require('./index.js')

// When each step runs (actionhero runs initializers in ascending priority;
// on a tie, its own initializers before the project's):
//
// - load 301: just after actionhero's own cache initializer (300), which
//   builds the JS `api.cache` we replace, and after i18n (10), id (10) and
//   redis (200); before connections, actions, servers and tasks (400+),
//   so nothing app-facing ever sees the JS cache.
// - start 301: after actionhero's redis connections are up (101), before
//   servers and task workers start taking work (900).
// - stop 998: after servers and task workers have stopped (100), just before
//   actionhero closes its own Redis connections (999).
const LOAD_PRIORITY = 301
const START_PRIORITY = 301
const STOP_PRIORITY = 998

// The only messages actionhero's JS cache put through i18n. Other errors
// (Redis failures, closed cache, bad arguments) reach the app unchanged, as
// the JS cache's Redis errors did; putting them through i18n would add each
// distinct text to the app's locale files when `updateFiles` is on.
const ACTIONHERO_MESSAGES = new Set(['Object not found', 'Object Expired', 'Object Locked'])

// A key read once at start to prove the store answers (one GET).
const PROBE_KEY = 'actionhero-native-cache:start'

/** A time in ms from config, where it may have come from an env var as text. */
function ms (value) {
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value)
  return value === null ? undefined : value
}

/** The options `new Cache()` gets from an actionhero app's `api`. */
function cacheOptions (api) {
  const general = (api.config && api.config.general) || {}
  return {
    // Cache reads every shape of actionhero's redis config itself.
    redis: api.config && api.config.redis,
    cachePrefix: general.cachePrefix,
    lockPrefix: general.lockPrefix,
    lockDuration: ms(general.lockDuration),
    // actionhero's JS cache always polled every 100 ms; an app may now choose.
    lockRetry: ms(general.lockRetry),
    lockName: api.id,
    localize: (message) => {
      const i18n = api.i18n
      if (!ACTIONHERO_MESSAGES.has(message) || !i18n || typeof i18n.localize !== 'function') return message
      // i18n answers undefined when it has no catalog for the locale (no
      // locale file and `updateFiles: false`); keep the message then.
      const localized = i18n.localize(message)
      return typeof localized === 'string' && localized !== '' ? localized : message
    }
  }
}

/** Redis's TTL from its PTTL: whole seconds, rounded half up (ttlGenericCommand); -1 and -2 as they are. */
function ttlFromPttl (ms) {
  return ms < 0 ? ms : Math.floor((ms + 500) / 1000)
}

/**
 * On the in-memory store, fakeredis cannot see the cache's keys. Code that
 * reads a cache or lock key's lifetime through `api.redis.clients.client`
 * (as actionhero's own test suite does) gets it from the native store
 * instead; every other key, and every other command, still goes to fakeredis.
 * Both the callback form and, without a callback, a Promise (ioredis's form).
 */
function answerLifetimesFromCache (client, cache) {
  const isCacheKey = (key) => typeof key === 'string' &&
    (key.startsWith(cache.redisPrefix) || key.startsWith(cache.lockPrefix))
  for (const [command, fromPttl] of [['pttl', (ms) => ms], ['ttl', ttlFromPttl]]) {
    const passThrough = client[command]
    if (typeof passThrough !== 'function') continue
    client[command] = function (key, ...rest) {
      if (!isCacheKey(key)) return passThrough.call(this, key, ...rest)
      const ask = (next) => cache.pttl(key, (error, ms) => (error ? next(error) : next(null, fromPttl(ms))))
      if (typeof rest[0] === 'function') return ask(rest[0])
      return new Promise((resolve, reject) => ask((error, answer) => (error ? reject(error) : resolve(answer))))
    }
  }
}

module.exports = {
  loadPriority: LOAD_PRIORITY,
  startPriority: START_PRIORITY,
  stopPriority: STOP_PRIORITY,

  initialize (api, next) {
    let cache
    try {
      cache = new Cache(cacheOptions(api))
    } catch (error) {
      error.message = `actionhero-native-cache: ${error.message}`
      return next(error)
    }
    api.cache = cache
    // actionhero's redis initializer (load 200) has built its clients by now.
    const client = api.redis && api.redis.clients && api.redis.clients.client
    if (client && usesMemoryStore(api.config.redis)) answerLifetimesFromCache(client, cache)
    next()
  },

  /** Fails the boot when the store does not answer, as actionhero's redis initializer does. */
  start (api, next) {
    if (!(api.cache instanceof Cache)) return next()
    api.cache.checkLock(PROBE_KEY, (error) => {
      if (error) error.message = `actionhero-native-cache: the cache store did not answer: ${error.message}`
      next(error || undefined)
    })
  },

  stop (api, next) {
    const cache = api.cache
    if (!(cache instanceof Cache)) return next()
    cache.close((error) => {
      // A failed close must not turn a shutdown into a crash.
      if (error && typeof api.log === 'function') api.log(['actionhero-native-cache: close failed: %s', error.message], 'error')
      next()
    })
  },

  // For tests and for apps that build their own cache from the same config.
  cacheOptions,
  ttlFromPttl
}
