import type { Redis, Result } from 'ioredis'
import { streamIdOf, type Envelope, isEventType } from './event-schema.js'
import { formatEventId, parseEventId, type EventId } from './event-id.js'
import type { IdentifiedEvent } from './event-broker.js'

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
   * The entry after `readUpTo` follows `prev` in the log: the entries in between were trimmed before
   * they were read (`prev` after `readUpTo`), or the log was started again (`prev` before it).
   */
  missed (readUpTo: string, prev: string): void
  /** An entry that was not written by us; it is not delivered. */
  skip (id: string, why: string): void
}

/** What the Redis log held when it was read at start-up. */
export interface StoredHistory {
  /** The newest id the log trimmed away, if any: a resume from exactly it missed nothing. */
  trimmedUpTo: EventId | undefined
  /** Where the reader goes on from: the newest entry, or the newest trimmed id. */
  lastId: string
}

/**
 * Appends events to the log, and resolves the users they concern, in one step that Redis runs
 * atomically: a batch is all in the log or none of it (the keys' types are checked before anything is
 * written). The stream's id is the event's id everywhere. Each entry also names the entry before it
 * (`prev`), so that a reader can tell when entries it never saw were trimmed. Then trims by count and
 * by age, and records the newest id trimmed: a resume from exactly that id has missed nothing, one
 * from before it has (Redis 7.0 keeps no such record for trimming).
 * KEYS: the stream, the bridge lease, the trimmed-up-to id, then each event's participants set.
 * ARGV: MAXLEN, max age in ms, participants TTL in s, lease owner ('' unless the bridge writes), then
 * for each event: type, data JSON, stream id, users to add (comma-separated).
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
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local prev = newest and newest[1] or redis.call('GET', KEYS[3]) or '0-0'
local ids = {}
for i = 0, (#ARGV - 4) / 4 - 1 do
  local at = 5 + i * 4
  local participants = KEYS[4 + i]
  for user in string.gmatch(ARGV[at + 3], '[^,]+') do redis.call('SADD', participants, user) end
  redis.call('EXPIRE', participants, ARGV[3])
  local users = table.concat(redis.call('SMEMBERS', participants), ',')
  prev = redis.call('XADD', KEYS[1], '*', 'event', ARGV[at], 'data', ARGV[at + 1], 'stream', ARGV[at + 2], 'users', users, 'prev', prev)
  ids[#ids + 1] = prev
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

  constructor (readonly redis: Redis, readonly options: RedisEventLogOptions) {
    this.streamKey = `${options.prefix}events`
    this.leaseKey = `${options.prefix}bridge`
    this.trimmedKey = `${options.prefix}trimmed-up-to`
    if (typeof redis.flowfiAppend !== 'function') redis.defineCommand('flowfiAppend', { lua: APPEND })
  }

  participantsKey (streamId: string): string {
    return `${this.options.prefix}participants:${streamId}`
  }

  /** Appends validated events in one atomic step; returns their ids. `leaseOwner`: the bridge's lease. */
  async append (envelopes: readonly Envelope[], leaseOwner = ''): Promise<string[]> {
    const keys = [this.streamKey, this.leaseKey, this.trimmedKey]
    const args: Array<string | number> = [this.options.maxEvents, this.options.maxAgeMs, this.options.participantsTtlS, leaseOwner]
    for (const envelope of envelopes) {
      const streamId = streamIdOf(envelope)
      keys.push(this.participantsKey(streamId))
      const users = envelope.event === 'stream.created' ? [envelope.data.sender, envelope.data.recipient] : []
      args.push(envelope.event, JSON.stringify(envelope.data), streamId, [...users, ...envelope.users ?? []].join(','))
    }
    return await this.redis.flowfiAppend(keys.length, ...keys, ...args)
  }

  /** The participants of each stream named, as Redis knows them. */
  async participantsOf (streamIds: readonly string[]): Promise<Map<string, string[]>> {
    // Sent together on the one connection, answered in order.
    const users = await Promise.all(streamIds.map(streamId => this.redis.smembers(this.participantsKey(streamId))))
    return new Map(streamIds.map((streamId, i) => [streamId, users[i]!]))
  }

  /**
   * Reads the whole retained log, oldest first, page by page, handing each entry to `reader`. Entries
   * appended meanwhile are read too; the reader goes on from the returned `lastId`.
   */
  async loadHistory (reader: LogReader): Promise<StoredHistory> {
    const trimmedUpTo = await this.trimmedUpTo()
    let lastId = trimmedUpTo === undefined ? '0-0' : formatEventId(trimmedUpTo)
    for (;;) {
      const entries = await this.redis.xrange(this.streamKey, `(${lastId}`, '+', 'COUNT', PAGE) as StreamEntry[]
      lastId = this.#deliver(entries, lastId, reader)
      if (entries.length < PAGE) return { trimmedUpTo, lastId }
    }
  }

  /** The newest id trimmed from the log, as the append script recorded it. */
  async trimmedUpTo (): Promise<EventId | undefined> {
    const id = await this.redis.get(this.trimmedKey)
    return id === null ? undefined : parseEventId(id)
  }

  /**
   * Waits (on a connection of its own: this one blocks) for entries after `lastId`; returns the new
   * `lastId`, or the same when the wait timed out.
   */
  async read (connection: Redis, lastId: string, blockMs: number, reader: LogReader): Promise<string> {
    const reply = await connection.xread('COUNT', PAGE, 'BLOCK', blockMs, 'STREAMS', this.streamKey, lastId) as Array<[string, StreamEntry[]]> | null
    return this.#deliver(reply?.[0]?.[1] ?? [], lastId, reader)
  }

  /** Hands entries read after `lastId` to `reader`, saying where entries went missing; returns the new last id. */
  #deliver (entries: StreamEntry[], lastId: string, reader: LogReader): string {
    for (const [idText, fields] of entries) {
      const entry: Partial<Record<string, string>> = {}
      for (let i = 0; i < fields.length; i += 2) entry[fields[i]!] = fields[i + 1]
      const { event: type, data, stream: streamId, users, prev } = entry
      const id = parseEventId(idText)
      if (id === undefined || type === undefined || !isEventType(type) || data === undefined || streamId === undefined ||
        users === undefined || prev === undefined) {
        reader.skip(idText, 'an entry without the fields event (a known type), data, stream, users and prev')
      } else {
        if (prev !== lastId) reader.missed(lastId, prev)
        reader.take({ id, type, data, streamId, users: users === '' ? [] : users.split(',') })
      }
      lastId = idText
    }
    return lastId
  }
}
