import fp from 'fastify-plugin'
import Fastify, { type FastifyPluginCallback, type FastifyReply, type FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { Type } from '@sinclair/typebox'
import {
  CLOSE_REASONS, CONNECTION_RESULTS, REJECT_REASONS, RESYNC_REASONS, type Histogram
} from '../services/delivery-metrics.js'
import { EVENT_TYPES } from '../services/event-schema.js'
import { CHANNEL_RESULTS } from '../services/redis/channel-bridge.js'
import { readiness } from '../services/readiness.js'
import { PROTOCOLS } from '../services/transport/sink.js'
import errors, { clientErrorHandler } from './errors.js'

export interface MetricsOptions {
  /** Port of a listener of its own, on `host`; 0 serves `GET /metrics` on the main port. */
  port: number
  host: string
  /** Log lines the log destination could not write. */
  droppedLogLines: () => number
  /** Whether a Redis outage makes the instance unready, as for /readyz (READY_REQUIRES_REDIS). */
  readyRequiresRedis: boolean
}

interface Sample { labels?: Record<string, string>, value: number, metricName?: string }

/**
 * A metric read from the broker's counters when scraped, so that /metrics and /events/stats never
 * disagree. prom-client calls `get()` on anything registered.
 */
function collected (name: string, help: string, type: 'counter' | 'gauge' | 'histogram', read: () => Sample[]) {
  return { name, help, type, aggregator: 'sum' as const, get: () => ({ name, help, type, values: read(), aggregator: 'sum' }) }
}

const byLabel = <K extends string>(label: string, keys: readonly K[], counts: Record<K, number>): Sample[] =>
  keys.map(key => ({ labels: { [label]: key }, value: counts[key] }))

function histogramSamples (name: string, histogram: Histogram): Sample[] {
  let cumulative = 0
  const buckets = histogram.bounds.map((bound, i) => {
    cumulative += histogram.counts[i]!
    return { metricName: `${name}_bucket`, labels: { le: String(bound) }, value: cumulative }
  })
  return [
    ...buckets,
    { metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: histogram.count },
    { metricName: `${name}_sum`, value: histogram.sum },
    { metricName: `${name}_count`, value: histogram.count }
  ]
}

/** Its schema, for the OpenAPI document when it is served on the main port. */
const SCHEMA = {
  summary: 'Prometheus metrics',
  response: {
    200: {
      description: 'the Prometheus text format, version 0.0.4',
      content: { 'text/plain': { schema: Type.String() } }
    }
  }
}

// prom-client names these gauges with a _total suffix, which Prometheus reserves for counters.
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']

const metrics: FastifyPluginCallback<MetricsOptions> = (app, options, done) => {
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    return done(new TypeError('metrics: port must be an integer from 0 to 65535'))
  }
  // One registry per app: two apps in one process (tests, or several listeners) never collide.
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name)

  const broker = app.broker
  const m = broker.metrics
  const fanout = app.fanout
  for (const metric of [
    collected('sse_ready', 'Whether /readyz answers 200: taking new streams (0 while draining).', 'gauge',
      () => [{ value: readiness(broker.draining, fanout, options.readyRequiresRedis) === 'ready' ? 1 : 0 }]),
    collected('sse_connections_active', 'Open event streams, live or replaying.', 'gauge', () => [{ value: broker.size }]),
    collected('sse_streams_active', 'Open event streams by the protocol they came over (http1, h2).', 'gauge',
      () => byLabel('protocol', PROTOCOLS, m.activeByProtocol)),
    collected('sse_streams_opened_total', 'Event streams opened, by the protocol they came over (http1, h2).', 'counter',
      () => byLabel('protocol', PROTOCOLS, m.openedByProtocol)),
    collected('sse_connections_total', 'Subscribe requests by result: opened, or why not.', 'counter',
      () => byLabel('result', CONNECTION_RESULTS, m.connections)),
    collected('sse_connections_closed_total', 'Streams ended, by reason.', 'counter', () => byLabel('reason', CLOSE_REASONS, m.closes)),
    collected('sse_connection_duration_seconds', 'How long streams stayed open.', 'histogram',
      () => histogramSamples('sse_connection_duration_seconds', m.connectionDuration)),
    collected('sse_reconnections_total', 'Streams opened with a last event id (a resume).', 'counter', () => [{ value: m.reconnections }]),
    collected('sse_resyncs_total', 'Resumes answered with events.resync, by reason.', 'counter', () => byLabel('reason', RESYNC_REASONS, m.resyncs)),
    collected('sse_replayed_events_total', 'Events sent again to resuming streams.', 'counter', () => [{ value: m.replayed }]),
    collected('sse_events_published_total', 'Events accepted for publishing, by type.', 'counter', () => byLabel('event', EVENT_TYPES, m.published)),
    collected('sse_events_delivered_total', 'Events written to streams (one per stream per event).', 'counter', () => [{ value: m.delivered }]),
    collected('sse_events_rejected_total', 'Events refused by the publish endpoint, by reason (unauthorized counts requests).', 'counter',
      () => byLabel('reason', REJECT_REASONS, m.rejected)),
    collected('sse_publish_rate_limited_total', 'Publish requests refused for their publisher\'s quota (PUBLISH_RATE_PER_SECOND).', 'counter',
      () => [{ value: m.publishesRateLimited }]),
    collected('sse_delivery_latency_seconds', 'From publish to the write on the socket, per delivery.', 'histogram',
      () => histogramSamples('sse_delivery_latency_seconds', m.deliveryLatency)),
    collected('sse_slow_consumer_disconnects_total', 'Streams dropped for holding too many unsent bytes.', 'counter',
      () => [{ value: m.slowConsumerDisconnects }]),
    collected('sse_buffered_bytes', 'Bytes written to streams and not yet taken by their clients.', 'gauge', () => [{ value: broker.bufferedBytes() }]),
    collected('sse_history_events', 'Events kept for resume.', 'gauge', () => [{ value: broker.stats().history.events }]),
    collected('sse_log_lines_dropped_total', 'Log lines dropped: standard output refused them or was not taking them.', 'counter',
      () => [{ value: options.droppedLogLines() }])
  ]) registry.registerMetric(metric as never)
  if (fanout.mode === 'redis') {
    for (const metric of [
      collected('sse_redis_up', 'Whether both Redis connections (commands and log reader) answer.', 'gauge', () => [{ value: fanout.redisUp ? 1 : 0 }]),
      collected('sse_redis_bridge', 'Whether this instance holds the lease and logs the pub/sub channel.', 'gauge', () => [{ value: fanout.bridging ? 1 : 0 }]),
      collected('sse_channel_messages_total', 'Pub/sub channel messages taken by this instance as the bridge, by result.', 'counter',
        () => byLabel('result', CHANNEL_RESULTS, fanout.channelMessages)),
      collected('sse_redis_log_entries_skipped_total', 'Entries of the Redis log that this instance skipped: written by another client.', 'counter',
        () => [{ value: fanout.skippedLogEntries }])
    ]) registry.registerMetric(metric as never)
  }

  const serve = async (_request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> =>
    await reply.type(registry.contentType).send(await registry.metrics())

  if (options.port === 0) {
    app.get('/metrics', { schema: SCHEMA, config: { rateLimit: false } }, serve)
    return done()
  }

  // A listener of its own, so that an ingress routing the main port never exposes it by accident.
  const listener = Fastify({ logger: false, clientErrorHandler })
  listener.register(errors)
  listener.get('/metrics', { schema: SCHEMA }, serve)
  app.addHook('onReady', async () => {
    await listener.listen({ port: options.port, host: options.host })
    app.log.info({ port: options.port }, 'metrics listening')
  })
  app.addHook('onClose', async () => await listener.close())
  done()
}

export default fp(metrics, { name: 'metrics', fastify: '5.x', dependencies: ['sse-broker', 'redis-fanout'] })
