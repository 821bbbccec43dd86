/**
 * Things that fall due at a time, kept by the second they do: one shared timer a second asks for what
 * is due, instead of a timer for each (which would cost memory and a wake-up per connection).
 */
export class DeadlineBuckets<T> {
  readonly #bySecond = new Map<number, Set<T>>()
  readonly #secondOf = new Map<T, number>()

  /** `dueAt`: ms since the epoch; the item is due from the next whole second on. */
  add (item: T, dueAt: number): void {
    const second = Math.ceil(dueAt / 1000)
    let due = this.#bySecond.get(second)
    if (due === undefined) this.#bySecond.set(second, (due = new Set()))
    due.add(item)
    this.#secondOf.set(item, second)
  }

  /** Forgets an item; one never added is ignored. */
  delete (item: T): void {
    const second = this.#secondOf.get(item)
    if (second === undefined) return
    this.#secondOf.delete(item)
    const due = this.#bySecond.get(second)!
    due.delete(item)
    if (due.size === 0) this.#bySecond.delete(second)
  }

  /** The items due at `now` (ms since the epoch). They stay until deleted: the caller deletes what it handles. */
  * due (now: number): Generator<T> {
    for (const [second, due] of this.#bySecond) {
      if (second * 1000 <= now) yield * due
    }
  }
}
