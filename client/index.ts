// The browser (and Node) client of /events/subscribe: fetch plus a streaming SSE parser, so that
// the token travels in the Authorization header and reconnects are ours to schedule.
import { createParser } from 'eventsource-parser'
import { CLOSING, QUERY, RESYNC, SUBSCRIBE_PATH, DEFAULT_HEARTBEAT_MS, type ControlEventData, type EventData, type EventType } from '../services/protocol.js'

export type ClientState = 'connecting' | 'open' | 'waiting' | 'closed'
export interface Filters { streams?: Array<string | number>, users?: string[], all?: boolean }
export interface EventMeta { id: string, type: string }
type Handler<K extends EventType | '*'> = (data: K extends EventType ? EventData[K] : unknown, meta: EventMeta) => void

export interface ClientOptions extends Filters {
  url: string
  getToken?: () => string | undefined | Promise<string | undefined>
  withCredentials?: boolean
  lastEventId?: string
  heartbeatTimeoutMs?: number
  onResync?: (data: ControlEventData[typeof RESYNC]) => void
  onClosing?: () => void
  onAuthError?: (status: number) => void
  onStateChange?: (state: ClientState) => void
  onError?: (error: unknown) => void
  /** Injectable for tests: timers and the random source of the jitter. */
  setTimeout?: (fn: () => void, ms: number) => unknown
  clearTimeout?: (handle: unknown) => void
  random?: () => number
  fetch?: typeof fetch
}

const MIN_BACKOFF_MS = 1000
const MAX_BACKOFF_MS = 30_000

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

export function createEventsClient (options: ClientOptions) {
  const later = options.setTimeout ?? ((fn, ms) => setTimeout(fn, ms))
  const cancel = options.clearTimeout ?? (handle => clearTimeout(handle as ReturnType<typeof setTimeout>))
  const random = options.random ?? Math.random
  const doFetch = options.fetch ?? fetch
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 2 * DEFAULT_HEARTBEAT_MS
  const handlers = new Map<string, Set<Handler<EventType | '*'>>>()
  let filters: Filters = { streams: options.streams, users: options.users, all: options.all }
  let lastEventId = options.lastEventId
  let state: ClientState = 'connecting'
  let attempt = 0
  let serverRetryMs = 0
  let authFailures = 0
  let abort: AbortController | undefined
  let timer: unknown
  let deadTimer: unknown

  // a function, so that TypeScript does not narrow `state` across the awaits
  const isClosed = () => state === 'closed'
  const setState = (next: ClientState) => {
    if (next === state) return
    state = next
    options.onStateChange?.(next)
  }
  const backoffMs = () => Math.max(serverRetryMs, random() * Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** attempt++))
  const schedule = (ms: number) => {
    setState('waiting')
    cancel(timer)
    timer = later(connect, ms)
  }
  const armDeadline = () => {
    cancel(deadTimer)
    deadTimer = later(() => abort?.abort(new Error('no heartbeat')), heartbeatTimeoutMs)
  }
  const dispatch = (type: string, id: string, data: unknown) => {
    for (const key of [type, '*']) for (const handler of handlers.get(key) ?? []) handler(data as never, { id, type })
  }

  async function connect (): Promise<void> {
    if (isClosed()) return
    setState('connecting')
    abort?.abort()
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
          if (event === CLOSING) { reconnectNow = true; options.onClosing?.(); return }
          const parsed: unknown = JSON.parse(data)
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
      if (!controller.signal.aborted || controller.signal.reason instanceof Error) options.onError?.(error)
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
    abort?.abort()
  }

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
export type EventsClient = ReturnType<typeof createEventsClient>
