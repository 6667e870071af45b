// Compiled with `tsc --noEmit` by `npm test`: every overload of index.d.ts in
// use, and calls that must not type-check marked with @ts-expect-error.
import { Cache, CacheError, LoadedEntry } from '../..'

const cache = new Cache({ redis: { fake: true }, cachePrefix: 'a:', lockPrefix: 'b:', lockDuration: 10000, lockName: 'node-1', lockRetry: 100 })
new Cache()
new Cache({ redis: { host: '127.0.0.1', port: 6379, db: 0, commandTimeoutMS: 1000 } })
new Cache({ redis: { url: 'redis://127.0.0.1:6379/0' } })
new Cache({ redis: { client: { konstructor: function Redis () {}, args: [{ host: '127.0.0.1', port: 6379 }] } } })
new Cache({ redis: { package: 'ioredis', host: '127.0.0.1', database: 2 } })
new Cache({ redis: { cluster: [{ host: '127.0.0.1', port: 7000 }, 7001, 'redis://127.0.0.1:7002'], password: 'pw', connectTimeoutMS: 500 } })
new Cache({ redis: { sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'mymaster', sentinelPassword: 'pw', db: 2 } })
const clusterDown: CacheError['code'] = 'REDIS_CLUSTERDOWN'
cache.lockName = 'otherId'
cache.lockDuration = 500
cache.lockRetry = 10
const prefix: string = cache.redisPrefix + cache.cachePrefix + cache.lockPrefix
cache.redisPrefix = 'c:'
cache.lockPrefix = 'l:'

const bool = (error: CacheError | null, result?: boolean) => { if (error) console.log(error.code, error.message); console.log(result) }
cache.save('k', { a: 1 }, bool)
cache.save('k', 1, 1000, bool)
cache.save('k', 1, null, bool)
cache.save('k', 1, undefined, bool)
const saved: Promise<boolean> = cache.save('k', [1])
cache.save('k', 1, 1000).then((ok: boolean) => ok)

cache.load('k', (error, value, expireTimestamp, createdAt, lastReadAt) => {
  const n: number | null | undefined = expireTimestamp ?? createdAt ?? lastReadAt
  console.log(error, value, n)
})
cache.load<{ a: number }>('k', { expireTimeMS: 1000, retry: 100 }, (error, value) => console.log(error, value?.a))
cache.load('k', null, () => {})
const entry: Promise<LoadedEntry<string>> = cache.load<string>('k')
cache.load('k', { retry: false }).then(({ value, expireTimestamp, createdAt, lastReadAt }) => [value, expireTimestamp, createdAt, lastReadAt])

cache.destroy('k', bool)
const destroyed: Promise<boolean> = cache.destroy('k')
cache.lock('k', bool)
cache.lock('k', 1000, bool)
const locked: Promise<boolean> = cache.lock('k', 1000)
cache.unlock('k', bool)
const unlocked: Promise<boolean> = cache.unlock('k')
cache.checkLock('k', bool)
cache.checkLock('k', 100, bool)
cache.checkLock('k', null, bool)
const free: Promise<boolean> = cache.checkLock('k', 100)

cache.locks((error, keys) => keys?.map((k: string) => k))
cache.keys((error, keys) => keys?.length)
const keys: Promise<string[]> = cache.keys()
const locks: Promise<string[]> = cache.locks()
cache.size((error, n) => n)
const size: Promise<number> = cache.size()
cache.clear(bool)
const cleared: Promise<boolean> = cache.clear()
cache.dumpWrite('/tmp/x.json', (error, count) => count)
const written: Promise<number> = cache.dumpWrite('/tmp/x.json')
cache.dumpRead('/tmp/x.json', (error, count) => count)
const read: Promise<number> = cache.dumpRead('/tmp/x.json')
cache.push('l', { x: 1 }, bool)
const pushed: Promise<boolean> = cache.push('l', 2)
cache.pop<number>('l', (error, item) => item)
const popped: Promise<number | undefined> = cache.pop<number>('l')
cache.listLength('l', (error, n) => n)
const length: Promise<number> = cache.listLength('l')
cache.pttl('a:k', (error, ms) => ms)
const ttl: Promise<number> = cache.pttl('a:k')
cache.close(bool)
const closed: Promise<boolean> = cache.close()

// @ts-expect-error keys are strings
cache.save(1, 'v')
// @ts-expect-error expireTimeMS is a number
cache.save('k', 'v', '1000', bool)
// @ts-expect-error load options are an object
cache.load('k', 5, () => {})
// @ts-expect-error unknown option
new Cache({ cachePrefx: 'x' })
// @ts-expect-error lockName is a string
cache.lockName = 5

export { prefix, saved, entry, destroyed, locked, unlocked, free, keys, locks, size, cleared, written, read, pushed, popped, length, ttl, closed }
