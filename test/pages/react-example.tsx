import { useStreamEvents } from '../../client/react.js'

export function StreamActivity ({ streamId, token, refetch }: { streamId: string, token: string, refetch: () => void }) {
  const { events, connected, reconnecting, error, clearEvents } = useStreamEvents({
    url: 'https://events.flowfi.xyz', // absent: NEXT_PUBLIC_API_URL, else the page's origin
    streams: [streamId], // a new array at each render is fine: the contents count
    jwtToken: token, // or getToken: () => auth.currentToken()
    limit: 20,
    onResync: refetch // events may have been missed: refetch the stream's state
  })
  return (
    <section>
      <p>{connected ? 'live' : reconnecting ? 'reconnecting…' : error?.message ?? 'connecting…'}</p>
      <button onClick={clearEvents}>clear</button>
      <ul>
        {events.map(event => (
          <li key={event.id}>
            {event.type} at {new Date(event.timestamp).toLocaleTimeString()}
            {event.event === 'stream.withdrawn' && `: ${event.data.amount} withdrawn`}
          </li>
        ))}
      </ul>
    </section>
  )
}
