import { performance } from 'node:perf_hooks'
import { routeOf, type Envelope, type EventType } from './event-schema.js'
import { CLOSING, RESYNC, type ControlEventData } from './protocol.js'
import { compareEventIds, EventIdGenerator, formatEventId, type EventId } from './event-id.js'
import { EventLog, type EventLogLimits, type LoggedEvent } from './event-log.js'
import { encodeEvent } from './sse-frame.js'
import { RateWindow } from './rate-window.js'
import type { SseConnection } from './sse-connection.js'
import { Frame, WriteBatch } from './transport/frame.js'
import { DeliveryMetrics, type CloseReason, type ResyncReason } from './delivery-metrics.js'
import { replay, type ReplayLimits, type ReplaySource } from './replay.js'
import { StreamParticipants } from './stream-participants.js'
import { endSpread, StreamDeadlines } from './stream-endings.js'
import { SubscriptionIndex, type SubscriptionCounts } from './subscription-index.js'

/**
 * With the replay's limits: `maxBufferedBytes` also closes a live connection holding more unsent bytes
 * than that rather than writing to it; `upstreamWaitMs` (with Redis) lets a resume from an id this
 * broker has not received yet wait for it, since the client comes from an instance whose reader was a
 * little ahead (unset, one instance: such an id is unknown at once).
 */
export interface EventBrokerOptions extends ReplayLimits {
  /** How many streams' participants to remember for routing by user. */
  maxTrackedStreams: number
  history: EventLogLimits
  /** Longest wait for more events before a flush on a busy server (see #scheduleFlush); default 20. */
  maxLingerMs?: number
  /**
   * A stream is ended (see `endAged`) after about this long, ±20% so that streams opened together do
   * not end together: long-lived streams never move to a new instance by themselves. Unset: never.
   */
  maxStreamAgeMs?: number
}

/** An event with its id and the users it concerns, ready to fan out: from `publish`, or from Redis. */
export interface IdentifiedEvent {
  readonly id: EventId
  readonly type: EventType
  /** The event's data, serialised as JSON. */
  readonly data: string
  /** Undefined for an event that reaches no `streams=` subscriber (an admin event, one sent `to` accounts). */
  readonly streamId: string | undefined
  readonly users: readonly string[]
}

export interface BrokerStats {
  connections: SubscriptionCounts & { replaying: number }
  published: { total: number, perSecond: number }
  delivered: { total: number, perSecond: number }
  history: { events: number, bytes: number, oldestId: string | null, newestId: string | null }
  trackedStreams: number
}

/** Longest client-sent id echoed back in `events.resync`. */
const MAX_ECHOED_ID = 64
/** The last frame of a stream whose token has expired: the client fetches a new token. */
const TOKEN_EXPIRED = new Frame(encodeEvent(undefined, CLOSING, JSON.stringify({ reason: 'token_expired' } satisfies ControlEventData[typeof CLOSING])))

/**
 * The in-process hub: gives each published event its id, serialises it once, logs it, and writes
 * that one Buffer to every connection whose filters match. Resuming connections get what they missed
 * from the log first, then join the live fan-out with nothing lost or doubled. How a frame goes on
 * the wire is each connection's sink's business (services/transport): the broker hands every sink
 * the same Frame of an event, and says where a flush's writes begin and end (a WriteBatch).
 */
export class EventBroker {
  readonly #index = new SubscriptionIndex<SseConnection>()
  readonly #connections = new Set<SseConnection>()
  readonly #participants: StreamParticipants
  readonly #ids = new EventIdGenerator()
  readonly #log: EventLog
  readonly #published = new RateWindow()
  readonly #delivered = new RateWindow()
  readonly #options: EventBrokerOptions
  /** The counters and histograms that stats and /metrics read. */
  readonly metrics = new DeliveryMetrics()
  #draining = false
  /** The newest event written out (or preloaded): what a resume may read up to. */
  #newestFlushed: EventId | undefined
  /** Published, logged, not yet written: flushed together once the current turn of the event loop ends. */
  #outbox: LoggedEvent[] = []
  /** When each outbox event was published (performance.now()), for the delivery latency. */
  #outboxTimes: number[] = []
  #flushScheduled = false
  #flushes = 0
  #lastFlushEnded = 0
  #lastFlushTook = 0
  /** When streams' tokens expire and when they reach their age: checked once a second, not a timer each. */
  readonly #deadlines: StreamDeadlines
  /** What a resume reads of this broker. */
  readonly #replaySource: ReplaySource

  constructor (options: EventBrokerOptions) {
    this.#options = options
    this.#participants = new StreamParticipants(options.maxTrackedStreams)
    this.#log = new EventLog(options.history)
    this.#deadlines = new StreamDeadlines(options.maxStreamAgeMs)
    const outbox = (): readonly LoggedEvent[] => this.#outbox
    this.#replaySource = {
      log: this.#log,
      get unflushed () { return outbox().length },
      received: id => this.#received(id),
      isOpen: connection => this.#isOpen(connection),
      replayed: () => this.metrics.eventReplayed()
    }
  }

  /** True once shutdown has begun: readiness fails and new streams are sent elsewhere. */
  get draining (): boolean {
    return this.#draining
  }

  /**
   * Takes a new stream: replays what it missed after `lastEventId` (or tells it to resync), then
   * delivers live events. Resolves when the stream is live, or has closed during its replay.
   */
  async open (connection: SseConnection, lastEventId: string | undefined): Promise<void> {
    this.#connections.add(connection)
    this.#deadlines.track(connection)
    if (lastEventId !== undefined) await this.#replay(connection, lastEventId)
    if (!this.#isOpen(connection)) return
    connection.live = true
    this.#index.add(connection)
  }

  /** Still ours to write to: not closed by its client, not ended by a drain. */
  #isOpen (connection: SseConnection): boolean {
    return this.#connections.has(connection) && !connection.sink.closed
  }

  /** Forgets a stream, the first time with the reason it ended. */
  remove (connection: SseConnection, reason: CloseReason = 'client_closed'): void {
    if (!this.#connections.delete(connection)) return
    if (connection.live) this.#index.remove(connection)
    this.#deadlines.forget(connection)
    connection.closeReason = reason
    this.metrics.streamClosed(reason, connection.openedAt, connection.sink.protocol)
  }

  /** Ends, with `events.closing`, the streams whose token is no longer accepted at `now`. */
  expire (now: number = Date.now()): void {
    for (const connection of this.#deadlines.tokenExpired(now)) this.#end(connection, 'token_expired', TOKEN_EXPIRED)
  }

  /**
   * Ends cleanly, as a drain does, the streams past their age at `now` (`maxStreamAgeMs`); `farewell`
   * gives the last frame of each (a retry hint). Their clients resume with their last event id and
   * spread over the instances, new ones included.
   */
  endAged (farewell: () => Buffer, now: number = Date.now()): void {
    for (const connection of this.#deadlines.aged(now)) this.#end(connection, 'max_age', new Frame(farewell()))
  }

  /** Ends a stream cleanly with its last frame. */
  #end (connection: SseConnection, reason: CloseReason, last: Frame): void {
    this.remove(connection, reason)
    connection.sink.write(last)
    connection.sink.end()
  }

  /** Who takes part in a stream, as far as this broker knows. */
  participantsOf (streamId: string): readonly string[] {
    return this.#participants.get(streamId)
  }

  /** Streams open now, live or replaying. */
  get size (): number {
    return this.#connections.size
  }

  /** Bytes written to the streams and not yet taken by their clients. */
  bufferedBytes (): number {
    let total = 0
    for (const connection of this.#connections) total += connection.sink.buffered
    return total
  }

  /** Delivers validated events in order; returns the id given to each. */
  publish (envelopes: readonly Envelope[]): string[] {
    // All serialised first: should one fail, none of the batch is taken in.
    const data = envelopes.map(envelope => JSON.stringify(envelope.data))
    return envelopes.map((envelope, i) => this.#publishOne(envelope, data[i]!))
  }

  #publishOne (envelope: Envelope, data: string): string {
    const id = this.#ids.next()
    const { streamId, accounts } = routeOf(envelope)
    const users = streamId === undefined ? accounts : this.#participate(streamId, accounts)
    this.#accept({ id, type: envelope.event, data, streamId, users }, performance.now())
    return formatEventId(id)
  }

  /** Logs and fans out an event that already has its id and users: one read from the Redis log. */
  ingest (event: IdentifiedEvent): void {
    // The latency counts from when the log gave the event its id, on the publishing instance.
    this.#accept(event, performance.now() - Math.max(0, Date.now() - event.id.ms))
  }

  /** Adds an event to the history only, not delivered: what the Redis log held at start-up. */
  preload (event: IdentifiedEvent): void {
    this.#log.append(logged(event))
    this.#newestFlushed = event.id
  }

  /** The history loaded from elsewhere starts after `id`: a resume from it has missed nothing. */
  forgetUpTo (id: EventId): void {
    this.#log.forgetUpTo(id)
    if (!this.#received(id)) this.#newestFlushed = id
  }

  /**
   * The upstream log dropped events up to `id` before this broker read them (its reader was away
   * longer than the log's retention). The history stops there, and every open stream is told to
   * refetch its state: it missed events.
   */
  missedUpTo (id: EventId): void {
    this.#flush()
    this.forgetUpTo(id)
    for (const connection of this.#connections) this.#resync(connection, 'gap', '')
  }

  #accept (event: IdentifiedEvent, publishedAt: number): void {
    const entry = logged(event)
    this.#log.append(entry)
    this.#outbox.push(entry)
    this.#outboxTimes.push(publishedAt)
    this.#published.add(1)
    this.metrics.eventPublished(event.type)
    if (!this.#flushScheduled) this.#scheduleFlush()
  }

  /**
   * A flush runs once the current turn of the event loop is over. When the last flush was long (many
   * connections), the next one waits about as long again, at most `maxLingerMs`: the server then
   * spends half its time taking events in and half writing them out, and each write carries more
   * events. An idle server flushes at once.
   */
  #scheduleFlush (): void {
    this.#flushScheduled = true
    const linger = Math.min(this.#lastFlushTook, this.#options.maxLingerMs ?? 20) - (performance.now() - this.#lastFlushEnded)
    if (linger >= 1) setTimeout(this.#flush, linger)
    else setImmediate(this.#flush)
  }

  /**
   * Writes every event published since the last flush to the connections it matches: one Frame per
   * event, shared by all of them. When there are several events, their writes are one WriteBatch, so
   * that a sink may send all it gets from the flush at once.
   */
  readonly #flush = (): void => {
    this.#flushScheduled = false
    const events = this.#outbox
    const times = this.#outboxTimes
    if (events.length === 0) return
    const started = performance.now()
    this.#outbox = []
    this.#outboxTimes = []
    this.#newestFlushed = events[events.length - 1]!.id
    const flush = ++this.#flushes
    const batch = events.length > 1 ? new WriteBatch() : undefined
    let delivered = 0
    for (const [position, event] of events.entries()) {
      const frame = new Frame(event.frame, batch)
      const before = delivered
      this.#index.forEachMatch(event.streamId, event.users, connection => {
        if (connection.flushMark !== flush) {
          if (this.#evictIfSlow(connection)) return
          connection.flushMark = flush
        }
        connection.sink.write(frame)
        connection.eventsSent++
        delivered++
      })
      this.metrics.eventDelivered((performance.now() - times[position]!) / 1000, delivered - before)
    }
    batch?.end()
    this.#delivered.add(delivered)
    this.#lastFlushEnded = performance.now()
    this.#lastFlushTook = this.#lastFlushEnded - started
  }

  /** Adds accounts to a stream's participants; returns them all. */
  #participate (streamId: string, accounts: readonly string[]): readonly string[] {
    return accounts.length > 0 ? this.#participants.remember(streamId, accounts) : this.#participants.get(streamId)
  }

  /**
   * Drops a client that already holds more unsent bytes than it may (it resumes from its last complete
   * event), so that one slow client never holds memory or others up.
   */
  #evictIfSlow (connection: SseConnection): boolean {
    if (connection.sink.buffered <= this.#options.maxBufferedBytes) return false
    this.metrics.slowConsumerDropped()
    this.remove(connection, 'slow_consumer')
    connection.sink.abort()
    return true
  }

  async #replay (connection: SseConnection, lastEventId: string): Promise<void> {
    const outcome = await replay(this.#replaySource, connection, lastEventId, this.#options)
    if (outcome === 'caught_up' || outcome === 'closed') return
    if (outcome === 'reader_behind') {
      // It comes back after the retry hint, here or elsewhere, once a reader has the client's id.
      this.remove(connection, 'reader_behind')
      connection.sink.end()
      return
    }
    this.#resync(connection, outcome, lastEventId)
  }

  /** Whether the events up to `id` have been flushed here (or were never to be). */
  #received (id: EventId): boolean {
    return this.#newestFlushed !== undefined && compareEventIds(this.#newestFlushed, id) >= 0
  }

  /** Tells the client to refetch its state; its next resume starts from the newest event. */
  #resync (connection: SseConnection, reason: ResyncReason, lastEventId: string): void {
    this.metrics.resynced(reason)
    const newest = this.#log.newestId
    const data = JSON.stringify({ reason, lastEventId: lastEventId.slice(0, MAX_ECHOED_ID) } satisfies ControlEventData[typeof RESYNC])
    connection.sink.write(new Frame(encodeEvent(newest === undefined ? '' : formatEventId(newest), RESYNC, data)))
  }

  /** Writes the same frame (a heartbeat) to every live connection; a replay needs none. */
  broadcast (frame: Buffer): void {
    const shared = new Frame(frame)
    for (const connection of this.#connections) {
      if (connection.live && !this.#evictIfSlow(connection)) connection.sink.write(shared)
    }
  }

  /** Fails readiness from now on; the streams stay open until `endAll`. */
  beginDrain (): void {
    this.#draining = true
  }

  /**
   * Ends every open stream cleanly, spread evenly over `windowMs` so that the reconnections do not
   * arrive elsewhere as one spike. `farewell` gives the last frame of each (a retry hint). Before the
   * first ends, every stream's connection is retired (HTTP/2: GOAWAY to each session), so that every
   * reconnection opens a new connection, which the load balancer sends to another instance.
   */
  async endAll (windowMs: number, farewell: () => Buffer): Promise<void> {
    this.#flush() // what was published before the drain still goes out
    const streams = [...this.#connections]
    for (const connection of streams) connection.sink.retireConnection()
    await endSpread(streams, windowMs, connection => {
      if (this.#connections.has(connection)) this.#end(connection, 'drain', new Frame(farewell()))
    })
  }

  stats (now: number = Date.now()): BrokerStats {
    this.#log.prune(now)
    const counts = this.#index.counts()
    const oldest = this.#log.oldest
    const newest = this.#log.size > 0 ? this.#log.newestId : undefined
    return {
      connections: { ...counts, replaying: this.#connections.size - counts.total },
      published: { total: sum(this.metrics.published), perSecond: this.#published.perSecond(now) },
      delivered: { total: this.metrics.delivered, perSecond: this.#delivered.perSecond(now) },
      history: {
        events: this.#log.size,
        bytes: this.#log.bytes,
        oldestId: oldest === undefined ? null : formatEventId(oldest.id),
        newestId: newest === undefined ? null : formatEventId(newest)
      },
      trackedStreams: this.#participants.size
    }
  }
}

const logged = (event: IdentifiedEvent): LoggedEvent => ({
  id: event.id,
  at: event.id.ms,
  streamId: event.streamId,
  users: event.users,
  frame: encodeEvent(formatEventId(event.id), event.type, event.data)
})

const sum = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0)
