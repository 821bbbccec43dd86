import type { Redis } from 'ioredis'
import { BridgeLease } from './bridge-lease.js'
import { ChannelBridge, type ChannelBridgeOptions, type ChannelResult } from './channel-bridge.js'
import type { RedisConnections, RedisLog } from './connections.js'
import type { ChannelSource } from './channel-routes.js'
import type { RedisEventLog } from './redis-event-log.js'

export interface ChannelSubscriberOptions extends Pick<ChannelBridgeOptions, 'maxBytes' | 'protoAction' | 'constructorAction'> {
  /** The channels and patterns to take messages from (`REDIS_CHANNELS`). */
  sources: readonly ChannelSource[]
  /** This instance, as the lease's holder. */
  holder: string
  /** How long the bridge lease lasts unrenewed (BRIDGE_LEASE_MS). */
  leaseMs: number
}

/**
 * The pub/sub channels, taken by one instance at a time: the one that holds the bridge lease
 * subscribes to them (SUBSCRIBE for channels, PSUBSCRIBE for patterns) on a connection of its own and
 * logs their messages (ChannelBridge); when the lease is lost, it closes that connection, and another
 * instance takes over.
 */
export class ChannelSubscriber {
  /** The connection while this instance holds the lease; `subscribed` once Redis confirmed it. */
  #subscriber: { connection: Redis, ping: NodeJS.Timeout, subscribed: boolean } | undefined
  readonly #bridge: ChannelBridge
  readonly #lease: BridgeLease
  readonly #channels: Map<string, ChannelSource>
  readonly #patterns: Map<string, ChannelSource>
  /** What the log lines name. */
  readonly #names: string[]

  constructor (readonly connections: RedisConnections, log: RedisEventLog, readonly options: ChannelSubscriberOptions,
    readonly logger: RedisLog) {
    const { sources, maxBytes, protoAction, constructorAction } = options
    this.#channels = new Map(sources.filter(source => !source.pattern).map(source => [source.name, source]))
    this.#patterns = new Map(sources.filter(source => source.pattern).map(source => [source.name, source]))
    this.#names = sources.map(source => source.name)
    this.#bridge = new ChannelBridge({
      maxBytes,
      protoAction,
      constructorAction,
      append: (envelope, route) => log.append([envelope], this.#lease.token, [route]),
      log: logger
    })
    this.#lease = new BridgeLease(connections.commands, log.leaseKey, options.holder, options.leaseMs, {
      acquired: () => this.#subscribe(),
      lost: () => this.#unsubscribe(),
      error: this.#quietly('bridge lease: Redis did not answer')
    })
  }

  /** Whether this instance holds the lease and is subscribed to every channel and pattern now. */
  get bridging (): boolean {
    return this.#subscriber?.subscribed ?? false
  }

  /** Messages taken while this instance bridged, by what became of them. */
  get results (): Record<ChannelResult, number> {
    return this.#bridge.results
  }

  /** Competes for the lease from now on. */
  start (): void {
    this.#lease.start()
  }

  /** Hands the lease back, which also closes the subscribed connection. */
  async stop (): Promise<void> {
    await this.#lease.stop()
  }

  /** Failures that a connection's own loss line already covers: only at debug level. */
  #quietly (what: string) {
    return (error: Error): void => { this.logger.debug({ err: error }, what) }
  }

  #subscribe (): void {
    const channels = this.#names
    this.logger.info({ channels }, 'bridge lease taken: this instance logs the channel\'s messages')
    // Subscribed by hand on every connection rather than by ioredis' autoResubscribe, whose SUBSCRIBE
    // nobody awaits: `bridging` says a message published now is taken, not only that the lease is held.
    const connection = this.connections.open('bridge', { autoResubscribe: false })
    // A subscribed connection answers nothing else: a ping now and then is how a dead one is noticed.
    const ping = setInterval(() => { connection.ping().catch(this.#quietly('bridge ping: Redis did not answer')) }, this.options.leaseMs / 3)
    const subscriber = { connection, ping, subscribed: false }
    this.#subscriber = subscriber
    // As bytes: the size bound is in bytes, and an oversized message is never decoded.
    connection.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      const name = channel.toString()
      this.#bridge.take(this.#channels.get(name)!, name, message)
    })
    connection.on('pmessageBuffer', (pattern: Buffer, channel: Buffer, message: Buffer) => {
      this.#bridge.take(this.#patterns.get(pattern.toString())!, channel.toString(), message)
    })
    connection.on('close', () => { subscriber.subscribed = false })
    connection.on('ready', () => {
      Promise.all([
        this.#channels.size > 0 && connection.subscribe(...this.#channels.keys()),
        this.#patterns.size > 0 && connection.psubscribe(...this.#patterns.keys())
      ]).then(() => { subscriber.subscribed = true }, (error: Error) => {
        this.logger.error({ err: error, channels }, 'could not subscribe to the channel: the bridge lease is given up')
        void this.#lease.yield()
      })
    })
  }

  #unsubscribe (): void {
    this.logger.warn({ channels: this.#names }, 'bridge lease given up or lost: another instance takes the channel over')
    // The lease alternates between taken and lost: there is a subscriber to close.
    const { connection, ping } = this.#subscriber!
    clearInterval(ping)
    this.connections.close(connection)
    this.#subscriber = undefined
  }
}
