// The demo's Worker: the edgelog server, configured with the demo's projections and event
// registry, plus the built app as static assets and a development-only token endpoint.
import type { ServerEnv } from '@edgelog/server';
import { configureEdge, createApp, signToken } from '@edgelog/server';
import { z } from 'zod';
import { projections, registry } from './domain/index.ts';

configureEdge({ projections, registry });

export { ProjectionDO, SequencerDO, StreamDO } from '@edgelog/server';

interface DemoEnv extends ServerEnv {
  ASSETS: { fetch(request: Request): Promise<Response> };
  /** `1` enables POST /demo/token: `npm start` sets it; a deployment never should. */
  EDGELOG_DEMO?: string;
}

const DEMO_STORE = 'demo';
const TokenRequest = z.object({
  user: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'user names are 1-40 of A-Z, a-z, 0-9, _ and -'),
});

const api = createApp();

/**
 * Hands any visitor a writer token for the demo store, named after the user they give.
 * Development only: real apps mint tokens in their own auth service.
 */
async function demoToken(request: Request, env: DemoEnv): Promise<Response> {
  if (env.EDGELOG_DEMO !== '1' || !env.EDGELOG_JWT_SECRET) {
    return Response.json(
      { error: { code: 'NotFound', message: 'demo tokens are off on this server' } },
      { status: 404 },
    );
  }
  const parsed = TokenRequest.safeParse(await request.json().catch(() => undefined));
  if (!parsed.success) {
    return Response.json(
      {
        error: {
          code: 'Validation',
          message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
        },
      },
      { status: 400 },
    );
  }
  const token = await signToken(
    {
      store: DEMO_STORE,
      role: 'writer',
      sub: parsed.data.user,
      exp: Math.floor(Date.now() / 1000) + 12 * 3600,
    },
    env.EDGELOG_JWT_SECRET,
  );
  return Response.json({ token, store: DEMO_STORE });
}

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === '/demo/token' && request.method === 'POST') return demoToken(request, env);
    if (pathname.startsWith('/v1/') || pathname === '/health') return api.fetch(request, env, ctx);
    return env.ASSETS.fetch(request);
  },
} satisfies ExportedHandler<DemoEnv>;
