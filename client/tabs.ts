// One stream for all the tabs of an origin (`shareAcrossTabs`): the tabs elect a leader with the Web
// Locks API; the leader holds one stream for the union of the tabs' filters and hands each event to
// the others over a BroadcastChannel; each tab keeps the events of its own filters.
import { STREAMLESS_EVENT_TYPES } from '../services/protocol.js'
import type { ClientOptions, ClientState, EventMeta, EventsClient, Filters } from './index.js'

export interface TabOptions {
  /** One stream for the tabs of this origin that use this url (each tab connects itself where the browser cannot share). */
  shareAcrossTabs?: boolean
  /** The server's MAX_FILTERS: a tab whose filters would take the shared stream past it connects alone. */
  maxFilters?: number
}

/** What this file needs of index.ts, given rather than imported: index.ts imports this file. */
export interface Direct {
  connect: (options: ClientOptions) => EventsClient
  isNewer: (id: string | undefined, than: string | undefined) => boolean
}

/** The server's default MAX_FILTERS (services/config.ts). */
const DEFAULT_MAX_FILTERS = 100

// The browser's APIs, typed here: the server's tsconfig, which compiles client/ for Node, has no DOM types.
interface Message {
  k: 'join' | 'leave' | 'hello' | 'gone' | 'members' | 'refuse' | 'event' | 'resync' | 'closing' | 'state' | 'auth'
  from: string
  filters?: Filters
  members?: Array<[string, Filters]>
  state?: ClientState
  to?: string
  type?: string
  id?: string
  data?: unknown
  status?: number
}
interface Channel {
  postMessage (message: Message): void
  close (): void
  onmessage: ((event: { data: Message }) => void) | null
}
interface Locks {
  request (name: string, hold: () => Promise<void>): Promise<void>
}
interface Web {
  isSecureContext?: boolean
  navigator?: { locks?: Locks }
  BroadcastChannel?: new (name: string) => Channel
  localStorage: { getItem (key: string): string | null, setItem (key: string, value: string): void, removeItem (key: string): void }
  addEventListener (type: string, listener: (event: { persisted?: boolean }) => void): void
  removeEventListener (type: string, listener: (event: { persisted?: boolean }) => void): void
}
const web = globalThis as unknown as Web

/** Leader or follower, or out of the group: connected alone (filters that do not fit), or closed. */
type Role = 'follower' | 'leader' | 'alone' | 'closed'
type Listener = (data: unknown, meta: EventMeta) => void

export function createSharedClient (options: ClientOptions, direct: Direct): EventsClient {
  // Node, an insecure origin, or a browser without Web Locks or BroadcastChannel: this tab connects itself.
  const locks = web.isSecureContext === true ? web.navigator?.locks : undefined
  const Channel = web.BroadcastChannel
  if (locks !== undefined && Channel !== undefined) return share(options, direct, locks, Channel)
  return direct.connect({ ...options, shareAcrossTabs: false })
}

const normalize = (filters: Filters) => ({
  streams: [...new Set((filters.streams ?? []).map(String))].sort(),
  users: [...new Set(filters.users ?? [])].sort(),
  all: filters.all === true
})
const union = (group: Filters[]) => normalize({ streams: group.flatMap(f => f.streams ?? []), users: group.flatMap(f => f.users ?? []), all: group.some(f => f.all) })
const same = (a: Filters, b: Filters) => JSON.stringify(normalize(a)) === JSON.stringify(normalize(b))

function share (options: ClientOptions, direct: Direct, locks: Locks, Channel: new (name: string) => Channel): EventsClient {
  const name = `flowfi-events ${options.url}` // the lock's, the channel's and the stored last id's
  const channel = new Channel(name)
  const me = Math.random().toString(36).slice(2)
  const maxFilters = options.maxFilters ?? DEFAULT_MAX_FILTERS
  const handlers = new Map<string, Set<Listener>>()
  let filters: Filters = { streams: options.streams, users: options.users, all: options.all }
  /** The tabs that share the stream and their filters, as the leader last told them. */
  let members = new Map<string, Filters>()
  let leader: string | undefined
  let seen = options.lastEventId
  let state: ClientState = 'connecting'
  let role: Role = 'follower'
  /** The leader's shared stream, or this tab's own when alone. */
  let stream: EventsClient | undefined
  /** The union the leader's stream was opened or last updated with. */
  let current: Filters = {}
  let release = () => {}

  const post = (message: Omit<Message, 'from'>) => channel.postMessage({ ...message, from: me })
  const join = () => post({ k: 'join', filters })
  const setState = (next: ClientState) => {
    if (next === state) return
    state = next
    options.onStateChange?.(next)
  }
  const store = (id: string | undefined) => {
    if (id === undefined) web.localStorage.removeItem(name)
    else web.localStorage.setItem(name, id)
  }

  /**
   * A tab can tell its events from the payload (as the server's routeOf does) only by stream id: tabs
   * share when every one names streams only, or when all have the same filters (and keep every event).
   * `users=` cannot be told: the server also routes by participants that the payload does not name.
   */
  const fits = (group: Filters[]) => {
    const { streams, users } = union(group)
    return streams.length + users.length <= maxFilters &&
      (group.every(f => same(f, group[0]!)) || group.every(f => !f.all && !f.users?.length))
  }
  const isMine = (type: string, data: unknown) => {
    if (role === 'alone') return true
    if (!members.has(me)) return false
    if (same(filters, union([...members.values()]))) return true
    const { streamId, id } = data as { streamId?: unknown, id?: unknown }
    return !(STREAMLESS_EVENT_TYPES as readonly string[]).includes(type) && normalize(filters).streams.includes(String(streamId ?? id))
  }
  const deliver = (type: string, id: string, data: unknown) => {
    // Every event of the shared stream moves `seen` on: after a handover, what comes again is dropped.
    if (!direct.isNewer(id, seen)) return
    seen = id
    if (isMine(type, data)) for (const key of [type, '*']) for (const handler of handlers.get(key) ?? []) handler(data, { id, type })
  }

  /** A stream of this tab's own: the group's as its leader (`lead`), or its own filters' when alone. */
  function open (group: Filters, lastEventId: string | undefined, lead: boolean): EventsClient {
    const mine = () => role === (lead ? 'leader' : 'alone')
    const client = direct.connect({
      ...options,
      ...normalize(group), // every key: a filter the group lacks must not come from `options`
      shareAcrossTabs: false,
      lastEventId,
      onStateChange: next => {
        if (!mine()) return // a stream this tab has just closed
        setState(next)
        if (lead) post({ k: 'state', state: next })
      },
      onResync: data => {
        seen = client.lastEventId
        if (lead) {
          post({ k: 'resync', id: seen, data })
          store(seen)
        }
        options.onResync?.(data)
      },
      onClosing: data => {
        if (lead) post({ k: 'closing', data })
        options.onClosing?.(data)
      },
      onAuthError: status => {
        if (lead) post({ k: 'auth', status })
        options.onAuthError?.(status)
      }
    })
    client.on('*', (data, { id, type }) => {
      if (lead) {
        // Posted before it is stored: a leader that dies in between makes the next resume earlier, not later.
        post({ k: 'event', type, id, data })
        store(id)
      }
      deliver(type, id, data)
    })
    return client
  }

  /** The group changed: the stream follows its union (one reconnect, resuming), and the tabs learn it. */
  function regroup (): void {
    const next = union([...members.values()])
    if (!same(next, current)) stream!.update(next)
    current = next
    post({ k: 'members', members: [...members], state })
  }
  /** A tab's filters for the group: in if they fit, else that tab connects alone. */
  function admit (tab: string, next: Filters): void {
    const group = new Map(members).set(tab, next)
    if (fits([...group.values()])) members = group
    else if (tab === me) return alone()
    else {
      members.delete(tab)
      post({ k: 'refuse', to: tab })
    }
    regroup()
  }

  async function lead (): Promise<void> {
    // A tab that has left still gets the lock in its turn, and passes it on at once.
    if (role !== 'follower') return
    role = 'leader'
    // A follower that has heard from a leader takes over: it resumes from the newest id that tab had.
    if (leader !== undefined) {
      members.delete(leader)
      const stored = web.localStorage.getItem(name) ?? undefined
      if (direct.isNewer(stored, seen)) seen = stored
    }
    leader = me
    members.set(me, filters)
    current = union([...members.values()])
    stream = open(current, seen, true)
    post({ k: 'hello' })
    post({ k: 'members', members: [...members], state })
    await new Promise<void>(resolve => { release = resolve })
  }

  /** Leaves the group: a leader closes its stream and lets the next tab take the lock (a follower, when its turn comes). */
  function leave (next: Role): void {
    const was = role
    role = next
    if (was !== 'follower') stream!.close()
    if (was === 'alone') return
    web.removeEventListener('pagehide', hidden)
    web.removeEventListener('pageshow', shown)
    post({ k: was === 'leader' ? 'gone' : 'leave' })
    channel.close()
    release()
  }

  function alone (): void {
    leave('alone')
    stream = open(filters, seen, false)
  }

  channel.onmessage = ({ data: message }) => {
    if (role === 'leader') {
      if (message.k === 'join') admit(message.from, message.filters!)
      if (message.k === 'leave' && members.delete(message.from)) regroup()
      return
    }
    if (message.k === 'hello') {
      leader = message.from
      join()
    } else if (message.k === 'members') {
      leader = message.from
      members = new Map(message.members)
      if (members.has(me)) setState(message.state!)
    } else if (message.k === 'refuse' && message.to === me) {
      alone()
    } else if (message.k === 'event') {
      deliver(message.type!, message.id!, message.data)
    } else if (message.k === 'resync') {
      seen = message.id
      options.onResync?.(message.data as never)
    } else if (message.k === 'closing') {
      options.onClosing?.(message.data as never)
    } else if (message.k === 'state' && members.has(me)) {
      setState(message.state!)
    } else if (message.k === 'auth') {
      options.onAuthError?.(message.status!)
    } else if (message.k === 'gone') {
      setState('connecting')
    }
  }
  // A follower tab that goes away (or into the back-forward cache) leaves the union, and comes back.
  const hidden = () => { if (role === 'follower') post({ k: 'leave' }) }
  const shown = (event: { persisted?: boolean }) => { if (event.persisted === true && role === 'follower') join() }
  web.addEventListener('pagehide', hidden)
  web.addEventListener('pageshow', shown)
  join()
  // Held for the tab's lifetime: the browser releases it when the tab goes, and the next tab leads.
  void locks.request(name, lead)

  return {
    get state () { return state },
    get lastEventId () { return seen },
    on (type, handler) {
      const set = handlers.get(type) ?? new Set()
      set.add(handler as Listener)
      handlers.set(type, set)
    },
    off (type, handler) { handlers.get(type)?.delete(handler as Listener) },
    update (next) {
      filters = next
      if (role === 'alone') stream!.update(next)
      else if (role === 'leader') admit(me, next)
      else if (fits([...new Map(members).set(me, next).values()])) join()
      else alone()
    },
    close () {
      if (role === 'closed') return
      leave('closed')
      setState('closed')
    }
  }
}
