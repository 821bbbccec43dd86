import fp from 'fastify-plugin'
import fastifyRedis from '@fastify/redis'
import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify'
import { Redis, type RedisOptions } from 'ioredis'
import type { RedisConnections } from '../services/redis/connections.js'
import { READ_BLOCK_MS } from '../services/redis/log-reader.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** With REDIS_URL: this instance's connections to Redis (`redis`, from @fastify/redis, is its commands one). */
    redisConnections: RedisConnections
  }
}

export interface RedisConnectionOptions {
  url: string
  /** Start-up fails when Redis does not answer this soon. */
  connectTimeoutMs: number
  /** Each connection's name in Redis (CLIENT LIST): this, and the role for the others. */
  connectionName: string
}

/** Publishing fails rather than hangs when Redis stops answering. */
const COMMAND_TIMEOUT_MS = 5000
/**
 * A connection with a command unanswered this long is dropped and made again: a peer that vanished
 * without a reset (a lost host, a failover) is noticed in seconds, not after TCP's minutes.
 */
const SOCKET_TIMEOUT_MS = READ_BLOCK_MS + 5000

/** Reconnection: 100 ms doubling to 5 s, with jitter so that a fleet does not reconnect in step. */
const retryStrategy = (attempt: number): number => Math.min(100 * 2 ** attempt, 5000) * (0.75 + Math.random() / 2)

/** The connections `open` makes: the reader blocks, and waits through outages; so does the bridge's. */
const LONG_LIVED: RedisOptions = {
  enableOfflineQueue: true,
  autoResendUnfulfilledCommands: true,
  maxRetriesPerRequest: null,
  commandTimeout: undefined
}

/** Waits for the first connection, or fails start-up with a message that says what to check. */
async function connected (client: Redis, url: string, timeoutMs: number): Promise<void> {
  let lastError = 'no answer'
  const noteError = (error: Error): void => { lastError = error.message }
  client.on('error', noteError)
  const ready = await new Promise<boolean>(resolve => {
    const timer = setTimeout(() => resolve(false), timeoutMs)
    client.once('ready', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
  client.off('error', noteError)
  if (ready) return
  client.disconnect()
  const { protocol, host } = new URL(url)
  throw new Error(`Redis at ${protocol}//${host} did not answer within ${timeoutMs} ms (${lastError}): ` +
    'check REDIS_URL, or unset it to run a single instance without Redis')
}

/**
 * Logs each connection's losses and returns once, not every reconnection attempt. Returns what to
 * call before closing the connection on purpose, which is then not logged as a loss.
 */
function watch (client: Redis, role: string, log: FastifyBaseLogger): () => void {
  let up = client.status === 'ready'
  let lost = false
  let lastError: Error | undefined
  client.on('ready', () => {
    if (lost) log.info({ role }, 'redis connection is back')
    up = true
    lost = false
  })
  client.on('error', (error: Error) => {
    lastError = error
    log.debug({ role, err: error }, 'redis connection error')
  })
  client.on('close', () => {
    if (up) log.error({ role, err: lastError }, 'redis connection lost; reconnecting with backoff')
    lost ||= up
    up = false
  })
  return () => { up = false }
}

/**
 * The connections to Redis (`REDIS_URL`), for every plugin that uses it: the fan-out, the rate limit,
 * the connection limiter. Start-up waits for Redis; closing the app closes the commands connection,
 * after the plugins that use it (registered after this one) have closed.
 */
const redis: FastifyPluginAsync<RedisConnectionOptions> = async (app, options) => {
  const commands = new Redis(options.url, {
    connectionName: options.connectionName,
    retryStrategy,
    // A publish while Redis is away fails at once (503), rather than waiting to be sent later, when
    // the client has long been told it failed.
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    commandTimeout: COMMAND_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS
  })
  await connected(commands, options.url, options.connectTimeoutMs)
  const closingCommands = watch(commands, 'commands', app.log)
  // Closed by this plugin: quit() fails while Redis is away, and close() must not.
  await app.register(fastifyRedis, { client: commands })

  /** For each connection `open` made: what to call before closing it on purpose. */
  const closing = new WeakMap<Redis, () => void>()
  app.decorate('redisConnections', {
    commands,
    open (role, extra) {
      // Made from the commands connection's options (its socket timeout), with the name of its role.
      const connection = commands.duplicate({ ...LONG_LIVED, connectionName: `${options.connectionName}:${role}`, ...extra })
      closing.set(connection, watch(connection, role, app.log))
      return connection
    },
    close (connection) {
      closing.get(connection)!()
      connection.disconnect()
    }
  } satisfies RedisConnections)

  app.addHook('onClose', async () => {
    closingCommands()
    await commands.quit().catch(() => commands.disconnect())
  })
}

export default fp(redis, { name: 'redis', fastify: '5.x' })
