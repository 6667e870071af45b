'use strict'

// The baseline for the in-memory store: what a plain-JS cache with the same
// contract does per call (JSON envelope, lock checks, expiry, callbacks on a
// later tick), on two Maps.

class MapCache {
  constructor (lockName = 'bench') {
    this.entries = new Map()
    this.locks = new Map()
    this.lockName = lockName
  }

  lockedByOther (key) {
    const lock = this.locks.get(key)
    return lock !== undefined && lock.expiresAt > Date.now() && lock.name !== this.lockName
  }

  save (key, value, expireTimeMS, next) {
    const now = Date.now()
    if (this.lockedByOther(key)) return process.nextTick(next, new Error('Object Locked'))
    const expireTimestamp = expireTimeMS == null ? null : now + expireTimeMS
    this.entries.set(key, JSON.stringify({ value, expireTimestamp, createdAt: now, readAt: null }))
    process.nextTick(next, null, true)
  }

  load (key, next) {
    const now = Date.now()
    const text = this.entries.get(key)
    if (text === undefined) return process.nextTick(next, new Error('Object not found'), null, null, null, null)
    const entry = JSON.parse(text)
    if (entry.expireTimestamp !== null && entry.expireTimestamp < now) return process.nextTick(next, new Error('Object Expired'), null, null, null, null)
    if (this.lockedByOther(key)) return process.nextTick(next, new Error('Object Locked'), null, null, null, null)
    const lastReadAt = entry.readAt
    entry.readAt = now
    this.entries.set(key, JSON.stringify(entry))
    process.nextTick(next, null, entry.value, entry.expireTimestamp, entry.createdAt, lastReadAt)
  }

  /** SETNX: a lock that is held (by anyone) and alive is refused. */
  lock (key, expireTimeMS, next) {
    const now = Date.now()
    const lock = this.locks.get(key)
    if (lock !== undefined && lock.expiresAt > now) return process.nextTick(next, null, false)
    this.locks.set(key, { name: this.lockName, expiresAt: now + expireTimeMS })
    process.nextTick(next, null, true)
  }

  unlock (key, next) {
    if (this.lockedByOther(key)) return process.nextTick(next, null, false)
    this.locks.delete(key)
    process.nextTick(next, null, true)
  }
}

module.exports = { MapCache }
