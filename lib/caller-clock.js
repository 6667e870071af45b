'use strict'

// actionhero stamps envelope times (createdAt, expireTimestamp, readAt) and
// judges expiry ("Object Expired") by the caller's `Date`, which tests fake:
// jest's fake timers replace it, and `jest.setSystemTime` moves it. The
// native side reads the system clock itself, which costs a call nothing; the
// caller's clock is read and handed over only when `Date.now` is not the
// engine's own.

const isEngines = (fn) => /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(fn))

// The last `Date.now` seen, and whether it is the engine's: checked once
// per function, not per call.
let seen
let seenIsEngines = true

/** The caller's `Date.now()` where `Date` is faked, else undefined (the system clock). */
function callerNow () {
  const now = Date.now
  if (now !== seen) {
    seen = now
    seenIsEngines = typeof now !== 'function' || isEngines(now)
  }
  return seenIsEngines ? undefined : now()
}

module.exports = { callerNow }
