'use strict'

exports['default'] = {
  i18n: function (api) {
    return {
      locales: ['en'],
      defaultLocale: 'en',
      // Don't write the messages met at run time into ./locales.
      updateFiles: false
    }
  }
}
