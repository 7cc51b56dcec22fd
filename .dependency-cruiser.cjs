/**
 * The layers, checked by `npm run lint` (dependency-cruiser):
 *   correlator/  the pure core: no I/O, imports nothing from platform/, connectors/ or services/
 *   platform/    helpers shared by receivers and services (HTTP, error messages, schedules): imports the core only
 *   connectors/  one folder per protocol, and the ingest kit they share (connectors/kit/): never services/
 *   services/    the wiring: may import both
 * and no import cycles anywhere in the product.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-stays-pure',
      comment: 'correlator/ is the pure core: it declares ports (correlator/ports.ts) and services/ implements them.',
      severity: 'error',
      from: { path: '^correlator/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(services|connectors|platform)/' },
    },
    {
      name: 'platform-below-connectors',
      comment: 'platform/ knows no source and no service: it is what receivers and the API both build on.',
      severity: 'error',
      from: { path: '^platform/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(services|connectors)/' },
    },
    {
      name: 'connectors-below-services',
      comment: 'connectors/ parse and receive; wiring them to buses, stores and config is the job of services/.',
      severity: 'error',
      from: { path: '^connectors/', pathNot: '\\.test\\.ts$' },
      to: { path: '^services/' },
    },
    {
      name: 'product-not-tests',
      comment: 'The product never imports test code or test helpers.',
      severity: 'error',
      from: { path: '^(correlator|platform|connectors|services)/', pathNot: '(\\.test|\\.contract)\\.ts$' },
      to: { path: '(^test/|\\.test\\.ts$|\\.contract\\.ts$)' },
    },
    {
      name: 'no-cycles',
      comment: 'A cycle means two modules are one: move the shared part down a layer. A cycle through type-only imports loads nothing and is allowed.',
      severity: 'error',
      from: { path: '^(correlator|platform|connectors|services)/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
