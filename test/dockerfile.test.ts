import { readFileSync } from 'node:fs'
import t from 'tap'
import { DockerfileParser, type Instruction } from 'dockerfile-ast'
import { From, type Copy, type JSONInstruction } from 'dockerfile-ast/lib/main.js'
import { loadConfig } from '../services/config.js'
import { buildConsole } from '../scripts/build-console.js'
import { tempDir } from './helpers/console.js'

// No container engine runs here: the image's conventions are checked on the parsed Dockerfile.
const root = new URL('../../', import.meta.url)
const dockerfile = DockerfileParser.parse(readFileSync(new URL('Dockerfile', root), 'utf8'))
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'))
const buildTsconfig = JSON.parse(readFileSync(new URL('tsconfig.build.json', root), 'utf8'))

interface Stage { image: string, name: string | null, instructions: Instruction[] }

/** The stages in order, each with its base image (ARG defaults substituted) and instructions. */
function stages (): Stage[] {
  const args = new Map(dockerfile.getInitialARGs().map(arg => [arg.getProperty()!.getName(), arg.getProperty()!.getValue()]))
  const found: Stage[] = []
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction instanceof From) {
      const image = instruction.getImage()!.replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? '')
      found.push({ image, name: instruction.getBuildStage(), instructions: [] })
    } else {
      found.at(-1)?.instructions.push(instruction)
    }
  }
  return found
}

const keyword = (stage: Stage, word: string) => stage.instructions.filter(instruction => instruction.getKeyword() === word)
const runs = (stage: Stage) => keyword(stage, 'RUN').map(run => run.getArgumentsContent()!)
const execForm = (instruction: Instruction) => (instruction as JSONInstruction).getJSONStrings().map(arg => arg.getJSONValue())

t.test('multi-stage, every stage on one Node 24 LTS slim image pinned by version', async t => {
  const all = stages()
  t.ok(all.length >= 2, 'a build stage and a run stage')
  for (const stage of all) t.match(stage.image, /^node:24\.\d+\.\d+-[a-z]+-slim$/, `${stage.name ?? 'the run stage'}: ${stage.image}`)
  t.equal(new Set(all.map(stage => stage.image)).size, 1, 'one base for all')
})

t.test('built with the dev dependencies, run with the production ones only', async t => {
  const all = stages()
  const final = all.at(-1)!
  const build = all.find(stage => runs(stage).some(run => /^npm run build\b/.test(run)))!
  t.ok(build !== undefined && build !== final, 'the compile happens in a stage of its own')
  t.ok(runs(build).some(run => /^npm ci\b/.test(run) && !run.includes('--omit=dev')), 'with the dev dependencies (tsc)')
  // What the build stage copies in covers what tsconfig.build.json compiles: a new folder is not left out.
  const copied = keyword(build, 'COPY').flatMap(copy => copy.getArguments().slice(0, -1).map(arg => arg.getValue()))
  for (const source of buildTsconfig.include as string[]) t.ok(copied.includes(source), `the build gets ${source}`)
  // And what the console page's bundle is made of: every folder of its sources (node_modules comes from npm ci).
  const consoleSources = new Set((await buildConsole(await tempDir(t))).inputs
    .filter(input => !input.includes('node_modules/')).map(input => input.split('/')[0]!))
  for (const source of consoleSources) t.ok(copied.includes(source), `the build gets ${source}, for the console page`)
  t.match(pkg.scripts.postbuild, /^node dist\/scripts\/build-console\.js$/, 'npm run build bundles the console page into dist, which the run stage takes')

  const fromStages = (keyword(final, 'COPY') as Copy[]).map(copy => [copy.getFromFlag()?.getValue(), copy.getArguments()[0]!.getValue()])
  t.same(fromStages.map(([, path]) => path).sort(), ['/app/dist', '/app/node_modules'], 'the run stage takes dist and node_modules only')
  const modulesFrom = all.find(stage => stage.name === fromStages.find(([, path]) => path === '/app/node_modules')![0])!
  t.ok(runs(modulesFrom).some(run => /^npm ci\b.*--omit=dev/.test(run)), `node_modules comes from npm ci --omit=dev (${modulesFrom.name})`)
  t.notOk(runs(final).some(run => /\bnpm\b/.test(run)), 'no npm in the run stage')
})

t.test('the process: node dist/server.js with npm start\'s V8 flags, under tini, as a non-root user', async t => {
  const final = stages().at(-1)!
  const [user] = keyword(final, 'USER')
  t.match(user?.getArgumentsContent(), /^[1-9]\d*(:[1-9]\d*)?$/, 'a numeric non-root user (runAsNonRoot can check it)')
  const entrypoint = execForm(keyword(final, 'ENTRYPOINT')[0]!)
  t.match(entrypoint[0], /(^|\/)tini$/, 'tini is PID 1: signals reach Node, orphans are reaped')
  const command = execForm(keyword(final, 'CMD')[0]!)
  const start = /node (.*)$/.exec(pkg.scripts.start)![1]!.split(' ')
  t.same(command, ['node', ...start], `the same as npm start runs after its build: node ${start.join(' ')}`)
  t.match(keyword(final, 'ENV').map(env => env.getArgumentsContent()), ['NODE_ENV=production'])
})

t.test('exposes the app and metrics ports; no HEALTHCHECK, no VOLUME, nothing writable in the image', async t => {
  const final = stages().at(-1)!
  const defaults = loadConfig({})
  t.same(keyword(final, 'EXPOSE').flatMap(expose => expose.getArguments().map(arg => arg.getValue())).sort(),
    [String(defaults.port), String(defaults.metricsPort)].sort())
  t.equal(dockerfile.getHEALTHCHECKs().length, 0, 'Kubernetes probes do that')
  t.equal(keyword(final, 'VOLUME').length, 0)
  t.notOk(keyword(final, 'COPY').some(copy => /--chown|--chmod/.test(copy.getArgumentsContent()!)),
    'the files stay root\'s: the process writes nothing but /tmp, so the root filesystem can be read-only')
})

t.test('.dockerignore keeps what is built or installed here, and the rest that is not needed, out of the context', async t => {
  const ignored = readFileSync(new URL('.dockerignore', root), 'utf8').split('\n').map(line => line.trim())
  for (const path of ['.git', 'node_modules', 'dist', '.build', '.tap', 'coverage', 'helm', 'test']) {
    t.ok(ignored.includes(path), path)
  }
})
