import type { Decider, DomainEvent } from '../decider.ts';

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const show = (v: unknown) => JSON.stringify(v, null, 2);

export interface ThenSpec<Event> {
  /** Asserts the command causes exactly these events. */
  then(expected: Event | readonly Event[]): void;
  /** Asserts the command is refused; optionally with this error `code` or matching a predicate. */
  thenThrows(check?: string | ((error: unknown) => boolean)): void;
}

/**
 * Given/when/then for deciders, without a store:
 * `DeciderSpecification.for(decider)(givenEvents).when(command).then(expectedEvents)`.
 */
export const DeciderSpecification = {
  for<Command, Event extends DomainEvent, State>(decider: Decider<Command, Event, State>) {
    return (given: readonly Event[] = []) => ({
      when(command: Command): ThenSpec<Event> {
        const run = () => {
          const state = given.reduce(decider.evolve, decider.initialState());
          const decided = decider.decide(command, state);
          return Array.isArray(decided) ? [...decided] : [decided as Event];
        };
        return {
          // biome-ignore lint/suspicious/noThenProperty: given/when/then is the vocabulary; do not await this object
          then(expected) {
            const want = Array.isArray(expected) ? expected : [expected as Event];
            const got = run();
            if (!deepEqual(got, want)) {
              throw new Error(`decider produced\n${show(got)}\nbut the specification expects\n${show(want)}`);
            }
          },
          thenThrows(check) {
            let got: Event[];
            try {
              got = run();
            } catch (e) {
              if (check === undefined) return;
              const ok = typeof check === 'string' ? (e as { code?: unknown }).code === check : check(e);
              if (!ok) throw new Error(`decider threw ${String(e)}, which does not match the specification`);
              return;
            }
            throw new Error(`decider was expected to refuse the command but produced\n${show(got)}`);
          },
        };
      },
    });
  },
};
