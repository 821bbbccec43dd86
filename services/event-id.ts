/**
 * Event ids in Redis stream id form, `<milliseconds>-<sequence>`: strictly increasing even when the
 * clock stands still or steps back, and comparable as numbers (never as strings: "9-0" < "10-0").
 */
export class EventIdGenerator {
  #ms = 0
  #seq = 0

  next (now: number = Date.now()): string {
    if (now > this.#ms) {
      this.#ms = now
      this.#seq = 0
    } else {
      this.#seq++
    }
    return `${this.#ms}-${this.#seq}`
  }
}
