//! The OpenAPI document tells the whole truth about errors: every operation lists each
//! problem status the service can answer it with (a handler's own, and those of the layers
//! around every handler: authentication, role checks, bad input, limits, timeouts, the
//! store), each as `application/problem+json` with the `Problem` schema. Handlers declare
//! their success answers and specific refusals; this adds the rest, once, for all routes.

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr};

/// The content type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Add the error answers every operation can give, and make every declared error answer
/// `application/problem+json`.
pub fn document_errors(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        if let Some(get) = &mut item.get {
            complete(get, true);
        }
        for operation in [
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            complete(operation, false);
        }
    }
}

fn complete(operation: &mut Operation, is_read: bool) {
    let public = operation.security.as_ref().is_some_and(|requirements| {
        requirements
            .iter()
            .all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
    });
    let has_path_params = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| serde_json::to_value(p).is_ok_and(|v| v["in"] == "path"));
    let has_body = operation.request_body.is_some();
    let mut statuses: Vec<(&str, &str)> = vec![
        (
            "414",
            "The request target is longer than 8 KiB (`uri_too_long`).",
        ),
        (
            "422",
            "Bad input (`validation_failed` naming the `field`, or a refusal of the input itself).",
        ),
        (
            "503",
            "The store is unavailable or the request took too long; retry after `Retry-After`.",
        ),
    ];
    if !public {
        statuses.push((
            "401",
            "No, or an unknown, bearer token (`unauthenticated`).",
        ));
        statuses.push(("403", "The caller's role may never do this (`forbidden`)."));
    }
    if has_path_params || !public {
        statuses.push((
            "404",
            "Not found, or not the caller's to see (`*_not_found`).",
        ));
    }
    if !public && !is_read {
        statuses.push((
            "409",
            "A domain rule refuses the command in the current state (its stable `code`), \
             or an idempotency key conflicts.",
        ));
    }
    if has_body {
        statuses.push((
            "408",
            "The body did not arrive in time (`request_timeout`).",
        ));
        statuses.push((
            "413",
            "The body is larger than 1 MiB (`payload_too_large`).",
        ));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in statuses {
        responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(problem(description)));
    }
    for (status, response) in responses.iter_mut() {
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        if let RefOr::T(response) = response {
            as_problem(response);
        }
    }
}

fn problem(description: &str) -> Response {
    let mut response = ResponseBuilder::new().description(description).build();
    as_problem(&mut response);
    response
}

/// Error answers carry `application/problem+json` with the `Problem` schema.
fn as_problem(response: &mut Response) {
    response.content.shift_remove("application/json");
    response.content.insert(
        PROBLEM_JSON.to_string(),
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
}

/// What every text value of a request may hold (see `leadroute_app::input`): no control character
/// but tab, line feed and carriage return, at most 20,000 characters.
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$";

/// State the limits every JSON text obeys on each string schema of the document that has
/// no format, enumeration or pattern of its own (the `Problem` schema aside, which the
/// service writes).
pub fn constrain_text(document: &mut serde_json::Value) {
    use serde_json::Value;
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                let is_string = match map.get("type") {
                    Some(Value::String(t)) => t == "string",
                    Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                    _ => false,
                };
                let free = ["format", "enum", "pattern", "const"]
                    .iter()
                    .all(|k| !map.contains_key(*k));
                if is_string && free {
                    map.insert("pattern".into(), TEXT_PATTERN.into());
                    map.entry("maxLength")
                        .or_insert_with(|| leadroute_domain::limits::MAX_TEXT_CHARS.into());
                }
                for (key, child) in map.iter_mut() {
                    if key != "example" && key != "examples" {
                        walk(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let problem = document
        .pointer_mut("/components/schemas/Problem")
        .map(std::mem::take);
    walk(document);
    if let (Some(problem), Some(slot)) =
        (problem, document.pointer_mut("/components/schemas/Problem"))
    {
        *slot = problem;
    }
}
