// The browser (and Node) client of /events/subscribe: fetch plus a streaming SSE parser, so that
// the token travels in the Authorization header and reconnects are ours to schedule.
import { createParser } from 'eventsource-parser'
import { CLOSING, QUERY, RESYNC, SUBSCRIBE_PATH, DEFAULT_HEARTBEAT_MS, type ControlEventData, type EventData, type EventType } from '../services/protocol.js'
import { createSharedClient, type TabOptions } from './tabs.js'

/** `connecting` covers a reconnect that waits its backoff too. */
export type ClientState = 'connecting' | 'open' | 'closed'
export interface Filters { streams?: Array<string | number>, users?: string[], all?: boolean }
export interface EventMeta { id: string, type: string }
type Handler<K extends EventType | '*'> = (data: K extends EventType ? EventData[K] : unknown, meta: EventMeta) => void

export interface ClientOptions extends Filters, TabOptions {
  url: string
  getToken?: () => string | undefined | Promise<string | undefined>
  withCredentials?: boolean
  lastEventId?: string
  heartbeatTimeoutMs?: number
  onResync?: (data: ControlEventData[typeof RESYNC]) => void
  onAuthError?: (status: number) => void
  onStateChange?: (state: ClientState) => void
  /** An `events.closing` arrived (the token expired): called before the reconnect with a fresh token. */
  onClosing?: (data: ControlEventData[typeof CLOSING]) => void
  onError?: (error: unknown) => void
  /** Where `online` and `pageshow` are heard: the window by default; Node has none (tests pass an EventTarget). */
  events?: EventTarget
  /** Injectable for tests: timers, the clock and the random source of the jitter. */
  setTimeout?: (fn: () => void, ms: number) => unknown
  clearTimeout?: (handle: unknown) => void
  now?: () => number
  random?: () => number
  fetch?: typeof fetch
}

const MIN_BACKOFF_MS = 1000
const MAX_BACKOFF_MS = 30_000
/** The abort reason of a stream the client itself lets go (a reconnect or close()), not a failure to report. */
const REPLACED = 'replaced'
/** The network is back, or the page is back (from sleep or the back-forward cache): check the stream now. */
const WAKE_EVENTS = ['online', 'pageshow'] as const

/** Ids are `<ms>-<seq>`: compare them as numbers; an id that is not one never counts as newer. */
export function isNewer (id: string | undefined, than: string | undefined): boolean {
  // String(undefined) is no id either: an event without one never counts as newer
  const [ms, seq] = String(id).split('-').map(Number)
  if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(seq)) return false
  if (than === undefined) return true
  const [thanMs = 0, thanSeq = 0] = than.split('-').map(Number)
  return ms! > thanMs || (ms === thanMs && seq! > thanSeq)
}

export function subscribeUrl (base: string, filters: Filters): string {
  const url = new URL(base)
  if (!url.pathname.endsWith(SUBSCRIBE_PATH)) url.pathname = url.pathname.replace(/\/$/, '') + SUBSCRIBE_PATH
  // One parameter per value (`streams=1&streams=2`): the server reads a comma as part of an id.
  for (const id of filters.streams ?? []) url.searchParams.append(QUERY.streams, String(id))
  for (const user of filters.users ?? []) url.searchParams.append(QUERY.users, user)
  if (filters.all) url.searchParams.set(QUERY.all, 'true')
  return url.href
}

export function createEventsClient (options: ClientOptions): EventsClient {
  if (options.shareAcrossTabs === true) return createSharedClient(options, { connect: createEventsClient, isNewer })
  const later = options.setTimeout ?? ((fn, ms) => setTimeout(fn, ms))
  const cancel = options.clearTimeout ?? (handle => clearTimeout(handle as ReturnType<typeof setTimeout>))
  const now = options.now ?? Date.now
  const random = options.random ?? Math.random
  const doFetch = options.fetch ?? fetch
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 2 * DEFAULT_HEARTBEAT_MS
  // Outside a browser globalThis has no addEventListener: nothing to listen to.
  const wakeEvents = (options.events ?? globalThis) as Partial<EventTarget>
  const handlers = new Map<string, Set<Handler<EventType | '*'>>>()
  let filters: Filters = { streams: options.streams, users: options.users, all: options.all }
  let lastEventId = options.lastEventId
  let state: ClientState = 'connecting'
  let attempt = 0
  let serverRetryMs = 0
  let authFailures = 0
  let abort: AbortController | undefined
  /** The scheduled reconnect, while one waits. */
  let timer: unknown
  let deadTimer: unknown
  let lastByteAt = 0

  // a function, so that TypeScript does not narrow `state` across the awaits
  const isClosed = () => state === 'closed'
  const setState = (next: ClientState) => {
    if (next === state) return
    state = next
    options.onStateChange?.(next)
  }
  const backoffMs = () => Math.max(serverRetryMs, random() * Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** attempt++))
  const schedule = (ms: number) => {
    setState('connecting')
    timer = later(connect, ms)
  }
  const armDeadline = () => {
    lastByteAt = now()
    cancel(deadTimer)
    deadTimer = later(() => abort?.abort(new Error('no heartbeat')), heartbeatTimeoutMs)
  }
  // A waiting reconnect goes now; an open stream silent for longer than the heartbeat interval
  // (half the timeout) is taken as dead at once, not at its deadline.
  const check = () => {
    if (timer !== undefined || (state === 'open' && now() - lastByteAt > heartbeatTimeoutMs / 2)) void connect()
  }
  const dispatch = (type: string, id: string, data: unknown) => {
    for (const key of [type, '*']) for (const handler of handlers.get(key) ?? []) handler(data as never, { id, type })
  }

  async function connect (): Promise<void> {
    if (isClosed()) return
    cancel(timer)
    timer = undefined
    setState('connecting')
    abort?.abort(REPLACED)
    const controller = abort = new AbortController()
    let opened = false
    let reconnectNow = false
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' }
      const token = await options.getToken?.()
      if (token) headers.authorization = `Bearer ${token}`
      if (lastEventId) headers['last-event-id'] = lastEventId
      const response = await doFetch(subscribeUrl(options.url, filters), {
        headers, signal: controller.signal, credentials: options.withCredentials ? 'include' : 'same-origin'
      })
      if (response.status === 401 || response.status === 403) {
        options.onAuthError?.(response.status)
        if (response.status === 403 || ++authFailures > 1) return close()
        return void connect()
      }
      if (response.status === 400) {
        // The filters themselves are refused (an unknown id, too many): the same request would loop.
        const { message } = await response.json().catch(() => ({})) as { message?: string }
        options.onError?.(new Error(`the events service refused the subscription (400): ${message ?? 'no reason given'}`))
        return close()
      }
      if (!response.ok || !response.body) {
        // Retry-After in seconds; an absent or unreadable one counts as 0
        const retryAfterMs = (Number(response.headers.get('retry-after')) || 0) * 1000
        return schedule(Math.max(backoffMs(), retryAfterMs))
      }
      authFailures = 0
      opened = true
      setState('open')
      armDeadline()
      const parser = createParser({
        onRetry: ms => { serverRetryMs = ms },
        onEvent: ({ id, event = 'message', data }) => {
          const parsed: unknown = JSON.parse(data)
          if (event === CLOSING) {
            reconnectNow = true
            options.onClosing?.(parsed as ControlEventData[typeof CLOSING])
            return
          }
          if (event === RESYNC) {
            // The resync's own id is the newest event: the next resume starts there (none: from now).
            lastEventId = isNewer(id, undefined) ? id : undefined
            options.onResync?.(parsed as ControlEventData[typeof RESYNC])
            return
          }
          if (!isNewer(id, lastEventId)) return
          lastEventId = id!
          dispatch(event, id!, parsed)
        }
      })
      // A reader, not `for await`: Safari's streams are not async iterable.
      const reader = response.body.getReader()
      const decoder = new TextDecoder()
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        armDeadline()
        parser.feed(decoder.decode(chunk.value, { stream: true }))
        // The token expired: cancel the body from here (an abort from inside the read would hang it).
        if (reconnectNow) { void reader.cancel(); break }
      }
    } catch (error) {
      // Not the aborts of update() and close(): only a failure, or a stream found dead.
      if (controller.signal.reason !== REPLACED) options.onError?.(error)
    } finally {
      cancel(deadTimer)
    }
    if (controller !== abort || isClosed()) return
    if (opened) attempt = 0 // the stream stayed open: the next failure starts the backoff over
    if (reconnectNow) return void connect()
    schedule(backoffMs())
  }

  function close (): void {
    setState('closed')
    cancel(timer)
    cancel(deadTimer)
    abort?.abort(REPLACED)
    for (const type of WAKE_EVENTS) wakeEvents.removeEventListener?.(type, check)
  }

  for (const type of WAKE_EVENTS) wakeEvents.addEventListener?.(type, check)
  queueMicrotask(() => void connect())
  return {
    get state () { return state },
    get lastEventId () { return lastEventId },
    on<K extends EventType | '*'> (type: K, handler: Handler<K>) {
      const set = handlers.get(type) ?? new Set()
      set.add(handler as Handler<EventType | '*'>)
      handlers.set(type, set)
    },
    off<K extends EventType | '*'> (type: K, handler: Handler<K>) { handlers.get(type)?.delete(handler as Handler<EventType | '*'>) },
    /** New filters: one reconnect, resuming from the last id. */
    update (next: Filters) { filters = next; void connect() },
    close
  }
}
/** The same whether this tab holds the stream or, with shareAcrossTabs, another tab does. */
export interface EventsClient {
  readonly state: ClientState
  readonly lastEventId: string | undefined
  on<K extends EventType | '*'> (type: K, handler: Handler<K>): void
  off<K extends EventType | '*'> (type: K, handler: Handler<K>): void
  /** New filters: one reconnect, resuming from the last id. */
  update (filters: Filters): void
  close (): void
}
