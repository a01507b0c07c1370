import type { Client, LocalEnvelope } from '@edgelog/client';
import { byId, h } from './dom.ts';

export type InspectorTab = 'global' | 'stream' | 'projections';

export interface InspectorDeps {
  // biome-ignore lint/suspicious/noExplicitAny: the inspector reads the log, whatever the app's events
  client: Client<any, any>;
  /** The streams the stream tab offers. */
  streams: () => string[];
  /** How far this browser has confirmed the server's log, in words. */
  serverPosition: () => string;
  errorText: (e: unknown) => string;
}

/** The demo's log inspector: this browser's global log, one stream, or its projections' progress. */
export function createInspector(deps: InspectorDeps) {
  const { client } = deps;
  const state: { tab: InspectorTab; stream: string } = { tab: 'global', stream: '' };

  const logTable = (events: LocalEnvelope[]) =>
    events.length === 0
      ? h('p', { className: 'empty' }, 'nothing yet')
      : h(
          'table',
          { className: 'log' },
          h(
            'tr',
            null,
            h('th', { className: 'num' }, 'local'),
            h('th', { className: 'num' }, 'position'),
            h('th', null, 'stream'),
            h('th', { className: 'num' }, 'v'),
            h('th', null, 'type'),
            h('th', null, 'data'),
          ),
          ...events.map((e) =>
            h(
              'tr',
              null,
              h('td', { className: 'num' }, e.position),
              h(
                'td',
                { className: 'num' },
                e.pending ? h('span', { className: 'tag pending' }, 'pending') : (e.serverPosition ?? ''),
              ),
              h(
                'td',
                null,
                h(
                  'a',
                  {
                    href: '#',
                    onclick: (ev: Event) => {
                      ev.preventDefault();
                      state.stream = e.stream;
                      state.tab = 'stream';
                      void render();
                    },
                  },
                  e.stream,
                ),
              ),
              h('td', { className: 'num' }, e.version),
              h('td', null, e.type),
              h('td', { className: 'muted' }, JSON.stringify(e.data)),
            ),
          ),
        );

  async function render(): Promise<void> {
    for (const b of byId('inspector-tabs').querySelectorAll('button'))
      b.classList.toggle('active', b.dataset.tab === state.tab);
    const body = byId('inspector-body');
    try {
      if (state.tab === 'global') {
        const head = (await client.readAll({ after: 0, limit: 1 })).head;
        const page = await client.readAll({ after: Math.max(0, head - 50), limit: 50 });
        body.replaceChildren(
          h(
            'p',
            { className: 'muted' },
            `The last ${page.events.length} of ${head} events in this browser's log, with their server positions.`,
          ),
          logTable([...page.events].reverse()),
        );
      } else if (state.tab === 'stream') {
        const streams = deps.streams();
        if (!state.stream) state.stream = streams[0] ?? '';
        const pick = h(
          'select',
          {
            onchange: (ev: Event) => {
              state.stream = (ev.target as HTMLSelectElement).value;
              void render();
            },
          },
          ...streams.map((s) => h('option', { value: s, selected: s === state.stream }, s)),
        );
        const events = state.stream
          ? await client.readStream(state.stream).then(
              (r) => r.events,
              () => [],
            )
          : [];
        body.replaceChildren(pick, logTable(events));
      } else {
        const rows = await client.projectionStatus();
        body.replaceChildren(
          h(
            'table',
            null,
            h(
              'tr',
              null,
              h('th', null, 'projection'),
              h('th', { className: 'num' }, 'checkpoint'),
              h('th', { className: 'num' }, 'log head'),
              h('th', { className: 'num' }, 'lag'),
              h('th', { className: 'num' }, 'parked'),
            ),
            ...rows.map((p) =>
              h(
                'tr',
                null,
                h('td', null, `${p.name} v${p.version}`),
                h('td', { className: 'num' }, p.checkpoint),
                h('td', { className: 'num' }, p.head),
                h('td', { className: 'num' }, p.head - p.checkpoint),
                h('td', { className: 'num' }, p.parked),
              ),
            ),
          ),
          h(
            'p',
            { className: 'muted' },
            `This browser's projections run in the worker, in the same IndexedDB transaction as the events they fold. Server: ${deps.serverPosition()}.`,
          ),
        );
      }
    } catch (e) {
      body.replaceChildren(h('p', { className: 'empty' }, deps.errorText(e)));
    }
  }

  return {
    render,
    show(tab: InspectorTab): Promise<void> {
      state.tab = tab;
      return render();
    },
  };
}
