'use strict'

// `npm test` needs the local Redis (127.0.0.1:6379); start one when none
// answers. And, on free ports, a Redis Cluster of three masters and a
// master with a replica behind three Sentinels, which the behaviour suites
// run on beside one Redis (support/stores.js); global-teardown.js stops them.
const { execFileSync } = require('child_process')
const { startCluster, startSentinels } = require('./topology')
const { accepts, acceptsSoon } = require('./redis-server')

async function localRedis () {
  if (await accepts(6379)) return
  execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no'])
  await acceptsSoon(6379)
}

module.exports = async function globalSetup () {
  const [, cluster, sentinels] = await Promise.all([localRedis(), startCluster({ masters: 3 }), startSentinels()])
  globalThis.testTopologies = [cluster, sentinels]
  process.env.TEST_CLUSTER_NODES = JSON.stringify(cluster.nodes)
  process.env.TEST_SENTINELS = JSON.stringify({ sentinels: sentinels.sentinels, name: sentinels.name })
}
