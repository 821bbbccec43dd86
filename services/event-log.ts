import { compareEventIds, type EventId } from './event-id.js'

/** One published event as kept for replay: what routing needs, and its frame ready to write. */
export interface LoggedEvent {
  readonly id: EventId
  /** When it was published (ms since the epoch): what the age bound is measured against. */
  readonly at: number
  readonly streamId: string | undefined
  readonly users: readonly string[]
  readonly frame: Buffer
}

export interface EventLogLimits {
  maxEvents: number
  maxAgeMs: number
  maxBytes: number
}

/** Where a resume stands: replay from `index`, or the log cannot prove that nothing was missed. */
export type ResumePoint =
  | { ok: true, index: number }
  | { ok: false, reason: 'expired' | 'unknown_id' }

/**
 * The recent history, oldest first, bounded by count, age and bytes whatever the publish rate.
 * It remembers the newest id it let go, so that it can tell a client that is exactly up to date with
 * the evicted past (nothing missed) from one that is older (events lost to it).
 */
export class EventLog {
  #events: LoggedEvent[] = []
  #head = 0 // index of the oldest retained event; the slots before it are released lazily
  #bytes = 0
  #lastEvicted: EventId | undefined

  constructor (readonly limits: EventLogLimits) {}

  get size (): number {
    return this.#events.length - this.#head
  }

  get bytes (): number {
    return this.#bytes
  }

  /** The oldest retained event, if any. */
  get oldest (): LoggedEvent | undefined {
    return this.#events[this.#head]
  }

  /** The newest id ever logged, retained or not. */
  get newestId (): EventId | undefined {
    return this.size > 0 ? this.#events[this.#events.length - 1]!.id : this.#lastEvicted
  }

  /**
   * Drops the events up to `id`, and records that they existed: a history loaded from elsewhere
   * (Redis) starts after them, so a client resuming from exactly `id` has missed nothing, and one
   * resuming from before it has.
   */
  forgetUpTo (id: EventId): void {
    while (this.size > 0 && compareEventIds(this.#events[this.#head]!.id, id) <= 0) this.#evictOldest()
    if (this.#lastEvicted === undefined || compareEventIds(id, this.#lastEvicted) > 0) this.#lastEvicted = id
  }

  append (event: LoggedEvent): void {
    this.#events.push(event)
    this.#bytes += event.frame.length
    this.prune(event.at)
  }

  /** Drops what is too old, too many or too large. */
  prune (now: number = Date.now()): void {
    const { maxEvents, maxAgeMs, maxBytes } = this.limits
    while (this.size > 0) {
      const oldest = this.#events[this.#head]!
      if (this.size <= maxEvents && this.#bytes <= maxBytes && now - oldest.at <= maxAgeMs) break
      this.#evictOldest()
    }
    // Compact once the released slots outnumber the live ones: amortised O(1) per event.
    if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#head)
      this.#head = 0
    }
  }

  #evictOldest (): void {
    const oldest = this.#events[this.#head++]!
    this.#bytes -= oldest.frame.length
    this.#lastEvicted = oldest.id
  }

  /** The retained event at a position returned by `resumeAfter` (or after it); undefined past the end. */
  at (index: number): LoggedEvent | undefined {
    return this.#events[this.#head + index]
  }

  /** Where to replay from for a client whose last event is `id`. */
  resumeAfter (id: EventId, now: number = Date.now()): ResumePoint {
    this.prune(now)
    const newest = this.newestId
    if (newest === undefined || compareEventIds(id, newest) > 0) return { ok: false, reason: 'unknown_id' }
    if (this.#lastEvicted !== undefined) {
      const order = compareEventIds(id, this.#lastEvicted)
      if (order < 0) return { ok: false, reason: 'expired' }
      if (order === 0) return { ok: true, index: 0 }
    }
    const index = this.#search(id)
    return index === undefined ? { ok: false, reason: 'unknown_id' } : { ok: true, index: index + 1 }
  }

  /** Binary search over the retained events, which are in id order. */
  #search (id: EventId): number | undefined {
    let low = 0
    let high = this.size - 1
    while (low <= high) {
      const middle = (low + high) >>> 1
      const order = compareEventIds(this.at(middle)!.id, id)
      if (order === 0) return middle
      if (order < 0) low = middle + 1
      else high = middle - 1
    }
    return undefined
  }
}
