import { readFileSync } from 'node:fs'

// The sources run from the repository root and the build from dist/, one level deeper.
function readVersion (): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'flowfi-events' && pkg.version !== undefined) return pkg.version
    } catch {
      // not this one; try the next
    }
  }
  return 'unknown'
}

/** This service's version, from its package.json. */
export const version = readVersion()
