'use strict'

const fs = require('fs')
const path = require('path')

/** The binary built for this platform (the napi-rs naming, as `npm run build` writes it). */
function loadNative () {
  const { platform, arch } = process
  const abis = { linux: ['-gnu', '-musl'], win32: ['-msvc'] }[platform] || ['']
  const files = abis.map((abi) => path.join(__dirname, '..', `actionhero-native-cache.${platform}-${arch}${abi}.node`))
  const file = files.find((candidate) => fs.existsSync(candidate))
  if (file === undefined) {
    throw new Error(`actionhero-native-cache has no binary for ${platform}-${arch}: none of ${files.join(', ')} (build it with \`npm run build\`)`)
  }
  return require(file)
}

const addon = loadNative()

// One set of functions for every cache, each taking the cache's handle
// first (src/bound.rs says why).
module.exports = {
  openCache: addon.openCache,
  methods: addon.cacheMethods(),
  memoryServerKeyCount: addon.memoryServerKeyCount,
  yieldThread: addon.yieldThread
}
