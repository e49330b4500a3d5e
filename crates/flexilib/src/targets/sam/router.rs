//! API Gateway's route selection for a SAM application: a request's path
//! (below the rule's prefix) and method against every function's routes.
//! The most specific path wins: segment by segment, a literal before
//! `{param}` before `{greedy+}`; then a route for the method before `ANY`;
//! an HTTP API's `$default` route last.

use crate::config::sam::{ApiKind, ApiRoute, Payload};

/// One route, compiled.
#[derive(Debug, Clone)]
pub struct Route {
    /// Index of the function (in the application's function list).
    pub function: usize,
    /// The API kind and payload format.
    pub api: ApiKind,
    /// `None`: any method.
    method: Option<String>,
    /// `None`: an HTTP API's `$default` route.
    segments: Option<Vec<Segment>>,
    /// `resource` / `resourcePath` (`/items/{id}`), or `$default`.
    pub resource: String,
    /// `routeKey`: `GET /items/{id}`, `ANY /x`, `$default`.
    pub route_key: String,
    /// `requestContext.stage`.
    pub stage: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

impl Segment {
    /// Lower is more specific.
    fn rank(&self) -> u8 {
        match self {
            Self::Literal(_) => 0,
            Self::Param(_) => 1,
            Self::Greedy(_) => 2,
        }
    }
}

/// A route that took a request, with its path parameters.
#[derive(Debug)]
pub struct Matched<'a> {
    /// The route.
    pub route: &'a Route,
    /// `pathParameters`, in path order.
    pub params: Vec<(String, String)>,
}

/// What the router decided.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A route takes the request.
    Found(Matched<'a>),
    /// No route: an HTTP API answers 404 `{"message":"Not Found"}`.
    NotFound,
    /// No route: a REST API answers 403 `{"message":"Missing Authentication Token"}`.
    MissingAuthenticationToken,
}

/// Every route of an application.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
    has_http_api: bool,
}

impl Router {
    /// Compiles `(function index, route)` pairs.
    pub fn new<'a>(routes: impl IntoIterator<Item = (usize, &'a ApiRoute)>) -> Self {
        let routes: Vec<Route> = routes
            .into_iter()
            .map(|(function, route)| {
                let segments = route.path.as_deref().map(|path| {
                    path.split('/')
                        .filter(|s| !s.is_empty())
                        .map(|segment| {
                            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                                Some(name) => match name.strip_suffix('+') {
                                    Some(name) => Segment::Greedy(name.to_string()),
                                    None => Segment::Param(name.to_string()),
                                },
                                None => Segment::Literal(segment.to_string()),
                            }
                        })
                        .collect()
                });
                let resource = route.path.clone().unwrap_or_else(|| "$default".into());
                let route_key = match &route.path {
                    Some(path) => format!("{} {path}", route.method.as_deref().unwrap_or("ANY")),
                    None => "$default".into(),
                };
                Route {
                    function,
                    api: route.api,
                    method: route.method.clone(),
                    segments,
                    resource,
                    route_key,
                    stage: route.stage.clone(),
                }
            })
            .collect();
        let has_http_api = routes.iter().any(|r| matches!(r.api, ApiKind::Http(_)));
        Self {
            routes,
            has_http_api,
        }
    }

    /// The route for `method` and `path` (decoded, below the prefix,
    /// starting with `/`).
    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut best: Option<(Vec<u8>, Matched<'_>)> = None;
        let mut path_matched: Option<ApiKind> = None;
        for route in &self.routes {
            let Some(segments) = &route.segments else {
                continue;
            };
            let Some((mut key, params)) = match_path(segments, &parts) else {
                continue;
            };
            if route.method.as_deref().is_some_and(|m| m != method) {
                path_matched.get_or_insert(route.api);
                continue;
            }
            key.push(u8::from(route.method.is_none()));
            if best.as_ref().is_none_or(|(best_key, _)| key < *best_key) {
                best = Some((key, Matched { route, params }));
            }
        }
        if let Some((_, matched)) = best {
            return Lookup::Found(matched);
        }
        if let Some(route) = self.routes.iter().find(|r| r.segments.is_none()) {
            return Lookup::Found(Matched {
                route,
                params: Vec::new(),
            });
        }
        match path_matched {
            Some(ApiKind::Rest) => Lookup::MissingAuthenticationToken,
            Some(ApiKind::Http(_)) => Lookup::NotFound,
            None if self.has_http_api => Lookup::NotFound,
            None => Lookup::MissingAuthenticationToken,
        }
    }
}

impl Route {
    /// The payload format of the route's events.
    pub fn payload(&self) -> Payload {
        match self.api {
            ApiKind::Http(payload) => payload,
            ApiKind::Rest => Payload::V1,
        }
    }
}

/// Path parameters, in path order.
type Params = Vec<(String, String)>;

/// The specificity key (lower is more specific) and parameters if
/// `segments` match `parts`.
fn match_path(segments: &[Segment], parts: &[&str]) -> Option<(Vec<u8>, Params)> {
    let mut key = Vec::with_capacity(segments.len() + 1);
    let mut params = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        key.push(segment.rank());
        match segment {
            Segment::Greedy(name) => {
                // A greedy parameter takes one segment or more.
                let rest = parts.get(i..).filter(|rest| !rest.is_empty())?;
                params.push((name.clone(), rest.join("/")));
                return Some((key, params));
            }
            Segment::Literal(literal) => {
                if parts.get(i) != Some(&literal.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => params.push((name.clone(), (*parts.get(i)?).to_string())),
        }
    }
    (parts.len() == segments.len()).then_some((key, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(api: ApiKind, method: Option<&str>, path: Option<&str>) -> ApiRoute {
        ApiRoute {
            api,
            method: method.map(String::from),
            path: path.map(String::from),
            stage: "$default".into(),
            line: 1,
        }
    }

    const HTTP: ApiKind = ApiKind::Http(Payload::V2);

    #[test]
    fn most_specific_wins() {
        let routes = [
            route(HTTP, None, Some("/{proxy+}")),
            route(HTTP, Some("GET"), Some("/items/{id}")),
            route(HTTP, Some("GET"), Some("/items/special")),
            route(HTTP, None, Some("/items/{id}")),
            route(HTTP, Some("POST"), Some("/")),
        ];
        let router = Router::new(routes.iter().enumerate());
        let found = |method: &str, path: &str| match router.lookup(method, path) {
            Lookup::Found(m) => Some((m.route.function, m.params)),
            _ => None,
        };
        assert_eq!(found("GET", "/items/special").map(|f| f.0), Some(2));
        assert_eq!(
            found("GET", "/items/42"),
            Some((1, vec![("id".into(), "42".into())]))
        );
        assert_eq!(found("PUT", "/items/42").map(|f| f.0), Some(3));
        assert_eq!(
            found("GET", "/a/b/c"),
            Some((0, vec![("proxy".into(), "a/b/c".into())]))
        );
        assert_eq!(found("POST", "/").map(|f| f.0), Some(4));
        // A greedy parameter needs a segment: GET / has no route.
        assert!(matches!(router.lookup("GET", "/"), Lookup::NotFound));
    }

    #[test]
    fn misses_answer_as_their_api() {
        let rest = [route(ApiKind::Rest, Some("GET"), Some("/hello"))];
        let router = Router::new(rest.iter().enumerate());
        assert!(matches!(
            router.lookup("POST", "/hello"),
            Lookup::MissingAuthenticationToken
        ));
        assert!(matches!(
            router.lookup("GET", "/other"),
            Lookup::MissingAuthenticationToken
        ));
        let http = [
            route(HTTP, Some("GET"), Some("/hello")),
            route(HTTP, None, None),
        ];
        let router = Router::new(http.iter().enumerate());
        assert!(matches!(
            router.lookup("POST", "/hello"),
            Lookup::Found(Matched {
                route: Route { function: 1, .. },
                ..
            })
        ));
        let router = Router::new(http[..1].iter().enumerate());
        assert!(matches!(router.lookup("POST", "/hello"), Lookup::NotFound));
    }
}
