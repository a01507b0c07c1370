export { FakeServer, type Faults, faulty, seeded } from './fake-server.ts';
