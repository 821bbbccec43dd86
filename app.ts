import Fastify, { type FastifyInstance } from 'fastify'
import { fastifyOptions, type LogStream } from './app-options.js'
import type { Config } from './services/config.js'
import { stdoutLogDestination } from './services/log-destination.js'
import cors from '@fastify/cors'
import auth from './plugins/auth.js'
import connectionLimiter from './plugins/connection-limiter.js'
import errors from './plugins/errors.js'
import metrics from './plugins/metrics.js'
import rateLimit from './plugins/rate-limit.js'
import redis from './plugins/redis.js'
import redisFanout from './plugins/redis-fanout.js'
import sseBroker from './plugins/sse-broker.js'
import streamIntake from './plugins/stream-intake.js'
import http2Sessions from './plugins/http2-sessions.js'
import openapi from './plugins/openapi.js'
import health from './routes/health.js'
import events from './routes/events/index.js'
import consoleRoutes from './routes/console/index.js'
import { CONSOLE_DIR } from './services/console-bundle.js'
import { API_PREFIXES, SUBSCRIBE_PATH } from './services/protocol.js'

export interface BuildOptions {
  /** Where the JSON log lines go (standard output by default, see LogDestination; tests read them). */
  logStream?: LogStream
  /** Where the console page was built (CONSOLE_DIR, which `npm run build` writes, by default; tests build their own). */
  consoleDir?: string
}

/** Builds the service: plugins, then routes. Listening is the caller's business. */
export function buildApp (config: Config, options: BuildOptions = {}): FastifyInstance {
  const logStream = options.logStream ?? stdoutLogDestination()
  const app = Fastify(fastifyOptions(config, logStream))

  // Fastify sets its HTTP/1.1 keep-alive timeout (72 s) on HTTP/1 servers only: the TLS port's
  // HTTP/1.1 connections get it too, or an idle one would stay open for ever.
  if (config.listener.kind === 'tls') app.server.keepAliveTimeout = app.initialConfig.keepAliveTimeout!
  app.register(errors)
  // Before the routes: it reads their schemas as they are added.
  app.register(openapi)
  // Browsers on other origins: none unless CORS_ORIGINS names them (credentials allowed for cookie auth).
  // Retry-After is no CORS-safelisted header: exposed, a page can read when to retry a 429 or a 503.
  if (config.corsOrigins.length > 0) app.register(cors, { origin: config.corsOrigins, credentials: true, exposedHeaders: ['Retry-After'] })
  app.register(auth, config.auth)
  app.register(sseBroker, {
    heartbeatMs: config.heartbeatMs,
    retryMs: config.retryMs,
    maxTrackedStreams: config.maxTrackedStreams,
    history: { maxEvents: config.historySize, maxAgeMs: config.historyMaxAgeMs, maxBytes: config.historyMaxBytes },
    maxReplay: config.maxReplay,
    maxBufferedBytes: config.maxBufferedBytes,
    drainDelayMs: config.drainDelayMs,
    drainWindowMs: config.drainWindowMs,
    maxStreamAgeMs: config.maxStreamAgeMs,
    // A client may come from an instance whose reader is a moment ahead of ours.
    ...(config.redis === undefined ? {} : { upstreamWaitMs: 2000 })
  })
  // After the broker: on close, the broker ends the streams before these close their connections.
  // The intake is for plain HTTP/1.1 only: a TLS or HTTP/2 server reads its connections itself.
  if (config.listener.kind === 'http1') app.register(streamIntake, { path: SUBSCRIBE_PATH, prefixes: API_PREFIXES })
  else app.register(http2Sessions)
  if (config.redis !== undefined) {
    app.register(redis, { url: config.redis.url, connectTimeoutMs: config.redis.connectTimeoutMs, connectionName: config.instanceId })
  }
  app.register(redisFanout, {
    redis: config.redis,
    instanceId: config.instanceId,
    history: { maxEvents: config.historySize, maxAgeMs: config.historyMaxAgeMs }
  })
  // With Redis the counts are shared by every instance; the subscribe route sets its own limit.
  app.register(rateLimit, { perMinute: config.rateLimitPerMinute, redisPrefix: config.redis?.prefix })
  const readyRequiresRedis = config.redis?.readyRequiresRedis ?? false
  app.register(metrics, {
    port: config.metricsPort,
    host: config.host,
    droppedLogLines: () => logStream.droppedLines ?? 0,
    readyRequiresRedis
  })
  app.register(connectionLimiter, {
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    maxConnections: config.maxConnections,
    ...(config.redis === undefined ? {} : { cluster: { prefix: config.redis.prefix, instanceId: config.instanceId, heartbeatMs: config.heartbeatMs } })
  })
  app.register(health, { readyRequiresRedis })
  app.register(events, {
    prefixes: API_PREFIXES,
    subscribe: { maxFilters: config.maxFilters, retryMs: config.retryMs, ratePerMinute: config.subscribeRatePerMinute },
    publish: {
      maxPublishBatch: config.maxPublishBatch,
      publishToken: config.publishToken,
      production: config.production,
      ratePerSecond: config.publishRatePerSecond
    },
    stats: { instanceId: config.instanceId }
  })
  if (config.console) app.register(consoleRoutes, { dir: options.consoleDir ?? CONSOLE_DIR, publishToken: config.publishToken })
  return app
}
