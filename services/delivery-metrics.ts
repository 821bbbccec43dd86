import { EVENT_TYPES, RESYNC_REASONS, type EventType, type ResyncReason } from './protocol.js'
import { PROTOCOLS, type Protocol } from './transport/sink.js'

/** The one place delivery is counted: `/events/stats` and `/metrics` both read it. */

export const CONNECTION_RESULTS = ['opened', 'bad_request', 'unauthorized', 'forbidden', 'draining', 'unavailable', 'too_many_per_ip', 'over_capacity'] as const
export type ConnectionResult = typeof CONNECTION_RESULTS[number]
/** Why a subscribe request opened no stream (draining, unavailable: it was told to come back later). */
export type ConnectionRefusal = Exclude<ConnectionResult, 'opened'>

export { RESYNC_REASONS, type ResyncReason } from './protocol.js'

export const REJECT_REASONS = ['invalid_event', 'invalid_batch', 'unauthorized', 'publish_rate_exceeded'] as const
export type RejectReason = typeof REJECT_REASONS[number]

export const CLOSE_REASONS = ['client_closed', 'slow_consumer', 'drain', 'token_expired', 'reader_behind', 'max_age'] as const
export type CloseReason = typeof CLOSE_REASONS[number]

function zeros<K extends string> (keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map(key => [key, 0])) as Record<K, number>
}

/**
 * Counts into fixed buckets. `observe` takes a weight, so that one event written to 10,000 sockets
 * in one flush is one call, not 10,000.
 */
export class Histogram {
  readonly counts: Float64Array
  sum = 0
  count = 0

  /** `bounds`: the upper bounds of the buckets, increasing; one more bucket catches the rest. */
  constructor (readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe (value: number, weight = 1): void {
    let bucket = 0
    while (bucket < this.bounds.length && value > this.bounds[bucket]!) bucket++
    this.counts[bucket]! += weight
    this.sum += value * weight
    this.count += weight
  }
}

/**
 * What happened to connections and events, counted by the methods below (which is how the routes
 * and the broker count); stats and /metrics read the fields.
 */
export class DeliveryMetrics {
  readonly #connections = zeros(CONNECTION_RESULTS)
  readonly #resyncs = zeros(RESYNC_REASONS)
  readonly #published = zeros(EVENT_TYPES as readonly EventType[])
  readonly #rejected = zeros(REJECT_REASONS)
  readonly #closes = zeros(CLOSE_REASONS)
  readonly #openedByProtocol = zeros(PROTOCOLS)
  readonly #activeByProtocol = zeros(PROTOCOLS)
  #reconnections = 0
  #replayed = 0
  #delivered = 0
  #publishesRateLimited = 0
  #slowConsumerDisconnects = 0

  /** Subscribe requests by result: opened, or why not. */
  readonly connections: Readonly<Record<ConnectionResult, number>> = this.#connections
  readonly resyncs: Readonly<Record<ResyncReason, number>> = this.#resyncs
  readonly published: Readonly<Record<EventType, number>> = this.#published
  readonly rejected: Readonly<Record<RejectReason, number>> = this.#rejected
  readonly closes: Readonly<Record<CloseReason, number>> = this.#closes
  /** Streams opened, and open now, by the protocol they came over. */
  readonly openedByProtocol: Readonly<Record<Protocol, number>> = this.#openedByProtocol
  readonly activeByProtocol: Readonly<Record<Protocol, number>> = this.#activeByProtocol
  /** Seconds from publish to the write on the socket, per delivery. */
  readonly deliveryLatency = new Histogram([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
  /** Seconds a stream stayed open, from a second to a day. */
  readonly connectionDuration = new Histogram([1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400])

  /** Connections that arrived with a last event id. */
  get reconnections (): number {
    return this.#reconnections
  }

  /** Events sent again to resuming streams. */
  get replayed (): number {
    return this.#replayed
  }

  /** Events written to streams, one per stream per event. */
  get delivered (): number {
    return this.#delivered
  }

  /** Publish requests refused for their publisher's quota (their events are in `rejected`). */
  get publishesRateLimited (): number {
    return this.#publishesRateLimited
  }

  get slowConsumerDisconnects (): number {
    return this.#slowConsumerDisconnects
  }

  /** A stream opened over `protocol`; `resumed`: with a last event id. */
  connectionOpened (resumed: boolean, protocol: Protocol): void {
    this.#connections.opened++
    this.#openedByProtocol[protocol]++
    this.#activeByProtocol[protocol]++
    if (resumed) this.#reconnections++
  }

  /** A subscribe request that opened no stream (or one told to come back later), and why. */
  connectionRefused (result: ConnectionRefusal): void {
    this.#connections[result]++
  }

  /** A stream over `protocol` ended, for `reason`, having been open since `openedAt` (ms since the epoch). */
  streamClosed (reason: CloseReason, openedAt: number, protocol: Protocol): void {
    this.#closes[reason]++
    this.#activeByProtocol[protocol]--
    this.connectionDuration.observe((Date.now() - openedAt) / 1000)
  }

  /** A stream dropped for holding too many unsent bytes (its close is counted by `streamClosed`). */
  slowConsumerDropped (): void {
    this.#slowConsumerDisconnects++
  }

  /** A resume answered with events.resync. */
  resynced (reason: ResyncReason): void {
    this.#resyncs[reason]++
  }

  /** An event sent again to a resuming stream. */
  eventReplayed (): void {
    this.#replayed++
  }

  /** An event accepted for publishing (over HTTP, or read from the Redis log). */
  eventPublished (type: EventType): void {
    this.#published[type]++
  }

  /** An event written to `streams` streams, `latencySeconds` after it was published. */
  eventDelivered (latencySeconds: number, streams: number): void {
    this.deliveryLatency.observe(latencySeconds, streams)
    this.#delivered += streams
  }

  /** Events refused by the publish endpoint (`unauthorized` counts requests: one each). */
  eventsRejected (reason: Exclude<RejectReason, 'publish_rate_exceeded'>, count: number): void {
    this.#rejected[reason] += count
  }

  /** A publish request of `events` events refused for its publisher's quota. */
  publishRateLimited (events: number): void {
    this.#publishesRateLimited++
    this.#rejected.publish_rate_exceeded += events
  }
}
