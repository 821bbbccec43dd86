import type { FastifyPluginCallback } from 'fastify'
import { SseConnection } from '../../services/sse-connection.js'
import { encodeRetry } from '../../services/sse-frame.js'
import { parseFilters } from '../../services/subscription-query.js'

export interface SubscribeOptions {
  maxFilters: number
  retryMs: number
}

const HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  // nginx buffers responses unless told not to; a buffered event stream looks dead.
  'x-accel-buffering': 'no'
}

/** `GET /events/subscribe`: holds an event stream open on the raw response. */
const subscribe: FastifyPluginCallback<SubscribeOptions> = (app, options, done) => {
  const retry = encodeRetry(options.retryMs)

  app.get('/events/subscribe', (request, reply) => {
    const parsed = parseFilters(request.query as Record<string, string | string[]>, options.maxFilters)
    if (!parsed.ok) return reply.code(400).send(parsed.problem)

    reply.hijack()
    const response = reply.raw
    // HTTP/2 forbids connection-specific headers, and an HTTP/1.0 stream ends with its connection.
    response.writeHead(200, request.raw.httpVersion === '1.1' ? { ...HEADERS, connection: 'keep-alive' } : HEADERS)
    // Sent at once so that the client and every proxy on the way see the stream open.
    response.write(retry)

    const connection = new SseConnection(response, parsed.filters)
    app.broker.add(connection)
    request.log.info({ filters: parsed.filters }, 'stream opened')
    response.once('close', () => {
      app.broker.remove(connection)
      request.log.info({
        durationMs: Date.now() - connection.openedAt,
        eventsSent: connection.eventsSent
      }, 'stream closed')
    })
  })
  done()
}

export default subscribe
