'use strict'

// The addon's functions are shared by every cache and take its handle
// first (src/bound.rs). index.js is their only caller; given anything else
// they throw, and the process goes on.

const { methods } = require('../lib/native')

test.each([
  ['nothing', undefined],
  ['an object', {}],
  ['a number', 1],
  ['a string', 'cache']
])('given %s for a handle, a method throws a clear Error', (_, notAHandle) => {
  for (const name of ['lock', 'save', 'flush', 'close']) {
    expect(() => methods[name](notAHandle, 1, 'key')).toThrow('expected a cache handle')
  }
})
