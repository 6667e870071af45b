'use strict'

// Loaded into a mocha run of actionhero's own test suite (`mocha --require`):
// records which `api.cache` the booted app had, once right after boot and
// once just before it stops, as JSON lines in the file named by
// NATIVE_CACHE_PROBE_FILE. actionhero-suite.test.js reads them to prove that
// the suite ran on the native cache, not on actionhero's JS one.

const fs = require('fs')
const ActionHero = require('actionhero')
const { Cache } = require('../..')

const probeFile = process.env.NATIVE_CACHE_PROBE_FILE
if (!probeFile) throw new Error('NATIVE_CACHE_PROBE_FILE is not set')

function record (moment, api) {
  const cache = api && api.cache
  const seen = {
    moment,
    native: cache instanceof Cache,
    cacheType: cache && cache.constructor ? cache.constructor.name : typeof cache,
    redisPrefix: cache && cache.redisPrefix
  }
  fs.appendFileSync(probeFile, `${JSON.stringify(seen)}\n`)
}

const { start, stop } = ActionHero.prototype

ActionHero.prototype.start = function (params, callback) {
  if (!callback && typeof params === 'function') [params, callback] = [{}, params]
  return start.call(this, params, (error, api) => {
    if (!error) record('started', api)
    callback(error, api)
  })
}

ActionHero.prototype.stop = function (callback) {
  if (this.api.running === true) record('stopping', this.api)
  return stop.call(this, callback)
}
