'use strict'

// Argument checks: bad arguments throw at once, as Node's own APIs do.

function checkKey (key) {
  if (typeof key !== 'string' || key.length === 0) {
    throw new TypeError(`key must be a non-empty string, got ${describe(key)}`)
  }
}

/** A time in ms that may be left out (undefined or null, or false for retry). */
function optionalMs (name, value) {
  if (value === undefined || value === null || value === false) return undefined
  return checkMs(name, value)
}

// JavaScript's Date range: beyond any real lifetime, and no clock or Redis
// arithmetic on it overflows.
const MAX_MS = 8.64e15

function checkMs (name, value) {
  if (typeof value !== 'number' || !Number.isFinite(value) || Math.abs(value) > MAX_MS) {
    throw new TypeError(`${name} must be a finite number of milliseconds within ±${MAX_MS}, got ${describe(value)}`)
  }
  return value
}

function checkPrefix (name, prefix) {
  if (typeof prefix !== 'string') throw new TypeError(`${name} must be a string, got ${describe(prefix)}`)
  return prefix
}

function checkLockName (name) {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(`lockName must be a non-empty string, got ${describe(name)}`)
  }
  return name
}

function checkCallback (next) {
  if (next !== undefined && typeof next !== 'function') {
    throw new TypeError(`the callback must be a function, got ${describe(next)}`)
  }
}

function checkFile (file) {
  if (typeof file !== 'string' || file.length === 0) {
    throw new TypeError(`file must be a non-empty string, got ${describe(file)}`)
  }
}

/** A value as an error message names it. */
function describe (value) {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object'
  return String(value)
}

/**
 * A value's JSON text, undefined for a value JSON.stringify leaves out of
 * an object (undefined, a function, a symbol: actionhero's envelope then
 * has no `value`), or an Error when JSON cannot carry it (BigInt, a cycle).
 */
function toJson (value) {
  try {
    return JSON.stringify(value)
  } catch (error) {
    return withCode(new Error(`value cannot be stored as JSON: ${error.message}`), 'VALUE_NOT_SERIALIZABLE')
  }
}

function withCode (error, code) {
  error.code = code
  return error
}

module.exports = { checkKey, optionalMs, checkMs, checkPrefix, checkLockName, checkCallback, checkFile, describe, toJson }
