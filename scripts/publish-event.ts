// Publishes FlowFi events to a running flowfi-events from a terminal:
//   npm run publish -- stream.cancelled '{"streamId":"1"}'
//   npm run publish -- demo          (a created stream, a top-up, a withdrawal, a completion)
//   npm run publish -- stream.paused (that type's example, services/protocol.ts EXAMPLE_DATA)
// FLOWFI_EVENTS_URL (default http://localhost:3001) picks the server, PUBLISH_TOKEN the token.
import { randomBytes } from 'node:crypto'
import { encodeStellarAccountId } from '../services/stellar-key.js'
import { EVENT_TYPES, EXAMPLE_DATA, type EventType } from '../services/protocol.js'

const USAGE = `usage: npm run publish -- <event> ['<data as JSON>'] | demo   (no data: the type's example)
  event: ${EVENT_TYPES.join(', ')}`

function demoEvents (): unknown[] {
  const streamId = `demo-${Date.now()}`
  const sender = encodeStellarAccountId(randomBytes(32))
  const recipient = encodeStellarAccountId(randomBytes(32))
  return [
    { event: 'stream.created', data: { id: streamId, sender, recipient, token: 'USDC', ratePerSecond: '0.0001' } },
    { event: 'stream.topped_up', data: { streamId, amount: '25.5' } },
    { event: 'stream.withdrawn', data: { streamId, amount: '10' } },
    { event: 'stream.completed', data: { streamId } }
  ]
}

function parseArgs (args: string[]): unknown {
  const [event, data] = args
  if (event === 'demo' && data === undefined) return demoEvents()
  if (data === undefined && (EVENT_TYPES as readonly string[]).includes(event ?? '')) return { event, data: EXAMPLE_DATA[event as EventType] }
  if (event === undefined || data === undefined || args.length > 2) throw new Error(USAGE)
  try {
    return { event, data: JSON.parse(data) }
  } catch {
    throw new Error(`the data is not JSON: ${data}\n${USAGE}`)
  }
}

async function main (): Promise<number> {
  const base = process.env.FLOWFI_EVENTS_URL || 'http://localhost:3001'
  let body: unknown
  try {
    body = parseArgs(process.argv.slice(2))
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`)
    return 2
  }
  const token = process.env.PUBLISH_TOKEN
  const response = await fetch(new URL('/events/publish', base), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body)
  })
  const text = await response.text()
  const out = response.ok ? process.stdout : process.stderr
  out.write(`${response.status} ${text}\n`)
  return response.ok ? 0 : 1
}

process.exitCode = await main().catch((error: Error) => {
  process.stderr.write(`could not publish: ${error.message}${error.cause ? ` (${String(error.cause)})` : ''}\n`)
  return 1
})
