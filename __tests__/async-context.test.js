'use strict'

// A callback runs in its caller's async context (what AsyncLocalStorage,
// and the tracing tools built on async_hooks, follow), as with actionhero's
// JS cache, whose callbacks ioredis calls from promises made by the caller.

const { AsyncLocalStorage } = require('async_hooks')
const { harness } = require('./support/harness')
const { stores, prefixes, cleanupRedis, REDIS } = require('./support/stores')
const { createActionheroCache } = require('./support/actionhero-js-cache')

afterAll(() => cleanupRedis())

const storage = new AsyncLocalStorage()

/**
 * Calls `invoke(callback)` in a context of its own for each of `requests`,
 * all at once (so that their replies come back together where they can),
 * and answers the store each callback saw.
 */
function storesSeen (requests, invoke) {
  return Promise.all(requests.map((request) => new Promise((resolve) => {
    storage.run({ request }, () => invoke(request, () => resolve(storage.getStore())))
  })))
}

describe.each(stores)('async context on the $name store', (store) => {
  const { tag, make } = harness(store, 'async-context')
  const requests = ['a', 'b', 'c', 'd']

  test('each callback sees its own caller\'s context', async () => {
    const cache = make(tag())
    expect(await storesSeen(requests, (request, done) => cache.save(request, request, 60000, done)))
      .toEqual(requests.map((request) => ({ request })))
    expect(await storesSeen(requests, (request, done) => cache.load(request, done)))
      .toEqual(requests.map((request) => ({ request })))
    expect(await storesSeen(requests, (request, done) => cache.lock(request, 10000, done)))
      .toEqual(requests.map((request) => ({ request })))
  })

  test('an error reaches the callback in its caller\'s context', async () => {
    const cache = make(tag())
    expect(await storesSeen(requests, (request, done) => cache.load(`missing-${request}`, done)))
      .toEqual(requests.map((request) => ({ request })))
  })

  test('after await, the caller\'s context is its own', async () => {
    const cache = make(tag())
    const seen = await Promise.all(requests.map((request) => storage.run({ request }, async () => {
      await cache.save(request, request)
      await cache.load(request)
      return storage.getStore()
    })))
    expect(seen).toEqual(requests.map((request) => ({ request })))
  })
})

test('actionhero\'s own JS cache calls back in its caller\'s context (the behaviour kept)', async () => {
  const js = await createActionheroCache({ ...prefixes('async-context-js'), redis: REDIS })
  try {
    expect(await storesSeen(['a', 'b'], (request, done) => js.cache.save(request, request, 60000, done)))
      .toEqual([{ request: 'a' }, { request: 'b' }])
  } finally {
    await js.close()
  }
})
