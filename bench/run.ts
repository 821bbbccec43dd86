// npm run bench -- [--smoke] [--check] [--connections 10000] [--max-connections 19000]
//                  [--only idle,light,burst,targeted] [--targets flowfi,redis,naive,nchan] [--json results.json]
//                  [--node-flags "--max-semi-space-size=4"] [--h2-connections 2000] [--h2c-streams 10000]
// --smoke: a few hundred connections, seconds (what CI runs); --check: exit 1 if flowfi-events lost,
// doubled or refused anything, and, in a full run (not --smoke, whose few deliveries make CPU figures
// noise), if h2c's CPU per delivery is above 1.5x our HTTP/1.1's of the same run. The h2 scenarios
// (`--only h2`, in the default set): TLS+h2 with one stream per connection, beside our TLS+HTTP/1.1,
// a bare node:http2 TLS server (Node's floor) and nginx + nchan plain, TLS+HTTP/1.1 and TLS+h2; h2c
// with 100 streams per session; each against our HTTP/1.1; their certificate is made by openssl in a
// temporary folder at run time. flowfi-events runs with the Node flags of `npm start`; --node-flags
// adds others, to weigh a tuning against the same baselines.
//
// Runs each scenario against flowfi-events and, in the same run, against the baselines: a naive
// Node http SSE server (bench/naive-server.ts) and nginx with nchan when it is installed. The light and
// burst scenarios also run flowfi-events in Redis mode (REDIS_URL, the Redis on 127.0.0.1:6379), whose
// ratio is against the in-memory mode and whose CPU figure includes redis-server's. Servers are
// pinned to CPU 0 and the load generator to CPU 1; every figure is also given as a ratio against
// each baseline, because absolute numbers on a shared machine drift from run to run.
import { fork, spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { ConnectResult, LoadgenRequest, Protocol, PublishRequest, PublishResult } from './loadgen.js'
import { makeCertificate, type Certificate } from '../test/helpers/tls.js'

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url))
const NCHAN_MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so'
const TOKEN = 'bench-publish-token-0123456789'
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const CLOCK_TICKS = 100 // USER_HZ on Linux

interface Options {
  smoke: boolean
  check: boolean
  connections: number
  maxConnections: number
  only: string[]
  targets: string[]
  json: string | undefined
  nodeFlags: string[]
  /** TLS+h2 connections, and h2c streams, of the h2 scenarios. */
  h2Connections: number
  h2cStreams: number
}

/** Streams per h2c session: the server's default HTTP2_MAX_STREAMS. */
const H2C_STREAMS_PER_SESSION = 100

function parseOptions (argv: string[]): Options {
  const value = (name: string): string | undefined => {
    const at = argv.indexOf(`--${name}`)
    return at >= 0 ? argv[at + 1] : undefined
  }
  const smoke = argv.includes('--smoke')
  return {
    smoke,
    check: argv.includes('--check'),
    connections: Number(value('connections') ?? (smoke ? 300 : 10_000)),
    maxConnections: Number(value('max-connections') ?? (smoke ? 500 : 19_000)),
    only: (value('only') ?? 'idle,light,burst,targeted,h2').split(','),
    targets: (value('targets') ?? 'flowfi,redis,naive,nchan').split(','),
    json: value('json'),
    nodeFlags: (value('node-flags') ?? '').split(' ').filter(flag => flag !== ''),
    h2Connections: Number(value('h2-connections') ?? (smoke ? 100 : 2000)),
    h2cStreams: Number(value('h2c-streams') ?? (smoke ? 200 : 10_000))
  }
}

// --- servers -------------------------------------------------------------------------------------

interface Server {
  /** The process whose memory is measured. */
  pid: number
  /** The processes whose CPU time is counted: the server, and what it needs to work (Redis). */
  cpuPids: number[]
  stop (): Promise<void>
}

interface Target {
  name: string
  /** What its port speaks. */
  protocol: Protocol
  start (port: number): Promise<Server>
  subscribePath (stream: string | undefined): string
  publish (stream: string, body: string): { path: string, headers: Record<string, string>, template: string }
}

/** Spawns a command with the file-descriptor limit raised to the hard limit. */
function spawnWithFds (command: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', command, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit']
  })
}

function pin (pid: number, cpu: number): void {
  if (availableParallelism() > 1) execFileSync('taskset', ['-a', '-pc', String(cpu), String(pid)], { stdio: 'ignore' })
}

async function waitForPort (port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`)
    const open = await new Promise<boolean>(resolve => {
      const socket = net.connect({ port, host: '127.0.0.1' })
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    await sleep(50)
  }
  throw new Error(`nothing listens on ${port}`)
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

/** The Node flags `npm start` runs the server with, so that the benchmark measures it as shipped. */
function startFlags (): string[] {
  const { scripts } = JSON.parse(readFileSync(here('../../package.json'), 'utf8')) as { scripts: { start: string } }
  const flags = /\bnode ((?:--\S+ )*)dist\/server\.js/.exec(scripts.start)?.[1] ?? ''
  return flags.split(' ').filter(flag => flag !== '')
}

/** Flags for the flowfi-events processes: those of `npm start`, then --node-flags (the last one wins). */
const flowfiFlags: string[] = startFlags()

function nodeTarget (name: string, script: string, env: Record<string, string>, subscribePath: Target['subscribePath'],
  publish: Target['publish'], flags: string[] = [], protocol: Protocol = 'http1'): Target {
  return {
    name,
    protocol,
    async start (port) {
      const child = spawnWithFds(process.execPath, [...flags, here(script)], { ...env, PORT: String(port) })
      await waitForPort(port, child)
      pin(child.pid!, 0)
      return { pid: child.pid!, cpuPids: [child.pid!], stop: async () => await stopChild(child) }
    },
    subscribePath,
    publish
  }
}

const subscribeQuery = (stream: string | undefined): string =>
  `/events/subscribe?${stream === undefined ? 'all=true' : `streams=${stream}`}`
const envelope = (stream: string, body: string): string => `{"event":"stream.topped_up","data":${body.replace('{', `{"streamId":"${stream}",`)}}`

const flowfiEnv = {
  HOST: '127.0.0.1',
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  METRICS_PORT: '0',
  PUBLISH_TOKEN: TOKEN,
  // The baselines check no tokens; the limits stay on, set past what the load generator needs.
  AUTH_MODE: 'off',
  MAX_CONNECTIONS_PER_IP: '1000000',
  MAX_CONNECTIONS: '1000000',
  SUBSCRIBE_RATE_PER_MINUTE: '1000000',
  RATE_LIMIT_PER_MINUTE: '1000000',
  PUBLISH_RATE_PER_SECOND: '1000000'
}
const flowfiPublish: Target['publish'] = (stream, body) => ({
  path: '/events/publish',
  headers: { authorization: `Bearer ${TOKEN}` },
  template: envelope(stream, body)
})
const flowfi = nodeTarget('flowfi-events', '../server.js', flowfiEnv, subscribeQuery, flowfiPublish, flowfiFlags)

/** flowfi-events in Redis mode, under a key prefix of its own that is deleted afterwards. */
const flowfiRedis: Target = {
  name: 'flowfi-events + redis',
  protocol: 'http1',
  async start (port) {
    const prefix = `flowfi-bench:${randomBytes(6).toString('hex')}:`
    const redis = new Redis(REDIS_URL)
    const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))![1])
    const server = await nodeTarget(this.name, '../server.js', { ...flowfiEnv, REDIS_URL, REDIS_PREFIX: prefix }, subscribeQuery, flowfiPublish, flowfiFlags).start(port)
    return {
      pid: server.pid,
      cpuPids: [server.pid, redisPid],
      async stop () {
        await server.stop()
        const keys = await redis.keys(`${prefix}*`)
        if (keys.length > 0) await redis.del(...keys)
        redis.disconnect()
      }
    }
  },
  subscribePath: subscribeQuery,
  publish: flowfiPublish
}

async function redisAnswers (): Promise<boolean> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return true
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

const naivePublish: Target['publish'] = (stream, body) => ({ path: '/publish', headers: {}, template: envelope(stream, body) })
const naive = nodeTarget('naive node http', 'naive-server.js', {}, subscribeQuery, naivePublish)

/** Node's floor over TLS+h2: a bare node:http2 secure server writing one shared frame per event to every stream. */
const bareHttp2 = (certificate: Certificate): Target =>
  nodeTarget('bare node:http2, TLS+h2', 'bare-h2-server.js', certificate.env, subscribeQuery, naivePublish, [], 'tls-h2')

/** flowfi-events with TLS (h2, or HTTP/1.1 for a client that offers only that by ALPN), or h2c. */
const flowfiHttp2 = (name: string, protocol: Protocol, env: Record<string, string>): Target =>
  nodeTarget(name, '../server.js', { ...flowfiEnv, ...env }, subscribeQuery, flowfiPublish, flowfiFlags, protocol)

const PROTOCOL_NAMES = { 'tls-http1': 'TLS+HTTP/1.1', 'tls-h2': 'TLS+h2' } as const

/**
 * nginx + nchan on plain HTTP/1.1, or (with a certificate) behind nginx's own TLS, where its port
 * speaks h2 and HTTP/1.1 by ALPN: `protocol` is what the load generator's clients offer.
 */
const nchanTarget = (certificate?: Certificate, protocol: 'tls-http1' | 'tls-h2' = 'tls-h2'): Target => ({
  name: certificate === undefined ? 'nginx + nchan' : `nginx + nchan, ${PROTOCOL_NAMES[protocol]}`,
  protocol: certificate === undefined ? 'http1' : protocol,
  async start (port) {
    const prefix = mkdtempSync(join(tmpdir(), 'flowfi-bench-nchan-'))
    const listen = certificate === undefined
      ? ''
      : ` ssl http2;\n    ssl_certificate ${certificate.env.TLS_CERT};\n    ssl_certificate_key ${certificate.env.TLS_KEY}`
    const config = readFileSync(here('../../bench/nchan.conf'), 'utf8')
      .replaceAll('{{PREFIX}}', prefix).replaceAll('{{PORT}}', String(port)).replaceAll('{{LISTEN}}', listen)
    writeFileSync(join(prefix, 'nginx.conf'), config)
    const child = spawnWithFds('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf')])
    await waitForPort(port, child)
    const worker = Number(execFileSync('pgrep', ['-P', String(child.pid)]).toString().trim().split('\n')[0])
    pin(child.pid!, 0)
    pin(worker, 0)
    return {
      pid: worker,
      cpuPids: [worker],
      stop: async () => {
        await stopChild(child)
        try { process.kill(worker, 'SIGKILL') } catch { /* gone with its master */ }
        rmSync(prefix, { recursive: true, force: true })
      }
    }
  },
  subscribePath: stream => `/sub/${stream ?? 'all'}`,
  publish: (stream, body) => ({ path: `/pub/${stream}`, headers: { 'x-eventsource-event': 'stream.topped_up' }, template: body })
})
const nchan = nchanTarget()

// --- measurement ---------------------------------------------------------------------------------

function rssKiB (pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(match![1])
}

function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS // utime, stime
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

class Loadgen {
  readonly #child = fork(here('loadgen.js'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  constructor () { pin(this.#child.pid!, 1) }
  async ask<T> (request: LoadgenRequest): Promise<T> {
    const answer = new Promise<T>((resolve, reject) => {
      this.#child.once('message', message => resolve(message as T))
      this.#child.once('exit', code => reject(new Error(`load generator exited with ${code}`)))
    })
    this.#child.send(request)
    return await answer
  }

  async close (): Promise<void> {
    const exited = new Promise(resolve => this.#child.once('exit', resolve))
    this.#child.send({ type: 'close' })
    await exited
  }
}

interface Scenario {
  name: string
  /** The targets it runs against, when not those of --targets (the h2 scenarios). */
  targets?: Target[]
  /** HTTP/2 targets: streams per session. */
  streamsPerSession?: number
  connections: number
  /** Each subscriber's stream, or undefined for all=true. */
  streams: 'all' | 'one each'
  events: number
  rate: number
}

interface Measurement {
  scenario: string
  target: string
  connections: number
  failedConnections: number
  connectPerSecond: number
  /** Server CPU time per connection opened: what the connect rate costs the server, whatever paces it. */
  cpuPerConnectUs: number
  rssPerConnectionKiB: number
  events: number
  expected: number
  received: number
  lost: number
  duplicates: number
  deliverySeconds: number
  latencyMs: { p50: number, p99: number, max: number }
  cpuPerDeliveryUs: number
  cpuPerEventUs: number
}

const PAD = 'x'.repeat(120) // makes the event's data a 200-byte JSON object

/** How long to wait: for deliveries after the last publish, and for the idle connections' memory to settle. */
interface Waits { settleMs: number, idleMs: number }

async function measure (target: Target, scenario: Scenario, port: number, { settleMs, idleMs }: Waits): Promise<Measurement> {
  const server = await target.start(port)
  try {
    // Warm-up: let the JIT and the allocator settle before anything is measured.
    const warm = new Loadgen()
    const streamsPerSession = scenario.streamsPerSession ?? 1
    const { protocol } = target
    await warm.ask<ConnectResult>({ type: 'connect', port, protocol, paths: Array(50).fill(target.subscribePath(undefined)), sourceAddresses: 1, concurrency: 50, streamsPerSession })
    await warm.ask<PublishResult>(publishRequest(target, port, 50, 0, ['all'], 50 * 50, 2000))
    await warm.close()
    await sleep(500)

    const loadgen = new Loadgen()
    const cpuNow = (): number => server.cpuPids.reduce((total, pid) => total + cpuSeconds(pid), 0)
    const rssBefore = rssKiB(server.pid)
    const streamOf = (i: number): string | undefined => scenario.streams === 'all' ? undefined : `s${i}`
    const paths = Array.from({ length: scenario.connections }, (_, i) => target.subscribePath(streamOf(i)))
    const cpuBeforeConnect = cpuNow()
    const connected = await loadgen.ask<ConnectResult>({ type: 'connect', port, protocol, paths, sourceAddresses: 8, concurrency: 256, streamsPerSession })
    const connectCpu = cpuNow() - cpuBeforeConnect
    if (connected.failed > 0) process.stderr.write(`${target.name}: ${connected.failed} connections failed\n`)
    await sleep(idleMs)
    const rssAfter = rssKiB(server.pid)

    let published: PublishResult | undefined
    let cpu = 0
    let expected = 0
    if (scenario.events > 0) {
      const streams = scenario.streams === 'all'
        ? ['all']
        : Array.from({ length: scenario.events }, () => `s${Math.floor(Math.random() * connected.connections)}`)
      expected = scenario.streams === 'all' ? scenario.events * connected.connections : scenario.events
      const cpuBefore = cpuNow()
      published = await loadgen.ask<PublishResult>(publishRequest(target, port, scenario.events, scenario.rate, streams, expected, settleMs))
      cpu = cpuNow() - cpuBefore
    }
    await loadgen.close()
    return {
      scenario: scenario.name,
      target: target.name,
      connections: connected.connections,
      failedConnections: connected.failed,
      connectPerSecond: connected.connections / connected.seconds,
      cpuPerConnectUs: connectCpu * 1e6 / Math.max(connected.connections, 1),
      rssPerConnectionKiB: (rssAfter - rssBefore) / Math.max(connected.connections, 1),
      events: scenario.events,
      expected,
      received: published?.received ?? 0,
      lost: expected - (published?.received ?? 0),
      duplicates: published?.duplicates ?? 0,
      deliverySeconds: published?.deliverySeconds ?? NaN,
      latencyMs: published?.latencyMs ?? { p50: NaN, p99: NaN, max: NaN },
      cpuPerDeliveryUs: published === undefined || published.received === 0 ? NaN : cpu * 1e6 / published.received,
      cpuPerEventUs: published === undefined ? NaN : cpu * 1e6 / scenario.events
    }
  } finally {
    await server.stop()
  }
}

function publishRequest (target: Target, port: number, events: number, rate: number, streams: string[],
  expected: number, settleMs: number): PublishRequest {
  return {
    type: 'publish',
    port,
    protocol: target.protocol,
    events: Array.from({ length: events }, (_, seq) => {
      const stream = streams[seq % streams.length]!
      return target.publish(stream, `{"amount":"12.5","seq":${seq},"sentAt":0,"pad":"${PAD}"}`)
    }),
    rate,
    expected,
    settleMs
  }
}

// --- report --------------------------------------------------------------------------------------

const fmt = (value: number, digits = 1): string => Number.isFinite(value) ? value.toFixed(digits) : '–'
const connections = (r: Measurement): string => r.failedConnections > 0 ? `${r.connections} (${r.failedConnections} refused)` : String(r.connections)

/** The ratios each scenario's table ends with: [ours, baseline]. */
const RATIOS: Array<[string, string]> = [
  ['flowfi-events', 'naive node http'], ['flowfi-events', 'nginx + nchan'], ['flowfi-events + redis', 'flowfi-events'],
  // The h2 scenarios: TLS+h2 against our TLS+HTTP/1.1 (what h2 adds), our plain HTTP/1.1 (what TLS and
  // h2 add) and Node's floor; TLS+HTTP/1.1 against plain (what TLS adds); each of ours against nginx's
  // of the same protocol, and nginx's TLS against its plain HTTP/1.1.
  ['flowfi-events, TLS+h2', 'flowfi-events, TLS+HTTP/1.1'], ['flowfi-events, TLS+h2', 'flowfi-events'],
  ['flowfi-events, TLS+h2', 'bare node:http2, TLS+h2'], ['flowfi-events, TLS+HTTP/1.1', 'flowfi-events'],
  ['flowfi-events, TLS+HTTP/1.1', 'nginx + nchan, TLS+HTTP/1.1'], ['flowfi-events, TLS+h2', 'nginx + nchan, TLS+h2'],
  ['nginx + nchan, TLS+HTTP/1.1', 'nginx + nchan'], ['nginx + nchan, TLS+h2', 'nginx + nchan'],
  ['flowfi-events, h2c', 'flowfi-events']
]

function table (results: Measurement[]): string {
  const lines: string[] = []
  for (const scenario of [...new Set(results.map(r => r.scenario))]) {
    const rows = results.filter(r => r.scenario === scenario)
    const idle = rows.every(r => r.events === 0)
    // The h2 scenarios give each connection's idle memory next to its deliveries.
    const rss = !idle && scenario.startsWith('h2')
    lines.push(`\n### ${scenario}\n`)
    lines.push(idle
      ? '| server | connections | connect/s | CPU µs per connect | RSS KiB per connection |'
      : `| server | connections | delivered | lost | dup | all delivered in s | p50 ms | p99 ms | max ms | CPU µs per delivery | CPU µs per event |${rss ? ' RSS KiB per idle connection |' : ''}`)
    lines.push(idle ? '|---|---|---|---|---|' : `|---|---|---|---|---|---|---|---|---|---|---|${rss ? '---|' : ''}`)
    for (const r of rows) {
      lines.push(idle
        ? `| ${r.target} | ${connections(r)} | ${fmt(r.connectPerSecond, 0)} | ${fmt(r.cpuPerConnectUs, 1)} | ${fmt(r.rssPerConnectionKiB, 2)} |`
        : `| ${r.target} | ${connections(r)} | ${r.received}/${r.expected} | ${r.lost} | ${r.duplicates} | ${fmt(r.deliverySeconds, 2)} | ${fmt(r.latencyMs.p50)} | ` +
          `${fmt(r.latencyMs.p99)} | ${fmt(r.latencyMs.max)} | ${fmt(r.cpuPerDeliveryUs, 2)} | ${fmt(r.cpuPerEventUs, 0)} |${rss ? ` ${fmt(r.rssPerConnectionKiB, 2)} |` : ''}`)
    }
    for (const [name, baseline] of RATIOS) {
      const ours = rows.find(r => r.target === name)
      const base = rows.find(r => r.target === baseline)
      if (ours === undefined || base === undefined) continue
      const label = name === 'flowfi-events' ? `ratio to ${baseline}` : `${name}: ratio to ${baseline}`
      const ratio = (of: (r: Measurement) => number): string => `${fmt(of(ours) / of(base), 2)}×`
      lines.push(idle
        ? `| **${label}** | | ${ratio(r => r.connectPerSecond)} | ${ratio(r => r.cpuPerConnectUs)} | ${ratio(r => r.rssPerConnectionKiB)} |`
        : `| **${label}** | | | | | ${ratio(r => r.deliverySeconds)} | ${ratio(r => r.latencyMs.p50)} | ${ratio(r => r.latencyMs.p99)} | ` +
          `${ratio(r => r.latencyMs.max)} | ${ratio(r => r.cpuPerDeliveryUs)} | ${ratio(r => r.cpuPerEventUs)} |${rss ? ` ${ratio(r => r.rssPerConnectionKiB)} |` : ''}`)
    }
  }
  return lines.join('\n')
}

/**
 * The h2 scenarios, each against our HTTP/1.1 as the baseline of the same run: TLS+h2 with one stream
 * per TLS connection (a browser tab), beside what makes its comparison fair: our TLS+HTTP/1.1 (what TLS
 * alone costs us), a bare node:http2 TLS server (what Node costs anyone), and nginx + nchan on each of
 * the three (plain HTTP/1.1, TLS+HTTP/1.1, TLS+h2 behind nginx's own TLS); h2c with 100
 * streams per session (the topology of an ingress that speaks h2c to us). Each measures the memory
 * of its idle connections, then a light broadcast.
 */
function h2Scenarios (options: Options, light: { events: number, rate: number }, certificate: Certificate | undefined,
  withNchan: boolean): Scenario[] {
  if (certificate === undefined) return []
  const tlsHttp1 = flowfiHttp2('flowfi-events, TLS+HTTP/1.1', 'tls-http1', certificate.env)
  const tls = flowfiHttp2('flowfi-events, TLS+h2', 'tls-h2', certificate.env)
  const h2c = flowfiHttp2('flowfi-events, h2c', 'h2c', { HTTP2_CLEARTEXT: 'true' })
  const sessions = Math.ceil(options.h2cStreams / H2C_STREAMS_PER_SESSION)
  const nginx = withNchan ? [nchan, nchanTarget(certificate, 'tls-http1'), nchanTarget(certificate, 'tls-h2')] : []
  return [
    {
      name: `h2 over TLS: broadcast to ${options.h2Connections} connections of one stream each at ${light.rate}/s`,
      targets: [flowfi, tlsHttp1, tls, bareHttp2(certificate), ...nginx],
      streamsPerSession: 1,
      connections: options.h2Connections,
      streams: 'all',
      ...light
    },
    {
      name: `h2c: broadcast to ${options.h2cStreams} streams over ${sessions} sessions at ${light.rate}/s`,
      targets: [flowfi, h2c],
      streamsPerSession: H2C_STREAMS_PER_SESSION,
      connections: options.h2cStreams,
      streams: 'all',
      ...light
    }
  ]
}

/** The most h2c's CPU per delivery may be against HTTP/1.1's (issue #14); measured about 0.6x. */
const H2C_MAX_CPU_RATIO = 1.5

/** CPU per delivery of one target against another's in the same scenario; NaN where either is missing. */
function cpuRatio (results: Measurement[], name: string, baseline: string): number {
  const ours = results.find(r => r.target === name)
  const base = results.find(r => r.target === baseline && r.scenario === ours?.scenario)
  return ours === undefined || base === undefined ? NaN : ours.cpuPerDeliveryUs / base.cpuPerDeliveryUs
}

async function main (): Promise<void> {
  const options = parseOptions(process.argv.slice(2))
  flowfiFlags.push(...options.nodeFlags)
  const names: Record<string, Target> = { flowfi, redis: flowfiRedis, naive, nchan }
  const targets = options.targets.map(name => names[name]).filter(target => target !== undefined)
  if (targets.includes(nchan) && !existsSync(NCHAN_MODULE)) {
    process.stderr.write('nginx with nchan is not installed (apt-get install nginx-light libnginx-mod-nchan): skipped\n')
    targets.splice(targets.indexOf(nchan), 1)
  }
  if (targets.includes(flowfiRedis) && !await redisAnswers()) {
    process.stderr.write(`Redis does not answer at ${REDIS_URL} (BENCH_REDIS_URL): Redis mode skipped\n`)
    targets.splice(targets.indexOf(flowfiRedis), 1)
  }
  const cleanups: Array<() => unknown> = []
  // The h2 scenarios' certificate: made now, in a temporary folder removed at the end.
  const certificate = options.only.some(kind => kind.startsWith('h2')) ? makeCertificate({ teardown: fn => cleanups.push(fn) }) : undefined
  const n = options.connections
  const max = options.maxConnections
  const light = options.smoke ? { events: 6, rate: 20 } : { events: 20, rate: 2 }
  const scenarios: Scenario[] = [
    { name: `idle, ${n} connections`, connections: n, streams: 'all', events: 0, rate: 0 },
    { name: `idle, ${max} connections`, connections: max, streams: 'all', events: 0, rate: 0 },
    { name: `light: broadcast to ${n} at ${light.rate}/s`, connections: n, streams: 'all', ...light },
    { name: `burst: ${options.smoke ? 20 : 200} events to ${n} as fast as possible`, connections: n, streams: 'all', events: options.smoke ? 20 : 200, rate: 0 },
    { name: `targeted: 1 of ${Math.round(n / 10)}`, connections: Math.round(n / 10), streams: 'one each', events: 200, rate: 0 },
    { name: `targeted: 1 of ${max}`, connections: max, streams: 'one each', events: 200, rate: 0 },
    ...h2Scenarios(options, light, certificate, targets.includes(nchan))
  ].filter(s => options.only.some(kind => s.name.startsWith(kind))) as Scenario[]

  // A smoke run's memory figures are noise anyway: it waits less for them.
  const waits: Waits = options.smoke ? { settleMs: 3000, idleMs: 500 } : { settleMs: 15_000, idleMs: 2000 }
  const results: Measurement[] = []
  let port = 20_000 + Math.floor(Math.random() * 20_000)
  for (const scenario of scenarios) {
    for (const target of scenario.targets ?? targets) {
      // Redis mode is measured where it adds work: events going through the log.
      if (target === flowfiRedis && !/^(light|burst)/.test(scenario.name)) continue
      process.stderr.write(`${scenario.name}: ${target.name}...\n`)
      results.push(await measure(target, scenario, port++, waits))
    }
  }
  const header = `## Benchmark ${new Date().toISOString().slice(0, 10)}, ${availableParallelism()} CPUs, node ${process.version}` +
    `${options.smoke ? ' (smoke)' : ''}${flowfiFlags.length > 0 ? `, flowfi-events run with ${flowfiFlags.join(' ')}` : ''}`
  process.stdout.write(`${header}\n${table(results)}\n`)
  if (options.json !== undefined) writeFileSync(options.json, JSON.stringify({ date: new Date().toISOString(), options, results }, null, 2))
  for (const cleanup of cleanups) cleanup()
  const faults = results.filter(r => r.target.startsWith(flowfi.name) && (r.lost > 0 || r.duplicates > 0 || r.failedConnections > 0))
  if (options.check && faults.length > 0) {
    process.stderr.write(`flowfi-events lost, doubled or refused in: ${faults.map(r => r.scenario).join('; ')}\n`)
    process.exitCode = 1
  }
  const h2cRatio = cpuRatio(results, 'flowfi-events, h2c', flowfi.name)
  if (options.check && !options.smoke && h2cRatio > H2C_MAX_CPU_RATIO) {
    process.stderr.write(`h2c's CPU per delivery is ${fmt(h2cRatio, 2)}x HTTP/1.1's, above ${H2C_MAX_CPU_RATIO}x\n`)
    process.exitCode = 1
  }
}

await main()
