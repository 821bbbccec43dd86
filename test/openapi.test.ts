import t from 'tap'
import { Value } from '@sinclair/typebox/value'
import { Validator } from '@seriousme/openapi-schema-validator'
import { EVENT_TYPES } from '../services/event-schema.js'
import { InvalidEvents } from '../routes/events/publish.js'
import { StatsBody } from '../routes/events/stats.js'
import { publish, startApp, waitUntil } from './helpers/app.js'
import { freePort, redisAnswers, redisEnv } from './helpers/redis.js'
import { subscribe } from './helpers/sse-client.js'

interface Operation { responses: Record<string, unknown>, requestBody?: { content: Record<string, { schema: any }> } }
type Document = { openapi: string, paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, any> } }

async function documentOf (url: string): Promise<Document> {
  const response = await fetch(`${url}/openapi.json`)
  t.equal(response.status, 200)
  t.match(response.headers.get('content-type'), /^application\/json/)
  return await response.json() as Document
}

/** Each path, its methods, and their response codes. */
const outline = (document: Document) => Object.fromEntries(Object.entries(document.paths).map(([path, methods]) =>
  [path, Object.fromEntries(Object.entries(methods).map(([method, operation]) => [method, Object.keys(operation.responses)]))]))

const EVENTS_API = {
  '/events/subscribe': { get: ['200', '400', '401', '403', '429', '503'] },
  '/events/publish': { post: ['202', '400', '401', '403', '413', '415', '429', '500', '503'] },
  '/events/stats': { get: ['200'] }
}

t.test('/openapi.json is a valid OpenAPI 3.1 document of both prefixes, health and metrics', async t => {
  const { url } = await startApp(t, { MAX_PUBLISH_BATCH: '7' })
  const document = await documentOf(url)
  const validator = new Validator()
  t.same(await validator.validate(document), { valid: true }, 'valid')
  t.equal(validator.version, '3.1')

  t.same(outline(document), {
    '/metrics': { get: ['200'] },
    '/healthz': { get: ['200'] },
    '/readyz': { get: ['200', '503'] },
    ...EVENTS_API,
    ...Object.fromEntries(Object.entries(EVENTS_API).map(([path, methods]) => [`/v1${path}`, methods]))
  }, 'every route, once per prefix for the events API (HEAD and /openapi.json itself are not listed)')
  t.same(document.paths['/v1/events/subscribe'], document.paths['/events/subscribe'], 'one definition under both prefixes')
  t.same(document.paths['/v1/events/publish'], document.paths['/events/publish'])

  const subscribe = document.paths['/events/subscribe']!.get as unknown as { parameters: Array<{ in: string, name: string }> }
  t.same(subscribe.parameters.map(parameter => `${parameter.in} ${parameter.name}`),
    ['query streams', 'query users', 'query all', 'query lastEventId', 'query access_token', 'query token', 'header last-event-id'])
  t.ok('text/event-stream' in (document.paths['/events/subscribe']!.get!.responses['200'] as { content: object }).content)

  // The body is described by event-schema.ts's schemas, one envelope per event type.
  const body = document.paths['/events/publish']!.post!.requestBody!.content['application/json']!.schema
  t.same(body.anyOf[0], { $ref: '#/components/schemas/Envelope' })
  t.match(body.anyOf[1], { type: 'array', minItems: 1, maxItems: 7, items: { $ref: '#/components/schemas/Envelope' } }, 'MAX_PUBLISH_BATCH')
  const envelopes = document.components.schemas.Envelope.anyOf as any[]
  t.same(envelopes.map(envelope => envelope.properties.event.enum), EVENT_TYPES.map(type => [type]), 'every event type')
  t.match(envelopes[0], {
    required: ['event', 'data'],
    additionalProperties: false,
    properties: {
      data: { required: ['sender', 'recipient'], properties: { streamId: {}, id: {}, sender: { type: 'string', format: 'stellar-address' } } },
      users: { type: 'array', maxItems: 16 },
      to: { type: 'array', maxItems: 16 }
    }
  })
})

t.test('answers are what the document says, and schemas change none of them', async t => {
  const { url } = await startApp(t)
  await subscribe(t, url, 'streams=1&all=true')
  await publish(url, [{ event: 'stream.cancelled', data: { streamId: '1' } }])
  const stats = await (await fetch(`${url}/events/stats`)).json()
  t.ok(Value.Check(StatsBody, stats), 'the stats match their schema')
  t.same(Value.Clean(StatsBody, structuredClone(stats)), stats, 'and have no field it does not describe')

  const invalid = await publish(url, [{ event: 'stream.cancelled', data: {} }, { event: 'stream.exploded' }])
  t.equal(invalid.status, 400)
  t.ok(Value.Check(InvalidEvents, invalid.body), 'the report of invalid events matches its schema')
  t.same(Value.Clean(InvalidEvents, structuredClone(invalid.body)), invalid.body)

  // Serialised as without a schema: the order of the fields and every extra one stay.
  const response = await fetch(`${url}/readyz`)
  t.equal(await response.text(), '{"status":"ready"}')
})

t.test('with Redis, the stats match their schema too', async t => {
  if (!await redisAnswers(t)) return
  const { url, app } = await startApp(t, redisEnv(t))
  await waitUntil('the bridge', () => app.fanout.bridging)
  await publish(url, { event: 'stream.cancelled', data: { streamId: '1' } })
  const stats = await (await fetch(`${url}/events/stats`)).json()
  t.match(stats, { fanout: { mode: 'redis', lastId: /^\d+-\d+$/ }, trackedStreams: null })
  t.ok(Value.Check(StatsBody, stats))
  t.same(Value.Clean(StatsBody, structuredClone(stats)), stats)
})

t.test('in production the document is served, open as a description, and lists only what is served', async t => {
  const secured = await startApp(t, { NODE_ENV: 'production', JWT_SECRET: 'a-jwt-secret-for-openapi-tests-0123456789' })
  t.equal((await fetch(`${secured.url}/events/subscribe?all=true`)).status, 401, 'the stream needs a token')
  const document = await documentOf(secured.url)
  t.ok('/v1/events/publish' in document.paths, 'publishing with events:publish tokens is served, and listed')

  // Metrics on a listener of their own, and no publishing: neither is on this port, neither is listed.
  const closed = await startApp(t, { NODE_ENV: 'production', AUTH_MODE: 'off', METRICS_PORT: String(await freePort()) })
  const paths = Object.keys((await documentOf(closed.url)).paths)
  t.same(paths, ['/healthz', '/readyz', '/events/subscribe', '/events/stats', '/v1/events/subscribe', '/v1/events/stats'])
  t.equal((await fetch(`${closed.url}/metrics`)).status, 404)
})
