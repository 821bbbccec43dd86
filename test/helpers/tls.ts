import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Certificate {
  /** The PEM files, for TLS_CERT and TLS_KEY. */
  env: { TLS_CERT: string, TLS_KEY: string }
  /** The certificate, for a client to trust it. */
  cert: Buffer
  dir: string
}

/**
 * A self-signed P-256 certificate for localhost and 127.0.0.1, made by the openssl CLI in a directory
 * of its own under the system's temporary one (never in the repository), removed when the test ends.
 */
export function makeCertificate (t: { teardown (fn: () => unknown): void }): Certificate {
  const dir = mkdtempSync(join(tmpdir(), 'flowfi-events-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const certPath = join(dir, 'cert.pem')
  const keyPath = join(dir, 'key.pem')
  // Throws, with openssl's own message, where it cannot (.ci/run installs it).
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'
  ], { stdio: 'pipe' })
  return { env: { TLS_CERT: certPath, TLS_KEY: keyPath }, cert: readFileSync(certPath), dir }
}
