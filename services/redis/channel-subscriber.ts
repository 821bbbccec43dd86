import type { Redis } from 'ioredis'
import { BridgeLease } from './bridge-lease.js'
import { ChannelBridge, type ChannelBridgeOptions, type ChannelResult } from './channel-bridge.js'
import type { RedisConnections, RedisLog } from './connections.js'
import type { RedisEventLog } from './redis-event-log.js'

export interface ChannelSubscriberOptions extends Pick<ChannelBridgeOptions, 'channel' | 'maxBytes' | 'protoAction' | 'constructorAction'> {
  /** This instance, as the lease's holder. */
  holder: string
  /** How long the bridge lease lasts unrenewed (BRIDGE_LEASE_MS). */
  leaseMs: number
}

/**
 * The legacy pub/sub channel, taken by one instance at a time: the one that holds the bridge lease
 * subscribes to it on a connection of its own and logs its messages (ChannelBridge); when the lease
 * is lost, it closes that connection, and another instance takes over.
 */
export class ChannelSubscriber {
  /** The connection while this instance holds the lease; `subscribed` once Redis confirmed it. */
  #subscriber: { connection: Redis, ping: NodeJS.Timeout, subscribed: boolean } | undefined
  readonly #bridge: ChannelBridge
  readonly #lease: BridgeLease

  constructor (readonly connections: RedisConnections, log: RedisEventLog, readonly options: ChannelSubscriberOptions,
    readonly logger: RedisLog) {
    const { channel, maxBytes, protoAction, constructorAction } = options
    this.#bridge = new ChannelBridge({
      channel,
      maxBytes,
      protoAction,
      constructorAction,
      append: envelope => log.append([envelope], this.#lease.token),
      log: logger
    })
    this.#lease = new BridgeLease(connections.commands, log.leaseKey, options.holder, options.leaseMs, {
      acquired: () => this.#subscribe(),
      lost: () => this.#unsubscribe(),
      error: this.#quietly('bridge lease: Redis did not answer')
    })
  }

  /** Whether this instance holds the lease and is subscribed to the channel now. */
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
    const { channel, leaseMs } = this.options
    this.logger.info({ channel }, 'bridge lease taken: this instance logs the channel\'s messages')
    // Subscribed by hand on every connection rather than by ioredis' autoResubscribe, whose SUBSCRIBE
    // nobody awaits: `bridging` says a message published now is taken, not only that the lease is held.
    const connection = this.connections.open('bridge', { autoResubscribe: false })
    // A subscribed connection answers nothing else: a ping now and then is how a dead one is noticed.
    const ping = setInterval(() => { connection.ping().catch(this.#quietly('bridge ping: Redis did not answer')) }, leaseMs / 3)
    const subscriber = { connection, ping, subscribed: false }
    this.#subscriber = subscriber
    // As bytes: the size bound is in bytes, and an oversized message is never decoded.
    connection.on('messageBuffer', (_channel: Buffer, message: Buffer) => this.#bridge.take(message))
    connection.on('close', () => { subscriber.subscribed = false })
    connection.on('ready', () => {
      connection.subscribe(channel).then(() => { subscriber.subscribed = true }, (error: Error) => {
        this.logger.error({ err: error, channel }, 'could not subscribe to the channel: the bridge lease is given up')
        void this.#lease.yield()
      })
    })
  }

  #unsubscribe (): void {
    this.logger.warn({ channel: this.options.channel }, 'bridge lease given up or lost: another instance takes the channel over')
    // The lease alternates between taken and lost: there is a subscriber to close.
    const { connection, ping } = this.#subscriber!
    clearInterval(ping)
    this.connections.close(connection)
    this.#subscriber = undefined
  }
}
