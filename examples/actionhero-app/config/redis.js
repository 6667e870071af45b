'use strict'

// actionhero 16's Redis config, in its usual shape. With FAKEREDIS=false (or
// REDIS_HOST set) the app uses a real Redis server, and so does its cache;
// otherwise fakeredis, and the native cache keeps its data in memory.

const host = process.env.REDIS_HOST || '127.0.0.1'
const port = process.env.REDIS_PORT || 6379
const db = process.env.REDIS_DB || 0
const password = process.env.REDIS_PASSWORD || null

exports['default'] = {
  redis: function (api) {
    const real = process.env.FAKEREDIS === 'false' || process.env.REDIS_HOST !== undefined
    // actionhero builds three connections from this: `client` (which the
    // JS cache used, and which the native cache reads), `subscriber` and `tasks`.
    const connection = real
      ? { konstructor: require('ioredis'), args: [{ host, port, password, db }], buildNew: true }
      : { konstructor: require('fakeredis').createClient, args: [port, host, { fast: true }], buildNew: false }
    return {
      // Tells actionhero not to expand this object (it would call the constructors).
      _toExpand: false,
      client: connection,
      subscriber: connection,
      tasks: connection
    }
  }
}
