import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginCallback, FastifyRequest } from 'fastify'
import { MAX_PROBLEMS, validateEnvelope, type Envelope } from '../../services/event-schema.js'
import { InvalidReport } from '../../services/invalid-report.js'
import { BEARER_CHALLENGE, bearerToken, SCOPE_PUBLISH } from '../../services/principal.js'
import { RedisUnavailable } from '../../plugins/redis-fanout.js'

export interface PublishOptions {
  maxPublishBatch: number
  /** When set, requests must carry `Authorization: Bearer <publishToken>`. */
  publishToken: string | undefined
  /** In production an open publish endpoint is never served: without a token there is none. */
  production: boolean
}

/** What a publisher is told to wait while Redis is away: ioredis reconnects within seconds. */
const RETRY_AFTER_S = 5

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/** Compares digests, so the time taken says nothing about the token, not even its length. */
function bearerMatches (request: FastifyRequest, expected: Buffer): boolean {
  const token = bearerToken(request.headers.authorization)
  return token !== undefined && timingSafeEqual(digest(token), expected)
}

/** `POST /events/publish`: one envelope or an array of them; all are published or none. */
const publish: FastifyPluginCallback<PublishOptions> = (app, options, done) => {
  if (options.production && options.publishToken === undefined && app.auth.mode === 'off') {
    app.log.warn('POST /events/publish is disabled: set PUBLISH_TOKEN, or AUTH_MODE=jwt for tokens with the events:publish scope')
    return done()
  }
  const expected = options.publishToken === undefined ? undefined : digest(options.publishToken)
  // Events are JSON; a text body would only fail validation with a less helpful message.
  app.removeContentTypeParser('text/plain')

  app.post('/events/publish', {
    onRequest: (request, reply, next) => {
      if (expected !== undefined && bearerMatches(request, expected)) return next()
      if (app.auth.mode === 'jwt') {
        const verdict = app.auth.authenticate(request)
        if (verdict.ok && verdict.principal.scopes.has(SCOPE_PUBLISH)) return next()
        app.broker.metrics.rejected.unauthorized++
        if (verdict.ok) {
          reply.code(403).send({ error: 'forbidden', message: `this token lacks the ${SCOPE_PUBLISH} scope` })
        } else {
          reply.code(401).headers(BEARER_CHALLENGE)
            .send({ error: verdict.error, message: `${verdict.message}; or use PUBLISH_TOKEN` })
        }
        return
      }
      if (expected === undefined) return next()
      app.broker.metrics.rejected.unauthorized++
      reply.code(401).headers(BEARER_CHALLENGE)
        .send({ error: 'unauthorized', message: 'publishing needs Authorization: Bearer <PUBLISH_TOKEN>' })
    }
  }, async (request, reply) => {
    const single = !Array.isArray(request.body)
    const items: unknown[] = single ? [request.body] : request.body as unknown[]
    if (items.length === 0 || items.length > options.maxPublishBatch) {
      app.broker.metrics.rejected.invalid_batch += Math.max(items.length, 1)
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
      app.broker.metrics.rejected.invalid_event += report.invalidEvents
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
