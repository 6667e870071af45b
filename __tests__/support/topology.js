'use strict'

// Redis Cluster and Sentinel topologies of a test's own, on free loopback
// ports: every server started at once, nothing kept on disk but the
// cluster and Sentinel config files, in a temporary folder removed on stop.

const { execFile } = require('child_process')
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')
const Redis = require('ioredis')
const { startRedis, freePort } = require('./redis-server')

const HOST = '127.0.0.1'
/** How long a node may be unreachable before the cluster fails it over (Redis's default is 15 s). */
const NODE_TIMEOUT_MS = 1000

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function run (command, args) {
  return new Promise((resolve, reject) => execFile(command, args, { timeout: 30000 }, (error, stdout, stderr) =>
    error ? reject(new Error(`${command} ${args.join(' ')}: ${error.message}\n${stdout}${stderr}`)) : resolve(stdout)))
}

function isFree (port) {
  return new Promise((resolve) => {
    const probe = net.createServer().once('error', () => resolve(false))
    probe.listen(port, HOST, () => probe.close(() => resolve(true)))
  })
}

/** `count` distinct free ports; with `bus`, each one's cluster bus port (port + 10000) is free too. */
async function freePorts (count, { bus = false } = {}) {
  const ports = []
  while (ports.length < count) {
    const port = await freePort()
    // A node's bus port is its port + 10000: no port may be another's bus port.
    const taken = ports.includes(port) || (bus && ports.some((other) => Math.abs(other - port) === 10000))
    if (taken || (bus && (port + 10000 > 65535 || !(await isFree(port + 10000))))) continue
    ports.push(port)
  }
  return ports
}

/**
 * Waits for every server's start, then fails with the first that failed: a
 * start still under way when another failed would otherwise be missed by
 * the stop that follows, and its server left running.
 */
async function allStarted (starts) {
  const failed = (await Promise.allSettled(starts)).find((start) => start.status === 'rejected')
  if (failed) throw failed.reason
}

/** Runs `command` on a short-lived connection to `port`. */
async function ask (port, ...command) {
  const client = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    await client.connect()
    return await client.call(...command)
  } finally {
    client.disconnect()
  }
}

/** Polls `check` until it answers true; fails after `ms`. */
async function waitUntil (what, check, ms = 20000) {
  const until = Date.now() + ms
  for (;;) {
    try {
      if (await check()) return
    } catch (_) {}
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

function tempDir (name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `actionhero-native-cache-${name}-`))
}

/**
 * A Redis Cluster of `masters` masters with `replicas` replicas each,
 * created by `redis-cli --cluster create`, ready (every node sees
 * cluster_state:ok, every replica in sync). Answers { nodes, masters(),
 * server(port), reshard(from, to, slots), stop() }.
 */
async function startCluster ({ masters = 3, replicas = 0 } = {}) {
  const dir = tempDir('cluster')
  const ports = await freePorts(masters * (1 + replicas), { bus: true })
  const servers = new Map()
  try {
    await allStarted(ports.map(async (port) => {
      servers.set(port, await startRedis({
        port,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', String(NODE_TIMEOUT_MS), '--dir', dir]
      }))
    }))
    await run('redis-cli', ['--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`),
      '--cluster-replicas', String(replicas), '--cluster-yes'])
    await waitUntil('the cluster to be ready', async () => {
      const states = await Promise.all(ports.map((port) => ask(port, 'CLUSTER', 'INFO')))
      if (!states.every((info) => info.includes('cluster_state:ok'))) return false
      const roles = await Promise.all(ports.map((port) => ask(port, 'INFO', 'replication')))
      return roles.filter((info) => info.includes('role:slave')).every((info) => info.includes('master_link_status:up')) &&
        roles.filter((info) => info.includes('role:master')).length === masters
    })
  } catch (error) {
    await stopAll(servers, dir)
    throw error
  }

  /** The cluster's masters as a live node sees them: [{ port, id, slots }]. */
  async function mastersNow () {
    const alive = [...servers.keys()].filter((port) => !servers.get(port).killed)
    const nodes = await ask(alive[0], 'CLUSTER', 'NODES')
    return nodes.trim().split('\n').map((line) => line.split(' '))
      .filter((fields) => fields[2].includes('master') && !fields[2].includes('fail'))
      .map((fields) => ({ id: fields[0], port: Number(fields[1].split(':')[1].split('@')[0]), slots: fields.slice(8) }))
  }

  return {
    nodes: ports.map((port) => ({ host: HOST, port })),
    masters: mastersNow,
    /** Kills the server on `port` with SIGKILL, as a crash. */
    kill (port) {
      servers.get(port).killed = true
      servers.get(port).kill()
    },
    /** Moves `slots` slots from one master to another, as an operator does, with redis-cli. */
    reshard: (from, to, slots) => run('redis-cli', ['--cluster', 'reshard', `${HOST}:${from.port}`, '--cluster-from', from.id,
      '--cluster-to', to.id, '--cluster-slots', String(slots), '--cluster-yes']),
    stop: () => stopAll(servers, dir)
  }
}

async function stopAll (servers, dir) {
  await Promise.all([...servers.values()].map((server) => server.stop()))
  fs.rmSync(dir, { recursive: true, force: true })
}

/**
 * One master, one replica and three Sentinels watching them under `name`,
 * ready (the replica in sync, every Sentinel knowing it). Answers
 * { sentinels, name, masterPort(), failover(), stop() }.
 */
async function startSentinels ({ name = 'mymaster' } = {}) {
  const dir = tempDir('sentinel')
  const [masterPort, replicaPort, ...sentinelPorts] = await freePorts(5)
  const servers = new Map()
  const started = async (port, options) => servers.set(port, await startRedis({ port, ...options }))
  try {
    await allStarted([
      // --dir: a replica writes the master's snapshot to disk while it syncs.
      started(masterPort, { args: ['--dir', dir] }),
      started(replicaPort, { args: ['--replicaof', HOST, String(masterPort), '--dir', dir] }),
      ...sentinelPorts.map((port) => {
        const config = path.join(dir, `sentinel-${port}.conf`)
        fs.writeFileSync(config, [
          `sentinel monitor ${name} ${HOST} ${masterPort} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 10000`,
          ''
        ].join('\n'))
        return started(port, { config, args: ['--sentinel', '--dir', dir] })
      })
    ])
    await waitUntil('the replica and the Sentinels to be ready', async () => {
      if (!(await ask(replicaPort, 'INFO', 'replication')).includes('master_link_status:up')) return false
      const known = await Promise.all(sentinelPorts.map((port) => ask(port, 'SENTINEL', 'REPLICAS', name)))
      return known.every((replicas) => replicas.length === 1)
    })
  } catch (error) {
    await stopAll(servers, dir)
    throw error
  }
  const masterPortNow = async () => Number((await ask(sentinelPorts[0], 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name))[1])
  return {
    sentinels: sentinelPorts.map((port) => ({ host: HOST, port })),
    name,
    masterPort: masterPortNow,
    /** Has a Sentinel promote the replica, as `SENTINEL FAILOVER` does; resolves once the Sentinels name the new master. */
    async failover () {
      const old = await masterPortNow()
      await ask(sentinelPorts[0], 'SENTINEL', 'FAILOVER', name)
      await waitUntil('the Sentinels to name the new master', async () => (await masterPortNow()) !== old)
    },
    stop: () => stopAll(servers, dir)
  }
}

module.exports = { startCluster, startSentinels, ask, waitUntil }
