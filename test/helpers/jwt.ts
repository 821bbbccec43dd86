import { createHmac, sign, type KeyObject } from 'node:crypto'

const base64url = (value: Buffer | string): string => Buffer.from(value).toString('base64url')

export type SigningKey =
  | { alg: 'HS256', secret: string }
  | { alg: 'RS256' | 'ES256', privateKey: KeyObject }
  | { alg: 'none' }

/** Signs a JWT the way an identity provider would, with node:crypto only. */
export function signJwt (claims: Record<string, unknown>, key: SigningKey): string {
  const input = `${base64url(JSON.stringify({ alg: key.alg, typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}`
  if (key.alg === 'none') return `${input}.`
  const signature = key.alg === 'HS256'
    ? createHmac('sha256', key.secret).update(input).digest()
    : sign('sha256', Buffer.from(input), key.alg === 'ES256' ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' } : key.privateKey)
  return `${input}.${base64url(signature)}`
}

/** Seconds since the epoch, as JWT claims count time. */
export const nowS = (): number => Math.floor(Date.now() / 1000)
