import { once } from 'node:events'
import { connect } from 'node:net'
import t from 'tap'
import { publish, startApp, waitUntil } from './helpers/app.js'
import { subscribe } from './helpers/sse-client.js'

t.test('one line when a stream opens and one when it closes, none per event, none from the request logger', async t => {
  const { url, logs, app } = await startApp(t)
  const client = await subscribe(t, url, 'streams=7&all=true')
  const before = logs.length
  await publish(url, Array.from({ length: 50 }, () => ({ event: 'stream.cancelled', data: { streamId: '7' } })))
  await client.eventCount(50)
  const during = logs.slice(before)
  t.same(during.map(line => line.msg), ['incoming request', 'request completed'], 'the publish request, not its 50 deliveries')
  client.close()
  await waitUntil('the stream is gone', () => app.broker.size === 0)
  await waitUntil('the close line', () => logs.some(line => line.msg === 'stream closed'))

  const stream = logs.filter(line => typeof line.reqId === 'string' && line.reqId === logs.find(l => l.msg === 'stream opened')?.reqId)
  t.match(stream, [
    { level: 30, msg: 'stream opened', filters: { all: true, streams: ['7'], users: [] } },
    { level: 30, msg: 'stream closed', durationMs: Number, eventsSent: 50, reason: 'client_closed' }
  ])
  t.equal(stream.length, 2, 'no "incoming request" or "request completed" for an event stream')
})

t.test('tokens never reach the logs: query parameters, authorization and cookie headers', async t => {
  const { url, logs } = await startApp(t, { PUBLISH_TOKEN: 'the-real-publish-token-1234' })
  const secrets = ['QUERYSECRET123', 'HEADERSECRET456', 'COOKIESECRET789', 'the-real-publish-token-1234']
  await fetch(`${url}/events/stats?access_token=QUERYSECRET123&x=1`)
  await fetch(`${url}/nowhere?token=QUERYSECRET123`)
  await publish(url, { event: 'stream.cancelled', data: { streamId: '1' } }, {
    authorization: 'Bearer HEADERSECRET456',
    cookie: 'flowfi_token=COOKIESECRET789'
  })
  await publish(url, { event: 'stream.cancelled', data: { streamId: '1' } }, { authorization: 'Bearer the-real-publish-token-1234' })
  const client = await subscribe(t, url, 'all=true&access_token=QUERYSECRET123', { cookie: 'flowfi_token=COOKIESECRET789' })
  client.close()

  const text = JSON.stringify(logs)
  for (const secret of secrets) t.notOk(text.includes(secret), `${secret} is not in the logs`)
  t.ok(logs.some(line => (line.req as { url?: string } | undefined)?.url === '/events/stats?access_token=[REDACTED]&x=1'),
    'the URL is logged with the token replaced')
  t.ok(logs.some(line => (line.req as { url?: string } | undefined)?.url === '/nowhere?token=[REDACTED]'))
})

t.test('AUTH_MODE=off is announced with a warning at start-up', async t => {
  const { logs } = await startApp(t)
  t.ok(logs.some(line => line.level === 40 && String(line.msg).startsWith('AUTH_MODE=off: anyone can subscribe to every event')))
  const { logs: quiet } = await startApp(t, { AUTH_MODE: 'jwt', JWT_SECRET: 'x'.repeat(32) })
  t.notOk(quiet.some(line => String(line.msg).startsWith('AUTH_MODE=off')), 'and not when tokens are required')
})

t.test('a request Node refuses is logged at trace without its bytes: a token in its URL stays out', async t => {
  const { url, logs } = await startApp(t, { LOG_LEVEL: 'trace' })
  const { port } = new URL(url)
  const socket = connect(Number(port), '127.0.0.1')
  socket.end('GET /v1/events/subscribe?all=true&token=TRACESECRET42 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer HEADERSECRET42\r\nBad Header\r\n\r\n')
  const [answer] = await once(socket, 'data') as [Buffer]
  t.match(answer.toString(), /^HTTP\/1\.1 400 /)
  await waitUntil('the trace line', () => logs.some(line => line.msg === 'client error'))
  t.match(logs.find(line => line.msg === 'client error'), { level: 10, code: 'HPE_INVALID_HEADER_TOKEN', reason: String })
  t.notOk(JSON.stringify(logs).includes('SECRET42'), 'neither the query token nor the header')
  t.notOk(JSON.stringify(logs).includes('rawPacket'), 'nor the refused bytes, in any encoding')
})
