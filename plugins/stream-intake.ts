import { IncomingMessage, Server, ServerResponse, maxHeaderSize } from 'node:http'
import type { Socket } from 'node:net'
import { once } from 'node:events'
import fp from 'fastify-plugin'
import type { FastifyPluginCallback } from 'fastify'
import { readHead, type HeadReading, type RequestHead } from '../services/request-head.js'

declare module 'fastify' {
  interface FastifyInstance {
    streamIntake: {
      /** Open stream connections read past Node's HTTP parser (streams, and refusals being sent). */
      readonly direct: number
      /**
       * Makes a stream request's connection its own: nothing the client sends after the request is
       * read as another request, and the connection closes once the answer is over. Called as the
       * request arrives (the route's first hook), before Node's parser reads any further.
       */
      own (request: IncomingMessage, response: ServerResponse): void
    }
  }
}

export interface StreamIntakeOptions {
  /** The path whose plain GET requests skip Node's HTTP parser. */
  path: string
  /** The prefixes the route is served under, each taken alike: '' for the path itself (the default), '/v1'. */
  prefixes?: readonly string[]
}

type RequestListener = (request: IncomingMessage, response: ServerResponse) => void

// Listeners shared by every connection (an open stream should cost no closure of its own).
function destroySocket (this: Socket): void { this.destroy() }
function ignore (): void {}
/** What Node's HTTP server listens to on a connection it reads; its 'close' listener frees its parser. */
const NODE_READING = ['data', 'end', 'error', 'timeout', 'drain'] as const
const OTHER: HeadReading = { kind: 'other' }

/**
 * Reads each new connection's first bytes. A plain `GET <path>` request (under any of the prefixes)
 * goes to Fastify (routes, hooks, limits, all as usual) on a request made here, and Node's HTTP server
 * never holds the connection: an open event stream then keeps only its socket, not also an HTTP
 * parser, a request and a response (about 6 KiB together). Other requests for the path go to Node's
 * parser as their head alone; every other connection goes to Node's HTTP server with its bytes put
 * back, as if nothing had read them. Either way a stream's connection is the stream's: what the client sends after its
 * request is read and dropped, never parsed, and the connection ends with the answer.
 */
const streamIntake: FastifyPluginCallback<StreamIntakeOptions> = (app, options, done) => {
  if (!options.path.startsWith('/')) return done(new TypeError('stream-intake: path must start with /'))
  const prefixes = options.prefixes ?? ['']
  if (prefixes.length === 0 || prefixes.some(prefix => prefix !== '' && !/^\/.*[^/]$/.test(prefix))) {
    return done(new TypeError('stream-intake: prefixes must be a list of \'\' or paths such as /v1 (starting, not ending with /)'))
  }
  const paths = prefixes.map(prefix => prefix + options.path)
  // An HTTPS or HTTP/2 server reads its connections otherwise: this is for plain HTTP/1.1 only.
  if (!(app.server instanceof Server)) return done(new TypeError('stream-intake: the server must be a plain node:http Server'))
  const server = app.server
  // Node's own listener: it attaches the HTTP parser to a connection. Fastify's (and those put before
  // it, such as nosniff): they answer a request.
  const [toNodeHttp] = server.listeners('connection') as Array<(socket: Socket) => void>
  const answering = server.listeners('request') as RequestListener[]
  if (toNodeHttp === undefined || answering.length === 0) {
    return done(new Error('stream-intake: the server has no HTTP connection or request listener'))
  }
  server.removeListener('connection', toNodeHttp)
  server.removeAllListeners('request')
  const toFastify: RequestListener = (request, response) => {
    for (const listener of answering) listener.call(server, request, response)
  }

  // Connections that carry a stream's request: closing the app closes them, as Node's server would.
  const owned = new Set<Socket>()
  /** Those of them that Node's HTTP server read first (and still holds a parser for). */
  const fromNode = new Set<Socket>()
  /** The requests made here: the one request each of their connections carries. */
  const made = new WeakSet<IncomingMessage>()
  function forget (this: Socket): void {
    owned.delete(this)
    fromNode.delete(this)
  }
  const own = (socket: Socket): void => {
    owned.add(socket)
    socket.on('close', forget)
  }
  /** From now on the client's bytes are read and dropped: a client that leaves is noticed at once. */
  const ignoreInput = (socket: Socket): void => {
    // As Node's HTTP server does: a client that hangs up is let go (by the socket itself, with no
    // listener of ours).
    socket.allowHalfOpen = false
    socket.on('data', ignore)
  }

  const takeDirect = (socket: Socket, head: RequestHead): void => {
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
    response.shouldKeepAlive = false
    // Once a refusal is written the connection closes, whether or not the client closes its side.
    response.once('finish', () => socket.destroySoon())
    // A reset is no error to crash on: the 'error' listener from the wait for the first bytes stays.
    own(socket)
    ignoreInput(socket)
    made.add(request)
    server.emit('request', request, response)
  }

  /** Takes a connection from Node's HTTP server, after its parser has returned from the bytes it had. */
  const takeFromNode = (socket: Socket): void => {
    if (socket.destroyed) return
    for (const event of NODE_READING) socket.removeAllListeners(event)
    socket.setTimeout(0)
    socket.on('error', destroySocket)
    // Adding a 'data' listener also stops Node's parser reading the socket by itself (unconsume).
    ignoreInput(socket)
  }

  app.decorate('streamIntake', {
    get direct () { return owned.size - fromNode.size },
    own (request: IncomingMessage, response: ServerResponse) {
      const socket = request.socket
      if (owned.has(socket) || socket.destroyed || request.method !== 'GET') return
      // Node closes the connection (destroySoon) once a response that does not keep it alive is written.
      response.shouldKeepAlive = false
      own(socket)
      fromNode.add(socket)
      queueMicrotask(() => takeFromNode(socket))
    }
  })

  // A request that Node's parser read behind a stream's request on its connection (pipelined in the
  // same packet): HTTP would answer it after the stream, which never ends. The connection is closed
  // rather than every such request held until then.
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (owned.has(request.socket) && !made.has(request)) request.socket.destroy()
    else toFastify(request, response)
  })

  // Connections that have not sent a whole head yet: Node's HTTP server does not know them, so its
  // headers timeout and its closing of idle connections are done here, with one timer for all of them.
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

  const toNode = (socket: Socket, bytes: Buffer): void => {
    // Held still while the bytes are put back and Node's server sets up its reading.
    socket.pause()
    socket.removeListener('error', destroySocket)
    socket.unshift(bytes)
    toNodeHttp.call(server, socket)
    socket.resume()
  }

  server.on('connection', (socket: Socket) => {
    waiting.set(socket, Date.now())
    socket.on('error', destroySocket)
    let bytes: Buffer = Buffer.alloc(0)
    const read = (chunk: Buffer): void => {
      bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk])
      const limits = { maxBytes: maxHeaderSize, maxHeaders: server.maxHeadersCount ?? 2000 }
      // Bytes that may still be a request of one path are no other's: the first reading that is not 'other' is it.
      let head: HeadReading = OTHER
      for (const path of paths) {
        head = readHead(bytes, path, limits)
        if (head.kind !== 'other') break
      }
      if (head.kind === 'incomplete') return
      waiting.delete(socket)
      socket.removeListener('data', read)
      if (head.kind === 'plain') return takeDirect(socket, head.head)
      // A stream request's head alone: what follows it is the stream's to ignore, never Node's to parse.
      toNode(socket, head.kind === 'stream' ? bytes.subarray(0, head.length) : bytes)
    }
    socket.on('data', read)
  })
  // What Node's server does for its own connections when it closes. Registered after the broker,
  // whose preClose has ended the streams by now; bytes a client did not take are dropped. Waiting for
  // 'close' lets each stream's own close handling (its last log line) run first.
  app.addHook('preClose', async () => {
    clearInterval(sweep)
    const open = [...waiting.keys(), ...owned].filter(socket => !socket.closed)
    for (const socket of open) socket.destroy()
    await Promise.all(open.map(async socket => await once(socket, 'close')))
  })
  done()
}

export default fp(streamIntake, { name: 'stream-intake', fastify: '5.x' })
