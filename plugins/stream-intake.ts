import { IncomingMessage, Server, ServerResponse, maxHeaderSize } from 'node:http'
import type { Socket } from 'node:net'
import { once } from 'node:events'
import fp from 'fastify-plugin'
import type { FastifyPluginCallback } from 'fastify'
import { plainGetHead, type RequestHead } from '../services/request-head.js'

declare module 'fastify' {
  interface FastifyInstance {
    streamIntake: {
      /** Open connections taken past Node's HTTP parser (event streams, and refusals being sent). */
      readonly direct: number
      /** Whether the intake took this connection (rather than Node's HTTP server). */
      took (socket: Socket): boolean
    }
  }
}

export interface StreamIntakeOptions {
  /** The path whose plain GET requests skip Node's HTTP parser. */
  path: string
}

// Listeners shared by every connection (an open stream should cost no closure of its own).
function destroySocket (this: Socket): void { this.destroy() }
function ignore (): void {}

/**
 * Takes each new connection's first bytes. When they are a plain `GET <path>` request, it goes to
 * Fastify (routes, hooks, limits, all as usual) on a request made here, and Node's HTTP server never
 * holds the connection: an open event stream then keeps only its socket, not also an HTTP parser, a
 * request and a response (about 6 KiB together). Every other connection goes to Node's HTTP server
 * with its bytes put back, as if nothing had read them.
 */
const streamIntake: FastifyPluginCallback<StreamIntakeOptions> = (app, options, done) => {
  if (!options.path.startsWith('/')) return done(new TypeError('stream-intake: path must start with /'))
  // An HTTPS or HTTP/2 server reads its connections otherwise: this is for plain HTTP/1.1 only.
  if (!(app.server instanceof Server)) return done(new TypeError('stream-intake: the server must be a plain node:http Server'))
  const server = app.server
  // Node's own listener: it attaches the HTTP parser to a connection.
  const [toNodeHttp] = server.listeners('connection') as Array<(socket: Socket) => void>
  if (toNodeHttp === undefined) return done(new Error('stream-intake: the server has no HTTP connection listener'))
  server.removeListener('connection', toNodeHttp)

  const toFastify = (socket: Socket, head: RequestHead): void => {
    const request = new IncomingMessage(socket)
    request.method = 'GET'
    request.url = head.url
    request.httpVersionMajor = 1
    request.httpVersionMinor = 1
    request.httpVersion = '1.1'
    request.headers = head.headers
    request.rawHeaders = head.rawHeaders
    request.complete = true
    request.push(null)
    const response = new ServerResponse(request)
    response.assignSocket(socket)
    // A response that ends (an error) ends the connection: nothing here would read a next request.
    response.shouldKeepAlive = false
    response.once('finish', () => socket.end())
    // As Node's HTTP server does: a client that hangs up is let go (by the socket itself, with no
    // listener of ours). A reset is no error to crash on: the 'error' listener from the wait for the
    // first bytes stays.
    socket.allowHalfOpen = false
    // Read on, so that a client that leaves is noticed at once; nothing it sends now is asked for.
    socket.on('data', ignore)
    taken.add(socket)
    socket.on('close', forget)
    server.emit('request', request, response)
  }

  // Connections taken from Node's HTTP server: closing the app closes them, as Node's server would.
  const taken = new Set<Socket>()
  function forget (this: Socket): void { taken.delete(this) }
  app.decorate('streamIntake', {
    get direct () { return taken.size },
    took: (socket: Socket) => taken.has(socket)
  })

  // Connections that have sent nothing yet: Node's HTTP server does not know them, so its headers
  // timeout and its closing of idle connections are done here, with one timer for all of them.
  const waiting = new Map<Socket, number>()
  const headersTimeoutMs = server.headersTimeout // 0: no limit, as for Node
  const sweep = setInterval(() => {
    const expired = Date.now() - headersTimeoutMs
    for (const [socket, since] of waiting) {
      if (headersTimeoutMs > 0 && since < expired) socket.destroy()
      if (socket.destroyed) waiting.delete(socket)
    }
  }, headersTimeoutMs > 0 ? Math.min(headersTimeoutMs, 1000) : 1000)
  sweep.unref()

  server.on('connection', (socket: Socket) => {
    waiting.set(socket, Date.now())
    socket.on('error', destroySocket)
    socket.once('data', (first: Buffer) => {
      waiting.delete(socket)
      // Bounded as Node's parser bounds a head (16 KiB, or --max-http-header-size).
      const head = plainGetHead(first, options.path, maxHeaderSize)
      if (head !== undefined) return toFastify(socket, head)
      // Held still while the bytes are put back and Node's server sets up its reading.
      socket.pause()
      socket.removeListener('error', destroySocket)
      socket.unshift(first)
      toNodeHttp.call(server, socket)
      socket.resume()
    })
  })
  // What Node's server does for its own connections when it closes. Registered after the broker,
  // whose preClose has ended the streams by now; bytes a client did not take are dropped. Waiting for
  // 'close' lets each stream's own close handling (its last log line) run first.
  app.addHook('preClose', async () => {
    clearInterval(sweep)
    const open = [...waiting.keys(), ...taken].filter(socket => !socket.closed)
    for (const socket of open) socket.destroy()
    await Promise.all(open.map(async socket => await once(socket, 'close')))
  })
  done()
}

export default fp(streamIntake, { name: 'stream-intake', fastify: '5.x' })
