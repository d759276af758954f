//! OS-OAUTH1 (`keystone/api/os_oauth1.py` and the access-token routes of
//! `keystone/api/users.py`): consumers, request tokens, authorization, access tokens.
//! The two token endpoints are not behind a Keystone token: they are authenticated by
//! the consumer's OAuth signature and answer form-encoded bodies.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::kit::caller::header;
use super::kit::input::JsonBody;
use super::kit::input::{
    bounded_string, extra_attrs, invalid, name_attr, normalize_keys, valid_id,
};
use super::kit::{collection, entity, no_content, resource, Caller, Links, Router, Target};
use super::AppState;
use crate::error::Error;
use crate::model::{AccessToken, Consumer, Role};
use crate::oauth1::signature::SignedRequest;
use crate::oauth1::{access_token_not_found, isotime_us, RoleSpec};

/// Consumer attributes that are not `extra`.
const KNOWN: &[&str] = &["id", "description", "secret", "links"];

/// The request as the client signed it: `url` is the base string URI's input.
pub fn signed_request(req: &HttpRequest, url: String) -> SignedRequest {
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    // Keystone hands oauthlib the query arguments as the body, which oauthlib reads
    // only when the request says it is form-encoded.
    let form = match header(req, "Content-Type") {
        Some(ct) if ct.contains("application/x-www-form-urlencoded") => query.clone(),
        _ => Vec::new(),
    };
    SignedRequest {
        method: req.method().as_str().to_string(),
        url,
        authorization: header(req, "Authorization").map(str::to_string),
        query,
        form,
    }
}

/// Keystone's `_update_url_scheme`: the URL the client used (its Host header and
/// path), with the scheme of Keystone's base URL.
fn client_url(req: &HttpRequest, links: &Links) -> String {
    let base = links.at("");
    let scheme = base.split("://").next().unwrap_or("http");
    let host = header(req, "Host")
        .map(str::to_string)
        .unwrap_or_else(|| req.connection_info().host().to_string());
    format!("{scheme}://{host}{}", req.path())
}

fn form_response(body: String) -> HttpResponse {
    HttpResponse::build(StatusCode::CREATED)
        .content_type("application/x-www-form-urlencoded")
        .body(body)
}

fn token_form(id: &str, secret: &str, expires_at: Option<i64>) -> String {
    let mut out = format!("oauth_token={id}&oauth_token_secret={secret}");
    if let Some(e) = expires_at {
        out.push_str(&format!("&oauth_expires_at={}", isotime_us(e)));
    }
    out
}

fn render_consumer(links: &Links, c: &Consumer, with_secret: bool) -> Value {
    let mut m = Map::new();
    for (k, v) in &c.extra {
        m.insert(k.clone(), v.clone());
    }
    m.insert("id".into(), json!(c.id));
    m.insert("description".into(), json!(c.description));
    if with_secret {
        m.insert("secret".into(), json!(c.secret));
    }
    m.insert("links".into(), links.entity("OS-OAUTH1/consumers", &c.id));
    Value::Object(m)
}

/// `(get_json() or {}).get('consumer', {})`.
fn consumer_body(json: JsonBody) -> ApiResult<Map<String, Value>> {
    match json.0.get("consumer") {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(invalid(
            "consumer",
            &format!("{other} is not of type 'object'"),
        )),
    }
}

pub async fn list_consumers(
    caller: Caller,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_consumers", Target::none())?;
    let items = state
        .oauth1
        .list_consumers()
        .await?
        .iter()
        .map(|c| render_consumer(&links, c, false))
        .collect();
    Ok(collection(&links, "consumers", items, None))
}

pub async fn create_consumer(
    caller: Caller,
    links: Links,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:create_consumer", Target::none())?;
    let body = normalize_keys(&consumer_body(json)?);
    let description = bounded_string(&body, "description", true, 0, usize::MAX)?.flatten();
    let created = state
        .oauth1
        .create_consumer(description, extra_attrs(&body, KNOWN))
        .await?;
    Ok(entity(
        StatusCode::CREATED,
        "consumer",
        render_consumer(&links, &created, true),
    ))
}

pub async fn get_consumer(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:get_consumer", Target::none())?;
    let c = state.oauth1.get_consumer(&path).await?;
    Ok(entity(
        StatusCode::OK,
        "consumer",
        render_consumer(&links, &c, false),
    ))
}

pub async fn update_consumer(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:update_consumer", Target::none())?;
    let body = consumer_body(json)?;
    let description = bounded_string(&body, "description", true, 0, usize::MAX)?;
    if body.contains_key("secret") {
        return Err(invalid(
            "consumer",
            &format!(
                "{} should not be valid under {{'required': ['secret']}}",
                Value::Object(body.clone())
            ),
        ));
    }
    if body.is_empty() {
        return Err(invalid("consumer", "{} does not have enough properties"));
    }
    let body = normalize_keys(&body);
    if body
        .get("id")
        .is_some_and(|id| !id.is_null() && id.as_str() != Some(path.as_str()))
    {
        return Err(Error::validation("Cannot change ID").into());
    }
    let updated = state
        .oauth1
        .update_consumer(&path, description, extra_attrs(&body, KNOWN))
        .await?;
    Ok(entity(
        StatusCode::OK,
        "consumer",
        render_consumer(&links, &updated, false),
    ))
}

pub async fn delete_consumer(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:delete_consumer", Target::none())?;
    state.oauth1.delete_consumer(&path).await?;
    Ok(no_content())
}

/// `POST /v3/OS-OAUTH1/request_token` (no Keystone token: the consumer signs it).
pub async fn request_token(
    req: HttpRequest,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let signed = signed_request(&req, client_url(&req, &links));
    let project = header(&req, "Requested-Project-Id");
    let token = state.oauth1.create_request_token(&signed, project).await?;
    Ok(form_response(token_form(
        &token.id,
        &token.request_secret,
        token.expires_at,
    )))
}

/// `POST /v3/OS-OAUTH1/access_token` (signed with the request token).
pub async fn access_token(
    req: HttpRequest,
    links: Links,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let signed = signed_request(&req, client_url(&req, &links));
    let token = state.oauth1.create_access_token(&signed).await?;
    Ok(form_response(token_form(
        &token.id,
        &token.access_secret,
        token.expires_at,
    )))
}

/// `request_token_authorize`: an array of objects with exactly one of `id`, `name`.
fn parse_roles(v: &Value) -> ApiResult<Vec<RoleSpec>> {
    let Value::Array(items) = v else {
        return Err(invalid("roles", &format!("{v} is not of type 'array'")));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{i}");
        let Value::Object(o) = item else {
            return Err(invalid(&path, &format!("{item} is not of type 'object'")));
        };
        if let Some(extra) = o.keys().find(|k| *k != "id" && *k != "name") {
            return Err(invalid(
                &path,
                &format!("Additional properties are not allowed ('{extra}' was unexpected)"),
            ));
        }
        if o.is_empty() {
            return Err(invalid(&path, "{} does not have enough properties"));
        }
        if o.len() > 1 {
            return Err(invalid(&path, &format!("{item} has too many properties")));
        }
        match (o.get("id"), o.get("name")) {
            (Some(Value::String(id)), _) if id.chars().count() <= 64 && valid_id(id) => {
                out.push(RoleSpec::Id(id.clone()))
            }
            (Some(other), _) => {
                return Err(invalid(
                    &format!("{i}/id"),
                    &format!("{other} is not a valid id string"),
                ))
            }
            (None, Some(_)) => match name_attr(o, "name", 255)? {
                Some(name) if !name.is_empty() => out.push(RoleSpec::Name(name)),
                _ => return Err(invalid(&format!("{i}/name"), "'' is too short")),
            },
            (None, None) => return Err(invalid(&path, "{} does not have enough properties")),
        }
    }
    Ok(out)
}

/// `PUT /v3/OS-OAUTH1/authorize/{request_token_id}`.
pub async fn authorize(
    caller: Caller,
    path: web::Path<String>,
    json: JsonBody,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:authorize_request_token", Target::none())?;
    let roles = match json.0.get("roles") {
        None => Vec::new(),
        Some(v) => parse_roles(v)?,
    };
    caller
        .refuse_delegated("Cannot authorize a request token with a token issued via delegation.")?;
    let verifier = state
        .oauth1
        .authorize_request_token(&path, &caller.user.id, &roles)
        .await?;
    Ok(super::kit::json_response(
        StatusCode::OK,
        &json!({"token": {"oauth_verifier": verifier}}),
    ))
}

/// Keystone's `_block_delegated_token` for the access-token routes.
fn block_delegated(caller: &Caller) -> ApiResult<()> {
    caller.refuse_delegated("Cannot manage OAuth access tokens with a token issued via delegation.")
}

/// `_format_token_entity` with its links; the secret and role ids are never shown.
fn render_access_token(links: &Links, t: &AccessToken) -> Value {
    let base = format!(
        "/v3/users/{}/OS-OAUTH1/access_tokens/{}",
        t.authorizing_user_id, t.id
    );
    json!({
        "id": t.id,
        "authorizing_user_id": t.authorizing_user_id,
        "project_id": t.project_id,
        "consumer_id": t.consumer_id,
        "expires_at": t.expires_at.map(isotime_us),
        "links": {
            "self": links.at(&base),
            "roles": links.at(&format!("{base}/roles")),
        },
    })
}

/// `_format_role_entity`: the role without its description, with its link.
fn render_role(links: &Links, r: &Role) -> Value {
    let mut m = super::roles::role_fields(r);
    m.remove("description");
    m.insert("links".into(), links.entity("roles", &r.id));
    Value::Object(m)
}

/// The access token of `user_id`, else 404.
async fn owned(state: &AppState, user_id: &str, id: &str) -> ApiResult<AccessToken> {
    match state.oauth1.find_access_token(id).await? {
        Some(t) if t.authorizing_user_id == user_id => Ok(t),
        Some(_) => Err(Error::not_found(format!("Could not find access token: {id}.")).into()),
        None => Err(access_token_not_found().into()),
    }
}

pub async fn list_access_tokens(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let user_id = path.into_inner();
    caller.enforce(
        "identity:list_access_tokens",
        Target::none().arg("user_id", &user_id),
    )?;
    block_delegated(&caller)?;
    let items = state
        .oauth1
        .list_access_tokens(&user_id)
        .await?
        .iter()
        .map(|t| render_access_token(&links, t))
        .collect();
    Ok(collection(&links, "access_tokens", items, None))
}

pub async fn get_access_token(
    caller: Caller,
    links: Links,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (user_id, id) = path.into_inner();
    caller.enforce(
        "identity:get_access_token",
        Target::none().arg("user_id", &user_id),
    )?;
    block_delegated(&caller)?;
    let t = owned(&state, &user_id, &id).await?;
    Ok(entity(
        StatusCode::OK,
        "access_token",
        render_access_token(&links, &t),
    ))
}

/// Keystone 30 enforces `identity:ec2_delete_credential` here (not
/// `identity:delete_access_token`), with no credential in the target.
pub async fn delete_access_token(
    caller: Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (user_id, id) = path.into_inner();
    caller.enforce(
        "identity:ec2_delete_credential",
        Target::none().arg("user_id", &user_id),
    )?;
    block_delegated(&caller)?;
    state.oauth1.delete_access_token(&user_id, &id).await?;
    Ok(no_content())
}

pub async fn list_access_token_roles(
    caller: Caller,
    links: Links,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (user_id, id) = path.into_inner();
    caller.enforce(
        "identity:list_access_token_roles",
        Target::none().arg("user_id", &user_id),
    )?;
    let t = owned(&state, &user_id, &id).await?;
    let items = state
        .oauth1
        .roles_by_id(&t.role_ids)
        .await?
        .iter()
        .map(|r| render_role(&links, r))
        .collect();
    Ok(collection(&links, "roles", items, None))
}

pub async fn get_access_token_role(
    caller: Caller,
    links: Links,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let (user_id, id, role_id) = path.into_inner();
    caller.enforce(
        "identity:get_access_token_role",
        Target::none().arg("user_id", &user_id),
    )?;
    let t = state
        .oauth1
        .find_access_token(&id)
        .await?
        .ok_or_else(|| ApiError::from(access_token_not_found()))?;
    if t.authorizing_user_id != user_id {
        return Err(Error::unauthorized("User IDs do not match").into());
    }
    let role_not_found =
        || ApiError::from(Error::not_found(format!("Could not find role: {role_id}.")));
    if !t.role_ids.contains(&role_id) {
        return Err(role_not_found());
    }
    let role = state
        .oauth1
        .roles_by_id(std::slice::from_ref(&role_id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(role_not_found)?;
    Ok(entity(StatusCode::OK, "role", render_role(&links, &role)))
}

pub fn routes(r: &mut Router) {
    r.add(
        resource("/v3/OS-OAUTH1/consumers")
            .get(list_consumers)
            .post(create_consumer),
    )
    .add(
        resource("/v3/OS-OAUTH1/consumers/{consumer_id}")
            .get(get_consumer)
            .patch(update_consumer)
            .delete(delete_consumer),
    )
    .add(resource("/v3/OS-OAUTH1/request_token").post(request_token))
    .add(resource("/v3/OS-OAUTH1/access_token").post(access_token))
    .add(resource("/v3/OS-OAUTH1/authorize/{request_token_id}").put(authorize))
    .add(resource("/v3/users/{user_id}/OS-OAUTH1/access_tokens").get(list_access_tokens))
    .add(
        resource("/v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}")
            .get(get_access_token)
            .delete(delete_access_token),
    )
    .add(
        resource("/v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}/roles")
            .get(list_access_token_roles),
    )
    .add(
        resource("/v3/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}/roles/{role_id}")
            .get(get_access_token_role),
    );
}
