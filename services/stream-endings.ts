import { DeadlineBuckets } from './deadline-buckets.js'
import type { SseConnection } from './sse-connection.js'

/**
 * The streams a broker ends by itself, before their clients go: when their token expires, when they
 * reach their age (`maxStreamAgeMs`, ±20% so that streams opened together do not end together).
 */
export class StreamDeadlines {
  readonly #expiring = new DeadlineBuckets<SseConnection>()
  readonly #aging = new DeadlineBuckets<SseConnection>()
  readonly #maxAgeMs: number | undefined

  constructor (maxAgeMs: number | undefined) {
    this.#maxAgeMs = maxAgeMs
  }

  track (connection: SseConnection): void {
    if (connection.acceptedUntil !== undefined) this.#expiring.add(connection, connection.acceptedUntil)
    if (this.#maxAgeMs !== undefined) this.#aging.add(connection, connection.openedAt + this.#maxAgeMs * (0.8 + 0.4 * Math.random()))
  }

  forget (connection: SseConnection): void {
    this.#expiring.delete(connection)
    this.#aging.delete(connection)
  }

  /** The streams whose token is no longer accepted at `now`; each stays until forgotten. */
  tokenExpired (now: number): Iterable<SseConnection> {
    return this.#expiring.due(now)
  }

  /** The streams past their age at `now`; each stays until forgotten. */
  aged (now: number): Iterable<SseConnection> {
    return this.#aging.due(now)
  }
}

/** How often a drain ends its next share of the streams. */
const DRAIN_STEP_MS = 50

/**
 * Calls `end` on every item, spread evenly over `windowMs` (in steps of 50 ms), so that the clients
 * of a draining instance reconnect elsewhere as a stream, not as one spike.
 */
export async function endSpread<T> (items: readonly T[], windowMs: number, end: (item: T) => void): Promise<void> {
  const perStep = Math.max(1, Math.ceil(items.length * DRAIN_STEP_MS / Math.max(windowMs, DRAIN_STEP_MS)))
  for (let start = 0; start < items.length; start += perStep) {
    if (start > 0) await new Promise(resolve => setTimeout(resolve, DRAIN_STEP_MS))
    for (const item of items.slice(start, start + perStep)) end(item)
  }
}
