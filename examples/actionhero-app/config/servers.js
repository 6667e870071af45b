'use strict'

// Only the web server, and not under test (tests run actions through
// actionhero's specHelper, which needs no listening socket).
exports['default'] = {
  servers: {
    web: function (api) { return { enabled: true } },
    websocket: function (api) { return { enabled: false } },
    socket: function (api) { return { enabled: false } }
  }
}

exports.test = {
  servers: {
    web: function (api) { return { enabled: false } }
  }
}
