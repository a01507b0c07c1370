// A WebSocket client for the tests: open a socket on the test Worker and wait for messages.
import { exports } from 'cloudflare:workers';
import type { ServerMessage } from '@edgelog/core';
import { BASE } from './helpers.ts';

export interface Socket {
  ws: WebSocket;
  messages: ServerMessage[];
  send: (message: unknown) => void;
  until: (check: (messages: ServerMessage[]) => boolean, what: string) => Promise<void>;
}

export async function open(store: string, bearer?: string, stream?: string): Promise<Socket> {
  const headers: Record<string, string> = { Upgrade: 'websocket' };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  const path = stream ? `/v1/stores/${store}/streams/${stream}/ws` : `/v1/stores/${store}/ws`;
  const res = await exports.default.fetch(new Request(`${BASE}${path}`, { headers }));
  const ws = res.webSocket;
  if (!ws) throw new Error(`upgrade refused: ${res.status}`);
  ws.accept();
  const messages: ServerMessage[] = [];
  ws.addEventListener('message', (e) => messages.push(JSON.parse(String(e.data)) as ServerMessage));
  return {
    ws,
    messages,
    send: (m) => ws.send(JSON.stringify(m)),
    until: async (check, what) => {
      const start = Date.now();
      while (!check(messages)) {
        if (Date.now() - start > 10_000) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}

/** The events of subscription `sub` in `messages`, in the order they came. */
export const eventsOf = (messages: ServerMessage[], sub = 's') =>
  messages.flatMap((m) => (m.type === 'events' && m.subscription === sub ? m.events : []));
