// Checks Kubernetes objects against the real API schemas, as the API server would with strict field
// validation: `kubernetes-models` (the Kubernetes OpenAPI models) and `@kubernetes-models/keda` (KEDA's
// CRDs) for types, required fields and enums; and, since their validators let any unknown field through
// (the OpenAPI schemas say nothing of extra properties), the models' own type declarations for the
// fields each object may have: every field a manifest sets must be one its type declares.
import { createRequire } from 'node:module';
import path from 'node:path';
import ts from 'typescript';

type Obj = Record<string, unknown>;

/** Where the model of an apiVersion/kind lives: `kubernetes-models/<group>/<version>/<Kind>`, KEDA's apart. */
export function modelModule(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'keda.sh') return `@kubernetes-models/keda/keda.sh/${version}/${kind}`;
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

/** The model's own validation (ajv over the OpenAPI schema): types, required fields, enums. */
export async function schemaErrors(object: Obj): Promise<string | null> {
  const module = (await import(modelModule(String(object.apiVersion), String(object.kind)))) as Record<string, new (data: Obj) => { validate(): void }>;
  const Model = module[String(object.kind)];
  if (!Model) throw new Error(`no model for ${object.apiVersion} ${object.kind}`);
  try {
    new Model(object).validate();
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Reads the models' declarations once; then `unknownFields(object)` lists the fields no declaration has. */
export function fieldChecker(objects: Obj[]): (object: Obj) => string[] {
  const kinds = [...new Map(objects.map((o) => [`${o.apiVersion} ${o.kind}`, o])).values()];
  const require = createRequire(import.meta.url);
  const entry = path.join(path.dirname(require.resolve('kubernetes-models/package.json')), '..', '..', 'slipway-kubernetes-types.ts');
  const source = kinds.map((o, i) => `import type { I${o.kind} as T${i} } from ${JSON.stringify(modelModule(String(o.apiVersion), String(o.kind)))};\nexport type { T${i} };`).join('\n');
  const options: ts.CompilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true, skipLibCheck: true, types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => (path.resolve(name) === entry ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest));
  const program = ts.createProgram([entry], options, host);
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(entry)!;
  const exported = checker.getExportsOfModule(checker.getSymbolAtLocation(file)!);
  const types = new Map<string, ts.Type>();
  kinds.forEach((o, i) => {
    const symbol = exported.find((s) => s.name === `T${i}`);
    const target = symbol && checker.getAliasedSymbol(symbol);
    const type = target && checker.getDeclaredTypeOfSymbol(target);
    if (!type || type.flags & ts.TypeFlags.Any) throw new Error(`no declared type for ${o.apiVersion} ${o.kind}`);
    types.set(`${o.apiVersion} ${o.kind}`, type);
  });

  function walk(value: unknown, type: ts.Type, at: string): string[] {
    if (value === null || typeof value !== 'object') return [];
    type = checker.getNonNullableType(type);
    if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return [];
    if (type.isUnion()) {
      // IntOrString and the like are not objects; of several object types, the best fitting one counts.
      const candidates = type.types.filter((t) => t.flags & ts.TypeFlags.Object);
      if (candidates.length === 0) return [];
      return candidates.map((t) => walk(value, t, at)).reduce((a, b) => (b.length < a.length ? b : a));
    }
    if (Array.isArray(value)) {
      if (!checker.isArrayType(type)) return [`${at}: a list where the schema has none`];
      const element = checker.getTypeArguments(type as ts.TypeReference)[0]!;
      return value.flatMap((item, i) => walk(item, element, `${at}[${i}]`));
    }
    const index = type.getStringIndexType();
    const found: string[] = [];
    for (const [key, child] of Object.entries(value as Obj)) {
      const property = type.getProperty(key);
      if (property) found.push(...walk(child, checker.getTypeOfSymbol(property), `${at}.${key}`));
      else if (index) found.push(...walk(child, index, `${at}.${key}`));
      else found.push(`${at}.${key}`);
    }
    return found;
  }

  return (object) => {
    const type = types.get(`${object.apiVersion} ${object.kind}`);
    if (!type) throw new Error(`${object.apiVersion} ${object.kind} was not given to fieldChecker`);
    return walk(object, type, String(object.kind));
  };
}
