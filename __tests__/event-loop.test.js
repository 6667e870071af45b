'use strict'

// While one or two calls wait for the runtime, Node's event loop keeps
// turning instead of sleeping (lib/replies.js): on Node's own setImmediate,
// yielding the core on every turn, only until the replies are in or
// TURN_MS have passed, and not at all after a reply that took longer.
// The native side is replaced here by a stand-in for `yieldThread`, whose
// calls count the turns, and the clock the turning reads by one each test
// sets; both only in this file's module registry, so that other files'
// caches in the same process (jest --runInBand) keep the real ones.

const timers = require('timers')

let mockNow = 0
jest.mock('perf_hooks', () => ({ performance: { now: () => mockNow } }))
jest.mock('../lib/native', () => ({ yieldThread: jest.fn() }))
const { yieldThread } = require('../lib/native')
const { waitFor, onSettled } = require('../lib/replies')

const TURN_MS = 0.25

let lastId = 1000
let unsettled = []
beforeEach(() => {
  mockNow = 0
  yieldThread.mockClear()
})
// A failed check must not leave a call waiting: its ref'd keep-alive timer
// would hold jest's process open after the run.
afterEach(() => {
  if (unsettled.length) onSettled(unsettled.map((call) => call.id), unsettled.map(() => 'after the test'))
  unsettled = []
})

/** `count` turns of the event loop (Node's own setImmediate runs after the loop's). */
async function turns (count) {
  for (let turn = 0; turn < count; turn++) await new Promise((resolve) => timers.setImmediate(resolve))
}

/** Makes a call wait, as index.js does; answers its id and what it was answered. */
function waiting () {
  const call = { id: ++lastId, outcome: undefined }
  waitFor(call.id, (outcome) => { call.outcome = outcome })
  unsettled.push(call)
  return call
}

/** Answers these calls, with a reply that came at once unless the clock was moved. */
function settle (...calls) {
  onSettled(calls.map((call) => call.id), calls.map(() => 'answer'))
  unsettled = unsettled.filter((call) => !calls.includes(call))
}

/** How many times the loop turned (and yielded) during `count` more turns. */
async function turnedDuring (count) {
  const before = yieldThread.mock.calls.length
  await turns(count)
  return yieldThread.mock.calls.length - before
}

test('the loop turns while a call is under way, yielding the core each turn, and stops once it is answered', async () => {
  const call = waiting()
  expect(await turnedDuring(5)).toBeGreaterThanOrEqual(4)

  settle(call)
  expect(call.outcome).toBe('answer')
  await turns(1) // the turn already scheduled ends it
  expect(await turnedDuring(5)).toBe(0)
})

test('the loop stops turning TURN_MS after the last call, and does not turn for the next call after so slow a reply', async () => {
  const slow = waiting()
  expect(await turnedDuring(2)).toBeGreaterThanOrEqual(1)
  mockNow = TURN_MS + 0.01
  await turns(1)
  expect(await turnedDuring(5)).toBe(0)

  settle(slow)
  const next = waiting()
  expect(await turnedDuring(5)).toBe(0)

  // This reply comes at once: the call after it turns again.
  settle(next)
  const third = waiting()
  expect(await turnedDuring(5)).toBeGreaterThanOrEqual(4)
  settle(third)
})

test('the loop does not keep turning with more than two calls under way', async () => {
  const calls = [waiting(), waiting(), waiting()]
  await turns(1)
  expect(await turnedDuring(5)).toBe(0)
  settle(...calls)
})

test('under jest\'s fake timers the loop turns on Node\'s own setImmediate: nothing for the test to run', async () => {
  jest.useFakeTimers()
  try {
    const call = waiting()
    expect(jest.getTimerCount()).toBe(0)
    expect(await turnedDuring(5)).toBeGreaterThanOrEqual(4)
    settle(call)
  } finally {
    jest.useRealTimers()
  }
})
