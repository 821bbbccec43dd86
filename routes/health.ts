import type { FastifyPluginCallback } from 'fastify'

export interface HealthOptions {
  /** Whether a Redis outage makes the instance unready (by default its open streams keep it ready). */
  readyRequiresRedis: boolean
}

/** Probes: `/healthz` says the process answers, `/readyz` that it takes new subscribers. */
const health: FastifyPluginCallback<HealthOptions> = (app, options, done) => {
  // Probes come often and from the orchestrator: never rate-limited.
  const probe = { config: { rateLimit: false } }
  app.get('/healthz', probe, () => ({ status: 'ok' }))
  app.get('/readyz', probe, (_request, reply) => {
    const fanout = app.fanout
    const redis = fanout.mode === 'redis' ? { redis: fanout.redisUp ? 'up' : 'down' } : {}
    if (app.broker.draining) return reply.code(503).send({ status: 'draining', ...redis })
    if (options.readyRequiresRedis && !fanout.redisUp) return reply.code(503).send({ status: 'redis_unavailable', ...redis })
    return { status: 'ready', ...redis }
  })
  done()
}

export default health
