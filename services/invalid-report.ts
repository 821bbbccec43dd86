import type { ValidationProblem } from './event-schema.js'

/** Bytes of JSON the listed events may take: a 400 stays within 16 KiB, its message and counts included. */
export const MAX_LISTED_BYTES = 14 * 1024

export interface InvalidEvent {
  index: number
  problems: ValidationProblem[]
  /** Whether the event has problems that are not listed. */
  moreProblems: boolean
}

const bytesOf = (value: unknown): number => Buffer.byteLength(JSON.stringify(value))

/**
 * The invalid events of a batch, for its 400: all of them counted, the first ones listed with their
 * first problems while those fit in `maxBytes` of JSON (the first problem of the first always is), so
 * that an invalid megabyte is not answered with several.
 */
export class InvalidReport {
  readonly invalid: InvalidEvent[] = []
  invalidEvents = 0
  #bytes = 0
  #full = false

  constructor (readonly maxBytes = MAX_LISTED_BYTES) {}

  /** No further event will be listed: its problems need not be looked for. */
  get full (): boolean {
    return this.#full
  }

  /** Invalid events counted but not listed. */
  get unlistedEvents (): number {
    return this.invalidEvents - this.invalid.length
  }

  add (index: number, problems: readonly ValidationProblem[], more: boolean): void {
    this.invalidEvents++
    if (this.#full) return
    const listed: InvalidEvent = { index, problems: [], moreProblems: more }
    let bytes = bytesOf(listed) + 1 // and a comma
    for (const problem of problems) {
      const size = bytesOf(problem) + 1
      if (this.#bytes + bytes + size > this.maxBytes && (this.invalid.length > 0 || listed.problems.length > 0)) {
        this.#full = true
        listed.moreProblems = true
        break
      }
      listed.problems.push(problem)
      bytes += size
    }
    if (listed.problems.length === 0) return
    this.invalid.push(listed)
    this.#bytes += bytes
  }
}
