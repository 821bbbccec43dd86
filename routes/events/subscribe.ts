import type { OutgoingHttpHeaders } from 'node:http'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox'
import { SseConnection } from '../../services/sse-connection.js'
import { Http1Sink } from '../../services/transport/http1-sink.js'
import { Http2Sink, http2StreamOf } from '../../services/transport/http2-sink.js'
import { encodeRetry } from '../../services/sse-frame.js'
import { parseFilters } from '../../services/subscription-query.js'
import { BEARER_CHALLENGE, filtersOf, refusedFilter } from '../../services/principal.js'
import type { ConnectionRefusal } from '../../services/delivery-metrics.js'
import type { Filters } from '../../services/subscription-index.js'
import { errorBody, type TypedHandler } from '../schemas.js'
import { QUERY, SUBSCRIBE_PATH } from '../../services/protocol.js'

/** Where the stream is served (under each prefix of the events API). */

export interface SubscribeOptions {
  maxFilters: number
  retryMs: number
  /** New streams per client address per minute (@fastify/rate-limit). */
  ratePerMinute: number
}

/** The stream's head on HTTP/1.0 and HTTP/2 (where connection headers are not allowed). */
const HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  // nginx buffers responses unless told not to; a buffered event stream looks dead.
  'x-accel-buffering': 'no'
}
/**
 * An HTTP/1.1 stream's connection closes when the stream ends, and says so up front: a client that
 * pooled it as keep-alive would send its next request on a socket the server is closing. (A retry
 * hint ends at once, and Node closes a response that says close.)
 */
const HEADERS_1_1 = { ...HEADERS, connection: 'close' }

/**
 * A query parameter as the query parser reads it: once, or repeated. The values are checked by
 * parseFilters and the auth plugin, which answer with their own codes; the schema describes them and
 * refuses nothing (a pattern here would turn an `invalid_stream` into a validation error of Fastify's).
 */
const param = (description: string) => Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description }))

const SCHEMA = {
  summary: 'An event stream (text/event-stream) of the events that match any of the filters',
  description: 'At least one of streams, users, all=true. HEAD is checked as GET is and answers with the head alone.',
  querystring: Type.Object({
    [QUERY.streams]: param('a stream id, [A-Za-z0-9_-]{1,64}, or a u64 as a decimal string; repeatable'),
    [QUERY.users]: param('a Stellar account id or contract address (G or C and 55 base32 characters, valid checksum): every event of every stream it takes part in, and the events addressed to it; repeatable'),
    [QUERY.all]: param('true for every event (false is the same as leaving it out); once'),
    [QUERY.lastEventId]: param('resume after this event id (a new EventSource after a page reload); Last-Event-ID wins over it'),
    [QUERY.accessToken]: param('with AUTH_MODE=jwt: the token, for clients that can set no header or cookie (never logged)'),
    [QUERY.token]: param('the same as access_token, read after it: what FlowFi\'s frontend sends (never logged)')
  }),
  headers: Type.Object({
    'last-event-id': Type.Optional(Type.String({ description: 'resume after this event id (EventSource sends it when it reconnects)' }))
  }),
  response: {
    200: {
      description: 'the stream: a retry hint, then events (id, event, data), heartbeat comments, events.resync and events.closing',
      content: { 'text/event-stream': { schema: Type.String() } }
    },
    400: errorBody('missing_filter, invalid_stream, invalid_user, invalid_all, too_many_filters'),
    401: errorBody('with AUTH_MODE=jwt: missing_token, token_expired, token_not_yet_valid, invalid_signature, invalid_algorithm, invalid_claim, invalid_token'),
    403: errorBody('forbidden: the token may not read one of the filters, named in the message'),
    429: errorBody('too_many_requests (SUBSCRIBE_RATE_PER_MINUTE) or too_many_per_ip (MAX_CONNECTIONS_PER_IP); Retry-After'),
    503: errorBody('over_capacity: this instance holds MAX_CONNECTIONS streams; Retry-After')
  }
}

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
  const param = query[QUERY.lastEventId]
  return Array.isArray(param) ? param.join(',') : param || undefined
}

type Admission =
  /** `retryLater`: the stream is told to come back (draining, or Redis away), and takes no place. */
  /** `filters`: what the stream reads (all=true of a user's token is its own account's). */
  | { ok: true, address: string, filters: Filters, retryLater: 'draining' | 'unavailable' | undefined, acceptedUntil: number | undefined }
  | { ok: false, result: ConnectionRefusal, status: 401 | 403 | 429 | 503, headers: Record<string, string>, body: { error: string, message: string } }

/**
 * Whether a well-formed subscription may open: its token (with AUTH_MODE=jwt), then the connection
 * caps, where it takes its place (`takePlace`: false for a HEAD request, which opens nothing).
 */
async function admit (app: FastifyInstance, request: FastifyRequest, asked: Filters, takePlace: boolean): Promise<Admission> {
  let acceptedUntil: number | undefined
  let filters = asked
  if (app.auth.mode === 'jwt') {
    const verdict = app.auth.authenticate(request)
    if (!verdict.ok) {
      return { ok: false, result: 'unauthorized', status: 401, headers: BEARER_CHALLENGE, body: { error: verdict.error, message: verdict.message } }
    }
    filters = filtersOf(verdict.principal, asked)
    // Streams the token does not grant may still be the account's own: ask who takes part in them.
    // Only those are looked up, and only when the token names an account; refusedFilter asks no others.
    const ungranted = filters.streams.filter(streamId => !verdict.principal.streams.has(streamId))
    let participants = new Map<string, readonly string[]>()
    if (ungranted.length > 0 && verdict.principal.account !== undefined) {
      try {
        participants = await app.fanout.participantsOf(ungranted)
      } catch (error) {
        request.log.warn({ err: error }, 'could not ask Redis who takes part in the streams: the client is told to retry')
        return { ok: true, address: request.ip, filters, retryLater: 'unavailable', acceptedUntil: undefined }
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
  return { ok: true, address, filters, retryLater, acceptedUntil }
}

/**
 * `GET /events/subscribe`: holds an event stream open on the raw response. Made once; the plugin it
 * returns serves it under a prefix, and every prefix counts against the same rate limit.
 */
export function subscribeRoute (app: FastifyInstance, options: SubscribeOptions): FastifyPluginCallbackTypebox {
  const retry = encodeRetry(options.retryMs)
  // Its own rate, instead of (not on top of) the global limit of the other routes: one count for
  // every prefix (a route's own `config.rateLimit` would count each apart), HEAD with GET.
  const limitRate = app.rateLimit({ max: options.ratePerMinute, timeWindow: 60_000 })
  // Plain HTTP/1.1 only (see app.ts).
  const intake = app.hasDecorator('streamIntake') ? app.streamIntake : undefined
  const onRequest: onRequestHookHandler[] = intake === undefined
    ? [limitRate]
    : [
        // First, as the request arrives: the connection is the stream's from here on.
        (request, reply, next) => {
          intake.own(request.raw, reply.raw)
          next()
        },
        limitRate
      ]

  const subscribe: TypedHandler<typeof SCHEMA> = async (request, reply) => {
    const query = request.query
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
    if (headOnly) return reply.code(200).headers(HEADERS).send('')
    const { address, filters, retryLater, acceptedUntil } = admission
    const h2Stream = http2StreamOf(request.raw)
    const socket = request.raw.socket
    const response = reply.raw
    // Pipelined behind another HTTP/1.1 request on its connection, the stream starts once that one is answered.
    if (h2Stream === undefined && response.socket === null && !socket.destroyed) {
      await new Promise(resolve => {
        response.once('socket', resolve)
        socket.once('close', resolve)
      })
    }
    // HTTP/1.1 responses of unknown length are chunked; an HTTP/1.0 one ends with its connection, and is
    // never chunked (RFC 9112 6.1), whatever its TE header asks for. HTTP/2 has frames of its own.
    const chunked = request.raw.httpVersion === '1.1'
    const sink = h2Stream === undefined ? new Http1Sink(socket, chunked) : new Http2Sink(h2Stream)
    if (sink.closed) {
      // The client left while its streams' participants or its place were looked up in Redis.
      if (retryLater === undefined) app.connectionLimits.release(address)
      return reply.hijack()
    }

    reply.hijack()
    if (h2Stream === undefined) response.useChunkedEncodingByDefault = chunked
    // Headers set by hooks (rate limit, CORS) go out too: hijacking skips Fastify's own sending of them.
    const head = chunked ? HEADERS_1_1 : HEADERS
    response.writeHead(200, { ...reply.getHeaders() as OutgoingHttpHeaders, ...head })
    // Sent at once so that the client and every proxy on the way see the stream open.
    response.write(retry)
    if (retryLater !== undefined) {
      // A clean end, never an error status: EventSource gives up on those, but retries after this.
      metrics.connectionRefused(retryLater)
      // HTTP/1.1 closes its connection (`connection: close`) whatever the reason. Draining, HTTP/2
      // sends GOAWAY to its session too, so that the retry opens a new connection, to another instance.
      if (retryLater === 'draining') sink.retireConnection()
      response.end()
      return
    }

    // From here on the broker writes frames to the sink: straight to the socket on HTTP/1.x (as
    // chunks on HTTP/1.1), on the stream on HTTP/2. Where the intake owns the connection (plain
    // HTTP/1.1), the response is let go: the stream keeps only its socket and what the broker needs.
    // Over TLS, Node's HTTP server keeps it, and a request pipelined behind the stream waits behind it.
    if (intake !== undefined) response.detachSocket(socket)
    const connection = new SseConnection(sink, filters)
    connection.acceptedUntil = acceptedUntil
    const lastEventId = lastEventIdOf(request.headers['last-event-id'], query)
    metrics.connectionOpened(lastEventId !== undefined, sink.protocol)
    request.log.info({ filters, lastEventId, protocol: sink.protocol }, 'stream opened')
    const reqId = request.id
    sink.onClose(() => {
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
  }

  return (scope, _options, done) => {
    scope.get(SUBSCRIBE_PATH, {
      schema: SCHEMA,
      config: { rateLimit: false },
      onRequest
    }, subscribe)
    done()
  }
}
