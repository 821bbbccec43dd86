import { FormatRegistry, Type, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, ValueErrorType, type TypeCheck } from '@sinclair/typebox/compiler'
import { isStellarAccountId } from './stellar-key.js'

FormatRegistry.Set('stellar-account-id', isStellarAccountId)

/** The pattern that stream ids in subscriptions and events must match. */
export const STREAM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
/** At most this many users a publisher may name in one envelope. */
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
// larger amounts must come as decimal strings.
const SafeInteger = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })

const StreamId = Type.Union([
  Type.String({ pattern: STREAM_ID_PATTERN.source }),
  SafeInteger
], { errorMessage: 'must be a stream id: 1 to 64 of A-Z a-z 0-9 _ -, or a non-negative integer' })

const AccountId = Type.String({
  format: 'stellar-account-id',
  errorMessage: 'must be a Stellar account id (G followed by 55 base32 characters, valid checksum)'
})

const Amount = Type.Union([
  Type.String({ pattern: '^(0|[1-9][0-9]{0,63})(\\.[0-9]{1,32})?$' }),
  SafeInteger
], { errorMessage: 'must be a non-negative decimal string such as "12.5" or a safe integer' })

export const StreamCreatedData = Type.Object({
  id: StreamId,
  sender: AccountId,
  recipient: AccountId
}, { additionalProperties: true })

export const StreamAmountData = Type.Object({
  streamId: StreamId,
  amount: Amount
}, { additionalProperties: true })

export const StreamRefData = Type.Object({
  streamId: StreamId
}, { additionalProperties: true })

export const EVENT_TYPES = [
  'stream.created', 'stream.topped_up', 'stream.withdrawn', 'stream.cancelled', 'stream.completed'
] as const
export type EventType = typeof EVENT_TYPES[number]

/** Extra fields pass through to subscribers untouched. */
type Open<T> = T & Record<string, unknown>
export type StreamCreated = Open<Static<typeof StreamCreatedData>>
export type StreamAmount = Open<Static<typeof StreamAmountData>>
export type StreamRef = Open<Static<typeof StreamRefData>>

/** What a publisher sends: one FlowFi event, and optionally the users it concerns. */
export type Envelope =
  | { event: 'stream.created', data: StreamCreated, users?: string[] }
  | { event: 'stream.topped_up' | 'stream.withdrawn', data: StreamAmount, users?: string[] }
  | { event: 'stream.cancelled' | 'stream.completed', data: StreamRef, users?: string[] }

const EnvelopeShape = Type.Object({
  event: Type.Union(EVENT_TYPES.map(type => Type.Literal(type)),
    { errorMessage: `must be one of ${EVENT_TYPES.join(', ')}` }),
  data: Type.Object({}, { additionalProperties: true, errorMessage: 'must be a JSON object' }),
  users: Type.Optional(Type.Array(AccountId, { maxItems: MAX_ENVELOPE_USERS }))
}, { additionalProperties: false })

const checkShape = TypeCompiler.Compile(EnvelopeShape)
const checkData: Record<EventType, TypeCheck<TSchema>> = {
  'stream.created': TypeCompiler.Compile(StreamCreatedData),
  'stream.topped_up': TypeCompiler.Compile(StreamAmountData),
  'stream.withdrawn': TypeCompiler.Compile(StreamAmountData),
  'stream.cancelled': TypeCompiler.Compile(StreamRefData),
  'stream.completed': TypeCompiler.Compile(StreamRefData)
}

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
  return { ok: true, envelope: value as Envelope }
}

/** The stream an event is about, as the string that `streams=` subscriptions name. */
export function streamIdOf (envelope: Envelope): string {
  return String(envelope.event === 'stream.created' ? envelope.data.id : envelope.data.streamId)
}

export function isEventType (value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value)
}
