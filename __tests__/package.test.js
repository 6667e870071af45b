'use strict'

// The packed tarball carries the built binary: it installs into an empty
// project and works there with no build step (npm 11 does not run a
// dependency's install scripts, so a package that built on install would
// silently not build for its users).

const { execFileSync } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')

const root = path.join(__dirname, '..')
let dir

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anc-pack-'))
})

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true })
})

const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

test('npm pack gives a tarball that installs into an empty project and works', () => {
  // --ignore-scripts: the binary is already built (`prepare` builds it on a real pack).
  const packed = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dir], root))[0]
  const files = packed.files.map((file) => file.path).sort()
  expect(files).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'initializer.js', 'package.json', 'README.md']))
  expect(files.some((file) => /^actionhero-native-cache\..+\.node$/.test(file))).toBe(true)
  expect(files.filter((file) => file.startsWith('src/') || file.startsWith('__tests__/'))).toEqual([])

  const app = path.join(dir, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  npm(['install', '--offline', '--no-audit', '--no-fund', path.join(dir, packed.filename)], app)

  // Only the cache and the initializer are the package's to require: the
  // native functions under lib/ take a raw handle, which anything else
  // passed for it would be misread as.
  const script = `
    const { Cache } = require('actionhero-native-cache')
    const initializer = require('actionhero-native-cache/initializer')
    const internal = (() => {
      try { require('actionhero-native-cache/lib/native'); return 'reachable' } catch (error) { return error.code }
    })()
    const cache = new Cache({ lockName: 'packed' })
    cache.save('k', { packed: true }, 1000, (error) => {
      if (error) throw error
      cache.load('k', (error, value) => {
        if (error) throw error
        console.log(JSON.stringify({ value, loadPriority: initializer.loadPriority, internal }))
      })
    })`
  const output = execFileSync(process.execPath, ['-e', script], { cwd: app, encoding: 'utf8' })
  expect(JSON.parse(output)).toEqual({ value: { packed: true }, loadPriority: 301, internal: 'ERR_PACKAGE_PATH_NOT_EXPORTED' })
  expect(fs.existsSync(path.join(app, 'node_modules', 'actionhero-native-cache', 'src'))).toBe(false)
})
