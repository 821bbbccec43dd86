import { generateKeyPairSync } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../services/config.js'
import { makeCertificate } from './helpers/tls.js'

const certificate = makeCertificate(t)
const { TLS_CERT, TLS_KEY } = certificate.env

t.test('HTTP/1.1 unless told otherwise; the HTTP/2 settings are read only for HTTP/2', async t => {
  t.same(loadConfig({}).listener, { kind: 'http1' })
  t.same(loadConfig({ HTTP2_CLEARTEXT: 'false', HTTP2_MAX_STREAMS: 'many' }).listener, { kind: 'http1' })
  t.same(loadConfig({ HTTP2_CLEARTEXT: 'true' }).listener, { kind: 'h2c', http2: { maxStreams: 100, sessionIdleTimeoutMs: 72_000 } })
  t.same(loadConfig({ HTTP2_CLEARTEXT: 'true', HTTP2_MAX_STREAMS: '250', HTTP2_SESSION_IDLE_TIMEOUT_MS: '30000' }).listener,
    { kind: 'h2c', http2: { maxStreams: 250, sessionIdleTimeoutMs: 30_000 } })
})

t.test('TLS_CERT and TLS_KEY: the PEM files, read at start-up', async t => {
  const listener = loadConfig({ TLS_CERT, TLS_KEY, HTTP2_MAX_STREAMS: '10' }).listener
  t.match(listener, { kind: 'tls', http2: { maxStreams: 10, sessionIdleTimeoutMs: 72_000 } })
  t.ok(listener.kind === 'tls' && listener.cert.equals(certificate.cert), 'the certificate as the file has it')
  t.ok(listener.kind === 'tls' && listener.key.toString().includes('PRIVATE KEY'), 'and the key')
})

t.test('a bad TLS or HTTP/2 variable stops the service with a message naming it', async t => {
  const other = join(certificate.dir, 'other-key.pem')
  writeFileSync(other, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const garbage = join(certificate.dir, 'garbage.pem')
  writeFileSync(garbage, 'not a PEM file\n')
  const missing = join(certificate.dir, 'missing.pem')
  const cases: Array<[Record<string, string>, string]> = [
    [{ TLS_CERT }, 'TLS_KEY="" is not allowed: expected a PEM file path as well, since TLS_CERT is set (both or neither)'],
    [{ TLS_KEY }, 'TLS_CERT="" is not allowed: expected a PEM file path as well, since TLS_KEY is set (both or neither)'],
    [{ TLS_CERT: missing, TLS_KEY }, `TLS_CERT="${missing}" is not allowed: expected a readable PEM file (ENOENT: no such file or directory, open '${missing}')`],
    [{ TLS_CERT, TLS_KEY: certificate.dir }, `TLS_KEY="${certificate.dir}" is not allowed: expected a readable PEM file (EISDIR: illegal operation on a directory, read)`],
    [{ TLS_CERT: garbage, TLS_KEY }, `TLS_CERT="${garbage}" is not allowed: expected a PEM certificate (or chain, the server's first)`],
    [{ TLS_CERT, TLS_KEY: TLS_CERT }, `TLS_KEY="${TLS_CERT}" is not allowed: expected an unencrypted PEM private key`],
    [{ TLS_CERT, TLS_KEY: other }, `TLS_KEY="${other}" is not allowed: expected the private key of the certificate in TLS_CERT (${TLS_CERT})`],
    [{ TLS_CERT, TLS_KEY, HTTP2_CLEARTEXT: 'true' },
      'HTTP2_CLEARTEXT="true" is not allowed: expected false with TLS_CERT and TLS_KEY: the TLS port speaks h2 already (by ALPN)'],
    [{ HTTP2_CLEARTEXT: 'yes' }, 'HTTP2_CLEARTEXT="yes" is not allowed: expected one of true, false'],
    [{ HTTP2_CLEARTEXT: 'true', HTTP2_MAX_STREAMS: '0' }, 'HTTP2_MAX_STREAMS="0" is not allowed: expected an integer from 1 to 10000'],
    [{ TLS_CERT, TLS_KEY, HTTP2_SESSION_IDLE_TIMEOUT_MS: '50' }, 'HTTP2_SESSION_IDLE_TIMEOUT_MS="50" is not allowed: expected an integer from 100 to 3600000'],
    [{ HTTP2_CLEARTEXT: 'true', HTTP2_SESSION_IDLE_TIMEOUT_MS: '15000' },
      'HTTP2_SESSION_IDLE_TIMEOUT_MS="15000" is not allowed: expected more than HEARTBEAT_MS (15000), or sessions with open streams would be closed']
  ]
  for (const [env, message] of cases) t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env))
  t.same(loadConfig({ HTTP2_CLEARTEXT: 'true', HEARTBEAT_MS: '1000', HTTP2_SESSION_IDLE_TIMEOUT_MS: '1001' }).listener,
    { kind: 'h2c', http2: { maxStreams: 100, sessionIdleTimeoutMs: 1001 } }, 'just over the heartbeat is enough')
})
