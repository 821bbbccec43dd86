import { execFile, spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { parseAllDocuments, parse as parseYaml, stringify as toYaml } from 'yaml'
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1'
import { loadConfig } from '../services/config.js'
import { startApp } from './helpers/app.js'
import { STREAM_PROXY } from './helpers/nginx.js'
import { metricNames, sampleNames } from './helpers/promql.js'
import { redisAnswers, redisEnv } from './helpers/redis.js'

// The chart's tests read the rendered objects, never the templates. `helm` is the real one on PATH, or
// the shim beside the repository (../shared/bin/helm, which .ci/run puts on PATH); the first run of the
// shim builds it, hence the long timeout.
t.setTimeout(240_000)
const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
const chart = join(root, 'helm/flowfi-events')
const allValues = join(chart, 'ci/all-values.yaml')
const RELEASE = 'flowfi-events'
const NAMESPACE = 'events'
const SELECTOR = `namespace="${NAMESPACE}", job="${RELEASE}"`

const helm = ['helm', join(root, '../shared/bin/helm')].find(candidate => spawnSync(candidate, ['version'], { stdio: 'ignore' }).status === 0)
const NO_HELM = helm === undefined && 'helm is not installed, nor ../shared/bin/helm beside the repository (.ci/run puts it on PATH): the chart is not rendered'
const NO_PROMTOOL = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).error !== undefined &&
  'promtool is not installed (Debian package prometheus; .ci/run installs it): the rules are not checked'

type Manifest = { apiVersion: string, kind: string, metadata: { name: string, labels?: Record<string, string>, annotations?: Record<string, string> }, [field: string]: any }

async function render (...args: string[]): Promise<Manifest[]> {
  return await renderChart(chart, ...args)
}

async function renderChart (path: string, ...args: string[]): Promise<Manifest[]> {
  const { stdout } = await run(helm!, ['template', RELEASE, path, '-n', NAMESPACE, ...args], { maxBuffer: 16 << 20 })
  return parseAllDocuments(stdout).map(document => document.toJS()).filter(object => object !== null)
}

/** The error helm stops with, for values that must be refused. */
async function refusal (...args: string[]): Promise<string> {
  const error = await render(...args).then(() => undefined, (error: { stderr: string }) => error)
  if (error === undefined) throw new Error(`helm template ${args.join(' ')} rendered`)
  return error.stderr
}

const one = (objects: Manifest[], kind: string): Manifest => {
  const found = objects.filter(object => object.kind === kind)
  if (found.length !== 1) throw new Error(`${found.length} objects of kind ${kind}`)
  return found[0]!
}

const MODELS: Record<string, { new (data: any): { validate (): void } }> = {
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/Ingress': Ingress,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule
}

function validateAll (t: Test, objects: Manifest[]): void {
  for (const object of objects) {
    const Model = MODELS[`${object.apiVersion}/${object.kind}`]
    t.ok(Model !== undefined, `${object.apiVersion} ${object.kind} is a kind the chart should make`)
    t.doesNotThrow(() => new Model!(object).validate(), `${object.kind} ${object.metadata.name} is valid against the Kubernetes schema`)
  }
}

/** The environment a pod gets: the ConfigMap and the chart's Secret (what envFrom passes). */
function podEnvironment (objects: Manifest[]): Record<string, string> {
  const configMap = objects.find(object => object.kind === 'ConfigMap' && object.metadata.name === RELEASE)!
  const secret = objects.find(object => object.kind === 'Secret')
  const secrets = Object.fromEntries(Object.entries(secret?.data ?? {}).map(([key, value]) => [key, Buffer.from(value as string, 'base64').toString()]))
  return { ...configMap.data, ...secrets }
}

const containerOf = (objects: Manifest[]) => one(objects, 'Deployment').spec.template.spec.containers[0]

t.test('Chart.yaml: apiVersion v2, and appVersion is package.json\'s version', async t => {
  const meta = parseYaml(readFileSync(join(chart, 'Chart.yaml'), 'utf8'))
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  t.equal(meta.apiVersion, 'v2')
  t.equal(meta.name, 'flowfi-events')
  t.equal(meta.appVersion, pkg.version)
})

t.test('values.yaml: every key is described by a comment (its own, or its block\'s)', async t => {
  const lines = readFileSync(join(chart, 'values.yaml'), 'utf8').split('\n')
  const uncommented: string[] = []
  // Keys of lists and below are the objects' own (hosts, selectors): their block's comment covers them.
  let listIndent = Infinity
  for (const [at, line] of lines.entries()) {
    const key = /^(\s*)([\w./-]+):/.exec(line)
    const item = /^(\s*)- /.exec(line)
    const indent = (key ?? item)?.[1]!.length ?? Infinity
    if (indent <= listIndent) listIndent = Infinity
    if (item !== null) listIndent = Math.min(listIndent, indent)
    if (key === null || indent > listIndent) continue
    const before = lines[at - 1]?.trim() ?? ''
    // Commented: a comment right above, or a key of the same block right above (a block shares its comment).
    if (before.startsWith('#') || (before !== '' && at > 0 && /^[\w./-]+:/.test(before))) continue
    uncommented.push(line.trim())
  }
  t.same(uncommented, [], 'keys with no comment above them or their block')
})

t.test('the dashboard: the panels asked for, on the service\'s metrics', async t => {
  const dashboard = JSON.parse(readFileSync(join(chart, 'dashboards/flowfi-events.json'), 'utf8'))
  const exprs = dashboard.panels.flatMap((panel: any) => panel.targets.map((target: any) => target.expr)) as string[]
  const names = new Set(exprs.flatMap(metricNames))
  for (const metric of ['sse_connections_active', 'sse_events_published_total', 'sse_events_delivered_total',
    'sse_delivery_latency_seconds_bucket', 'sse_resyncs_total', 'sse_slow_consumer_disconnects_total']) {
    t.ok(names.has(metric), `a panel shows ${metric}`)
  }
  t.ok(exprs.some(expr => /histogram_quantile\(0\.99,/.test(expr)) && exprs.some(expr => /histogram_quantile\(0\.5,/.test(expr)), 'latency quantiles')
  t.ok(exprs.some(expr => /sum by \(pod\) \(rate\(sse_slow_consumer_disconnects_total/.test(expr)), 'slow-consumer drops by pod')
  t.ok(exprs.every(expr => expr.includes('namespace="$namespace", job="$job"')), 'every query is of the chosen release')
})

t.test('the chart, rendered', { skip: NO_HELM }, async t => {
  const defaults = await render()
  const all = await render('-f', allValues)

  t.test('helm lint passes with the defaults and with every option on', async t => {
    for (const args of [[], ['-f', allValues]]) {
      const { stdout } = await run(helm!, ['lint', chart, '--strict', ...args])
      t.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/, `helm lint --strict ${args.join(' ')}`)
    }
  })

  t.test('the defaults: a ServiceAccount, a ConfigMap, a Service and a Deployment, all valid', async t => {
    t.same(defaults.map(object => object.kind).sort(), ['ConfigMap', 'Deployment', 'Service', 'ServiceAccount'])
    validateAll(t, defaults)
  })

  t.test('every option on: every object, all valid', async t => {
    t.same(all.map(object => `${object.kind}/${object.metadata.name}`).sort(), [
      'ConfigMap/flowfi-events', 'ConfigMap/flowfi-events-dashboard', 'Deployment/flowfi-events',
      'HorizontalPodAutoscaler/flowfi-events', 'Ingress/flowfi-events', 'NetworkPolicy/flowfi-events',
      'PodDisruptionBudget/flowfi-events', 'PrometheusRule/flowfi-events', 'Secret/flowfi-events',
      'Service/flowfi-events', 'ServiceAccount/flowfi-events', 'ServiceMonitor/flowfi-events'
    ])
    validateAll(t, all)
  })

  t.test('the service takes the configuration the chart gives it', async t => {
    const config = loadConfig(podEnvironment(all))
    t.match(config, { production: true, port: 3001, metricsPort: 9091, trustProxy: 1, maxStreamAgeMs: 1_200_000, logLevel: 'warn' })
    t.match(config.redis, { url: 'redis://:redis-password@redis-master.data:6379/0', readyRequiresRedis: true })
    t.match(config.auth, { mode: 'jwt', issuer: 'https://auth.flowfi.example', audience: 'flowfi-events' })
    t.equal(config.maxFilters, 50, 'extraEnv reaches the pods')
    t.equal(loadConfig(podEnvironment(await render('-f', allValues, '--set', 'extraEnv.HOST=::'))).host, '::', 'HOST is the service\'s default (0.0.0.0) unless set')
    const withKey = loadConfig(podEnvironment(await render('--set', 'secrets.jwtSecret=a-secret-of-at-least-32-characters-!!')))
    t.match(withKey, { production: true, trustProxy: false, redis: undefined, console: false }, 'the defaults and a key are enough; the console is off')
    t.equal(config.console, true, 'config.console turns the console page on')
    t.throws(() => loadConfig(podEnvironment(defaults)), { name: 'ConfigError', message: /^AUTH_MODE=/ }, 'without a key the pods would not start (NOTES.txt says so)')
  })

  t.test('the drain: grace period > SHUTDOWN_TIMEOUT_MS > DRAIN_DELAY_MS + DRAIN_WINDOW_MS, from one value', async t => {
    for (const drainSeconds of [30, 8, 120]) {
      const objects = await render('--set', `drainSeconds=${drainSeconds}`)
      const env = podEnvironment(objects)
      const drain = Number(env.DRAIN_DELAY_MS) + Number(env.DRAIN_WINDOW_MS)
      const grace = one(objects, 'Deployment').spec.template.spec.terminationGracePeriodSeconds * 1000
      t.equal(drain, drainSeconds * 1000, `drainSeconds=${drainSeconds}: the streams end within it`)
      t.ok(Number(env.DRAIN_DELAY_MS) > 0 && Number(env.DRAIN_DELAY_MS) <= 5000, 'a delay for the load balancers to see readiness fail')
      t.ok(Number(env.SHUTDOWN_TIMEOUT_MS) >= drain + 1000, 'the service\'s own rule')
      t.ok(grace > Number(env.SHUTDOWN_TIMEOUT_MS), `the grace period (${grace} ms) outlasts the process (${env.SHUTDOWN_TIMEOUT_MS} ms)`)
    }
  })

  t.test('the pods: probes, security, rollout, spread, checksums', async t => {
    const deployment = one(all, 'Deployment')
    const pod = deployment.spec.template.spec
    const container = containerOf(all)
    t.match(container.livenessProbe, { httpGet: { path: '/healthz', port: 'http' } })
    t.match(container.readinessProbe, { httpGet: { path: '/readyz', port: 'http' } })
    t.match(container.startupProbe, { httpGet: { path: '/healthz', port: 'http' } })
    t.same(container.ports.map((port: any) => [port.name, port.containerPort]), [['http', 3001], ['metrics', 9091]])
    t.match(pod.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
    t.match(container.securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })
    t.same(container.volumeMounts, [{ name: 'tmp', mountPath: '/tmp' }], '/tmp is the only place written to')
    t.equal(pod.automountServiceAccountToken, false)
    t.same(deployment.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } })
    t.equal(deployment.spec.replicas, undefined, 'the autoscaler sets the replicas')
    t.match(pod.topologySpreadConstraints, [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: deployment.spec.selector.matchLabels } }])
    t.same(container.envFrom, [{ configMapRef: { name: RELEASE } }, { secretRef: { name: RELEASE } }])
    t.same(container.env, [{ name: 'INSTANCE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }])

    const annotations = (objects: Manifest[]) => one(objects, 'Deployment').spec.template.metadata.annotations
    const base = annotations(all)
    t.match(base, { 'checksum/config': /^[0-9a-f]{64}$/, 'checksum/secret': /^[0-9a-f]{64}$/, 'example.com/team': 'payments' })
    const config = annotations(await render('-f', allValues, '--set', 'config.logLevel=debug'))
    t.not(config['checksum/config'], base['checksum/config'], 'a configuration change rolls the pods')
    t.equal(config['checksum/secret'], base['checksum/secret'])
    const secret = annotations(await render('-f', allValues, '--set', 'secrets.publishToken=another-publish-token'))
    t.not(secret['checksum/secret'], base['checksum/secret'], 'so does a secret\'s')
    t.equal(one(defaults, 'Deployment').spec.replicas, 1)
  })

  t.test('existingSecret and redis.existingSecret: the chart keeps no secret', async t => {
    const objects = await render('--set', 'existingSecret=flowfi-events-keys', '--set', 'redis.existingSecret=redis-auth',
      '--set', 'redis.existingSecretKey=url', '--set', 'replicaCount=2')
    t.notOk(objects.some(object => object.kind === 'Secret'))
    const container = containerOf(objects)
    t.same(container.envFrom, [{ configMapRef: { name: RELEASE } }, { secretRef: { name: 'flowfi-events-keys' } }])
    t.match(container.env, [{ name: 'INSTANCE_ID' }, { name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'url' } } }])
    t.notOk('checksum/secret' in one(objects, 'Deployment').spec.template.metadata.annotations, 'nothing of its own to checksum')
    t.equal(podEnvironment(objects).REDIS_PREFIX, 'flowfi-events:', 'Redis is on')
    validateAll(t, objects)
  })

  t.test('the ingress: SSE-safe for ingress-nginx, and TRUST_PROXY for its hop', async t => {
    const ingress = one(all, 'Ingress')
    // The settings of the nginx the browser test runs as the ingress (test/helpers/nginx.ts).
    t.match(ingress.metadata.annotations, {
      'nginx.ingress.kubernetes.io/proxy-buffering': STREAM_PROXY.buffering,
      'nginx.ingress.kubernetes.io/proxy-read-timeout': String(STREAM_PROXY.timeoutSeconds),
      'nginx.ingress.kubernetes.io/proxy-send-timeout': String(STREAM_PROXY.timeoutSeconds),
      'nginx.ingress.kubernetes.io/proxy-http-version': STREAM_PROXY.httpVersion,
      'nginx.ingress.kubernetes.io/backend-protocol': 'HTTP',
      'cert-manager.io/cluster-issuer': 'letsencrypt'
    }, 'the browser test\'s nginx settings')
    t.same(ingress.spec.tls, [{ hosts: ['events.flowfi.example'], secretName: 'events-tls' }], 'TLS (and so HTTP/2) at the ingress')
    t.match(ingress.spec.rules[0].http.paths[0].backend, { service: { name: RELEASE, port: { name: 'http' } } })
    t.equal(podEnvironment(all).TRUST_PROXY, '1', 'one hop: the ingress controller')
    t.notOk('TRUST_PROXY' in podEnvironment(defaults), 'no ingress, no proxy believed')
    const own = await render('--set', 'ingress.enabled=true', '--set', 'config.trustProxy=10.0.0.0/8')
    t.equal(podEnvironment(own).TRUST_PROXY, '10.0.0.0/8', 'config.trustProxy wins')
    const overridden = one(await render('--set', 'ingress.enabled=true', '--set-string', 'ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/proxy-read-timeout=7200'), 'Ingress')
    t.equal(overridden.metadata.annotations!['nginx.ingress.kubernetes.io/proxy-read-timeout'], '7200', 'ingress.annotations win')
    const plain = one(await render('--set', 'ingress.enabled=true', '--set', 'ingress.nginxSseAnnotations=false'), 'Ingress')
    t.equal(plain.metadata.annotations, undefined, 'another controller: no nginx annotations')
  })

  t.test('Service, HPA, PDB, NetworkPolicy, ServiceMonitor', async t => {
    t.same(one(all, 'Service').spec.ports.map((port: any) => [port.name, port.targetPort]), [['http', 'http'], ['metrics', 'metrics']])
    const hpa = one(all, 'HorizontalPodAutoscaler')
    t.match(hpa.spec, { minReplicas: 3, maxReplicas: 12, scaleTargetRef: { kind: 'Deployment', name: RELEASE } })
    t.match(hpa.spec.metrics, [
      { type: 'Resource', resource: { name: 'cpu', target: { averageUtilization: 60 } } },
      { type: 'Pods', pods: { metric: { name: 'sse_connections_active' }, target: { type: 'AverageValue', averageValue: '20000' } } }
    ])
    const cpuOnly = one(await render('--set', 'autoscaling.enabled=true', '--set', 'redis.url=redis://r:6379'), 'HorizontalPodAutoscaler')
    t.same(cpuOnly.spec.metrics.map((metric: any) => metric.type), ['Resource'], 'CPU by default')
    t.match(one(all, 'PodDisruptionBudget').spec, { maxUnavailable: 1 })
    t.notOk((await render('--set', 'replicaCount=1')).some(object => object.kind === 'PodDisruptionBudget'), 'no PDB for one pod')

    const policy = one(all, 'NetworkPolicy').spec
    t.same(policy.policyTypes, ['Ingress', 'Egress'])
    t.same(policy.ingress.map((rule: any) => rule.ports.map((port: any) => port.port)), [['http'], ['metrics']])
    t.match(policy.ingress[0].from, [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } } }, { namespaceSelector: {} }])
    t.match(policy.ingress[1].from, [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } }])
    t.same(policy.egress.map((rule: any) => rule.ports.map((port: any) => `${port.protocol}/${port.port}`)), [['TCP/6379'], ['UDP/53', 'TCP/53']], 'Redis and DNS only')

    const monitor = one(all, 'ServiceMonitor').spec
    t.match(one(all, 'Service').metadata.labels, monitor.selector.matchLabels, 'the ServiceMonitor selects the Service')
    t.match(monitor, { namespaceSelector: { matchNames: [NAMESPACE] }, endpoints: [{ port: 'metrics', path: '/metrics' }] })
    const dashboard = all.find(object => object.metadata.name === `${RELEASE}-dashboard`)!
    t.match(dashboard.metadata, { labels: { grafana_dashboard: '1' }, annotations: { grafana_folder: 'FlowFi' } })
    t.same(JSON.parse(dashboard.data['flowfi-events.json']), JSON.parse(readFileSync(join(chart, 'dashboards/flowfi-events.json'), 'utf8')))
  })

  t.test('NOTES.txt tells how to reach the streams and the metrics', async t => {
    // helm template leaves NOTES.txt out: a copy of the chart renders it into a ConfigMap instead.
    const copy = mkdtempSync(join(tmpdir(), 'flowfi-events-notes-'))
    t.teardown(() => rmSync(copy, { recursive: true }))
    cpSync(chart, copy, { recursive: true })
    writeFileSync(join(copy, 'templates/_notes-under-test.tpl'),
      `{{- define "notes-under-test" -}}\n${readFileSync(join(chart, 'templates/NOTES.txt'), 'utf8')}{{- end }}\n`)
    writeFileSync(join(copy, 'templates/notes-under-test.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n    {{- include "notes-under-test" . | nindent 4 }}\n')
    const notes = async (...args: string[]) =>
      (await renderChart(copy, '--show-only', 'templates/notes-under-test.yaml', ...args))[0]!.data.notes as string

    const plain = await notes()
    t.match(plain, `kubectl -n ${NAMESPACE} port-forward svc/${RELEASE} 3001:80`)
    t.match(plain, "curl -N 'http://127.0.0.1:3001/events/subscribe?all=true'")
    t.match(plain, 'curl http://127.0.0.1:9091/metrics')
    t.match(plain, 'WARNING: no JWT key', 'a warning where the pods would not start')
    const full = await notes('-f', allValues)
    t.match(full, "curl -N 'https://events.flowfi.example/events/subscribe?all=true'")
    t.match(full, 'A ServiceMonitor has Prometheus scrape them')
    t.match(full, /ingress-nginx cuts long streams when it reloads/)
    t.notMatch(full, 'WARNING')
  })

  t.test('values that cannot work are refused with the reason', async t => {
    t.match(await refusal('--set', 'replicaCount=3'), /more than one pod \(replicaCount, or autoscaling.maxReplicas\) needs Redis: set redis.url or redis.existingSecret\. Without it each pod keeps its own event history/)
    t.match(await refusal('--set', 'autoscaling.enabled=true'), /needs Redis/, 'so does an autoscaler that may add pods')
    t.match(await refusal('--set', 'redis.url=redis://a:6379', '--set', 'redis.existingSecret=b'), /set redis.url or redis.existingSecret, not both/)
    t.match(await refusal('--set', 'existingSecret=a', '--set', 'secrets.publishToken=a-publish-token-long-enough'), /set existingSecret or secrets\.\*, not both/)
    t.match(await refusal('--set', 'secrets.jwtSecret=x', '--set', 'secrets.jwtPublicKey=y'), /not both/)
    t.match(await refusal('--set', 'autoscaling.enabled=true', '--set', 'redis.url=redis://r:6379', '--set', 'autoscaling.targetCPUUtilizationPercentage=0'),
      /autoscaling needs a target/)
    t.match(await refusal('--set', 'autoscaling.enabled=true', '--set', 'redis.url=redis://r:6379', '--set', 'autoscaling.minReplicas=20'),
      /minReplicas is above autoscaling.maxReplicas/)
    // values.schema.json
    t.match(await refusal('--set-string', 'replicaCount=two'), /replicaCount: Invalid type\. Expected: integer, given: string/)
    t.match(await refusal('--set', 'replicaCount=1', '--set', 'ingress.enabeld=true'), /ingress: Additional property enabeld is not allowed/)
    t.match(await refusal('--set', 'extraEnv.PORT=8080'), /extraEnv/, 'a variable the chart sets is set through its value')
    t.match(await refusal('--set', 'config.maxStreamAgeMs=500'), /config.maxStreamAgeMs/)
    t.match(await refusal('--set', 'redis.url=http://redis'), /redis.url/)
  })

  t.test('the alert rules', { skip: NO_PROMTOOL }, async t => {
    const rules = one(all, 'PrometheusRule').spec
    const dir = mkdtempSync(join(tmpdir(), 'flowfi-events-rules-'))
    t.teardown(() => rmSync(dir, { recursive: true }))
    const rulesFile = join(dir, 'rules.yaml')
    writeFileSync(rulesFile, toYaml(rules))
    const checked = await run('promtool', ['check', 'rules', rulesFile])
    t.match(checked.stdout, /SUCCESS: 6 rules found/)

    const alerts = rules.groups.flatMap((group: any) => group.rules) as Array<{ alert: string, labels: Record<string, string>, annotations: Record<string, string> }>
    t.same(alerts.map(alert => alert.alert).sort(), Object.keys(FIRING).sort(), 'every alert has a case that makes it fire')
    const expand = (text: string, labels: Record<string, string>) => text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => labels[name] ?? '')
    const tests = alerts.map(alert => {
      const { series, evalTime, labels } = FIRING[alert.alert]!
      // A ready pod in every case but the one about readiness: only the alert of the case fires.
      const ready = alert.alert === 'FlowFiEventsNoReadyPod' ? [] : [{ series: `sse_ready${pod('a')}`, values: '1x40' }]
      const expected = { ...labels, ...alert.labels }
      return {
        interval: '1m',
        input_series: [...series, ...ready],
        alert_rule_test: [
          { eval_time: evalTime, alertname: alert.alert, exp_alerts: [{ exp_labels: expected, exp_annotations: mapValues(alert.annotations, text => expand(text, expected)) }] },
          ...alerts.filter(other => other.alert !== alert.alert).map(other => ({ eval_time: evalTime, alertname: other.alert, exp_alerts: [] }))
        ]
      }
    })
    tests.push({ interval: '1m', input_series: HEALTHY, alert_rule_test: alerts.map(alert => ({ eval_time: '30m', alertname: alert.alert, exp_alerts: [] })) })
    const testFile = join(dir, 'rules.test.yaml')
    writeFileSync(testFile, toYaml({ rule_files: ['rules.yaml'], evaluation_interval: '1m', tests }))
    const tested = await run('promtool', ['test', 'rules', testFile]).catch((error: { stdout: string, stderr: string }) => error)
    t.match(tested.stdout, /SUCCESS/, tested.stdout + tested.stderr)
  })

  t.test('the rules, the dashboard and the autoscaler read metrics the service exports', async t => {
    if (!await redisAnswers(t)) return
    // With Redis, so that the Redis metrics are there too.
    const { url } = await startApp(t, redisEnv(t))
    const exported = sampleNames(await (await fetch(`${url}/metrics`)).text())
    const dashboard = JSON.parse(all.find(object => object.metadata.name === `${RELEASE}-dashboard`)!.data['flowfi-events.json'])
    const used = new Map<string, string>()
    for (const group of one(all, 'PrometheusRule').spec.groups) for (const rule of group.rules) for (const name of metricNames(rule.expr)) used.set(name, `alert ${rule.alert}`)
    for (const panel of dashboard.panels) for (const target of panel.targets) for (const name of metricNames(target.expr)) used.set(name, `panel ${panel.title}`)
    for (const variable of dashboard.templating.list) {
      const metric = /label_values\((\w+)/.exec(variable.query?.query ?? '')
      if (metric !== null) used.set(metric[1]!, `variable ${variable.name}`)
    }
    for (const metric of one(all, 'HorizontalPodAutoscaler').spec.metrics) if (metric.type === 'Pods') used.set(metric.pods.metric.name, 'the autoscaler')
    t.ok(used.size >= 10, `${used.size} metrics used`)
    for (const [name, where] of used) t.ok(exported.has(name), `${name} (${where}) is exported`)
  })
})

const mapValues = (record: Record<string, string>, fn: (value: string) => string) =>
  Object.fromEntries(Object.entries(record).map(([key, value]) => [key, fn(value)]))

const pod = (name: string, labels = '') => `{${SELECTOR}, pod="${name}"${labels}}`

/** For each alert: series that make it fire by `evalTime`, and the labels it fires with (besides its own). */
const FIRING: Record<string, { series: Array<{ series: string, values: string }>, evalTime: string, labels: Record<string, string> }> = {
  FlowFiEventsNoReadyPod: {
    series: [{ series: `sse_ready${pod('a')}`, values: '0x30' }, { series: `sse_ready${pod('b')}`, values: '0x30' }],
    evalTime: '10m',
    labels: {}
  },
  FlowFiEventsRedisDown: {
    series: [{ series: `sse_redis_up${pod('a')}`, values: '1 1 0x30' }, { series: `sse_redis_up${pod('b')}`, values: '1x30' },
      { series: `sse_redis_bridge${pod('b')}`, values: '1x30' }],
    evalTime: '10m',
    labels: { namespace: NAMESPACE, job: RELEASE, pod: 'a' }
  },
  FlowFiEventsBridgeNotExactlyOne: {
    series: [{ series: `sse_redis_bridge${pod('a')}`, values: '1x30' }, { series: `sse_redis_bridge${pod('b')}`, values: '0 0 1x30' }],
    evalTime: '10m',
    labels: {}
  },
  FlowFiEventsSlowConsumerDisconnects: {
    // 20 a minute, over the threshold of 10.
    series: [{ series: `sse_slow_consumer_disconnects_total${pod('a')}`, values: '0+20x40' }],
    evalTime: '30m',
    labels: {}
  },
  FlowFiEventsDeliveryLatencyHigh: {
    // Every delivery takes between 1 and 2.5 s.
    series: ['0.5', '1', '2.5', '+Inf'].map(le => ({
      series: `sse_delivery_latency_seconds_bucket${pod('a', `, le="${le}"`)}`,
      values: Number(le) <= 1 ? '0x40' : '0+100x40'
    })),
    evalTime: '30m',
    labels: {}
  },
  FlowFiEventsConnectionsNearCap: {
    series: [{ series: `sse_connections_active${pod('a')}`, values: '46000x30' }, { series: `sse_connections_active${pod('b')}`, values: '100x30' }],
    evalTime: '15m',
    labels: { pod: 'a' }
  }
}

/** A healthy release: two ready pods on Redis, one bridge, nothing slow. */
const HEALTHY = [
  ...['a', 'b'].flatMap(name => [
    { series: `sse_ready${pod(name)}`, values: '1x40' },
    { series: `sse_redis_up${pod(name)}`, values: '1x40' },
    { series: `sse_connections_active${pod(name)}`, values: '20000x40' },
    { series: `sse_slow_consumer_disconnects_total${pod(name)}`, values: '0+1x40' }
  ]),
  { series: `sse_redis_bridge${pod('a')}`, values: '1x40' },
  { series: `sse_redis_bridge${pod('b')}`, values: '0x40' },
  ...['0.01', '1', '+Inf'].map(le => ({ series: `sse_delivery_latency_seconds_bucket${pod('a', `, le="${le}"`)}`, values: '0+100x40' }))
]
