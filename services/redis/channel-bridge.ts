import secureJson from 'secure-json-parse'
import { validateEnvelope, type Envelope, type Route } from '../event-schema.js'
import { routeOnChannel, type ChannelSource } from './channel-routes.js'
import { ThrottledLog, type Logger } from '../throttled-log.js'

export const CHANNEL_RESULTS = ['bridged', 'malformed', 'failed'] as const
export type ChannelResult = typeof CHANNEL_RESULTS[number]

/** What is done with `__proto__` and `constructor.prototype` keys (Fastify's onProtoPoisoning, onConstructorPoisoning). */
type PoisonAction = 'error' | 'remove' | 'ignore'

export interface ChannelBridgeOptions {
  /** The HTTP body limit, in bytes: a message is taken as a body would be. */
  maxBytes: number
  protoAction: PoisonAction
  constructorAction: PoisonAction
  /** Logs one event, as the holder of the bridge lease, routed as its channel says. */
  append (envelope: Envelope, route: Route): Promise<unknown>
  log: Logger
}

/** How much of a refused message its log line shows. */
const EXCERPT_CHARACTERS = 200
/** How many of a refused event's problems its log line lists. */
const LOGGED_PROBLEMS = 3
/** What secure-json-parse throws for a `__proto__` or `constructor.prototype` key. */
const POISONED = 'Object contains forbidden prototype property'

/**
 * The channels' messages, `{event, data}` JSON as the FlowFi backend publishes it, appended to the
 * log by the instance that holds the bridge lease, once each. Each is taken as an HTTP body would be:
 * at most the body limit, parsed as Fastify parses JSON bodies, and validated as a publish is; then
 * routed as its channel says (see routeOnChannel).
 */
export class ChannelBridge {
  /** Messages taken while this instance bridged, by what became of them. */
  readonly results: Record<ChannelResult, number> = { bridged: 0, malformed: 0, failed: 0 }
  readonly #log: ThrottledLog

  constructor (readonly options: ChannelBridgeOptions) {
    this.#log = new ThrottledLog(options.log)
  }

  /** A message that came on `channel`, through `source` (the channel itself, or a pattern matching it). */
  take (source: ChannelSource, channel: string, message: Buffer): void {
    const { maxBytes } = this.options
    if (message.length > maxBytes) {
      return this.#refuse(channel, { bytes: message.length, limit: maxBytes, message }, 'channel message is larger than the body limit; dropped')
    }
    let value: unknown
    try {
      value = secureJson.parse(message, null, { protoAction: this.options.protoAction, constructorAction: this.options.constructorAction })
    } catch (error) {
      const { message: why } = error as Error
      return this.#refuse(channel, { message, why }, why === POISONED
        ? 'channel message has a __proto__ or constructor key; dropped'
        : 'channel message is not JSON; dropped')
    }
    const result = validateEnvelope(value)
    if (!result.ok) {
      const { problems } = result
      return this.#refuse(channel, { message, problems: problems.slice(0, LOGGED_PROBLEMS), problemCount: problems.length },
        'channel message is not a valid event; dropped')
    }
    const routed = routeOnChannel(source, channel, result.envelope)
    if (!routed.ok) return this.#refuse(channel, { message, why: routed.why }, 'channel message cannot be routed as its channel says; dropped')
    // Sent in the order received, on one connection: Redis appends them in that order.
    this.options.append(result.envelope, routed.route).then(() => { this.results.bridged++ }, (error: Error) => {
      this.results.failed++
      this.#log.error({ err: error, channel, event: result.envelope.event }, 'channel message could not be logged; it is lost')
    })
  }

  #refuse (channel: string, fields: { message: Buffer } & Record<string, unknown>, why: string): void {
    this.results.malformed++
    const excerpt = fields.message.subarray(0, EXCERPT_CHARACTERS * 4).toString().slice(0, EXCERPT_CHARACTERS)
    this.#log.warn({ channel, ...fields, message: excerpt }, why)
  }
}
