'use strict'

// actionhero 16's own JavaScript cache (node_modules/actionhero/initializers/
// cache.js), built outside an actionhero server: the initializer only needs
// a few pieces of `api`, which are faked here. It talks to Redis through an
// ioredis client, as actionhero 16 does, so the interop tests and the
// benchmark can compare the addon with the real thing on the same Redis.

const Redis = require('ioredis')
const cacheInitializer = require('actionhero/initializers/cache.js')

const DEFAULT_REDIS = { host: '127.0.0.1', port: 6379, db: 0 }

/**
 * Answers `{ cache, client, close }`: `cache` is actionhero's `api.cache`,
 * `client` the ioredis client it uses, `close()` disconnects that client.
 *
 * options: cachePrefix, lockPrefix, lockDuration (ms), lockName (api.id),
 * redis (ioredis options, default 127.0.0.1:6379 db 0).
 */
async function createActionheroCache (options = {}) {
  const {
    cachePrefix = 'actionhero:cache:',
    lockPrefix = 'actionhero:lock:',
    lockDuration = 10000,
    lockName = `actionhero-js-${process.pid}`,
    redis = DEFAULT_REDIS
  } = options

  const client = new Redis({ ...redis, lazyConnect: true, maxRetriesPerRequest: 1 })
  await client.connect()

  const api = {
    id: lockName,
    config: { general: { cachePrefix, lockPrefix, lockDuration } },
    redis: { clients: { client } },
    i18n: { localize: (message) => message },
    log () {}
  }

  try {
    await new Promise((resolve, reject) => {
      cacheInitializer.initialize(api, (error) => (error ? reject(error) : resolve()))
    })
  } catch (error) {
    client.disconnect()
    throw error
  }

  let closed = false
  return {
    cache: api.cache,
    client,
    api,
    async close () {
      if (closed) return
      closed = true
      try {
        await client.quit()
      } catch (_) {
        client.disconnect()
      }
    }
  }
}

module.exports = { createActionheroCache }
