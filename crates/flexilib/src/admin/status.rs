//! `/status`: the routes, their targets and the config generation, as JSON.

use serde_json::{json, Value};

use super::AdminState;

/// The document `/status` answers.
pub fn json(state: &AdminState) -> Value {
    let server = &state.server;
    let routes = server.routes.load_full();
    let rows: Vec<Value> = routes
        .routes()
        .iter()
        .map(|route| {
            json!({
                "key": route.key,
                "line": route.line,
                "kind": route.kind,
                "target": route.target_description(),
            })
        })
        .collect();
    json!({
        "state": server.metrics.lifecycle().name(),
        "config": state.config_path.display().to_string(),
        "config_generation": routes.generation,
        "config_reloads": server.metrics.config_reloads(),
        "config_reload_failures": server.metrics.config_reload_failures(),
        "open_connections": state.open.count(),
        "routes": rows,
    })
}
