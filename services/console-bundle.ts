import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The files of the console page that `npm run build` makes (scripts/build-console.ts), with their
 * content types: the only names GET /console/<name> serves, so that no request names a path.
 */
export const CONSOLE_FILES = {
  'index.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml'
} as const
export type ConsoleFile = keyof typeof CONSOLE_FILES

/** Where the build writes the page and the service reads it: dist/console beside dist/services (.build/console for the tests). */
export const CONSOLE_DIR = fileURLToPath(new URL('../console/', import.meta.url))

export const isConsoleFile = (name: string): name is ConsoleFile => Object.hasOwn(CONSOLE_FILES, name)

/** One file of the page, read once. */
export interface ConsoleAsset { body: Buffer, contentType: string }

/**
 * The built page in `dir`, read at the first request and kept: nothing is built at run time. While
 * a file is missing (the page was not built) every read says so, and a later build is picked up.
 */
export class ConsoleBundle {
  #files: Map<ConsoleFile, ConsoleAsset> | undefined

  constructor (readonly dir: string) {}

  /** The file, or undefined when the bundle is not (completely) built, or cannot be read. */
  async file (name: ConsoleFile): Promise<ConsoleAsset | undefined> {
    this.#files ??= await this.#read()
    return this.#files?.get(name)
  }

  async #read (): Promise<Map<ConsoleFile, ConsoleAsset> | undefined> {
    const names = Object.keys(CONSOLE_FILES) as ConsoleFile[]
    try {
      const bodies = await Promise.all(names.map(name => readFile(join(this.dir, name))))
      return new Map(names.map((name, i) => [name, { body: bodies[i]!, contentType: CONSOLE_FILES[name] }]))
    } catch {
      return undefined
    }
  }
}
