// Broken networks, through a user-space TCP proxy between the clients and the service: added
// latency and jitter, the service's bytes cut into single-byte segments, every connection reset in
// the middle of a frame, then again in the middle of a replay. Every client must end with every event
// once, in order, with no resync. Then a peer that goes silent (the proxy stops reading either way,
// without a reset): how long the service keeps its place and memory, with events flowing and without.
import { publish, waitUntil } from '../helpers/app.js'
import { Instance } from './lib/instance.js'
import { audit, Balancer, IdTable, ResumingClient, startClients, startTimedClients } from './lib/resuming-client.js'
import { check, figure, mib, percentile, runScenario, size, sleep, type Cleanup } from './lib/scenario.js'
import { FaultyProxy } from './lib/tcp-proxy.js'

const CLIENTS = size('NET_CLIENTS', 50)
const EVENTS = size('NET_EVENTS', 40)
const REPLAY = size('NET_REPLAY_EVENTS', 200)
const SILENT = size('NET_SILENT_CLIENTS', 50)
const SILENT_RATE = size('NET_SILENT_RATE', 50)
const SILENT_EVENT_BYTES = 2048
const MAX_STREAM_AGE_MS = 3000
const RETRY_MS = 500

const event = (extra: Record<string, unknown> = {}) => ({ event: 'stream.cancelled', data: { streamId: 'net', sentAt: Date.now(), ...extra } })

async function publishIds (url: string, events: unknown[]): Promise<string[]> {
  const { status, body } = await publish(url, events)
  check(status === 202, `publish answered ${status}`)
  return body.ids
}

/** Streams of clients behind a proxy that goes silent: how long until the service lets them go. */
async function silentPeers (cleanup: Cleanup, env: Record<string, string>, eventsPerSecond: number):
  Promise<{ heldMs: number, peakRss: number, rssBefore: number, reason: string }> {
  const server = await Instance.start(cleanup, 'silent', { RETRY_MS: '60000', ...env })
  const proxy = await FaultyProxy.start(cleanup, server.url)
  const clients = await startClients(SILENT, 25, () => new ResumingClient(new IdTable(), new Balancer([proxy.url]), 0, 'all=true'))
  cleanup.teardown(() => clients.forEach(client => client.stop()))
  const rssBefore = await server.rss()
  proxy.silence()
  const began = Date.now()
  let peakRss = rssBefore
  let publishing = eventsPerSecond > 0
  const pad = 'p'.repeat(SILENT_EVENT_BYTES)
  const publisher = (async () => {
    for (let sent = 0; publishing; sent++) {
      await publishIds(server.url, [event({ pad })])
      const due = began + (sent + 1) * 1000 / eventsPerSecond
      if (due > Date.now()) await sleep(due - Date.now())
    }
  })()
  await waitUntil('the service lets the silent streams go', async () => {
    peakRss = Math.max(peakRss, await server.rss())
    return (await server.stats()).connections.active === 0
  }, 120_000)
  const heldMs = Date.now() - began
  publishing = false
  await publisher
  const { closed } = (await server.stats()).connections
  const reasons = Object.entries(closed as Record<string, number>).filter(([, count]) => count > 0).map(([name, count]) => `${name} ${count}`)
  server.assertAlive()
  await server.kill('SIGKILL')
  return { heldMs, peakRss, rssBefore, reason: reasons.join(', ') }
}

await runScenario('broken networks', 300_000, async cleanup => {
  const server = await Instance.start(cleanup, 'a', { RETRY_MS: String(RETRY_MS) })
  const proxy = await FaultyProxy.start(cleanup, server.url)
  const { clients, ids, latencies } = await startTimedClients(CLIENTS, 25, new Balancer([proxy.url]), 'all=true')
  cleanup.teardown(() => clients.forEach(client => client.stop()))
  const published: string[] = []
  const settle = async (phase: string): Promise<void> => {
    const last = ids.of(published.at(-1)!)
    await waitUntil(`every client has the last event (${phase})`,
      () => clients.every(client => client.failure !== undefined || client.received.at(-1) === last), 60_000)
  }
  /** `count` events at 50 a second, one a request. */
  const steady = async (count: number): Promise<void> => {
    for (let sent = 0; sent < count; sent++) {
      published.push(...await publishIds(server.url, [event()]))
      await sleep(20)
    }
  }
  const reconnections = (): number => clients.reduce((sum, client) => sum + client.reopened.length, 0)

  proxy.impairment.latencyMs = 50
  proxy.impairment.jitterMs = 100
  await steady(EVENTS)
  await settle('latency')
  figure('latency 50 ms + jitter up to 100 ms', `delivery p50 ${percentile(latencies, 0.5)} ms, p99 ${percentile(latencies, 0.99)} ms`)

  Object.assign(proxy.impairment, { latencyMs: 0, jitterMs: 0, singleBytes: true })
  latencies.length = 0
  await steady(EVENTS)
  await settle('single bytes')
  figure('single-byte segments', `delivery p50 ${percentile(latencies, 0.5)} ms, p99 ${percentile(latencies, 0.99)} ms`)
  proxy.impairment.singleBytes = false

  const resetsBefore = proxy.resets
  proxy.cutOpenMidChunk()
  await steady(EVENTS)
  await settle('reset mid-frame')
  figure('reset mid-frame', `${proxy.resets - resetsBefore} connections reset in the middle of a frame, ${reconnections()} reconnections so far`)

  // Every connection is cut once more; while the clients wait out their retry, REPLAY events are
  // published, and each reconnection is cut again in the middle of the replay of them.
  const replayResets = proxy.resets
  proxy.cutOpenMidChunk()
  published.push(...await publishIds(server.url, [event()]))
  await waitUntil('every connection is cut', () => proxy.resets - replayResets === CLIENTS, 10_000)
  proxy.cutNewCount = CLIENTS
  proxy.cutNewAfterBytes = 4096
  for (let sent = 0; sent < REPLAY; sent += 50) published.push(...await publishIds(server.url, Array.from({ length: 50 }, () => event())))
  await settle('reset mid-replay')
  const stats = await server.stats()
  figure('reset mid-replay', `${proxy.resets - replayResets - CLIENTS} reconnections reset in the middle of a replay of ${REPLAY + 1} events; ` +
    `${stats.connections.reconnections} resumes, ${stats.events.replayed} events replayed in all`)
  server.assertAlive()

  const wrong = clients.map(client => client.failure ?? audit(client, published).problem).filter(problem => problem !== undefined)
  check(wrong.length === 0, `${wrong.length} of ${CLIENTS} clients lost, doubled or reordered events: ${wrong.slice(0, 5).join('; ')}`)
  const resyncs = clients.reduce((sum, client) => sum + client.resyncs.length, 0)
  check(resyncs === 0, `${resyncs} resyncs, where every event was still in the history`)
  check(proxy.resets - replayResets - CLIENTS === CLIENTS, 'not every resumed connection was cut in the middle of its replay')

  // The silent peer: with events flowing, the streams fill their buffers and are dropped as slow
  // consumers; with nothing but heartbeats nothing ever fills, and only MAX_STREAM_AGE_MS ends them.
  const flowing = await silentPeers(cleanup, { MAX_BUFFERED_BYTES: '262144' }, SILENT_RATE)
  figure('silent peer, events flowing', `${SILENT} streams held ${flowing.heldMs} ms at ${SILENT_RATE} events/s of ${SILENT_EVENT_BYTES} B ` +
    `(closed: ${flowing.reason}); RSS ${mib(flowing.rssBefore)} before, peak ${mib(flowing.peakRss)}`)
  const idle = await silentPeers(cleanup, { HEARTBEAT_MS: '200', MAX_STREAM_AGE_MS: String(MAX_STREAM_AGE_MS) }, 0)
  figure('silent peer, heartbeats only', `${SILENT} streams held ${idle.heldMs} ms with MAX_STREAM_AGE_MS ${MAX_STREAM_AGE_MS} ` +
    `(closed: ${idle.reason}); RSS ${mib(idle.rssBefore)} before, peak ${mib(idle.peakRss)}`)
  check(flowing.peakRss <= flowing.rssBefore + SILENT * 2 * 262144 + 64 * 1048576, 'the silent streams\' memory grew past their caps')
  check(idle.heldMs <= MAX_STREAM_AGE_MS * 1.2 + 2000, `silent idle streams held ${idle.heldMs} ms, past MAX_STREAM_AGE_MS`)
})
