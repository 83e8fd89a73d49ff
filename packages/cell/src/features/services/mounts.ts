import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import type { ServiceManifest } from '@pic/manifest';

/** Builds the router of one installed service: its manifest's routes under /api/<id>. */
export type ServiceRouterBuilder = (id: string, manifest: ServiceManifest) => Router;
/** Answers GET /api/<id>/status; returns false when `id` names no service the cell knows (then: 404). */
export type StatusResponder = (ctx: Context, id: string) => Promise<boolean>;

/** The first path segment after /api/, lowercased like every other path decision (see http/guard.ts). */
const SERVICE_PATH = /^\/api\/([^/]+)(\/.*)?$/i;

/**
 * The API routes of installed services (ADR 003), mounted and unmounted on the live server.
 *
 * One stable router sits in the app's router list, last. It matches any /api/<id>/… path that no
 * feature router took, and dispatches to the per-service Router held in a map: installing puts a
 * router in the map, removing takes it out, and nothing else about the app changes. A path under a
 * service that is not installed falls through to the 404 every unknown path gets — except
 * GET /api/<id>/status, which answers for every service the cell knows, installed or not.
 */
export class ServiceMounts {
  private readonly manifests = new Map<string, ServiceManifest>();
  private readonly routers = new Map<string, Middleware>();
  private builder: ServiceRouterBuilder | undefined;
  private status: StatusResponder | undefined;

  /** Set by the services feature when the app is built; routers are made lazily from then on. */
  setHandlers(builder: ServiceRouterBuilder, status: StatusResponder): void {
    this.builder = builder;
    this.status = status;
    this.routers.clear();
  }

  mount(id: string, manifest: ServiceManifest): void {
    this.manifests.set(id, manifest);
    this.routers.delete(id);
  }

  unmount(id: string): void {
    this.manifests.delete(id);
    this.routers.delete(id);
  }

  manifest(id: string): ServiceManifest | undefined {
    return this.manifests.get(id);
  }

  isMounted(id: string): boolean {
    return this.manifests.has(id);
  }

  mounted(): string[] {
    return [...this.manifests.keys()].sort();
  }

  private dispatcherFor(id: string): Middleware | undefined {
    const manifest = this.manifests.get(id);
    if (!manifest || !this.builder) return undefined;
    let mw = this.routers.get(id);
    if (!mw) {
      const router = this.builder(id, manifest);
      const routes = router.routes() as unknown as Middleware;
      const allowed = router.allowedMethods({ throw: false }) as unknown as Middleware;
      // As the app does for every router: its routes, then 405/501 for a known path with another method.
      mw = (ctx, next) => routes(ctx, () => allowed(ctx, next));
      this.routers.set(id, mw);
    }
    return mw;
  }

  /** Layers of the stable router: they match every path and method, so they must not count as "matched". */
  private readonly ownLayers = new Set<unknown>();

  /** Dispatches one request; calls `next` (→ 404) when no installed service owns the path. */
  async dispatch(ctx: Context, next: Next): Promise<void> {
    // koa-router collects every router's matched layers in ctx.matched for allowedMethods (405).
    // The catch-all would claim every method for every path; only the real routes may speak.
    const routed = ctx as { matched?: unknown[] };
    if (routed.matched) routed.matched = routed.matched.filter((layer) => !this.ownLayers.has(layer));
    const m = SERVICE_PATH.exec(ctx.path);
    if (!m) return next();
    const id = m[1]!.toLowerCase();
    const rest = (m[2] ?? '').toLowerCase();
    if ((rest === '/status' || rest === '/status/') && ctx.method === 'GET' && this.status) {
      if (await this.status(ctx, id)) return;
      return next();
    }
    const mw = this.dispatcherFor(id);
    if (!mw) return next();
    await mw(ctx, next);
  }

  /** The stable router for the app's router list. */
  router(): Router {
    const router = new Router();
    // Unnamed on purpose: the mounted routes name themselves (their names are audit actions).
    router.all(SERVICE_PATH, (ctx, next) => this.dispatch(ctx, next));
    for (const layer of router.stack) this.ownLayers.add(layer);
    return router;
  }
}
