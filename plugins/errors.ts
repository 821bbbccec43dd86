import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyPluginCallback } from 'fastify'

/** "Payload Too Large" -> "payload_too_large": the `error` code of a JSON error body. */
function codeOf (status: number): string {
  return (STATUS_CODES[status] ?? 'Error').toLowerCase().replace(/[^a-z0-9]+/g, '_')
}

/** Every error answers with the same JSON shape, `{ error, message }`, and never leaks internals. */
const errors: FastifyPluginCallback = (app, _options, done) => {
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
