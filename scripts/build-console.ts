// Bundles the console page (console/, on client/index.ts) into dist/console with esbuild; run by
// `npm run build` (postbuild), so that the service builds nothing at run time:
//   node dist/scripts/build-console.js [<output directory>]
import { copyFile, mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { CONSOLE_DIR, CONSOLE_FILES, type ConsoleFile } from '../services/console-bundle.js'

/** The repository's root, from dist/scripts/ (or .build/scripts/) where this runs compiled. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** The page's sources, in console/: the two files taken as they are, and the two entry points. */
const COPIED = ['index.html', 'favicon.svg'] as const satisfies readonly ConsoleFile[]
const ENTRIES = [{ in: 'console/main.ts', out: 'console' }, { in: 'console/console.css', out: 'console' }]

export interface ConsoleBuild {
  dir: string
  /** The source files the bundles are made of, relative to the repository's root. */
  inputs: string[]
  /** Each file's size in bytes. */
  bytes: Record<ConsoleFile, number>
}

/** Builds the page's files (services/console-bundle.ts CONSOLE_FILES) into `dir`. */
export async function buildConsole (dir: string = CONSOLE_DIR): Promise<ConsoleBuild> {
  await mkdir(dir, { recursive: true })
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ENTRIES,
    outdir: dir,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    metafile: true,
    logLevel: 'silent'
  })
  await Promise.all(COPIED.map(name => copyFile(join(ROOT, 'console', name), join(dir, name))))
  return { dir, inputs: Object.keys(result.metafile.inputs), bytes: await sizes(dir) }
}

async function sizes (dir: string): Promise<Record<ConsoleFile, number>> {
  const names = Object.keys(CONSOLE_FILES) as ConsoleFile[]
  const found = await Promise.all(names.map(name => stat(join(dir, name))))
  return Object.fromEntries(names.map((name, i) => [name, found[i]!.size])) as Record<ConsoleFile, number>
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const built = await buildConsole(process.argv[2])
  process.stdout.write(`console page built in ${built.dir}: ${Object.entries(built.bytes).map(([name, size]) => `${name} ${size} B`).join(', ')}\n`)
}
