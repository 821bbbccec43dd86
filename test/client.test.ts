import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import t from 'tap'
import { createEventsClient, isNewer, subscribeUrl, type ClientState } from '../client/index.js'
import { publish, startApp, waitUntil } from './helpers/app.js'

const cancelled = (streamId: string) => ({ event: 'stream.cancelled', data: { streamId } })

async function publishIds (url: string, events: unknown[]): Promise<string[]> {
  const { status, body } = await publish(url, events)
  if (status !== 202) throw new Error(`publish failed: ${status}`)
  return body.ids
}

/** A clock the test advances: timers wait until `fire()` runs them, and record what they asked for. */
function manualClock () {
  const pending = new Map<number, { fn: () => void, ms: number }>()
  let next = 0
  return {
    asked: [] as number[],
    setTimeout (fn: () => void, ms: number) { pending.set(++next, { fn, ms }); this.asked.push(ms); return next },
    clearTimeout (handle: unknown) { pending.delete(handle as number) },
    /** Runs the timers that asked for at least `minMs` (the reconnect ones, not the heartbeat deadline). */
    fire (filter: (ms: number) => boolean = () => true) {
      for (const [handle, timer] of pending) if (filter(timer.ms)) { pending.delete(handle); timer.fn() }
    }
  }
}

t.test('ids compare as numbers; urls gain the subscribe path unless they have it', async t => {
  t.ok(isNewer('10-0', '9-5'))
  t.ok(isNewer('9-6', '9-5'))
  t.notOk(isNewer('9-5', '9-5'))
  t.notOk(isNewer('junk', undefined))
  t.ok(isNewer('1-0', undefined))
  t.equal(subscribeUrl('https://x.test/', { streams: [1, '2'], users: ['G'], all: true }),
    'https://x.test/events/subscribe?streams=1%2C2&users=G&all=true')
  t.equal(subscribeUrl('https://x.test/v1/events/subscribe', {}), 'https://x.test/v1/events/subscribe')
})

t.test('typed delivery, then a dropped socket resumes with nothing lost or doubled', async t => {
  const { url, app } = await startApp(t)
  const sockets = new Set<Socket>()
  app.server.on('request', (request: IncomingMessage) => {
    if (request.url?.startsWith('/events/subscribe')) sockets.add(request.socket)
  })
  const clock = manualClock()
  const states: ClientState[] = []
  const client = createEventsClient({
    url, streams: ['a'], setTimeout: clock.setTimeout.bind(clock), clearTimeout: clock.clearTimeout.bind(clock),
    random: () => 0.5, onStateChange: s => states.push(s)
  })
  t.teardown(() => client.close())
  const received: string[] = []
  const all: string[] = []
  client.on('stream.cancelled', (data, meta) => { received.push(meta.id); t.equal(data.streamId, 'a') })
  client.on('*', (_data, meta) => all.push(meta.type))
  await waitUntil('open', () => client.state === 'open')
  const before = await publishIds(url, [cancelled('a'), cancelled('a')])
  await waitUntil('2 events', () => received.length === 2)

  for (const socket of sockets) socket.destroy() // the network drops under the event stream
  await waitUntil('waiting', () => client.state === 'waiting')
  const missed = await publishIds(url, [cancelled('a'), cancelled('a')])
  clock.fire(ms => ms < 30_000)
  await waitUntil('4 events', () => received.length === 4)
  t.same(received, [...before, ...missed])
  t.same(all, Array(4).fill('stream.cancelled'))
  t.equal(client.lastEventId, missed[1])
  t.ok(states.includes('waiting') && states.at(-1) === 'open')
})

t.test('backoff: full jitter, exponential up to 30 s, never below the server retry', async t => {
  const clock = manualClock()
  let attempts = 0
  const client = createEventsClient({
    url: 'http://127.0.0.1:1', random: () => 1, setTimeout: clock.setTimeout.bind(clock), clearTimeout: clock.clearTimeout.bind(clock),
    fetch: async () => { attempts++; throw new TypeError('connection refused') }
  })
  t.teardown(() => client.close())
  for (let n = 1; n <= 7; n++) {
    await waitUntil(`attempt ${n}`, () => attempts === n && client.state === 'waiting')
    clock.fire()
  }
  t.same(clock.asked, [1000, 2000, 4000, 8000, 16000, 30000, 30000])
})
