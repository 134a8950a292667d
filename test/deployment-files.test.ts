// The compose file and the Kubernetes manifests agree with the code: every variable they set is one
// the config reads, the build sandbox gets exactly what it needs, secrets come only from secrets.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, QUEUE_KEY, loadConfig } from '@slipway/shared';

const root = path.resolve(__dirname, '..');
const k8sDir = path.join(root, 'deploy/kubernetes');
const read = (rel: string) => readFileSync(path.join(root, rel), 'utf8');
const SECRETS = ['REDIS_URL', 'REDIS_PASSWORD', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'API_TOKENS', 'SECRETS_KEY'];
/** The site server's, which may only read. */
const SITE_SECRETS = ['REDIS_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'SECRETS_KEY'];
const SERVICES = ['upload-service', 'site-server', 'deploy-service'];

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const compose = parse(read('docker-compose.yml'), { merge: true }) as Obj;
const manifests: Obj[] = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .flatMap((f) => parseAllDocuments(readFileSync(path.join(k8sDir, f), 'utf8')).map((d) => d.toJS() as Obj));
const kustomization = parse(readFileSync(path.join(k8sDir, 'kustomization.yaml'), 'utf8')) as Obj;
const configMap = manifests.find((m) => m.kind === 'ConfigMap')!;
const deployment = (name: string) => manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === name)!;
const container = (name: string) => deployment(name).spec.template.spec.containers[0] as Obj;
const envOf = (c: Obj) => Object.fromEntries((c.env ?? []).map((e: Obj) => [e.name, e.value]));
const envFile = (text: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

describe('deployment files', () => {
  it('set only variables the config module reads', () => {
    const names = new Set<string>();
    for (const service of SERVICES) for (const name of Object.keys(compose.services[service].environment)) names.add(name);
    for (const name of Object.keys(configMap.data)) names.add(name);
    for (const service of SERVICES) for (const name of Object.keys(envOf(container(service)))) names.add(name);
    for (const file of ['secrets.env.example', 'sites.env.example']) for (const name of Object.keys(envFile(readFileSync(path.join(k8sDir, file), 'utf8')))) names.add(name);
    expect([...names].filter((n) => !CONFIG_VARIABLES.includes(n))).toEqual([]);
    expect(names.size).toBeGreaterThan(15);
  });

  it('give the worker the sandbox settings it needs, in compose and in Kubernetes', () => {
    expect(compose.services['deploy-service'].security_opt).toEqual(['seccomp=unconfined', 'apparmor=unconfined', 'systempaths=unconfined']);
    expect(compose.services['deploy-service'].privileged).toBeUndefined();
    expect(compose.services['deploy-service'].cap_add).toBeUndefined();

    const pod = deployment('deploy-service').spec.template.spec;
    expect(pod.hostUsers).toBe(false);
    const sc = container('deploy-service').securityContext;
    expect(sc).toMatchObject({ seccompProfile: { type: 'Unconfined' }, appArmorProfile: { type: 'Unconfined' }, procMount: 'Unmasked', allowPrivilegeEscalation: false });
    expect(sc.privileged).toBeUndefined();
    expect(sc.capabilities?.add).toBeUndefined();
    // Inside a user-namespaced pod only uids 0-65535 exist: every build uid must be one of them.
    const { buildUids } = loadConfig(envOf(container('deploy-service')));
    expect(buildUids.first + buildUids.count - 1).toBeLessThanOrEqual(65_535);
  });

  it('let running builds finish before a worker is killed', () => {
    const worker = container('deploy-service');
    const grace = Number(envOf(worker).SHUTDOWN_GRACE_SECONDS);
    expect(deployment('deploy-service').spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(grace);
    expect(Number.parseInt(compose.services['deploy-service'].stop_grace_period, 10)).toBeGreaterThan(loadConfig({}).shutdownGraceMs / 1000);
  });

  it('take secrets only from secrets, and cannot start without them', () => {
    const plain = { ...configMap.data, ...Object.assign({}, ...SERVICES.map((s) => envOf(container(s)))) };
    expect(SECRETS.filter((s) => s in plain)).toEqual([]);
    for (const service of ['upload-service', 'deploy-service']) {
      expect(container(service).envFrom).toContainEqual({ secretRef: { name: 'slipway-secrets' } });
    }
    // The site server gets its own, read-only credentials, and none of the others' secrets.
    expect(container('site-server').envFrom).toEqual([{ configMapRef: { name: 'slipway-config' } }, { secretRef: { name: 'slipway-site-secrets' } }]);
    expect(kustomization.secretGenerator).toEqual([{ name: 'slipway-secrets', envs: ['secrets.env'] }, { name: 'slipway-site-secrets', envs: ['sites.env'] }]);
    expect(Object.keys(envFile(readFileSync(path.join(k8sDir, 'secrets.env.example'), 'utf8'))).sort()).toEqual([...SECRETS].sort());
    expect(Object.keys(envFile(readFileSync(path.join(k8sDir, 'sites.env.example'), 'utf8'))).sort()).toEqual([...SITE_SECRETS].sort());
    // In compose too: the `sites` Redis user and the MinIO user with the readonly policy.
    const sites = compose.services['site-server'].environment;
    expect(sites.REDIS_URL).toMatch(/^redis:\/\/sites:\$\{SITES_REDIS_PASSWORD/);
    expect(sites.AWS_SECRET_ACCESS_KEY).toMatch(/SITES_S3_SECRET_KEY/);
    expect(compose.services.redis.command.join(' ')).toContain('user sites on');
    expect(compose.services['minio-init'].entrypoint.join(' ')).toContain('policy attach local readonly');
    // The filled-in files are never committed.
    expect(execFileSync('git', ['ls-files', 'deploy/kubernetes'], { cwd: root, encoding: 'utf8' })).not.toMatch(/(secrets|sites)\.env$/m);
    for (const file of ['secrets.env', 'sites.env']) expect(execFileSync('git', ['check-ignore', '-q', `deploy/kubernetes/${file}`], { cwd: root }).toString()).toBe('');
  });

  it('agree on the API port, the image names and the Dockerfile targets', () => {
    const dockerfile = read('Dockerfile');
    // One multi-stage file; each service is a target, and no stage is defined twice.
    const stages = [...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]!);
    expect(new Set(stages).size).toBe(stages.length);
    expect(stages).toEqual(expect.arrayContaining(['upload-service', 'deploy-service']));
    const stage = (name: string) => dockerfile.slice(dockerfile.indexOf(`AS ${name}\n`)).split(/^FROM /m)[0]!;
    const [expose, siteExpose] = /^EXPOSE (\d+) (\d+)$/m.exec(stage('upload-service'))!.slice(1);
    expect(stage('upload-service')).toMatch(/^USER node$/m);
    expect(stage('deploy-service')).toMatch(/bubblewrap/);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/ENTRYPOINT \["\/usr\/bin\/tini", "--"\]/);
    // Node 24 LTS, on the base CI builds in its place (test/compose/run.sh), within `engines`.
    const nodeImage = /^ARG NODE_IMAGE=(node:(\d+)-bookworm-slim)$/m.exec(dockerfile);
    expect(nodeImage?.[2]).toBe('24');
    expect(read('test/compose/run.sh')).toContain(`base=slipway-ci/${nodeImage![1]}\nbash test/compose/base-image.sh "$base" ${nodeImage![2]}\n`);
    expect(JSON.parse(read('package.json')).engines.node).toMatch(new RegExp(`>=${nodeImage![2]}\\.0\\.0|\\^${nodeImage![2]}\\.`));

    const api = container('upload-service');
    expect(api.ports[0].containerPort).toBe(Number(expose));
    expect(Number(envOf(api).PORT)).toBe(Number(expose));
    expect(compose.services['upload-service'].ports).toEqual([`${expose}:${expose}`]);
    expect(manifests.find((m) => m.kind === 'Service' && m.metadata.name === 'upload-service')!.spec.ports[0].targetPort).toBe(api.ports[0].name);
    expect(kustomization.images.map((i: Obj) => i.name).sort()).toEqual([container('deploy-service').image, api.image].sort());
    // The site server: the same image, its own entry point and port.
    const sites = container('site-server');
    expect(sites.image).toBe(api.image);
    expect(sites.command).toEqual(compose.services['site-server'].command);
    expect(sites.command.at(-1)).toBe('upload-service/src/site-main.ts');
    expect(sites.ports[0].containerPort).toBe(Number(siteExpose));
    expect(Number(envOf(sites).SITE_PORT)).toBe(Number(siteExpose));
    expect(compose.services['site-server'].ports).toEqual([`${siteExpose}:${siteExpose}`]);
    expect(compose.services['site-server'].image).toBe(api.image);
    const hpa = manifests.find((m) => m.kind === 'HorizontalPodAutoscaler')!;
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'site-server' });
    expect(hpa.spec.metrics[0].resource).toMatchObject({ name: 'cpu', target: { type: 'Utilization' } });
    expect(sites.resources.requests.cpu).toBeDefined();
    for (const service of ['upload-service', 'deploy-service']) {
      expect(compose.services[service].build).toEqual({ context: '.', target: service });
      expect(compose.services[service].image).toBe(container(service).image);
    }
  });

  it('check readiness apart from liveness', () => {
    for (const service of ['upload-service', 'site-server']) {
      expect(container(service).livenessProbe.httpGet.path).toBe('/healthz');
      expect(container(service).readinessProbe.httpGet.path).toBe('/readyz');
      expect(compose.services[service].healthcheck.test.join(' ')).toContain('/readyz');
    }
  });

  it('scale workers with KEDA on the list the code uses, with the Redis password from the Secret', () => {
    const scaled = manifests.find((m) => m.kind === 'ScaledObject')!;
    expect(scaled.spec.scaleTargetRef.name).toBe(deployment('deploy-service').metadata.name);
    const [trigger] = scaled.spec.triggers;
    expect(trigger).toMatchObject({ type: 'redis', metadata: { listName: QUEUE_KEY, listLength: expect.any(String), activationListLength: expect.any(String) } });
    expect(Number(trigger.metadata.listLength)).toBeGreaterThan(0);
    const auth = manifests.find((m) => m.kind === 'TriggerAuthentication' && m.metadata.name === trigger.authenticationRef.name)!;
    expect(auth.spec.secretTargetRef).toEqual([{ parameter: 'password', name: 'slipway-secrets', key: 'REDIS_PASSWORD' }]);
    // The scaler's address is the Redis of REDIS_URL.
    const redisHost = new URL(String(envFile(readFileSync(path.join(k8sDir, 'secrets.env.example'), 'utf8')).REDIS_URL)).host;
    expect(trigger.metadata.address).toBe(redisHost);
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
  });

  it('route the API host to the upload-service and every site host to the site server', () => {
    const ingress = manifests.find((m) => m.kind === 'Ingress')!;
    const hosts = ingress.spec.rules.map((r: Obj) => r.host);
    expect(hosts).toEqual([configMap.data.API_HOSTS, `*.${configMap.data.BASE_DOMAIN}`]);
    const [api, sites] = ingress.spec.rules;
    expect(api.http.paths[0].backend.service).toEqual({ name: 'upload-service', port: { name: container('upload-service').ports[0].name } });
    expect(sites.http.paths[0].backend.service).toEqual({ name: 'site-server', port: { name: container('site-server').ports[0].name } });
    expect(ingress.spec.tls[0].hosts.sort()).toEqual([...hosts].sort());
  });

  it('list in .env.example every variable the compose file reads', () => {
    const used = new Set([...read('docker-compose.yml').matchAll(/\$\{([A-Z_]+)[:?}-]/g)].map((m) => m[1]!));
    const listed = Object.keys(envFile(read('.env.example')));
    expect([...used].filter((name) => !listed.includes(name))).toEqual([]);
    expect(used.size).toBeGreaterThan(10);
  });

  it('keep the build cache on a volume and cap each worker in compose', () => {
    const worker = compose.services['deploy-service'];
    expect(worker.volumes).toContain('build-cache:/var/cache/slipway');
    expect(worker.environment.CACHE_DIR).toMatch(/^\/var\/cache\/slipway\//);
    expect(worker.deploy.resources.limits).toMatchObject({ cpus: expect.any(String), memory: expect.any(String) });
    expect(compose.volumes).toHaveProperty('build-cache');
  });
});
