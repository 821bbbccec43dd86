import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitUntil } from './app.js'
import { freePort } from './redis.js'
import { installed, type Tap } from './requirements.js'
import type { Certificate } from './tls.js'

export const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx'

/** Whether nginx is installed; without it the test file is skipped with a message, or fails where REQUIRE_NGINX (or CI) is set. */
export function nginxInstalled (t: Tap): boolean {
  return installed(t, { what: 'nginx', path: NGINX, flag: 'REQUIRE_NGINX', install: 'apt-get install nginx-light' })
}

/**
 * The proxy settings of the event stream's path: no response buffering, HTTP/1.1 upstream, read and
 * send timeouts of an hour (far above HEARTBEAT_MS). The chart's ingress-nginx annotations carry the
 * same (test/chart.test.ts holds them to these).
 */
export const STREAM_PROXY = { buffering: 'off', httpVersion: '1.1', timeoutSeconds: 3600 } as const

/**
 * The recommended nginx `location` for the service (README, "Browsers and HTTP/2", shows it): HTTP/1.1
 * with keep-alive to the upstream (an empty Connection header), nothing buffered, long timeouts, the
 * client's address and scheme forwarded. Last-Event-ID goes through as every request header does.
 */
export function streamLocation (upstream: string): string {
  return `location / {
  proxy_pass http://${upstream};
  proxy_http_version ${STREAM_PROXY.httpVersion};
  proxy_set_header Connection '';
  proxy_set_header Host $host;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_buffering ${STREAM_PROXY.buffering};
  proxy_cache off;
  proxy_read_timeout ${STREAM_PROXY.timeoutSeconds}s;
  proxy_send_timeout ${STREAM_PROXY.timeoutSeconds}s;
}`
}

/** Whether this nginx takes `http2 on;` (1.25.1 and later) rather than the `http2` parameter of `listen`. */
function hasHttp2Directive (): boolean {
  // nginx prints its version on standard error: "nginx version: nginx/1.22.1".
  const [major, minor, patch] = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr)!.slice(1).map(Number) as [number, number, number]
  /* c8 ignore start */ // depends on the machine: root or not, the nginx version, a failed start
  return major > 1 || minor > 25 || (minor === 25 && patch >= 1)
  /* c8 ignore stop */
}

export interface NginxOptions {
  /** The loopback address nginx listens on: 127.0.0.1 by default. */
  host?: string
  /**
   * The loopback address nginx connects to the service from (`proxy_bind`): a test that tells the
   * proxy's address from the browser's (both 127.0.0.1 otherwise) sets another, such as 127.0.0.2.
   */
  upstreamFrom?: string
}

/* c8 ignore start */ // the directives depend on the nginx version, and proxy_bind on the test that sets it
/** A whole nginx.conf: TLS and h2 on `listen`, the stream's location to `upstream`; every file it writes in `prefix`. */
function ingressConfig (prefix: string, listen: string, upstream: string, certificate: Certificate, upstreamFrom?: string): string {
  const http2 = hasHttp2Directive()
  return `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  upstream flowfi_events {
    server ${upstream};
    keepalive 16;
  }
  server {
    listen ${listen} ssl${http2 ? '' : ' http2'};
    ${http2 ? 'http2 on;' : ''}
    ssl_certificate ${certificate.env.TLS_CERT};
    ssl_certificate_key ${certificate.env.TLS_KEY};
    ${upstreamFrom === undefined ? '' : `proxy_bind ${upstreamFrom};`}
${streamLocation('flowfi_events').replace(/^/gm, '    ')}
  }
}
`
}
/* c8 ignore stop */

export interface RunningNginx {
  /** `https://<host>:<port>`, TLS and h2 by ALPN. */
  url: string
  /** What nginx wrote to its error log so far. */
  errorLog (): string
}

/**
 * nginx as the service's ingress, as a process of the test's own on a free loopback port: it terminates
 * TLS and h2 with `certificate` and proxies to `upstream` (`host:port`, the service on plain HTTP/1.1).
 * Its files live in a temporary folder; it is stopped when the test ends.
 */
export async function startNginx (t: Tap, upstream: string, certificate: Certificate, options: NginxOptions = {}): Promise<RunningNginx> {
  const host = options.host ?? '127.0.0.1'
  const prefix = mkdtempSync(join(tmpdir(), 'flowfi-events-nginx-'))
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }))
  /* c8 ignore start */ // depends on the machine: root or not, the nginx version, a failed start
  const errorLog = (): string => { try { return readFileSync(join(prefix, 'error.log'), 'utf8') } catch { return '' } }
  /* c8 ignore stop */
  const port = await freePort()
  const config = join(prefix, 'nginx.conf')
  writeFileSync(config, ingressConfig(prefix, `${host}:${port}`, upstream, certificate, options.upstreamFrom))
  const child = spawn(NGINX, ['-p', prefix, '-c', config, '-g', 'daemon off;'], { stdio: 'ignore' })
  const exited = once(child, 'exit')
  t.teardown(async () => {
    // SIGTERM: a fast shutdown, which does not wait for the open streams.
    if (child.exitCode === null && child.signalCode === null && child.kill('SIGTERM')) await exited
  })
  let gone = false
  void exited.then(() => { gone = true })
  await waitUntil(`nginx listens on ${host}:${port}`, async () => {
    /* c8 ignore start */ // depends on the machine: root or not, the nginx version, a failed start
    if (gone) throw new Error(`nginx exited at start: ${errorLog()}`)
    /* c8 ignore stop */
    return await accepts(host, port)
  })
  return { url: `https://${host}:${port}`, errorLog }
}

/** Whether a TCP connection to `host:port` is accepted. */
async function accepts (host: string, port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const socket = connect(port, host)
    socket.on('connect', () => { socket.destroy(); resolve(true) })
    socket.on('error', () => resolve(false))
  })
}
