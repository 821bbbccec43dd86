import type { Redis, Result } from 'ioredis'
import type { ConnectionCounter } from '../connection-counter.js'
import type { ConnectionLimits, LimitVerdict } from '../connection-limits.js'

/**
 * Takes a place for one more stream from an address if the instances that are alive hold fewer than
 * the cap; forgets the counts of instances whose liveness key has expired (they crashed).
 * KEYS[1]: the address's counts, one field per instance. ARGV: this instance, the cap, the prefix of
 * the liveness keys, the counts' expiry in ms.
 */
const ACQUIRE = `
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  if fields[i] == ARGV[1] or redis.call('EXISTS', ARGV[3] .. fields[i]) == 1 then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`

/** Sets this instance's count for an address (0 removes it). KEYS[1]: the counts; ARGV: instance, count, expiry. */
const SET_COUNT = `
if tonumber(ARGV[2]) <= 0 then return redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('PEXPIRE', KEYS[1], ARGV[3])
`

/** Gives a place back. KEYS[1]: the counts; ARGV: instance. */
const RELEASE = `
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    flowfiAcquirePlace (key: string, owner: string, max: number, livenessPrefix: string, ttlMs: number): Result<number, Context>
    flowfiSetPlaces (key: string, owner: string, count: number, ttlMs: number): Result<number, Context>
    flowfiReleasePlace (key: string, owner: string): Result<number, Context>
  }
}

export interface ClusterLimitsOptions {
  /** Prepended to every key. */
  prefix: string
  /** This instance, unique in the cluster. */
  owner: string
  /** How long this instance counts as alive after its last `refresh` (a few heartbeats). */
  livenessMs: number
}

/** A day: counts of an address that nobody touched for that long are dropped by Redis. */
const COUNTS_TTL_MS = 86_400_000

/**
 * The per-address cap across every instance: each instance keeps its own count per address in Redis,
 * next to a liveness key that it refreshes with the heartbeat, so that a crashed instance's places
 * free themselves when its liveness key expires. The instance's own caps (and its total) are checked
 * first, by the local counter. When Redis does not answer, the local count alone decides, and the
 * address is set right in Redis once it is back (`reconcile`).
 */
export class ClusterConnectionCounter implements ConnectionLimits {
  /** Addresses whose count in Redis may be wrong: a command failed while Redis was away. */
  readonly #unsynced = new Set<string>()

  constructor (readonly local: ConnectionCounter, readonly redis: Redis, readonly options: ClusterLimitsOptions,
    readonly onError: (error: Error) => void) {
    if (typeof redis.flowfiAcquirePlace !== 'function') {
      redis.defineCommand('flowfiAcquirePlace', { numberOfKeys: 1, lua: ACQUIRE })
      redis.defineCommand('flowfiSetPlaces', { numberOfKeys: 1, lua: SET_COUNT })
      redis.defineCommand('flowfiReleasePlace', { numberOfKeys: 1, lua: RELEASE })
    }
  }

  get maxPerAddress (): number {
    return this.local.maxPerAddress
  }

  /** Streams open from one address on this instance. */
  openFrom (address: string): number {
    return this.local.openFrom(address)
  }

  #key (address: string): string {
    return `${this.options.prefix}places:${address}`
  }

  get #livenessPrefix (): string {
    return `${this.options.prefix}instance:`
  }

  async acquire (address: string): Promise<LimitVerdict> {
    const verdict = this.local.acquire(address)
    if (verdict !== 'ok' || this.#unsynced.has(address)) return verdict
    try {
      const taken = await this.redis.flowfiAcquirePlace(this.#key(address), this.options.owner, this.local.maxPerAddress,
        this.#livenessPrefix, COUNTS_TTL_MS)
      if (taken === 1) return 'ok'
      this.local.release(address)
      return 'too_many_per_ip'
    } catch (error) {
      this.#failed(address, error as Error)
      return 'ok'
    }
  }

  release (address: string): void {
    this.local.release(address)
    if (this.#unsynced.has(address)) return
    this.redis.flowfiReleasePlace(this.#key(address), this.options.owner).catch((error: Error) => this.#failed(address, error))
  }

  /** Says this instance is alive for another `livenessMs`; called with each heartbeat. */
  async refresh (): Promise<void> {
    await this.redis.set(`${this.#livenessPrefix}${this.options.owner}`, '1', 'PX', this.options.livenessMs)
  }

  /**
   * Writes the true count of every address whose count in Redis may be wrong (`all`: of every address
   * with streams open, as after a reconnection: an outage longer than the liveness lets other
   * instances drop this one's counts). Commands on one connection are answered in order, so an
   * acquire or release sent after a count lands after it.
   */
  async reconcile (all = false): Promise<void> {
    if (this.redis.status !== 'ready') return
    if (all) for (const address of this.local.addresses()) this.#unsynced.add(address)
    for (const address of [...this.#unsynced]) {
      this.#unsynced.delete(address)
      await this.redis.flowfiSetPlaces(this.#key(address), this.options.owner, this.local.openFrom(address), COUNTS_TTL_MS)
        .catch((error: Error) => this.#failed(address, error))
    }
  }

  /** On shutdown: this instance's places go at once, rather than when its liveness lapses. */
  async forget (): Promise<void> {
    await this.redis.del(`${this.#livenessPrefix}${this.options.owner}`)
  }

  #failed (address: string, error: Error): void {
    this.#unsynced.add(address)
    this.onError(error)
  }
}
