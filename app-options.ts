import { LogController, type FastifyHttpOptions, type FastifyRequest } from 'fastify'
import type { Server } from 'node:http'
import type { Config, Listener } from './services/config.js'
import { REDACTED_PATHS, redactUrl } from './services/log-redaction.js'
import { clientErrorHandler } from './plugins/errors.js'
import { API_PREFIXES, SUBSCRIBE_PATH } from './services/protocol.js'

/** A destination for log lines; `droppedLines`, when it has one, counts the lines it could not write. */
export interface LogStream {
  write (line: string): void
  readonly droppedLines?: number
}

const STREAM_PATHS = API_PREFIXES.map(prefix => prefix + SUBSCRIBE_PATH)
/** Whether a request target is the stream's path (with any query): not a longer path such as /events/subscribers. */
const isStreamPath = (url: string): boolean =>
  STREAM_PATHS.some(path => url.startsWith(path) && (url.length === path.length || url[path.length] === '?'))

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
 * The options Fastify is made with: the server, the logger (redacted, one line per request but
 * none for an event stream, which logs its own open and close lines), the proxies trusted. Typed as
 * Fastify's HTTP/1 options whatever the server: plugins and routes go through Fastify's interface,
 * and what reaches Node's own objects tells HTTP/2 apart at run time (services/transport).
 */
export function fastifyOptions (config: Config, logStream: LogStream): FastifyHttpOptions<Server> {
  return {
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
    // A hop count believes that many proxies in front of us (Fastify's types take it as a function).
    trustProxy: typeof config.trustProxy === 'number'
      ? (_address: string, hop: number) => hop < (config.trustProxy as number)
      : config.trustProxy,
    clientErrorHandler,
    logController: new LogController({
      disableRequestLogging: (request: FastifyRequest) => isStreamPath(request.url)
    })
  }
}
