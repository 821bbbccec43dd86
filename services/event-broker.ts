import { streamIdOf, type Envelope } from './event-schema.js'
import { EventIdGenerator } from './event-id.js'
import { encodeEvent } from './sse-frame.js'
import { RateWindow } from './rate-window.js'
import type { SseConnection } from './sse-connection.js'
import { StreamParticipants } from './stream-participants.js'
import { SubscriptionIndex, type SubscriptionCounts } from './subscription-index.js'

export interface EventBrokerOptions {
  /** How many streams' participants to remember for routing by user. */
  maxTrackedStreams: number
}

export interface BrokerStats {
  connections: SubscriptionCounts
  published: { total: number, perSecond: number }
  delivered: { total: number, perSecond: number }
  trackedStreams: number
}

/**
 * The in-process hub: gives each published event its id, serialises it once, and writes that one
 * Buffer to every connection whose filters match.
 */
export class EventBroker {
  readonly #index = new SubscriptionIndex<SseConnection>()
  readonly #connections = new Set<SseConnection>()
  readonly #participants: StreamParticipants
  readonly #ids = new EventIdGenerator()
  readonly #published = new RateWindow()
  readonly #delivered = new RateWindow()

  constructor (options: EventBrokerOptions) {
    this.#participants = new StreamParticipants(options.maxTrackedStreams)
  }

  add (connection: SseConnection): void {
    this.#connections.add(connection)
    this.#index.add(connection)
  }

  remove (connection: SseConnection): void {
    if (this.#connections.delete(connection)) this.#index.remove(connection)
  }

  /** Delivers validated events in order; returns the id given to each. */
  publish (envelopes: readonly Envelope[]): string[] {
    return envelopes.map(envelope => this.#publishOne(envelope))
  }

  #publishOne (envelope: Envelope): string {
    const id = this.#ids.next()
    const streamId = streamIdOf(envelope)
    const users = this.#participantsOf(streamId, envelope)
    const frame = encodeEvent(id, envelope.event, JSON.stringify(envelope.data))
    let delivered = 0
    this.#index.forEachMatch(streamId, users, connection => {
      connection.send(frame)
      connection.eventsSent++
      delivered++
    })
    this.#published.add(1)
    this.#delivered.add(delivered)
    return id
  }

  #participantsOf (streamId: string, envelope: Envelope): readonly string[] {
    const named = envelope.users ?? []
    if (envelope.event === 'stream.created') {
      return this.#participants.remember(streamId, [envelope.data.sender, envelope.data.recipient, ...named])
    }
    return named.length > 0 ? this.#participants.remember(streamId, named) : this.#participants.get(streamId)
  }

  /** Writes the same frame (a heartbeat, a retry hint) to every open connection. */
  broadcast (frame: Buffer): void {
    for (const connection of this.#connections) connection.send(frame)
  }

  /** Ends every open stream, so that a server close does not wait on them. */
  endAll (): void {
    for (const connection of this.#connections) {
      this.remove(connection)
      connection.end()
    }
  }

  stats (now: number = Date.now()): BrokerStats {
    return {
      connections: this.#index.counts(),
      published: { total: this.#published.total, perSecond: this.#published.perSecond(now) },
      delivered: { total: this.#delivered.total, perSecond: this.#delivered.perSecond(now) },
      trackedStreams: this.#participants.size
    }
  }
}
