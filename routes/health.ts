import type { FastifyPluginCallback } from 'fastify'

/** Probes: `/healthz` says the process answers, `/readyz` that it takes new subscribers. */
const health: FastifyPluginCallback = (app, _options, done) => {
  // Probes come often and from the orchestrator: never rate-limited.
  const probe = { config: { rateLimit: false } }
  app.get('/healthz', probe, () => ({ status: 'ok' }))
  app.get('/readyz', probe, (_request, reply) => {
    if (app.broker.draining) return reply.code(503).send({ status: 'draining' })
    return { status: 'ready' }
  })
  done()
}

export default health
