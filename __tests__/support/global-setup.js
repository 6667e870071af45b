'use strict'

// `npm test` needs the local Redis (127.0.0.1:6379); start one when none
// answers. And, on free ports, a Redis Cluster of three masters and a
// master with a replica behind three Sentinels, which the behaviour suites
// run on beside one Redis (support/stores.js); global-teardown.js stops them.
const { execFileSync } = require('child_process')
const net = require('net')
const { startCluster, startSentinels } = require('./topology')

function answers (port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.setTimeout(1000)
    // Destroyed, not ended, as redis-server.js's probe (it says why).
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
  })
}

async function localRedis () {
  if (await answers(6379)) return
  execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no'])
  for (let i = 0; i < 50 && !(await answers(6379)); i++) await new Promise((resolve) => setTimeout(resolve, 100))
}

module.exports = async function globalSetup () {
  const [, cluster, sentinels] = await Promise.all([localRedis(), startCluster({ masters: 3 }), startSentinels()])
  globalThis.testTopologies = [cluster, sentinels]
  process.env.TEST_CLUSTER_NODES = JSON.stringify(cluster.nodes)
  process.env.TEST_SENTINELS = JSON.stringify({ sentinels: sentinels.sentinels, name: sentinels.name })
}
