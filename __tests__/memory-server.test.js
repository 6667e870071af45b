'use strict'

// The in-memory store's named servers: every open cache of a name shares one
// server; when the last of them is closed the server goes, and the next cache
// of that name starts an empty one. Its sweeper reclaims expired keys that
// nobody reads again (counted with memoryServerKeyCount, Redis's DBSIZE,
// which still counts a dead key until it is reclaimed).

const { memoryServerKeyCount } = require('..')
const { harness, expectLoadRejects, sleep } = require('./support/harness')
const { stores } = require('./support/stores')

const memory = stores.find((store) => store.name === 'memory')
const { tag, make } = harness(memory, 'memory-server')
const serverName = (cacheTag) => memory.options(cacheTag).redis.name

test('caches of one name share its server while one is open; after the last closes, the name starts fresh', async () => {
  const shared = tag()
  const name = serverName(shared)
  expect(memoryServerKeyCount(name)).toBeNull()

  const first = make(shared)
  const second = make(shared)
  await first.save('k', { v: 1 })
  expect((await second.load('k')).value).toEqual({ v: 1 })
  expect(memoryServerKeyCount(name)).toBe(1)

  await first.close()
  const third = make(shared)
  expect((await third.load('k')).value).toEqual({ v: 1 })

  await second.close()
  await third.close()
  expect(memoryServerKeyCount(name)).toBeNull()

  const fresh = make(shared)
  expect(memoryServerKeyCount(name)).toBe(0)
  await expectLoadRejects(fresh, 'k', 'Object not found', 'OBJECT_NOT_FOUND')
})

test('a server outlives the close of one of its caches only as long as another is open', async () => {
  const shared = tag()
  const name = serverName(shared)
  const cache = make(shared)
  await cache.save('k', 1)
  await cache.close()
  // Closing twice does not let go of a server twice.
  await cache.close()
  expect(memoryServerKeyCount(name)).toBeNull()
  const next = make(shared)
  const other = make(shared)
  await next.save('k', 2)
  await next.close()
  expect((await other.load('k')).value).toBe(2)
})

test('every one of 100,000 expired keys among 200,000 live ones is reclaimed without being read', async () => {
  const LIVE = 200000
  const DYING = 100000
  const cacheTag = tag()
  const name = serverName(cacheTag)
  const cache = make(cacheTag)
  const writeAll = async (count, prefix, expireTimeMS) => {
    for (let i = 0; i < count; i += 1000) {
      await Promise.all(Array.from({ length: Math.min(1000, count - i) }, (_, j) => cache.save(`${prefix}-${i + j}`, i + j, expireTimeMS)))
    }
  }
  await writeAll(LIVE, 'live')
  await writeAll(DYING, 'dying', 1000)
  expect(memoryServerKeyCount(name)).toBe(LIVE + DYING)

  // Wait for the count to drop; the guard only turns a sweeper that never
  // finishes into a failure instead of a hung test.
  const guard = Date.now() + 20000
  while (memoryServerKeyCount(name) > LIVE && Date.now() < guard) await sleep(100)

  expect(memoryServerKeyCount(name)).toBe(LIVE)
  expect(await cache.size()).toBe(LIVE)
  for (const i of [0, 1, LIVE / 2, LIVE - 1]) expect((await cache.load(`live-${i}`)).value).toBe(i)
}, 60000)

test('a cache dropped without close is collected, and with it goes its hold on the server', () => {
  // In a process of its own, where the GC can be driven (--expose-gc).
  const script = `
    const { Cache, memoryServerKeyCount } = require(${JSON.stringify(require.resolve('..'))})
    const name = 'dropped-' + process.pid
    let cache = new Cache({ redis: { fake: true, name } })
    cache.save('k', 1, (error) => {
      if (error) throw error
      const held = memoryServerKeyCount(name)
      cache = null
      const collect = (turns) => {
        global.gc()
        if (memoryServerKeyCount(name) === null || turns === 0) {
          console.log(JSON.stringify({ held, after: memoryServerKeyCount(name) }))
        } else setTimeout(collect, 10, turns - 1)
      }
      setImmediate(collect, 100)
    })`
  const { execFileSync } = require('child_process')
  const output = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' })
  expect(JSON.parse(output)).toEqual({ held: 1, after: null })
})
