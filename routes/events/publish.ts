import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox'
import { EVENT_DATA_SCHEMAS, EnvelopeShape, MAX_DATA_DEPTH, MAX_PROBLEMS, validateEnvelope, type Envelope } from '../../services/event-schema.js'
import { EVENT_TYPES, PUBLISH_PATH } from '../../services/protocol.js'
import { InvalidReport } from '../../services/invalid-report.js'
import { PublishQuota } from '../../services/publish-quota.js'
import { RedisUnavailable } from '../../services/fanout.js'
import { errorBody, type TypedHandler } from '../schemas.js'
import { publisherIdentifier, type PublisherIdentity } from './publishers.js'

/** One FlowFi event, as a description made from event-schema.ts's schemas: validateEnvelope is what checks it. */
const Envelope = Type.Union(EVENT_TYPES.map(event => Type.Object({
  event: Type.Literal(event),
  data: {
    ...EVENT_DATA_SCHEMAS[event],
    description: `other fields pass through to subscribers; objects and arrays nest at most ${MAX_DATA_DEPTH} levels, data the first`
  },
  users: Type.Optional({
    ...EnvelopeShape.properties.users,
    description: 'accounts that take part in the event\'s stream besides those of stream.created: they get its later events too'
  }),
  to: Type.Optional({
    ...EnvelopeShape.properties.to,
    description: 'the only accounts the event is for (with all=true): not the stream\'s subscribers; nobody becomes a participant. Not with users'
  })
}, { additionalProperties: false })), { $id: 'Envelope', description: 'one FlowFi event' })

const Problem = Type.Object({
  path: Type.String({ description: 'a JSON pointer into the envelope, cut at 200 characters' }),
  message: Type.String()
})
export const InvalidEvents = Type.Object({
  error: Type.Literal('invalid_event'),
  message: Type.String({ description: 'the first problem of the first invalid envelope' }),
  invalid: Type.Array(Type.Object({
    index: Type.Integer({ minimum: 0 }),
    problems: Type.Array(Problem, { maxItems: MAX_PROBLEMS }),
    moreProblems: Type.Boolean({ description: 'the envelope has problems that are not listed' })
  }), { description: 'the invalid envelopes in order, while they fit in 16 KiB' }),
  invalidEvents: Type.Integer({ minimum: 1 }),
  unlistedEvents: Type.Integer({ minimum: 0, description: 'invalid envelopes left out of invalid' })
})

/** The route's schema: what it takes and answers, for the OpenAPI document and the handler's types. */
const schemaOf = (maxPublishBatch: number) => ({
  summary: 'Publishes one event, or a batch of them: all or none',
  // Described, not checked by Fastify: the handler checks each envelope itself, for its report.
  body: Type.Unsafe<unknown>(Type.Union([Envelope, Type.Array(Envelope, { minItems: 1, maxItems: maxPublishBatch })])),
  response: {
    202: Type.Union([
      Type.Object({ id: Type.String() }),
      Type.Object({ ids: Type.Array(Type.String(), { description: 'one id per event, in order' }) })
    ], { description: 'the events have their ids and are in the history; an array gets ids' }),
    400: Type.Union([InvalidEvents, errorBody()], {
      description: 'invalid_event (the report), invalid_batch (empty, or over MAX_PUBLISH_BATCH), bad_request (not JSON); nothing was published'
    }),
    401: errorBody('unauthorized (PUBLISH_TOKEN), or with AUTH_MODE=jwt missing_token, token_expired, ...'),
    403: errorBody('forbidden: the token lacks the events:publish scope'),
    413: errorBody('payload_too_large: the body is over 1 MiB'),
    415: errorBody('unsupported_media_type: the body is not application/json'),
    429: errorBody('publish_rate_exceeded (PUBLISH_RATE_PER_SECOND), or too_many_requests without valid credentials; Retry-After'),
    500: errorBody('internal_server_error: a failure of the server, logged; the message says nothing of it'),
    503: errorBody('redis_unavailable: with REDIS_URL, Redis did not answer or refused the events; Retry-After: 5')
  }
})

/** The body is read as it comes (any JSON): the handler checks it. */
const acceptAnything = (): true => true

export interface PublishOptions {
  maxPublishBatch: number
  /** When set, requests must carry `Authorization: Bearer <publishToken>`. */
  publishToken: string | undefined
  /** In production an open publish endpoint is never served: without a token there is none. */
  production: boolean
  /** Events a second each publisher may publish, in bursts of as many; at least `maxPublishBatch`. */
  ratePerSecond: number
}

/** What a publisher is told to wait while Redis is away: ioredis reconnects within seconds. */
const RETRY_AFTER_S = 5
/** Buckets held at once (each a few bytes and a subject): far more publishers than one instance serves in a second. */
const MAX_PUBLISHERS = 1000

/**
 * `POST /events/publish`: one envelope or an array of them; all are published or none. Made once,
 * with one quota per publisher; the plugin it returns serves it under a prefix. Undefined when the
 * endpoint is not served.
 */
export function publishRoute (app: FastifyInstance, options: PublishOptions): FastifyPluginCallbackTypebox | undefined {
  if (options.production && options.publishToken === undefined && app.auth.mode === 'off') {
    app.log.warn('POST /events/publish is disabled: set PUBLISH_TOKEN, or AUTH_MODE=jwt for tokens with the events:publish scope')
    return undefined
  }
  const identify = publisherIdentifier(app, options)
  const quota = new PublishQuota({ ratePerSecond: options.ratePerSecond, maxPublishers: MAX_PUBLISHERS })
  // The per-address limit of the other routes (RATE_LIMIT_PER_MINUTE), for requests that are no publisher's.
  const limitByAddress = app.rateLimit()
  const publishers = new WeakMap<FastifyRequest, Extract<PublisherIdentity, { ok: true }>>()
  const metrics = app.broker.metrics
  const schema = schemaOf(options.maxPublishBatch)

  const publish: TypedHandler<typeof schema> = async (request, reply) => {
    const single = !Array.isArray(request.body)
    const items: unknown[] = single ? [request.body] : request.body as unknown[]
    if (items.length === 0 || items.length > options.maxPublishBatch) {
      metrics.eventsRejected('invalid_batch', Math.max(items.length, 1))
      return reply.code(400).send({
        error: 'invalid_batch',
        message: `a batch holds 1 to ${options.maxPublishBatch} events; this one has ${items.length}`
      })
    }

    const envelopes: Envelope[] = []
    const report = new InvalidReport()
    items.forEach((item, index) => {
      const result = validateEnvelope(item, report.full ? 0 : MAX_PROBLEMS)
      if (result.ok) envelopes.push(result.envelope)
      else report.add(index, result.problems, result.more)
    })
    if (report.invalidEvents > 0) {
      metrics.eventsRejected('invalid_event', report.invalidEvents)
      const { index, problems: [first] } = report.invalid[0]!
      return reply.code(400).send({
        error: 'invalid_event',
        message: `${report.invalidEvents} of ${items.length} events are invalid, so none was published; ` +
          `first: ${single ? '' : `[${index}]`}${first!.path} ${first!.message}`,
        invalid: report.invalid,
        invalidEvents: report.invalidEvents,
        unlistedEvents: report.unlistedEvents
      })
    }

    const { publisher, described } = publishers.get(request)!
    const allowed = quota.take(publisher, envelopes.length)
    if (!allowed.ok) {
      metrics.publishRateLimited(envelopes.length)
      return reply.code(429).header('retry-after', String(allowed.retryAfterS)).send({
        error: 'publish_rate_exceeded',
        message: `${described} may publish ${options.ratePerSecond} events a second (a burst of ${options.ratePerSecond}); ` +
          `this batch of ${envelopes.length} was not published: retry after ${allowed.retryAfterS} s`
      })
    }

    let ids: string[]
    try {
      ids = await app.fanout.publish(envelopes)
    } catch (error) {
      // Anything else is a bug: the error handler logs it and answers 500, telling the client nothing.
      if (!(error instanceof RedisUnavailable)) throw error
      return reply.code(503).header('retry-after', String(RETRY_AFTER_S))
        .send({ error: 'redis_unavailable', message: `${error.message}; try again in a few seconds` })
    }
    return reply.code(202).send(single ? { id: ids[0]! } : { ids })
  }

  return (scope, _options, done) => {
    // Events are JSON; a text body would only fail validation with a less helpful message.
    scope.removeContentTypeParser('text/plain')
    scope.post(PUBLISH_PATH, {
      schema,
      validatorCompiler: () => acceptAnything,
      // A publisher has a quota of events instead, taken in the handler once the batch is read.
      config: { rateLimit: false },
      onRequest: async (request, reply) => {
        const identity = identify(request)
        if (identity.ok) {
          publishers.set(request, identity)
          return
        }
        // Counted first, so that guessing tokens is throttled like any other request; throws the 429.
        await limitByAddress.call(app, request, reply)
        metrics.eventsRejected('unauthorized', 1)
        return reply.code(identity.status).headers(identity.headers).send(identity.body)
      }
    }, publish)
    done()
  }
}
