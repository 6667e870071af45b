'use strict'

// Uses api.cache the way actionhero apps do, with the same calls and
// callbacks as actionhero's JS cache, and answers what each step saw.

exports.cacheDemo = {
  name: 'cacheDemo',
  description: 'Saves, loads, locks, updates under the lock, unlocks and destroys one cache entry',

  inputs: {
    key: { required: true },
    value: { required: true },
    expireTimeMS: {
      required: false,
      default: 60 * 1000,
      formatter: function (n) { return parseInt(n, 10) }
    }
  },

  outputExample: {
    saved: true,
    loaded: { value: 'hello', expireTimestamp: 1700000060000, createdAt: 1700000000000, readAt: null },
    locked: true,
    lockedBy: 'my-server-id',
    updated: true,
    unlocked: true,
    reloaded: { value: 'hello (updated)', expireTimestamp: 1700000060000, createdAt: 1700000000001, readAt: null },
    destroyed: true,
    afterDestroy: 'Object not found'
  },

  run: function (api, data, next) {
    const { key, value, expireTimeMS } = data.params
    const cache = api.cache
    const seen = data.response

    // Each step stops the action with the cache's error, if it has one.
    const step = (fn) => function (error) {
      if (error) return next(error)
      fn.apply(null, Array.prototype.slice.call(arguments, 1))
    }

    cache.save(key, value, expireTimeMS, step((saved) => {
      seen.saved = saved
      cache.load(key, step((loadedValue, expireTimestamp, createdAt, readAt) => {
        seen.loaded = { value: loadedValue, expireTimestamp, createdAt, readAt }
        cache.lock(key, 5000, step((locked) => {
          seen.locked = locked
          seen.lockedBy = cache.lockName
          // Holding the lock, this server may still write the entry; any
          // other server gets "Object Locked" until we unlock.
          cache.save(key, value + ' (updated)', expireTimeMS, step((updated) => {
            seen.updated = updated
            cache.unlock(key, step((unlocked) => {
              seen.unlocked = unlocked
              cache.load(key, step((reloadedValue, expireTimestamp, createdAt, readAt) => {
                seen.reloaded = { value: reloadedValue, expireTimestamp, createdAt, readAt }
                cache.destroy(key, step((destroyed) => {
                  seen.destroyed = destroyed
                  cache.load(key, (error) => {
                    seen.afterDestroy = error ? error.message : null
                    next()
                  })
                }))
              }))
            }))
          }))
        }))
      }))
    }))
  }
}
