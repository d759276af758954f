//! Request bodies: Keystone's content-type rule, its size limit, its JSON error text.
//! Read by hand rather than with actix's `Json` so every failure is a Keystone-shaped 4xx.

use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use super::error::{invalid_json, ApiError, ApiResult};

/// Reads the whole body (at most `limit` bytes) and parses it as a JSON object.
pub async fn json_object(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> ApiResult<serde_json::Map<String, serde_json::Value>> {
    if let Some(ct) = req.headers().get(actix_web::http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").trim();
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !essence.is_empty() && essence != "application/json" {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(ApiError::PayloadTooLarge);
        }
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| invalid_json())?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::BadRequest(
            "Invalid input for field '/': the request body must be a JSON object.".into(),
        )),
        Err(_) => Err(invalid_json()),
    }
}
