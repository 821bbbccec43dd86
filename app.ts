import Fastify, { LogController, type FastifyHttpOptions, type FastifyInstance, type FastifyRequest } from 'fastify'
import type { Server } from 'node:http'
import type { Config, Listener } from './services/config.js'
import { stdoutLogDestination } from './services/log-destination.js'
import { REDACTED_PATHS, redactUrl } from './services/log-redaction.js'
import cors from '@fastify/cors'
import auth from './plugins/auth.js'
import connectionLimiter from './plugins/connection-limiter.js'
import errors, { clientErrorHandler } from './plugins/errors.js'
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
import { API_PREFIXES, SUBSCRIBE_PATH } from './services/protocol.js'

const STREAM_PATHS = API_PREFIXES.map(prefix => prefix + SUBSCRIBE_PATH)
/** Whether a request target is the stream's path (with any query): not a longer path such as /events/subscribers. */
const isStreamPath = (url: string): boolean =>
  STREAM_PATHS.some(path => url.startsWith(path) && (url.length === path.length || url[path.length] === '?'))

export interface BuildOptions {
  /** Where the JSON log lines go (standard output by default, see LogDestination; tests read them). */
  logStream?: LogStream
}

/** A destination for log lines; `droppedLines`, when it has one, counts the lines it could not write. */
export interface LogStream {
  write (line: string): void
  readonly droppedLines?: number
}

/**
 * Fastify's server options for what the main port speaks: nothing for HTTP/1.1, which Fastify makes by
 * default; HTTP/2 over TLS (HTTP/1.1 too, by ALPN) or in clear, with the session's settings.
 */
function serverOptions (listener: Listener): object {
  if (listener.kind === 'http1') return {}
  const settings = { settings: { maxConcurrentStreams: listener.http2.maxStreams } }
  return {
    http2: true,
    http2SessionTimeout: listener.http2.sessionIdleTimeoutMs,
    ...listener.kind === 'tls'
      ? { https: { key: listener.key, cert: listener.cert, allowHTTP1: true, ...settings } }
      : { http: settings }
  }
}

/**
 * Builds the service: plugins, then routes. Listening is the caller's business. The instance is typed
 * as Fastify's HTTP/1 one whatever the server: plugins and routes go through Fastify's interface, and
 * what reaches Node's own objects tells HTTP/2 apart at run time (services/transport).
 */
export function buildApp (config: Config, options: BuildOptions = {}): FastifyInstance {
  const logStream = options.logStream ?? stdoutLogDestination()
  const app = Fastify({
    ...serverOptions(config.listener) as FastifyHttpOptions<Server>,
    logger: {
      level: config.logLevel,
      stream: logStream,
      redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
      serializers: {
        req: (request: FastifyRequest) => ({
          method: request.method,
          url: redactUrl(request.url),
          host: request.host,
          remoteAddress: request.ip,
          remotePort: request.socket?.remotePort
        })
      }
    },
    // An event stream is not a request that completes: it logs its own open and close lines.
    // A hop count believes that many proxies in front of us (Fastify's types take it as a function).
    trustProxy: typeof config.trustProxy === 'number'
      ? (_address: string, hop: number) => hop < (config.trustProxy as number)
      : config.trustProxy,
    clientErrorHandler,
    logController: new LogController({
      disableRequestLogging: (request: FastifyRequest) => isStreamPath(request.url)
    })
  })

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
  return app
}
