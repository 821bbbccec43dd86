/**
 * Event ids in Redis stream id form, `<milliseconds>-<sequence>`: strictly increasing, and compared
 * as pairs of numbers, never as strings ("9-0" comes before "10-0").
 */
export interface EventId {
  readonly ms: number
  readonly seq: number
}

const ID_FORMAT = /^(\d{1,16})-(\d{1,16})$/

/** The id a client sent back, or undefined when it is not one of ours. */
export function parseEventId (text: string): EventId | undefined {
  const match = ID_FORMAT.exec(text)
  if (match === null) return undefined
  const ms = Number(match[1])
  const seq = Number(match[2])
  return Number.isSafeInteger(ms) && Number.isSafeInteger(seq) ? { ms, seq } : undefined
}

export function formatEventId (id: EventId): string {
  return `${id.ms}-${id.seq}`
}

/** Negative, zero or positive as `a` comes before, is, or comes after `b`. */
export function compareEventIds (a: EventId, b: EventId): number {
  return a.ms === b.ms ? a.seq - b.seq : a.ms - b.ms
}

/** Hands out strictly increasing ids, even when the clock stands still or steps back. */
export class EventIdGenerator {
  #ms = 0
  #seq = 0

  next (now: number = Date.now()): EventId {
    if (now > this.#ms) {
      this.#ms = now
      this.#seq = 0
    } else {
      this.#seq++
    }
    return { ms: this.#ms, seq: this.#seq }
  }
}
