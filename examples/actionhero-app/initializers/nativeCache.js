'use strict'

// The whole switch to the native cache. In your app this file is one line:
//
//   module.exports = require('actionhero-native-cache/initializer')
//
// This example lives inside the actionhero-native-cache package itself, where
// `require('actionhero-native-cache/...')` would not find the package (it is
// not installed in its own node_modules), so it loads the same file by its
// path from the package root.
module.exports = require('../../../initializer')
