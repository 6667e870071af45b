'use strict'

// Redis behind Sentinel, on a master, a replica and three Sentinels of this
// file's own (the behaviour suites run on the shared ones too, see
// support/stores.js): the cache finds the master through the Sentinels in
// both config shapes, and after `SENTINEL FAILOVER` under load it goes on
// against the promoted replica, every call answered once. The figures
// (errors, recovery time, saves lost) are printed for the notes.

const Redis = require('ioredis')
const { Cache } = require('..')
const { startSentinels, ask } = require('./support/topology')
const { startLoad, loadKeys } = require('./support/load')
const { prefixes, RUN } = require('./support/stores')
const { sleep } = require('./support/harness')

let topology
const caches = []

function cacheOn (redis, tag) {
  const cache = new Cache({ ...prefixes(tag), redis, lockName: `sentinel-${RUN}` })
  caches.push(cache)
  return cache
}

beforeAll(async () => {
  topology = await startSentinels()
})

afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()))
  if (topology) await topology.stop()
})

test.each([
  ['plain', () => ({ sentinels: topology.sentinels, name: topology.name })],
  ['ioredis client', () => ({ client: { konstructor: Redis, args: [{ sentinels: topology.sentinels, name: topology.name }] } })]
])('the %s config reaches the master the Sentinels name', async (shape, redis) => {
  const tag = `shape-${shape}`
  const cache = cacheOn(redis(), tag)
  expect(await cache.save('k', shape)).toBe(true)
  const stored = await ask(await topology.masterPort(), 'GET', `${prefixes(tag).cachePrefix}k`)
  expect(JSON.parse(stored).value).toBe(shape)
})

test('a master name the Sentinels do not know answers an error, not a hang', async () => {
  const cache = cacheOn({ sentinels: topology.sentinels, name: 'nobody', connectTimeoutMS: 500, commandTimeoutMS: 500 }, 'unknown')
  const error = await cache.save('k', 1).then(() => null, (e) => e)
  expect(error).toBeInstanceOf(Error)
  expect(['REDIS_ERROR', 'REDIS_CONNECTION', 'REDIS_TIMEOUT']).toContain(error.code)
})

test('SENTINEL FAILOVER under 64-way load: every call answered once, the cache goes on on the promoted master', async () => {
  const cache = cacheOn({ sentinels: topology.sentinels, name: topology.name, connectTimeoutMS: 1000, commandTimeoutMS: 1000 }, 'failover')
  const load = startLoad(cache, loadKeys('failover'))
  await sleep(500)
  const oldMaster = await topology.masterPort()
  const started = Date.now()
  await topology.failover()
  const switchedAfter = Date.now() - started
  // Until the cache's saves land on the promoted master.
  const newMaster = await topology.masterPort()
  const probe = `${prefixes('failover').cachePrefix}probe`
  for (let n = 0; JSON.parse(await ask(newMaster, 'GET', probe) || '{}').value !== n; n++) {
    await cache.save('probe', n + 1).catch(() => {})
    if (n > 0) await sleep(20)
  }
  const movedAfter = Date.now() - started
  await load.recovered(started)
  await sleep(300)
  await load.stop()
  const report = load.report(started)
  const lost = [...report.lostSaves, ...await load.lost(cache)]
  console.log(`Sentinel failover: the Sentinels named the new master after ${switchedAfter} ms; the cache's saves landed ` +
    `there after ${movedAfter} ms; ${report.calls.answered} calls, ${report.errors} errors ${JSON.stringify(report.codes)}; ` +
    `${lost.length} acknowledged saves lost (taken by the old master after it promoted its replica, before +switch-master)`)
  expect(report.calls.answered).toBe(report.calls.made)
  expect(report.calls.answeredTwice).toBe(0)
  expect(report.wrongReads).toEqual([])
  for (const code of Object.keys(report.codes)) expect(['REDIS_CONNECTION', 'REDIS_TIMEOUT', 'REDIS_ERROR']).toContain(code)
  expect(newMaster).not.toBe(oldMaster)
  // The cache writes to the promoted master now, with no new Cache.
  expect(await cache.save('after', 'failover')).toBe(true)
  expect(JSON.parse(await ask(newMaster, 'GET', `${prefixes('failover').cachePrefix}after`)).value).toBe('failover')
  expect(report.recoveryMs).toBeLessThan(Infinity) // every worker saved again
}, 30000)
