import type { Redis, Result } from 'ioredis'
import { streamIdOf, type Envelope, isEventType } from './event-schema.js'
import { parseEventId, type EventId } from './event-id.js'
import type { IdentifiedEvent } from './event-broker.js'

export interface RedisEventLogOptions {
  /** Prepended to every key. */
  prefix: string
  /** Retention: the stream is trimmed to this many entries (XADD MAXLEN) … */
  maxEvents: number
  /** … and entries older than this are trimmed (XTRIM MINID); 0 keeps them whatever their age. */
  maxAgeMs: number
  /** A stream's participants set expires this long after its last event. */
  participantsTtlS: number
}

/** What the Redis log held when it was read at start-up. */
export interface StoredHistory {
  /** The newest id the log ever trimmed away ("0-0" when none): a resume from it missed nothing. */
  trimmedUpTo: EventId | undefined
  /** Where the reader goes on from: the newest entry, or the newest trimmed id. */
  lastId: string
}

/**
 * Appends events to the log, and resolves the users they concern, in one step that Redis runs
 * atomically: a batch is all in the log or none of it. The stream's id is the event's id everywhere.
 * KEYS: the stream, the bridge lease, then each event's participants set.
 * ARGV: MAXLEN, max age in ms, participants TTL in s, lease owner ('' unless the bridge writes),
 * then for each event: type, data JSON, stream id, users to add (comma-separated).
 */
const APPEND = `
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then
  return redis.error_reply('NOTBRIDGE this instance no longer holds the bridge lease')
end
local ids = {}
for i = 0, (#ARGV - 4) / 4 - 1 do
  local at = 5 + i * 4
  local participants = KEYS[3 + i]
  for user in string.gmatch(ARGV[at + 3], '[^,]+') do redis.call('SADD', participants, user) end
  redis.call('EXPIRE', participants, ARGV[3])
  local users = table.concat(redis.call('SMEMBERS', participants), ',')
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*',
    'event', ARGV[at], 'data', ARGV[at + 1], 'stream', ARGV[at + 2], 'users', users)
end
if ARGV[2] ~= '0' then
  local now = redis.call('TIME')
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[2])
  redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', oldest))
end
return ids
`

/** Error raised when the bridge writes after losing its lease: another instance bridges now. */
export const NOT_BRIDGE = 'NOTBRIDGE'

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

  constructor (readonly redis: Redis, readonly options: RedisEventLogOptions) {
    this.streamKey = `${options.prefix}events`
    this.leaseKey = `${options.prefix}bridge`
    if (typeof redis.flowfiAppend !== 'function') redis.defineCommand('flowfiAppend', { lua: APPEND })
  }

  participantsKey (streamId: string): string {
    return `${this.options.prefix}participants:${streamId}`
  }

  /** Appends validated events in one atomic step; returns their ids. `leaseOwner`: the bridge's lease. */
  async append (envelopes: readonly Envelope[], leaseOwner = ''): Promise<string[]> {
    const keys = [this.streamKey, this.leaseKey]
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
    const pipeline = this.redis.pipeline()
    for (const streamId of streamIds) pipeline.smembers(this.participantsKey(streamId))
    const replies = await pipeline.exec() ?? []
    const known = new Map<string, string[]>()
    replies.forEach(([error, users], i) => {
      if (error !== null) throw error
      known.set(streamIds[i]!, users as string[])
    })
    return known
  }

  /**
   * Reads the whole retained log, oldest first, page by page, handing each event to `take`. Entries
   * appended meanwhile are read too; the reader goes on from the returned `lastId`.
   */
  async loadHistory (take: (event: IdentifiedEvent) => void, skip: (id: string, why: string) => void): Promise<StoredHistory> {
    const trimmedUpTo = await this.trimmedUpTo()
    let lastId = trimmedUpTo === undefined ? '0-0' : `${trimmedUpTo.ms}-${trimmedUpTo.seq}`
    for (;;) {
      const entries = await this.redis.xrange(this.streamKey, `(${lastId}`, '+', 'COUNT', PAGE) as StreamEntry[]
      for (const entry of entries) this.#decode(entry, take, skip)
      if (entries.length > 0) lastId = entries[entries.length - 1]![0]
      if (entries.length < PAGE) return { trimmedUpTo, lastId }
    }
  }

  /** The newest id trimmed from the log: Redis (7.0 and later) remembers it. */
  async trimmedUpTo (): Promise<EventId | undefined> {
    let info: unknown[]
    try {
      info = await this.redis.xinfo('STREAM', this.streamKey) as unknown[]
    } catch (error) {
      if (error instanceof Error && /no such key/i.test(error.message)) return undefined
      throw error
    }
    const at = info.indexOf('max-deleted-entry-id')
    const id = at < 0 ? undefined : parseEventId(String(info[at + 1]))
    return id === undefined || (id.ms === 0 && id.seq === 0) ? undefined : id
  }

  /**
   * Waits (on a connection of its own: this one blocks) for entries after `lastId`; returns the new
   * `lastId`, or the same when the wait timed out.
   */
  async read (reader: Redis, lastId: string, blockMs: number,
    take: (event: IdentifiedEvent) => void, skip: (id: string, why: string) => void): Promise<string> {
    const reply = await reader.xread('COUNT', PAGE, 'BLOCK', blockMs, 'STREAMS', this.streamKey, lastId) as Array<[string, StreamEntry[]]> | null
    const entries = reply?.[0]?.[1] ?? []
    for (const entry of entries) this.#decode(entry, take, skip)
    return entries.length > 0 ? entries[entries.length - 1]![0] : lastId
  }

  /** An entry as the broker takes it; one written by something else than us is skipped, not fatal. */
  #decode ([idText, fields]: StreamEntry, take: (event: IdentifiedEvent) => void, skip: (id: string, why: string) => void): void {
    const field = (name: string): string | undefined => {
      for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]
      return undefined
    }
    const id = parseEventId(idText)
    const type = field('event')
    const data = field('data')
    const streamId = field('stream')
    const users = field('users')
    if (id === undefined || type === undefined || !isEventType(type) || data === undefined || streamId === undefined || users === undefined) {
      return skip(idText, 'an entry without the fields event (a known type), data, stream and users')
    }
    take({ id, type, data, streamId, users: users === '' ? [] : users.split(',') })
  }
}
