import { execFile } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import t from 'tap'

/** The repository's root, from .build/test/ where the compiled tests run. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const run = promisify(execFile)
/** The aim for flowfi-events/client, minified and gzipped. */
const MAX_GZIPPED_BYTES = 5 * 1024

t.test('flowfi-events/client: the build of client/tsconfig.build.json is what package.json exports, with its types', async t => {
  // A copy of the package: package.json and the build, in a folder under the repository so that the
  // build's own import of eventsource-parser resolves to node_modules as it does for the package.
  await mkdir(join(ROOT, '.build'), { recursive: true })
  const copy = await mkdtemp(join(ROOT, '.build', 'package-'))
  t.teardown(() => rm(copy, { recursive: true, force: true }))
  await copyFile(join(ROOT, 'package.json'), join(copy, 'package.json'))
  await run(process.execPath, [TSC, '-p', join(ROOT, 'client/tsconfig.build.json'), '--outDir', join(copy, 'dist')])

  // A module of the package that imports it by its own name: Node resolves that through "exports".
  await writeFile(join(copy, 'consumer.js'), "export * from 'flowfi-events/client'\n")
  const client = await import(pathToFileURL(join(copy, 'consumer.js')).href)
  t.same(Object.keys(client).sort(), ['createEventsClient', 'isNewer', 'subscribeUrl'])
  t.equal(typeof client.createEventsClient, 'function')
  t.ok(client.isNewer('2-0', '1-0'), 'and it runs')

  // TypeScript finds the types by the "types" condition, as an app that installs the package would.
  await writeFile(join(copy, 'consumer.ts'), [
    "import { createEventsClient, type ClientState, type EventsClient } from 'flowfi-events/client'",
    "const client: EventsClient = createEventsClient({ url: 'https://events.example', streams: [42] })",
    "const state: ClientState = client.state",
    "client.on('stream.withdrawn', data => { const id: string | number = data.streamId; return [id, state] })",
    ''
  ].join('\n'))
  await writeFile(join(copy, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2023', 'dom'], types: [] },
    files: ['consumer.ts']
  }))
  await run(process.execPath, [TSC, '-p', copy])
})

t.test('the browser bundle of client/index.ts: under 5 KiB minified and gzipped, and no server code in it', async t => {
  const result = await build({
    entryPoints: [join(ROOT, 'client/index.ts')],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    metafile: true,
    logLevel: 'silent'
  })
  const bundle = result.outputFiles[0]!.contents
  const gzipped = gzipSync(bundle, { level: 9 }).length
  t.ok(gzipped < MAX_GZIPPED_BYTES, `${gzipped} bytes gzipped (${bundle.length} minified)`)
  const inputs = Object.keys(result.metafile.inputs).map(input => input.replace(/^.*node_modules\//, 'node_modules/'))
  t.same(inputs.filter(input => !input.startsWith('node_modules/eventsource-parser/') && !input.startsWith('client/')), ['services/protocol.ts'],
    'of this repository, the client and the protocol module only')
  const text = new TextDecoder().decode(bundle)
  for (const server of ['fastify', 'ioredis', 'node:']) t.notOk(text.includes(server), `nothing of ${server}`)
})
