'use strict'

// Boots the example app (examples/actionhero-app) through actionhero 16's
// own entry point, as actionhero's specHelper-based tests do, once on a real
// Redis (FAKEREDIS=false) and once on fakeredis, and checks that the app's
// api.cache is the native one and behaves as actionhero apps expect.

const path = require('path')
const Redis = require('ioredis')
const ActionHero = require('actionhero')
const { Cache } = require('..')

const APP = path.join(__dirname, '..', 'examples', 'actionhero-app')
const RUN = `${process.pid}-${Date.now().toString(36)}`
// A database of its own on the local Redis, away from the other tests' db 0.
const REDIS_DB = 11
const REDIS = { host: '127.0.0.1', port: 6379, db: REDIS_DB }

// Whatever a boot writes to Redis besides our prefixes: node-resque's
// connection check, made when actionhero connects its task queue.
const RESQUE_TEST_KEY = 'resque:connection_test_key'

// The environment each boot runs in: read by actionhero (where the project
// is, which config environment) and by the example's config/redis.js.
const stores = [
  {
    name: 'a real Redis (FAKEREDIS=false)',
    tag: 'redis',
    env: { FAKEREDIS: 'false', REDIS_HOST: REDIS.host, REDIS_PORT: String(REDIS.port), REDIS_DB: String(REDIS_DB) },
    otherNode: { redis: { ...REDIS } }
  },
  {
    name: 'fakeredis (in-memory store)',
    tag: 'fake',
    // REDIS_HOST would switch the example to a real Redis.
    env: { FAKEREDIS: undefined, REDIS_HOST: undefined, REDIS_PORT: undefined, REDIS_DB: undefined },
    otherNode: { redis: { fake: true } }
  }
]

const savedEnv = {}

function setEnv (env) {
  for (const [name, value] of Object.entries(env)) {
    if (!(name in savedEnv)) savedEnv[name] = process.env[name]
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
}

afterAll(() => setEnv(savedEnv))

function boot (store) {
  const cachePrefix = `test:${RUN}:${store.tag}:app-cache:`
  const lockPrefix = `test:${RUN}:${store.tag}:app-lock:`
  // NODE_ENV=test: the example's test config, and actionhero's specHelper.
  setEnv({ PROJECT_ROOT: APP, NODE_ENV: 'test', REDIS_PASSWORD: undefined, ...store.env })
  const server = new ActionHero()
  const configChanges = {
    general: {
      cachePrefix,
      lockPrefix,
      lockDuration: 7000,
      // Our own pub/sub channel: other actionhero processes on this Redis stay out.
      channel: `test:${RUN}:${store.tag}:channel`
    }
  }
  return new Promise((resolve, reject) => {
    server.start({ configChanges }, (error, api) => (error ? reject(error) : resolve({ server, api, cachePrefix, lockPrefix })))
  })
}

function stop (server) {
  return new Promise((resolve, reject) => server.stop((error) => (error ? reject(error) : resolve())))
}

function runAction (api, name, params) {
  return new Promise((resolve) => api.specHelper.runAction(name, params, (response) => resolve(response)))
}

async function withRedis (work) {
  const redis = new Redis({ ...REDIS, lazyConnect: true })
  try {
    await redis.connect()
    return await work(redis)
  } finally {
    redis.disconnect()
  }
}

async function scan (redis, pattern) {
  const found = []
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    found.push(...keys)
    cursor = next
  } while (cursor !== '0')
  return found
}

describe.each(stores)('the example actionhero 16 app on $name', (store) => {
  let booted
  let hadResqueKey
  const otherNodes = []

  function otherNode (lockName) {
    const cache = new Cache({ ...store.otherNode, cachePrefix: booted.cachePrefix, lockPrefix: booted.lockPrefix, lockName })
    otherNodes.push(cache)
    return cache
  }

  beforeAll(async () => {
    hadResqueKey = await withRedis((redis) => redis.exists(RESQUE_TEST_KEY))
    booted = await boot(store)
  })

  afterAll(async () => {
    for (const cache of otherNodes) await cache.close()
    if (booted && booted.api.running) await stop(booted.server)
    await withRedis(async (redis) => {
      const keys = await scan(redis, `test:${RUN}:*`)
      if (!hadResqueKey) keys.push(RESQUE_TEST_KEY)
      await redis.del(...keys)
    })
  })

  test('api.cache is the native cache, with the settings of the app config', () => {
    const { api, cachePrefix, lockPrefix } = booted
    expect(api.cache).toBeInstanceOf(Cache)
    // actionhero's JS cache is a plain object with helpers the native one has not.
    expect(api.cache.saveDumpedElement).toBeUndefined()
    expect(api.cache.redisPrefix).toBe(cachePrefix)
    expect(api.cache.lockPrefix).toBe(lockPrefix)
    expect(api.cache.lockDuration).toBe(7000)
    expect(api.cache.lockName).toBe(api.id)
    expect(api.cache.lockRetry).toBe(100)
  })

  test('the cacheDemo action saves, loads, locks, updates, unlocks and destroys', async () => {
    const response = await runAction(booted.api, 'cacheDemo', { key: 'demo', value: 'hello', expireTimeMS: 30000 })
    expect(response.error).toBeUndefined()
    expect(response.saved).toBe(true)
    expect(response.loaded.value).toBe('hello')
    expect(response.loaded.readAt).toBeNull()
    expect(response.loaded.expireTimestamp - response.loaded.createdAt).toBe(30000)
    expect(response.locked).toBe(true)
    expect(response.lockedBy).toBe(booted.api.id)
    expect(response.updated).toBe(true)
    expect(response.unlocked).toBe(true)
    expect(response.reloaded.value).toBe('hello (updated)')
    expect(response.reloaded.readAt).toBeNull()
    expect(response.reloaded.expireTimestamp - response.reloaded.createdAt).toBe(30000)
    expect(response.destroyed).toBe(true)
    expect(response.afterDestroy).toBe('Object not found')
    await expect(booted.api.cache.load('demo')).rejects.toMatchObject({ code: 'OBJECT_NOT_FOUND' })
    await expect(booted.api.cache.locks()).resolves.toEqual([])
  })

  test('a lock held by another node stops the action with a localized "Object Locked"', async () => {
    const { api } = booted
    const other = otherNode('another-node')
    await expect(other.lock('contended', 10000)).resolves.toBe(true)
    const localize = jest.spyOn(api.i18n, 'localize').mockImplementation((message) => `[translated] ${message}`)
    try {
      const response = await runAction(api, 'cacheDemo', { key: 'contended', value: 'mine' })
      expect(response.error).toBe('Error: [translated] Object Locked')
      expect(localize).toHaveBeenCalledWith('Object Locked')
      expect(response.saved).toBeUndefined()
    } finally {
      localize.mockRestore()
    }
    await expect(other.unlock('contended')).resolves.toBe(true)
    await expect(api.cache.load('contended')).rejects.toMatchObject({ code: 'OBJECT_NOT_FOUND' })
  })

  test('entries live where the app config says', async () => {
    const { api, cachePrefix } = booted
    await expect(api.cache.save('where', { n: 1 }, 60000)).resolves.toBe(true)
    const raw = await withRedis((redis) => Promise.all([redis.get(`${cachePrefix}where`), redis.ttl(`${cachePrefix}where`)]))
    // Another node on the same store sees the entry.
    await expect(otherNode('reader').load('where')).resolves.toMatchObject({ value: { n: 1 } })
    if (store.tag === 'redis') {
      // actionhero's envelope, under the configured prefix, in the configured db.
      expect(JSON.parse(raw[0])).toMatchObject({ value: { n: 1 }, readAt: null })
      expect(raw[1]).toBeGreaterThan(0)
      expect(raw[1]).toBeLessThanOrEqual(60)
    } else {
      // fakeredis means the in-memory store: nothing reaches Redis.
      expect(raw).toEqual([null, -2])
    }
    await expect(api.cache.destroy('where')).resolves.toBe(true)
  })

  test('stopping the app closes the cache', async () => {
    const { api, server } = booted
    const cache = api.cache
    await stop(server)
    expect(api.running).toBe(false)
    await expect(cache.size()).rejects.toMatchObject({ code: 'CACHE_CLOSED' })
  })
})
