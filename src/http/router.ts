/** A small HTTP router: method + path patterns with parameters, JSON replies and errors. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Caller } from './api-auth.js';

/** HTTP methods the API uses. */
export type Method = 'GET' | 'POST' | 'DELETE' | 'PUT';

/** What a route handler gets: the request, path parameters and the query string. */
export interface RouteContext {
  request: IncomingMessage;
  response: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Who asked (undefined on the routes answered without credentials). */
  caller: Caller | undefined;
}

/** A handler's answer: a status and a JSON body (the router writes it). */
export interface JsonReply {
  status: number;
  body: unknown;
}

/** Handles one matched route. */
export type RouteHandler = (context: RouteContext) => JsonReply | Promise<JsonReply>;

interface Route {
  method: Method;
  /** Literal segments, ":name" parameters, or a final "*name" taking the rest of the path. */
  segments: string[];
  handler: RouteHandler;
}

/** The outcome of looking a request up. */
export type RouteMatch = { handler: RouteHandler; params: Record<string, string> } | { allowed: Method[] } | undefined;

/**
 * A small path router: `/api/clients/:clientId`, `/api/retained/*topic`. Literal segments win over
 * parameters by registration order; parameters are percent-decoded.
 */
export class Router {
  private readonly routes: Route[] = [];

  /** Registers a route. */
  on(method: Method, pattern: string, handler: RouteHandler): this {
    this.routes.push({ method, segments: pattern.split('/').filter((s) => s !== ''), handler });
    return this;
  }

  /** The handler for `method` on `path`, the methods the path allows (405), or undefined (404). */
  match(method: string, path: string): RouteMatch {
    const parts = path.split('/').filter((s) => s !== '');
    const allowed: Method[] = [];
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (params === undefined) continue;
      if (route.method === method) return { handler: route.handler, params };
      allowed.push(route.method);
    }
    return allowed.length > 0 ? { allowed } : undefined;
  }
}

function matchSegments(segments: string[], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.startsWith('*')) {
      if (i >= parts.length) return undefined;
      const rest = decode(parts.slice(i).join('/'));
      if (rest === undefined) return undefined;
      params[segment.slice(1)] = rest;
      return params;
    }
    const part = parts[i];
    if (part === undefined) return undefined;
    if (segment.startsWith(':')) {
      const value = decode(part);
      if (value === undefined) return undefined;
      params[segment.slice(1)] = value;
    } else if (segment !== part) {
      return undefined;
    }
  }
  return parts.length === segments.length ? params : undefined;
}

function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
