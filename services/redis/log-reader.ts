import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { EventBroker } from '../event-broker.js'
import { formatEventId, type EventId } from '../event-id.js'
import { ThrottledLog, type Logger } from '../throttled-log.js'
import type { LogReader, RedisEventLog } from './redis-event-log.js'

/** How long the reader's XREAD waits for entries before it asks again. */
export const READ_BLOCK_MS = 5000

/** Where the log's entries go: this instance's broker. */
export type LogTarget = Pick<EventBroker, 'ingest' | 'preload' | 'missedUpTo' | 'forgetUpTo'>

/**
 * Reads the Redis log into the broker: the retained history at start-up, then every entry appended,
 * on a connection of its own (its XREAD blocks, and waits through outages).
 */
export class RedisLogReader {
  #stopping = false
  /** What the reader reports can repeat without end (a foreign client's flood): a line a minute. */
  readonly #throttled: ThrottledLog
  readonly #live: LogReader

  constructor (readonly log: RedisEventLog, readonly connection: Redis, readonly broker: LogTarget, readonly logger: Logger) {
    this.#throttled = new ThrottledLog(logger)
    this.#live = { take: broker.ingest.bind(broker), missed: this.#missed, skip: this.#skip }
  }

  readonly #skip = (id: string, why: string): void => {
    this.#throttled.warn({ id, key: this.log.streamKey }, `skipped a log entry: ${why}`)
  }

  /** Entries were lost to this instance: its history stops there, and its streams must refetch. */
  readonly #missed = (upTo: EventId, why: string): void => {
    this.#throttled.error({ key: this.log.streamKey, upTo: formatEventId(upTo) }, `${why}: streams are told to resync`)
    this.broker.missedUpTo(upTo)
  }

  /** Hands the retained log to the broker as its history; resolves to how many events it held. */
  async loadHistory (): Promise<number> {
    let loaded = 0
    const history = await this.log.loadHistory({
      take: event => {
        this.broker.preload(event)
        loaded++
      },
      missed: this.#missed,
      skip: this.#skip
    })
    for (const { key, found } of history.unreadable) this.logger.warn({ key, found }, 'a key of the log holds what this service never writes; read as absent')
    if (history.trimmedUpTo !== undefined) this.broker.forgetUpTo(history.trimmedUpTo)
    return loaded
  }

  /** Reads on, entry after entry, until `stop`. */
  start (): void {
    void this.#readLoop()
  }

  /** The read waiting now still ends (when its connection closes, or never during an outage). */
  stop (): void {
    this.#stopping = true
  }

  async #readLoop (): Promise<void> {
    while (!this.#stopping) {
      try {
        await this.log.read(this.connection, READ_BLOCK_MS, this.#live)
      } catch (error) {
        if (this.#stopping) return
        this.#throttled.error({ err: error }, 'reading the event log failed; trying again in a second')
        await sleep(1000)
      }
    }
  }
}
