// Stellar account ids ("G..." StrKeys) and contract addresses ("C..."): base32 of a version byte, 32
// bytes (an ed25519 public key, a contract's hash) and a CRC16-XModem checksum (little-endian), 35
// bytes in all, 56 characters.
// https://github.com/stellar/stellar-protocol/blob/master/ecosystem/sep-0023.md

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
const ACCOUNT_ID_VERSION = 6 << 3 // encodes as the leading "G"
const CONTRACT_VERSION = 2 << 3 // encodes as the leading "C"
const SHAPE = /^[GC][A-Z2-7]{55}$/

function crc16Xmodem (bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    }
  }
  return crc
}

function base32Decode (text: string): Uint8Array {
  const out = new Uint8Array(Math.floor(text.length * 5 / 8))
  let buffer = 0
  let bits = 0
  let index = 0
  for (const char of text) {
    buffer = (buffer << 5) | ALPHABET.indexOf(char)
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[index++] = (buffer >> bits) & 0xff
    }
  }
  return out
}

/** Base32 of whole 5-byte groups: the 35 bytes of an account id need no padding. */
function base32Encode (bytes: Uint8Array): string {
  let text = ''
  let buffer = 0
  let bits = 0
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte
    bits += 8
    while (bits >= 5) {
      bits -= 5
      text += ALPHABET[(buffer >> bits) & 31]
    }
  }
  return text
}

/** The version byte of a well-formed StrKey whose checksum is right, else undefined. */
function versionOf (value: string): number | undefined {
  if (!SHAPE.test(value)) return undefined
  const decoded = base32Decode(value)
  // 56 characters carry 280 bits: exactly 35 bytes, so no padding bits to check.
  const payload = decoded.subarray(0, 33)
  const checksum = decoded[33]! | (decoded[34]! << 8)
  return crc16Xmodem(payload) === checksum ? payload[0] : undefined
}

/** True for a well-formed Stellar account id (`G…`) whose checksum is right. */
export function isStellarAccountId (value: string): boolean {
  return versionOf(value) === ACCOUNT_ID_VERSION
}

/** True for an account id (`G…`) or a contract address (`C…`) whose checksum is right. */
export function isStellarAddress (value: string): boolean {
  const version = versionOf(value)
  return version === ACCOUNT_ID_VERSION || version === CONTRACT_VERSION
}

function encode (version: number, key: Uint8Array): string {
  if (key.length !== 32) throw new RangeError('a StrKey holds 32 bytes')
  const payload = new Uint8Array(35)
  payload[0] = version
  payload.set(key, 1)
  const checksum = crc16Xmodem(payload.subarray(0, 33))
  payload[33] = checksum & 0xff
  payload[34] = checksum >> 8
  return base32Encode(payload)
}

/** The account id of a 32-byte ed25519 public key (used by tests, the benchmark and the CLI). */
export const encodeStellarAccountId = (publicKey: Uint8Array): string => encode(ACCOUNT_ID_VERSION, publicKey)

/** The contract address of a 32-byte contract hash. */
export const encodeStellarContract = (hash: Uint8Array): string => encode(CONTRACT_VERSION, hash)
