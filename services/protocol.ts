// The words of the wire, shared by the server and the browser client: event types and their
// payloads, the control events and their reasons, the subscribe parameters. Types and constants
// only: the client bundle takes this file and nothing else of the server.

/** A stream id: the backend's u64 as a JSON number while it is a safe integer, past 2^53 a decimal string. */
export type StreamId = string | number
/** A Stellar StrKey: an account (`G…`) or a contract (`C…`), with a valid checksum. */
export type Address = string
/** A non-negative decimal string of any length (an i128 value), or a safe integer. */
export type Amount = string | number
/** A u64 (a time, in seconds): a safe integer, or past 2^53 a decimal string. */
export type U64 = string | number

/**
 * Fields that no type lists pass through untouched, such as the backend's `transactionHash`,
 * `ledger` and `timestamp`: they are not checked, so they are typed as unknown.
 */
type Open<T> = T & { [field: string]: unknown }

/** `stream.created` names its stream `streamId` (the FlowFi backend) or `id` (the seed's publishers). */
export type StreamCreated = Open<({ streamId: StreamId, id?: StreamId } | { id: StreamId, streamId?: StreamId }) & {
  sender: Address
  recipient: Address
  tokenAddress?: Address
  ratePerSecond?: Amount
  depositedAmount?: Amount
  startTime?: U64
}>
export type StreamToppedUp = Open<{ streamId: StreamId, amount?: Amount, newDepositedAmount?: Amount }>
export type StreamWithdrawn = Open<{ streamId: StreamId, recipient?: Address, amount?: Amount }>
export type StreamCancelled = Open<{ streamId: StreamId, refundedAmount?: Amount, amountWithdrawn?: Amount }>
export type StreamCompleted = Open<{ streamId: StreamId, recipient?: Address, totalWithdrawn?: Amount }>
export type StreamPaused = Open<{ streamId: StreamId, sender?: Address, pausedAt?: U64 }>
export type StreamResumed = Open<{ streamId: StreamId, sender?: Address, newEndTime?: U64 }>
export type FeeCollected = Open<{ streamId: StreamId, treasury?: Address, feeAmount?: Amount, token?: Address }>
/** An admin event: it belongs to no stream. */
export type FeeConfigUpdated = Open<{
  admin?: Address
  oldTreasury?: Address
  newTreasury?: Address
  oldFeeRateBps?: number
  newFeeRateBps?: number
}>
/** An admin event: it belongs to no stream. */
export type AdminTransferred = Open<{ previousAdmin?: Address, newAdmin?: Address }>

/** Each event type's `data`. */
export interface EventData {
  'stream.created': StreamCreated
  'stream.topped_up': StreamToppedUp
  'stream.withdrawn': StreamWithdrawn
  'stream.cancelled': StreamCancelled
  'stream.completed': StreamCompleted
  'stream.paused': StreamPaused
  'stream.resumed': StreamResumed
  'stream.fee_collected': FeeCollected
  'stream.fee_config_updated': FeeConfigUpdated
  'stream.admin_transferred': AdminTransferred
}
export type EventType = keyof EventData

export const EVENT_TYPES = [
  'stream.created', 'stream.topped_up', 'stream.withdrawn', 'stream.cancelled', 'stream.completed',
  'stream.paused', 'stream.resumed', 'stream.fee_collected', 'stream.fee_config_updated', 'stream.admin_transferred'
] as const satisfies readonly EventType[]

const SENDER = 'GAAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQDZ7H'
const RECIPIENT = 'GABAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEJXA'
const ADMIN = 'GABQGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQHGPC'
const TOKEN = 'CACAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAINCW'
const TREASURY = 'GACQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKG7N'

/** A valid `data` of each type, as FlowFi's backend sends it: what the console offers to publish. */
export const EXAMPLE_DATA: { readonly [K in EventType]: EventData[K] } = {
  'stream.created': { streamId: '42', sender: SENDER, recipient: RECIPIENT, tokenAddress: TOKEN, ratePerSecond: '100', depositedAmount: '8640000', startTime: 1796200000 },
  'stream.topped_up': { streamId: '42', amount: '1000000', newDepositedAmount: '9640000' },
  'stream.withdrawn': { streamId: '42', recipient: RECIPIENT, amount: '250000' },
  'stream.cancelled': { streamId: '42', refundedAmount: '5000000', amountWithdrawn: '250000' },
  'stream.completed': { streamId: '42', recipient: RECIPIENT, totalWithdrawn: '9640000' },
  'stream.paused': { streamId: '42', sender: SENDER, pausedAt: 1796203600 },
  'stream.resumed': { streamId: '42', sender: SENDER, newEndTime: 1796300000 },
  'stream.fee_collected': { streamId: '42', treasury: TREASURY, feeAmount: '2500', token: TOKEN },
  'stream.fee_config_updated': { admin: ADMIN, oldTreasury: TREASURY, newTreasury: TREASURY, oldFeeRateBps: 25, newFeeRateBps: 30 },
  'stream.admin_transferred': { previousAdmin: ADMIN, newAdmin: SENDER }
}

/** The types that belong to no stream: they reach `all=true` and the accounts they are addressed to. */
export const STREAMLESS_EVENT_TYPES = ['stream.fee_config_updated', 'stream.admin_transferred'] as const satisfies readonly EventType[]
export type StreamlessEventType = typeof STREAMLESS_EVENT_TYPES[number]

/**
 * What a publisher sends: one event; `users`, accounts that take part in its stream (they get its
 * later events too); or `to`, the only accounts it is for (with `all=true`): it reaches no `streams=`
 * subscriber and makes nobody a participant.
 */
export type Envelope = { [K in EventType]: { event: K, data: EventData[K], users?: string[], to?: string[] } }[EventType]

/** Why a resume was answered with `events.resync`: the client refetches its state. */
export const RESYNC_REASONS = ['malformed_id', 'unknown_id', 'expired', 'replay_limit', 'gap'] as const
export type ResyncReason = typeof RESYNC_REASONS[number]
/** Why a stream ended with `events.closing`. */
export const CLOSING_REASONS = ['token_expired'] as const
export type ClosingReason = typeof CLOSING_REASONS[number]

/** The events the service itself sends, and their data. */
export interface ControlEventData {
  'events.resync': { reason: ResyncReason, lastEventId: string }
  'events.closing': { reason: ClosingReason }
}
export const RESYNC = 'events.resync' satisfies keyof ControlEventData
export const CLOSING = 'events.closing' satisfies keyof ControlEventData

/** The server's default heartbeat interval (HEARTBEAT_MS); the client waits twice that before calling a stream dead. */
export const DEFAULT_HEARTBEAT_MS = 15_000

/** The paths of the events API: served as they are and under `/v1`, where FlowFi's frontend looks for them. */
export const API_PREFIXES = ['', '/v1'] as const
export const SUBSCRIBE_PATH = '/events/subscribe'
export const PUBLISH_PATH = '/events/publish'
export const STATS_PATH = '/events/stats'

/** The query parameters of a subscription; the token ones are redacted wherever a URL is logged. */
export const QUERY = {
  streams: 'streams',
  users: 'users',
  all: 'all',
  /** Where to resume, for a new EventSource after a page reload (Last-Event-ID wins over it). */
  lastEventId: 'lastEventId',
  /** The token, when neither the Authorization header nor the cookie carries it (FlowFi's frontend). */
  token: 'token',
  accessToken: 'access_token'
} as const
export const TOKEN_PARAMETERS = [QUERY.accessToken, QUERY.token] as const
