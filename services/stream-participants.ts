/**
 * Who takes part in each stream, so that `users=` subscribers also get the events that carry only a
 * `streamId`. Bounded: past `capacity` streams, the one least recently touched is forgotten.
 */
export class StreamParticipants {
  readonly #users = new Map<string, readonly string[]>()

  constructor (readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer')
  }

  get size (): number {
    return this.#users.size
  }

  /** The users known for a stream, and marks it as recently used. */
  get (streamId: string): readonly string[] {
    const users = this.#users.get(streamId)
    if (users === undefined) return []
    this.#users.delete(streamId)
    this.#users.set(streamId, users)
    return users
  }

  /** Adds users to a stream's participants; returns them all. */
  remember (streamId: string, users: readonly string[]): readonly string[] {
    const known = this.get(streamId)
    const merged = users.every(user => known.includes(user)) ? known : [...new Set([...known, ...users])]
    this.#users.set(streamId, merged)
    if (this.#users.size > this.capacity) {
      this.#users.delete(this.#users.keys().next().value as string)
    }
    return merged
  }
}
