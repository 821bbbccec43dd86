import type { FastifyPluginCallback, FastifyRequest } from 'fastify'
import { MAX_PROBLEMS, validateEnvelope, type Envelope } from '../../services/event-schema.js'
import { InvalidReport } from '../../services/invalid-report.js'
import { PublishQuota } from '../../services/publish-quota.js'
import { RedisUnavailable } from '../../services/fanout.js'
import { publisherIdentifier, type PublisherIdentity } from './publishers.js'

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

/** `POST /events/publish`: one envelope or an array of them; all are published or none. */
const publish: FastifyPluginCallback<PublishOptions> = (app, options, done) => {
  if (options.production && options.publishToken === undefined && app.auth.mode === 'off') {
    app.log.warn('POST /events/publish is disabled: set PUBLISH_TOKEN, or AUTH_MODE=jwt for tokens with the events:publish scope')
    return done()
  }
  const identify = publisherIdentifier(app, options)
  const quota = new PublishQuota({ ratePerSecond: options.ratePerSecond, maxPublishers: MAX_PUBLISHERS })
  // The per-address limit of the other routes (RATE_LIMIT_PER_MINUTE), for requests that are no publisher's.
  const limitByAddress = app.rateLimit()
  const publishers = new WeakMap<FastifyRequest, Extract<PublisherIdentity, { ok: true }>>()
  const metrics = app.broker.metrics
  // Events are JSON; a text body would only fail validation with a less helpful message.
  app.removeContentTypeParser('text/plain')

  app.post('/events/publish', {
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
  }, async (request, reply) => {
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
    return reply.code(202).send(single ? { id: ids[0] } : { ids })
  })
  done()
}

export default publish
