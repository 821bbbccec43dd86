import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import fastifyRedis from '@fastify/redis'
import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify'
import { Redis, ReplyError, type RedisOptions } from 'ioredis'
import type { RedisConfig } from '../services/config.js'
import type { Envelope } from '../services/event-schema.js'
import { formatEventId, type EventId } from '../services/event-id.js'
import type { EventBroker } from '../services/event-broker.js'
import { RedisEventLog } from '../services/redis/redis-event-log.js'
import { BridgeLease } from '../services/redis/bridge-lease.js'
import { ThrottledLog } from '../services/throttled-log.js'
import { ChannelBridge, type ChannelResult } from '../services/redis/channel-bridge.js'

/** Where published events go: straight into this instance's broker, or through the Redis log to all. */
export interface Fanout {
  readonly mode: 'memory' | 'redis'
  /** Publishes validated events, all or none; resolves to their ids. Rejects with RedisUnavailable. */
  publish (envelopes: readonly Envelope[]): Promise<string[]>
  /** The known participants of each stream named (for authorising `streams=` by account). */
  participantsOf (streamIds: readonly string[]): Promise<Map<string, readonly string[]>>
  /** Redis mode: whether both connections answer. Always true in memory mode. */
  readonly redisUp: boolean
  /** Redis mode: whether this instance holds the bridge lease and is subscribed to the pub/sub channel now. */
  readonly bridging: boolean
  /** Redis mode: the id of the newest event read from the log. */
  readonly lastId: string | undefined
  /** Messages taken from the pub/sub channel by this instance while it bridged. */
  readonly channelMessages: Record<ChannelResult, number>
  /** Redis mode: entries of the log that this instance's reader skipped (written by another client). */
  readonly skippedLogEntries: number
}

declare module 'fastify' {
  interface FastifyInstance {
    fanout: Fanout
  }
}

/** Publishing failed because Redis did not answer, or refused: the client should try again. */
export class RedisUnavailable extends Error {
  constructor (outcome: 'nothing was published' | 'the events may or may not have been published', cause?: unknown) {
    super(`Redis did not take the events: ${outcome}`, { cause })
    this.name = 'RedisUnavailable'
  }
}

export interface RedisFanoutOptions {
  /** Undefined: a single instance, events fan out in memory. */
  redis: RedisConfig | undefined
  instanceId: string
  history: { maxEvents: number, maxAgeMs: number }
}

/** How long the reader's XREAD waits for entries before it asks again. */
const READ_BLOCK_MS = 5000
/** Publishing fails rather than hangs when Redis stops answering. */
const COMMAND_TIMEOUT_MS = 5000
/**
 * A connection with a command unanswered this long is dropped and made again: a peer that vanished
 * without a reset (a lost host, a failover) is noticed in seconds, not after TCP's minutes.
 */
const SOCKET_TIMEOUT_MS = READ_BLOCK_MS + 5000

/** Reconnection: 100 ms doubling to 5 s, with jitter so that a fleet does not reconnect in step. */
const retryStrategy = (attempt: number): number => Math.min(100 * 2 ** attempt, 5000) * (0.75 + Math.random() / 2)

function memoryFanout (broker: EventBroker): Fanout {
  return {
    mode: 'memory',
    publish: async envelopes => broker.publish(envelopes),
    participantsOf: async streamIds => new Map(streamIds.map(id => [id, broker.participantsOf(id)])),
    redisUp: true,
    bridging: false,
    lastId: undefined,
    channelMessages: { bridged: 0, malformed: 0, failed: 0 },
    skippedLogEntries: 0
  }
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
 * Fan-out across instances (`REDIS_URL`): every event, from `POST /events/publish` on any instance or
 * from the legacy pub/sub channel, is appended to one Redis Stream, which gives it its cluster-wide
 * id. Each instance reads that stream on a connection of its own and hands every entry to its broker,
 * so every instance delivers every event with the same id, and keeps the same history to resume from.
 * Without `REDIS_URL` the broker is used directly, as a single instance.
 */
const redisFanout: FastifyPluginAsync<RedisFanoutOptions> = async (app, options) => {
  const broker = app.broker
  if (options.redis === undefined) {
    app.decorate('fanout', memoryFanout(broker))
    return
  }
  const config = options.redis
  const connection: RedisOptions = {
    connectionName: options.instanceId,
    retryStrategy,
    // A publish while Redis is away fails at once (503), rather than waiting to be sent later, when
    // the client has long been told it failed.
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    commandTimeout: COMMAND_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS
  }
  const commands = new Redis(config.url, connection)
  await connected(commands, config.url, config.connectTimeoutMs)
  const closingCommands = watch(commands, 'commands', app.log)
  // Closed by this plugin: quit() fails while Redis is away, and close() must not.
  await app.register(fastifyRedis, { client: commands })
  // The reader blocks, and waits through outages: its XREAD is sent again on reconnection.
  const longLived: RedisOptions = {
    enableOfflineQueue: true,
    autoResendUnfulfilledCommands: true,
    maxRetriesPerRequest: null,
    commandTimeout: undefined
  }
  const reader = commands.duplicate({ ...longLived, connectionName: `${options.instanceId}:reader` })
  const log = new RedisEventLog(commands, { prefix: config.prefix, ...options.history, participantsTtlS: config.participantsTtlS })
  /** The bridge's connection while this instance holds the lease; `subscribed` once Redis confirmed it. */
  let subscriber: { connection: Redis, closing: () => void, ping: NodeJS.Timeout, subscribed: boolean } | undefined
  let stopping = false
  const closingReader = watch(reader, 'reader', app.log)
  // What the log's reader reports can repeat without end (a foreign client's flood): a line a minute.
  const readerLog = new ThrottledLog(app.log)

  /** Failures that a connection's own loss line already covers: only at debug level. */
  const quietly = (what: string) => (error: Error): void => { app.log.debug({ err: error }, what) }
  const skip = (id: string, why: string): void => readerLog.warn({ id, key: log.streamKey }, `skipped a log entry: ${why}`)
  /** Entries were lost to this instance: its history stops there, and its streams must refetch. */
  const missed = (upTo: EventId, why: string): void => {
    readerLog.error({ key: log.streamKey, upTo: formatEventId(upTo) }, `${why}: streams are told to resync`)
    broker.missedUpTo(upTo)
  }
  const live = { take: broker.ingest.bind(broker), missed, skip }

  // The channel's messages are bounded and parsed as HTTP bodies are, with the app's own settings.
  const { bodyLimit, onProtoPoisoning, onConstructorPoisoning } = app.initialConfig
  const bridge = new ChannelBridge({
    channel: config.channel,
    maxBytes: bodyLimit!,
    protoAction: onProtoPoisoning!,
    constructorAction: onConstructorPoisoning!,
    append: envelope => log.append([envelope], lease.token),
    log: app.log
  })

  const lease = new BridgeLease(commands, log.leaseKey, options.instanceId, config.bridgeLeaseMs, {
    acquired () {
      app.log.info({ channel: config.channel }, 'bridge lease taken: this instance logs the channel\'s messages')
      // Subscribed by hand on every connection rather than by ioredis' autoResubscribe, whose SUBSCRIBE
      // nobody awaits: `bridging` says a message published now is taken, not only that the lease is held.
      const connection = commands.duplicate({ ...longLived, connectionName: `${options.instanceId}:bridge`, socketTimeout: SOCKET_TIMEOUT_MS, autoResubscribe: false })
      // A subscribed connection answers nothing else: a ping now and then is how a dead one is noticed.
      const ping = setInterval(() => { connection.ping().catch(quietly('bridge ping: Redis did not answer')) }, config.bridgeLeaseMs / 3)
      const entry = { connection, closing: watch(connection, 'bridge', app.log), ping, subscribed: false }
      subscriber = entry
      // As bytes: the size bound is in bytes, and an oversized message is never decoded.
      connection.on('messageBuffer', (_channel: Buffer, message: Buffer) => bridge.take(message))
      connection.on('close', () => { entry.subscribed = false })
      connection.on('ready', () => {
        connection.subscribe(config.channel).then(() => { entry.subscribed = true }, (error: Error) => {
          app.log.error({ err: error, channel: config.channel }, 'could not subscribe to the channel: the bridge lease is given up')
          void lease.yield()
        })
      })
    },
    lost () {
      app.log.warn({ channel: config.channel }, 'bridge lease given up or lost: another instance takes the channel over')
      // The lease alternates between taken and lost: there is a subscriber to close.
      const { connection, closing, ping } = subscriber!
      clearInterval(ping)
      closing()
      connection.disconnect()
      subscriber = undefined
    },
    error: quietly('bridge lease: Redis did not answer')
  })

  const readLoop = async (): Promise<void> => {
    while (!stopping) {
      try {
        await log.read(reader, READ_BLOCK_MS, live)
      } catch (error) {
        if (stopping) return
        readerLog.error({ err: error }, 'reading the event log failed; trying again in a second')
        await sleep(1000)
      }
    }
  }

  app.decorate('fanout', {
    mode: 'redis',
    async publish (envelopes) {
      if (commands.status !== 'ready') throw new RedisUnavailable('nothing was published')
      try {
        return await log.append(envelopes)
      } catch (error) {
        app.log.error({ err: error }, 'publishing to the Redis log failed')
        // Redis refused the script before it wrote anything; no answer at all leaves the outcome open.
        throw new RedisUnavailable(error instanceof ReplyError ? 'nothing was published' : 'the events may or may not have been published', error)
      }
    },
    participantsOf: async streamIds => await log.participantsOf(streamIds),
    get redisUp () {
      return commands.status === 'ready' && reader.status === 'ready'
    },
    get bridging () {
      return subscriber?.subscribed ?? false
    },
    get lastId () {
      return log.lastId
    },
    channelMessages: bridge.results,
    get skippedLogEntries () {
      return log.skipped
    }
  } satisfies Fanout)

  app.addHook('onReady', async () => {
    let loaded = 0
    const history = await log.loadHistory({
      take: event => {
        broker.preload(event)
        loaded++
      },
      missed,
      skip
    })
    for (const { key, found } of history.unreadable) app.log.warn({ key, found }, 'a key of the log holds what this service never writes; read as absent')
    if (history.trimmedUpTo !== undefined) broker.forgetUpTo(history.trimmedUpTo)
    void readLoop()
    lease.start()
    app.log.info({ key: log.streamKey, loaded, lastId: log.lastId, channel: config.channel }, 'redis fan-out ready: history loaded, reading the log')
  })

  app.addHook('onClose', async () => {
    stopping = true
    await lease.stop() // which also closes the bridge's subscriber connection
    // An XREAD waiting through an outage is never answered; the loop ends when it is, or never.
    closingReader()
    reader.disconnect()
    closingCommands()
    await commands.quit().catch(() => commands.disconnect())
  })
}

export default fp(redisFanout, { name: 'redis-fanout', fastify: '5.x', dependencies: ['sse-broker'] })
