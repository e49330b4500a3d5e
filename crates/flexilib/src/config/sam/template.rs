//! An AWS SAM template read as `sam local` reads it: every
//! `AWS::Serverless::Function` becomes a Lambda function named by its
//! logical ID, with `Globals.Function` merged in (maps key by key, the
//! function's scalars win, lists appended), intrinsics (`Ref`, `Fn::Sub`,
//! `Fn::GetAtt`, `Fn::Join`, `Fn::Select`, short or long form) resolved
//! against `Parameters` (defaults, overridden by the rule's `param.`
//! options) and the pseudo parameters, and its `HttpApi` and `Api` events
//! as API routes. What is not emulated is named in warnings, once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::yaml::{self, Node, Value};
use super::SamSpec;
use crate::config::{LambdaSpec, Language};

/// The account id of the pseudo parameter `AWS::AccountId` (the one events carry).
const ACCOUNT_ID: &str = "123456789012";

/// A template that cannot be served, with the place that says why.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {message}", path = .path.display())]
pub struct TemplateError {
    /// The template.
    pub path: PathBuf,
    /// 1-based line (1 when the file could not be read).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A SAM application: its functions and what of the template is not emulated.
#[derive(Debug, Clone, PartialEq)]
pub struct SamApp {
    /// Functions in template order.
    pub functions: Vec<SamFunction>,
    /// `FILE:LINE: … not emulated` lines, logged at load.
    pub warnings: Vec<String>,
    /// True when some route belongs to an HTTP API (a request no route
    /// takes then gets the HTTP API's 404 rather than the REST API's 403).
    pub has_http_api: bool,
}

/// One `AWS::Serverless::Function`.
#[derive(Debug, Clone, PartialEq)]
pub struct SamFunction {
    /// The Lambda function (its name is the logical ID).
    pub spec: LambdaSpec,
    /// Its HTTP routes.
    pub routes: Vec<ApiRoute>,
    /// It has a `FunctionUrlConfig` (a rule with `function=` serves it).
    pub function_url: bool,
    /// The line of its logical ID.
    pub line: usize,
}

/// An API Gateway route to a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRoute {
    /// HTTP API (and its payload version) or REST API.
    pub api: ApiKind,
    /// Upper-case method; `None` for `ANY`.
    pub method: Option<String>,
    /// The path template (`/items/{id}`); `None` for an HTTP API's `$default`.
    pub path: Option<String>,
    /// `requestContext.stage`.
    pub stage: String,
    /// The event's line in the template.
    pub line: usize,
}

/// Which kind of API a route belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// An HTTP API (`HttpApi` event).
    Http(Payload),
    /// A REST API (`Api` event): payload 1.0.
    Rest,
}

/// The event format a function receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Payload format 1.0 (REST APIs; HTTP APIs on request).
    V1,
    /// Payload format 2.0 (HTTP APIs' default).
    V2,
}

/// Reads and interprets the template of `spec`.
pub fn load(spec: &SamSpec) -> Result<SamApp, TemplateError> {
    let path = &spec.template;
    let error = |line: usize, message: String| TemplateError {
        path: path.clone(),
        line,
        message,
    };
    let mut text = String::new();
    crate::files::open_regular(path)
        .and_then(|mut file| std::io::Read::read_to_string(&mut file, &mut text))
        .map_err(|e| error(1, format!("cannot read the SAM template: {e}")))?;
    let root = yaml::parse(&text).map_err(|e| error(e.line, e.message))?;
    let app = interpret(spec, &root)?;
    if let Some(wanted) = &spec.function {
        match app.functions.iter().find(|f| f.spec.name == *wanted) {
            Some(function) if function.function_url => {}
            Some(function) => {
                return Err(error(
                    function.line,
                    format!("`function={wanted}`: {wanted} has no `FunctionUrlConfig`"),
                ))
            }
            None => {
                return Err(error(
                    root.get("Resources").map_or(1, |r| r.line),
                    format!("`function={wanted}`: the template serves no function `{wanted}`"),
                ))
            }
        }
    }
    Ok(app)
}

/// What intrinsics resolve against.
struct Context<'a> {
    path: &'a Path,
    /// Parameter values (`None`: declared without a default or override).
    params: HashMap<String, (Option<String>, usize)>,
    /// Resource logical IDs and their types.
    resources: HashMap<String, String>,
    region: String,
    /// `client=aws`: run AWS's installed runtime clients, not FlexiLib's.
    aws_clients: bool,
}

impl Context<'_> {
    fn error(&self, line: usize, message: impl Into<String>) -> TemplateError {
        TemplateError {
            path: self.path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// `Ref NAME`.
    fn reference(&self, name: &str, line: usize) -> Result<Option<String>, TemplateError> {
        if let Some((value, declared)) = self.params.get(name) {
            return match value {
                Some(value) => Ok(Some(value.clone())),
                None => Err(self.error(
                    line,
                    format!("parameter `{name}` (line {declared}) has no Default: give one, or `param.{name}=VALUE` on the `sam:` rule"),
                )),
            };
        }
        let pseudo = match name {
            "AWS::Region" => self.region.clone(),
            "AWS::AccountId" => ACCOUNT_ID.into(),
            "AWS::Partition" => "aws".into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            "AWS::StackName" | "AWS::StackId" => "sam-app".into(),
            "AWS::NoValue" => return Ok(None),
            // A resource's `Ref` is its physical name; locally (as `sam
            // local` names functions) that is its logical ID.
            _ if self.resources.contains_key(name) => name.into(),
            _ => {
                return Err(self.error(
                    line,
                    format!("`Ref {name}`: no parameter or resource of that name"),
                ))
            }
        };
        Ok(Some(pseudo))
    }

    /// `Fn::GetAtt RESOURCE.ATTRIBUTE`: a function's `Arn`; any other
    /// attribute of a known resource is a stand-in string.
    fn get_att(
        &self,
        resource: &str,
        attribute: &str,
        line: usize,
    ) -> Result<String, TemplateError> {
        let Some(kind) = self.resources.get(resource) else {
            return Err(self.error(
                line,
                format!("`GetAtt {resource}.{attribute}`: no resource `{resource}`"),
            ));
        };
        Ok(match (kind.as_str(), attribute) {
            ("AWS::Serverless::Function", "Arn") => format!(
                "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{resource}",
                self.region
            ),
            _ => format!("{resource}.{attribute}"),
        })
    }

    /// A scalar property with its intrinsics resolved (`None`: absent or
    /// `AWS::NoValue`).
    fn text(&self, node: &Node) -> Result<Option<String>, TemplateError> {
        if let Some((function, argument)) = intrinsic(node) {
            return self.call(&function, argument, node.line);
        }
        match &node.value {
            Value::Scalar { text, .. } => Ok((!node.is_null()).then(|| text.clone())),
            Value::Seq(_) | Value::Map(_) => {
                Err(self.error(node.line, "expected a single value, found a list or map"))
            }
        }
    }

    /// A list (a sequence, or an intrinsic's list such as `Fn::Split`'s).
    fn list(&self, node: &Node) -> Result<Vec<String>, TemplateError> {
        match &node.value {
            Value::Seq(items) if intrinsic(node).is_none() => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(self.text(item)?);
                }
                Ok(out)
            }
            _ => Err(self.error(node.line, "expected a list")),
        }
    }

    fn call(
        &self,
        function: &str,
        argument: &Node,
        line: usize,
    ) -> Result<Option<String>, TemplateError> {
        match function {
            "Ref" => {
                let name = argument
                    .as_str()
                    .ok_or_else(|| self.error(line, "`Ref` takes a name"))?;
                self.reference(name, line)
            }
            "Fn::GetAtt" => {
                let (resource, attribute) = match &argument.value {
                    Value::Scalar { text, .. } => text
                        .split_once('.')
                        .map(|(r, a)| (r.to_string(), a.to_string())),
                    Value::Seq(items) if items.len() == 2 => {
                        match (self.text(&items[0])?, self.text(&items[1])?) {
                            (Some(r), Some(a)) => Some((r, a)),
                            _ => None,
                        }
                    }
                    _ => None,
                }
                .ok_or_else(|| self.error(line, "`GetAtt` takes `Resource.Attribute`"))?;
                self.get_att(&resource, &attribute, line).map(Some)
            }
            "Fn::Sub" => {
                let (template, variables) = match &argument.value {
                    Value::Scalar { text, .. } => (text.clone(), None),
                    Value::Seq(items) if items.len() == 2 => {
                        let template = items[0]
                            .as_str()
                            .ok_or_else(|| self.error(line, "`Sub` takes a string first"))?;
                        (template.to_string(), Some(&items[1]))
                    }
                    _ => return Err(self.error(line, "`Sub` takes a string, or [string, variables]")),
                };
                self.substitute(&template, variables, line).map(Some)
            }
            "Fn::Join" => {
                let Value::Seq(items) = &argument.value else {
                    return Err(self.error(line, "`Join` takes [delimiter, [values]]"));
                };
                let [delimiter, values] = items.as_slice() else {
                    return Err(self.error(line, "`Join` takes [delimiter, [values]]"));
                };
                let delimiter = self.text(delimiter)?.unwrap_or_default();
                Ok(Some(self.list(values)?.join(&delimiter)))
            }
            "Fn::Select" => {
                let Value::Seq(items) = &argument.value else {
                    return Err(self.error(line, "`Select` takes [index, [values]]"));
                };
                let [index, values] = items.as_slice() else {
                    return Err(self.error(line, "`Select` takes [index, [values]]"));
                };
                let index: usize = self
                    .text(index)?
                    .and_then(|i| i.parse().ok())
                    .ok_or_else(|| self.error(line, "`Select`: the index is not a number"))?;
                let values = self.list(values)?;
                values
                    .get(index)
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| self.error(line, format!("`Select`: no item {index}")))
            }
            other => Err(self.error(
                line,
                format!("`{other}` is not evaluated by FlexiLib (Ref, Fn::Sub, Fn::GetAtt, Fn::Join and Fn::Select are)"),
            )),
        }
    }

    /// `Fn::Sub`'s `${Name}`, `${Resource.Attribute}` and `${!Literal}`.
    fn substitute(
        &self,
        template: &str,
        variables: Option<&Node>,
        line: usize,
    ) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(self.error(line, "`Sub`: a `${` without its `}`"));
            };
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.and_then(|v| v.get(name)) {
                out.push_str(&self.text(value)?.unwrap_or_default());
            } else if let Some((resource, attribute)) = name.split_once('.') {
                out.push_str(&self.get_att(resource, attribute, line)?);
            } else {
                out.push_str(&self.reference(name, line)?.unwrap_or_default());
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The intrinsic function a node calls and its argument: a short-form tag
/// (`!Ref X`) or a one-key map (`{"Fn::Sub": …}`, `{"Ref": …}`).
fn intrinsic(node: &Node) -> Option<(String, &Node)> {
    if let Some(tag) = &node.tag {
        let name = if tag == "Ref" {
            "Ref".to_string()
        } else {
            format!("Fn::{tag}")
        };
        return Some((name, node));
    }
    match node.entries() {
        [(key, value)] => {
            let key = key.as_str()?;
            (key == "Ref" || key.starts_with("Fn::")).then(|| (key.to_string(), value))
        }
        _ => None,
    }
}

/// `Globals` merged as SAM merges them: maps key by key, lists appended
/// (the global items first), anything else the function's own.
fn merge(global: &Node, local: &Node) -> Node {
    match (&global.value, &local.value) {
        (Value::Map(g), Value::Map(l))
            if intrinsic(global).is_none() && intrinsic(local).is_none() =>
        {
            let mut entries: Vec<(Node, Node)> = g.clone();
            for (key, value) in l {
                match entries
                    .iter_mut()
                    .find(|(k, _)| k.as_str().is_some() && k.as_str() == key.as_str())
                {
                    Some((_, existing)) => *existing = merge(existing, value),
                    None => entries.push((key.clone(), value.clone())),
                }
            }
            Node {
                line: local.line,
                tag: None,
                value: Value::Map(entries),
            }
        }
        (Value::Seq(g), Value::Seq(l)) if global.tag.is_none() && local.tag.is_none() => Node {
            line: local.line,
            tag: None,
            value: Value::Seq(g.iter().chain(l).cloned().collect()),
        },
        _ => local.clone(),
    }
}

/// Interprets a parsed template.
fn interpret(spec: &SamSpec, root: &Node) -> Result<SamApp, TemplateError> {
    let path = spec.template.as_path();
    let template_dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let at = |line: usize| format!("{}:{line}", path.display());
    if !matches!(root.value, Value::Map(_)) {
        return Err(TemplateError {
            path: path.to_path_buf(),
            line: root.line,
            message: "a SAM template is a map with `Resources`".into(),
        });
    }
    let mut context = Context {
        path,
        params: HashMap::new(),
        resources: HashMap::new(),
        region: std::env::var("AWS_REGION")
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".into()),
        aws_clients: spec.aws_clients,
    };
    for (name, parameter) in root
        .get("Parameters")
        .map(Node::entries)
        .unwrap_or_default()
    {
        let Some(name) = name.as_str() else { continue };
        let default = match parameter.get("Default") {
            Some(default) => context.text(default)?,
            None => None,
        };
        context
            .params
            .insert(name.to_string(), (default, parameter.line));
    }
    for (name, value) in &spec.params {
        match context.params.get_mut(name) {
            Some((slot, _)) => *slot = Some(value.clone()),
            None => {
                return Err(context.error(
                    root.get("Parameters").map_or(1, |p| p.line),
                    format!("`param.{name}` on the `sam:` rule: the template declares no parameter `{name}`"),
                ))
            }
        }
    }
    let Some(resources) = root
        .get("Resources")
        .filter(|r| matches!(r.value, Value::Map(_)))
    else {
        return Err(context.error(root.line, "the template has no `Resources` map"));
    };
    for (id, resource) in resources.entries() {
        let kind = resource
            .get("Type")
            .and_then(Node::as_str)
            .unwrap_or_default();
        if let Some(id) = id.as_str() {
            context.resources.insert(id.to_string(), kind.to_string());
        }
    }

    let mut warnings = Vec::new();
    let mut not_emulated: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, _) in root.entries() {
        if let Some(section @ ("Conditions" | "Mappings" | "Rules")) = key.as_str() {
            warnings.push(format!(
                "{}: `{section}`: not evaluated (conditions are taken as true)",
                at(key.line)
            ));
        }
    }
    let globals = root.get("Globals");
    let global_function = globals.and_then(|g| g.get("Function"));
    if let Some(globals) = globals {
        for (key, _) in globals.entries() {
            if let Some(
                section @ ("Api" | "HttpApi" | "SimpleTable" | "StateMachine" | "LayerVersion"),
            ) = key.as_str()
            {
                warnings.push(format!(
                    "{}: `Globals.{section}`: not emulated",
                    at(key.line)
                ));
            }
        }
    }

    // Stages and explicit APIs, by logical ID.
    let mut stages: HashMap<String, String> = HashMap::new();
    for (id, resource) in resources.entries() {
        let (Some(id), Some(kind)) = (id.as_str(), resource.get("Type").and_then(Node::as_str))
        else {
            continue;
        };
        if !matches!(kind, "AWS::Serverless::Api" | "AWS::Serverless::HttpApi") {
            continue;
        }
        let properties = resource.get("Properties");
        if let Some(stage) = properties.and_then(|p| p.get("StageName")) {
            if let Some(stage) = context.text(stage)? {
                stages.insert(id.to_string(), stage);
            }
        }
        for feature in [
            "DefinitionBody",
            "DefinitionUri",
            "Auth",
            "Domain",
            "Cors",
            "CorsConfiguration",
        ] {
            if let Some(node) = properties.and_then(|p| p.get(feature)) {
                warnings.push(format!(
                    "{}: {id}: `{feature}`: not emulated",
                    at(node.line)
                ));
            }
        }
    }

    let mut functions = Vec::new();
    let mut has_http_api = false;
    for (id_node, resource) in resources.entries() {
        let Some(id) = id_node.as_str() else { continue };
        let kind = resource
            .get("Type")
            .and_then(Node::as_str)
            .unwrap_or_default();
        match kind {
            "AWS::Serverless::Function" => {}
            "AWS::Serverless::Api" | "AWS::Serverless::HttpApi" => continue,
            _ => {
                not_emulated
                    .entry(kind.to_string())
                    .or_default()
                    .push(id.to_string());
                continue;
            }
        }
        if let Some(condition) = resource.get("Condition") {
            warnings.push(format!(
                "{}: {id}: `Condition` not evaluated: the function is served",
                at(condition.line)
            ));
        }
        let empty = Node {
            line: resource.line,
            tag: None,
            value: Value::Map(Vec::new()),
        };
        let local = resource.get("Properties").unwrap_or(&empty);
        let properties = match global_function {
            Some(global) => merge(global, local),
            None => local.clone(),
        };
        let Some(function) = function(
            &context,
            id,
            id_node.line,
            &properties,
            &template_dir,
            &stages,
            &mut warnings,
        )?
        else {
            continue;
        };
        has_http_api |= function
            .routes
            .iter()
            .any(|r| matches!(r.api, ApiKind::Http(_)));
        functions.push(function);
    }
    for (kind, ids) in not_emulated {
        warnings.push(format!(
            "{}: {kind}: not emulated ({})",
            path.display(),
            ids.join(", ")
        ));
    }
    Ok(SamApp {
        functions,
        warnings,
        has_http_api,
    })
}

/// One function from its merged properties; `None` (with a warning) for a
/// function that cannot run here (an image, an unsupported runtime).
fn function(
    context: &Context<'_>,
    id: &str,
    line: usize,
    properties: &Node,
    template_dir: &Path,
    stages: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Option<SamFunction>, TemplateError> {
    let at = |line: usize| format!("{}:{line}", context.path.display());
    let text = |key: &str| -> Result<Option<String>, TemplateError> {
        match properties.get(key) {
            Some(node) => context.text(node),
            None => Ok(None),
        }
    };
    let valid_name =
        !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid_name {
        return Err(context.error(
            line,
            format!("`{id}`: a logical ID has 1 to 64 letters and digits"),
        ));
    }
    if text("PackageType")?.as_deref() == Some("Image") {
        warnings.push(format!(
            "{}: {id}: `PackageType: Image`: not emulated (the function is not served)",
            at(line)
        ));
        return Ok(None);
    }
    let url_config = properties.get("FunctionUrlConfig");
    if let Some(config) = url_config {
        if let Some(auth) = config.get("AuthType") {
            if context.text(auth)?.as_deref() == Some("AWS_IAM") {
                warnings.push(format!(
                    "{}: {id}: `FunctionUrlConfig.AuthType: AWS_IAM`: not enforced (the URL is open)",
                    at(auth.line)
                ));
            }
        }
        if let Some(cors) = config.get("Cors") {
            warnings.push(format!(
                "{}: {id}: `FunctionUrlConfig.Cors`: not emulated",
                at(cors.line)
            ));
        }
    }
    for feature in ["Layers", "InlineCode", "SnapStart", "VpcConfig"] {
        if let Some(node) = properties.get(feature) {
            warnings.push(format!(
                "{}: {id}: `{feature}`: not emulated",
                at(node.line)
            ));
        }
    }
    let code_uri = match properties.get("CodeUri") {
        Some(node) if matches!(node.value, Value::Map(_)) && intrinsic(node).is_none() => {
            warnings.push(format!(
                "{}: {id}: a `CodeUri` in S3: not emulated (the function is not served)",
                at(node.line)
            ));
            return Ok(None);
        }
        Some(node) => context.text(node)?,
        None => None,
    };
    if code_uri
        .as_deref()
        .is_some_and(|uri| uri.starts_with("s3://"))
    {
        warnings.push(format!(
            "{}: {id}: a `CodeUri` in S3: not emulated (the function is not served)",
            at(line)
        ));
        return Ok(None);
    }
    let dir = template_dir.join(code_uri.as_deref().unwrap_or("."));
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let runtime_line = properties.get("Runtime").map_or(line, |n| n.line);
    let Some(runtime) = text("Runtime")? else {
        return Err(context.error(
            line,
            format!("{id}: no `Runtime` (in the function or `Globals.Function`)"),
        ));
    };
    let handler = text("Handler")?;
    let Some(managed) = crate::config::lambda::managed_runtime(&runtime, handler.as_deref(), &dir)
    else {
        warnings.push(format!(
            "{}: {id}: `Runtime: {runtime}`: not emulated (python3.x, nodejs*.x and provided.* are; the function is not served)",
            at(runtime_line)
        ));
        return Ok(None);
    };
    let crate::config::lambda::ManagedCommand {
        program,
        args,
        language,
    } = managed.map_err(|message| context.error(line, format!("{id}: {message} (`Handler`)")))?;
    // `client=aws`: AWS's own runtime clients, installed where the function runs.
    let (program, args, shipped_client) = match language {
        Some(Language::Python) if context.aws_clients => (
            program,
            ["-m", "awslambdaric"]
                .iter()
                .map(|a| (*a).to_string())
                .chain(args)
                .collect(),
            false,
        ),
        Some(Language::Node) if context.aws_clients => {
            let local = dir.join("node_modules/.bin/aws-lambda-ric");
            let program = if local.is_file() {
                local
            } else {
                PathBuf::from("aws-lambda-ric")
            };
            (program, args, false)
        }
        shipped => (program, args, shipped.is_some()),
    };

    let number = |key: &str, min: u64, max: u64| -> Result<Option<u64>, TemplateError> {
        let node_line = properties.get(key).map_or(line, |n| n.line);
        match text(key)? {
            None => Ok(None),
            Some(value) => match value.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(context.error(
                    node_line,
                    format!("{id}: `{key}: {value}`: a whole number from {min} to {max}"),
                )),
            },
        }
    };
    let timeout = number("Timeout", 1, 900)?.unwrap_or(3);
    let memory = number("MemorySize", 128, 10_240)?.unwrap_or(128);
    let concurrency = number("ReservedConcurrentExecutions", 1, 1000)?.unwrap_or(10);
    let mut env = Vec::new();
    if let Some(variables) = properties
        .get("Environment")
        .and_then(|e| e.get("Variables"))
    {
        for (name, value) in variables.entries() {
            let Some(name) = name.as_str() else { continue };
            if let Some(value) = context.text(value)? {
                env.push((name.to_string(), value));
            }
        }
    }

    let mut routes = Vec::new();
    for (event_id, event) in properties
        .get("Events")
        .map(Node::entries)
        .unwrap_or_default()
    {
        let event_name = event_id.as_str().unwrap_or("?");
        let kind = match event.get("Type") {
            Some(kind) => context.text(kind)?.unwrap_or_default(),
            None => String::new(),
        };
        let empty = Node {
            line: event.line,
            tag: None,
            value: Value::Map(Vec::new()),
        };
        let props = event.get("Properties").unwrap_or(&empty);
        let prop = |key: &str| -> Result<Option<String>, TemplateError> {
            match props.get(key) {
                Some(node) => context.text(node),
                None => Ok(None),
            }
        };
        let api_ref = |key: &str| {
            props.get(key).and_then(|n| {
                intrinsic(n).and_then(|(f, arg)| {
                    (f == "Ref")
                        .then(|| arg.as_str().map(String::from))
                        .flatten()
                })
            })
        };
        let method = prop("Method")?.map(|m| m.to_ascii_uppercase());
        let method = method.filter(|m| m != "ANY" && m != "X-AMAZON-APIGATEWAY-ANY-METHOD");
        let path = prop("Path")?;
        if let Some(path) = &path {
            check_path(path).map_err(|message| {
                context.error(
                    props.get("Path").map_or(event_id.line, |n| n.line),
                    format!("{id}.{event_name}: {message}"),
                )
            })?;
        }
        match kind.as_str() {
            "HttpApi" => {
                let payload = match prop("PayloadFormatVersion")?.as_deref() {
                    None | Some("2.0") => Payload::V2,
                    Some("1.0") => Payload::V1,
                    Some(other) => {
                        return Err(context.error(event_id.line, format!("{id}.{event_name}: `PayloadFormatVersion: {other}`: 1.0 or 2.0")))
                    }
                };
                if path.is_none() && props.get("Method").is_some() {
                    return Err(context.error(event_id.line, format!("{id}.{event_name}: a `Method` without a `Path`")));
                }
                let stage = api_ref("ApiId")
                    .and_then(|api| stages.get(&api).cloned())
                    .unwrap_or_else(|| "$default".into());
                routes.push(ApiRoute {
                    api: ApiKind::Http(payload),
                    method: if path.is_some() { method } else { None },
                    path,
                    stage,
                    line: event_id.line,
                });
            }
            "Api" => {
                let Some(path) = path else {
                    return Err(context.error(event_id.line, format!("{id}.{event_name}: an `Api` event needs a `Path`")));
                };
                if props.get("Method").is_none() {
                    return Err(context.error(event_id.line, format!("{id}.{event_name}: an `Api` event needs a `Method`")));
                }
                let stage = api_ref("RestApiId")
                    .and_then(|api| stages.get(&api).cloned())
                    .unwrap_or_else(|| "Prod".into());
                routes.push(ApiRoute {
                    api: ApiKind::Rest,
                    method,
                    path: Some(path),
                    stage,
                    line: event_id.line,
                });
            }
            other => warnings.push(format!(
                "{}: {id}.{event_name}: event `Type: {other}`: not emulated (the function is callable through the Invoke API)",
                at(event_id.line)
            )),
        }
    }
    let spec = LambdaSpec {
        name: id.to_string(),
        program,
        args,
        dir,
        timeout: Duration::from_secs(timeout),
        memory_mb: u32::try_from(memory).unwrap_or(128),
        concurrency: u32::try_from(concurrency).unwrap_or(10),
        queue: 0,
        idle: Duration::from_secs(300),
        handler,
        env,
        language,
        shipped_client,
        runtime: Some(runtime),
    };
    crate::config::lambda::check_files(&spec)
        .map_err(|message| context.error(line, format!("{id}: {message}")))?;
    Ok(Some(SamFunction {
        spec,
        routes,
        function_url: url_config.is_some(),
        line,
    }))
}

/// A route path API Gateway accepts: `/`-rooted segments, each a literal,
/// `{name}`, or (last) `{name+}`.
fn check_path(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("`Path: {path}` must start with `/`"));
    };
    let segments: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            return Err(format!("`Path: {path}` has an empty segment"));
        }
        if let Some(inner) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let greedy = inner.ends_with('+');
            let name = inner.trim_end_matches('+');
            if name.is_empty() || name.contains(['{', '}']) {
                return Err(format!("`Path: {path}`: `{segment}` is not a parameter"));
            }
            if greedy && i + 1 != segments.len() {
                return Err(format!(
                    "`Path: {path}`: a greedy parameter `{segment}` must be last"
                ));
            }
        } else if segment.contains(['{', '}']) {
            return Err(format!(
                "`Path: {path}`: a parameter is a whole segment (`{segment}`)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A template in a fresh directory with a `fn/` code directory.
    fn load_text(text: &str, params: &[(&str, &str)]) -> Result<SamApp, TemplateError> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flexilib-sam-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::create_dir_all(dir.join("fn"));
        let _ = std::fs::write(dir.join("fn/bootstrap"), "");
        let template = dir.join("template.yaml");
        let _ = std::fs::write(&template, text);
        let spec = SamSpec {
            template,
            aws_clients: false,
            function: None,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        };
        let app = load(&spec);
        let _ = std::fs::remove_dir_all(&dir);
        app
    }

    const APP: &str = r#"Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
  Size:
    Type: Number
    Default: 256
Globals:
  Function:
    Timeout: 7
    Runtime: provided.al2023
    Handler: ignored
    Environment:
      Variables:
        STAGE: !Ref Stage
        SHARED: global
Resources:
  Api:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      MemorySize: !Ref Size
      ReservedConcurrentExecutions: 3
      Environment:
        Variables:
          SHARED: local
          ARN: !GetAtt Api.Arn
          URL: !Sub "https://${AWS::Region}.example/${Stage}/${!Literal}"
          JOINED: !Join ["-", [a, !Ref Stage]]
          LONG: {"Fn::Sub": "${Stage}-long"}
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: "/items/{id}", Method: get, PayloadFormatVersion: "1.0"}
        Rest:
          Type: Api
          Properties: {Path: /r, Method: ANY}
        Default:
          Type: HttpApi
        Queue:
          Type: SQS
          Properties: {Queue: !GetAtt Q.Arn}
  Q:
    Type: AWS::SQS::Queue
  Machine:
    Type: AWS::Serverless::StateMachine
"#;

    #[test]
    fn functions_globals_parameters_and_events() {
        let app = match load_text(APP, &[("Stage", "prod")]) {
            Ok(app) => app,
            Err(error) => panic!("{error}"),
        };
        let [function] = app.functions.as_slice() else {
            panic!("one function: {app:?}")
        };
        let spec = &function.spec;
        assert_eq!(spec.name, "Api");
        assert!(spec.program.ends_with("fn/bootstrap") && spec.args.is_empty());
        assert_eq!(spec.timeout, Duration::from_secs(7), "from Globals");
        assert_eq!((spec.memory_mb, spec.concurrency), (256, 3));
        let env: HashMap<_, _> = spec.env.iter().cloned().collect();
        assert_eq!(env["STAGE"], "prod", "param.Stage overrides the default");
        assert_eq!(env["SHARED"], "local", "the function's value wins");
        assert_eq!(
            env["ARN"],
            "arn:aws:lambda:us-east-1:123456789012:function:Api"
        );
        assert!(
            env["URL"].ends_with(".example/prod/${Literal}"),
            "{}",
            env["URL"]
        );
        assert_eq!(env["JOINED"], "a-prod");
        assert_eq!(env["LONG"], "prod-long");
        let routes: Vec<_> = function
            .routes
            .iter()
            .map(|r| (r.api, r.method.clone(), r.path.clone(), r.stage.clone()))
            .collect();
        assert_eq!(
            routes,
            [
                (
                    ApiKind::Http(Payload::V1),
                    Some("GET".into()),
                    Some("/items/{id}".into()),
                    "$default".into()
                ),
                (ApiKind::Rest, None, Some("/r".into()), "Prod".into()),
                (ApiKind::Http(Payload::V2), None, None, "$default".into()),
            ]
        );
        assert!(app.has_http_api);
        let warnings = app.warnings.join("\n");
        assert!(
            warnings.contains("template.yaml:41: Api.Queue: event `Type: SQS`: not emulated"),
            "{warnings}"
        );
        assert!(
            warnings.contains("AWS::Serverless::StateMachine: not emulated (Machine)"),
            "{warnings}"
        );
        assert!(
            warnings.contains("AWS::SQS::Queue: not emulated (Q)"),
            "{warnings}"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let error = |text: &str, params: &[(&str, &str)]| match load_text(text, params) {
            Ok(app) => panic!("expected an error: {app:?}"),
            Err(error) => (error.line, error.message),
        };
        let (line, message) = error("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n      Handler: !Ref Nope\n", &[]);
        assert_eq!(line, 6);
        assert!(
            message.contains("`Ref Nope`: no parameter or resource"),
            "{message}"
        );
        let (line, message) = error("Resources:\n  F:\n    Type: [unclosed\n", &[]);
        assert!(line >= 3, "{line}: {message}");
        let (line, message) = error("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: fn\n      Runtime: provided.al2\n      Events:\n        E:\n          Type: HttpApi\n          Properties: {Path: items, Method: GET}\n", &[]);
        assert_eq!(line, 10, "{message}");
        assert!(message.contains("must start with `/`"), "{message}");
        let (_, message) = error(APP, &[("Nope", "1")]);
        assert!(
            message.contains("declares no parameter `Nope`"),
            "{message}"
        );
        let (line, message) = error("Parameters:\n  P:\n    Type: String\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: !Ref P\n", &[]);
        assert_eq!(line, 8);
        assert!(message.contains("has no Default"), "{message}");
        let (line, message) = error("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: missing/\n      Runtime: provided.al2\n", &[]);
        assert_eq!(line, 2);
        assert!(message.contains("does not exist"), "{message}");
    }
}
