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

type Server = ReturnType<typeof startServer>

const QUICK_SHUTDOWN = { DRAIN_DELAY_MS: '0', DRAIN_WINDOW_MS: '0', SHUTDOWN_TIMEOUT_MS: '2000' }

/** The exit, or 'still running' if the process outlives SHUTDOWN_TIMEOUT_MS ten times over. */
async function exitOf (server: Server): Promise<[number | null, NodeJS.Signals | null] | 'still running'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'still running'>(resolve => { timer = setTimeout(() => resolve('still running'), 20_000) })
  try {
    return await Promise.race([server.exited, late])
  } finally {
    clearTimeout(timer)
  }
}

/** sse_log_lines_dropped_total, from /metrics on the main port (METRICS_PORT=0). */
async function droppedLogLines (url: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const match = /^sse_log_lines_dropped_total (\d+)$/m.exec(text)
  return match === null ? undefined : Number(match[1])
}

/** Everything the process wrote, once it has exited and its pipe is read to the end. */
async function allOutput (server: Server): Promise<string> {
  server.child.stdout.resume()
  if (server.child.stdout.readable) await once(server.child.stdout, 'end')
  return server.output().stdout
}

/** Whether `text` is whole JSON lines, each ending with its newline. */
function wholeLines (text: string): boolean {
  try {
    return text.endsWith('\n') && text.slice(0, -1).split('\n').every(line => JSON.parse(line) !== undefined)
  } catch {
    return false
  }
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

t.test('standard output whose reader goes away during shutdown: the process still exits cleanly, by the deadline', async t => {
  const server = startServer({ ...QUICK_SHUTDOWN, DRAIN_DELAY_MS: '500' })
  t.teardown(() => server.child.kill('SIGKILL'))
  await server.listening
  server.child.kill('SIGTERM')
  await waitUntil('the drain begins', () => server.output().stdout.includes('draining: not ready'))
  server.child.stdout.destroy() // as `| head` does: the next write gets EPIPE
  await once(server.child.stdout, 'close')
  t.same(await exitOf(server), [0, null])
})

t.test('standard output whose reader has gone: requests are served, and the lost lines counted', async t => {
  const server = startServer(QUICK_SHUTDOWN)
  t.teardown(() => server.child.kill('SIGKILL'))
  const url = await server.listening
  server.child.stdout.destroy()
  await once(server.child.stdout, 'close')
  for (let i = 0; i < 20; i++) t.equal((await fetch(`${url}/healthz`)).status, 200)
  t.ok((await droppedLogLines(url) ?? 0) >= 40, 'every request line is counted as dropped')
  server.child.kill('SIGTERM')
  t.same(await exitOf(server), [0, null])
  t.equal(server.output().stderr, '', 'no error on the way')
})

t.test('standard output that is never read: the server answers, drops lines past its buffer, exits on SIGTERM', async t => {
  const server = startServer({ ...QUICK_SHUTDOWN, RATE_LIMIT_PER_MINUTE: '100000' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const url = await server.listening
  server.child.stdout.pause() // the reader is there, but takes nothing more once its own buffer is full
  // Lines of nearly 4 KiB (the URL is logged) fill the pipe, then the buffer behind it, quickly.
  const pad = 'x'.repeat(3500)
  const statuses = new Set<number>()
  let dropped: number | undefined = 0
  for (let i = 1; i <= 2000 && dropped === 0; i++) {
    statuses.add((await fetch(`${url}/healthz?pad=${pad}`)).status)
    if (i % 50 === 0) dropped = await droppedLogLines(url)
  }
  t.same([...statuses], [200], 'every request answered')
  t.ok(dropped !== undefined && dropped > 0, 'lines were dropped: writes no longer get through')
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'the server still answers')
  server.child.kill('SIGTERM')
  t.same(await exitOf(server), [0, null])
  t.ok(wholeLines(await allOutput(server)), 'the reader gets whole lines only')
})

t.test('a normal exit writes every line, whole and in order, "closed" last', async t => {
  const server = startServer(QUICK_SHUTDOWN)
  t.teardown(() => server.child.kill('SIGKILL'))
  const url = await server.listening
  for (let i = 0; i < 20; i++) await fetch(`${url}/healthz`)
  server.child.kill('SIGTERM')
  t.same(await exitOf(server), [0, null])
  const output = await allOutput(server)
  t.ok(wholeLines(output))
  const lines = output.trim().split('\n').map(line => JSON.parse(line) as { time: number, msg: string })
  t.equal(lines.filter(line => line.msg === 'request completed').length, 20, 'every request')
  t.ok(lines.every((line, i) => i === 0 || line.time >= lines[i - 1]!.time), 'in the order they were logged')
  t.equal(lines.at(-1)!.msg, 'closed')
})
