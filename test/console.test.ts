import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { buildConsole } from '../scripts/build-console.js'
import { CONTENT_SECURITY_POLICY } from '../routes/console/index.js'
import { CONSOLE_DIR, CONSOLE_FILES } from '../services/console-bundle.js'
import { loadConfig } from '../services/config.js'
import { startApp } from './helpers/app.js'
import { builtConsole, tempDir } from './helpers/console.js'
import { nowS, signJwt } from './helpers/jwt.js'
import { runEntry } from './helpers/process.js'
import { connect } from './helpers/raw-socket.js'

const SECRET = 'a-console-test-secret-of-32-characters!'
const PRODUCTION = { NODE_ENV: 'production', JWT_SECRET: SECRET }
const token = (scope: string) => signJwt({ sub: 'console-test', scope, exp: nowS() + 600 }, { alg: 'HS256', secret: SECRET })
const bearer = (scope: string) => ({ authorization: `Bearer ${token(scope)}` })

interface Answer { status: number, headers: Headers, text: string }
async function get (url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(url, { headers })
  return { status: response.status, headers: response.headers, text: await response.text() }
}

/** The policy's directives, by name. */
const directives = (policy: string | null) =>
  Object.fromEntries((policy ?? '').split(';').map(part => part.trim().split(/\s+/)).map(([name, ...values]) => [name, values.join(' ')]))

t.test('GET /console and its files: the built page, a strict CSP, nosniff, nothing inline', async t => {
  const dir = await builtConsole(t)
  const { url } = await startApp(t, {}, { consoleDir: dir })
  const paths = { 'index.html': '/console', 'console.js': '/console/console.js', 'console.css': '/console/console.css', 'favicon.svg': '/console/favicon.svg' }
  for (const [name, path] of Object.entries(paths) as Array<[keyof typeof CONSOLE_FILES, string]>) {
    const answer = await get(url + path)
    t.equal(answer.status, 200, path)
    t.equal(answer.headers.get('content-type'), CONSOLE_FILES[name], `${path}: ${CONSOLE_FILES[name]}`)
    t.equal(answer.headers.get('x-content-type-options'), 'nosniff')
    t.equal(answer.text, await readFile(join(dir, name), 'utf8'), `${path} is the built ${name}`)
    t.match(directives(answer.headers.get('content-security-policy')), {
      'default-src': "'none'",
      'script-src': "'self'",
      'style-src': "'self'",
      'connect-src': "'self'",
      'img-src': "'self' data:",
      'frame-ancestors': "'none'"
    }, `${path}: the CSP`)
  }
  t.notMatch(CONTENT_SECURITY_POLICY, /unsafe|\*|http/, 'no unsafe-inline or eval, no other origin')

  const html = await readFile(join(dir, 'index.html'), 'utf8')
  const referenced = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map(match => match[1])
  t.same(referenced.sort(), Object.values(paths).filter(path => path !== '/console').sort(), 'the page asks for its own files and nothing else')
  t.notMatch(html, /<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=/i, 'no inline script, style or handler')
})

t.test('only the listed names are served: no path reaches the file system', async t => {
  const dir = await builtConsole(t)
  const { url } = await startApp(t, {}, { consoleDir: dir })
  // Sent raw: fetch would resolve the dots before sending.
  const targets = [
    '/console/../package.json', '/console/..%2Fpackage.json', '/console/%2e%2e%2f%2e%2e%2fpackage.json', '/console/..%5Cpackage.json',
    '/console/console.js%00.html', '/console/index.html', '/console/constructor', '/console/__proto__', '/console/hasOwnProperty',
    '/console/', '/console/console.js/', '/console/nowhere.js', `/console/${'..%2F'.repeat(8)}etc%2Fpasswd`
  ]
  for (const target of targets) {
    const { socket, received, ended } = await connect(url)
    socket.end(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    await ended
    const [head = '', body = ''] = received().split('\r\n\r\n')
    t.match(head, /^HTTP\/1\.1 404 /, `${target}: 404`)
    t.match(JSON.parse(body), { error: 'not_found', message: String }, `${target}: a JSON problem`)
    t.notMatch(body, /flowfi-events"|root:/, 'and no file')
  }
})

t.test('503 with a JSON problem while the page is not built; a later build is served', async t => {
  const dir = await tempDir(t)
  const { url } = await startApp(t, {}, { consoleDir: dir })
  for (const path of ['/console', '/console/console.js']) {
    const answer = await get(url + path)
    t.equal(answer.status, 503, path)
    t.match(answer.headers.get('content-type'), /^application\/json/)
    t.match(JSON.parse(answer.text), { error: 'console_not_built', message: /npm run build/ })
  }
  await buildConsole(dir)
  t.equal((await get(`${url}/console`)).status, 200, 'built: served, without a restart')
})

t.test('CONSOLE: on by default outside production, off by default in production, and as set', async t => {
  const dir = await builtConsole(t)
  const cases: Array<[string, Record<string, string>, number]> = [
    ['development, by default', {}, 200],
    ['development, CONSOLE=false', { CONSOLE: 'false' }, 404],
    ['production, by default', PRODUCTION, 404],
    ['production, CONSOLE=true', { ...PRODUCTION, CONSOLE: 'true' }, 200]
  ]
  for (const [name, env, status] of cases) {
    const { url } = await startApp(t, env, { consoleDir: dir })
    for (const path of ['/console', '/console/console.js', '/console/access']) t.equal((await get(url + path)).status, status, `${name}: ${path}`)
  }
  t.equal(loadConfig({}).console, true)
  t.equal(loadConfig(PRODUCTION).console, false)
  t.throws(() => loadConfig({ CONSOLE: 'yes' }), { name: 'ConfigError', message: 'CONSOLE="yes" is not allowed: expected one of true, false' })
  t.throws(() => loadConfig({ NODE_ENV: 'production', AUTH_MODE: 'off', CONSOLE: 'true' }),
    { name: 'ConfigError', variable: 'CONSOLE', message: /AUTH_MODE=jwt/ }, 'in production the console needs tokens to check')
})

t.test('a bad CONSOLE stops the server at start-up, naming it', async t => {
  const server = runEntry('server', [], { CONSOLE: 'on', PORT: '0', METRICS_PORT: '0' })
  const [code] = await server.exited
  t.equal(code, 1)
  t.equal(server.output().stderr, 'flowfi-events: bad configuration: CONSOLE="on" is not allowed: expected one of true, false\n')
})

t.test('GET /console/access: what the page\'s token allows', async t => {
  const dir = await builtConsole(t)
  const access = async (url: string, headers: Record<string, string> = {}, query = '') => {
    const answer = await get(`${url}/console/access${query}`, headers)
    return { status: answer.status, body: JSON.parse(answer.text), challenge: answer.headers.get('www-authenticate') }
  }

  t.test('development: no token needed; publishing as the publish route says', async t => {
    const open = await startApp(t, {}, { consoleDir: dir })
    t.same((await access(open.url)).body, { tokenRequired: false, subscribe: true, publish: true }, 'publishing is open')
    const PUBLISH_TOKEN = 'console-publish-token-0123'
    const closed = await startApp(t, { PUBLISH_TOKEN }, { consoleDir: dir })
    t.same((await access(closed.url)).body, { tokenRequired: false, subscribe: true, publish: false }, 'PUBLISH_TOKEN set: not without it')
    t.same((await access(closed.url, { authorization: 'Bearer not-the-token-0000' })).body.publish, false, 'nor with another')
    t.same((await access(closed.url, { authorization: `Bearer ${PUBLISH_TOKEN}` })).body.publish, true, 'with it')
  })

  t.test('AUTH_MODE=jwt: a token with events:all, in the Authorization header only', async t => {
    const { url } = await startApp(t, { ...PRODUCTION, CONSOLE: 'true' }, { consoleDir: dir })
    t.same(await access(url), { status: 200, body: { tokenRequired: true, subscribe: false, publish: false }, challenge: null },
      'no token: the page asks for one (an answer, not an error: the page logs none)')
    t.same((await access(url, {}, `?access_token=${token('events:all')}`)).body.subscribe, false, 'a token in the URL is not taken')
    t.match(await access(url, { authorization: 'Bearer nonsense' }), { status: 401, body: { error: 'invalid_token' }, challenge: /^Bearer / })
    t.match(await access(url, { authorization: `Bearer ${token('events:publish')}` }),
      { status: 403, body: { error: 'forbidden', message: 'the console needs a token with the events:all scope' } })
    t.same((await access(url, bearer('events:all'))).body, { tokenRequired: true, subscribe: true, publish: false })
    t.same((await access(url, bearer('events:all events:publish'))).body, { tokenRequired: true, subscribe: true, publish: true })
  })
})

t.test('the build: its default is where the service reads, and the command writes every file', async t => {
  const built = await buildConsole()
  t.equal(built.dir, CONSOLE_DIR)
  t.same(Object.keys(built.bytes).sort(), Object.keys(CONSOLE_FILES).sort())
  const { url } = await startApp(t)
  t.equal((await get(`${url}/console`)).status, 200, 'an app given no directory serves what npm run build made')
  t.ok(built.inputs.includes('client/index.ts'), 'the page is built on the client (createEventsClient)')
  t.ok(built.inputs.every(input => /^(console|client|services)\/|(^|\/)node_modules\//.test(input)),
    `made of console/, client/, services/ and packages: ${built.inputs.join(' ')}`)

  const dir = await tempDir(t)
  const command = runEntry('scripts/build-console', [dir])
  const [code] = await command.exited
  t.equal(code, 0)
  t.match(command.output().stdout, /^console page built in .*: index\.html \d+ B, console\.js \d+ B, console\.css \d+ B, favicon\.svg \d+ B\n$/)
  for (const name of Object.keys(CONSOLE_FILES)) t.ok((await readFile(join(dir, name))).length > 0, name)
})
