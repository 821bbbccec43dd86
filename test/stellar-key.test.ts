import t from 'tap'
import { encodeStellarAccountId, encodeStellarContract, isStellarAccountId, isStellarAddress } from '../services/stellar-key.js'

// A public account id from Stellar's own documentation.
const KNOWN = 'GBRPYHIL2CI3FNQ4BXLFMNDLFJUNPU2HY3ZMFSHONUCEOASW7QC7OX2H'

t.test('accepts real account ids', async t => {
  t.ok(isStellarAccountId(KNOWN))
  t.equal(encodeStellarAccountId(new Uint8Array(32)), 'GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF')
  t.ok(isStellarAccountId('GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAWHF'))
})

t.test('round-trips any public key', async t => {
  for (let i = 0; i < 50; i++) {
    const key = crypto.getRandomValues(new Uint8Array(32))
    t.ok(isStellarAccountId(encodeStellarAccountId(key)))
  }
})

t.test('rejects a wrong checksum, version, length or alphabet', async t => {
  const flipped = KNOWN.slice(0, 10) + (KNOWN[10] === 'A' ? 'B' : 'A') + KNOWN.slice(11)
  t.notOk(isStellarAccountId(flipped), 'one character changed')
  t.notOk(isStellarAccountId(KNOWN.slice(0, 55)), 'too short')
  t.notOk(isStellarAccountId(KNOWN + 'A'), 'too long')
  t.notOk(isStellarAccountId(KNOWN.toLowerCase()), 'lower case')
  t.notOk(isStellarAccountId(KNOWN.replace('G', 'S')), 'a secret seed prefix')
  t.notOk(isStellarAccountId('G' + '1'.repeat(55)), 'digits outside base32')
  // The version byte is "G" (5 bits) and the top 3 bits of the next character: "GE" makes it 49.
  t.notOk(isStellarAccountId(encodeStellarAccountId(new Uint8Array(32)).replace(/^GA/, 'GE')), 'version byte 49')
})

t.test('only 32-byte keys can be encoded', async t => {
  t.throws(() => encodeStellarAccountId(new Uint8Array(31)), RangeError)
  t.throws(() => encodeStellarContract(new Uint8Array(33)), RangeError)
})

t.test('contract addresses (C…) are addresses, not account ids', async t => {
  // The native XLM and USDC asset contracts on Stellar's testnet.
  for (const known of ['CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC', 'CBIELTK6YBZJU5UP2WWQEUCYKLPU6AUNZ2BQ4WWFEIE3USCIHMXQDAMA']) {
    t.ok(isStellarAddress(known), known)
    t.notOk(isStellarAccountId(known), 'not an account id')
  }
  t.equal(encodeStellarContract(new Uint8Array(32)), 'CAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABSC4')
  t.ok(isStellarAddress(KNOWN), 'an account id is an address')
  const contract = encodeStellarContract(crypto.getRandomValues(new Uint8Array(32)))
  t.notOk(isStellarAddress(contract.slice(0, 20) + (contract[20] === 'A' ? 'B' : 'A') + contract.slice(21)), 'a wrong checksum')
  // The placeholder FlowFi's backend stores for its system stream: its checksum is not valid.
  t.notOk(isStellarAddress('CDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAHF'))
  t.notOk(isStellarAddress(encodeStellarAccountId(new Uint8Array(32)).replace(/^GA/, 'MA')), 'a muxed-account prefix')
})
