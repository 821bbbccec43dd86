import { hostname } from 'node:os'

/** Everything the service reads from its environment, validated once at start-up. */
export interface Config {
  host: string
  port: number
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
  const nodeEnv = oneOf(env, 'NODE_ENV', ['production', 'development', 'test'], 'development')
  const publishToken = env.PUBLISH_TOKEN === '' ? undefined : env.PUBLISH_TOKEN
  if (publishToken !== undefined && publishToken.length < 16) {
    throw new ConfigError('PUBLISH_TOKEN', '<redacted>', 'at least 16 characters')
  }
  return {
    host: text(env, 'HOST', '0.0.0.0', /^[\w.:[\]-]+$/, 'a host name or an IP address'),
    port: integer(env, 'PORT', 3001, 0, 65535),
    production: nodeEnv === 'production',
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    instanceId: text(env, 'INSTANCE_ID', `${hostname()}-${process.pid}`, /^[\w.-]{1,128}$/,
      'letters, digits, ".", "_" or "-" (at most 128)'),
    heartbeatMs: integer(env, 'HEARTBEAT_MS', 15_000, 10, 3_600_000),
    retryMs: integer(env, 'RETRY_MS', 3000, 100, 3_600_000),
    maxFilters: integer(env, 'MAX_FILTERS', 100, 1, 10_000),
    maxPublishBatch: integer(env, 'MAX_PUBLISH_BATCH', 500, 1, 10_000),
    publishToken,
    maxTrackedStreams: integer(env, 'MAX_TRACKED_STREAMS', 100_000, 1, 10_000_000),
    historySize: integer(env, 'HISTORY_SIZE', 10_000, 0, 10_000_000),
    historyMaxAgeMs: integer(env, 'HISTORY_MAX_AGE_MS', 3_600_000, 0, 7 * 24 * 3_600_000),
    historyMaxBytes: integer(env, 'HISTORY_MAX_BYTES', 64 * MiB, 0, 64 * 1024 * MiB),
    maxReplay: integer(env, 'MAX_REPLAY', 10_000, 1, 10_000_000),
    maxBufferedBytes: integer(env, 'MAX_BUFFERED_BYTES', MiB, 1024, 1024 * MiB),
    ...drainTimes(env),
    metricsPort: integer(env, 'METRICS_PORT', 9091, 0, 65535),
    maxConnectionsPerIp: integer(env, 'MAX_CONNECTIONS_PER_IP', 20, 1, 1_000_000),
    maxConnections: integer(env, 'MAX_CONNECTIONS', 50_000, 1, 10_000_000),
    trustProxy: trustProxy(env)
  }
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
