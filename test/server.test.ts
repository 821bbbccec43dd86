import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import { waitUntil } from './helpers/app.js'
import { openStream } from './helpers/sse-client.js'
import { runEntry } from './helpers/process.js'

/** Runs server.ts as the real process it is in production, on a free loopback port. */
function startServer (env: Record<string, string>) {
  const server = runEntry('server', [], { HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'info', ...env })
  const listening = new Promise<string>((resolve, reject) => {
    server.child.stdout.on('data', () => {
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(server.output().stdout)
      if (match !== null) resolve(match[1]!)
    })
    void server.exited.then(([code]) => reject(new Error(`exited with ${code}: ${server.output().stderr}`)))
  })
  listening.catch(() => {}) // a test that expects the exit does not wait for this
  return { ...server, listening }
}

t.test('a bad variable stops the process with a message naming it', async t => {
  const server = startServer({ HEARTBEAT_MS: 'often' })
  const [code] = await server.exited
  t.equal(code, 1)
  t.equal(server.output().stderr,
    'flowfi-events: bad configuration: HEARTBEAT_MS="often" is not allowed: expected an integer from 10 to 3600000\n')
})

t.test('SIGTERM: readiness fails, then the streams end, then the process exits', async t => {
  const server = startServer({ DRAIN_DELAY_MS: '300', DRAIN_WINDOW_MS: '200' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const url = await server.listening
  const client = await openStream(`${url}/events/subscribe?all=true`)
  await client.until('the retry hint', () => client.retry !== undefined)

  server.child.kill('SIGTERM')
  await waitUntil('readiness fails', async () => (await fetch(`${url}/readyz`)).status === 503)
  t.notOk(client.ended, 'while the stream is still open')
  await client.until('the end of the stream', () => client.ended)
  t.match(client.raw, /retry: \d+\n\n$/, 'the stream ends with a retry hint')
  const [code] = await server.exited
  t.equal(code, 0, 'then the process exits cleanly')
  t.equal(server.output().stderr, '', 'and printed no warning (deprecations included) along the way')
  // In the order of their timestamps: the pipe does not always deliver the lines in order.
  const messages = server.output().stdout.trim().split('\n').map(line => JSON.parse(line) as { time: number, msg: string })
    .sort((a, b) => a.time - b.time).map(line => line.msg)
  const at = (msg: string) => messages.indexOf(msg)
  t.ok(at('shutting down') >= 0 && at('shutting down') < at('draining: not ready; streams end after the delay'))
  t.ok(at('draining: not ready; streams end after the delay') < at('stream closed'))
  t.ok(at('draining: not ready; streams end after the delay') < at('drained: every stream has ended'))
  t.ok(at('drained: every stream has ended') < at('closed'), 'the server closes last')
})

t.test('the process exits by SHUTDOWN_TIMEOUT_MS even when a request hangs', async t => {
  const server = startServer({ DRAIN_DELAY_MS: '0', DRAIN_WINDOW_MS: '0', SHUTDOWN_TIMEOUT_MS: '1000' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const { port } = new URL(await server.listening)
  // A request whose body never finishes keeps the HTTP server from closing.
  const socket = net.connect(Number(port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  socket.write('POST /events/publish HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{')
  await new Promise(resolve => setTimeout(resolve, 100))
  server.child.kill('SIGTERM')
  const [code] = await server.exited
  t.equal(code, 1)
  t.match(server.output().stdout, /"level":50.*"msg":"shutdown timed out: exiting with requests still open"/)
})

t.test('a port already in use is a fatal, logged error', async t => {
  const first = startServer({})
  t.teardown(() => first.child.kill('SIGKILL'))
  const { port } = new URL(await first.listening)
  const second = startServer({ PORT: port })
  const [code] = await second.exited
  t.equal(code, 1)
  t.match(second.output().stdout, /"level":60.*"msg":"could not listen"/)
  t.match(second.output().stdout, /EADDRINUSE/)
})
