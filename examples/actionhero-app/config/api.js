'use strict'

const os = require('os')
const path = require('path')

const root = path.join(__dirname, '..')

exports['default'] = {
  general: function (api) {
    return {
      apiVersion: require(path.join(root, 'package.json')).version,
      serverName: 'actionhero-native-cache-example',
      serverToken: process.env.SERVER_TOKEN || 'change-me',
      // The native cache reads these three, as actionhero's JS cache does.
      cachePrefix: 'actionhero:cache:',
      lockPrefix: 'actionhero:lock:',
      lockDuration: 1000 * 10,
      // No file watching: it keeps the process alive and restarts on edits.
      developmentMode: false,
      // No chat rooms are made at boot (actionhero's test config adds two).
      startingChatRooms: {},
      paths: {
        action: [path.join(root, 'actions')],
        task: [path.join(root, 'tasks')],
        initializer: [path.join(root, 'initializers')],
        // Pid files outside the source tree, so running the example leaves nothing behind.
        pid: [path.join(os.tmpdir(), 'actionhero-native-cache-example-pids')],
        locale: [path.join(root, 'locales')]
      }
    }
  }
}
