import { randomUUID } from 'node:crypto'
import type { Redis, Result } from 'ioredis'

/** Takes the lease when nobody holds it, renews it when we do; 1 when ours afterwards, else 0. */
const ACQUIRE_OR_RENEW = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`

/** Gives the lease up, only if it is still ours. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    flowfiLease (key: string, owner: string, ttlMs: number): Result<number, Context>
    flowfiRelease (key: string, owner: string): Result<number, Context>
  }
}

export interface BridgeLeaseEvents {
  acquired (): void
  lost (): void
  error (error: Error): void
}

/**
 * One instance in the cluster holds the lease at a time. Each tenure has a token of its own
 * (`<holder>:<uuid>`), which writes made as the holder carry, so that a write delayed past the end of
 * one tenure cannot pass for the next.
 * Every instance tries every `ttlMs / 3`:
 * the holder renews, the others take it once it has lapsed, so a dead holder is replaced within
 * `ttlMs` and a bit. A holder that cannot renew in time gives it up on its own side as well.
 */
export class BridgeLease {
  #held = false
  #stopped = false
  #renewedAt = 0
  /** After `yield`, no attempt before this time: another instance gets its chance. */
  #pausedUntil = 0
  #timer: NodeJS.Timeout | undefined

  #token: string

  constructor (readonly redis: Redis, readonly key: string, readonly holder: string, readonly ttlMs: number,
    readonly on: BridgeLeaseEvents) {
    this.#token = this.#newToken()
    if (typeof redis.flowfiLease !== 'function') {
      redis.defineCommand('flowfiLease', { numberOfKeys: 1, lua: ACQUIRE_OR_RENEW })
      redis.defineCommand('flowfiRelease', { numberOfKeys: 1, lua: RELEASE })
    }
  }

  get held (): boolean {
    return this.#held
  }

  /** What the lease holds while it is ours. */
  get token (): string {
    return this.#token
  }

  #newToken (): string {
    return `${this.holder}:${randomUUID()}`
  }

  start (): void {
    void this.#attempt()
    this.#timer = setInterval(() => void this.#attempt(), Math.floor(this.ttlMs / 3))
    this.#timer.unref()
  }

  /** Stops trying, and hands the lease back at once so that another instance takes over sooner. */
  async stop (): Promise<void> {
    clearInterval(this.#timer)
    this.#stopped = true
    // Also when not held: an attempt still on its way may have just taken it with this token.
    const token = this.#token
    this.#set(false)
    await this.redis.flowfiRelease(this.key, token).catch(this.on.error)
  }

  /**
   * Gives the lease up because this instance cannot do what it is for (its subscription failed), and
   * stays out for two lease periods so that another instance takes it.
   */
  async yield (): Promise<void> {
    this.#pausedUntil = Date.now() + 2 * this.ttlMs
    const token = this.#token
    this.#set(false)
    await this.redis.flowfiRelease(this.key, token).catch(this.on.error)
  }

  async #attempt (): Promise<void> {
    const started = Date.now()
    if (started < this.#pausedUntil) return
    try {
      const ours = await this.redis.flowfiLease(this.key, this.#token, this.ttlMs) === 1
      if (this.#stopped) return
      if (ours) this.#renewedAt = started
      this.#set(ours)
    } catch (error) {
      if (this.#stopped) return
      this.on.error(error as Error)
      // Unrenewed for a whole lease: another instance may hold it by now.
      if (this.#held && Date.now() - this.#renewedAt >= this.ttlMs) this.#set(false)
    }
  }

  #set (held: boolean): void {
    if (held === this.#held) return
    this.#held = held
    if (held) return this.on.acquired()
    this.#token = this.#newToken()
    this.on.lost()
  }
}
