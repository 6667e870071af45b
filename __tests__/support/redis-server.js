'use strict'

// A redis-server of a test's own, on a free loopback port, that keeps
// nothing on disk; stopped by the test. And a server that never answers.

const { spawn } = require('child_process')
const net = require('net')

function freePort () {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

/**
 * Whether something takes connections on this loopback port. The probe is
 * destroyed, not ended: an ended one stays open until the server closes
 * its side, and an open socket holds jest's process after the run (two
 * were seen still open, half-closed, in a run that did not exit).
 */
function accepts (port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

/** Whether something takes connections on this port within 5 s (asked every 100 ms). */
async function acceptsSoon (port) {
  for (let tries = 0; tries < 50; tries++) {
    if (await accepts(port)) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return accepts(port)
}

/**
 * Starts redis-server on `port` (a free one when left out); `args` are
 * extra command-line options, `config` a config file (a Sentinel's).
 * Answers { port, stop(), kill(), pause(), resume() }: a paused server
 * (SIGSTOP) keeps its connections but answers nothing; a killed one
 * (SIGKILL) is gone at once, as in a crash.
 */
async function startRedis ({ port, args = [], config } = {}) {
  port = port || await freePort()
  const portArgs = args.includes('--tls-port') ? ['--port', '0'] : ['--port', String(port)]
  const server = spawn('redis-server', [...(config ? [config] : []), ...portArgs, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args],
    { stdio: 'ignore' })
  const exited = new Promise((resolve) => server.once('exit', resolve))
  if (!(await acceptsSoon(port))) {
    server.kill()
    throw new Error(`redis-server did not start on port ${port}`)
  }
  return {
    port,
    pause: () => server.kill('SIGSTOP'),
    kill: () => server.kill('SIGKILL'),
    resume: () => server.kill('SIGCONT'),
    async stop () {
      server.kill('SIGCONT') // a stopped process would not act on SIGTERM
      server.kill()
      await exited
    }
  }
}

/**
 * A loopback server that takes connections and never says a word: a Redis
 * that does not answer. Answers { port, connections(), close() }.
 */
async function silentServer () {
  const sockets = new Set()
  let accepted = 0
  const server = net.createServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: server.address().port,
    /** Connections open now. */
    connections: () => sockets.size,
    /** Connections ever accepted. */
    accepted: () => accepted,
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy()
      server.close(resolve)
    })
  }
}

/**
 * Whether ioredis itself, given constructor `args` (at most two), gets an
 * answer; it fails at once instead of retrying.
 */
async function ioredisAnswers (args) {
  const Redis = require('ioredis')
  if (args.length > 2) throw new Error('ioredisAnswers takes at most two arguments')
  // A third argument after the case's: ioredis merges first-wins, so it
  // changes nothing they set. A short disconnectTimeout lets a refused
  // client's socket go at once.
  const client = new Redis(...args, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, disconnectTimeout: 50 })
  client.on('error', () => {})
  try {
    await client.connect()
    return (await client.ping()) === 'PONG'
  } catch (_) {
    return false
  } finally {
    client.disconnect()
  }
}

module.exports = { startRedis, freePort, accepts, acceptsSoon, silentServer, ioredisAnswers }
