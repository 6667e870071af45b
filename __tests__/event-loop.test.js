'use strict'

// While one or two calls wait for the runtime, Node's event loop keeps
// turning instead of sleeping (lib/replies.js): on Node's own setImmediate,
// yielding the core on every turn, only until the replies are in or
// TURN_MS have passed, and not at all after a reply that took longer.
// The native side is replaced here by a stand-in for `yieldThread`, and the
// clock the turning reads is set by each test.

const timers = require('timers')
const { performance } = require('perf_hooks')

jest.mock('../lib/native', () => ({ yieldThread: jest.fn() }))
const { yieldThread } = require('../lib/native')
const { waitFor, onSettled } = require('../lib/replies')

const TURN_MS = 0.25

let now = 0
let lastId = 1000
beforeEach(() => {
  now = 0
  jest.spyOn(performance, 'now').mockImplementation(() => now)
  yieldThread.mockClear()
})
afterEach(() => jest.restoreAllMocks())

const immediates = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Immediate').length
/** One turn of the event loop (Node's own setImmediate runs after the loop's). */
const aTurn = () => new Promise((resolve) => timers.setImmediate(resolve))

/** Makes a call wait, as index.js does; answers its id and what it was answered. */
function waiting () {
  const call = { id: ++lastId, outcome: undefined }
  waitFor(call.id, (outcome) => { call.outcome = outcome })
  return call
}

/** Ends with no call under way and a reply that came at once, so that the next call turns. */
async function settleAll (...calls) {
  onSettled(calls.map((call) => call.id), calls.map(() => 'done'))
  await aTurn()
}

test('the loop turns while a call is under way, yielding the core each turn, and stops once it is answered', async () => {
  const before = immediates()
  const call = waiting()
  expect(immediates()).toBe(before + 1)
  await aTurn()
  await aTurn()
  expect(yieldThread).toHaveBeenCalled()
  expect(immediates()).toBe(before + 1)

  onSettled([call.id], ['answer'])
  expect(call.outcome).toBe('answer')
  await aTurn()
  expect(immediates()).toBe(before)
})

test('the loop stops turning TURN_MS after the last call, and does not turn for the next call after so slow a reply', async () => {
  const before = immediates()
  const slow = waiting()
  now = TURN_MS + 0.01
  await aTurn()
  expect(immediates()).toBe(before)

  onSettled([slow.id], ['late'])
  const next = waiting()
  expect(immediates()).toBe(before)

  // This reply comes at once: the call after it turns again.
  onSettled([next.id], ['soon'])
  const third = waiting()
  expect(immediates()).toBe(before + 1)
  await settleAll(third)
})

test('the loop does not keep turning with more than two calls under way', async () => {
  const before = immediates()
  const calls = [waiting(), waiting(), waiting()]
  await aTurn()
  expect(immediates()).toBe(before)
  await settleAll(...calls)
})

test('under jest\'s fake timers the loop turns on Node\'s own setImmediate: nothing for the test to run', async () => {
  const before = immediates()
  jest.useFakeTimers()
  try {
    const call = waiting()
    expect(jest.getTimerCount()).toBe(0)
    expect(immediates()).toBe(before + 1)
    await settleAll(call)
  } finally {
    jest.useRealTimers()
  }
  expect(immediates()).toBe(before)
})
