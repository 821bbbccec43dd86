import { once } from 'node:events'
import t from 'tap'
import { waitUntil } from './helpers/app.js'
import { connectH2, getH2, requestH2, subscribeH2 } from './helpers/h2.js'
import { runEntry } from './helpers/process.js'
import { makeCertificate } from './helpers/tls.js'

const certificate = makeCertificate(t)
const trusted = { ca: certificate.cert }

/** Runs server.ts as the real process it is in production, serving TLS (h2 and HTTP/1.1) on a free loopback port. */
function startServer (env: Record<string, string>) {
  const server = runEntry('server', [], { HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'info', ...certificate.env, ...env })
  const listening = new Promise<string>((resolve, reject) => {
    server.child.stdout.on('data', () => {
      const match = /Server listening at (https:\/\/127\.0\.0\.1:\d+)/.exec(server.output().stdout)
      if (match !== null) resolve(match[1]!)
    })
    void server.exited.then(([code]) => reject(new Error(`exited with ${code}: ${server.output().stderr}`)))
  })
  return { ...server, listening }
}

t.test('SIGTERM over HTTP/2: readiness fails, the sessions get GOAWAY, the streams end cleanly, the process exits', async t => {
  const server = startServer({ DRAIN_DELAY_MS: '200', DRAIN_WINDOW_MS: '200' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const url = await server.listening
  const session = await connectH2(t, url, trusted)
  const stream = await subscribeH2(t, session, 'all=true')
  // A session with no stream: only closing the server sends it away.
  const idle = await connectH2(t, url, trusted)
  t.equal((await getH2(idle, '/healthz')).status, 200)
  const order: string[] = []
  session.once('goaway', () => order.push('goaway'))
  stream.response.once('end', () => order.push('end'))
  const idleGoaway = once(idle, 'goaway')

  server.child.kill('SIGTERM')
  await waitUntil('readiness fails', async () => (await getH2(idle, '/readyz')).status === 503)
  await stream.until('the end of the stream', () => stream.ended)
  t.same(order, ['goaway', 'end'], 'GOAWAY came before the stream ended')
  t.match(stream.raw, /retry: \d+\n\n$/, 'the stream ends with a retry hint')
  t.equal(stream.response.rstCode, 0, 'and a clean end')
  await idleGoaway
  t.pass('the idle session is sent away when the server closes')
  const [code] = await server.exited
  t.equal(code, 0, 'then the process exits cleanly')
  t.equal(server.output().stderr, '', 'and printed no warning along the way')
  const messages = server.output().stdout.trim().split('\n').map(line => JSON.parse(line).msg)
  t.ok(messages.includes('stream closed') && messages.at(-1) === 'closed', 'the stream\'s last line, then "closed"')
})

t.test('the process exits by SHUTDOWN_TIMEOUT_MS even when an HTTP/2 request hangs', async t => {
  const server = startServer({ DRAIN_DELAY_MS: '0', DRAIN_WINDOW_MS: '0', SHUTDOWN_TIMEOUT_MS: '1000' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const url = await server.listening
  const session = await connectH2(t, url, trusted)
  // A request whose body never finishes keeps its stream, and so its session, open.
  const hanging = session.request({ ':method': 'POST', ':path': '/events/publish', 'content-type': 'application/json', 'content-length': '100' })
  hanging.on('error', () => {})
  hanging.write('{')
  // Once a stream has been answered, the request above has reached the server too.
  const probe = await requestH2(session, '/healthz')
  await probe.until('the probe\'s answer', () => probe.ended)
  server.child.kill('SIGTERM')
  const [code] = await server.exited
  t.equal(code, 1)
  t.match(server.output().stdout, /"level":50.*"msg":"shutdown timed out: exiting with requests still open"/)
})
