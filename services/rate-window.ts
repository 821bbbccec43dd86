/** Counts over the last minute, in one-second buckets, for per-second rates in stats (totals live in DeliveryMetrics). */
export class RateWindow {
  static readonly SECONDS = 60
  readonly #buckets = new Float64Array(RateWindow.SECONDS)
  #second = 0

  add (count: number, now: number = Date.now()): void {
    this.#advance(Math.floor(now / 1000))
    this.#buckets[this.#second % RateWindow.SECONDS]! += count
  }

  /** The mean rate over the last full minute. */
  perSecond (now: number = Date.now()): number {
    this.#advance(Math.floor(now / 1000))
    let sum = 0
    for (const count of this.#buckets) sum += count
    return sum / RateWindow.SECONDS
  }

  #advance (second: number): void {
    if (second <= this.#second) return
    const stale = Math.min(second - this.#second, RateWindow.SECONDS)
    for (let i = 1; i <= stale; i++) this.#buckets[(this.#second + i) % RateWindow.SECONDS] = 0
    this.#second = second
  }
}
