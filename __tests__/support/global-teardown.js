'use strict'

// Stops the topologies global-setup.js started.
module.exports = async function globalTeardown () {
  await Promise.all((globalThis.testTopologies || []).map((topology) => topology.stop()))
}
