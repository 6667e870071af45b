/** Node-style callback: `error` is null on success. */
export type Callback<T> = (error: CacheError | null, result?: T) => void

export type LoadCallback<T = any> = (
  error: CacheError | null,
  value?: T | null,
  expireTimestamp?: number | null,
  createdAt?: number | null,
  lastReadAt?: number | null
) => void

/** Every error the cache reports: actionhero's message, and a stable code. */
export interface CacheError extends Error {
  code:
    | 'OBJECT_NOT_FOUND'
    | 'OBJECT_EXPIRED'
    | 'OBJECT_LOCKED'
    | 'OBJECT_CORRUPT'
    | 'WRONGTYPE'
    | 'VALUE_NOT_SERIALIZABLE'
    | 'CACHE_CLOSED'
    | 'DUMP_FILE'
    | 'REDIS_TIMEOUT'
    | 'REDIS_CONNECTION'
    | 'REDIS_CLUSTERDOWN'
    | 'REDIS_ERROR'
    | 'ERR_INVALID_ARG_VALUE'
    | 'INTERNAL_ERROR'
    | string
}

/**
 * Redis connection settings, as actionhero apps write them: ioredis options
 * (README lists which are honoured, accepted or refused), `url` and `database`.
 */
export interface RedisConnection {
  /** `redis://user:pass@host:port/db` or `rediss://…` (TLS; `#insecure` skips the certificate check). */
  url?: string
  host?: string
  port?: number | string
  username?: string
  password?: string | null
  db?: number | string
  /** actionhero 9-12's name for `db`. */
  database?: number | string
  /** Put before every key, as ioredis does (not before KEYS patterns). */
  keyPrefix?: string
  /** TLS: `true`, `{}` or `{ rejectUnauthorized }`; other tls.connect options are refused. */
  tls?: boolean | { rejectUnauthorized?: boolean }
  /** ioredis's names for connectTimeoutMS and commandTimeoutMS. */
  connectTimeout?: number
  commandTimeout?: number
  /**
   * Redis behind Sentinel (ioredis's options): the Sentinels to ask for the
   * master called `name`; `username`, `password`, `db` and `tls` are the
   * master's. Host and port are then unused.
   */
  sentinels?: RedisNode[]
  name?: string
  sentinelUsername?: string
  sentinelPassword?: string
  /** Only the master: the cache writes. */
  role?: 'master'
}

/** A Redis Cluster node or a Sentinel, as ioredis takes one: `{ host, port }`, a port, or a URL. */
export type RedisNode = { host?: string; port?: number | string } | number | string

/** How long a call may wait, beside any shape. */
export interface RedisTimeouts {
  /** How long connecting may take before a call fails with REDIS_TIMEOUT (default 5000). */
  connectTimeoutMS?: number
  /** How long Redis may take to answer a call (default 5000). */
  commandTimeoutMS?: number
}

export type RedisOptions =
  | { fake: true; name?: string }
  | (RedisConnection & RedisTimeouts)
  /**
   * Redis Cluster: its startup nodes (the rest are found), with the nodes'
   * `username`, `password`, `tls` and `keyPrefix`. Keys are hash-tagged,
   * `<prefix>{<key>}`, so that an entry and its lock share a slot.
   */
  | (Omit<RedisConnection, 'host' | 'port' | 'db' | 'database' | 'url' | 'sentinels'> & RedisTimeouts & { cluster: RedisNode[] })
  /**
   * actionhero 13-16: `args` are the `konstructor`'s: ioredis's `Redis` (its
   * options may name `sentinels`), `Redis.Cluster` (`[nodes, { redisOptions,
   * keyPrefix, … }]`); a fakeredis `konstructor` means the in-memory store.
   */
  | { client: { konstructor: Function; args?: any[]; buildNew?: boolean }; name?: string; connectTimeoutMS?: number; commandTimeoutMS?: number }
  /** actionhero 9-12. */
  | (RedisConnection & { package: string })

export interface CacheOptions {
  /** Absent, or `{ fake: true }`: the in-memory store (one per process, or per `name`). */
  redis?: RedisOptions | null
  cachePrefix?: string
  lockPrefix?: string
  lockDuration?: number
  lockName?: string
  lockRetry?: number
  /** Error messages go through this (actionhero's `api.i18n.localize`). */
  localize?: (message: string) => string
}

export interface LoadOptions {
  /** Resets the expiry of an entry that has one to now + this. */
  expireTimeMS?: number | null
  /** Waits up to this long (ms) for another holder's lock. */
  retry?: number | null | false
}

export interface LoadedEntry<T = any> {
  key: string
  value: T
  expireTimestamp: number | null
  createdAt: number | null
  lastReadAt: number | null
}

export declare class Cache {
  constructor(options?: CacheOptions)

  /** Writable, like the rest below: in force from the next call. */
  cachePrefix: string
  /** actionhero's name for `cachePrefix`. */
  redisPrefix: string
  lockPrefix: string
  lockName: string
  lockDuration: number
  lockRetry: number
  localize?: (message: string) => string

  save(key: string, value: any, next: Callback<boolean>): void
  save(key: string, value: any, expireTimeMS: number | null | undefined, next: Callback<boolean>): void
  save(key: string, value: any, expireTimeMS?: number | null): Promise<boolean>

  load<T = any>(key: string, next: LoadCallback<T>): void
  load<T = any>(key: string, options: LoadOptions | null | undefined, next: LoadCallback<T>): void
  load<T = any>(key: string, options?: LoadOptions | null): Promise<LoadedEntry<T>>

  destroy(key: string, next: Callback<boolean>): void
  destroy(key: string): Promise<boolean>

  lock(key: string, next: Callback<boolean>): void
  lock(key: string, expireTimeMS: number | null | undefined, next: Callback<boolean>): void
  lock(key: string, expireTimeMS?: number | null): Promise<boolean>

  unlock(key: string, next: Callback<boolean>): void
  unlock(key: string): Promise<boolean>

  checkLock(key: string, next: Callback<boolean>): void
  checkLock(key: string, retry: number | null | false | undefined, next: Callback<boolean>): void
  checkLock(key: string, retry?: number | null | false): Promise<boolean>

  locks(next: Callback<string[]>): void
  locks(): Promise<string[]>

  keys(next: Callback<string[]>): void
  keys(): Promise<string[]>

  size(next: Callback<number>): void
  size(): Promise<number>

  /** The callback gets the error alone, as in actionhero 16; the Promise resolves true (actionhero 18+). */
  clear(next: (error: CacheError | null) => void): void
  clear(): Promise<boolean>

  dumpWrite(file: string, next: Callback<number>): void
  dumpWrite(file: string): Promise<number>

  dumpRead(file: string, next: Callback<number>): void
  dumpRead(file: string): Promise<number>

  /** The callback gets the error alone, as in actionhero 16; the Promise resolves true (actionhero 18+). */
  push(key: string, item: any, next: (error: CacheError | null) => void): void
  push(key: string, item: any): Promise<boolean>

  pop<T = any>(key: string, next: Callback<T | undefined>): void
  pop<T = any>(key: string): Promise<T | undefined>

  listLength(key: string, next: Callback<number>): void
  listLength(key: string): Promise<number>

  /**
   * The remaining lifetime in ms of a full store key (prefix included), as
   * Redis's PTTL answers it: -2 when missing, -1 when it does not expire.
   */
  pttl(storeKey: string, next: Callback<number>): void
  pttl(storeKey: string): Promise<number>

  /** Releases the connection; later calls fail with CACHE_CLOSED. */
  close(next: Callback<boolean>): void
  close(): Promise<boolean>
}

/** Whether a cache built with this `redis` option keeps its data in memory (fakeredis configs do). */
export declare function usesMemoryStore(redis?: RedisOptions | null): boolean

/**
 * How many keys the in-memory server called `name` (`redis: { fake: true,
 * name }`, 'default' when unnamed) holds, expired ones not yet reclaimed
 * included, as Redis's DBSIZE counts them; null when no open cache uses a
 * server of that name (its last cache was closed: the server is gone).
 */
export declare function memoryServerKeyCount(name: string): number | null
