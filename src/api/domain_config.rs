//! /v3/domains/{id}/config and /v3/domains/config/default, `.../config/{group}/default`,
//! `.../config/{group}/{option}/default` (`keystone/api/domains.py`):
//! a domain's `identity`/`ldap` options. Every route enforces before it looks at the
//! body; GET enforces even for an unknown domain and reports it last, as Keystone does
//! so as not to leak which domains exist.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{Map, Value};

use super::error::ApiResult;
use super::kit::input::JsonBody;
use super::kit::{entity, json_response, no_content, resource, Caller, Router, Target};
use super::AppState;

/// `request_body_json.get('config', {})`.
fn config_body(json: JsonBody) -> Value {
    json.0
        .get("config")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()))
}

fn config_response(status: StatusCode, config: Map<String, Value>) -> HttpResponse {
    entity(status, "config", Value::Object(config))
}

async fn show(
    caller: Caller,
    state: &AppState,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> ApiResult<HttpResponse> {
    let domain = state.resource.get_domain(domain_id).await;
    let config = if group == Some("security_compliance") {
        caller.enforce(
            "identity:get_security_compliance_domain_config",
            Target::none(),
        )?;
        state
            .domain_config
            .security_compliance(domain_id, option, None, None)?
    } else {
        caller.enforce("identity:get_domain_config", Target::none())?;
        state.domain_config.get(domain_id, group, option).await?
    };
    domain?;
    Ok(config_response(StatusCode::OK, config))
}

async fn update(
    caller: Caller,
    state: &AppState,
    json: JsonBody,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:update_domain_config", Target::none())?;
    state.resource.get_domain(domain_id).await?;
    let config = state
        .domain_config
        .update(domain_id, &config_body(json), group, option)
        .await?;
    Ok(config_response(StatusCode::OK, config))
}

async fn delete(
    caller: Caller,
    state: &AppState,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:delete_domain_config", Target::none())?;
    state.resource.get_domain(domain_id).await?;
    state.domain_config.delete(domain_id, group, option).await?;
    Ok(no_content())
}

async fn create_config(
    caller: Caller,
    json: JsonBody,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:create_domain_config", Target::none())?;
    state.resource.get_domain(&path).await?;
    let existed = state.domain_config.has_config(&path).await?;
    let config = state
        .domain_config
        .create(&path, &config_body(json))
        .await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(config_response(status, config))
}

async fn get_config(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    show(caller, &state, &path, None, None).await
}

async fn get_group(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    show(caller, &state, &path.0, Some(&path.1), None).await
}

async fn get_option(
    caller: Caller,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    show(caller, &state, &path.0, Some(&path.1), Some(&path.2)).await
}

async fn update_config(
    caller: Caller,
    json: JsonBody,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    update(caller, &state, json, &path, None, None).await
}

async fn update_group(
    caller: Caller,
    json: JsonBody,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    update(caller, &state, json, &path.0, Some(&path.1), None).await
}

async fn update_option(
    caller: Caller,
    json: JsonBody,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    update(caller, &state, json, &path.0, Some(&path.1), Some(&path.2)).await
}

async fn delete_config(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    delete(caller, &state, &path, None, None).await
}

async fn delete_group(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    delete(caller, &state, &path.0, Some(&path.1), None).await
}

async fn delete_option(
    caller: Caller,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    delete(caller, &state, &path.0, Some(&path.1), Some(&path.2)).await
}

fn defaults(
    caller: &Caller,
    state: &AppState,
    group: Option<&str>,
    option: Option<&str>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:get_domain_config_default", Target::none())?;
    let config = state.domain_config.defaults(group, option)?;
    let mut body = Map::new();
    body.insert("config".into(), Value::Object(config));
    Ok(json_response(StatusCode::OK, &Value::Object(body)))
}

async fn default_config(caller: Caller, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    defaults(&caller, &state, None, None)
}

async fn default_group(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    defaults(&caller, &state, Some(&path), None)
}

async fn default_option(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    defaults(&caller, &state, Some(&path.0), Some(&path.1))
}

pub fn routes(r: &mut Router) {
    r.add(resource("/v3/domains/config/default").get(default_config))
        .add(resource("/v3/domains/config/{group}/default").get(default_group))
        .add(resource("/v3/domains/config/{group}/{option}/default").get(default_option))
        .add(
            resource("/v3/domains/{domain_id}/config")
                .get(get_config)
                .put(create_config)
                .patch(update_config)
                .delete(delete_config),
        )
        .add(
            resource("/v3/domains/{domain_id}/config/{group}")
                .get(get_group)
                .patch(update_group)
                .delete(delete_group),
        )
        .add(
            resource("/v3/domains/{domain_id}/config/{group}/{option}")
                .get(get_option)
                .patch(update_option)
                .delete(delete_option),
        );
}
