import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './services/config.js'

function configOrExit (): Config {
  try {
    return loadConfig()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`flowfi-events: bad configuration: ${error.message}\n`)
    process.exit(1)
  }
}

const config = configOrExit()
const app = buildApp(config)

let closing = false
async function shutdown (signal: NodeJS.Signals): Promise<void> {
  if (closing) {
    app.log.warn({ signal }, 'second signal: exiting now')
    process.exit(1)
  }
  closing = true
  app.log.info({ signal }, 'shutting down')
  await app.close()
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
