import { Type } from '@sinclair/typebox'
import type { FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox'
import { readiness } from '../services/readiness.js'

export interface HealthOptions {
  /** Whether a Redis outage makes the instance unready (by default its open streams keep it ready). */
  readyRequiresRedis: boolean
}

/** With REDIS_URL: whether both Redis connections answer. */
const Redis = Type.Optional(Type.Union([Type.Literal('up'), Type.Literal('down')], { description: 'with REDIS_URL only' }))

const HEALTHZ = {
  summary: 'Liveness: the process answers',
  response: { 200: Type.Object({ status: Type.Literal('ok') }, { description: 'the process runs' }) }
}
const READYZ = {
  summary: 'Readiness: the instance takes new subscribers',
  response: {
    200: Type.Object({ status: Type.Literal('ready'), redis: Redis }, { description: 'taking subscribers' }),
    503: Type.Object({ status: Type.Union([Type.Literal('draining'), Type.Literal('redis_unavailable')]), redis: Redis }, {
      description: 'draining: shutting down; redis_unavailable: Redis does not answer (only with READY_REQUIRES_REDIS=true)'
    })
  }
}

/** Probes: `/healthz` says the process answers, `/readyz` that it takes new subscribers. */
const health: FastifyPluginCallbackTypebox<HealthOptions> = (app, options, done) => {
  // Probes come often and from the orchestrator: never rate-limited.
  const config = { rateLimit: false as const }
  app.get('/healthz', { schema: HEALTHZ, config }, () => ({ status: 'ok' as const }))
  app.get('/readyz', { schema: READYZ, config }, async (_request, reply) => {
    const fanout = app.fanout
    const redis = fanout.mode === 'redis' ? { redis: fanout.redisUp ? 'up' as const : 'down' as const } : {}
    const status = readiness(app.broker.draining, fanout, options.readyRequiresRedis)
    if (status !== 'ready') return reply.code(503).send({ status, ...redis })
    return { status, ...redis }
  })
  done()
}

export default health
