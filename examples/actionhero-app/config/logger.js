'use strict'

exports['default'] = {
  logger: function (api) {
    return {
      transports: [
        function (api, winston) {
          return new (winston.transports.Console)({ colorize: true, level: 'info' })
        }
      ],
      maxLogStringLength: 100,
      localizeLogMessages: false
    }
  }
}

// Quiet under test, as actionhero's own test config is.
exports.test = {
  logger: function (api) {
    return { transports: null }
  }
}
