//! The OpenAPI document served at `/v1/openapi.json`: generated from the routes' annotations
//! and the protocol's types (utoipa), with the error codes taken from [`ErrorCode`].

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr};
use utoipa::{Modify, OpenApi as _};
use zkinfer_protocol::{ErrorBody, ErrorCode, ErrorDetail};

/// A proof file's bytes (`application/octet-stream`).
pub struct ProofFile;

impl utoipa::PartialSchema for ProofFile {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("binary".into())))
            .description(Some("A zkinfer proof file (design.md §1.4)"))
            .into()
    }
}

impl utoipa::ToSchema for ProofFile {}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        let header = |name: &str, what: &str| SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, what)));
        c.add_security_scheme("api_key", header("x-api-key", "A customer's API key"));
        c.add_security_scheme("executor_address", header(zkinfer_protocol::auth::EXECUTOR, "The executor's address"));
        c.add_security_scheme("executor_nonce", header(zkinfer_protocol::auth::NONCE, "A nonce above every earlier one of this executor"));
        c.add_security_scheme(
            "executor_signature",
            header(
                zkinfer_protocol::auth::SIGNATURE,
                "EIP-191 signature by the executor's key over method, path, SHA-256 of the body and nonce (zkinfer_protocol::auth)",
            ),
        );
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "zkinfer coordinator",
        description = "The proving market: customers submit jobs (plain or HPKE-sealed inputs, paid through the on-chain escrow); executors claim, prove and deliver; jobs settle when the escrow's payment event is seen. Errors are {\"error\": {\"code\", \"message\"}} with a stable code."
    ),
    components(schemas(ErrorBody, ErrorDetail, ErrorCode)),
    modifiers(&Security),
    tags(
        (name = "jobs", description = "Customers' jobs"),
        (name = "executors", description = "Executors: registration, claims, delivery"),
        (name = "models", description = "Models served"),
        (name = "meta", description = "Metrics and this document"),
    )
)]
struct ApiDoc;

/// Answers any route can give besides its own: a fault, a timeout, an oversized body.
fn add_common_responses(op: &mut Operation, has_body: bool) {
    let error = || {
        ResponseBuilder::new().content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
    };
    let mut add = |status: &str, what: &str| {
        op.responses.responses.entry(status.to_string()).or_insert_with(|| error().description(what).build().into());
    };
    add("500", "internal: a fault at the coordinator (logged there)");
    add("503", "timeout: the request took too long; retry");
    if has_body {
        add("413", "body_too_large");
    }
}

/// The whole document.
pub fn document() -> OpenApi {
    let (_, paths) = crate::routes::api_router().split_for_parts();
    let mut doc = ApiDoc::openapi().merge_from(paths);
    for item in doc.paths.paths.values_mut() {
        for (op, body) in [(&mut item.get, false), (&mut item.post, true)] {
            if let Some(op) = op.as_mut() {
                add_common_responses(op, body);
            }
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_its_schemas_and_every_error_code_is_listed() {
        let doc = serde_json::to_value(document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for route in [
            "/v1/jobs",
            "/v1/jobs/{id}",
            "/v1/jobs/{id}/proof",
            "/v1/jobs/{id}/start",
            "/v1/jobs/{id}/heartbeat",
            "/v1/jobs/{id}/fail",
            "/v1/executors",
            "/v1/executors/{address}/register",
            "/v1/executors/{address}/claim",
            "/v1/models",
            "/v1/models/{id}/artifact",
            "/metrics",
        ] {
            assert!(paths.contains_key(route), "{route} missing from {:?}", paths.keys());
        }
        assert!(doc["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("SubmitJob")));
        let codes: Vec<String> =
            doc["components"]["schemas"]["ErrorCode"]["enum"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
        assert_eq!(codes, ErrorCode::ALL.map(|c| c.as_str().to_string()));
        for schema in ["JobView", "Lease", "ExecutorInfo", "Submitted", "Commitment", "ExecutorId"] {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
        }
    }
}
