'use strict'

// Node's own process.nextTick, queueMicrotask, setInterval and
// setImmediate, taken from Node's main realm. jest's fake timers
// (jest.useFakeTimers(), which fakes all four by default) replace them in a
// test file's realm, where calls that waited on them never answered until
// the test ran its fake timers (and a loop turning on a fake setImmediate
// would leave the test timers to run); actionhero's JS cache answers there,
// its replies coming from a socket. The main realm's are never faked, and
// read once they cost no lookup of `process` (a global, in dictionary mode)
// per call.

const mainRealm = require('vm').runInThisContext('globalThis')

module.exports = {
  nextTick: mainRealm.process.nextTick,
  queueMicrotask: mainRealm.queueMicrotask,
  setInterval: mainRealm.setInterval,
  setImmediate: mainRealm.setImmediate
}
