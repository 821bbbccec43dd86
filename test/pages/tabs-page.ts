// A tab of test/tabs.test.ts: a client with shareAcrossTabs, on the filters named in the page's hash
// (`#streams=a&streams=b&users=G…&maxFilters=3&token=…&lastEventId=…`); what it receives is kept for the test to read.
import { createEventsClient, type ClientState } from '../../client/index.js'

const hash = new URLSearchParams(location.hash.slice(1))
const received: Array<{ id: string, type: string, streamId: unknown }> = []
const states: ClientState[] = []
const resyncs: unknown[] = []
const authErrors: number[] = []
const closings: unknown[] = []
const client = createEventsClient({
  url: location.origin,
  streams: hash.getAll('streams'),
  users: hash.getAll('users'),
  getToken: () => hash.get('token') ?? undefined,
  lastEventId: hash.get('lastEventId') ?? undefined,
  shareAcrossTabs: true,
  maxFilters: Number(hash.get('maxFilters') ?? 100),
  onStateChange: state => { states.push(state) },
  onResync: data => { resyncs.push(data) },
  onClosing: data => { closings.push(data) },
  onAuthError: status => { authErrors.push(status) }
})
client.on('*', (data, { id, type }) => { received.push({ id, type, streamId: (data as { streamId?: unknown }).streamId }) })
Object.assign(globalThis, { tab: { client, received, states, resyncs, closings, authErrors } })
