'use strict'

// rediss:// URLs: a TLS-only redis-server of the test's own, on a free
// loopback port, with a self-signed certificate made for the run.

const { execFileSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { Cache } = require('..')
const { startRedis, freePort, ioredisAnswers } = require('./support/redis-server')
const { failsWithin } = require('./support/harness')

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anc-tls-'))
let server
let port

beforeAll(async () => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' })
  port = await freePort()
  server = await startRedis({
    port,
    args: ['--tls-port', String(port), '--tls-cert-file', path.join(dir, 'cert.pem'), '--tls-key-file', path.join(dir, 'key.pem'),
      '--tls-ca-cert-file', path.join(dir, 'cert.pem'), '--tls-auth-clients', 'no']
  })
})

afterAll(async () => {
  if (server) await server.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

const timeouts = { connectTimeoutMS: 2000, commandTimeoutMS: 2000 }

test('a rediss:// URL speaks TLS: save, load and lock work', async () => {
  // #insecure: the test's certificate is self-signed, so it is not verified.
  const cache = new Cache({ redis: { url: `rediss://127.0.0.1:${port}/0#insecure`, ...timeouts }, lockName: 'tls' })
  try {
    expect(await cache.save('greeting', { over: 'tls' }, 5000)).toBe(true)
    expect((await cache.load('greeting')).value).toEqual({ over: 'tls' })
    expect(await cache.lock('greeting')).toBe(true)
    expect(await cache.locks()).toEqual(['actionhero:lock:greeting'])
  } finally {
    await cache.close()
  }
})

test('the server certificate is verified unless the URL says #insecure', async () => {
  const cache = new Cache({ redis: { url: `rediss://127.0.0.1:${port}/0`, ...timeouts } })
  try {
    const error = await cache.save('k', 1).then(() => null, (e) => e)
    expect(error).toBeInstanceOf(Error)
    expect(error.code).toBe('REDIS_CONNECTION')
    expect(error.message).toMatch(/certificate/)
  } finally {
    await cache.close()
  }
})

test('a plain redis:// URL to the TLS port fails with an error, never a hang', async () => {
  const timeouts = { connectTimeoutMS: 500, commandTimeoutMS: 500 }
  const cache = new Cache({ redis: { url: `redis://127.0.0.1:${port}/0`, ...timeouts } })
  try {
    const started = Date.now()
    const error = await cache.save('k', 1).then(() => null, (e) => e)
    expect(Date.now() - started).toBeLessThanOrEqual(failsWithin(timeouts))
    expect(error).toBeInstanceOf(Error)
    expect(['REDIS_CONNECTION', 'REDIS_TIMEOUT']).toContain(error.code)
  } finally {
    await cache.close()
  }
})

describe('ioredis\'s tls option, and rediss:// among ioredis arguments', () => {
  const Redis = require('ioredis')


  /** Whether the cache, given `args` as actionhero 16's client config, gets an answer. */
  async function cacheAnswers (args) {
    const cache = new Cache({ redis: { client: { konstructor: Redis, args }, ...timeouts }, lockName: 'tls-args' })
    try {
      await cache.save('tls-args', 1, 5000)
      return true
    } catch (error) {
      expect(['REDIS_CONNECTION', 'REDIS_TIMEOUT']).toContain(error.code)
      return false
    } finally {
      await cache.close()
    }
  }

  const host = '127.0.0.1'
  test.each([
    ['tls: { rejectUnauthorized: false }', () => [{ host, port, tls: { rejectUnauthorized: false } }], true],
    ['a rediss:// URL, then tls: { rejectUnauthorized: false }', () => [`rediss://${host}:${port}/0`, { tls: { rejectUnauthorized: false } }], true],
    ['tls: {} checks the certificate (self-signed here)', () => [{ host, port, tls: {} }], false],
    ['tls: true checks it too', () => [{ host, port, tls: true }], false],
    ['a rediss:// URL alone checks it', () => [`rediss://${host}:${port}/0`], false],
    ['tls: false beside a rediss:// URL means no TLS', () => [{ tls: false }, `rediss://${host}:${port}/0`], false]
  ])('%s: as ioredis', async (_, args, answers) => {
    expect(await ioredisAnswers(args())).toBe(answers) // the case says what ioredis does
    expect(await cacheAnswers(args())).toBe(answers)
  })

  test('#insecure (this package\'s convention) also works among ioredis arguments', async () => {
    expect(await cacheAnswers([`rediss://${host}:${port}/0#insecure`])).toBe(true)
  })
})
