'use strict'

// `npm test` needs the local Redis (127.0.0.1:6379); start one when none answers.
const { execFileSync } = require('child_process')
const net = require('net')

function answers (port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.setTimeout(1000)
    socket.once('connect', () => { socket.end(); resolve(true) })
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
  })
}

module.exports = async function globalSetup () {
  if (await answers(6379)) return
  execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no'])
  for (let i = 0; i < 50 && !(await answers(6379)); i++) await new Promise((resolve) => setTimeout(resolve, 100))
}
