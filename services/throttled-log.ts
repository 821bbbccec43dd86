/** The part of a pino logger that the services write to. */
export interface Logger {
  warn (fields: object, message: string): void
  error (fields: object, message: string): void
}

/**
 * Writes the first line of each kind (its message) at once, and then at most one an interval, which
 * says how many lines it stands for (`suppressed`): a problem that repeats, such as a flood of foreign
 * entries in the Redis log, is a line a minute, not a line each. The counters say how many there were
 * in all. Messages are the kinds: they must come from a fixed set, never from what was received.
 */
export class ThrottledLog implements Logger {
  readonly #kinds = new Map<string, { quietUntil: number, suppressed: number }>()

  constructor (readonly log: Logger, readonly now: () => number = Date.now, readonly intervalMs = 60_000) {}

  warn (fields: object, message: string): void {
    this.#write('warn', fields, message)
  }

  error (fields: object, message: string): void {
    this.#write('error', fields, message)
  }

  #write (level: keyof Logger, fields: object, message: string): void {
    const now = this.now()
    const kind = this.#kinds.get(message)
    if (kind !== undefined && now < kind.quietUntil) {
      kind.suppressed++
      return
    }
    this.log[level](kind === undefined || kind.suppressed === 0 ? fields : { ...fields, suppressed: kind.suppressed }, message)
    this.#kinds.set(message, { quietUntil: now + this.intervalMs, suppressed: 0 })
  }
}
