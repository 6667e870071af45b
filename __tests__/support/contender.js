'use strict'

// One contender for the lock race in contention.test.js, run as its own
// Node process (see contenders.js). It builds a Cache on the Redis the
// parent names and, once the parent says "go", tries to take one lock
// `attempts` times.
// Each time it holds the lock it checks that nobody else writes while it
// holds it:
//   - it saves its name as `owner` and reads it back: another holder's
//     write in between shows as a different name;
//   - it adds 1 to `counter` by load-then-save: two holders at once would
//     lose an increment, so the final counter differs from the total holds.
// It reports { name, attempts, holds, misses, violations, errors } and exits.

const { Cache } = require('../..')
const { parentChannel } = require('./contenders')

const { config, serve } = parentChannel()
const { name, key, attempts, cacheOptions } = config

const cache = new Cache({ ...cacheOptions, lockName: name, lockDuration: 10000 })

async function race () {
  const result = { name, attempts, holds: 0, misses: 0, violations: [], errors: [] }
  for (let i = 0; i < attempts; i++) {
    let got
    try {
      got = await cache.lock(key, 10000)
    } catch (error) {
      result.errors.push(`lock #${i}: ${error.code} ${error.message}`)
      continue
    }
    if (got !== true) {
      result.misses++
      continue
    }
    result.holds++
    try {
      await cache.save('owner', name)
      const { value: owner } = await cache.load('owner')
      if (owner !== name) result.violations.push(`hold #${i}: wrote owner ${name}, read back ${owner}`)
      const { value: count } = await cache.load('counter')
      await cache.save('counter', count + 1)
      const stillMine = await cache.checkLock(key)
      if (stillMine !== true) result.violations.push(`hold #${i}: checkLock says the lock is another's`)
    } catch (error) {
      result.errors.push(`hold #${i}: ${error.code} ${error.message}`)
    } finally {
      try {
        if ((await cache.unlock(key)) !== true) result.violations.push(`hold #${i}: unlock refused to the holder`)
      } catch (error) {
        result.errors.push(`unlock #${i}: ${error.code} ${error.message}`)
      }
    }
  }
  return result
}

serve(async () => {
  try {
    return await race()
  } finally {
    await cache.close()
  }
})
