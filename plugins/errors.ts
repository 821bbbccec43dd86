import { STATUS_CODES, maxHeaderSize, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyPluginCallback } from 'fastify'

/** "Payload Too Large" -> "payload_too_large": the `error` code of a JSON error body. */
function codeOf (status: number): string {
  return (STATUS_CODES[status] ?? 'Error').toLowerCase().replace(/[^a-z0-9]+/g, '_')
}

/**
 * Every answer says `X-Content-Type-Options: nosniff`, so that no browser takes an error body (JSON,
 * perhaps echoing a parameter) for HTML or script. Set on Node's response before Fastify sees the
 * request, it is on everything: replies, hooks' refusals (rate limit), the answers Fastify writes
 * itself (a URL it cannot decode, 503 while closing), hijacked event streams. Harmless on the rest.
 */
function nosniff (_request: IncomingMessage, response: ServerResponse): void {
  response.setHeader('x-content-type-options', 'nosniff')
}

const CLIENT_ERRORS: Record<string, { status: number, message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, message: 'the request did not arrive in time' },
  HPE_HEADER_OVERFLOW: { status: 431, message: `the request head is over the size limit (${maxHeaderSize} bytes)` }
}
const MALFORMED = { status: 400, message: 'malformed HTTP request' }

/**
 * Fastify's `clientErrorHandler`, for what Node's HTTP parser refuses before there is a request: as
 * Fastify's default (the same statuses, written raw, then the connection closed), with this service's
 * JSON body and nosniff.
 */
export function clientErrorHandler (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  // A connection reset (ECONNRESET) has destroyed the socket: there is no one to answer.
  if (socket.destroyed) return
  const { status, message } = CLIENT_ERRORS[error.code!] ?? MALFORMED
  // Not the error itself: Node puts the refused bytes on it (rawPacket), a token in the URL among them.
  this.log.trace({ code: error.code, reason: error.message }, 'client error')
  const body = JSON.stringify({ error: codeOf(status), message })
  // Node has put a no-op 'error' listener on the socket: a write it can no longer take fails quietly.
  socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n${body}`)
  socket.destroy(error)
}

/**
 * Every error answers with the same JSON shape, `{ error, message }`, and never leaks internals; every
 * answer carries nosniff. Apps using it pass `clientErrorHandler` to Fastify too.
 */
const errors: FastifyPluginCallback = (app, _options, done) => {
  app.server.prependListener('request', nosniff)
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed')
      return reply.code(status).send({ error: codeOf(status), message: 'internal error; see the server log' })
    }
    const message = error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
      ? `content-type must be application/json (got ${request.headers['content-type'] ?? 'none'})`
      : error.message
    return reply.code(status).send({ error: codeOf(status), message })
  })
  app.setNotFoundHandler((request, reply) => {
    return reply.code(404).send({ error: 'not_found', message: `no route for ${request.method} ${request.url.split('?')[0]}` })
  })
  done()
}

export default fp(errors, { name: 'errors', fastify: '5.x' })
