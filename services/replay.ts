import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseEventId, type EventId } from './event-id.js'
import type { EventLog, LoggedEvent } from './event-log.js'
import type { ResyncReason } from './protocol.js'
import type { SseConnection } from './sse-connection.js'
import type { Filters } from './subscription-index.js'
import { Frame } from './transport/frame.js'

/** How far ahead of our clock an id may be and still come from a real instance. */
const MAX_CLOCK_SKEW_MS = 10_000

export interface ReplayLimits {
  /** A resume that would replay more events than this gets `events.resync` instead. */
  maxReplay: number
  /** A round of writes stops once the client holds this many unsent bytes, and waits for it. */
  maxBufferedBytes: number
  /** With an upstream log: how long to wait for an id this instance has not received yet. */
  upstreamWaitMs?: number
}

/** What a replay reads from the broker: its log, how far that is flushed, and whether a stream is still its own. */
export interface ReplaySource {
  readonly log: EventLog
  /** Events at the end of the log not written out yet: a replay reads only those before them. */
  readonly unflushed: number
  /** Whether the events up to `id` have been flushed here (or were never to be). */
  received (id: EventId): boolean
  isOpen (connection: SseConnection): boolean
  /** Called for each event a replay writes. */
  replayed (): void
}

/**
 * How a replay ended: caught up (the stream goes live now, in the same turn), closed by its client,
 * `reader_behind` (this instance's reader has not reached the client's id yet), or a reason to resync.
 */
export type ReplayOutcome = 'caught_up' | 'closed' | 'reader_behind' | ResyncReason

/**
 * Writes to a resuming stream what it missed after `lastEventId`. Written in rounds that stop when the
 * client's buffer is full; between rounds new events enter the log, and the next round finds its place
 * again by the id of the last event looked at. A round reads only as far as the events already
 * flushed; when it finds nothing more the caller makes the stream live in the same turn, and the next
 * flush brings the rest: nothing falls in between.
 */
export async function replay (source: ReplaySource, connection: SseConnection, lastEventId: string, limits: ReplayLimits): Promise<ReplayOutcome> {
  const after = parseEventId(lastEventId)
  if (after === undefined) return 'malformed_id'
  const wait = limits.upstreamWaitMs
  // An id from further in the future than clocks disagree is not ours: waiting would not help.
  if (wait !== undefined && !source.received(after) && after.ms <= Date.now() + MAX_CLOCK_SKEW_MS) {
    await receivedOrTimeout(source, after, connection, wait)
    if (!source.isOpen(connection)) return 'closed'
    // Our reader is behind the client's: a resync would carry our older id.
    if (!source.received(after)) return 'reader_behind'
  }
  const { log } = source
  const start = log.resumeAfter(after)
  if (!start.ok) return start.reason
  const match = matcher(connection.filters)
  if (countMatches(log, start.index, match) > limits.maxReplay) return 'replay_limit'

  let cursor = after
  for (;;) {
    const position = log.resumeAfter(cursor)
    if (!position.ok) return position.reason
    const end = log.size - source.unflushed
    let index = position.index
    for (; index < end; index++) {
      const event = log.at(index)!
      cursor = event.id
      if (!match(event)) continue
      connection.sink.write(new Frame(event.frame))
      connection.eventsSent++
      source.replayed()
      if (connection.sink.buffered > limits.maxBufferedBytes) break
    }
    if (index >= end) return 'caught_up'
    await connection.sink.drained()
    if (!source.isOpen(connection)) return 'closed'
  }
}

/** Waits, a few ms at a time, until the source has received `id`, the connection closes, or `timeoutMs` passes. */
async function receivedOrTimeout (source: ReplaySource, id: EventId, connection: SseConnection, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!source.received(id) && source.isOpen(connection) && performance.now() < deadline) await sleep(10)
}

function countMatches (log: EventLog, from: number, match: (event: LoggedEvent) => boolean): number {
  let count = 0
  for (let index = from, event = log.at(index); event !== undefined; event = log.at(++index)) {
    if (match(event)) count++
  }
  return count
}

/** Whether a logged event is for a connection with these filters (the index's rule, for replay). */
function matcher (filters: Filters): (event: LoggedEvent) => boolean {
  if (filters.all) return () => true
  const streams = new Set(filters.streams)
  const users = new Set(filters.users)
  return event => (event.streamId !== undefined && streams.has(event.streamId)) || event.users.some(user => users.has(user))
}
