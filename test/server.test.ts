import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { openStream } from './helpers/sse-client.js'

// The entry point beside this test: server.js when the tests run compiled, server.ts under tsx.
const SERVER = fileURLToPath(new URL(`../server${extname(fileURLToPath(import.meta.url))}`, import.meta.url))

/** Runs server.ts as the real process it is in production, with only the given environment. */
function startServer (env: Record<string, string>) {
  // The test's own node options (loaders, coverage) carry over, so the child is measured too.
  const child = spawn(process.execPath, [...process.execArgv, SERVER], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', () => {
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)
      if (match !== null) resolve(match[1]!)
    })
    void exited.then(([code]) => reject(new Error(`exited with ${code}: ${stderr}`)))
  })
  listening.catch(() => {}) // a test that expects the exit does not wait for this
  return { child, exited, listening, output: () => ({ stdout, stderr }) }
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
