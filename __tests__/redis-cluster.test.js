'use strict'

// Redis Cluster, on clusters of this file's own (the behaviour suites run on
// the shared one too, see support/stores.js): entries spread over every
// master with their locks in their slots; keys, size, clear and dumps across
// masters; lock contention between processes; a resharding under load; and
// a master killed under load, on three masters with a replica each. The
// figures (errors, recovery time, saves lost) are printed for the notes.

const fs = require('fs')
const os = require('os')
const path = require('path')
const calculateSlot = require('cluster-key-slot')

const { Cache } = require('..')
const { startCluster, ask, waitUntil } = require('./support/topology')
const { sleep } = require('./support/harness')
const { raceForTheLock } = require('./support/contenders')
const { startLoad, loadKeys } = require('./support/load')
const { prefixes, RUN } = require('./support/stores')

// Short, so that a call caught in a failover or a stuck cluster connection
// (see README) gives up soon and the load goes on: 2 s a call.
const SHORT_TIMEOUTS = { connectTimeoutMS: 1000, commandTimeoutMS: 1000 }

let cluster // three masters
let replicated // three masters, one replica each
const caches = []

function cacheOn (nodes, tag, timeouts = {}) {
  const cache = new Cache({ ...prefixes(tag), redis: { cluster: nodes, ...timeouts }, lockName: `cluster-${RUN}` })
  caches.push(cache)
  return cache
}

/** Every key on the master at `port` that starts with `prefix`. */
async function keysOn (port, prefix) {
  const keys = []
  let cursor = '0'
  do {
    const [next, batch] = await ask(port, 'SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return keys
}

beforeAll(async () => {
  // Both at once: each redis-server starts in parallel.
  [cluster, replicated] = await Promise.all([startCluster({ masters: 3 }), startCluster({ masters: 3, replicas: 1 })])
}, 30000)

afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()))
  await Promise.all([cluster, replicated].filter(Boolean).map((topology) => topology.stop()))
})

describe('three masters', () => {
  const KEYS = Array.from({ length: 60 }, (_, n) => `k${n}`)

  test('entries and locks spread over all three masters; an entry and its lock share a slot', async () => {
    const keys = prefixes('spread')
    const cache = cacheOn(cluster.nodes, 'spread')
    for (const key of KEYS) {
      await cache.save(key, key)
      await cache.lock(key)
    }
    const masters = await cluster.masters()
    expect(masters).toHaveLength(3)
    const perMaster = await Promise.all(masters.map(({ port }) => keysOn(port, `test:${RUN}:spread:`)))
    for (const held of perMaster) expect(held.length).toBeGreaterThan(0)
    const all = perMaster.flat().sort()
    expect(all).toEqual([...KEYS.map((k) => `${keys.cachePrefix}{${k}}`), ...KEYS.map((k) => `${keys.lockPrefix}{${k}}`)].sort())
    for (const key of KEYS) {
      expect(await ask(masters[0].port, 'CLUSTER', 'KEYSLOT', `${keys.cachePrefix}{${key}}`))
        .toBe(await ask(masters[0].port, 'CLUSTER', 'KEYSLOT', `${keys.lockPrefix}{${key}}`))
    }
    console.log(`Redis Cluster spread: ${perMaster.map((held) => held.length / 2).join(' / ')} of ${KEYS.length} entries per master`)
  })

  test('keys, locks, size, clear and dumps cover every master, naming keys as on one server', async () => {
    const keys = prefixes('listing')
    const cache = cacheOn(cluster.nodes, 'listing')
    for (const key of KEYS) await cache.save(key, { key })
    for (const key of KEYS.slice(0, 5)) await cache.lock(key)
    const names = KEYS.map((key) => `${keys.cachePrefix}${key}`).sort()
    expect((await cache.keys()).sort()).toEqual(names)
    expect((await cache.locks()).sort()).toEqual(KEYS.slice(0, 5).map((key) => `${keys.lockPrefix}${key}`).sort())
    expect(await cache.size()).toBe(KEYS.length)

    const file = path.join(os.tmpdir(), `actionhero-native-cache-cluster-${RUN}.json`)
    try {
      expect(await cache.dumpWrite(file)).toBe(KEYS.length)
      expect(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8'))).sort()).toEqual(names)
      await cache.clear()
      expect(await cache.size()).toBe(0)
      expect(await cache.locks()).toHaveLength(5) // clear leaves locks
      expect(await cache.dumpRead(file)).toBe(KEYS.length)
    } finally {
      fs.rmSync(file, { force: true })
    }
    expect(await cache.size()).toBe(KEYS.length)
    expect((await cache.load('k42')).value).toEqual({ key: 'k42' })
    const perMaster = await Promise.all((await cluster.masters()).map(({ port }) => keysOn(port, keys.cachePrefix)))
    for (const held of perMaster) expect(held.length).toBeGreaterThan(0)
  })

  test('lock contention between two processes stays mutually exclusive', async () => {
    const ATTEMPTS = 300
    const tag = 'contention'
    const setup = cacheOn(cluster.nodes, tag)
    await setup.save('counter', 0)
    const cacheOptions = { ...prefixes(tag), redis: { cluster: cluster.nodes } }
    const holds = await raceForTheLock({ label: 'Redis Cluster contention', attempts: ATTEMPTS, cacheOptions, run: RUN })
    expect((await setup.load('counter')).value).toBe(holds) // no increment lost to an overlapping holder
    expect(await setup.checkLock('mutex')).toBe(true) // the last holder let go
  }, 60000)

  test('a resharding under 64-way load loses nothing; every call is answered once', async () => {
    const SLOTS = 1000
    const [from] = (await cluster.masters()).filter(({ slots }) => slots.some((range) => range.startsWith('0-')))
    const to = (await cluster.masters()).find(({ id }) => id !== from.id)
    // redis-cli moves a master's lowest slots first: half the keys are in those.
    const keys = [...loadKeys('move', 32, (key) => calculateSlot(key) < SLOTS), ...loadKeys('stay', 32, (key) => calculateSlot(key) >= SLOTS)]
    const cache = cacheOn(cluster.nodes, 'reshard', SHORT_TIMEOUTS)
    const load = startLoad(cache, keys)
    await sleep(300)
    const started = Date.now()
    await cluster.reshard(from, to, SLOTS)
    const reshardMs = Date.now() - started
    await load.recovered(started)
    await sleep(300)
    await load.stop()
    const report = load.report(started)
    const lost = await load.lost(cache)
    console.log(`Redis Cluster resharding: ${SLOTS} slots (32 of the 64 loaded keys) moved in ${reshardMs} ms ` +
      `under load; ${report.calls.answered} calls, ${report.errors} errors ${JSON.stringify(report.codes)}, ` +
      `${report.lostSaves.length + lost.length} saves lost`)
    expect(report.calls.answered).toBe(report.calls.made)
    expect(report.calls.answeredTwice).toBe(0)
    expect(report.wrongReads).toEqual([])
    expect(report.lostSaves).toEqual([])
    expect(lost).toEqual([])
    const after = await cluster.masters()
    expect(after.find(({ id }) => id === to.id).slots).toContain(`0-${SLOTS - 1}`)
  }, 60000)
})

describe('three masters with a replica each', () => {
  test('a master killed (SIGKILL) under 64-way load: every call answered once, the cache goes on on the promoted replica', async () => {
    const cache = cacheOn(replicated.nodes, 'failover', SHORT_TIMEOUTS)
    const load = startLoad(cache, loadKeys('kill'))
    await sleep(500)
    const [victim] = await replicated.masters()
    const victimSlots = victim.slots.map((range) => range.split('-').map(Number))
    const onVictim = (key) => victimSlots.some(([low, high = low]) => calculateSlot(key) >= low && calculateSlot(key) <= high)
    const killedAt = Date.now()
    replicated.kill(victim.port)
    // Until a replica holds the victim's slots, and every worker has saved again.
    await waitUntil('a replica to hold the victim\'s slots', async () => {
      const masters = await replicated.masters()
      return masters.length === 3 && !masters.some(({ port }) => port === victim.port)
    })
    const promotedAfter = Date.now() - killedAt
    await load.recovered(killedAt)
    await sleep(300)
    await load.stop()
    const report = load.report(killedAt)
    const lost = [...report.lostSaves, ...await load.lost(cache)]
    console.log(`Redis Cluster failover: master killed, replica promoted after ${promotedAfter} ms; the cache recovered ` +
      `after ${report.recoveryMs} ms; ${report.calls.answered} calls, ${report.errors} errors ${JSON.stringify(report.codes)}; ` +
      `${lost.length} acknowledged saves lost (${load.keys.filter(onVictim).length} of the 64 keys were on the killed master)`)
    expect(report.calls.answered).toBe(report.calls.made)
    expect(report.calls.answeredTwice).toBe(0)
    expect(report.wrongReads).toEqual([])
    // Only a save the master acknowledged but had not replicated when it died may be lost.
    for (const { key } of lost) expect(onVictim(key)).toBe(true)
    for (const code of Object.keys(report.codes)) expect(['REDIS_CONNECTION', 'REDIS_TIMEOUT', 'REDIS_CLUSTERDOWN']).toContain(code)
    expect(await cache.save('after', 1)).toBe(true)
    expect(report.recoveryMs).toBeLessThan(Infinity) // every worker saved again
  }, 60000)
})
