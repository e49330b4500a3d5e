//! Payload format 1.0, as API Gateway's REST proxy integration (and an
//! HTTP API route with `PayloadFormatVersion: "1.0"`) writes it: `resource`,
//! `path`, `httpMethod`, `headers` (the last value of a repeated header) and
//! `multiValueHeaders`, `queryStringParameters` (the last value) and
//! `multiValueQueryStringParameters`, `pathParameters`, `stageVariables`,
//! `requestContext`, `body`, `isBase64Encoded`; absent maps are `null`. The
//! result: `statusCode`, `headers`, `multiValueHeaders`, `body`,
//! `isBase64Encoded`.

use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Response};
use serde_json::{json, Map, Value};

use crate::respond::ReplyBody;
use crate::targets::lambda::event::{self as v2, MalformedResult, ACCOUNT_ID};
use crate::targets::lambda::ids;

/// What the route adds to the event.
#[derive(Debug, Clone, Copy)]
pub struct RouteContext<'a> {
    /// `resource` and `requestContext.resourcePath` (`/items/{id}`).
    pub resource: &'a str,
    /// `path`: the request's path within the API.
    pub path: &'a str,
    /// `requestContext.stage`.
    pub stage: &'a str,
    /// `pathParameters`.
    pub path_parameters: &'a [(String, String)],
    /// An HTTP API's 1.0 event says `"version": "1.0"` and its `routeKey`;
    /// a REST API's says neither.
    pub http_api_route_key: Option<&'a str>,
    /// The client came over TLS: `x-forwarded-proto: https`.
    pub secure: bool,
}

/// The payload 1.0 event for a request.
pub fn request_event(
    parts: &Parts,
    body: &[u8],
    peer_ip: &str,
    now: SystemTime,
    route: &RouteContext<'_>,
) -> Vec<u8> {
    let headers = &parts.headers;
    let mut single = Map::new();
    let mut multi = Map::new();
    for name in headers.keys() {
        let values: Vec<Value> = headers
            .get_all(name)
            .iter()
            .map(|value| Value::String(v2::header_text(value)))
            .collect();
        if let Some(last) = values.last() {
            single.insert(name.as_str().to_string(), last.clone());
        }
        multi.insert(name.as_str().to_string(), Value::Array(values));
    }
    let forwarded = match headers.get("x-forwarded-for") {
        Some(earlier) => format!("{}, {peer_ip}", v2::header_text(earlier)),
        None => peer_ip.to_string(),
    };
    for (name, value) in [
        ("x-forwarded-for", forwarded),
        (
            "x-forwarded-proto",
            if route.secure { "https" } else { "http" }.into(),
        ),
    ] {
        single.insert(name.into(), Value::String(value.clone()));
        multi.insert(name.into(), json!([value]));
    }
    if !headers.contains_key("x-amzn-trace-id") {
        let trace = ids::trace_id(now);
        single.insert("x-amzn-trace-id".into(), Value::String(trace.clone()));
        multi.insert("x-amzn-trace-id".into(), json!([trace]));
    }

    let mut query_single = Map::new();
    let mut query_multi: Map<String, Value> = Map::new();
    let raw_query = parts.uri.query().unwrap_or_default();
    for pair in raw_query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (v2::percent_decode(key), v2::percent_decode(value));
        query_single.insert(key.clone(), Value::String(value.clone()));
        match query_multi.get_mut(&key) {
            Some(Value::Array(values)) => values.push(Value::String(value)),
            _ => {
                query_multi.insert(key, json!([value]));
            }
        }
    }
    let or_null = |map: Map<String, Value>| {
        if map.is_empty() {
            Value::Null
        } else {
            Value::Object(map)
        }
    };
    let path_parameters: Map<String, Value> = route
        .path_parameters
        .iter()
        .map(|(key, value)| (key.clone(), Value::String(value.clone())))
        .collect();

    let domain = headers
        .get(HOST)
        .map(v2::header_text)
        .unwrap_or_else(|| "localhost".into());
    let domain_prefix = domain.split('.').next().unwrap_or_default().to_string();
    let user_agent = headers.get(USER_AGENT).map(v2::header_text);
    let request_id = ids::request_id();
    let context_path = match route.http_api_route_key {
        Some(_) => route.path.to_string(),
        None => format!("/{}{}", route.stage, route.path),
    };
    let mut context = json!({
        "accountId": ACCOUNT_ID,
        "apiId": "flexilib",
        "domainName": domain,
        "domainPrefix": domain_prefix,
        "extendedRequestId": request_id,
        "httpMethod": parts.method.as_str(),
        "identity": {
            "accessKey": null,
            "accountId": null,
            "apiKey": null,
            "apiKeyId": null,
            "caller": null,
            "cognitoAuthenticationProvider": null,
            "cognitoAuthenticationType": null,
            "cognitoIdentityId": null,
            "cognitoIdentityPoolId": null,
            "principalOrgId": null,
            "sourceIp": peer_ip,
            "user": null,
            "userAgent": user_agent,
            "userArn": null,
        },
        "path": context_path,
        "protocol": v2::protocol(parts.version),
        "requestId": request_id,
        "requestTime": ids::request_time(now),
        "requestTimeEpoch": ids::epoch_millis(now),
        "resourceId": "flexilib",
        "resourcePath": route.resource,
        "stage": route.stage,
    });
    let text = (!body.is_empty() && v2::is_text(headers.get(CONTENT_TYPE)))
        .then(|| std::str::from_utf8(body).ok())
        .flatten();
    let (body, encoded) = match text {
        Some(text) => (Value::String(text.to_string()), false),
        None if body.is_empty() => (Value::Null, false),
        None => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let mut event = json!({
        "resource": route.resource,
        "path": route.path,
        "httpMethod": parts.method.as_str(),
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": or_null(query_single),
        "multiValueQueryStringParameters": or_null(query_multi),
        "pathParameters": or_null(path_parameters),
        "stageVariables": null,
        "body": body,
        "isBase64Encoded": encoded,
    });
    if let (Some(route_key), Value::Object(event), Value::Object(context)) =
        (route.http_api_route_key, &mut event, &mut context)
    {
        event.insert("version".into(), json!("1.0"));
        context.insert("routeKey".into(), json!(route_key));
    }
    if let Value::Object(event) = &mut event {
        event.insert("requestContext".into(), context);
    }
    event.to_string().into_bytes()
}

/// The HTTP response for a payload 1.0 result: an object with
/// `statusCode`; `headers` and `multiValueHeaders` merged (a name in both
/// takes `multiValueHeaders`' values); `application/json` when the result
/// sets no content type.
pub fn result_response(payload: &[u8]) -> Result<Response<ReplyBody>, MalformedResult> {
    let value: Value = serde_json::from_slice(payload).map_err(MalformedResult::NotJson)?;
    let Value::Object(object) = value else {
        return Err(MalformedResult::Status("(no statusCode)".into()));
    };
    let status = v2::status_of(object.get("statusCode"))?;
    let mut headers = HeaderMap::new();
    let multi = match object.get("multiValueHeaders") {
        Some(Value::Object(multi)) => Some(multi),
        _ => None,
    };
    if let Some(Value::Object(single)) = object.get("headers") {
        for (name, value) in single {
            if multi.is_some_and(|multi| multi.contains_key(name)) {
                continue;
            }
            let name = v2::header_name(name)?;
            if v2::is_framing(&name) {
                continue;
            }
            let value = v2::header_value(&name, value)?;
            v2::append(&mut headers, name, value)?;
        }
    }
    for (name, values) in multi.into_iter().flatten() {
        let Value::Array(values) = values else {
            return Err(MalformedResult::Header(name.clone()));
        };
        let name = v2::header_name(name)?;
        if v2::is_framing(&name) {
            continue;
        }
        for value in values {
            let value = v2::header_value(&name, value)?;
            v2::append(&mut headers, name.clone(), value)?;
        }
    }
    let body = match object.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) => Bytes::from(text.clone()),
        Some(other) => Bytes::from(other.to_string()),
    };
    let body = if object.get("isBase64Encoded") == Some(&Value::Bool(true)) {
        base64::engine::general_purpose::STANDARD
            .decode(&body)
            .map(Bytes::from)
            .map_err(|_| MalformedResult::Base64)?
    } else {
        body
    };
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let mut response = Response::new(ReplyBody::Full(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Request;

    #[test]
    fn last_values_and_all_values() {
        let request = Request::builder()
            .method("GET")
            .uri("/api/items/7?a=1&a=2&b=%2F")
            .header("Host", "x.example.com")
            .header("X-Multi", "one")
            .header("X-Multi", "two")
            .body(())
            .unwrap_or_default();
        let (parts, ()) = request.into_parts();
        let params = [("id".to_string(), "7".to_string())];
        let route = RouteContext {
            resource: "/items/{id}",
            path: "/items/7",
            stage: "Prod",
            path_parameters: &params,
            http_api_route_key: None,
            secure: false,
        };
        let event = request_event(&parts, b"", "10.0.0.1", SystemTime::UNIX_EPOCH, &route);
        let event: Value = serde_json::from_slice(&event).unwrap_or_default();
        assert_eq!(event["headers"]["x-multi"], "two");
        assert_eq!(event["multiValueHeaders"]["x-multi"], json!(["one", "two"]));
        assert_eq!(event["queryStringParameters"], json!({"a": "2", "b": "/"}));
        assert_eq!(
            event["multiValueQueryStringParameters"],
            json!({"a": ["1", "2"], "b": ["/"]})
        );
        assert_eq!(event["pathParameters"], json!({"id": "7"}));
        assert_eq!(event["body"], Value::Null);
        assert_eq!(event["requestContext"]["path"], "/Prod/items/7");
        assert_eq!(event["requestContext"]["requestTimeEpoch"], 0);
        assert!(event.get("version").is_none());
    }

    #[test]
    fn results_merge_multi_value_headers() {
        let response = result_response(
            br#"{"statusCode":200,"headers":{"x-a":"1","x-b":"single"},"multiValueHeaders":{"x-b":["m1","m2"]},"body":"ok"}"#,
        );
        let Ok(response) = response else {
            panic!("{:?}", response.err())
        };
        let b: Vec<_> = response.headers().get_all("x-b").iter().collect();
        assert_eq!(b, ["m1", "m2"]);
        assert_eq!(response.headers()["x-a"], "1");
        assert!(result_response(br#"{"body":"no status"}"#).is_err());
        assert!(result_response(br#""text""#).is_err());
    }
}
