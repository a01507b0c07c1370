import {
  AppendRequest,
  AppendResponse,
  ClientMessage,
  ErrorResponse,
  type Limits,
  PushRequest,
  PushResponse,
  ReadAllQuery,
  ReadAllResponse,
  ReadStreamQuery,
  ReadStreamResponse,
  ServerMessage,
} from '@edgelog/core';
import { z } from 'zod';
import { ListQuery, ParkedQuery, WaitQuery } from './projection-routes.ts';

const schema = (s: z.ZodType, io: 'input' | 'output') =>
  z.toJSONSchema(s, { unrepresentable: 'any', io, target: 'openapi-3.0' });

/**
 * Query parameters of a query schema, one per object key; `maxLimit` bounds a `limit` parameter,
 * but never above the schema's own maximum, which refuses anything larger whatever the app says.
 */
function queryParameters(s: z.ZodObject, maxLimit?: number) {
  const json = schema(s, 'input') as { properties?: Record<string, { maximum?: number }> };
  return Object.entries(json.properties ?? {}).map(([name, p]) => ({
    name,
    in: 'query',
    required: false,
    schema:
      name === 'limit' && maxLimit !== undefined
        ? { ...p, maximum: Math.min(maxLimit, p.maximum ?? maxLimit) }
        : p,
  }));
}

const json = (s: z.ZodType, io: 'input' | 'output') => ({
  content: { 'application/json': { schema: schema(s, io) } },
});
const errorAnswer = (description: string) => ({ description, ...json(ErrorResponse, 'output') });
const storeParam = { name: 'store', in: 'path', required: true, schema: { type: 'string' } };
const streamParam = { name: 'stream', in: 'path', required: true, schema: { type: 'string' } };
const pathParam = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });
const anyJson = (description: string) => ({
  description,
  content: { 'application/json': { schema: { type: 'object' } } },
});
const common = {
  '400': errorAnswer('Validation: malformed JSON or a schema violation; `details.issues` names each field'),
  '401': errorAnswer('Unauthorized: missing, malformed, tampered or expired token'),
  '403': errorAnswer("Forbidden: the token's store, role or stream prefixes do not allow this"),
};

/** The OpenAPI 3.0 document of API v1, generated from core's zod schemas. */
export function openApiDocument(limits: Limits) {
  return {
    openapi: '3.0.3',
    info: {
      title: 'edgelog sync server',
      version: 'v1',
      description: `Limits: event ${limits.maxEventBytes} bytes (UTF-8 JSON as sent), ${limits.maxEventsPerAppend} events per append or commit, ${limits.maxRequestBytes} bytes per request, ${limits.maxCommitsPerPush} commits per push, pages default ${limits.defaultPageSize} and at most ${limits.maxPageSize}; a read of the global log examines at most ${limits.maxScanPerRead} positions (or its page limit, if more) and answers how far it got in \`scannedTo\`, so a sparse filter may answer a short or empty page before \`head\`: resume after \`scannedTo\`.`,
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: {
        ClientMessage: schema(ClientMessage, 'input'),
        ServerMessage: schema(ServerMessage, 'output'),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/health': { get: { security: [], responses: { '200': { description: 'alive' } } } },
      '/v1/stores/{store}/streams/{stream}/events': {
        post: {
          summary: 'Append to a stream',
          parameters: [storeParam, streamParam],
          requestBody: { required: true, ...json(AppendRequest, 'input') },
          responses: {
            '200': {
              description: 'appended (or a retry of an append already stored)',
              ...json(AppendResponse, 'output'),
            },
            ...common,
            '409': errorAnswer('WrongExpectedVersion (details: expected, actual) or IdempotencyConflict'),
            '413': errorAnswer('PayloadTooLarge'),
          },
        },
        get: {
          summary: 'Read a stream',
          parameters: [storeParam, streamParam, ...queryParameters(ReadStreamQuery, limits.maxPageSize)],
          responses: {
            '200': { description: 'a page of the stream', ...json(ReadStreamResponse, 'output') },
            ...common,
            '404': errorAnswer('StreamNotFound'),
          },
        },
      },
      '/v1/stores/{store}/events': {
        get: {
          summary: "Read the store's global log",
          parameters: [storeParam, ...queryParameters(ReadAllQuery, limits.maxPageSize)],
          responses: {
            '200': {
              description: 'a page in position order; the next one is after `scannedTo`',
              ...json(ReadAllResponse, 'output'),
            },
            ...common,
          },
        },
      },
      '/v1/stores/{store}/sync/pull': {
        get: {
          summary: 'Pull confirmed events (same page as /events)',
          parameters: [storeParam, ...queryParameters(ReadAllQuery, limits.maxPageSize)],
          responses: {
            '200': {
              description: 'a page in position order; the next one is after `scannedTo`',
              ...json(ReadAllResponse, 'output'),
            },
            ...common,
          },
        },
      },
      '/v1/stores/{store}/sync/push': {
        post: {
          summary: 'Push commits, answered commit by commit',
          parameters: [storeParam],
          requestBody: { required: true, ...json(PushRequest, 'input') },
          responses: {
            '200': { description: 'one result per commit, in order', ...json(PushResponse, 'output') },
            ...common,
            '413': errorAnswer('PayloadTooLarge (whole request)'),
          },
        },
      },
      '/v1/stores/{store}/ws': {
        get: {
          summary: 'WebSocket: ClientMessage in, ServerMessage out (see components)',
          parameters: [storeParam],
          responses: { '101': { description: 'switching protocols' }, ...common },
        },
      },
      '/v1/stores/{store}/streams/{stream}/ws': {
        get: {
          summary: "WebSocket of one stream's events: ClientMessage in, ServerMessage out",
          parameters: [storeParam, streamParam],
          responses: { '101': { description: 'switching protocols' }, ...common },
        },
      },
      '/v1/stores/{store}/streams/{stream}/aggregates/{decider}': {
        get: {
          summary: 'The stream folded at the edge by a configured decider, from its snapshot',
          parameters: [storeParam, streamParam, pathParam('decider')],
          responses: {
            '200': anyJson('{ stream, decider, version, state, snapshotVersion, replayed }'),
            ...common,
            '404': errorAnswer('NotFound: no such decider configured; StreamNotFound'),
          },
        },
      },
      '/v1/stores/{store}/projections/{name}': {
        get: {
          summary: 'List an edge projection by key prefix (unrestricted tokens)',
          parameters: [storeParam, pathParam('name'), ...queryParameters(ListQuery)],
          responses: {
            '200': anyJson('{ version, checkpoint, rows: [{ key, state }] } (or one row with ?key=)'),
            ...common,
            '404': errorAnswer('NotFound: no such projection'),
            '504': errorAnswer('Timeout: the projection did not reach minPosition in time'),
          },
        },
      },
      '/v1/stores/{store}/projections/{name}/{key}': {
        get: {
          summary: 'One row of an edge projection; minPosition waits for read-your-writes',
          parameters: [storeParam, pathParam('name'), pathParam('key'), ...queryParameters(WaitQuery)],
          responses: {
            '200': anyJson('{ key, version, state, checkpoint }'),
            ...common,
            '404': errorAnswer('NotFound: no such projection or row'),
            '504': errorAnswer('Timeout: the projection did not reach minPosition in time'),
          },
        },
      },
      '/v1/stores/{store}/projections/{name}/status': {
        get: {
          summary: 'Checkpoint, head, lag and state of each version; which one answers',
          parameters: [storeParam, pathParam('name')],
          responses: { '200': anyJson('status of the active version and every version'), ...common },
        },
      },
      '/v1/stores/{store}/projections/{name}/parked': {
        get: {
          summary: 'Events the projection parked, with why (admin tokens only)',
          parameters: [storeParam, pathParam('name'), ...queryParameters(ParkedQuery)],
          responses: { '200': anyJson('{ version, events }'), ...common },
        },
      },
    },
  };
}
