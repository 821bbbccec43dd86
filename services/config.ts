import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { parseChannelSources, type ChannelSource } from './redis/channel-routes.js'
import { DEFAULT_HEARTBEAT_MS } from './protocol.js'

/** Everything the service reads from its environment, validated once at start-up. */
export interface Config {
  host: string
  port: number
  /** What the main port speaks: HTTP/1.1 by default, or HTTP/2 (over TLS, or h2c). */
  listener: Listener
  production: boolean
  logLevel: LogLevel
  instanceId: string
  /** Interval of the shared comment heartbeat written to every open stream. */
  heartbeatMs: number
  /** The `retry:` hint sent when a stream opens: how long `EventSource` waits before reconnecting. */
  retryMs: number
  /** Most `streams` plus `users` values one subscription may name. */
  maxFilters: number
  maxPublishBatch: number
  /** Bearer token required by `POST /events/publish`; undefined leaves it open (development only). */
  publishToken: string | undefined
  /** Events a second each publisher may publish, and its burst (at least `maxPublishBatch`). */
  publishRatePerSecond: number
  /** How many streams' participants are remembered for routing `users=` subscriptions. */
  maxTrackedStreams: number
  /** Bounds of the event history that resuming clients replay from. */
  historySize: number
  historyMaxAgeMs: number
  historyMaxBytes: number
  /** Most events one resume replays; beyond it the client is told to resync. */
  maxReplay: number
  /** Unsent bytes a connection may hold before it is dropped as a slow consumer. */
  maxBufferedBytes: number
  /** Streams are ended with a retry hint after about this long (±20%), to spread over new instances; undefined: never. */
  maxStreamAgeMs: number | undefined
  /** Shutdown: time for the load balancer to see readiness fail, then to end the streams, all told. */
  drainDelayMs: number
  drainWindowMs: number
  shutdownTimeoutMs: number
  /** Port of the separate Prometheus listener; 0 serves /metrics on the main port instead. */
  metricsPort: number
  /** Concurrent event streams allowed per client address, and per instance in all. */
  maxConnectionsPerIp: number
  maxConnections: number
  /** Whether, and how far, X-Forwarded-For is believed: false, true, a hop count, or addresses. */
  trustProxy: boolean | number | string
  auth: AuthConfig
  /** New event streams per client address per minute, and requests per minute to the other routes. */
  subscribeRatePerMinute: number
  rateLimitPerMinute: number
  /** Origins allowed to read the API from a browser; empty: same origin only. */
  corsOrigins: string[]
  /** Several instances share one event log in Redis; undefined: one instance, all in memory. */
  redis: RedisConfig | undefined
  /** Whether GET /console serves the live console page (with AUTH_MODE=jwt it asks for an events:all token). */
  console: boolean
}

/**
 * What the main port speaks. The metrics listener is plain HTTP/1.1 whatever this says.
 * - `http1`: HTTP/1.1 (and 1.0) in clear, the default: behind an ingress that terminates TLS and h2.
 * - `tls`: TLS with `h2` by ALPN, and HTTP/1.1 on the same port for clients that do not offer it.
 * - `h2c`: HTTP/2 in clear with prior knowledge only, for a proxy that speaks it upstream.
 */
export type Listener =
  | { kind: 'http1' }
  | { kind: 'tls', key: Buffer, cert: Buffer, http2: Http2Config }
  | { kind: 'h2c', http2: Http2Config }

export interface Http2Config {
  /** Concurrent streams a client may open on one session (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreams: number
  /** A session with no frame sent or received this long gets GOAWAY (a heartbeat counts). */
  sessionIdleTimeoutMs: number
}

export interface RedisConfig {
  url: string
  /** Prepended to every key, so that several deployments can share one Redis. */
  prefix: string
  /**
   * The pub/sub channels and patterns the bridge takes `{event, data}` messages from: the seed's
   * channel (`REDIS_CHANNEL`) and the FlowFi backend's `sse:stream:<id>` and `sse:user:<account>`.
   */
  channels: ChannelSource[]
  /** How long the bridge's lease lasts unrenewed: the longest time the channel goes unread after its instance dies. */
  bridgeLeaseMs: number
  /** How long a stream's participants are kept in Redis after its last event. */
  participantsTtlS: number
  /** Whether /readyz fails while Redis is unreachable (by default open streams keep it ready). */
  readyRequiresRedis: boolean
  /** Start-up fails when Redis does not answer this soon (within Fastify's 10 s for a plugin). */
  connectTimeoutMs: number
}

export interface AuthConfig {
  mode: 'jwt' | 'off'
  /** HS256 secret, or a PEM public key (RS256 or ES256, told by the key). */
  secret: string | undefined
  publicKey: string | undefined
  algorithm: 'HS256' | 'RS256' | 'ES256'
  issuer: string | undefined
  audience: string | undefined
  /** Whether a token must carry `exp` (one without it would be accepted for ever). */
  requireExp: boolean
  clockToleranceS: number
  cookieName: string
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** A configuration value that the service refuses to start with. */
export class ConfigError extends Error {
  constructor (readonly variable: string, readonly value: string, allowed: string) {
    super(`${variable}=${JSON.stringify(value)} is not allowed: expected ${allowed}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

const MiB = 1024 * 1024

function integer (env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(name, raw, `an integer from ${min} to ${max}`)
  }
  return value
}

function oneOf<T extends string> (env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, raw, `one of ${allowed.join(', ')}`)
  }
  return raw as T
}

function text (env: Env, name: string, fallback: string, pattern: RegExp, allowed: string): string {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!pattern.test(raw)) throw new ConfigError(name, raw, allowed)
  return raw
}

/** Reads and validates the configuration; throws a ConfigError naming the first bad variable. */
export function loadConfig (env: Env = process.env): Config {
  const config = readConfig(env)
  // Every instance reads the Redis log after the batch is in: a batch larger than the log would trim
  // its own first events before any instance delivered them.
  if (config.redis !== undefined && config.historySize < config.maxPublishBatch) {
    throw new ConfigError('HISTORY_SIZE', String(config.historySize), `with REDIS_URL, at least MAX_PUBLISH_BATCH (${config.maxPublishBatch})`)
  }
  // A stream's heartbeat is what keeps its session from looking idle.
  if (config.listener.kind !== 'http1' && config.listener.http2.sessionIdleTimeoutMs <= config.heartbeatMs) {
    throw new ConfigError('HTTP2_SESSION_IDLE_TIMEOUT_MS', String(config.listener.http2.sessionIdleTimeoutMs),
      `more than HEARTBEAT_MS (${config.heartbeatMs}), or sessions with open streams would be closed`)
  }
  // The console's token check is a JWT scope: without JWTs anyone could read every event through it.
  if (config.console && config.production && config.auth.mode === 'off') {
    throw new ConfigError('CONSOLE', 'true', 'false in production with AUTH_MODE=off: the console needs AUTH_MODE=jwt to ask for an events:all token')
  }
  if (config.publishRatePerSecond < config.maxPublishBatch) {
    throw new ConfigError('PUBLISH_RATE_PER_SECOND', String(config.publishRatePerSecond),
      `at least MAX_PUBLISH_BATCH (${config.maxPublishBatch}): a larger batch could never be published`)
  }
  return config
}

function readConfig (env: Env): Config {
  const nodeEnv = oneOf(env, 'NODE_ENV', ['production', 'development', 'test'], 'development')
  const publishToken = env.PUBLISH_TOKEN === '' ? undefined : env.PUBLISH_TOKEN
  const maxPublishBatch = integer(env, 'MAX_PUBLISH_BATCH', 500, 1, 10_000)
  if (publishToken !== undefined && publishToken.length < 16) {
    throw new ConfigError('PUBLISH_TOKEN', '<redacted>', 'at least 16 characters')
  }
  return {
    host: text(env, 'HOST', '0.0.0.0', /^[\w.:[\]-]+$/, 'a host name or an IP address'),
    port: integer(env, 'PORT', 3001, 0, 65535),
    listener: listener(env),
    production: nodeEnv === 'production',
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    instanceId: text(env, 'INSTANCE_ID', `${hostname()}-${process.pid}`, /^[\w.-]{1,128}$/,
      'letters, digits, ".", "_" or "-" (at most 128)'),
    heartbeatMs: integer(env, 'HEARTBEAT_MS', DEFAULT_HEARTBEAT_MS, 10, 3_600_000),
    retryMs: integer(env, 'RETRY_MS', 3000, 100, 3_600_000),
    maxFilters: integer(env, 'MAX_FILTERS', 100, 1, 10_000),
    maxPublishBatch,
    publishToken,
    publishRatePerSecond: integer(env, 'PUBLISH_RATE_PER_SECOND', Math.max(1000, maxPublishBatch), 1, 1_000_000),
    maxTrackedStreams: integer(env, 'MAX_TRACKED_STREAMS', 100_000, 1, 10_000_000),
    historySize: integer(env, 'HISTORY_SIZE', 10_000, 0, 10_000_000),
    historyMaxAgeMs: integer(env, 'HISTORY_MAX_AGE_MS', 3_600_000, 100, 7 * 24 * 3_600_000),
    historyMaxBytes: integer(env, 'HISTORY_MAX_BYTES', 64 * MiB, 0, 64 * 1024 * MiB),
    maxReplay: integer(env, 'MAX_REPLAY', 10_000, 1, 10_000_000),
    maxBufferedBytes: integer(env, 'MAX_BUFFERED_BYTES', MiB, 1024, 1024 * MiB),
    maxStreamAgeMs: maxStreamAge(env),
    ...drainTimes(env),
    metricsPort: integer(env, 'METRICS_PORT', 9091, 0, 65535),
    maxConnectionsPerIp: integer(env, 'MAX_CONNECTIONS_PER_IP', 20, 1, 1_000_000),
    maxConnections: integer(env, 'MAX_CONNECTIONS', 50_000, 1, 10_000_000),
    trustProxy: trustProxy(env),
    auth: authConfig(env, nodeEnv === 'production'),
    subscribeRatePerMinute: integer(env, 'SUBSCRIBE_RATE_PER_MINUTE', 120, 1, 1_000_000),
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 600, 1, 10_000_000),
    corsOrigins: corsOrigins(env),
    redis: redisConfig(env),
    // On where a developer looks at the service; in production only when asked for.
    console: oneOf(env, 'CONSOLE', ['true', 'false'], nodeEnv === 'production' ? 'false' : 'true') === 'true'
  }
}

/** TLS_CERT and TLS_KEY (both or neither), or HTTP2_CLEARTEXT; the HTTP/2 settings with either. */
function listener (env: Env): Listener {
  const cleartext = oneOf(env, 'HTTP2_CLEARTEXT', ['true', 'false'], 'false') === 'true'
  const certPath = env.TLS_CERT || undefined
  const keyPath = env.TLS_KEY || undefined
  if ((certPath === undefined) !== (keyPath === undefined)) {
    const [missing, present] = certPath === undefined ? ['TLS_CERT', 'TLS_KEY'] : ['TLS_KEY', 'TLS_CERT']
    throw new ConfigError(missing, '', `a PEM file path as well, since ${present} is set (both or neither)`)
  }
  if (certPath === undefined || keyPath === undefined) {
    return cleartext ? { kind: 'h2c', http2: http2Config(env) } : { kind: 'http1' }
  }
  if (cleartext) {
    throw new ConfigError('HTTP2_CLEARTEXT', 'true', 'false with TLS_CERT and TLS_KEY: the TLS port speaks h2 already (by ALPN)')
  }
  const cert = readPem('TLS_CERT', certPath)
  const key = readPem('TLS_KEY', keyPath)
  let certificate: X509Certificate
  try {
    certificate = new X509Certificate(cert)
  } catch {
    throw new ConfigError('TLS_CERT', certPath, 'a PEM certificate (or chain, the server\'s first)')
  }
  let privateKey
  try {
    privateKey = createPrivateKey(key)
  } catch {
    throw new ConfigError('TLS_KEY', keyPath, 'an unencrypted PEM private key')
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError('TLS_KEY', keyPath, `the private key of the certificate in TLS_CERT (${certPath})`)
  }
  return { kind: 'tls', cert, key, http2: http2Config(env) }
}

/** Read at start-up: a file that cannot be read stops the process, naming the variable. */
function readPem (name: string, path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (error) {
    throw new ConfigError(name, path, `a readable PEM file (${(error as Error).message})`)
  }
}

function http2Config (env: Env): Http2Config {
  return {
    maxStreams: integer(env, 'HTTP2_MAX_STREAMS', 100, 1, 10_000),
    // Fastify's own default, which is also the HTTP/1.1 keep-alive timeout it sets; above the 60 s
    // idle timeout of many load balancers, so that they are the ones to close an idle connection.
    sessionIdleTimeoutMs: integer(env, 'HTTP2_SESSION_IDLE_TIMEOUT_MS', 72_000, 100, 3_600_000)
  }
}

function redisConfig (env: Env): RedisConfig | undefined {
  const url = env.REDIS_URL
  if (url === undefined || url === '') return undefined
  if (!/^rediss?:\/\/\S+$/.test(url)) throw new ConfigError('REDIS_URL', '<redacted>', 'a redis:// or rediss:// URL')
  return {
    url,
    prefix: text(env, 'REDIS_PREFIX', 'flowfi-events:', /^[\w.:{}-]{1,64}$/, 'letters, digits and . : _ - { } (at most 64)'),
    channels: channelSources(env),
    bridgeLeaseMs: integer(env, 'BRIDGE_LEASE_MS', 5000, 1000, 60_000),
    participantsTtlS: integer(env, 'PARTICIPANTS_TTL_S', 30 * 86400, 60, 365 * 86400),
    readyRequiresRedis: oneOf(env, 'READY_REQUIRES_REDIS', ['true', 'false'], 'false') === 'true',
    connectTimeoutMs: integer(env, 'REDIS_CONNECT_TIMEOUT_MS', 8000, 100, 9000)
  }
}

/** `REDIS_CHANNELS`; by default the seed's channel (`REDIS_CHANNEL`, default `stream-events`) and the backend's patterns. */
function channelSources (env: Env): ChannelSource[] {
  const listed = env.REDIS_CHANNELS !== undefined && env.REDIS_CHANNELS !== ''
    ? env.REDIS_CHANNELS
    : `${text(env, 'REDIS_CHANNEL', 'stream-events', /^[\w.:-]{1,128}$/, 'a channel name: letters, digits and . : _ -')},sse:stream:*,sse:user:*`
  try {
    return parseChannelSources(listed)
  } catch (error) {
    throw new ConfigError('REDIS_CHANNELS', listed, `comma-separated channels: ${(error as Error).message}`)
  }
}

function authConfig (env: Env, production: boolean): AuthConfig {
  const mode = oneOf(env, 'AUTH_MODE', ['jwt', 'off'], production ? 'jwt' : 'off')
  const secret = env.JWT_SECRET === '' ? undefined : env.JWT_SECRET
  const publicKey = env.JWT_PUBLIC_KEY === '' ? undefined : env.JWT_PUBLIC_KEY
  if (secret !== undefined && publicKey !== undefined) {
    throw new ConfigError('JWT_PUBLIC_KEY', '<key>', 'either JWT_SECRET or JWT_PUBLIC_KEY, not both')
  }
  if (mode === 'jwt' && secret === undefined && publicKey === undefined) {
    throw new ConfigError('AUTH_MODE', mode, 'a key as well: set JWT_SECRET (HS256) or JWT_PUBLIC_KEY (PEM), or AUTH_MODE=off')
  }
  if (secret !== undefined && secret.length < 32) {
    throw new ConfigError('JWT_SECRET', '<redacted>', 'at least 32 characters')
  }
  return {
    mode,
    secret,
    publicKey,
    algorithm: publicKey === undefined ? 'HS256' : publicKeyAlgorithm(publicKey),
    issuer: env.JWT_ISSUER || undefined,
    audience: env.JWT_AUDIENCE || undefined,
    requireExp: oneOf(env, 'JWT_REQUIRE_EXP', ['true', 'false'], 'true') === 'true',
    clockToleranceS: integer(env, 'JWT_CLOCK_TOLERANCE_S', 5, 0, 30),
    cookieName: text(env, 'AUTH_COOKIE', 'flowfi_token', /^[\w.-]{1,64}$/, 'a cookie name')
  }
}

/** RS256 for an RSA key, ES256 for a P-256 key; nothing else is accepted. */
function publicKeyAlgorithm (pem: string): 'RS256' | 'ES256' {
  let key
  try {
    key = createPublicKey(pem)
  } catch {
    throw new ConfigError('JWT_PUBLIC_KEY', '<key>', 'a PEM public key')
  }
  if (key.asymmetricKeyType === 'rsa') return 'RS256'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  throw new ConfigError('JWT_PUBLIC_KEY', '<key>', 'an RSA (RS256) or P-256 (ES256) public key')
}

function corsOrigins (env: Env): string[] {
  const raw = env.CORS_ORIGINS ?? ''
  const origins = raw.split(',').map(origin => origin.trim()).filter(origin => origin !== '')
  const bad = origins.find(origin => !/^https?:\/\/[\w.-]+(:\d+)?$/.test(origin))
  if (bad !== undefined) throw new ConfigError('CORS_ORIGINS', raw, 'comma-separated origins such as https://app.flowfi.xyz')
  return origins
}

/** Off unless the operator says which proxies to believe: a forged X-Forwarded-For would dodge limits. */
function trustProxy (env: Env): boolean | number | string {
  const raw = env.TRUST_PROXY
  if (raw === undefined || raw === '' || raw === 'false') return false
  if (raw === 'true') return true
  if (/^\d{1,2}$/.test(raw)) return Number(raw)
  if (/^[\d.:a-fA-F/]+(,\s*[\d.:a-fA-F/]+)*$/.test(raw)) return raw
  throw new ConfigError('TRUST_PROXY', raw, 'false, true, a number of proxy hops, or comma-separated proxy addresses or CIDR ranges')
}

/**
 * 20 minutes by default: a silent peer (no reset, no reads, no events to fill its buffer) is freed
 * then, and a resume with Last-Event-ID costs the client nothing. 0 is off; an age is at least a
 * second, the interval at which streams are checked.
 */
function maxStreamAge (env: Env): number | undefined {
  const ms = integer(env, 'MAX_STREAM_AGE_MS', 1_200_000, 0, 7 * 24 * 3_600_000)
  if (ms === 0) return undefined
  if (ms < 1000) throw new ConfigError('MAX_STREAM_AGE_MS', String(ms), '0 (off), or at least 1000: ages are checked once a second')
  return ms
}

/** The drain must fit in the shutdown timeout, or the process would be killed mid-drain. */
function drainTimes (env: Env): Pick<Config, 'drainDelayMs' | 'drainWindowMs' | 'shutdownTimeoutMs'> {
  const drainDelayMs = integer(env, 'DRAIN_DELAY_MS', 5000, 0, 600_000)
  const drainWindowMs = integer(env, 'DRAIN_WINDOW_MS', 10_000, 0, 600_000)
  const least = drainDelayMs + drainWindowMs + 1000
  const shutdownTimeoutMs = integer(env, 'SHUTDOWN_TIMEOUT_MS', Math.max(25_000, least), 1000, 3_600_000)
  if (shutdownTimeoutMs < least) {
    throw new ConfigError('SHUTDOWN_TIMEOUT_MS', String(shutdownTimeoutMs),
      `at least DRAIN_DELAY_MS + DRAIN_WINDOW_MS + 1000 = ${least}`)
  }
  return { drainDelayMs, drainWindowMs, shutdownTimeoutMs }
}
