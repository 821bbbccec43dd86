// A small React 19 app on the hook, for test/react.test.ts: `show()` renders feeds, each a component
// using useStreamEvents with its options; the feeds and their state are read from the DOM.
import { StrictMode, useState } from 'react'
import { createRoot } from 'react-dom/client'
import { useStreamEvents, type UseStreamEventsOptions } from '../../client/react.js'

/** `getToken`: what the feed's getToken option returns (a function cannot come from the test as JSON). */
export interface FeedSpec { name: string, options: UseStreamEventsOptions, getToken?: string }
export interface AppSpec { feeds: FeedSpec[], strict?: boolean }

/** A copy of every array, made at each render: the hook gets new identities for the same filters. */
const copied = (options: UseStreamEventsOptions): UseStreamEventsOptions =>
  Object.fromEntries(Object.entries(options).map(([name, value]) => [name, Array.isArray(value) ? [...value] : value]))

function Feed ({ name, options, getToken }: FeedSpec) {
  const [resyncs, setResyncs] = useState(0)
  const { events, lastEvent, connected, reconnecting, error, clearEvents } = useStreamEvents({
    ...copied(options),
    ...getToken === undefined ? {} : { getToken: () => getToken },
    onResync: () => setResyncs(n => n + 1)
  })
  return (
    <section data-feed={name} data-connected={String(connected)} data-reconnecting={String(reconnecting)}
      data-error={error?.message ?? ''} data-last={lastEvent?.id ?? ''} data-resyncs={resyncs}>
      <button data-clear onClick={clearEvents}>clear</button>
      <ol>{events.map(event => <li key={event.id} data-id={event.id} data-type={event.type}>{event.event} {JSON.stringify(event.data)}</li>)}</ol>
    </section>
  )
}

/** Its button re-renders every feed: a state change in the page, as a real app has many. */
function App ({ feeds }: AppSpec) {
  const [renders, setRenders] = useState(0)
  return (
    <main data-renders={renders}>
      <button id="rerender" onClick={() => setRenders(n => n + 1)}>re-render</button>
      {feeds.map(feed => <Feed key={feed.name} {...feed} />)}
    </main>
  )
}

const root = createRoot(document.body.appendChild(document.createElement('div')))
Object.assign(globalThis, {
  show: ({ feeds, strict = false }: AppSpec) => root.render(strict ? <StrictMode><App feeds={feeds} /></StrictMode> : <App feeds={feeds} />)
})
