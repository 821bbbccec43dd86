// The React hook (`flowfi-events/react`): FlowFi's `useStreamEvents`, on the events client. The
// connection follows the contents of the filters, never their identity, and is shared by every
// component that reads the same.
import { useCallback, useEffect, useRef, useState } from 'react'
import { IDLE, join, targetKey, type Callbacks, type ConnectionStatus, type StreamEvent, type Target } from './shared-connections.js'
import type { Filters } from './index.js'

export type { ConnectionStatus, StreamEvent } from './shared-connections.js'

export interface UseStreamEventsOptions extends Filters, Callbacks {
  /** The service's base URL; absent: NEXT_PUBLIC_API_URL where the bundler defines it, else the page's origin. */
  url?: string
  withCredentials?: boolean
  /** One stream for all the tabs of the origin (the client's `shareAcrossTabs`). */
  shareAcrossTabs?: boolean
  /** How many events `events` keeps, newest first (default 100, as FlowFi's hook). */
  limit?: number
  /** FlowFi's name for `streams`; ignored with `subscribeToAll`, as FlowFi's hook does. */
  streamIds?: string[]
  /** FlowFi's name for `users` (which FlowFi's own hook never sent). */
  userPublicKeys?: string[]
  /** FlowFi's name for `all`. */
  subscribeToAll?: boolean
  /** FlowFi's token option: sent as `Authorization: Bearer`, never in the URL. `getToken` wins over it. */
  jwtToken?: string
  /** @deprecated FlowFi's option, accepted and ignored: the client always reconnects. */
  autoReconnect?: boolean
  /** @deprecated FlowFi's option, accepted and ignored: the client waits 1 s to 30 s, with jitter. */
  maxRetryDelay?: number
}

export interface UseStreamEventsReturn extends ConnectionStatus {
  /** Newest first, at most `limit`. */
  events: StreamEvent[]
  /** The newest event received, also after `clearEvents`; null before the first. */
  lastEvent: StreamEvent | null
  clearEvents: () => void
}

const DEFAULT_LIMIT = 100

/** Sorted and without repeats: `['2', '1', '1']` reads what `['1', '2']` reads. */
const canonical = (values: Array<string | number>): string[] => [...new Set(values.map(String))].sort()

/** The contents the connection depends on, from our options and FlowFi's. */
function targetOf (options: UseStreamEventsOptions): Target {
  const flowfiStreams = options.subscribeToAll ? [] : options.streamIds ?? []
  return {
    url: options.url ?? null,
    filters: {
      streams: canonical([...options.streams ?? [], ...flowfiStreams]),
      users: canonical([...options.users ?? [], ...options.userPublicKeys ?? []]),
      all: Boolean(options.all || options.subscribeToAll)
    },
    token: options.jwtToken ?? null,
    withCredentials: Boolean(options.withCredentials),
    shareAcrossTabs: Boolean(options.shareAcrossTabs)
  }
}

const subscribesToSomething = ({ filters }: Target): boolean => filters.all || filters.streams.length + filters.users.length > 0

interface Received { events: StreamEvent[], lastEvent: StreamEvent | null }
const NOTHING: Received = { events: [], lastEvent: null }

/**
 * The events of a subscription, newest first, and its connection's status. Without streams, users
 * or all there is nothing to read and no connection.
 */
export function useStreamEvents (options: UseStreamEventsOptions = {}): UseStreamEventsReturn {
  const target = targetOf(options)
  const key = targetKey(target)
  const latest = useRef(options)
  const lastId = useRef<string | undefined>(undefined)
  const [received, setReceived] = useState(NOTHING)
  const [status, setStatus] = useState(IDLE)

  // Declared before the connection's effect, so that it runs first: callbacks and limit of this render.
  useEffect(() => { latest.current = options })
  useEffect(() => {
    if (!subscribesToSomething(target)) {
      setStatus(IDLE)
      return
    }
    // A new target resumes from the last event this component saw, as the client's update() does.
    return join(target, {
      callbacks: () => latest.current,
      onStatus: setStatus,
      onEvent: event => {
        lastId.current = event.id
        const limit = latest.current.limit ?? DEFAULT_LIMIT
        setReceived(({ events }) => ({ events: [event, ...events].slice(0, limit), lastEvent: event }))
      }
    }, lastId.current)
    // `key` stands for `target`'s contents: a new array with the same ids is the same target.
  }, [key])

  const clearEvents = useCallback(() => setReceived(({ lastEvent }) => ({ events: [], lastEvent })), [])
  return { ...received, ...status, clearEvents }
}
