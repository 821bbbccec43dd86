import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { loadConfig } from '../services/config.js'

t.test('defaults', async t => {
  const config = loadConfig({})
  t.match(config, {
    host: '0.0.0.0',
    port: 3001,
    production: false,
    logLevel: 'info',
    heartbeatMs: 15000,
    retryMs: 3000,
    maxFilters: 100,
    maxPublishBatch: 500,
    publishToken: undefined,
    maxTrackedStreams: 100000,
    historySize: 10000,
    historyMaxAgeMs: 3600000,
    historyMaxBytes: 64 * 1024 * 1024,
    maxReplay: 10000,
    maxBufferedBytes: 1024 * 1024,
    maxStreamAgeMs: 1_200_000,
    drainDelayMs: 5000,
    drainWindowMs: 10000,
    shutdownTimeoutMs: 25000
  })
  t.equal(loadConfig({ DRAIN_DELAY_MS: '20000', DRAIN_WINDOW_MS: '30000' }).shutdownTimeoutMs, 51000,
    'the default timeout grows with a long drain')
  t.match(config.instanceId, /^[\w.-]+$/)
})

t.test('reads every variable', async t => {
  t.match(loadConfig({
    HOST: '::1',
    PORT: '8080',
    NODE_ENV: 'production',
    JWT_SECRET: 'a-jwt-secret-of-at-least-32-characters',
    LOG_LEVEL: 'warn',
    INSTANCE_ID: 'pod-7',
    HEARTBEAT_MS: '500',
    RETRY_MS: '1000',
    MAX_FILTERS: '5',
    MAX_PUBLISH_BATCH: '10',
    PUBLISH_TOKEN: 'a-long-enough-token',
    MAX_TRACKED_STREAMS: '1000',
    HISTORY_SIZE: '50',
    HISTORY_MAX_AGE_MS: '60000',
    HISTORY_MAX_BYTES: '1048576',
    MAX_REPLAY: '20',
    MAX_BUFFERED_BYTES: '65536',
    MAX_STREAM_AGE_MS: '1200000',
    DRAIN_DELAY_MS: '1000',
    DRAIN_WINDOW_MS: '2000',
    SHUTDOWN_TIMEOUT_MS: '4000'
  }), {
    host: '::1',
    port: 8080,
    production: true,
    logLevel: 'warn',
    instanceId: 'pod-7',
    heartbeatMs: 500,
    retryMs: 1000,
    maxFilters: 5,
    maxPublishBatch: 10,
    publishToken: 'a-long-enough-token',
    maxTrackedStreams: 1000,
    historySize: 50,
    historyMaxAgeMs: 60000,
    historyMaxBytes: 1048576,
    maxReplay: 20,
    maxBufferedBytes: 65536,
    maxStreamAgeMs: 1200000,
    drainDelayMs: 1000,
    drainWindowMs: 2000,
    shutdownTimeoutMs: 4000
  })
  t.equal(loadConfig({ PORT: '' }).port, 3001, 'an empty value means the default')
  t.equal(loadConfig({ MAX_STREAM_AGE_MS: '0' }).maxStreamAgeMs, undefined, '0 is off')
})

t.test('a bad value names the variable, the value and what is allowed', async t => {
  const REDIS_URL = 'redis://127.0.0.1:6379'
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'abc' }, 'PORT="abc" is not allowed: expected an integer from 0 to 65535'],
    [{ PORT: '70000' }, 'PORT="70000" is not allowed: expected an integer from 0 to 65535'],
    [{ PORT: '1.5' }, 'PORT="1.5" is not allowed: expected an integer from 0 to 65535'],
    [{ HEARTBEAT_MS: '-1' }, 'HEARTBEAT_MS="-1" is not allowed: expected an integer from 10 to 3600000'],
    [{ NODE_ENV: 'prod' }, 'NODE_ENV="prod" is not allowed: expected one of production, development, test'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL="loud" is not allowed: expected one of fatal, error, warn, info, debug, trace, silent'],
    [{ HOST: 'a b' }, 'HOST="a b" is not allowed: expected a host name or an IP address'],
    [{ INSTANCE_ID: 'x/y' }, 'INSTANCE_ID="x/y" is not allowed: expected letters, digits, ".", "_" or "-" (at most 128)'],
    [{ PUBLISH_TOKEN: 'short' }, 'PUBLISH_TOKEN="<redacted>" is not allowed: expected at least 16 characters'],
    [{ REDIS_URL: 'http://redis:6379' }, 'REDIS_URL="<redacted>" is not allowed: expected a redis:// or rediss:// URL'],
    [{ REDIS_PREFIX: 'a b', REDIS_URL }, 'REDIS_PREFIX="a b" is not allowed: expected letters, digits and . : _ - { } (at most 64)'],
    [{ REDIS_CHANNEL: 'a*', REDIS_URL }, 'REDIS_CHANNEL="a*" is not allowed: expected a channel name: letters, digits and . : _ -'],
    [{ BRIDGE_LEASE_MS: '500', REDIS_URL }, 'BRIDGE_LEASE_MS="500" is not allowed: expected an integer from 1000 to 60000'],
    [{ READY_REQUIRES_REDIS: 'yes', REDIS_URL }, 'READY_REQUIRES_REDIS="yes" is not allowed: expected one of true, false'],
    [{ HISTORY_SIZE: '100', REDIS_URL }, 'HISTORY_SIZE="100" is not allowed: expected with REDIS_URL, at least MAX_PUBLISH_BATCH (500)'],
    [{ MAX_STREAM_AGE_MS: '500' }, 'MAX_STREAM_AGE_MS="500" is not allowed: expected 0 (off), or at least 1000: ages are checked once a second'],
    [{ MAX_STREAM_AGE_MS: '20m' }, 'MAX_STREAM_AGE_MS="20m" is not allowed: expected an integer from 0 to 604800000'],
    [{ SHUTDOWN_TIMEOUT_MS: '15000' },
      'SHUTDOWN_TIMEOUT_MS="15000" is not allowed: expected at least DRAIN_DELAY_MS + DRAIN_WINDOW_MS + 1000 = 16000']
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message, variable: Object.keys(env)[0] })
  }
})

t.test('authentication settings', async t => {
  t.match(loadConfig({}).auth, { mode: 'off', algorithm: 'HS256', clockToleranceS: 5, cookieName: 'flowfi_token' })
  t.match(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), JWT_ISSUER: 'i', JWT_AUDIENCE: 'a' }).auth,
    { mode: 'jwt', secret: 'x'.repeat(32), issuer: 'i', audience: 'a' }, 'production means jwt')
  const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  t.equal(loadConfig({ AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: ec256, JWT_SECRET: '' }).auth.algorithm, 'ES256', 'an empty variable is unset')
  t.match(loadConfig({ AUTH_MODE: 'jwt', JWT_SECRET: 'x'.repeat(32), JWT_PUBLIC_KEY: '' }).auth, { algorithm: 'HS256', publicKey: undefined })
  const refused: Array<[Record<string, string>, string]> = [
    [{ NODE_ENV: 'production' }, 'AUTH_MODE="jwt" is not allowed: expected a key as well: set JWT_SECRET (HS256) or JWT_PUBLIC_KEY (PEM), or AUTH_MODE=off'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET="<redacted>" is not allowed: expected at least 32 characters'],
    [{ JWT_SECRET: 'x'.repeat(32), JWT_PUBLIC_KEY: ec256 }, 'JWT_PUBLIC_KEY="<key>" is not allowed: expected either JWT_SECRET or JWT_PUBLIC_KEY, not both'],
    [{ JWT_PUBLIC_KEY: 'not a key' }, 'JWT_PUBLIC_KEY="<key>" is not allowed: expected a PEM public key'],
    [{ JWT_PUBLIC_KEY: ec384 }, 'JWT_PUBLIC_KEY="<key>" is not allowed: expected an RSA (RS256) or P-256 (ES256) public key'],
    [{ JWT_CLOCK_TOLERANCE_S: '31' }, 'JWT_CLOCK_TOLERANCE_S="31" is not allowed: expected an integer from 0 to 30'],
    [{ AUTH_MODE: 'maybe' }, 'AUTH_MODE="maybe" is not allowed: expected one of jwt, off'],
    [{ CORS_ORIGINS: 'https://ok.example,*' }, 'CORS_ORIGINS="https://ok.example,*" is not allowed: expected comma-separated origins such as https://app.flowfi.xyz']
  ]
  for (const [env, message] of refused) t.throws(() => loadConfig(env), { message }, message)
  t.same(loadConfig({ CORS_ORIGINS: ' https://a.example , http://localhost:5173 ' }).corsOrigins, ['https://a.example', 'http://localhost:5173'])
})

t.test('TRUST_PROXY', async t => {
  t.equal(loadConfig({}).trustProxy, false)
  t.equal(loadConfig({ TRUST_PROXY: 'false' }).trustProxy, false)
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
  t.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2)
  t.equal(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy, '10.0.0.0/8, 127.0.0.1')
  t.throws(() => loadConfig({ TRUST_PROXY: 'yes please' }), {
    message: 'TRUST_PROXY="yes please" is not allowed: expected false, true, a number of proxy hops, or comma-separated proxy addresses or CIDR ranges'
  })
})

t.test('an empty PUBLISH_TOKEN is no token', async t => {
  t.equal(loadConfig({ PUBLISH_TOKEN: '' }).publishToken, undefined)
})

t.test('Redis settings: none without REDIS_URL; defaults and checks with it', async t => {
  t.equal(loadConfig({}).redis, undefined, 'one instance, in memory')
  t.same(loadConfig({ REDIS_URL: 'redis://:secret@redis:6379/0' }).redis, {
    url: 'redis://:secret@redis:6379/0',
    prefix: 'flowfi-events:',
    channels: [
      { name: 'stream-events', pattern: false, routes: 'data' },
      { name: 'sse:stream:*', pattern: true, routes: 'stream' },
      { name: 'sse:user:*', pattern: true, routes: 'account' }
    ],
    bridgeLeaseMs: 5000,
    participantsTtlS: 30 * 86400,
    readyRequiresRedis: false,
    connectTimeoutMs: 8000
  })
  t.same(loadConfig({
    REDIS_URL: 'rediss://redis.internal:6380',
    REDIS_PREFIX: '{flowfi}:',
    REDIS_CHANNEL: 'payments.events',
    BRIDGE_LEASE_MS: '2000',
    PARTICIPANTS_TTL_S: '3600',
    READY_REQUIRES_REDIS: 'true',
    REDIS_CONNECT_TIMEOUT_MS: '3000'
  }).redis, {
    url: 'rediss://redis.internal:6380',
    prefix: '{flowfi}:',
    channels: [
      { name: 'payments.events', pattern: false, routes: 'data' },
      { name: 'sse:stream:*', pattern: true, routes: 'stream' },
      { name: 'sse:user:*', pattern: true, routes: 'account' }
    ],
    bridgeLeaseMs: 2000,
    participantsTtlS: 3600,
    readyRequiresRedis: true,
    connectTimeoutMs: 3000
  })
  t.same(loadConfig({ REDIS_URL: 'redis://r', REDIS_CHANNEL: 'not read *', REDIS_CHANNELS: 'a, flowfi:stream:*' }).redis?.channels, [
    { name: 'a', pattern: false, routes: 'data' },
    { name: 'flowfi:stream:*', pattern: true, routes: 'stream' }
  ], 'REDIS_CHANNELS lists them all')
  t.throws(() => loadConfig({ REDIS_URL: 'redis://r', REDIS_CHANNELS: 'a,sse:*,sse:user:*' }),
    { message: 'REDIS_CHANNELS="a,sse:*,sse:user:*" is not allowed: expected comma-separated channels: "sse:user:*" is matched by "sse:*" too: its messages would be taken twice' })
  t.equal(loadConfig({ HISTORY_SIZE: '100' }).historySize, 100, 'without Redis the history may be shorter than a batch')
})

t.test('PUBLISH_RATE_PER_SECOND: 1000 by default, and never less than a batch', async t => {
  t.equal(loadConfig({}).publishRatePerSecond, 1000)
  t.equal(loadConfig({ MAX_PUBLISH_BATCH: '2000' }).publishRatePerSecond, 2000, 'the default grows to MAX_PUBLISH_BATCH')
  t.equal(loadConfig({ PUBLISH_RATE_PER_SECOND: '5', MAX_PUBLISH_BATCH: '5' }).publishRatePerSecond, 5)
  t.throws(() => loadConfig({ PUBLISH_RATE_PER_SECOND: '0' }),
    { variable: 'PUBLISH_RATE_PER_SECOND', message: 'PUBLISH_RATE_PER_SECOND="0" is not allowed: expected an integer from 1 to 1000000' })
  t.throws(() => loadConfig({ PUBLISH_RATE_PER_SECOND: '100' }),
    { variable: 'PUBLISH_RATE_PER_SECOND', message: 'PUBLISH_RATE_PER_SECOND="100" is not allowed: expected at least MAX_PUBLISH_BATCH (500): a larger batch could never be published' })
})
