import http from 'node:http'
import { createParser } from 'eventsource-parser'
import { ScenarioFailure } from './scenario.js'

/**
 * Interns event ids, so that thousands of clients holding the same few thousand ids keep a small
 * number each instead of a string.
 */
export class IdTable {
  readonly #index = new Map<string, number>()
  readonly ids: string[] = []

  of (id: string): number {
    let index = this.#index.get(id)
    if (index === undefined) {
      index = this.ids.length
      this.ids.push(id)
      this.#index.set(id, index)
    }
    return index
  }
}

/**
 * What a load balancer does for the clients: it sends a connection to a client's home instance
 * unless that one is out of rotation (its readiness failed), and a refused connection on to the next.
 */
export class Balancer {
  readonly #out = new Set<string>()

  constructor (readonly targets: string[]) {}

  /** Takes `url` out of rotation, as a balancer does once its readiness probe fails. */
  remove (url: string): void {
    this.#out.add(url)
  }

  /** Puts a new instance in rotation. */
  add (url: string): void {
    this.targets.push(url)
  }

  /** The target for attempt `attempt` of a client at home on `home`. */
  pick (home: number, attempt: number): string {
    for (let step = 0; step < this.targets.length; step++) {
      const url = this.targets[(home + attempt + step) % this.targets.length]!
      if (!this.#out.has(url)) return url
    }
    return this.targets[(home + attempt) % this.targets.length]!
  }
}

export interface Resync { reason: string, lastEventId: string, afterEvents: number }

/**
 * An event-stream client that behaves like `EventSource`: it keeps the last event id, reconnects
 * after the server's `retry:` time with `Last-Event-ID`, and gives up for good on any answer but
 * `200` (as `EventSource` does). It records what it received, as interned ids, for the scenario's
 * final count, and how long each reconnection took.
 */
export class ResumingClient {
  /** The events received (control events aside), in order, as indices of the IdTable. */
  readonly received: number[] = []
  readonly resyncs: Resync[] = []
  /** From losing a stream to the next one's retry hint (the server has registered it). */
  readonly reconnectMs: number[] = []
  /** When each reconnection was registered, and where. */
  readonly reopened: Array<{ at: number, target: string }> = []
  /** Called with the data of each event received (control events aside). */
  onData: ((data: string) => void) | undefined
  retryMs = 3000
  lastEventId: string | undefined
  failure: string | undefined
  target = ''
  #open = false
  #lostAt: number | undefined
  #attempt = 0
  #request: http.ClientRequest | undefined
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  #onOpen: (() => void) | undefined

  constructor (readonly ids: IdTable, readonly balancer: Balancer, readonly home: number, readonly query: string) {}

  get open (): boolean {
    return this.#open
  }

  /** Connects; resolves once the first stream is registered. */
  async start (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#onOpen = resolve
      this.#connect()
      setTimeout(() => reject(new ScenarioFailure(`client ${this.home}: no stream within 30 s (${this.failure ?? 'no answer'})`)), 30_000).unref()
    })
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#request?.destroy()
  }

  #connect (): void {
    const url = this.balancer.pick(this.home, this.#attempt)
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (this.lastEventId !== undefined) headers['last-event-id'] = this.lastEventId
    let established = false
    const request = http.get(`${url}/events/subscribe?${this.query}`, { agent: false, headers }, response => {
      established = true
      if (response.statusCode !== 200) {
        this.failure = `${url} answered ${response.statusCode} (EventSource would stop reconnecting)`
        response.resume()
        this.stop()
        return
      }
      const parser = createParser({
        onRetry: retry => {
          this.retryMs = retry
          if (this.#open) return
          this.#open = true
          this.#attempt = 0
          this.target = url
          const now = Date.now()
          if (this.#lostAt !== undefined) {
            this.reconnectMs.push(now - this.#lostAt)
            this.reopened.push({ at: now, target: url })
            this.#lostAt = undefined
          }
          this.#onOpen?.()
          this.#onOpen = undefined
        },
        onEvent: event => {
          if (event.id !== undefined) this.lastEventId = event.id
          if (event.event === 'events.resync') {
            const data = JSON.parse(event.data) as { reason: string, lastEventId: string }
            this.resyncs.push({ ...data, afterEvents: this.received.length })
          } else if (event.event === undefined || !event.event.startsWith('events.')) {
            this.received.push(this.ids.of(event.id!))
            this.onData?.(event.data)
          }
        }
      })
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => parser.feed(chunk))
      response.on('error', () => {})
      response.on('close', () => this.#lost(false))
    })
    this.#request = request
    request.on('error', () => {
      // A refused connection goes straight on to the next target, as a balancer retries it.
      if (!established) this.#lost(true)
    })
  }

  #lost (refused: boolean): void {
    this.#open = false
    if (this.#stopped) return
    this.#lostAt ??= Date.now()
    if (refused) this.#attempt++
    const immediately = refused && this.#attempt % this.balancer.targets.length !== 0
    this.#timer = setTimeout(() => this.#connect(), immediately ? 0 : this.retryMs)
  }
}

/** Starts `count` clients, `concurrency` at a time, each registered before the call resolves. */
export async function startClients (count: number, concurrency: number,
  make: (index: number) => ResumingClient): Promise<ResumingClient[]> {
  const clients = Array.from({ length: count }, (_, index) => make(index))
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < clients.length) await clients[next++]!.start()
  }))
  return clients
}

/**
 * Starts `count` clients of one balancer and query, each noting how long after its `sentAt` every
 * event arrived: the delivery latencies, in `latencies` (which the caller may empty between phases).
 */
export async function startTimedClients (count: number, concurrency: number, balancer: Balancer, query: string):
  Promise<{ clients: ResumingClient[], ids: IdTable, latencies: number[] }> {
  const ids = new IdTable()
  const latencies: number[] = []
  const clients = await startClients(count, concurrency, () => {
    const client = new ResumingClient(ids, balancer, 0, query)
    client.onData = data => latencies.push(Date.now() - (JSON.parse(data) as { sentAt: number }).sentAt)
    return client
  })
  return { clients, ids, latencies }
}

/** `<ms>-<seq>` ids in their order: negative when `a` comes first. */
export function compareIds (a: string, b: string): number {
  const [msA, seqA] = a.split('-').map(Number) as [number, number]
  const [msB, seqB] = b.split('-').map(Number) as [number, number]
  return msA - msB || seqA - seqB
}

export interface Audit {
  /** Expected events the client never received, and those of them an `events.resync` owned up to. */
  missing: string[]
  resynced: number
  duplicated: number
  reordered: number
  /** Events received that were not expected (an event whose publisher never heard it was taken). */
  unexpected: number
  /** What went wrong, or undefined when every expected event arrived once, in order, or was resynced. */
  problem: string | undefined
}

/**
 * Checks one client against `expected`, the ids every client should have received in order. A
 * missing event is forgiven where the client was told so in band: an `events.resync` came just
 * where the missing one belonged, between the events received before and after it.
 */
export function audit (client: ResumingClient, expected: string[], unexpectedAllowed = 0): Audit {
  const received = client.received.map(index => client.ids.ids[index]!)
  const wanted = new Set(expected)
  const seen = new Set<string>()
  let duplicated = 0
  let reordered = 0
  let unexpected = 0
  received.forEach((id, at) => {
    if (seen.has(id)) duplicated++
    else if (at > 0 && compareIds(id, received[at - 1]!) < 0) reordered++
    if (!wanted.has(id)) unexpected++
    seen.add(id)
  })
  const missing = expected.filter(id => !seen.has(id))
  let resynced = 0
  for (const id of missing) {
    // The missing event belonged just before the first received event after it: the resync must be there.
    const after = received.findIndex(other => compareIds(other, id) > 0)
    const place = after === -1 ? received.length : after
    if (client.resyncs.some(resync => resync.afterEvents === place)) resynced++
  }
  const unexplained = missing.length - resynced
  const problem = unexplained + duplicated + reordered + Math.max(0, unexpected - unexpectedAllowed) === 0
    ? undefined
    : `client ${client.home} (last on ${client.target}): ${unexplained} missing without a resync (first: ${missing.slice(0, 3).join(', ')}), ` +
      `${duplicated} duplicated, ${reordered} out of order, ${unexpected} unexpected; ${received.length} received of ${expected.length}`
  return { missing, resynced, duplicated, reordered, unexpected, problem }
}
