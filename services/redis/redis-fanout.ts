import { ReplyError, type Redis } from 'ioredis'
import type { Envelope } from '../event-schema.js'
import { RedisUnavailable, type Fanout } from '../fanout.js'
import { ChannelSubscriber, type ChannelSubscriberOptions } from './channel-subscriber.js'
import type { ChannelSource } from './channel-routes.js'
import type { RedisConnections, RedisLog } from './connections.js'
import { RedisLogReader, type LogTarget } from './log-reader.js'
import { RedisEventLog, type RedisEventLogOptions } from './redis-event-log.js'

export interface RedisFanoutOptions {
  log: RedisEventLogOptions
  bridge: ChannelSubscriberOptions
}

/**
 * Fan-out across instances: every event, published on any instance or taken from the legacy pub/sub
 * channel, is appended to one Redis Stream, which gives it its cluster-wide id. Each instance reads
 * that stream on a connection of its own and hands every entry to its broker, so every instance
 * delivers every event with the same id, and keeps the same history to resume from.
 */
export class RedisFanout implements Fanout {
  readonly mode = 'redis'
  readonly channelMessages: Fanout['channelMessages']
  readonly #log: RedisEventLog
  readonly #reader: Redis
  readonly #logReader: RedisLogReader
  readonly #channel: ChannelSubscriber

  constructor (readonly connections: RedisConnections, broker: LogTarget, readonly options: RedisFanoutOptions, readonly logger: RedisLog) {
    this.#log = new RedisEventLog(connections.commands, options.log)
    this.#reader = connections.open('reader')
    this.#logReader = new RedisLogReader(this.#log, this.#reader, broker, logger)
    this.#channel = new ChannelSubscriber(connections, this.#log, options.bridge, logger)
    this.channelMessages = this.#channel.results
  }

  async publish (envelopes: readonly Envelope[]): Promise<string[]> {
    if (this.connections.commands.status !== 'ready') throw new RedisUnavailable('nothing was published')
    try {
      return await this.#log.append(envelopes)
    } catch (error) {
      this.logger.error({ err: error }, 'publishing to the Redis log failed')
      // Redis refused the script before it wrote anything; no answer at all leaves the outcome open.
      throw new RedisUnavailable(error instanceof ReplyError ? 'nothing was published' : 'the events may or may not have been published', error)
    }
  }

  async participantsOf (streamIds: readonly string[]): Promise<Map<string, readonly string[]>> {
    return await this.#log.participantsOf(streamIds)
  }

  get redisUp (): boolean {
    return this.connections.commands.status === 'ready' && this.#reader.status === 'ready'
  }

  get bridging (): boolean {
    return this.#channel.bridging
  }

  get lastId (): string {
    return this.#log.lastId
  }

  get skippedLogEntries (): number {
    return this.#log.skipped
  }

  /** Loads the retained log into the broker, then reads on, and competes for the bridge lease. */
  async start (): Promise<void> {
    const loaded = await this.#logReader.loadHistory()
    this.#logReader.start()
    this.#channel.start()
    this.logger.info({ key: this.#log.streamKey, loaded, lastId: this.#log.lastId, channels: routesOf(this.options.bridge.sources) },
      'redis fan-out ready: history loaded, reading the log')
  }

  async stop (): Promise<void> {
    this.#logReader.stop()
    await this.#channel.stop() // which also closes the bridge's subscribed connection
    // An XREAD waiting through an outage is never answered; the read loop ends when it is, or never.
    this.connections.close(this.#reader)
  }
}

/** How each channel routes, for the start-up line: a typo in REDIS_CHANNELS shows there. */
const routesOf = (sources: readonly ChannelSource[]): Record<string, string> =>
  Object.fromEntries(sources.map(({ name, routes }) => [name, routes === 'data' ? 'by its data' : `to the ${routes} the channel names`]))
