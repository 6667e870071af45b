'use strict'

// actionhero 16.0.5's own cache test suite (test/core/cache.js, 29 tests)
// run by mocha against an actionhero 16 app whose api.cache is the native
// one: once on a real Redis (database 12) and once on the default fakeredis
// config (the native in-memory store).
//
// How a run goes:
// - A temporary app is built in os.tmpdir() (removed afterwards) from the
//   example app's config, locales and package.json (examples/actionhero-app),
//   plus `initializers/nativeCache.js` = require('<repo>/initializer').
// - The suite is copied into it at run time from node_modules/actionhero,
//   byte for byte. It is not committed here: actionhero's code stays in
//   node_modules, at the version package.json pins. The suite requires
//   actionhero as `../../actionhero.js` (its own tree's layout); the app has
//   a one-line `actionhero.js` that re-exports the installed actionhero, and
//   a `node_modules` link to ours for chai, dirty-chai and async.
// - mocha (10, with actionhero's mocha.opts: --timeout 5000 --check-leaks)
//   runs it in a child process under NODE_ENV=test, with TMPDIR inside the
//   app so that the suite's `os.tmpdir()/cacheDump` file is its own.
// - A `--require` hook (support/actionhero-cache-probe.js) records whether
//   api.cache was the native Cache after boot and before stop.
// One run takes about 5 s (the suite's own waits); the child is killed
// after RUN_GUARD_MS only so that a hang fails instead of stalling jest.

const fs = require('fs')
const os = require('os')
const path = require('path')
const { execFile } = require('child_process')
const Redis = require('ioredis')

const REPO = path.join(__dirname, '..')
const ACTIONHERO = path.dirname(require.resolve('actionhero/package.json'))
const SUITE = path.join(ACTIONHERO, 'test', 'core', 'cache.js')
const EXAMPLE = path.join(REPO, 'examples', 'actionhero-app')
const PROBE = path.join(__dirname, 'support', 'actionhero-cache-probe.js')
const MOCHA = require.resolve('mocha/bin/mocha.js')

const SUITE_TESTS = 29
const RUN_GUARD_MS = 120000
// The local Redis's database kept for this file: the suite uses actionhero's
// default prefixes and expects to see only its own keys.
const REDIS = { host: '127.0.0.1', port: 6379, db: 12 }

const stores = [
  {
    name: 'a real Redis (FAKEREDIS=false, database 12)',
    env: { FAKEREDIS: 'false', REDIS_HOST: REDIS.host, REDIS_PORT: String(REDIS.port), REDIS_DB: String(REDIS.db) }
  },
  {
    name: 'the default fakeredis config (native in-memory store)',
    // Any of these would switch actionhero's config/redis.js to a real Redis.
    env: { FAKEREDIS: undefined, REDIS_HOST: undefined, REDIS_PORT: undefined, REDIS_DB: undefined }
  }
]

async function flushSuiteDatabase () {
  const redis = new Redis({ ...REDIS, lazyConnect: true })
  try {
    await redis.connect()
    await redis.flushdb()
  } finally {
    redis.disconnect()
  }
}

/** The temporary actionhero 16 app the suite runs in; answers its folder. */
function buildApp () {
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'actionhero-native-cache-suite-'))
  for (const part of ['config', 'locales', 'package.json']) {
    fs.cpSync(path.join(EXAMPLE, part), path.join(app, part), { recursive: true })
  }
  // pub/sub is not per database: a channel of this run's own keeps other
  // actionhero processes on this Redis out of it.
  fs.writeFileSync(path.join(app, 'config', 'suite.js'),
    `exports.default = { general: () => ({ channel: ${JSON.stringify(`native-cache-suite-${process.pid}`)} }) }\n`)
  fs.mkdirSync(path.join(app, 'initializers'))
  fs.writeFileSync(path.join(app, 'initializers', 'nativeCache.js'),
    `module.exports = require(${JSON.stringify(path.join(REPO, 'initializer'))})\n`)
  fs.writeFileSync(path.join(app, 'actionhero.js'), `module.exports = require(${JSON.stringify(ACTIONHERO)})\n`)
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(app, 'node_modules'), 'dir')
  fs.mkdirSync(path.join(app, 'test', 'core'), { recursive: true })
  fs.copyFileSync(SUITE, path.join(app, 'test', 'core', 'cache.js'))
  fs.mkdirSync(path.join(app, 'tmp'))
  return app
}

/** Runs the suite in `app` with `storeEnv`; answers mocha's JSON report and the probe's records. */
function runSuite (app, storeEnv) {
  const report = path.join(app, 'mocha-report.json')
  const probe = path.join(app, 'probe.jsonl')
  const env = { ...process.env, PROJECT_ROOT: app, NODE_ENV: 'test', TMPDIR: path.join(app, 'tmp'), NATIVE_CACHE_PROBE_FILE: probe }
  delete env.REDIS_PASSWORD
  for (const [name, value] of Object.entries(storeEnv)) {
    if (value === undefined) delete env[name]
    else env[name] = value
  }
  const args = [MOCHA, '--require', PROBE, '--timeout', '5000', '--check-leaks',
    '--reporter', 'json', '--reporter-option', `output=${report}`, path.join('test', 'core', 'cache.js')]
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: app, env, timeout: RUN_GUARD_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const read = (file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '')
      const output = `${error ? `${error.message}\n` : ''}${stdout}${stderr}`
      const reportText = read(report)
      resolve({
        report: reportText ? JSON.parse(reportText) : null,
        probes: read(probe).split('\n').filter(Boolean).map((line) => JSON.parse(line)),
        output
      })
    })
  })
}

describe.each(stores)('actionhero 16.0.5\'s own cache suite on $name', (store) => {
  let app
  let run

  beforeAll(async () => {
    await flushSuiteDatabase()
    app = buildApp()
    run = await runSuite(app, store.env)
  }, RUN_GUARD_MS + 10000)

  afterAll(async () => {
    if (app) fs.rmSync(app, { recursive: true, force: true })
    await flushSuiteDatabase()
  })

  test('the suite is actionhero\'s, unmodified', () => {
    expect(fs.readFileSync(path.join(app, 'test', 'core', 'cache.js'))).toEqual(fs.readFileSync(SUITE))
    expect(require(path.join(ACTIONHERO, 'package.json')).version).toBe('16.0.5')
  })

  test(`all ${SUITE_TESTS} tests pass`, () => {
    if (run.report === null) throw new Error(`mocha wrote no report:\n${run.output}`)
    const { stats, failures } = run.report
    expect({
      tests: stats.tests,
      passes: stats.passes,
      failures: failures.map((failure) => `${failure.fullTitle}: ${failure.err.message}`)
    }).toEqual({ tests: SUITE_TESTS, passes: SUITE_TESTS, failures: [] })
  })

  test('api.cache was the native cache from boot to stop', () => {
    expect(run.probes).toEqual([
      { moment: 'started', native: true, cacheType: 'Cache', redisPrefix: 'actionhero:cache:' },
      { moment: 'stopping', native: true, cacheType: 'Cache', redisPrefix: 'actionhero:cache:' }
    ])
  })
})
