import type { ConnectionLimits, LimitVerdict } from './connection-limits.js'

/**
 * Counts the open streams, in all and per client address, against two caps. Memory is one entry per
 * address with streams open, none for the others.
 */
export class ConnectionCounter implements ConnectionLimits {
  readonly #perAddress = new Map<string, number>()
  #total = 0

  constructor (readonly maxPerAddress: number, readonly maxTotal: number) {
    for (const [name, value] of [['maxPerAddress', maxPerAddress], ['maxTotal', maxTotal]] as const) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`)
    }
  }

  get total (): number {
    return this.#total
  }

  /** Takes a place for a stream from `address`, or says which cap stands in the way. */
  acquire (address: string): LimitVerdict {
    if (this.#total >= this.maxTotal) return 'over_capacity'
    const count = this.#perAddress.get(address) ?? 0
    if (count >= this.maxPerAddress) return 'too_many_per_ip'
    this.#perAddress.set(address, count + 1)
    this.#total++
    return 'ok'
  }

  /** Gives back a place taken by `acquire`. */
  release (address: string): void {
    const count = this.#perAddress.get(address)
    if (count === undefined) return
    if (count <= 1) this.#perAddress.delete(address)
    else this.#perAddress.set(address, count - 1)
    this.#total--
  }

  /** The addresses with streams open. */
  addresses (): IterableIterator<string> {
    return this.#perAddress.keys()
  }

  /** Streams open from one address. */
  openFrom (address: string): number {
    return this.#perAddress.get(address) ?? 0
  }
}
