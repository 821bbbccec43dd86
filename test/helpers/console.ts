import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildConsole } from '../../scripts/build-console.js'

interface Teardown {
  teardown (fn: () => unknown): void
}

/** An empty directory of the test's own, removed after it. */
export async function tempDir (t: Teardown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flowfi-console-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** The console page built as `npm run build` builds it, into a directory of the test's own. */
export async function builtConsole (t: Teardown): Promise<string> {
  const dir = await tempDir(t)
  await buildConsole(dir)
  return dir
}
