import { EVENT_TYPES, RESYNC_REASONS, type EventType } from './protocol.js'

/** The one place delivery is counted: `/events/stats` and `/metrics` both read it. */

export const CONNECTION_RESULTS = ['opened', 'bad_request', 'unauthorized', 'forbidden', 'draining', 'unavailable', 'too_many_per_ip', 'over_capacity'] as const
export type ConnectionResult = typeof CONNECTION_RESULTS[number]

export { RESYNC_REASONS, type ResyncReason } from './protocol.js'

export const REJECT_REASONS = ['invalid_event', 'invalid_batch', 'unauthorized', 'publish_rate_exceeded'] as const
export type RejectReason = typeof REJECT_REASONS[number]

export const CLOSE_REASONS = ['client_closed', 'slow_consumer', 'drain', 'token_expired', 'reader_behind'] as const
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

export class DeliveryMetrics {
  readonly connections = zeros(CONNECTION_RESULTS)
  /** Connections that arrived with a last event id. */
  reconnections = 0
  readonly resyncs = zeros(RESYNC_REASONS)
  replayed = 0
  readonly published = zeros(EVENT_TYPES as readonly EventType[])
  delivered = 0
  readonly rejected = zeros(REJECT_REASONS)
  /** Publish requests refused for their publisher's quota (their events are in `rejected`). */
  publishesRateLimited = 0
  slowConsumerDisconnects = 0
  readonly closes = zeros(CLOSE_REASONS)
  /** Seconds from publish to the write on the socket, per delivery. */
  readonly deliveryLatency = new Histogram([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
  /** Seconds a stream stayed open, from a second to a day. */
  readonly connectionDuration = new Histogram([1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400])
}
