import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from './services/config.js'
import errors from './plugins/errors.js'
import sseBroker from './plugins/sse-broker.js'
import health from './routes/health.js'
import publish from './routes/events/publish.js'
import stats from './routes/events/stats.js'
import subscribe from './routes/events/subscribe.js'

export interface BuildOptions {
  /** Overrides the logger built from `config.logLevel` (tests pass a stream to read the logs). */
  logger?: FastifyServerOptions['logger']
}

/** Builds the service: plugins, then routes. Listening is the caller's business. */
export function buildApp (config: Config, options: BuildOptions = {}): FastifyInstance {
  const app = Fastify({ logger: options.logger ?? { level: config.logLevel } })

  app.register(errors)
  app.register(sseBroker, {
    heartbeatMs: config.heartbeatMs,
    retryMs: config.retryMs,
    maxTrackedStreams: config.maxTrackedStreams,
    history: { maxEvents: config.historySize, maxAgeMs: config.historyMaxAgeMs, maxBytes: config.historyMaxBytes },
    maxReplay: config.maxReplay,
    maxBufferedBytes: config.maxBufferedBytes,
    drainDelayMs: config.drainDelayMs,
    drainWindowMs: config.drainWindowMs
  })
  app.register(health)
  app.register(subscribe, { maxFilters: config.maxFilters, retryMs: config.retryMs })
  app.register(publish, {
    maxPublishBatch: config.maxPublishBatch,
    publishToken: config.publishToken,
    production: config.production
  })
  app.register(stats, { instanceId: config.instanceId })
  return app
}
