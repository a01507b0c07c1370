export { FakeServer, type Faults, faulty, seeded } from './fake-server.ts';
export { wireEvent } from './wire-event.ts';
