import { buildApp } from './app.js'
import { loadConfig, type Config, type ConfigError } from './services/config.js'
import { stdoutLogDestination } from './services/log-destination.js'

function configOrExit (): Config {
  try {
    return loadConfig()
  } catch (error) {
    process.stderr.write(`flowfi-events: bad configuration: ${(error as ConfigError).message}\n`)
    process.exit(1)
  }
}

const config = configOrExit()
const logStream = stdoutLogDestination()
// Whatever exits the process: the lines standard output takes now go out, the rest is lost.
process.on('exit', () => logStream.flush())
const app = buildApp(config, { logStream })

// Readiness fails, the streams end spread over the drain window, then the server closes. The handler
// goes after the first signal, so that a second one kills the process at once.
async function shutdown (signal: NodeJS.Signals): Promise<void> {
  process.off('SIGTERM', shutdown)
  process.off('SIGINT', shutdown)
  app.log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down')
  setTimeout(() => {
    app.log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out: exiting with requests still open')
    process.exit(1)
  }, config.shutdownTimeoutMs).unref()
  await app.drain()
  await app.close()
  app.log.info('closed')
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)

try {
  await app.listen({ host: config.host, port: config.port })
} catch (error) {
  app.log.fatal({ err: error }, 'could not listen')
  process.exit(1)
}
