import Fastify from 'fastify'
import t from 'tap'
import errors from '../plugins/errors.js'
import sseBroker from '../plugins/sse-broker.js'
import metrics from '../plugins/metrics.js'
import redisFanout from '../plugins/redis-fanout.js'
import connectionLimiter from '../plugins/connection-limiter.js'
import streamIntake from '../plugins/stream-intake.js'

t.test('errors: a crash answers 500 with a JSON body that leaks nothing, and is logged', async t => {
  const lines: Array<Record<string, any>> = []
  const app = Fastify({ logger: { stream: { write: (line: string) => lines.push(JSON.parse(line)) } } })
  t.teardown(() => app.close())
  await app.register(errors)
  app.get('/boom', async () => { throw new Error('secret internals at /srv/db') })
  app.get('/teapot', async () => { throw Object.assign(new Error('short and stout'), { statusCode: 418 }) })
  app.get('/odd', async () => { throw Object.assign(new Error('no such status'), { statusCode: 499 }) })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })

  const boom = await fetch(`${url}/boom`)
  t.equal(boom.status, 500)
  t.same(await boom.json(), { error: 'internal_server_error', message: 'internal error; see the server log' })
  t.ok(lines.some(line => line.msg === 'request failed' && line.err?.message === 'secret internals at /srv/db'))

  const teapot = await fetch(`${url}/teapot`)
  t.equal(teapot.status, 418)
  t.same(await teapot.json(), { error: 'i_m_a_teapot', message: 'short and stout' })

  const odd = await fetch(`${url}/odd`)
  t.equal(odd.status, 499)
  t.same(await odd.json(), { error: 'error', message: 'no such status' }, 'a status with no name still gets a code')
})

const brokerOptions = {
  heartbeatMs: 1000,
  retryMs: 1000,
  maxTrackedStreams: 10,
  history: { maxEvents: 10, maxAgeMs: 1000, maxBytes: 1000 },
  maxReplay: 10,
  maxBufferedBytes: 1024,
  drainDelayMs: 0,
  drainWindowMs: 0
}

t.test('sse-broker: options are checked up front', async t => {
  for (const name of ['heartbeatMs', 'retryMs', 'maxReplay', 'maxBufferedBytes'] as const) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(sseBroker, { ...brokerOptions, [name]: 0 })
    await t.rejects(async () => await app.ready(), { message: `sse-broker: ${name} must be a positive integer` })
  }
  for (const maxStreamAgeMs of [0, 1.5]) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(sseBroker, { ...brokerOptions, maxStreamAgeMs })
    await t.rejects(async () => await app.ready(), { message: 'sse-broker: maxStreamAgeMs must be a positive integer, or unset' })
  }
})

t.test('metrics: options are checked up front', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(sseBroker, brokerOptions)
  app.register(redisFanout, { redis: undefined, instanceId: 'test', history: { maxEvents: 1, maxAgeMs: 1 } })
  app.register(metrics, { port: 70000, host: '127.0.0.1', droppedLogLines: () => 0, readyRequiresRedis: false })
  await t.rejects(async () => await app.ready(), { message: 'metrics: port must be an integer from 0 to 65535' })
})

t.test('connection-limiter: options are checked up front', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(connectionLimiter, { maxConnectionsPerIp: 0, maxConnections: 10 })
  await t.rejects(async () => await app.ready(), { message: 'connection-limiter: maxPerAddress must be a positive integer' })
})

t.test('stream-intake: options and the server are checked up front', async t => {
  const cases: Array<[string, () => ReturnType<typeof Fastify>, string, string]> = [
    ['a relative path', () => Fastify(), 'events/subscribe', 'stream-intake: path must start with /'],
    ['an HTTP/2 server', () => Fastify({ http2: true }), '/events/subscribe', 'stream-intake: the server must be a plain node:http Server'],
    ['a server without Node\'s listener', () => {
      const app = Fastify()
      app.server.removeAllListeners('connection')
      return app
    }, '/events/subscribe', 'stream-intake: the server has no HTTP connection or request listener'],
    ['a server without Fastify\'s listener', () => {
      const app = Fastify()
      app.server.removeAllListeners('request')
      return app
    }, '/events/subscribe', 'stream-intake: the server has no HTTP connection or request listener']
  ]
  for (const [what, make, path, message] of cases) {
    const app = make()
    t.teardown(() => app.close())
    app.register(streamIntake, { path })
    await t.rejects(async () => await app.ready(), { message }, what)
  }
})

t.test('stream-intake: prefixes are \'\' or paths that start with / and do not end with it', async t => {
  const message = 'stream-intake: prefixes must be a list of \'\' or paths such as /v1 (starting, not ending with /)'
  for (const prefixes of [[], ['v1'], ['/'], ['/v1/'], ['', '/v1', 'x']]) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(streamIntake, { path: '/events/subscribe', prefixes })
    await t.rejects(async () => await app.ready(), { message }, JSON.stringify(prefixes))
  }
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(streamIntake, { path: '/events/subscribe', prefixes: ['', '/v1', '/api/v2'] })
  await app.ready()
  t.pass('those are taken')
})
