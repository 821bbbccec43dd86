import t from 'tap'
import { openStream } from './helpers/sse-client.js'
import { runEntry } from './helpers/process.js'

/** Runs server.ts as the real process it is in production, on a free loopback port. */
function startServer (env: Record<string, string>) {
  const server = runEntry('server', [], { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env })
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

t.test('SIGTERM ends open streams and exits cleanly', async t => {
  const server = startServer({})
  t.teardown(() => server.child.kill('SIGKILL'))
  const url = await server.listening
  const client = await openStream(`${url}/events/subscribe?all=true`)
  await client.until('the retry hint', () => client.retry !== undefined)

  server.child.kill('SIGTERM')
  await client.until('the end of the stream', () => client.ended)
  const [code] = await server.exited
  t.equal(code, 0)
  const lines = server.output().stdout.trim().split('\n').map(line => JSON.parse(line))
  t.ok(lines.some(line => line.msg === 'shutting down' && line.signal === 'SIGTERM'))
  t.ok(lines.some(line => line.msg === 'stream closed'))
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
