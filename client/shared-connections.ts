// One events client per target (url, filters, token) for the whole page, however many components
// ask for it: a registry with a reference count per connection and a deferred close.
import { createEventsClient, type EventsClient, type Filters } from './index.js'
import { EVENT_TYPES, type RESYNC, type ControlEventData, type EventData, type EventType } from '../services/protocol.js'

/** What a connection reads: the same target, the same connection. */
export interface Target {
  /** The service's base URL; absent: NEXT_PUBLIC_API_URL where the bundler defines it, else the page's origin. */
  url: string | null
  filters: Required<Filters>
  token: string | null
  withCredentials: boolean
  shareAcrossTabs: boolean
}

/** `stream.created` → `created`: the type FlowFi's hook gives its events. */
export type ShortType<K extends EventType> = K extends `stream.${infer Short}` ? Short : never

/** An event as FlowFi's hook shapes it (`type`, `data`, `timestamp`), with its full type and id. */
export type StreamEvent = { [K in EventType]: {
  type: ShortType<K>
  event: K
  data: EventData[K]
  /** The service's event id (`<ms>-<seq>`). */
  id: string
  /** When the page received it (ms since the epoch), as in FlowFi's hook. */
  timestamp: number
} }[EventType]

export interface ConnectionStatus {
  connected: boolean
  /** Not open, but trying again after a failure or a lost stream. */
  reconnecting: boolean
  error: Error | null
}

/** A component's own callbacks for its connection. */
export interface Callbacks {
  getToken?: () => string | undefined | Promise<string | undefined>
  onResync?: (data: ControlEventData[typeof RESYNC]) => void
  onAuthError?: (status: number) => void
}

/** One component's use of a connection. */
export interface Subscriber {
  onEvent (event: StreamEvent): void
  onStatus (status: ConnectionStatus): void
  /** Read at each call: a component's callbacks may change from render to render. */
  callbacks (): Callbacks
}

interface Shared {
  client: EventsClient
  subscribers: Set<Subscriber>
  status: ConnectionStatus
  closeTimer?: ReturnType<typeof setTimeout>
}

/**
 * How long a connection nobody uses stays open: StrictMode's unmount and mount, or a page that
 * replaces a component with another reading the same, keep it instead of opening a second one.
 */
export const CLOSE_DELAY_MS = 500

export const IDLE: ConnectionStatus = Object.freeze({ connected: false, reconnecting: false, error: null })

const connections = new Map<string, Shared>()
const isEventType = (type: string): type is EventType => (EVENT_TYPES as readonly string[]).includes(type)

// Declared here, as each tsconfig lacks one: client/ is also compiled with Node's types (no DOM), and
// `process` only exists where the bundler provides it.
declare const location: { origin: string }
declare const process: { env: { NEXT_PUBLIC_API_URL?: string } }

/** FlowFi's Next.js app names its API NEXT_PUBLIC_API_URL, which Next writes into the bundle. */
function defaultUrl (): string {
  let api: string | undefined
  try {
    api = process.env.NEXT_PUBLIC_API_URL
  } catch { /* no `process` in this bundle */ }
  return api || location.origin
}

/** The key of a target: two components asking for the same contents share one connection. */
export function targetKey (target: Target): string {
  return JSON.stringify([target.url, target.filters.streams, target.filters.users, target.filters.all, target.token, target.withCredentials, target.shareAcrossTabs])
}

function open (target: Target, lastEventId: string | undefined): Shared {
  const subscribers = new Set<Subscriber>()
  const setStatus = (status: ConnectionStatus) => {
    shared.status = status
    for (const subscriber of subscribers) subscriber.onStatus(status)
  }
  const failed = (error: Error) => setStatus({ connected: false, reconnecting: client.state !== 'closed', error })
  const each = (call: (callbacks: Callbacks) => void) => { for (const subscriber of subscribers) call(subscriber.callbacks()) }
  // The callbacks run once the client connects, after `shared` below is set.
  const client = createEventsClient({
    url: target.url ?? defaultUrl(),
    ...target.filters,
    withCredentials: target.withCredentials,
    shareAcrossTabs: target.shareAcrossTabs,
    lastEventId,
    // The first subscriber that brings a getToken speaks for all: they read the same, as the same user.
    getToken: () => [...subscribers].map(subscriber => subscriber.callbacks().getToken).find(getToken => getToken !== undefined)?.() ?? target.token ?? undefined,
    onResync: data => each(callbacks => callbacks.onResync?.(data)),
    onAuthError: status => {
      each(callbacks => callbacks.onAuthError?.(status))
      failed(new Error(`the events service refused the token (${status})`))
    },
    onError: error => failed(error instanceof Error ? error : new Error(String(error))),
    // The client reports `connecting` only after a stream was open (it starts there): a reconnect.
    onStateChange: state => {
      const connected = state === 'open'
      setStatus({ connected, reconnecting: state === 'connecting', error: connected ? null : shared.status.error })
    }
  })
  const shared: Shared = { client, subscribers, status: IDLE }
  client.on('*', (data, { id, type }) => {
    /* c8 ignore next */ // a type this client does not know (a newer service): FlowFi's shape has no name for it
    if (!isEventType(type)) return
    const event = { type: type.slice('stream.'.length), event: type, data, id, timestamp: Date.now() } as StreamEvent
    for (const subscriber of subscribers) subscriber.onEvent(event)
  })
  return shared
}

/**
 * Joins the connection of `target`, opening it (from `lastEventId`, when given) if there is none;
 * returns the function that leaves it. The last to leave closes it, CLOSE_DELAY_MS later.
 */
export function join (target: Target, subscriber: Subscriber, lastEventId?: string): () => void {
  const key = targetKey(target)
  let shared = connections.get(key)
  if (shared === undefined) connections.set(key, shared = open(target, lastEventId))
  clearTimeout(shared.closeTimer)
  shared.subscribers.add(subscriber)
  subscriber.onStatus(shared.status)
  const joined = shared
  return () => {
    joined.subscribers.delete(subscriber)
    if (joined.subscribers.size > 0) return
    joined.closeTimer = setTimeout(() => {
      joined.client.close()
      connections.delete(key)
    }, CLOSE_DELAY_MS)
  }
}
