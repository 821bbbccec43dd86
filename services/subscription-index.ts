/** What one connection asked for. An event matches when any part matches (union). */
export interface Filters {
  all: boolean
  streams: readonly string[]
  users: readonly string[]
}

/** A connection as the index sees it: the filters it was added with and a delivery mark. */
export interface Subscriber {
  readonly filters: Filters
  /** The last match round that visited this subscriber; stops a second visit in the same round. */
  matchRound: number
}

export interface SubscriptionCounts {
  total: number
  all: number
  streams: number
  users: number
}

/**
 * Finds the subscribers of an event in time proportional to the subscribers that match it,
 * whatever the number of connections: one set for `all`, one per stream id and one per user key.
 */
export class SubscriptionIndex<S extends Subscriber> {
  readonly #all = new Set<S>()
  readonly #byStream = new Map<string, Set<S>>()
  readonly #byUser = new Map<string, Set<S>>()
  #round = 0
  #total = 0
  #withStreams = 0
  #withUsers = 0

  add (subscriber: S): void {
    const { all, streams, users } = subscriber.filters
    if (all) this.#all.add(subscriber)
    for (const id of streams) addTo(this.#byStream, id, subscriber)
    for (const key of users) addTo(this.#byUser, key, subscriber)
    this.#total++
    if (streams.length > 0) this.#withStreams++
    if (users.length > 0) this.#withUsers++
  }

  remove (subscriber: S): void {
    const { all, streams, users } = subscriber.filters
    if (all) this.#all.delete(subscriber)
    for (const id of streams) removeFrom(this.#byStream, id, subscriber)
    for (const key of users) removeFrom(this.#byUser, key, subscriber)
    this.#total--
    if (streams.length > 0) this.#withStreams--
    if (users.length > 0) this.#withUsers--
  }

  /** Calls `visit` once for each subscriber of an event about `streamId` (if any) that concerns `users`. */
  forEachMatch (streamId: string | undefined, users: Iterable<string>, visit: (subscriber: S) => void): void {
    const round = ++this.#round
    const once = (subscriber: S): void => {
      if (subscriber.matchRound === round) return
      subscriber.matchRound = round
      visit(subscriber)
    }
    this.#all.forEach(once)
    if (streamId !== undefined) this.#byStream.get(streamId)?.forEach(once)
    for (const key of users) this.#byUser.get(key)?.forEach(once)
  }

  counts (): SubscriptionCounts {
    return { total: this.#total, all: this.#all.size, streams: this.#withStreams, users: this.#withUsers }
  }
}

function addTo<S> (map: Map<string, Set<S>>, key: string, subscriber: S): void {
  let set = map.get(key)
  if (set === undefined) map.set(key, (set = new Set()))
  set.add(subscriber)
}

function removeFrom<S> (map: Map<string, Set<S>>, key: string, subscriber: S): void {
  const set = map.get(key)! // there: only added subscribers are removed
  set.delete(subscriber)
  if (set.size === 0) map.delete(key)
}
