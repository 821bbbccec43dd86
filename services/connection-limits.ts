/** Why a new stream was refused by the connection limits. */
export type LimitVerdict = 'ok' | 'too_many_per_ip' | 'over_capacity'

/**
 * Caps on concurrent event streams: per client address (across the cluster with Redis), and per
 * instance. What the subscribe route sees; ConnectionCounter (one instance) and
 * ClusterConnectionCounter (with Redis) implement it.
 */
export interface ConnectionLimits {
  readonly maxPerAddress: number
  /** Takes a place for a stream from `address`, or says which cap stands in the way. */
  acquire (address: string): LimitVerdict | Promise<LimitVerdict>
  /** Gives back a place taken by `acquire`. */
  release (address: string): void
  /** Streams open from one address on this instance. */
  openFrom (address: string): number
}
