import type { Redis, RedisOptions } from 'ioredis'
import type { Logger } from '../throttled-log.js'

/**
 * This instance's connections to Redis: made, watched (a loss and a return are logged once each) and,
 * for the commands connection, closed with the app by plugins/redis.ts.
 */
export interface RedisConnections {
  /** For commands (publishing, scripts, limits): fails at once while Redis is away, rather than waiting. */
  readonly commands: Redis
  /**
   * A connection of its own for `role` (the log reader's blocking XREAD, the bridge's subscription),
   * which waits through outages: what it sent is sent again on reconnection. Its owner closes it.
   */
  open (role: string, options?: RedisOptions): Redis
  /** Closes a connection that `open` made: on purpose, so not logged as a loss. */
  close (connection: Redis): void
}

/** The levels of a pino logger (Fastify's) that the Redis services write to. */
export interface RedisLog extends Logger {
  info (fields: object, message: string): void
  debug (fields: object, message: string): void
}
