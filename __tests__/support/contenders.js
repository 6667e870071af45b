'use strict'

// Contenders for the contention tests: scripts run as separate Node
// processes (as actionhero nodes are) or as worker threads of this process
// (to share one in-memory server), all with one protocol: the contender
// says 'ready', waits for 'go' so that all start together, then sends
// { result } and ends.

const { fork } = require('child_process')
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads')

/**
 * Starts `script` with `config`, as a child process or, with `thread`, a
 * worker thread. Answers { ready, done, go(), stop() }: `ready` and `done`
 * (the result) are promises that reject when the contender ends early.
 */
function startContender (script, config, { thread = false } = {}) {
  const worker = thread
    ? new Worker(script, { workerData: config })
    : fork(script, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let exited = false
  const ready = new Promise((resolve, reject) => {
    worker.once('message', (message) => (message === 'ready' ? resolve() : reject(new Error(`unexpected message ${JSON.stringify(message)}`))))
    worker.once('exit', (code) => reject(new Error(`${config.name} exited with ${code} before it was ready`)))
  })
  const done = new Promise((resolve, reject) => {
    worker.on('message', (message) => { if (message && message.result) resolve(message.result) })
    worker.once('error', reject) // a worker thread's uncaught exception
    worker.once('exit', (code) => { exited = true; reject(new Error(`${config.name} exited with ${code} without a result`)) })
  })
  return {
    ready,
    done,
    go: () => (thread ? worker.postMessage('go') : worker.send('go')),
    stop () {
      if (exited) return
      if (thread) worker.terminate()
      else if (worker.exitCode === null) worker.kill()
    }
  }
}

/**
 * The contender's side: its config, and `serve(run)`, which says 'ready',
 * runs `run()` on 'go', hands its result (or the error it threw) to the
 * parent and lets the contender end.
 */
function parentChannel () {
  const config = isMainThread ? JSON.parse(process.argv[2]) : workerData
  const send = isMainThread ? (message, sent) => process.send(message, sent) : (message, sent) => { parentPort.postMessage(message); sent() }
  const onMessage = isMainThread ? (listener) => process.on('message', listener) : (listener) => parentPort.on('message', listener)
  const hangUp = isMainThread ? () => process.disconnect() : () => parentPort.close()

  function serve (run) {
    onMessage(async (message) => {
      if (message !== 'go') return
      let result
      try {
        result = await run()
      } catch (error) {
        result = { name: config.name, fatal: `${error.code} ${error.stack}` }
      }
      send({ result }, hangUp)
    })
    send('ready', () => {})
  }

  return { config, serve }
}

/**
 * Two contender processes (support/contender.js) try the lock `mutex`
 * `attempts` times each, on caches built from `cacheOptions`, each adding 1
 * to `counter` whenever it holds the lock. Checks their reports and
 * answers how many times the lock was held in all: the counter the caller
 * reads must equal it, or an increment was lost to an overlapping holder.
 */
async function raceForTheLock ({ label, attempts, cacheOptions, run }) {
  const script = require('path').join(__dirname, 'contender.js')
  const contenders = ['alpha', 'beta'].map((name) =>
    startContender(script, { name: `${name}-${run}`, key: 'mutex', attempts, cacheOptions }))
  try {
    await Promise.all(contenders.map((c) => c.ready))
    for (const contender of contenders) contender.go()
    const results = await Promise.all(contenders.map((c) => c.done))
    for (const result of results) {
      expect(result.fatal).toBeUndefined()
      expect(result.errors).toEqual([])
      expect(result.violations).toEqual([])
      expect(result.holds + result.misses).toBe(attempts)
      expect(result.holds).toBeGreaterThan(0) // both got the lock at least once
    }
    // Print the split so a run with (almost) no contention is visible.
    console.log(`${label}: ${results.map((r) => `${r.name} held ${r.holds}/${attempts}`).join(', ')}`)
    return results.reduce((sum, r) => sum + r.holds, 0)
  } finally {
    for (const contender of contenders) contender.stop()
  }
}

module.exports = { startContender, parentChannel, raceForTheLock }
