'use strict'

// The "Targets" section of bench/RESULTS.md: issue 8's targets, each judged
// from this run's own numbers, and beside each one missed, the measurement
// of this run that shows what limits it.

const os = require('os')
const { short, times, pairedRatio, OPS, OP_LABELS, SIZE_LABELS } = require('./measure')

const SIZES = Object.keys(SIZE_LABELS).map(Number)
// RSS moves in allocator steps of a few MB; a leak keeps growing.
const FLAT_RSS_MB = 5

const perSecond = (rate) => `${Math.round(rate).toLocaleString('en-US')} calls/s`
const status = (met) => (met ? 'met' : '**not met**')

/**
 * `results` as bench/full.js gathers them; `limits` from bench/limits.js.
 * Answers the section's lines, or none when the run lacks its cases (a
 * --quick or --only run).
 */
function renderTargets (results, limits) {
  const entryOf = (kind, size, c, id) => results.cases.find((e) => e.kind === kind && e.size === size && e.concurrency === c && e.id === id)
  const find = (...args) => {
    const entry = entryOf(...args)
    return entry && entry.result
  }
  const srv = (r) => r.server.cpuMicrosPerOp
  const cpu = (r) => r.server.cpuMicrosPerOp + r.cpuMicrosPerOp
  const needed = [['save', 100000, 64, 'native'], ['lock', null, 64, 'map'], ['load', 100, 1, 'redis-benchmark']]
  if (!limits || !results.app.native || !results.growth.redis || !results.crossing || needed.some((args) => !find(...args))) return []

  const rows = []
  const row = (target, measured, met, limit = '') => rows.push(`| ${target} | ${measured} | ${status(met)} | ${limit} |`)

  // Redis server CPU per call, and how it grows with the value.
  const cpuRatios = []
  for (const kind of ['save', 'load']) {
    for (const size of SIZES) {
      for (const c of [1, 64]) {
        cpuRatios.push({ kind, size, c, ratio: srv(find(kind, size, c, 'native')) / srv(find(kind, size, c, 'js')) })
      }
    }
  }
  const worst = cpuRatios.reduce((a, b) => (b.ratio > a.ratio ? b : a))
  const best = cpuRatios.reduce((a, b) => (b.ratio < a.ratio ? b : a))
  row('Redis server CPU per call at most the JS cache\'s (save, load; 100 B, 10 kB, 100 kB; c = 1, 64)',
    `${times(best.ratio)} to ${times(worst.ratio)} (highest: ${worst.kind}, ${SIZE_LABELS[worst.size]}, c = ${worst.c})`, worst.ratio <= 1)
  // Judged where the growth shows: at c = 1 each round trip's wake-ups
  // cost Redis more than the value does (the JS cache's three per save
  // about 100 µs), and two single readings of that differ by more than it.
  const slope = (kind, c, id) => srv(find(kind, 100000, c, id)) - srv(find(kind, 100, c, id))
  const signed = (us) => `${us >= 0 ? '+' : '−'}${short(Math.abs(us))}`
  const slopeText = (kind, c) => `${kind} c = ${c}: ${signed(slope(kind, c, 'native'))} / ${signed(slope(kind, c, 'js'))} µs`
  row('Server CPU growing from 100 B to 100 kB no faster than the JS cache\'s, at c = 64 (addon / JS)',
    `${slopeText('save', 64)}; ${slopeText('load', 64)} (at c = 1, for reference: ${slopeText('save', 1)}; ${slopeText('load', 1)})`,
    ['save', 'load'].every((kind) => slope(kind, 64, 'native') <= slope(kind, 64, 'js')),
    `A plain SET / GET of the same values from Node grows ${signed(slope('save', 64, 'plain'))} / ${signed(slope('load', 64, 'plain'))} µs ` +
    `at c = 64: what carrying the value costs Redis. At 100 kB, per call: addon ${short(srv(find('save', 100000, 64, 'native')))} µs, ` +
    `JS cache ${short(srv(find('save', 100000, 64, 'js')))}, plain SET ${short(srv(find('save', 100000, 64, 'plain')))} (saves).`)

  // One call at a time, against redis-benchmark's round trip.
  for (const [kind, raw] of [['save', 'SET'], ['load', 'GET']]) {
    const native = find(kind, 100, 1, 'native')
    const floor = find(kind, 100, 1, 'redis-benchmark')
    const overhead = native.p50 - floor.p50
    const script = native.server.usecPerCall.evalsha
    const plain = find(kind, 100, 1, 'plain')
    const crossing = results.crossing
    const crossingUs = crossing.native.p50 - crossing.plain.p50
    // The addon's PTTL can answer first (seen in a run where every round
    // trip took longer): then there is no cost to name.
    const crossingCost = crossingUs > 0
      ? `the way between Node's thread and the runtime's costs a call ${short(crossingUs)} µs by itself`
      : `the addon's answered ${short(-crossingUs)} µs sooner, so the way between Node's thread and the runtime's costs a call nothing here`
    const limit = `Its script (EVALSHA) takes ${short(script)} µs of Redis's time per ${kind}, inside the round trip the answer waits for ` +
      `(commandstats). A plain ${raw} from Node on a bare socket: ${short(plain.p50)} µs p50. The addon's plainest call, ` +
      `\`pttl\` (one PTTL: no script, no envelope), ${short(crossing.native.p50)} µs p50, ` +
      `${signed(crossing.native.p50 - floor.p50)} µs on redis-benchmark's round trip, where a plain PTTL from Node took ` +
      `${short(crossing.plain.p50)} µs: ${crossingCost}.`
    row(`${kind}, c = 1: p50 at most 10 µs above redis-benchmark's ${raw}`,
      `${short(native.p50)} µs against ${short(floor.p50)} µs: ${overhead >= 0 ? '+' : '−'}${short(Math.abs(overhead))} µs`, overhead <= 10, limit)
  }

  // Inside the app.
  const cores = os.cpus().length
  for (const [c, wanted] of [[1, 2], [64, 3]]) {
    for (const kind of ['save', 'load']) {
      const native = results.app.native[`${kind}:${c}`]
      const js = results.app.js[`${kind}:${c}`]
      const reached = native.opsPerSecond / js.opsPerSecond
      let limit = ''
      if (c === 1) {
        const plain = find(kind, 100, 1, 'plain')
        limit = `${wanted}× the JS cache is a ${kind} every ${short(1e6 / (wanted * js.opsPerSecond))} µs; the addon's took ` +
          `${short(1e6 / native.opsPerSecond)} µs (1 / calls per second), of which Redis's CPU ${short(srv(native))} µs, and a plain ` +
          `${kind === 'save' ? 'SET' : 'GET'} from Node takes ${short(plain.p50)} µs p50 (operations table).`
      }
      if (c === 64) {
        const ceiling = cores / cpu(native) * 1e6
        // The least Redis work a call can be: a save writes the entry; a
        // load reads it and writes readAt back (as actionhero's does).
        const plainSet = find('save', 100, 64, 'plain').opsPerSecond
        const plainGet = find('load', 100, 64, 'plain').opsPerSecond
        const floor = kind === 'save'
          ? `a plain SET from Node, 64 in flight, did ${perSecond(plainSet)}`
          : `a plain GET and a plain SET from Node, 64 in flight (the least a load that records its read sends), did ${perSecond(1 / (1 / plainGet + 1 / plainSet))}`
        limit = `${wanted}× the JS cache is ${perSecond(wanted * js.opsPerSecond)}; ${floor} (operations table). ` +
          `CPU per call, Redis + the app's process: addon ${short(srv(native))} + ${short(native.cpuMicrosPerOp)} µs, ` +
          `JS cache ${short(srv(js))} + ${short(js.cpuMicrosPerOp)} µs. With all ${cores} cores busy all the time, the addon's would allow ` +
          `${perSecond(ceiling)}: ${times(ceiling / js.opsPerSecond)} the JS cache's.${busyText(native, js)}`
      }
      row(`Inside the actionhero 16 app, ${kind}, c = ${c}: at least ${wanted}× the JS cache`, times(reached), reached >= wanted, limit)
    }
  }

  // The in-memory store against the Map.
  for (const c of [1, 64]) {
    const cells = []
    for (const kind of OPS) {
      for (const size of kind === 'lock' ? [null] : SIZES) {
        const map = entryOf(kind, size, c, 'map')
        cells.push({ kind, size, ratio: pairedRatio(entryOf(kind, size, c, 'memory'), map), map: map.result })
      }
    }
    const below = cells.filter((cell) => cell.ratio < 0.9)
    const lowestMet = Math.min(...cells.filter((cell) => cell.ratio >= 0.9).map((cell) => cell.ratio))
    row(`In-memory store at least 0.9× the JS Map, c = ${c}`,
      below.length === 0
        ? `${times(lowestMet)} at the lowest`
        : `below: ${below.map((cell) => `${cellLabel(cell)} ${times(cell.ratio)}`).join(', ')}; the other ${cells.length - below.length} cases ${times(lowestMet)} or more`,
      below.length === 0, below.map((cell) => inMemoryLimit(cell, limits)).join(' '))
  }

  // No growth.
  const mb = (bytes) => bytes / 1024 / 1024
  for (const [store, label] of [['memory', 'in-memory'], ['redis', 'Redis']]) {
    const g = results.growth[store]
    const delta = mb(growthOverSecond(g))
    row(`No growth of RSS over the second million calls, ${label} store (up to ${FLAT_RSS_MB} MB: allocator steps; the second half of eight readings against the first)`,
      `${delta >= 0 ? '+' : '−'}${Math.abs(delta).toFixed(1)} MB`, delta <= FLAT_RSS_MB)
  }

  return [
    '## Targets',
    '',
    'Issue 8\'s targets, judged from this run\'s numbers (the tables below). Where one is missed, the last column gives what limits it, measured in this run.',
    '',
    '| target | this run | | what limits it |',
    '|---|---|---|---|',
    ...rows,
    ''
  ]
}

const percent = (fraction) => `${Math.round(fraction * 100)}%`

/**
 * How busy Node's thread, the addon's runtime thread and Redis were while
 * the apps ran (the app child's /proc/self/task; Redis from its CPU per
 * call): the stage that is busy all the time is the one that limits.
 */
function busyText (native, js) {
  if (!native.threads || !js.threads) return ''
  const redisBusy = (r) => percent(r.server.cpuMicrosPerOp * r.opsPerSecond / 1e6)
  return ` Busy, of the run's time: with the addon, Node's thread ${percent(native.threads.node)}, the addon's runtime thread ` +
    `${percent(native.threads.runtime)}, Redis ${redisBusy(native)} of a core; with the JS cache, Node's thread ${percent(js.threads.node)}, ` +
    `Redis ${redisBusy(js)}.`
}

const cellLabel = (cell) => `${OP_LABELS[cell.kind]}${cell.size ? ` ${SIZE_LABELS[cell.size]}` : ''}`

/**
 * What 0.9× of the Map leaves the addon for a case below it (the Map's op
 * time from its calls per second in the same case), and what of that is
 * spent before the store does anything: the crossing into native code
 * (and, for lock+unlock, the calling side against the Map's, callbacks
 * queued, not run); for a save, copying the value out of V8.
 */
function inMemoryLimit (cell, limits) {
  const mapOpNs = 1e9 / cell.map.opsPerSecond
  const allowedNs = mapOpNs / 0.9 - mapOpNs
  const ns = (x) => (x < 10000 ? `${Math.round(x).toLocaleString('en-US')} ns` : `${short(x / 1000)} µs`)
  const head = `${cellLabel(cell)}: 0.9× allows ${ns(allowedNs)} per op more than the Map's ${ns(mapOpNs)};`
  if (cell.kind === 'lock') {
    return `${head} calling lock and unlock costs the addon ${ns(limits.lockCallsNs.memory)} and the Map ${ns(limits.lockCallsNs.map)}, ` +
      `two calls into native code that do nothing ${ns(2 * limits.crossingNs)}.`
  }
  const crossing = `${head} a call into native code that does nothing costs ${ns(limits.crossingNs)}`
  if (cell.kind !== 'save') return `${crossing}.`
  const copyNs = limits.copyOutUs[cell.size] * 1000
  const beyond = copyNs + limits.crossingNs > allowedNs
    ? ': together more than 0.9× allows, before the store does anything'
    : ''
  return `${crossing}, and copying JSON.stringify's output out of V8 as UTF-8 ${ns(copyNs)} (flattening the rope it is into one string, ` +
    `as every read of a V8 string does first, N-API's too, took ${ns(limits.flattenUs[cell.size] * 1000)} timed by itself)${beyond}.`
}

/**
 * RSS growth over the growth run's second step, as judged: the mean of the
 * second half of its readings less the mean of the first half. The
 * allocators step RSS up and down by several MB between readings, and a
 * single reading on a step (the first step's, against which the median of
 * four was once judged) read a flat run as 6.8 MB of growth, and a leak of
 * 11 MB as 1.1; steps average out over the halves, where a leak raises
 * every reading after it: a steady one of L MB per step reads L / 2.
 */
function growthOverSecond ({ readings }) {
  const mean = (values) => values.reduce((sum, value) => sum + value, 0) / values.length
  const half = readings.length / 2
  return mean(readings.slice(half)) - mean(readings.slice(0, half))
}

module.exports = { renderTargets, growthOverSecond }
