'use strict'

// Errors and contracts: error objects and codes, bad input, corrupt and
// wrong-type entries, closed caches, how and when callbacks are called, and
// what a throwing callback does.

const fs = require('fs')
const { types } = require('util')
const { viaCallback, expectCacheError, rejectionOf, harness, sleep, redisHarness, runInChild, tempFiles } = require('./support/harness')
const { stores, cleanupRedis } = require('./support/stores')

afterAll(() => cleanupRedis())

const tmpFile = tempFiles('cache-errors')

const BAD_KEYS = [['an empty string', ''], ['undefined', undefined], ['null', null], ['a number', 42], ['an object', { key: 'k' }], ['an array', ['k']], ['a boolean', true]]
const BAD_TIMES = [['a word', 'soon'], ['a numeric string', '100'], ['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity], ['an object', {}], ['true', true]]
const BAD_CALLBACKS = [['a string', 'callback'], ['a number', 7], ['an object', {}], ['an array', []]]

describe.each(stores)('errors on the $name store', (store) => {
  const { tag, make } = harness(store, 'errors')

  test('a missing key: Object not found (OBJECT_NOT_FOUND) and four nulls; the promise rejects', async () => {
    const cache = make(tag())
    const args = await viaCallback((done) => cache.load('missing', done))
    expect(args).toHaveLength(5)
    expectCacheError(args[0], 'Object not found', 'OBJECT_NOT_FOUND')
    expect(args.slice(1)).toEqual([null, null, null, null])
    expectCacheError(await rejectionOf(cache.load('missing')), 'Object not found', 'OBJECT_NOT_FOUND')
    expectCacheError(await rejectionOf(cache.load('missing', { expireTimeMS: 1000 })), 'Object not found', 'OBJECT_NOT_FOUND')
  })

  test('errors are instanceof Error and carry a code, in callbacks and rejections', async () => {
    const shared = tag()
    const a = make(shared, { lockName: 'a' })
    const b = make(shared, { lockName: 'b' })
    const [notFound] = await viaCallback((done) => a.load('missing', done))
    expect(notFound).toBeInstanceOf(Error)
    expect(notFound.code).toBe('OBJECT_NOT_FOUND')
    const rejected = await rejectionOf(a.load('missing'))
    expect(rejected).toBeInstanceOf(Error)
    expect(rejected.code).toBe('OBJECT_NOT_FOUND')
    await a.lock('k')
    const [locked] = await viaCallback((done) => b.destroy('k', done))
    expect(locked).toBeInstanceOf(Error)
    expect(locked.code).toBe('OBJECT_LOCKED')
    const [serial] = await viaCallback((done) => a.save('k', 1n, done))
    expect(serial).toBeInstanceOf(Error)
    expect(serial.code).toBe('VALUE_NOT_SERIALIZABLE')
  })

  test('errors are instanceof Error and carry a code in a plain Node process', () => {
    const child = runInChild(store.options(tag()), `
      const out = {}
      const describe = (error) => ({ isError: error instanceof Error, code: error && error.code, message: error && error.message })
      cache.load('missing', (error, ...rest) => {
        out.callback = { ...describe(error), rest }
        cache.load('missing').catch((error) => {
          out.promise = describe(error)
          cache.save('k', 1n, (error) => {
            out.serializable = describe(error)
            cache.close(() => { console.log(JSON.stringify(out)); process.exit(0) })
          })
        })
      })
    `)
    expect(child.stderr).toBe('')
    expect(child.status).toBe(0)
    const out = JSON.parse(child.stdout.trim().split('\n').pop())
    expect(out).toEqual({
      callback: { isError: true, code: 'OBJECT_NOT_FOUND', message: 'Object not found', rest: [null, null, null, null] },
      promise: { isError: true, code: 'OBJECT_NOT_FOUND', message: 'Object not found' },
      serializable: { isError: true, code: 'VALUE_NOT_SERIALIZABLE', message: expect.any(String) }
    })
  })

  describe('values JSON cannot carry', () => {
    const cycle = { name: 'cycle' }
    cycle.self = cycle
    const values = [
      ['a BigInt', 10n],
      ['an object holding a BigInt', { n: 1n }],
      ['an object with a cycle', cycle],
      ['an array with a cycle', (() => { const list = [1]; list.push(list); return list })()]
    ]

    test.each(values)('%s: VALUE_NOT_SERIALIZABLE in the callback, nothing stored', async (_, value) => {
      const cache = make(tag())
      await cache.save('kept', 'old value')
      const [error, result] = await viaCallback((done) => cache.save('new', value, done))
      expectCacheError(error, undefined, 'VALUE_NOT_SERIALIZABLE')
      expect(result).toBeUndefined()
      const [overwrite] = await viaCallback((done) => cache.save('kept', value, 60000, done))
      expectCacheError(overwrite, undefined, 'VALUE_NOT_SERIALIZABLE')

      const [missing] = await viaCallback((done) => cache.load('new', done))
      expectCacheError(missing, 'Object not found', 'OBJECT_NOT_FOUND')
      const kept = await cache.load('kept')
      expect(kept.value).toBe('old value')
      expect(kept.expireTimestamp).toBeNull()
      await expect(cache.size()).resolves.toBe(1)
    })

    test.each(values)('%s: the promise rejects with VALUE_NOT_SERIALIZABLE', async (_, value) => {
      const cache = make(tag())
      expectCacheError(await rejectionOf(cache.save('new', value)), undefined, 'VALUE_NOT_SERIALIZABLE')
      expectCacheError(await rejectionOf(cache.load('new')), 'Object not found', 'OBJECT_NOT_FOUND')
    })
  })

  describe('bad arguments throw a TypeError at once', () => {
    /** `call` throws a TypeError synchronously and never calls `callback`. */
    async function expectThrowsTypeError (call) {
      const callback = jest.fn()
      expect(() => call(callback)).toThrow(TypeError)
      await sleep(20)
      expect(callback).not.toHaveBeenCalled()
    }

    test.each(BAD_KEYS)('a key that is %s', async (_, key) => {
      const cache = make(tag())
      const calls = [
        (done) => cache.save(key, 1, done),
        (done) => cache.save(key, 1, 1000, done),
        (done) => cache.load(key, done),
        (done) => cache.load(key, {}, done),
        (done) => cache.destroy(key, done),
        (done) => cache.lock(key, done),
        (done) => cache.lock(key, 1000, done),
        (done) => cache.unlock(key, done),
        (done) => cache.checkLock(key, done),
        (done) => cache.checkLock(key, 100, done),
        (done) => cache.push(key, 1, done),
        (done) => cache.pop(key, done),
        (done) => cache.listLength(key, done),
        // without a callback: a throw, not a rejected promise
        () => cache.save(key, 1),
        () => cache.load(key),
        () => cache.destroy(key),
        () => cache.lock(key),
        () => cache.unlock(key),
        () => cache.checkLock(key),
        () => cache.push(key, 1),
        () => cache.pop(key),
        () => cache.listLength(key)
      ]
      for (const call of calls) await expectThrowsTypeError(call)
      await expect(cache.size()).resolves.toBe(0)
      expect(await cache.locks()).toEqual([])
    })

    test.each(BAD_TIMES)('an expire time that is %s', async (_, time) => {
      const cache = make(tag())
      await cache.save('existing', 'old', 60000)
      const calls = [
        (done) => cache.save('k', 1, time, done),
        (done) => cache.save('existing', 'new', time, done),
        (done) => cache.load('existing', { expireTimeMS: time }, done),
        (done) => cache.load('existing', { retry: time }, done),
        (done) => cache.lock('k', time, done),
        (done) => cache.checkLock('k', time, done),
        () => cache.save('k', 1, time),
        () => cache.load('existing', { expireTimeMS: time }),
        () => cache.lock('k', time)
      ]
      for (const call of calls) await expectThrowsTypeError(call)
      const [missing] = await viaCallback((done) => cache.load('k', done))
      expectCacheError(missing, 'Object not found', 'OBJECT_NOT_FOUND')
      expect((await cache.load('existing')).value).toBe('old')
      expect(await cache.locks()).toEqual([])
    })

    // In a child process: a time the native side cannot represent must be
    // refused in JS, and if it is not, a crash must fail this test, not jest.
    test('times beyond JS Date\'s range (±8.64e15 ms) throw a TypeError, and setters refuse them', () => {
      const child = runInChild(store.options(tag()), `
        const TIMES = [8.64e15 + 1, -8.64e15 - 1, 1e300, Number.MAX_VALUE, -Number.MAX_VALUE]
        const answers = {}
        const attempt = (name, call) => {
          try {
            call()
            answers[name] = 'did not throw'
          } catch (error) {
            answers[name] = error instanceof TypeError ? 'TypeError' : String(error)
          }
        }
        const ignore = () => {}
        for (const time of TIMES) {
          attempt('save ' + time, () => cache.save('k', 1, time, ignore))
          attempt('save (promise) ' + time, () => cache.save('k', 1, time))
          attempt('load expireTimeMS ' + time, () => cache.load('k', { expireTimeMS: time }, ignore))
          attempt('load retry ' + time, () => cache.load('k', { retry: time }, ignore))
          attempt('lock ' + time, () => cache.lock('k', time, ignore))
          attempt('checkLock ' + time, () => cache.checkLock('k', time, ignore))
          attempt('lockDuration = ' + time, () => { cache.lockDuration = time })
          attempt('lockRetry = ' + time, () => { cache.lockRetry = time })
        }
        answers.settingsAfter = [cache.lockDuration, cache.lockRetry]
        console.log(JSON.stringify(answers))
        process.exit(0)
      `)
      expect(child.stderr).toBe('')
      expect(child.status).toBe(0)
      const { settingsAfter, ...answers } = JSON.parse(child.stdout.trim().split('\n').pop())
      expect(Object.keys(answers)).toHaveLength(5 * 8)
      expect(Object.entries(answers).filter(([, answer]) => answer !== 'TypeError')).toEqual([])
      expect(settingsAfter).toEqual([10000, 100]) // the defaults, unchanged
    })

    test.each(BAD_CALLBACKS)('a callback that is %s', async (_, callback) => {
      const cache = make(tag())
      const file = tmpFile('callback')
      const calls = [
        () => cache.save('k', 1, 1000, callback),
        () => cache.save('k', 1, null, callback),
        () => cache.load('k', {}, callback),
        () => cache.destroy('k', callback),
        () => cache.lock('k', 1000, callback),
        () => cache.unlock('k', callback),
        () => cache.checkLock('k', 100, callback),
        () => cache.locks(callback),
        () => cache.keys(callback),
        () => cache.size(callback),
        () => cache.clear(callback),
        () => cache.dumpWrite(file, callback),
        () => cache.dumpRead(file, callback),
        () => cache.push('q', 1, callback),
        () => cache.pop('q', callback),
        () => cache.listLength('q', callback)
      ]
      for (const call of calls) expect(call).toThrow(TypeError)
      // Nothing happened: no entry, no lock, no list, no file.
      expect(await viaCallback((done) => cache.size(done))).toEqual([null, 0])
      expect(await viaCallback((done) => cache.locks(done))).toEqual([null, []])
      expect(await viaCallback((done) => cache.listLength('q', done))).toEqual([null, 0])
      expect(fs.existsSync(file)).toBe(false)
    })

    // In a child process, for the same reason as the closed-cache test.
    test.each(BAD_CALLBACKS)('close with a callback that is %s throws and leaves the cache open and working', (_, callback) => {
      const file = tmpFile('after-refused-close')
      const child = runInChild(store.options(tag()), `
        const answers = []
        const report = () => { console.log(JSON.stringify(answers)); process.exit(0) }
        setTimeout(() => { answers.push('no answer within 3 s'); report() }, 3000)
        try {
          cache.close(${JSON.stringify(callback)})
          answers.push('close did not throw')
        } catch (error) {
          answers.push('close threw ' + error.name)
        }
        // Calls in a row, including ones that wait (file I/O): each must be answered.
        const step = (round) => {
          if (round === 3) return cache.close((error, closed) => { answers.push('closed ' + error + ' ' + closed); report() })
          cache.save('k' + round, round, (error, saved) => {
            answers.push('save ' + error + ' ' + saved)
            cache.dumpWrite(${JSON.stringify(file)}, (error, count) => {
              answers.push('dumpWrite ' + error + ' ' + count)
              cache.load('k' + round, (error, value) => {
                answers.push('load ' + error + ' ' + value)
                step(round + 1)
              })
            })
          })
        }
        step(0)
      `)
      expect(child.stderr).toBe('')
      expect(child.status).toBe(0)
      expect(JSON.parse(child.stdout.trim().split('\n').pop())).toEqual([
        'close threw TypeError',
        'save null true', 'dumpWrite null 1', 'load null 0',
        'save null true', 'dumpWrite null 2', 'load null 1',
        'save null true', 'dumpWrite null 3', 'load null 2',
        'closed null true'
      ])
    })
  })

  test('loading a key that holds a list: WRONGTYPE and four nulls', async () => {
    const cache = make(tag())
    await cache.push('queue', 'item')
    const args = await viaCallback((done) => cache.load('queue', done))
    expect(args).toHaveLength(5)
    expectCacheError(args[0], undefined, 'WRONGTYPE')
    expect(args.slice(1)).toEqual([null, null, null, null])
    expectCacheError(await rejectionOf(cache.load('queue')), undefined, 'WRONGTYPE')
    // the list is untouched
    await expect(cache.listLength('queue')).resolves.toBe(1)
    await expect(cache.pop('queue')).resolves.toBe('item')
  })

  describe('a closed cache', () => {
    // Run in a child process: a call that is never answered would otherwise
    // keep this jest process alive. The child reports what each call answered
    // and, after a deadline, which never answered.
    test('every method answers CACHE_CLOSED, in the callback and as a rejection', () => {
      const dump = tmpFile('closed-read')
      fs.writeFileSync(dump, '{}') // a good (empty) dump, so only the closing can fail dumpRead
      const child = runInChild(store.options(tag()), `
        const calls = {
          save: (done) => cache.save('k', 1, done),
          load: (done) => cache.load('k', done),
          destroy: (done) => cache.destroy('k', done),
          lock: (done) => cache.lock('k', done),
          unlock: (done) => cache.unlock('k', done),
          checkLock: (done) => cache.checkLock('k', null, done),
          locks: (done) => cache.locks(done),
          keys: (done) => cache.keys(done),
          size: (done) => cache.size(done),
          clear: (done) => cache.clear(done),
          dumpWrite: (done) => cache.dumpWrite(${JSON.stringify(tmpFile('closed-write'))}, done),
          dumpRead: (done) => cache.dumpRead(${JSON.stringify(dump)}, done),
          push: (done) => cache.push('q', 1, done),
          pop: (done) => cache.pop('q', done),
          listLength: (done) => cache.listLength('q', done)
        }
        const answers = {}
        for (const name of Object.keys(calls)) {
          answers[name + ' (callback)'] = 'never answered'
          answers[name + ' (promise)'] = 'never answered'
        }
        const report = () => { console.log(JSON.stringify(answers)); process.exit(0) }
        setTimeout(report, 3000)
        let left = Object.keys(answers).length
        const answered = (name, outcome) => { answers[name] = outcome; if (--left === 0) report() }
        cache.save('k', 1, () => cache.close((error, closed) => {
          answers.close = [error, closed]
          for (const [name, call] of Object.entries(calls)) {
            call((error) => answered(name + ' (callback)', error ? error.code : 'no error'))
            call().then(() => 'resolved', (error) => error.code).then((outcome) => answered(name + ' (promise)', outcome))
          }
        }))
      `)
      expect(child.stderr).toBe('')
      expect(child.status).toBe(0)
      const answers = JSON.parse(child.stdout.trim().split('\n').pop())
      const expected = { close: [null, true] }
      for (const name of ['save', 'load', 'destroy', 'lock', 'unlock', 'checkLock', 'locks', 'keys', 'size', 'clear', 'dumpWrite', 'dumpRead', 'push', 'pop', 'listLength']) {
        expected[name + ' (callback)'] = 'CACHE_CLOSED'
        expected[name + ' (promise)'] = 'CACHE_CLOSED'
      }
      expect(answers).toEqual(expected)
    })

    test('closing twice is fine, in both forms', async () => {
      const cache = make(tag())
      expect(await viaCallback((done) => cache.close(done))).toEqual([null, true])
      expect(await viaCallback((done) => cache.close(done))).toEqual([null, true])
      await expect(cache.close()).resolves.toBe(true)
      await expect(cache.close()).resolves.toBe(true)
      const [error] = await viaCallback((done) => cache.size(done))
      expectCacheError(error, undefined, 'CACHE_CLOSED')
    })

    test('closing one cache leaves another on the same data working', async () => {
      const shared = tag()
      const a = make(shared)
      const b = make(shared)
      await a.save('k', 'v')
      await a.close()
      expect((await b.load('k')).value).toBe('v')
      await b.save('k2', 'v2')
      await expect(b.size()).resolves.toBe(2)
    })
  })

  describe('callbacks', () => {
    // [name, call(cache, done)] over success and error outcomes.
    const calls = [
      ['save', (cache, done) => cache.save('fresh', 1, 1000, done)],
      ['save of a value JSON cannot carry', (cache, done) => cache.save('fresh', 1n, done)],
      ['load of an entry', (cache, done) => cache.load('entry', done)],
      ['load of a missing key', (cache, done) => cache.load('missing', done)],
      ['load of a locked entry', (cache, done) => cache.load('locked-entry', done)],
      ['load with retry', (cache, done) => cache.load('entry', { retry: 500 }, done)],
      ['destroy', (cache, done) => cache.destroy('entry', done)],
      ['lock', (cache, done) => cache.lock('l', done)],
      ['unlock', (cache, done) => cache.unlock('l', done)],
      ['checkLock', (cache, done) => cache.checkLock('l', done)],
      ['checkLock with retry', (cache, done) => cache.checkLock('l', 500, done)],
      ['locks', (cache, done) => cache.locks(done)],
      ['keys', (cache, done) => cache.keys(done)],
      ['size', (cache, done) => cache.size(done)],
      ['clear', (cache, done) => cache.clear(done)],
      ['dumpWrite', (cache, done) => cache.dumpWrite(tmpFile('cb-write'), done)],
      ['dumpRead of a missing file', (cache, done) => cache.dumpRead(tmpFile('cb-missing'), done)],
      ['push', (cache, done) => cache.push('q', 1, done)],
      ['pop', (cache, done) => cache.pop('q', done)],
      ['listLength', (cache, done) => cache.listLength('q', done)],
      ['close', (cache, done) => cache.close(done)]
    ]

    async function prepared () {
      const shared = tag()
      const cache = make(shared, { lockName: 'me' })
      const other = make(shared, { lockName: 'other' })
      await cache.save('entry', 'v')
      await cache.save('locked-entry', 'v')
      await other.lock('locked-entry')
      return cache
    }

    test.each(calls)('%s: called exactly once, and only after the method has returned', async (_, call) => {
      const cache = await prepared()
      const order = []
      let calledBack
      const called = new Promise((resolve) => { calledBack = resolve })
      const returned = call(cache, (...args) => {
        order.push('callback')
        calledBack(args)
      })
      order.push('returned')
      expect(types.isPromise(returned)).toBe(false)
      // Wait for the callback (at most 4 s, so that a missing one fails below
      // instead of hanging), then a while longer to catch a second call.
      let guard
      await Promise.race([called, new Promise((resolve) => { guard = setTimeout(resolve, 4000) })])
      clearTimeout(guard)
      await sleep(100)
      expect(order).toEqual(['returned', 'callback'])
    })

    test('calls still waiting on a lock keep a plain Node process alive until their callbacks', () => {
      const options = store.options(tag())
      const child = runInChild(options, `
        const other = new Cache(Object.assign(${JSON.stringify(options)}, { lockName: 'other' }))
        const answers = []
        const finish = () => {
          if (answers.length < 2) return
          console.log(answers.sort().join(' | '))
          cache.close(() => other.close())
        }
        other.save('k', 1, () => other.lock('k', 10000, () => {
          // From here on, only these two calls are under way.
          cache.checkLock('k', 600, (error, free) => { answers.push('checkLock: ' + error + ' ' + free); finish() })
          cache.load('k', { retry: 600 }, (error) => { answers.push('load: ' + (error && error.code)); finish() })
        }))
      `)
      expect(child.stderr).toBe('')
      expect(child.status).toBe(0)
      expect(child.stdout.trim()).toBe('checkLock: null false | load: OBJECT_LOCKED')
    })

    test.each([['save'], ['load of an entry'], ['load of a missing key']])(
      'a callback that throws (%s) surfaces as an uncaught exception',
      (which) => {
        const bodies = {
          save: "cache.save('k', 1, () => { throw new Error('thrown by the callback') })",
          'load of an entry': "cache.save('k', 1).then(() => cache.load('k', () => { throw new Error('thrown by the callback') }))",
          'load of a missing key': "cache.load('missing', () => { throw new Error('thrown by the callback') })"
        }
        const child = runInChild(store.options(tag()), `
          let calls = 0
          process.on('uncaughtException', (error) => {
            calls++
            console.log('uncaught: ' + error.message)
            setTimeout(() => { console.log('uncaught calls: ' + calls); process.exit(0) }, 200)
          })
          ${bodies[which]}
        `)
        expect(child.signal).toBeNull()
        expect(child.status).toBe(0)
        expect(child.stdout).toContain('uncaught: thrown by the callback')
        expect(child.stdout).toContain('uncaught calls: 1')
      }
    )
  })

  test('without a callback every method returns a Promise', async () => {
    const cache = make(tag())
    const file = tmpFile('promises')
    const dumpCache = make(tag())
    const results = {
      save: cache.save('k', 1),
      load: cache.save('k2', 2).then(() => cache.load('k2')),
      destroy: cache.destroy('nothing'),
      lock: cache.lock('l'),
      unlock: cache.unlock('free'),
      checkLock: cache.checkLock('free'),
      push: cache.push('q', 'i'),
      listLength: cache.listLength('missing'),
      pop: cache.pop('missing'),
      // On a cache of its own: a dump fails on the list pushed above.
      dumpWrite: dumpCache.dumpWrite(file)
    }
    for (const [name, promise] of Object.entries(results)) {
      expect([name, types.isPromise(promise)]).toEqual([name, true])
    }
    const settled = {}
    for (const [name, promise] of Object.entries(results)) settled[name] = await promise
    expect(settled).toEqual({
      save: true,
      load: { key: 'k2', value: 2, expireTimestamp: null, createdAt: expect.any(Number), lastReadAt: null },
      destroy: false,
      lock: true,
      unlock: true,
      checkLock: true,
      push: true, // as actionhero 18+ resolves it
      listLength: 0,
      pop: undefined,
      dumpWrite: 0
    })
    const later = {}
    for (const name of ['locks', 'keys', 'size', 'clear', 'close']) {
      const promise = cache[name]()
      expect([name, types.isPromise(promise)]).toEqual([name, true])
      later[name] = await promise
    }
    later.keys = [...later.keys].sort()
    expect(later).toEqual({ locks: [cache.lockPrefix + 'l'], keys: ['k', 'k2', 'q'].map((key) => cache.cachePrefix + key), size: 3, clear: true, close: true })
  })
})

describe('corrupt entries (Redis)', () => {
  const { tag, make, redis } = redisHarness('corrupt')

  const corrupt = [
    ['text that is not JSON', 'not json'],
    ['a JSON array', '[1,2]'],
    ['a JSON string', '"just a string"'],
    ['a JSON number', '42'],
    ['an envelope whose value is not JSON', '{"value":nope,"expireTimestamp":null,"createdAt":1,"readAt":null}'],
    ['an envelope whose expireTimestamp is not a number', '{"expireTimestamp":"soon","value":1,"createdAt":1,"readAt":null}'],
    ['half an envelope', '{"value":{"a":1'],
    ['an empty string', '']
  ]

  test.each(corrupt)('%s: OBJECT_CORRUPT in the callback with four nulls, and no crash', async (_, raw) => {
    const cache = make(tag())
    await redis.set(cache.cachePrefix + 'bad', raw)
    const args = await viaCallback((done) => cache.load('bad', done))
    expect(args).toHaveLength(5)
    expectCacheError(args[0], undefined, 'OBJECT_CORRUPT')
    expect(args.slice(1)).toEqual([null, null, null, null])
    expectCacheError(await rejectionOf(cache.load('bad')), undefined, 'OBJECT_CORRUPT')
    // Nothing was written back.
    expect(await redis.get(cache.cachePrefix + 'bad')).toBe(raw)
    // The cache goes on working, and a save repairs the entry.
    await cache.save('bad', { repaired: true })
    expect((await cache.load('bad')).value).toEqual({ repaired: true })
  })

  // The load's script finds a good tail and writes it before the value is
  // checked: what it wrote, readAt and a lifetime (with a refresh, a new
  // expireTimestamp too), is undone. The script answers only where it
  // wrote; Rust rebuilds what, and a wrong guess would leave it written.
  test.each([
    ['', undefined],
    [' loaded with a refresh', { expireTimeMS: 30000 }],
    [' with a refresh and no expiry', { expireTimeMS: 30000 }, 'null']
  ])('a corrupt value before a tail that looks like an envelope\'s%s: the text and its lifetime are put back', async (_, options, expireTimestamp = Date.now() + 500000) => {
    const cache = make(tag())
    const raw = `{"value":nope,"expireTimestamp":${expireTimestamp},"createdAt":1,"readAt":null}`
    await redis.set(cache.cachePrefix + 'bad', raw, 'PX', 100000)
    expectCacheError(await rejectionOf(cache.load('bad', options)), undefined, 'OBJECT_CORRUPT')
    expect(await redis.get(cache.cachePrefix + 'bad')).toBe(raw)
    const pttl = await redis.pttl(cache.cachePrefix + 'bad')
    expect(pttl).toBeGreaterThan(90000)
    expect(pttl).toBeLessThanOrEqual(101000)
  })
})
