export interface PublishQuotaOptions {
  /** Events a second each publisher may publish; also its burst, what a full bucket holds. */
  ratePerSecond: number
  /** Most buckets held at once: beyond it, the least recently used publisher is forgotten. */
  maxPublishers: number
  /** Milliseconds, monotonic (injected by tests). */
  now?: () => number
}

export type QuotaVerdict = { ok: true } | { ok: false, retryAfterS: number }

interface Bucket { tokens: number, at: number }

/** A bucket left alone this long has refilled (the burst is one second's rate): forgetting it changes nothing. */
const REFILL_MS = 1000

/**
 * A token bucket per publisher. Buckets are kept in a Map in order of last use, so that the idle ones
 * (full again) and, beyond `maxPublishers`, the least recently used are dropped from its front.
 */
export class PublishQuota {
  readonly #rate: number
  readonly #maxPublishers: number
  readonly #now: () => number
  readonly #buckets = new Map<string, Bucket>()

  constructor (options: PublishQuotaOptions) {
    for (const name of ['ratePerSecond', 'maxPublishers'] as const) {
      if (!Number.isInteger(options[name]) || options[name] < 1) throw new TypeError(`publish quota: ${name} must be a positive integer`)
    }
    this.#rate = options.ratePerSecond
    this.#maxPublishers = options.maxPublishers
    this.#now = options.now ?? (() => performance.now())
  }

  /** Buckets held now. */
  get size (): number {
    return this.#buckets.size
  }

  /** Takes `events` from the publisher's bucket, all of them or, when fewer are left, none. */
  take (publisher: string, events: number): QuotaVerdict {
    if (events > this.#rate) throw new RangeError(`a batch of ${events} events exceeds the burst of ${this.#rate}: it could never be published`)
    const now = this.#now()
    this.#forgetIdle(now)
    const bucket = this.#buckets.get(publisher) ?? { tokens: this.#rate, at: now }
    this.#buckets.delete(publisher)
    this.#buckets.set(publisher, bucket) // the most recently used, last
    if (this.#buckets.size > this.#maxPublishers) this.#buckets.delete(this.#buckets.keys().next().value!)
    bucket.tokens = Math.min(this.#rate, bucket.tokens + (now - bucket.at) * this.#rate / 1000)
    bucket.at = now
    if (bucket.tokens < events) return { ok: false, retryAfterS: Math.ceil((events - bucket.tokens) / this.#rate) }
    bucket.tokens -= events
    return { ok: true }
  }

  #forgetIdle (now: number): void {
    for (const [publisher, bucket] of this.#buckets) {
      if (now - bucket.at < REFILL_MS) return
      this.#buckets.delete(publisher)
    }
  }
}
