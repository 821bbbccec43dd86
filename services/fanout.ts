import type { Envelope } from './event-schema.js'
import type { EventBroker } from './event-broker.js'
import type { ChannelResult } from './redis/channel-bridge.js'

/**
 * Where published events go: straight into this instance's broker (`memoryFanout`), or through the
 * Redis log to every instance (plugins/redis-fanout.ts). What the routes see.
 */
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

/** Publishing failed because Redis did not answer, or refused: the client should try again. */
export class RedisUnavailable extends Error {
  constructor (outcome: 'nothing was published' | 'the events may or may not have been published', cause?: unknown) {
    super(`Redis did not take the events: ${outcome}`, { cause })
    this.name = 'RedisUnavailable'
  }
}

/** A single instance: events fan out in its broker. */
export function memoryFanout (broker: EventBroker): Fanout {
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
