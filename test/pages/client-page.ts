// The plain client on a page of the service's own origin, for test/client-browser.test.ts: it follows
// the streams named in the page's query and keeps, on the window, the ids it delivered and its states.
import { createEventsClient, type ClientState } from '../../client/index.js'

declare global {
  interface Window {
    received: string[]
    states: ClientState[]
  }
}

window.received = []
window.states = []
const client = createEventsClient({
  url: location.origin,
  streams: new URL(location.href).searchParams.getAll('streams'),
  onStateChange: state => window.states.push(state)
})
client.on('stream.cancelled', (_data, { id }) => window.received.push(id))
