import t from 'tap'
import { startApp } from './helpers/app.js'
import { runEntry } from './helpers/process.js'
import { subscribe } from './helpers/sse-client.js'
import { EXAMPLE_DATA } from '../services/protocol.js'

const TOKEN = 'cli-test-token-0123456789'

async function cli (url: string, args: string[], env: Record<string, string> = {}) {
  const run = runEntry('scripts/publish-event', args, { FLOWFI_EVENTS_URL: url, PUBLISH_TOKEN: '', ...env })
  const [code] = await run.exited
  return { code, ...run.output() }
}

t.test('publishes one event from the command line', async t => {
  const { url } = await startApp(t, { PUBLISH_TOKEN: TOKEN })
  const client = await subscribe(t, url, 'streams=7')
  const result = await cli(url, ['stream.cancelled', '{"streamId":"7"}'], { PUBLISH_TOKEN: TOKEN })
  t.equal(result.code, 0)
  t.match(result.stdout, /^202 \{"id":"\d+-\d+"\}\n$/)
  const [event] = await client.eventCount(1)
  t.same(event, { id: JSON.parse(result.stdout.slice(4)).id, event: 'stream.cancelled', data: '{"streamId":"7"}' })
})

t.test('demo publishes the life of one stream, which a users= subscriber follows', async t => {
  const { url } = await startApp(t)
  const client = await subscribe(t, url, 'all=true')
  const result = await cli(url, ['demo'])
  t.equal(result.code, 0)
  t.match(result.stdout, /^202 \{"ids":\[/)
  const events = await client.eventCount(4)
  t.same(events.map(e => e.event), ['stream.created', 'stream.topped_up', 'stream.withdrawn', 'stream.completed'])
  const { sender } = JSON.parse(events[0]!.data)
  const { streamId } = JSON.parse(events[3]!.data)
  const follower = await subscribe(t, url, `users=${sender}`)
  await cli(url, ['stream.withdrawn', JSON.stringify({ streamId, amount: '1' })])
  const [withdrawal] = await follower.eventCount(1)
  t.equal(withdrawal!.event, 'stream.withdrawn', 'the sender learned from the demo gets its stream\'s later events')
})

t.test('an event type alone publishes that type\'s example', async t => {
  const { url } = await startApp(t)
  const client = await subscribe(t, url, 'streams=42')
  const result = await cli(url, ['stream.paused'])
  t.equal(result.code, 0)
  const [event] = await client.eventCount(1)
  t.same({ event: event!.event, data: JSON.parse(event!.data) }, { event: 'stream.paused', data: EXAMPLE_DATA['stream.paused'] })
  t.equal((await cli(url, ['stream.nope'])).code, 2, 'an unknown type alone is a usage error')
})

t.test('errors: usage, bad JSON, a refused event, no server', async t => {
  const { url } = await startApp(t, { PUBLISH_TOKEN: TOKEN })
  const usage = await cli(url, [], { FLOWFI_EVENTS_URL: '' })
  t.equal(usage.code, 2)
  t.match(usage.stderr, /^usage: npm run publish -- <event>/)
  t.equal((await cli(url, ['a', 'b', 'c'])).code, 2)

  const badJson = await cli(url, ['stream.cancelled', '{nope'])
  t.equal(badJson.code, 2)
  t.match(badJson.stderr, /^the data is not JSON: \{nope/)

  const unauthorized = await cli(url, ['stream.cancelled', '{"streamId":"1"}'])
  t.equal(unauthorized.code, 1)
  t.match(unauthorized.stderr, /^401 \{"error":"unauthorized"/)

  const invalid = await cli(url, ['stream.cancelled', '{"streamId":"no spaces"}'], { PUBLISH_TOKEN: TOKEN })
  t.equal(invalid.code, 1)
  t.match(invalid.stderr, /^400 .*\/data\/streamId must be a stream id/)

  const stopped = await startApp(t)
  await stopped.app.close()
  const down = await cli(stopped.url, ['stream.cancelled', '{"streamId":"1"}'])
  t.equal(down.code, 1)
  t.match(down.stderr, /^could not publish: fetch failed \(Error: connect ECONNREFUSED 127\.0\.0\.1:\d+\)/)

  const badUrl = await cli('not a url', ['stream.cancelled', '{"streamId":"1"}'])
  t.equal(badUrl.code, 1)
  t.equal(badUrl.stderr, 'could not publish: Invalid URL\n')
})
