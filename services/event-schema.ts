import { FormatRegistry, Type, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, ValueErrorType, type TypeCheck } from '@sinclair/typebox/compiler'
import { isStellarAddress } from './stellar-key.js'
import { EVENT_TYPES, STREAMLESS_EVENT_TYPES, type Envelope, type EventData, type EventType, type StreamlessEventType } from './protocol.js'

FormatRegistry.Set('stellar-address', isStellarAddress)

/** The pattern that stream ids in subscriptions and events must match. */
export const STREAM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
/** At most this many accounts a publisher may name in `users` or `to` of one envelope. */
export const MAX_ENVELOPE_USERS = 16
/**
 * How deep `data` may nest objects and arrays, itself the first level. Far more than FlowFi's events
 * need, and far less than what overflows the stack of JSON.stringify (some thousands).
 */
export const MAX_DATA_DEPTH = 32
/** Problems reported of one invalid envelope: the first ones are enough to fix it, and cost little to find. */
export const MAX_PROBLEMS = 10
/** A path longer than this (a field name of a megabyte) is cut short with "…". */
export const MAX_PATH_CHARS = 200

// Numbers above 2^53 lose digits in JSON.parse, so only safe integers are accepted as numbers;
// larger values (u64 ids and times, i128 amounts) must come as decimal strings.
const SafeInteger = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })

const StreamId = Type.Union([
  Type.String({ pattern: STREAM_ID_PATTERN.source }),
  SafeInteger
], { errorMessage: 'must be a stream id: 1 to 64 of A-Z a-z 0-9 _ -, or a non-negative integer' })

const Address = Type.String({
  format: 'stellar-address',
  errorMessage: 'must be a Stellar account (G…) or contract (C…) address: 56 base32 characters with a valid checksum'
})

const Amount = Type.Union([
  Type.String({ pattern: '^(0|[1-9][0-9]*)(\\.[0-9]+)?$' }),
  SafeInteger
], { errorMessage: 'must be a non-negative decimal string such as "12.5" or a safe integer' })

const U64 = Type.Union([
  Type.String({ pattern: '^(0|[1-9][0-9]{0,19})$' }),
  SafeInteger
], { errorMessage: 'must be a non-negative integer: a safe integer, or a decimal string' })

const U32 = Type.Integer({ minimum: 0, maximum: 0xffffffff, errorMessage: 'must be an integer from 0 to 4294967295' })

/** An object schema whose other fields pass through. */
const open = <P extends Record<string, TSchema>>(properties: P) => Type.Object(properties, { additionalProperties: true })
const optional = <T extends TSchema>(schema: T) => Type.Optional(schema)

/** The fields each type's `data` may carry, checked when present; the required ones are required. */
export const EVENT_DATA_SCHEMAS = {
  // Either `streamId` or `id`: checked after the schema (see checkStreamCreated).
  'stream.created': open({
    streamId: optional(StreamId),
    id: optional(StreamId),
    sender: Address,
    recipient: Address,
    tokenAddress: optional(Address),
    ratePerSecond: optional(Amount),
    depositedAmount: optional(Amount),
    startTime: optional(U64)
  }),
  'stream.topped_up': open({ streamId: StreamId, amount: optional(Amount), newDepositedAmount: optional(Amount) }),
  'stream.withdrawn': open({ streamId: StreamId, recipient: optional(Address), amount: optional(Amount) }),
  'stream.cancelled': open({ streamId: StreamId, refundedAmount: optional(Amount), amountWithdrawn: optional(Amount) }),
  'stream.completed': open({ streamId: StreamId, recipient: optional(Address), totalWithdrawn: optional(Amount) }),
  'stream.paused': open({ streamId: StreamId, sender: optional(Address), pausedAt: optional(U64) }),
  'stream.resumed': open({ streamId: StreamId, sender: optional(Address), newEndTime: optional(U64) }),
  'stream.fee_collected': open({ streamId: StreamId, treasury: optional(Address), feeAmount: optional(Amount), token: optional(Address) }),
  'stream.fee_config_updated': open({
    admin: optional(Address),
    oldTreasury: optional(Address),
    newTreasury: optional(Address),
    oldFeeRateBps: optional(U32),
    newFeeRateBps: optional(U32)
  }),
  'stream.admin_transferred': open({ previousAdmin: optional(Address), newAdmin: optional(Address) })
} satisfies Record<EventType, TSchema>

// The schemas and protocol.ts's types agree (stream.created's either-or is checked after its schema):
// a type that a schema would refuse names itself in a compile error here.
type Disagreeing = { [K in EventType]: EventData[K] extends Static<typeof EVENT_DATA_SCHEMAS[K]> ? never : K }[EventType]
export const SCHEMAS_AGREE: [Disagreeing] extends [never] ? true : Disagreeing = true

const Accounts = Type.Array(Address, { maxItems: MAX_ENVELOPE_USERS })

/** The envelope around any event: its type, a JSON object, and whom it concerns. */
export const EnvelopeShape = Type.Object({
  event: Type.Union(EVENT_TYPES.map(type => Type.Literal(type)),
    { errorMessage: `must be one of ${EVENT_TYPES.join(', ')}` }),
  data: Type.Object({}, { additionalProperties: true, errorMessage: 'must be a JSON object' }),
  users: Type.Optional(Accounts),
  // An empty list would send the event to all=true alone: a mistake more likely than a wish.
  to: Type.Optional(Type.Array(Address, { minItems: 1, maxItems: MAX_ENVELOPE_USERS, errorMessage: `must list 1 to ${MAX_ENVELOPE_USERS} accounts` }))
}, { additionalProperties: false })

const checkShape = TypeCompiler.Compile(EnvelopeShape)
const checkData = Object.fromEntries(EVENT_TYPES.map(type => [type, TypeCompiler.Compile(EVENT_DATA_SCHEMAS[type])])) as
  unknown as Record<EventType, TypeCheck<TSchema>>

export interface ValidationProblem {
  /** JSON pointer into the envelope, such as "/data/amount". */
  path: string
  message: string
}

/** Cut at a whole character: a surrogate pair is never split. */
const shortened = (path: string): string =>
  path.length <= MAX_PATH_CHARS ? path : path.slice(0, MAX_PATH_CHARS - 1).replace(/[\ud800-\udbff]$/, '') + '…'

/** The problems of a value, found one at a time: TypeBox's Errors() is an iterator. */
function * problems (check: TypeCheck<TSchema>, value: unknown, prefix: string): Generator<ValidationProblem> {
  const seen = new Set<string>()
  for (const error of check.Errors(value)) {
    const path = prefix + error.path
    // A union reports each branch and then itself; one message per place is enough.
    if (seen.has(path)) continue
    seen.add(path)
    const custom = (error.schema as { errorMessage?: string }).errorMessage
    const message = error.type === ValueErrorType.ObjectRequiredProperty
      ? 'is required'
      : custom ?? error.message
    yield { path: shortened(path || '/'), message }
  }
}

/** The first `max` problems, and whether there are more; the rest are never looked for. */
function first (found: Iterable<ValidationProblem>, max: number): { ok: false, problems: ValidationProblem[], more: boolean } {
  const iterator = found[Symbol.iterator]()
  const listed: ValidationProblem[] = []
  while (listed.length < max) {
    const next = iterator.next()
    if (next.done === true) return { ok: false, problems: listed, more: false }
    listed.push(next.value)
  }
  // An invalid value has a problem: with none wanted, there is more without looking.
  return { ok: false, problems: listed, more: max === 0 || iterator.next().done !== true }
}

/** An object or array met on the way down; the path is made from the parents only when one is too deep. */
interface Level { value: object, depth: number, key: string | number, parent: Level | undefined }

const escapeKey = (key: string | number): string => String(key).replace(/~/g, '~0').replace(/\//g, '~1')

function pathOf (level: Level): string {
  const keys: string[] = []
  for (let at: Level | undefined = level; at !== undefined; at = at.parent) keys.push(escapeKey(at.key))
  return shortened('/' + keys.reverse().join('/'))
}

/** The first place, in document order, where `data` nests more than MAX_DATA_DEPTH levels; without recursion. */
function tooDeep (data: object): ValidationProblem | undefined {
  const stack: Level[] = [{ value: data, depth: 1, key: 'data', parent: undefined }]
  for (let level = stack.pop(); level !== undefined; level = stack.pop()) {
    if (level.depth > MAX_DATA_DEPTH) {
      return { path: pathOf(level), message: `nests objects and arrays more than ${MAX_DATA_DEPTH} levels deep` }
    }
    const value = level.value as Record<string | number, unknown>
    const keys: Array<string | number> = Array.isArray(value) ? [...value.keys()] : Object.keys(value)
    // Pushed last to first, so that the first child is looked at first.
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!
      const child = value[key]
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: level.depth + 1, key, parent: level })
    }
  }
  return undefined
}

/** Checks one envelope; returns it typed, or its first `maxProblems` problems and whether it has more. */
export function validateEnvelope (value: unknown, maxProblems = MAX_PROBLEMS):
  { ok: true, envelope: Envelope } | { ok: false, problems: ValidationProblem[], more: boolean } {
  if (!checkShape.Check(value)) return first(problems(checkShape, value, ''), maxProblems)
  const deep = tooDeep(value.data)
  if (deep !== undefined) return first([deep], maxProblems)
  const check = checkData[value.event]
  if (!check.Check(value.data)) return first(problems(check, value.data, '/data'), maxProblems)
  const conflict = envelopeConflict(value as Envelope)
  if (conflict !== undefined) return first([conflict], maxProblems)
  return { ok: true, envelope: value as Envelope }
}

/** What the schemas cannot say: stream.created's `streamId` or `id`, and `users` or `to`. */
function envelopeConflict (envelope: Envelope): ValidationProblem | undefined {
  if (envelope.users !== undefined && envelope.to !== undefined) {
    return { path: '/to', message: 'cannot come with users: users names participants of the stream, to addresses the event to accounts only' }
  }
  if (envelope.event !== 'stream.created') return undefined
  const { streamId, id } = envelope.data
  if (streamId === undefined && id === undefined) return { path: '/data/streamId', message: 'is required (or id)' }
  if (streamId !== undefined && id !== undefined && String(streamId) !== String(id)) {
    return { path: '/data/id', message: 'must name the same stream as streamId' }
  }
  return undefined
}

export const isStreamless = (type: EventType): type is StreamlessEventType =>
  (STREAMLESS_EVENT_TYPES as readonly string[]).includes(type)

/**
 * Where an event goes: to the `streams=` subscribers of its stream, where it has one (admin events and
 * events addressed with `to` have none), and to the `users=` subscribers of `accounts`. With a stream,
 * the accounts take part in it from now on, and the event also reaches its participants known before.
 */
export interface Route {
  streamId: string | undefined
  accounts: readonly string[]
}

export function routeOf (envelope: Envelope): Route {
  if (envelope.to !== undefined) return { streamId: undefined, accounts: envelope.to }
  const named = envelope.users ?? []
  const accounts = envelope.event === 'stream.created' ? [envelope.data.sender, envelope.data.recipient, ...named] : named
  return { streamId: streamIdOf(envelope), accounts }
}

/** The stream an event is about, as the string that `streams=` subscriptions name; none for admin events. */
export function streamIdOf (envelope: Envelope): string | undefined {
  if (isStreamless(envelope.event)) return undefined
  const data = envelope.data as EventData['stream.created']
  return String(data.streamId ?? data.id)
}

export function isEventType (value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value)
}

export { EVENT_TYPES, type Envelope, type EventType }
