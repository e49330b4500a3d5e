//! HTTP ↔ Lambda, as a Function URL (API Gateway HTTP API, payload format
//! 2.0) does it: the request becomes an event, the function's result
//! becomes the response.

use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use hyper::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE,
    TRANSFER_ENCODING, USER_AGENT,
};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Response, StatusCode, Version};
use serde_json::{json, Map, Value};

use super::ids;
use crate::respond::ReplyBody;

/// The account id events carry (AWS's documentation example).
pub const ACCOUNT_ID: &str = "123456789012";

/// Why a function's result cannot be an HTTP response (a Function URL
/// answers 502).
#[derive(Debug, thiserror::Error)]
pub enum MalformedResult {
    /// Not JSON at all.
    #[error("the result is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// `statusCode` is not a valid status.
    #[error("invalid statusCode {0}")]
    Status(String),
    /// A header name or value HTTP does not allow.
    #[error("invalid header {0:?}")]
    Header(String),
    /// `isBase64Encoded` is true but `body` is not base64.
    #[error("body is not valid base64")]
    Base64,
    /// The streaming prelude is not a JSON object.
    #[error("invalid streaming prelude: {0}")]
    Prelude(String),
}

/// The payload 2.0 event for a request.
pub fn request_event(parts: &Parts, body: &[u8], peer_ip: &str, now: SystemTime) -> Vec<u8> {
    let uri = &parts.uri;
    let raw_query = uri.query().unwrap_or_default();
    let mut headers = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for name in parts.headers.keys() {
        let values = parts.headers.get_all(name).iter().map(header_text);
        if name == COOKIE {
            for value in values {
                cookies.extend(
                    value
                        .split(';')
                        .map(str::trim)
                        .filter(|cookie| !cookie.is_empty())
                        .map(|cookie| Value::from(cookie.to_string())),
                );
            }
            continue;
        }
        headers.insert(
            name.as_str().to_string(),
            Value::from(values.collect::<Vec<_>>().join(",")),
        );
    }
    let forwarded = match headers.get("x-forwarded-for").and_then(Value::as_str) {
        Some(earlier) => format!("{earlier}, {peer_ip}"),
        None => peer_ip.to_string(),
    };
    headers.insert("x-forwarded-for".into(), forwarded.into());
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers
        .entry("x-amzn-trace-id")
        .or_insert_with(|| ids::trace_id(now).into());

    let mut query = Map::new();
    for pair in raw_query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (percent_decode(key), percent_decode(value));
        match query.get_mut(&key) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => {
                query.insert(key, value.into());
            }
        }
    }

    let domain = parts
        .headers
        .get(HOST)
        .map(header_text)
        .unwrap_or_else(|| "localhost".into());
    let domain_prefix = domain.split('.').next().unwrap_or_default().to_string();
    let user_agent = parts
        .headers
        .get(USER_AGENT)
        .map(header_text)
        .unwrap_or_default();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "flexilib",
            "domainName": domain,
            "domainPrefix": domain_prefix,
            "requestId": ids::request_id(),
            "routeKey": "$default",
            "stage": "$default",
            "time": ids::request_time(now),
            "timeEpoch": ids::epoch_millis(now),
            "http": {
                "method": parts.method.as_str(),
                "path": uri.path(),
                "protocol": protocol(parts.version),
                "sourceIp": peer_ip,
                "userAgent": user_agent,
            },
        },
        "isBase64Encoded": false,
    });
    if let Value::Object(event) = &mut event {
        if !cookies.is_empty() {
            event.insert("cookies".into(), cookies.into());
        }
        if !query.is_empty() {
            event.insert("queryStringParameters".into(), query.into());
        }
        if !body.is_empty() {
            let text = is_text(parts.headers.get(CONTENT_TYPE))
                .then(|| std::str::from_utf8(body).ok())
                .flatten();
            let (body, encoded) = match text {
                Some(text) => (text.to_string(), false),
                None => (base64::engine::general_purpose::STANDARD.encode(body), true),
            };
            event.insert("body".into(), body.into());
            event.insert("isBase64Encoded".into(), encoded.into());
        }
    }
    event.to_string().into_bytes()
}

/// A body is passed as text when its content type is textual (or absent)
/// and it is valid UTF-8; otherwise it is base64-encoded.
fn is_text(content_type: Option<&HeaderValue>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let Ok(content_type) = content_type.to_str() else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
        )
}

fn header_text(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

/// `%XX` decoded (invalid escapes kept as they are; invalid UTF-8 replaced).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The HTTP response for a function's (buffered) result.
pub fn result_response(payload: &[u8]) -> Result<Response<ReplyBody>, MalformedResult> {
    let value: Value = serde_json::from_slice(payload).map_err(MalformedResult::NotJson)?;
    let object = match value {
        Value::Object(object) if object.contains_key("statusCode") => object,
        // A JSON string is the body itself.
        Value::String(text) => return Ok(json_response(Bytes::from(text))),
        // Any other JSON without a statusCode is the body as returned.
        _ => return Ok(json_response(Bytes::copy_from_slice(payload))),
    };
    let status = status_of(object.get("statusCode"))?;
    let mut headers = HeaderMap::new();
    add_headers(&mut headers, object.get("headers"))?;
    if let Some(Value::Object(multi)) = object.get("multiValueHeaders") {
        for (name, values) in multi {
            let Value::Array(values) = values else {
                continue;
            };
            let name = header_name(name)?;
            if headers.contains_key(&name) || is_framing(&name) {
                continue;
            }
            for value in values {
                headers.append(name.clone(), header_value(&name, value)?);
            }
        }
    }
    add_cookies(&mut headers, object.get("cookies"))?;
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

/// The head of a streamed HTTP response, from the JSON prelude a function
/// sends before eight NUL bytes (`{statusCode, headers, cookies}`).
pub fn prelude_head(prelude: &[u8]) -> Result<(StatusCode, HeaderMap), MalformedResult> {
    let value: Value = if prelude.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(prelude).map_err(|e| MalformedResult::Prelude(e.to_string()))?
    };
    let Value::Object(object) = value else {
        return Err(MalformedResult::Prelude("not an object".into()));
    };
    let status = match object.get("statusCode") {
        None | Some(Value::Null) => StatusCode::OK,
        code => status_of(code)?,
    };
    let mut headers = HeaderMap::new();
    add_headers(&mut headers, object.get("headers"))?;
    add_cookies(&mut headers, object.get("cookies"))?;
    Ok((status, headers))
}

fn json_response(body: Bytes) -> Response<ReplyBody> {
    let mut response = Response::new(ReplyBody::Full(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn status_of(value: Option<&Value>) -> Result<StatusCode, MalformedResult> {
    let code = match value {
        Some(Value::Number(number)) => number.as_u64(),
        Some(Value::String(text)) => text.parse().ok(),
        _ => None,
    };
    code.and_then(|code| u16::try_from(code).ok())
        .filter(|code| (100..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| MalformedResult::Status(value.map(Value::to_string).unwrap_or_default()))
}

fn add_headers(headers: &mut HeaderMap, value: Option<&Value>) -> Result<(), MalformedResult> {
    let Some(Value::Object(map)) = value else {
        return Ok(());
    };
    for (name, value) in map {
        let name = header_name(name)?;
        if is_framing(&name) {
            continue;
        }
        headers.append(name.clone(), header_value(&name, value)?);
    }
    Ok(())
}

fn add_cookies(headers: &mut HeaderMap, value: Option<&Value>) -> Result<(), MalformedResult> {
    let Some(Value::Array(cookies)) = value else {
        return Ok(());
    };
    for cookie in cookies {
        headers.append(SET_COOKIE, header_value(&SET_COOKIE, cookie)?);
    }
    Ok(())
}

/// Framing and connection management belong to the server.
fn is_framing(name: &HeaderName) -> bool {
    name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION
}

fn header_name(name: &str) -> Result<HeaderName, MalformedResult> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| MalformedResult::Header(name.into()))
}

fn header_value(name: &HeaderName, value: &Value) -> Result<HeaderValue, MalformedResult> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
        _ => return Err(MalformedResult::Header(name.as_str().into())),
    };
    HeaderValue::from_str(&text).map_err(|_| MalformedResult::Header(name.as_str().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use hyper::Request;

    fn event_of(request: Request<()>, body: &[u8]) -> Value {
        let (parts, ()) = request.into_parts();
        let event = request_event(&parts, body, "10.1.2.3", SystemTime::UNIX_EPOCH);
        serde_json::from_slice(&event).unwrap_or_default()
    }

    async fn body_of(response: Response<ReplyBody>) -> Bytes {
        match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        }
    }

    #[test]
    fn request_to_event() {
        let request = Request::builder()
            .method("POST")
            .uri("/api/x%20y?a=1&b=2&a=3&c=%2F&flag")
            .header("Host", "fn.example.com")
            .header("X-Multi", "one")
            .header("X-Multi", "two")
            .header("Cookie", "s=1; t=2")
            .header("Cookie", "u=3")
            .header("User-Agent", "curl/8")
            .header("Content-Type", "application/json")
            .body(())
            .unwrap_or_default();
        let event = event_of(request, b"{\"k\":1}");
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "$default");
        assert_eq!(event["rawPath"], "/api/x%20y");
        assert_eq!(event["rawQueryString"], "a=1&b=2&a=3&c=%2F&flag");
        assert_eq!(event["cookies"], json!(["s=1", "t=2", "u=3"]));
        assert_eq!(event["headers"]["x-multi"], "one,two");
        assert_eq!(event["headers"]["x-forwarded-for"], "10.1.2.3");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(
            event["queryStringParameters"],
            json!({"a": "1,3", "b": "2", "c": "/", "flag": ""})
        );
        assert_eq!(event["body"], "{\"k\":1}");
        assert_eq!(event["isBase64Encoded"], false);
        let context = &event["requestContext"];
        assert_eq!(context["domainName"], "fn.example.com");
        assert_eq!(context["domainPrefix"], "fn");
        assert_eq!(context["stage"], "$default");
        assert_eq!(context["time"], "01/Jan/1970:00:00:00 +0000");
        assert_eq!(context["timeEpoch"], 0);
        assert_eq!(context["http"]["method"], "POST");
        assert_eq!(context["http"]["sourceIp"], "10.1.2.3");
        assert_eq!(context["http"]["userAgent"], "curl/8");
        assert_eq!(context["requestId"].as_str().map(str::len), Some(36));

        let binary = Request::builder()
            .uri("/b")
            .header("Content-Type", "application/octet-stream")
            .body(())
            .unwrap_or_default();
        let event = event_of(binary, &[0, 159, 146, 150]);
        assert_eq!(event["body"], "AJ+Slg==");
        assert_eq!(event["isBase64Encoded"], true);
        assert!(event.get("queryStringParameters").is_none());
        assert!(event.get("cookies").is_none());
    }

    #[tokio::test]
    async fn result_to_response() {
        let response = result_response(
            br#"{"statusCode":201,"headers":{"x-a":"1","content-length":"99"},"cookies":["a=1","b=2"],"body":"aGk=","isBase64Encoded":true}"#,
        );
        let Ok(response) = response else {
            panic!("{response:?}", response = response.err())
        };
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["x-a"], "1");
        assert!(response.headers().get(CONTENT_LENGTH).is_none());
        let cookies: Vec<_> = response.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(body_of(response).await, "hi");

        let plain = result_response(br#""just text""#).ok();
        let plain = plain.map(|r| (r.status(), r));
        let Some((status, response)) = plain else {
            panic!("plain string")
        };
        assert_eq!(status, 200);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(body_of(response).await, "just text");

        let Ok(object) = result_response(br#"{"answer": 42}"#) else {
            panic!("object")
        };
        assert_eq!(body_of(object).await, r#"{"answer": 42}"#);

        assert!(matches!(
            result_response(b"not json"),
            Err(MalformedResult::NotJson(_))
        ));
        assert!(matches!(
            result_response(br#"{"statusCode":"abc"}"#),
            Err(MalformedResult::Status(_))
        ));
        assert!(matches!(
            result_response(br#"{"statusCode":200,"body":"%%","isBase64Encoded":true}"#),
            Err(MalformedResult::Base64)
        ));
    }

    #[test]
    fn streaming_prelude() {
        let head = prelude_head(br#"{"statusCode":202,"headers":{"x":"y"},"cookies":["c=1"]}"#);
        let Ok((status, headers)) = head else {
            panic!("prelude")
        };
        assert_eq!(status, 202);
        assert_eq!(headers["x"], "y");
        assert_eq!(headers[SET_COOKIE], "c=1");
        assert!(prelude_head(b"[1]").is_err());
        assert!(matches!(prelude_head(b""), Ok((StatusCode::OK, _))));
    }
}
