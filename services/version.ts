// The build copies package.json next to the compiled code, so this path holds in both places.
import pkg from '../package.json' with { type: 'json' }

/** This service's version, from its package.json. */
export const version: string = pkg.version
