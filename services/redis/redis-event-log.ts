import type { Redis, Result } from 'ioredis'
import { routeOf, type Envelope, type Route, isEventType } from '../event-schema.js'
import { compareEventIds, formatEventId, parseEventId, type EventId } from '../event-id.js'
import type { IdentifiedEvent } from '../event-broker.js'

export interface RedisEventLogOptions {
  /** Prepended to every key. */
  prefix: string
  /** Retention, applied after each append: the stream is trimmed to this many entries … */
  maxEvents: number
  /** … and entries older than this are trimmed (XTRIM MINID). */
  maxAgeMs: number
  /** A stream's participants set expires this long after its last event. */
  participantsTtlS: number
}

/** Where the entries read from the log go, in order. */
export interface LogReader {
  take (event: IdentifiedEvent): void
  /**
   * The reader cannot show that it read every entry up to `upTo`, for the reason given: entries were
   * trimmed before they were read, the log started again, or an entry it skipped broke the chain of
   * `prev` ids. What follows is complete again.
   */
  missed (upTo: EventId, why: string): void
  /** An entry that we did not write (or not so); it is not delivered. */
  skip (id: string, why: string): void
}

/** A key of the log that held what this service does not write, read as absent. */
export interface UnreadableKey {
  key: string
  /** What was there: the start of the value, or Redis's error. */
  found: string
}

/** What the Redis log held when it was read at start-up. */
export interface StoredHistory {
  /** The newest id the log trimmed away, if known: a resume from exactly it missed nothing. */
  trimmedUpTo: EventId | undefined
  unreadable: UnreadableKey[]
}

/** Why the reader cannot show that it missed nothing before an entry whose `prev` is not the last id read. */
const GAP_CAUSES = {
  trimmed: 'entries were trimmed from the Redis log before this instance read them',
  restarted: 'the Redis log started again (Redis lost its data?)',
  unchained: 'a log entry that is not ours broke the chain of prev ids'
} as const

/** Why an entry is skipped. */
const UNREADABLE_ID = 'its id is beyond the range of event ids (an entry added with an explicit id?)'
const NO_PREV = 'its prev is missing or not an event id'
const NO_EVENT = 'it lacks the fields event (a known type), data, stream or users'

const ZERO: EventId = { ms: 0, seq: 0 }
const later = (a: EventId, b: EventId | undefined): EventId => b === undefined || compareEventIds(a, b) >= 0 ? a : b

/**
 * Appends events to the log, and resolves the users they concern, in one step that Redis runs
 * atomically: a batch is all in the log or none of it (the keys' types are checked before anything is
 * written). The stream's id is the event's id everywhere. Each entry also names the entry before it
 * (`prev`), so that a reader can tell when entries it never saw were trimmed. Then trims by count and
 * by age, and records the newest id trimmed: a resume from exactly that id has missed nothing, one
 * from before it has (Redis 7.0 keeps no such record for trimming).
 * KEYS: the stream, the bridge lease, the trimmed-up-to id, then the participants set of each event
 * that has a stream, in order.
 * ARGV: MAXLEN, max age in ms, participants TTL in s, lease owner ('' unless the bridge writes), then
 * for each event: type, data JSON, stream id ('' for none), accounts (comma-separated): with a stream,
 * added to its participants, and the entry names them all; without, the entry names just these.
 */
const APPEND = `
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then
  return redis.error_reply('NOTBRIDGE this instance no longer holds the bridge lease')
end
local function holds (key, kind)
  local found = redis.call('TYPE', key).ok
  return found == kind or found == 'none'
end
if not holds(KEYS[1], 'stream') then return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is not a stream') end
for i = 4, #KEYS do
  if not holds(KEYS[i], 'set') then return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' is not a set') end
end
-- As the readers parse an event id: two integers below 2^53.
local function readable (id)
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  return ms ~= nil and #ms <= 16 and #seq <= 16 and tonumber(ms) <= 9007199254740991 and tonumber(seq) <= 9007199254740991
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local prev = newest and newest[1]
if not prev then
  -- Another client may have written the key: what is not an id of ours is not taken for one.
  local trimmed = redis.call('TYPE', KEYS[3]).ok == 'string' and redis.call('GET', KEYS[3])
  prev = trimmed and readable(trimmed) and trimmed or '0-0'
end
local ids = {}
local key = 3
for i = 0, (#ARGV - 4) / 4 - 1 do
  local at = 5 + i * 4
  local users = ARGV[at + 3]
  if ARGV[at + 2] ~= '' then
    key = key + 1
    for user in string.gmatch(users, '[^,]+') do redis.call('SADD', KEYS[key], user) end
    redis.call('EXPIRE', KEYS[key], ARGV[3])
    users = table.concat(redis.call('SMEMBERS', KEYS[key]), ',')
  end
  prev = redis.call('XADD', KEYS[1], '*', 'event', ARGV[at], 'data', ARGV[at + 1], 'stream', ARGV[at + 2], 'users', users, 'prev', prev)
  ids[#ids + 1] = prev
  -- After an entry added with an explicit id beyond that, Redis gives every later entry one as large:
  -- no reader could deliver them, so the batch is taken back and refused rather than lost.
  if not readable(prev) then
    redis.call('XDEL', KEYS[1], unpack(ids))
    return redis.error_reply('BADID ' .. KEYS[1] .. ' gives ids beyond the range of event ids (an entry added with an explicit id?): delete the key and restart the instances')
  end
end
local function parse (id)
  local ms, seq = string.match(id, '(%d+)-(%d+)')
  return tonumber(ms), tonumber(seq)
end
local cut
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess > 0 then
  local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
  cut = old[#old][1]
end
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[2])
local older = redis.call('XREVRANGE', KEYS[1], '(' .. string.format('%d', oldest) .. '-0', '-', 'COUNT', 1)[1]
if older then
  local ms, seq = parse(older[1])
  local cutMs, cutSeq = parse(cut or '0-0')
  if ms > cutMs or (ms == cutMs and seq > cutSeq) then cut = older[1] end
end
if cut then
  local ms, seq = parse(cut)
  redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-%d', ms, seq + 1))
  redis.call('SET', KEYS[3], cut)
end
return ids
`

type StreamEntry = [id: string, fields: string[]]

/** Reads at start-up and per XREAD come in pages of this many entries. */
const PAGE = 1000

declare module 'ioredis' {
  interface RedisCommander<Context> {
    flowfiAppend (numberOfKeys: number, ...args: Array<string | number>): Result<string[], Context>
  }
}

/**
 * The cluster's one ordered event log: a Redis Stream with its retention, plus the participants of
 * each payment stream (Redis sets with an expiry) for routing by user.
 */
export class RedisEventLog {
  readonly streamKey: string
  readonly leaseKey: string
  readonly trimmedKey: string
  /** Entries the reader skipped (see `LogReader.skip`). */
  skipped = 0
  // Where the one reader of this log stands: the last entry read (XREAD goes on after it), the newest
  // event id read so far, and a gap it found but has not reported yet (see #deliver).
  #lastId = '0-0'
  #newest = ZERO
  #gap: { upTo: EventId, why: string } | undefined

  constructor (readonly redis: Redis, readonly options: RedisEventLogOptions) {
    this.streamKey = `${options.prefix}events`
    this.leaseKey = `${options.prefix}bridge`
    this.trimmedKey = `${options.prefix}trimmed-up-to`
    if (typeof redis.flowfiAppend !== 'function') redis.defineCommand('flowfiAppend', { lua: APPEND })
  }

  participantsKey (streamId: string): string {
    return `${this.options.prefix}participants:${streamId}`
  }

  /**
   * Appends validated events in one atomic step; returns their ids. `leaseOwner`: the bridge's lease;
   * `routes`: where each goes, when not where its data says (a channel's).
   */
  async append (envelopes: readonly Envelope[], leaseOwner = '', routes: readonly Route[] = envelopes.map(routeOf)): Promise<string[]> {
    const keys = [this.streamKey, this.leaseKey, this.trimmedKey]
    const args: Array<string | number> = [this.options.maxEvents, this.options.maxAgeMs, this.options.participantsTtlS, leaseOwner]
    for (const [i, envelope] of envelopes.entries()) {
      const { streamId, accounts } = routes[i]!
      if (streamId !== undefined) keys.push(this.participantsKey(streamId))
      args.push(envelope.event, JSON.stringify(envelope.data), streamId ?? '', accounts.join(','))
    }
    return await this.redis.flowfiAppend(keys.length, ...keys, ...args)
  }

  /** The participants of each stream named, as Redis knows them. */
  async participantsOf (streamIds: readonly string[]): Promise<Map<string, string[]>> {
    // Sent together on the one connection, answered in order.
    const users = await Promise.all(streamIds.map(streamId => this.redis.smembers(this.participantsKey(streamId))))
    return new Map(streamIds.map((streamId, i) => [streamId, users[i]!]))
  }

  /** The id of the last entry read, which the reader goes on after. */
  get lastId (): string {
    return this.#lastId
  }

  /**
   * Reads the whole retained log, oldest first, page by page, handing each entry to `reader`. Entries
   * appended meanwhile are read too; `read` goes on after them. Keys that another client wrote are
   * read as absent, and returned: they never stop a start-up.
   */
  async loadHistory (reader: LogReader): Promise<StoredHistory> {
    const unreadable: UnreadableKey[] = []
    const trimmed = await orAbsent(this.redis.get(this.trimmedKey), null, this.trimmedKey, unreadable)
    const trimmedUpTo = trimmed === null ? undefined : parseEventId(trimmed)
    if (trimmed !== null && trimmedUpTo === undefined) unreadable.push({ key: this.trimmedKey, found: trimmed.slice(0, 64) })
    this.#lastId = trimmedUpTo === undefined ? '0-0' : formatEventId(trimmedUpTo)
    this.#newest = trimmedUpTo ?? ZERO
    for (;;) {
      const entries = await orAbsent(this.redis.xrange(this.streamKey, `(${this.#lastId}`, '+', 'COUNT', PAGE), [], this.streamKey, unreadable)
      this.#deliver(entries as StreamEntry[], reader)
      if (entries.length < PAGE) return { trimmedUpTo, unreadable }
    }
  }

  /** Waits (on a connection of its own: this one blocks) for entries after the last read, and hands them on. */
  async read (connection: Redis, blockMs: number, reader: LogReader): Promise<void> {
    const reply = await connection.xread('COUNT', PAGE, 'BLOCK', blockMs, 'STREAMS', this.streamKey, this.#lastId) as Array<[string, StreamEntry[]]> | null
    this.#deliver(reply?.[0]?.[1] ?? [], reader)
  }

  /**
   * Hands entries to `reader` in order. Each of ours names the entry before it (`prev`); one that does
   * not name the last entry read is a gap: the reader cannot show that nothing was missed up to it.
   * Gaps found in a row are reported once, before the next event, or once the reader has caught up
   * (a page that is not full): a flood of foreign entries is one resync, not one per entry or page.
   */
  #deliver (entries: StreamEntry[], reader: LogReader): void {
    for (const [idText, fields] of entries) {
      const entry = readEntry(idText, fields)
      if (entry.prev !== this.#lastId) this.#noteGap(entry.prev, entry.ok ? undefined : entry.id)
      if (entry.ok) {
        this.#reportGap(reader)
        reader.take(entry.event)
      } else {
        this.skipped++
        reader.skip(idText, entry.why)
      }
      this.#lastId = idText
      this.#newest = later(this.#newest, entry.id)
    }
    if (entries.length < PAGE) this.#reportGap(reader)
  }

  /** `skippedId`: an entry skipped, which may have been an event: the gap reaches it too. */
  #noteGap (prevText: string | undefined, skippedId: EventId | undefined): void {
    const last = parseEventId(this.#lastId)
    const prev = prevText === undefined ? undefined : parseEventId(prevText)
    const cause = last === undefined || prev === undefined ? 'unchained' : compareEventIds(prev, last) < 0 ? 'restarted' : 'trimmed'
    const upTo = [prev, skippedId, this.#gap?.upTo].reduce(later, this.#newest)
    this.#gap = { upTo, why: GAP_CAUSES[cause] }
  }

  #reportGap (reader: LogReader): void {
    if (this.#gap === undefined) return
    reader.missed(this.#gap.upTo, this.#gap.why)
    this.#gap = undefined
  }
}

/** One of our entries, or why it is not one: any client may have written to the key. */
function readEntry (idText: string, fields: string[]): { ok: true, event: IdentifiedEvent, id: EventId, prev: string } |
  { ok: false, why: string, id: EventId | undefined, prev: string | undefined } {
  const entry: Partial<Record<string, string>> = Object.create(null)
  for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i]!] = fields[i + 1]
  const { event: type, data, stream: streamId, users, prev } = entry
  const id = parseEventId(idText)
  if (id === undefined) return { ok: false, why: UNREADABLE_ID, id, prev }
  if (prev === undefined || parseEventId(prev) === undefined) return { ok: false, why: NO_PREV, id, prev }
  if (type === undefined || !isEventType(type) || data === undefined || streamId === undefined || users === undefined) {
    return { ok: false, why: NO_EVENT, id, prev }
  }
  return { ok: true, event: { id, type, data, streamId: streamId === '' ? undefined : streamId, users: users === '' ? [] : users.split(',') }, id, prev }
}

/** A key of another type than ours (another client wrote it) is read as `absent`, and noted. */
async function orAbsent<T> (command: Promise<T>, absent: T, key: string, unreadable: UnreadableKey[]): Promise<T> {
  try {
    return await command
  } catch (error) {
    // Redis's answer for a key of another type; any other failure (no answer, no permission) stops.
    const { message } = error as Error
    if (!message.startsWith('WRONGTYPE')) throw error
    unreadable.push({ key, found: message })
    return absent
  }
}
