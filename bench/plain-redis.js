'use strict'

// The floor for any Redis client in Node: one plain SET (as save) or GET
// (as load) per call on a bare socket, replies parsed just enough. No lock,
// no envelope, no atomicity: what a round trip costs when the reply has to
// wake Node's thread, where redis-benchmark's C loop pays no event loop.

const net = require('net')

class PlainRedis {
  #socket
  #waiting = [] // callbacks, in the order their replies come
  #buffer = Buffer.alloc(0)
  #prefix

  /** Keys are sent under `prefix`. */
  static connect ({ host = '127.0.0.1', port = 6379, db = 0, prefix = '' }) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true })
      socket.once('error', reject)
      socket.once('connect', () => {
        socket.off('error', reject)
        const client = new PlainRedis(socket, prefix)
        client.#command(['SELECT', String(db)], (error) => (error ? reject(error) : resolve(client)))
      })
    })
  }

  constructor (socket, prefix) {
    this.#socket = socket
    this.#prefix = prefix
    socket.on('data', (chunk) => this.#read(chunk))
  }

  save (key, value, expireTimeMS, next) {
    this.#command(['SET', this.#prefix + key, JSON.stringify(value), 'PX', String(expireTimeMS)], (error) => next(error || null))
  }

  load (key, next) {
    this.#command(['GET', this.#prefix + key], (error, text) => next(error || null, text === null ? undefined : JSON.parse(text)))
  }

  /** The remaining lifetime of `key` (a bare PTTL): the least a call can ask of Redis. */
  pttl (key, next) {
    this.#command(['PTTL', this.#prefix + key], next)
  }

  close () {
    this.#socket.end()
  }

  #command (args, next) {
    let text = `*${args.length}\r\n`
    for (const arg of args) text += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`
    this.#waiting.push(next)
    this.#socket.write(text)
  }

  /** Hands each complete reply (status, error, integer or bulk string) to its callback. */
  #read (chunk) {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk
    for (;;) {
      const lineEnd = this.#buffer.indexOf('\r\n')
      if (lineEnd < 0) return
      const line = this.#buffer.toString('latin1', 1, lineEnd)
      let reply
      let used = lineEnd + 2
      switch (this.#buffer[0]) {
        case 0x2b: reply = [null, line]; break // +
        case 0x3a: reply = [null, Number(line)]; break // :
        case 0x2d: reply = [new Error(line)]; break // -
        case 0x24: { // $
          const length = Number(line)
          if (length < 0) { reply = [null, null]; break }
          if (this.#buffer.length < used + length + 2) return
          reply = [null, this.#buffer.toString('utf8', used, used + length)]
          used += length + 2
          break
        }
        default: throw new Error(`unexpected reply ${line}`)
      }
      this.#buffer = this.#buffer.subarray(used)
      this.#waiting.shift()(...reply)
    }
  }
}

module.exports = { PlainRedis }
