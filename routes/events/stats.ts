import { Type, type TInteger } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import type { FastifyPluginCallbackTypebox } from '@fastify/type-provider-typebox'
import { version } from '../../services/version.js'
import { CHANNEL_RESULTS } from '../../services/redis/channel-bridge.js'
import { CLOSE_REASONS, REJECT_REASONS, RESYNC_REASONS } from '../../services/delivery-metrics.js'
import { EVENT_TYPES } from '../../services/event-schema.js'
import type { Fanout } from '../../services/fanout.js'
import { STATS_PATH } from '../../services/protocol.js'
import { PROTOCOLS } from '../../services/transport/sink.js'

/** The refusals of subscribe requests that a person looks at (the others are in /metrics). */
const REJECTED_CONNECTIONS = ['bad_request', 'draining', 'unavailable', 'too_many_per_ip', 'over_capacity'] as const

/** A count for each of `keys`: the lists the counters are made from, so that a new reason is described too. */
const countsOf = (keys: readonly string[]) =>
  Type.Object(Object.fromEntries(keys.map(key => [key, Type.Integer({ minimum: 0 })])) as Record<string, TInteger>)
const Count = Type.Integer({ minimum: 0 })
const PerSecond = Type.Number({ minimum: 0, description: 'the mean over the last minute' })
const EventId = Type.String({ description: 'an event id, <milliseconds>-<sequence>' })

export const StatsBody = Type.Object({
  instanceId: Type.String(),
  version: Type.String(),
  uptimeSeconds: Count,
  draining: Type.Boolean(),
  connections: Type.Object({
    active: Type.Integer({ minimum: 0, description: 'open streams, live or replaying' }),
    replaying: Type.Integer({ minimum: 0, description: 'streams still being sent what they missed' }),
    direct: Type.Integer({ minimum: 0, description: 'stream connections read before Node\'s HTTP parser (plain HTTP/1.1 only)' }),
    /** Open streams by the protocol they came over: http1 (HTTP/1.x), h2 (HTTP/2, over TLS or h2c). */
    byProtocol: countsOf(PROTOCOLS),
    byFilter: countsOf(['all', 'streams', 'users']),
    opened: Count,
    reconnections: Count,
    rejected: countsOf(REJECTED_CONNECTIONS),
    closed: countsOf(CLOSE_REASONS)
  }),
  events: Type.Object({
    published: Count,
    delivered: Count,
    publishedPerSecond: PerSecond,
    deliveredPerSecond: PerSecond,
    publishedByType: countsOf(EVENT_TYPES),
    rejected: countsOf(REJECT_REASONS),
    replayed: Count,
    deliveryLatency: Type.Object({
      count: Type.Number({ minimum: 0, description: 'deliveries measured' }),
      sumSeconds: Type.Number({ minimum: 0, description: 'their latencies added up: the mean over an interval is the change of this over the change of count' })
    }, { description: 'from publish to the write on the connection, as sse_delivery_latency_seconds' })
  }),
  resyncs: countsOf(RESYNC_REASONS),
  slowConsumerDisconnects: Count,
  bufferedBytes: Count,
  history: Type.Object({
    events: Count,
    bytes: Count,
    oldestId: Type.Union([EventId, Type.Null()]),
    newestId: Type.Union([EventId, Type.Null()])
  }),
  trackedStreams: Type.Union([Count, Type.Null()], { description: 'null with REDIS_URL: the participants live in Redis' }),
  fanout: Type.Union([
    Type.Object({ mode: Type.Literal('memory') }),
    Type.Object({
      mode: Type.Literal('redis'),
      redis: Type.Union([Type.Literal('up'), Type.Literal('down')]),
      bridging: Type.Boolean({ description: 'this instance holds the bridge lease, subscribed to the channel' }),
      lastId: Type.Optional(Type.String({ description: 'the newest event read from the log (none before the first)' })),
      channelMessages: countsOf(CHANNEL_RESULTS),
      skippedLogEntries: Count
    })
  ])
}, { description: 'the counters of this instance' })

const SCHEMA = {
  summary: 'What a person wants at a glance: connections, events, history (the counters of /metrics)',
  response: { 200: StatsBody }
}

function fanoutStats (fanout: Fanout) {
  if (fanout.mode === 'memory') return { mode: fanout.mode }
  return {
    mode: fanout.mode,
    redis: fanout.redisUp ? 'up' as const : 'down' as const,
    bridging: fanout.bridging,
    lastId: fanout.lastId,
    channelMessages: fanout.channelMessages,
    skippedLogEntries: fanout.skippedLogEntries
  }
}

export interface StatsOptions {
  instanceId: string
}

/**
 * `GET /events/stats`: what a person wants to see at a glance, from the same counters as /metrics.
 * Made once; the plugin it returns serves it under a prefix (one uptime for all of them).
 */
export function statsRoute (app: FastifyInstance, options: StatsOptions): FastifyPluginCallbackTypebox {
  const startedAt = Date.now()
  // Plain HTTP/1.1 only (see app.ts).
  const intake = app.hasDecorator('streamIntake') ? app.streamIntake : undefined
  const stats = () => {
    const now = Date.now()
    const { connections, published, delivered, history, trackedStreams } = app.broker.stats(now)
    const metrics = app.broker.metrics
    return {
      instanceId: options.instanceId,
      version,
      uptimeSeconds: Math.floor((now - startedAt) / 1000),
      draining: app.broker.draining,
      connections: {
        active: connections.total + connections.replaying,
        replaying: connections.replaying,
        direct: intake?.direct ?? 0,
        byProtocol: metrics.activeByProtocol,
        byFilter: { all: connections.all, streams: connections.streams, users: connections.users },
        opened: metrics.connections.opened,
        rejected: Object.fromEntries(REJECTED_CONNECTIONS.map(result => [result, metrics.connections[result]])),
        reconnections: metrics.reconnections,
        closed: metrics.closes
      },
      events: {
        published: published.total,
        delivered: delivered.total,
        publishedPerSecond: published.perSecond,
        deliveredPerSecond: delivered.perSecond,
        publishedByType: metrics.published,
        rejected: metrics.rejected,
        replayed: metrics.replayed,
        deliveryLatency: { count: metrics.deliveryLatency.count, sumSeconds: metrics.deliveryLatency.sum }
      },
      resyncs: metrics.resyncs,
      slowConsumerDisconnects: metrics.slowConsumerDisconnects,
      bufferedBytes: app.broker.bufferedBytes(),
      history,
      // In Redis mode the participants live in Redis, which this does not count.
      trackedStreams: app.fanout.mode === 'memory' ? trackedStreams : null,
      fanout: fanoutStats(app.fanout)
    }
  }
  return (scope, _options, done) => {
    scope.get(STATS_PATH, { schema: SCHEMA }, stats)
    done()
  }
}
