// A tiny router: routes are [method, pattern, handler]; `:name` segments
// become params.
export class Router {
  constructor(base = '') {
    this.base = base;
    this.routes = [];
  }

  on(method, pattern, handler) {
    const names = [];
    const source = pattern.replace(/:(\w+)/g, (_, name) => {
      names.push(name);
      return '([^/]+)';
    });
    this.routes.push({ method, regex: new RegExp(`^${source}$`), names, handler });
    return this;
  }

  async handle(request, env, ctx) {
    const url = new URL(request.url);
    let path = url.pathname;
    if (this.base && path.startsWith(this.base)) path = path.slice(this.base.length) || '/';
    for (const route of this.routes) {
      if (route.method !== request.method && route.method !== '*') continue;
      const match = route.regex.exec(path);
      if (!match) continue;
      const params = Object.fromEntries(route.names.map((name, i) => [name, decodeURIComponent(match[i + 1])]));
      return route.handler({ request, env, ctx, url, params });
    }
    return Response.json({ error: `no route for ${request.method} ${path}` }, { status: 404 });
  }
}
