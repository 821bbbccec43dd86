import type { OutgoingHttpHeaders } from 'node:http'
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from 'fastify'
import { SseConnection } from '../../services/sse-connection.js'
import { encodeRetry } from '../../services/sse-frame.js'
import { parseFilters } from '../../services/subscription-query.js'
import { BEARER_CHALLENGE, refusedFilter } from '../../services/principal.js'
import type { ConnectionRefusal } from '../../services/delivery-metrics.js'
import type { Filters } from '../../services/subscription-index.js'

export interface SubscribeOptions {
  maxFilters: number
  retryMs: number
  /** New streams per client address per minute (@fastify/rate-limit). */
  ratePerMinute: number
}

const HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  // nginx buffers responses unless told not to; a buffered event stream looks dead.
  'x-accel-buffering': 'no'
}
/** An HTTP/1.1 stream says keep-alive; an HTTP/1.0 one ends with its connection, so it does not. */
const HEADERS_1_1 = { ...HEADERS, connection: 'keep-alive' }
/** A retry hint ends at once, and its connection with it (Node closes a response that says close). */
const RETRY_LATER_1_1 = { ...HEADERS, connection: 'close' }

type SubscribeQuery = Record<string, string | string[] | undefined>

/** What a client refused by a connection limit is told to wait before it tries again. */
const RETRY_AFTER_S = 10

/**
 * Where the client says it stopped: `Last-Event-ID`, sent by `EventSource` when it reconnects, wins
 * over the `lastEventId` parameter, which a new `EventSource` after a page reload carries in its URL
 * (and keeps sending on every reconnection).
 */
function lastEventIdOf (header: string | undefined, query: SubscribeQuery): string | undefined {
  if (header !== undefined && header !== '') return header
  const param = query.lastEventId
  return Array.isArray(param) ? param.join(',') : param || undefined
}

type Admission =
  /** `retryLater`: the stream is told to come back (draining, or Redis away), and takes no place. */
  | { ok: true, address: string, retryLater: 'draining' | 'unavailable' | undefined, acceptedUntil: number | undefined }
  | { ok: false, result: ConnectionRefusal, status: number, headers: Record<string, string>, body: { error: string, message: string } }

/**
 * Whether a well-formed subscription may open: its token (with AUTH_MODE=jwt), then the connection
 * caps, where it takes its place (`takePlace`: false for a HEAD request, which opens nothing).
 */
async function admit (app: FastifyInstance, request: FastifyRequest, filters: Filters, takePlace: boolean): Promise<Admission> {
  let acceptedUntil: number | undefined
  if (app.auth.mode === 'jwt') {
    const verdict = app.auth.authenticate(request)
    if (!verdict.ok) {
      return { ok: false, result: 'unauthorized', status: 401, headers: BEARER_CHALLENGE, body: { error: verdict.error, message: verdict.message } }
    }
    // Streams the token does not grant may still be the account's own: ask who takes part in them.
    // Only those are looked up, and only when the token names an account; refusedFilter asks no others.
    const asked = filters.streams.filter(streamId => !verdict.principal.streams.has(streamId))
    let participants = new Map<string, readonly string[]>()
    if (asked.length > 0 && verdict.principal.account !== undefined) {
      try {
        participants = await app.fanout.participantsOf(asked)
      } catch (error) {
        request.log.warn({ err: error }, 'could not ask Redis who takes part in the streams: the client is told to retry')
        return { ok: true, address: request.ip, retryLater: 'unavailable', acceptedUntil: undefined }
      }
    }
    const refused = refusedFilter(verdict.principal, filters, streamId => participants.get(streamId)!)
    if (refused !== undefined) {
      return { ok: false, result: 'forbidden', status: 403, headers: {}, body: { error: 'forbidden', message: `this token may not subscribe to ${refused}` } }
    }
    acceptedUntil = verdict.principal.acceptedUntil
  }
  const address = request.ip
  // A draining instance takes no place: the stream is told to retry elsewhere and ended at once.
  const retryLater = app.broker.draining ? 'draining' : undefined
  const limit = retryLater === undefined && takePlace ? await app.connectionLimits.acquire(address) : 'ok'
  if (limit !== 'ok') {
    const message = limit === 'too_many_per_ip'
      ? `${app.connectionLimits.maxPerAddress} event streams are open from ${address} already; close one first`
      : 'this instance holds as many event streams as it may; try again shortly'
    return {
      ok: false,
      result: limit,
      status: limit === 'too_many_per_ip' ? 429 : 503,
      headers: { 'retry-after': String(RETRY_AFTER_S) },
      body: { error: limit, message }
    }
  }
  return { ok: true, address, retryLater, acceptedUntil }
}

/** `GET /events/subscribe`: holds an event stream open on the raw response. */
const subscribe: FastifyPluginCallback<SubscribeOptions> = (app, options, done) => {
  const retry = encodeRetry(options.retryMs)

  app.get('/events/subscribe', {
    // Its own rate, instead of (not on top of) the global limit of the other routes.
    config: { rateLimit: { max: options.ratePerMinute, timeWindow: 60_000 } },
    // First of the route's hooks, as the request arrives: the connection is the stream's from here on.
    onRequest: (request, reply, next) => {
      app.streamIntake.own(request.raw, reply.raw)
      next()
    }
  }, async (request, reply) => {
    const query = request.query as SubscribeQuery
    const parsed = parseFilters(query, options.maxFilters)
    const metrics = app.broker.metrics
    if (!parsed.ok) {
      metrics.connectionRefused('bad_request')
      return reply.code(400).send(parsed.problem)
    }
    // HEAD (Fastify answers it with this handler) is told what a GET would be, without the stream.
    const headOnly = request.method === 'HEAD'
    const admission = await admit(app, request, parsed.filters, !headOnly)
    if (!admission.ok) {
      metrics.connectionRefused(admission.result)
      return reply.code(admission.status).headers(admission.headers).send(admission.body)
    }
    if (headOnly) return reply.code(200).headers(HEADERS).send()
    const { address, retryLater, acceptedUntil } = admission
    const socket = request.raw.socket
    const response = reply.raw
    // Pipelined behind another request on its connection, the stream starts once that one is answered.
    if (response.socket === null && !socket.destroyed) {
      await new Promise(resolve => {
        response.once('socket', resolve)
        socket.once('close', resolve)
      })
    }
    if (socket.destroyed) {
      // The client left while its streams' participants or its place were looked up in Redis.
      if (retryLater === undefined) app.connectionLimits.release(address)
      return reply.hijack()
    }

    reply.hijack()
    // HTTP/1.1 responses of unknown length are chunked; an HTTP/1.0 one ends with its connection, and is
    // never chunked (RFC 9112 6.1), whatever its TE header asks for.
    const chunked = request.raw.httpVersion === '1.1'
    response.useChunkedEncodingByDefault = chunked
    // Headers set by hooks (rate limit, CORS) go out too: hijacking skips Fastify's own sending of them.
    const head = !chunked ? HEADERS : retryLater === undefined ? HEADERS_1_1 : RETRY_LATER_1_1
    response.writeHead(200, { ...reply.getHeaders() as OutgoingHttpHeaders, ...head })
    // Sent at once so that the client and every proxy on the way see the stream open.
    response.write(retry)
    if (retryLater !== undefined) {
      // A clean end, never an error status: EventSource gives up on those, but retries after this.
      metrics.connectionRefused(retryLater)
      response.end()
      return
    }

    // From here on frames go straight to the socket, framed as chunks once per event by the broker.
    // The connection is the stream's (the intake owns it), so the response is let go: the stream
    // keeps only its socket and what the broker needs.
    response.detachSocket(socket)
    const connection = new SseConnection(socket, chunked, parsed.filters)
    connection.acceptedUntil = acceptedUntil
    const lastEventId = lastEventIdOf(request.headers['last-event-id'] as string | undefined, query)
    metrics.connectionOpened(lastEventId !== undefined)
    request.log.info({ filters: parsed.filters, lastEventId }, 'stream opened')
    const reqId = request.id
    socket.on('close', () => {
      app.connectionLimits.release(address)
      app.broker.remove(connection)
      app.log.info({
        reqId,
        durationMs: Date.now() - connection.openedAt,
        eventsSent: connection.eventsSent,
        reason: connection.closeReason
      }, 'stream closed')
    })
    void app.broker.open(connection, lastEventId)
  })
  done()
}

export default subscribe
