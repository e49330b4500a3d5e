//! AWS SAM applications behind a `sam:` route, served from an unmodified
//! template (examples/sam-app, copied so that it can be edited): HTTP API
//! functions in Python and Node, a REST API function (payload 1.0), path
//! parameters, greedy paths, the most specific route, API Gateway's answers
//! for requests no route takes, Globals and Parameters, template errors
//! with their file and line, and edits served while running.

mod common;
#[path = "common/lambda.rs"]
mod lambda;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{workspace, Server, ServerBuilder, TempDir};
use serde_json::Value;

fn json(response: &common::Response) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}), status {}: {}",
            response.status,
            response.text()
        )
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("read directory").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// `PATH` with the venv's python3 (awslambdaric) and aws-lambda-ric.
fn path_with_clients() -> String {
    let ric = lambda::node_ric();
    format!(
        "{}:{}",
        ric.parent().map(Path::display).expect("bin dir"),
        lambda::path_with_python()
    )
}

/// A copy of examples/sam-app in `dir/app`, served under `/app/` with `options`.
fn builder(dir: &TempDir, options: &str) -> ServerBuilder {
    copy_dir(
        &workspace().join("examples/sam-app"),
        &dir.path().join("app"),
    );
    let config = dir.write(
        "proxy.ini",
        &format!("/app/ = sam:app/template.yaml {options}\n"),
    );
    ServerBuilder::new(&config)
        .env("PATH", &path_with_clients())
        .env("INVOKE_API_ADDRESS", "127.0.0.1:0")
        .env("LAMBDA_CACHE_DIR", &shared_cache())
}

/// The dependency cache the tests share (examples/sam-app's `humanize` is
/// installed from PyPI once, by the first test that needs it).
fn shared_cache() -> String {
    workspace()
        .join("target/sam-test-cache")
        .display()
        .to_string()
}

fn start(dir: &TempDir, options: &str) -> Server {
    builder(dir, options).start()
}

/// Writes `contents` to `path` atomically (write beside it, then rename).
fn replace_file(path: &Path, contents: &str) {
    let staging = path.with_extension("tmp~");
    std::fs::write(&staging, contents).expect("write staging file");
    std::fs::rename(&staging, path).expect("rename");
}

#[test]
fn http_api_functions_in_python_and_node() {
    let dir = TempDir::new("sam-http");
    let server = start(&dir, "param.Greeting=howdy");
    let mut client = server.client();

    let hello = client.request("GET", "/app/hello", &[], b"");
    assert_eq!(hello.status, 200, "{}", hello.text());
    let body = json(&hello);
    assert_eq!(
        body["message"], "howdy from python",
        "param.Greeting overrides the default"
    );
    assert_eq!(body["routeKey"], "GET /hello");
    assert_eq!(body["rawPath"], "/hello", "the path within the API");
    assert_eq!(body["pathParameters"], Value::Null);
    assert_eq!(body["stage"], "$default");
    assert_eq!(body["function"], "HelloFunction", "the logical ID");
    assert_eq!(body["memory"], 512, "the function's MemorySize wins");
    assert_eq!(body["timeout"], "5", "Timeout from Globals");
    assert_eq!(
        body["env"],
        serde_json::json!({"STAGE": "dev", "TABLE": "items-dev", "GREETING": "howdy"}),
        "Globals' variables merged with the function's"
    );
    assert_eq!(
        body["served"], "1,234,567",
        "requirements.txt's humanize is installed"
    );

    let item = json(&client.request("GET", "/app/items/42", &[], b""));
    assert_eq!(item["routeKey"], "GET /items/{id}");
    assert_eq!(item["pathParameters"], serde_json::json!({"id": "42"}));
    assert_eq!(item["function"], "HelloFunction");

    // A literal path beats a parameter: /items/latest is NodeFunction's.
    let latest = json(&client.request("GET", "/app/items/latest", &[], b""));
    assert_eq!(latest["function"], "NodeFunction");
    assert_eq!(latest["routeKey"], "GET /items/latest");
    assert_eq!(
        latest["stage"], "dev",
        "Globals reach the Node function too"
    );

    let node = json(&client.request("GET", "/app/node/ada", &[], b""));
    assert_eq!(node["message"], "hello from node, ada");
    assert_eq!(node["routeKey"], "GET /node/{name}");

    // A greedy parameter takes the rest of the path, any method (ANY).
    let files = client.request("DELETE", "/app/files/a/b/c.txt", &[], b"");
    assert_eq!(files.status, 200, "{}", files.text());
    let files = json(&files);
    assert_eq!(files["routeKey"], "ANY /files/{path+}");
    assert_eq!(
        files["pathParameters"],
        serde_json::json!({"path": "a/b/c.txt"})
    );

    // The log names functions by logical ID; the template's other
    // resources are named once as not emulated.
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .starts_with("[NodeFunction] REPORT RequestId: "))
        .is_some());
}

#[test]
fn rest_api_events_are_payload_1_0() {
    let dir = TempDir::new("sam-rest");
    let server = start(&dir, "");
    let mut client = server.client();
    let response = client.request(
        "GET",
        "/app/rest/items/9?q=1&q=2&one=x",
        &[("X-Multi", "first"), ("X-Multi", "second")],
        b"",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    // Both the result's `headers` and each of its `multiValueHeaders`.
    assert_eq!(response.header("x-api"), Some("rest"));
    let cookies: Vec<&str> = response
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    let body = json(&response);
    assert_eq!(body["function"], "RestFunction");
    let event = &body["event"];

    // The fields of AWS's documented example of a REST proxy integration's
    // input ("Input format of a Lambda function for proxy integration",
    // API Gateway developer guide), not our own writer's list.
    let documented: BTreeSet<&str> = [
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
        "body",
        "isBase64Encoded",
    ]
    .into();
    let keys = |value: &Value| -> BTreeSet<String> {
        value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let event_keys = keys(event);
    for key in &documented {
        assert!(
            event_keys.contains(*key),
            "event lacks {key}: {event_keys:?}"
        );
    }
    for key in [
        "accountId",
        "apiId",
        "domainName",
        "domainPrefix",
        "extendedRequestId",
        "httpMethod",
        "identity",
        "path",
        "protocol",
        "requestId",
        "requestTime",
        "requestTimeEpoch",
        "resourceId",
        "resourcePath",
        "stage",
    ] {
        assert!(
            event["requestContext"].get(key).is_some(),
            "requestContext lacks {key}: {}",
            event["requestContext"]
        );
    }
    for key in [
        "accessKey",
        "accountId",
        "apiKey",
        "apiKeyId",
        "caller",
        "cognitoAuthenticationProvider",
        "cognitoAuthenticationType",
        "cognitoIdentityId",
        "cognitoIdentityPoolId",
        "principalOrgId",
        "sourceIp",
        "user",
        "userAgent",
        "userArn",
    ] {
        assert!(
            event["requestContext"]["identity"].get(key).is_some(),
            "identity lacks {key}"
        );
    }
    assert_eq!(event["resource"], "/rest/items/{id}");
    assert_eq!(event["path"], "/rest/items/9");
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["headers"]["x-multi"], "second", "the last value");
    assert_eq!(
        event["multiValueHeaders"]["x-multi"],
        serde_json::json!(["first", "second"])
    );
    assert_eq!(
        event["queryStringParameters"],
        serde_json::json!({"q": "2", "one": "x"})
    );
    assert_eq!(
        event["multiValueQueryStringParameters"],
        serde_json::json!({"q": ["1", "2"], "one": ["x"]})
    );
    assert_eq!(event["pathParameters"], serde_json::json!({"id": "9"}));
    assert_eq!(event["stageVariables"], Value::Null, "absent maps are null");
    assert_eq!(event["body"], Value::Null);
    assert_eq!(event["isBase64Encoded"], false);
    let context = &event["requestContext"];
    assert_eq!(context["resourcePath"], "/rest/items/{id}");
    assert_eq!(context["stage"], "Prod", "SAM's REST stage");
    assert_eq!(context["path"], "/Prod/rest/items/9");
    assert_eq!(context["identity"]["sourceIp"], "127.0.0.1");
    assert!(context["requestTimeEpoch"]
        .as_u64()
        .is_some_and(|ms| ms > 1_600_000_000_000));
    assert!(
        event.get("version").is_none(),
        "REST events have no version"
    );

    let created = client.request(
        "POST",
        "/app/rest/items",
        &[("Content-Type", "application/json")],
        br#"{"name":"x"}"#,
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let event = &json(&created)["event"];
    assert_eq!(event["body"], r#"{"name":"x"}"#);
    assert_eq!(event["queryStringParameters"], Value::Null);
    assert_eq!(event["pathParameters"], Value::Null);
}

#[test]
fn requests_no_route_takes_get_api_gateways_answers() {
    let dir = TempDir::new("sam-miss");
    let server = start(&dir, "");
    let mut client = server.client();
    // HTTP API: a path without the method, or no path at all: 404.
    for (method, path) in [
        ("POST", "/app/hello"),
        ("GET", "/app/nowhere"),
        ("GET", "/app/files"),
    ] {
        let response = client.request(method, path, &[], b"");
        assert_eq!(response.status, 404, "{method} {path}");
        assert_eq!(json(&response), serde_json::json!({"message": "Not Found"}));
    }
    // A REST resource without the method: 403.
    let response = client.request("DELETE", "/app/rest/items/1", &[], b"");
    assert_eq!(response.status, 403);
    assert_eq!(
        json(&response),
        serde_json::json!({"message": "Missing Authentication Token"})
    );
    drop(server);

    // A REST API alone answers 403 for any path it does not have.
    let rest = TempDir::new("sam-rest-only");
    copy_dir(
        &workspace().join("examples/sam-app/rest"),
        &rest.path().join("rest"),
    );
    rest.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  R:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: rest\n      Handler: app.handler\n      Runtime: python3.12\n      Events:\n        Get:\n          Type: Api\n          Properties: {Path: /r, Method: GET}\n",
    );
    let config = rest.write("proxy.ini", "/ = sam:template.yaml\n");
    let server = ServerBuilder::new(&config)
        .env("LAMBDA_CACHE_DIR", &shared_cache())
        .env("PATH", &lambda::path_with_python())
        .start();
    assert_eq!(server.get("/r", &[]).status, 200);
    let response = server.get("/other", &[]);
    assert_eq!(response.status, 403);
    assert_eq!(
        json(&response),
        serde_json::json!({"message": "Missing Authentication Token"})
    );
}

#[test]
fn functions_are_invoked_by_logical_id() {
    let dir = TempDir::new("sam-invoke");
    let server = start(&dir, "");
    let mut invoke = server.invoke_client();
    let event = br#"{"httpMethod":"PUT","path":"/x","headers":{}}"#;
    let response = invoke.request(
        "POST",
        "/2015-03-31/functions/RestFunction/invocations",
        &[],
        event,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let result = json(&response);
    assert_eq!(result["statusCode"], 200);
    let body: Value = result["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    assert_eq!(body["function"], "RestFunction");
    assert_eq!(body["event"]["httpMethod"], "PUT");
}

#[test]
fn unsupported_parts_of_a_template_are_named_at_load() {
    let dir = TempDir::new("sam-unsupported");
    copy_dir(
        &workspace().join("examples/sam-app/hello"),
        &dir.path().join("hello"),
    );
    dir.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Hello:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: hello\n      Handler: app.handler\n      Runtime: python3.12\n      Layers: [arn:aws:lambda:us-east-1:123456789012:layer:x:1]\n      Events:\n        Api:\n          Type: HttpApi\n        Nightly:\n          Type: Schedule\n          Properties: {Schedule: rate(1 day)}\n  Flow:\n    Type: AWS::Serverless::StateMachine\n  Java:\n    Type: AWS::Serverless::Function\n    Properties: {Runtime: java21, Handler: a.B}\n",
    );
    let config = dir.write("proxy.ini", "/ = sam:template.yaml\n");
    let server = ServerBuilder::new(&config)
        .env("LAMBDA_CACHE_DIR", &shared_cache())
        .env("PATH", &lambda::path_with_python())
        .start();
    for expected in [
        "template.yaml: AWS::Serverless::StateMachine: not emulated (Flow)",
        "template.yaml:9: Hello: `Layers`: not emulated",
        "template.yaml:13: Hello.Nightly: event `Type: Schedule`: not emulated",
        "template.yaml:20: Java: `Runtime: java21`: not emulated",
    ] {
        assert!(
            server
                .stderr
                .wait_for(Duration::from_secs(5), |l| l.contains(expected))
                .is_some(),
            "no warning {expected:?}:\n{}",
            server.stderr.snapshot().join("\n")
        );
    }
    // The HttpApi event without a path is the `$default` route.
    let response = server.get("/any/path/at/all", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(json(&response)["routeKey"], "$default");
}

#[test]
fn template_errors_name_the_template_file_and_line() {
    let dir = TempDir::new("sam-error");
    dir.write(
        "template.yaml",
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n      Handler: app.handler\n      Environment:\n        Variables:\n          TABLE: !Ref Missing\n",
    );
    let config = dir.write("proxy.ini", "# a comment\n/ = sam:template.yaml\n");
    let (status, stderr) = ServerBuilder::new(&config)
        .env("PATH", &lambda::path_with_python())
        .run_to_exit_within(Duration::from_secs(10));
    assert!(!status.success());
    let template = dir.path().join("template.yaml");
    let expected = format!(
        "{}:9: `Ref Missing`: no parameter or resource of that name (the `sam:` rule at {}:2)",
        template.display(),
        config.display()
    );
    assert!(stderr.contains(&expected), "{expected}\nnot in:\n{stderr}");

    dir.write("template.yaml", "Resources:\n  F:\n    Type: [AWS\n");
    let (status, stderr) = ServerBuilder::new(&config).run_to_exit_within(Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("{}:3:", template.display()))
            || stderr.contains(&format!("{}:4:", template.display())),
        "a YAML error names its line:\n{stderr}"
    );
}

#[test]
fn edits_are_served_on_the_next_request() {
    let dir = TempDir::new("sam-edit");
    let cache = TempDir::new("sam-edit-cache");
    let server = builder(&dir, "")
        .env("RUST_LOG", "info,flexilib::reload=debug")
        .env("LAMBDA_CACHE_DIR", &cache.path().display().to_string())
        .start();
    let hello = json(&server.get("/app/hello", &[]));
    assert_eq!(hello["message"], "hello from python");
    assert_eq!(hello["humanize"], "4.12.3");
    assert!(server.stderr.snapshot().iter().any(|l| l
        .starts_with("[HelloFunction] installing dependencies from requirements.txt into ")
        && l.contains(&cache.path().display().to_string())));

    // A dependency change: installed again, into a cache entry of its own.
    replace_file(
        &dir.path().join("app/hello/requirements.txt"),
        "humanize==4.11.0\n",
    );
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("new code: new invocations start new instances")
                && l.contains("hello/requirements.txt changed")
        })
        .expect("the change is seen");
    assert_eq!(json(&server.get("/app/hello", &[]))["humanize"], "4.11.0");
    let installs = server
        .stderr
        .snapshot()
        .iter()
        .filter(|l| l.starts_with("[HelloFunction] dependencies installed in "))
        .count();
    assert_eq!(installs, 2, "one installation per set of dependencies");

    // A handler file: the function's next request runs the new code.
    let app = dir.path().join("app/hello/app.py");
    let code = std::fs::read_to_string(&app).expect("read app.py");
    replace_file(&app, &code.replace("from python", "from edited python"));
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("new code: new invocations start new instances")
                && l.contains("hello/app.py changed")
        })
        .expect("the change is seen");
    assert_eq!(
        json(&server.get("/app/hello", &[]))["message"],
        "hello from edited python"
    );

    // The template: a new parameter default and a new route.
    let template = dir.path().join("app/template.yaml");
    let text = std::fs::read_to_string(&template).expect("read template");
    let edited = text
        .replace("Default: hello", "Default: hey")
        .replace("Path: /hello", "Path: /greeting");
    replace_file(&template, &edited);
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("SAM template reloaded")
        })
        .expect("the template is read again");
    assert_eq!(
        json(&server.get("/app/greeting", &[]))["message"],
        "hey from edited python"
    );
    assert_eq!(server.get("/app/hello", &[]).status, 404);

    // A new function in a new directory, behind an HTTP API route with
    // payload 1.0; its directory is watched too.
    copy_dir(&dir.path().join("app/rest"), &dir.path().join("app/v1"));
    let edited = edited.replace(
        "\nOutputs:",
        "  V1Function:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: v1/\n      Handler: app.handler\n      Runtime: python3.12\n      Events:\n        Get:\n          Type: HttpApi\n          Properties:\n            Path: /v1/{id}\n            Method: GET\n            PayloadFormatVersion: \"1.0\"\n\nOutputs:",
    );
    replace_file(&template, &edited);
    server
        .stderr
        .wait_for_nth(Duration::from_secs(5), 1, |l| {
            l.contains("SAM template reloaded")
        })
        .expect("the template is read again");
    let response = server.get("/app/v1/3?a=1", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    let body = json(&response);
    assert_eq!(body["function"], "V1Function");
    let event = &body["event"];
    assert_eq!(event["version"], "1.0");
    assert_eq!(event["resource"], "/v1/{id}");
    assert_eq!(event["path"], "/v1/3");
    assert_eq!(event["pathParameters"], serde_json::json!({"id": "3"}));
    assert_eq!(
        event["multiValueQueryStringParameters"],
        serde_json::json!({"a": ["1"]})
    );
    assert_eq!(event["requestContext"]["routeKey"], "GET /v1/{id}");
    assert_eq!(event["requestContext"]["stage"], "$default");
    let v1_app = dir.path().join("app/v1/app.py");
    let code = std::fs::read_to_string(&v1_app).expect("read v1/app.py");
    // The reload thread watches v1/ once the edit is read.
    let v1_dir = format!("dir={}", dir.path().join("app/v1").display());
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("watching directory") && l.contains(&v1_dir)
        })
        .expect("the new directory is watched");
    replace_file(&v1_app, &code.replace("201 if created else 200", "203"));
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("new code: new invocations start new instances") && l.contains("V1Function")
        })
        .expect("the new directory is watched");
    assert_eq!(server.get("/app/v1/3", &[]).status, 203);

    // A broken template is logged; the previous routes keep serving.
    replace_file(&template, &edited.replace("Resources:", "Resources: [oops"));
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("SAM template rejected")
        })
        .expect("the broken template is logged");
    assert_eq!(server.get("/app/greeting", &[]).status, 200);
}

/// The command lines of the worker's child processes (the instances).
fn instance_commands(server: &Server) -> Vec<String> {
    let worker = lambda::worker_pid(server, 0);
    lambda::children_of(worker)
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
        .map(|cmdline| {
            String::from_utf8_lossy(&cmdline)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .collect()
}

#[test]
fn functions_run_the_shipped_runtime_clients_or_aws_ones() {
    // By default, FlexiLib's own clients: nothing installed but python3 and
    // node (the machine's PATH, without awslambdaric or aws-lambda-ric).
    let dir = TempDir::new("sam-shipped");
    copy_dir(
        &workspace().join("examples/sam-app"),
        &dir.path().join("app"),
    );
    let config = dir.write("proxy.ini", "/app/ = sam:app/template.yaml\n");
    let server = ServerBuilder::new(&config)
        .env("LAMBDA_CACHE_DIR", &shared_cache())
        .start();
    assert_eq!(server.get("/app/hello", &[]).status, 200);
    assert_eq!(server.get("/app/node/x", &[]).status, 200);
    let commands = instance_commands(&server);
    assert!(
        commands
            .iter()
            .any(|c| c.contains("python3 ") && c.ends_with("/flexilib_runtime.py app.handler")),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("node ") && c.ends_with("/flexilib_runtime.mjs index.handler")),
        "{commands:?}"
    );
    drop(server);

    // `client=aws`: AWS's clients, as installed.
    let dir = TempDir::new("sam-aws-clients");
    let server = start(&dir, "client=aws");
    assert_eq!(
        json(&server.get("/app/hello", &[]))["function"],
        "HelloFunction"
    );
    assert_eq!(
        json(&server.get("/app/node/x", &[]))["function"],
        "NodeFunction"
    );
    let commands = instance_commands(&server);
    assert!(
        commands
            .iter()
            .any(|c| c.contains("-m awslambdaric app.handler")),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|c| c.contains("aws-lambda-ric") && c.ends_with("index.handler")),
        "{commands:?}"
    );
}

#[test]
fn lambda_http_reads_every_event_format() {
    // AWS's `lambda_http` (over the `aws_lambda_events` types) parses the
    // REST (1.0), HTTP API 1.0 and HTTP API 2.0 events and answers in the
    // matching result format, headers, cookies and binary bodies included.
    let dir = TempDir::new("sam-lambda-http");
    std::fs::create_dir_all(dir.path().join("rs")).expect("mkdir");
    lambda::copy_bootstrap(&dir.path().join("rs"), "bootstrap");
    dir.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Rust:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: rs/\n      Handler: bootstrap\n      Runtime: provided.al2023\n      Events:\n        Rest:\n          Type: Api\n          Properties: {Path: '/rest/{proxy+}', Method: ANY}\n        V1:\n          Type: HttpApi\n          Properties: {Path: '/v1/{proxy+}', Method: ANY, PayloadFormatVersion: '1.0'}\n        V2:\n          Type: HttpApi\n          Properties: {Path: '/v2/{proxy+}', Method: ANY}\n",
    );
    let config = dir.write("proxy.ini", "/api/ = sam:template.yaml\n");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    for api in ["rest", "v1", "v2"] {
        let response = client.request(
            "GET",
            &format!("/api/{api}/x/echo?a=1&b=two"),
            &[("X-Custom", "v1")],
            b"",
        );
        assert_eq!(response.status, 200, "{api}: {}", response.text());
        let echo = json(&response);
        assert_eq!(echo["method"], "GET", "{api}");
        assert!(
            echo["path"]
                .as_str()
                .is_some_and(|p| p.ends_with(&format!("/{api}/x/echo"))),
            "{api}: {echo}"
        );
        let query = echo["query"].as_str().unwrap_or_default();
        assert!(
            query.contains("a=1") && query.contains("b=two"),
            "{api}: {query}"
        );
        assert_eq!(echo["headers"]["x-custom"], "v1", "{api}");
        assert_eq!(echo["function_name"], "Rust", "{api}");

        let response = client.request("GET", &format!("/api/{api}/cookies"), &[], b"");
        assert_eq!(response.status, 200, "{api}");
        let mut cookies: Vec<&str> = response
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, value)| value.as_str())
            .collect();
        cookies.sort_unstable();
        assert_eq!(cookies, ["a=1; Path=/", "b=2; HttpOnly", "c=3"], "{api}");

        let body: Vec<u8> = (0..=255u8).collect();
        let response = client.request(
            "POST",
            &format!("/api/{api}/bin"),
            &[("Content-Type", "application/octet-stream")],
            &body,
        );
        assert_eq!(response.status, 200, "{api}");
        assert_eq!(response.body, body, "{api}: a binary body both ways");
    }
}

#[test]
fn powertools_resolvers_route_the_events() {
    // AWS Lambda Powertools (from PyPI, through requirements.txt) routes
    // with its own resolvers on the events FlexiLib writes: the REST
    // resolver on payload 1.0, the HTTP API resolver on payload 2.0.
    let dir = TempDir::new("sam-powertools");
    let handler = |resolver: &str, route: &str| {
        format!(
            "from aws_lambda_powertools.event_handler import {resolver}\n\
             app = {resolver}()\n\n\
             @app.get(\"{route}/<item_id>\")\n\
             def get_item(item_id):\n\
             \x20   event = app.current_event\n\
             \x20   return {{\"id\": item_id, \"q\": event.get_query_string_value(\"q\"),\n\
             \x20           \"agent\": event.get_header_value(\"x-agent\"), \"resolver\": \"{resolver}\"}}\n\n\
             def handler(event, context):\n\
             \x20   return app.resolve(event, context)\n"
        )
    };
    for (code_dir, resolver, route) in [
        ("rest", "APIGatewayRestResolver", "/todos"),
        ("http", "APIGatewayHttpResolver", "/things"),
    ] {
        std::fs::create_dir_all(dir.path().join(code_dir)).expect("mkdir");
        dir.write(
            &format!("{code_dir}/requirements.txt"),
            "aws-lambda-powertools==3.23.0\n",
        );
        dir.write(&format!("{code_dir}/app.py"), &handler(resolver, route));
    }
    dir.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n    Runtime: python3.12\n    Handler: app.handler\n    Timeout: 10\nResources:\n  Rest:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: rest/\n      Events:\n        Get:\n          Type: Api\n          Properties: {Path: '/todos/{id}', Method: get}\n  Http:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: http/\n      Events:\n        Get:\n          Type: HttpApi\n          Properties: {Path: '/things/{id}', Method: get}\n",
    );
    let config = dir.write("proxy.ini", "/pt/ = sam:template.yaml\n");
    let server = ServerBuilder::new(&config)
        .env("LAMBDA_CACHE_DIR", &shared_cache())
        .start();
    let mut client = server.client();
    for (path, resolver) in [
        ("/pt/todos/7?q=a&q=b", "APIGatewayRestResolver"),
        ("/pt/things/7?q=b", "APIGatewayHttpResolver"),
    ] {
        let response = client.request("GET", path, &[("X-Agent", "test")], b"");
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        assert_eq!(
            json(&response),
            serde_json::json!({"id": "7", "q": "b", "agent": "test", "resolver": resolver}),
            "{path}"
        );
    }
}

#[test]
fn function_urls_are_served_by_a_function_rule() {
    let dir = TempDir::new("sam-url");
    copy_dir(
        &workspace().join("examples/sam-app"),
        &dir.path().join("app"),
    );
    let config = dir.write(
        "proxy.ini",
        "/url/ = sam:app/template.yaml function=HelloFunction\n/app/ = sam:app/template.yaml\n",
    );
    let server = ServerBuilder::new(&config)
        .env("LAMBDA_CACHE_DIR", &shared_cache())
        .start();
    let mut client = server.client();
    // Every method and path, as a Function URL: `$default`, the full path.
    for method in ["GET", "DELETE"] {
        let response = client.request(method, "/url/any/path?x=1", &[], b"");
        assert_eq!(response.status, 200, "{method}: {}", response.text());
        let body = json(&response);
        assert_eq!(body["function"], "HelloFunction");
        assert_eq!(body["routeKey"], "$default");
        assert_eq!(body["rawPath"], "/url/any/path");
        assert_eq!(body["pathParameters"], Value::Null);
    }
    // The API rule beside it still routes as API Gateway.
    assert_eq!(client.request("DELETE", "/app/hello", &[], b"").status, 404);
    drop(server);

    // A function without FunctionUrlConfig, or none of that name: errors
    // naming the template's line.
    let template = dir.path().join("app/template.yaml");
    let text = std::fs::read_to_string(&template).expect("read template");
    let node_line = text
        .lines()
        .position(|l| l.trim_start() == "NodeFunction:")
        .map(|i| i + 1)
        .expect("NodeFunction in the template");
    for (id, expected) in [
        (
            "NodeFunction",
            format!(
                "{}:{node_line}: `function=NodeFunction`: NodeFunction has no `FunctionUrlConfig`",
                template.display()
            ),
        ),
        (
            "Nope",
            "`function=Nope`: the template serves no function `Nope`".to_string(),
        ),
    ] {
        let config = dir.write(
            "bad.ini",
            &format!("/url/ = sam:app/template.yaml function={id}\n"),
        );
        let (status, stderr) =
            ServerBuilder::new(&config).run_to_exit_within(Duration::from_secs(10));
        assert!(!status.success());
        assert!(stderr.contains(&expected), "{expected}\nnot in:\n{stderr}");
    }
}
