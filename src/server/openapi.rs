//! The OpenAPI document, generated from the handlers' annotations and the
//! types they exchange (utoipa), served at `/v1/openapi.json` and checked
//! in as `docs/openapi.json` (a test keeps the two equal).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api;
use super::metrics;
use super::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "lethe",
        description = "Submit erasures of departed members' personal data, follow them, and read their destruction records. Every endpoint but /healthz needs `Authorization: Bearer <token>`; a token's role (submit, operate, audit) decides what it may do. Errors are application/problem+json.",
        license(name = "Apache-2.0"),
    ),
    paths(
        api::submit,
        api::list,
        api::get_one,
        api::retry,
        api::cancel,
        api::record,
        api::register,
        api::openapi,
        metrics::metrics,
    ),
    components(schemas(Problem, api::SubmitBody, api::Accepted, api::RequestPage, api::Format)),
    modifiers(&BearerToken),
    security(("bearer" = [])),
    tags(
        (name = "erasures", description = "Submit and follow erasure requests"),
        (name = "records", description = "Destruction records and the register (audit)"),
        (name = "meta", description = "This document and metrics"),
    )
)]
struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON, with the crate's version.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut text = doc
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_checked_in_document_is_the_served_one() {
        let checked_in = include_str!("../../docs/openapi.json");
        assert!(
            checked_in == super::document(),
            "docs/openapi.json is out of date: run `cargo run -- serve --openapi > docs/openapi.json`"
        );
    }
}
