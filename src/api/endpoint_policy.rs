//! OS-ENDPOINT-POLICY (`keystone/api/policy.py` and `endpoints.py`): associations of a
//! stored policy with an endpoint, a service, or a service in a region, and the policy
//! an endpoint resolves to. Each route enforces, then loads every entity it names
//! (404 for the first one missing), as Keystone does.

use actix_web::{web, HttpResponse};
use serde_json::Value;

use super::error::ApiResult;
use super::kit::{collection, entity, no_content, resource, Caller, Links, Router, Target};
use super::AppState;
use crate::model::PolicyTarget;
use actix_web::http::StatusCode;

/// Which association a route names, and the checks that its entities exist.
async fn load(state: &AppState, policy_id: &str, target: &PolicyTarget) -> ApiResult<()> {
    state.policies.get(policy_id).await?;
    match target {
        PolicyTarget::Endpoint(e) => {
            state.catalog.get_endpoint(e).await?;
        }
        PolicyTarget::Service(s) => {
            state.catalog.get_service(s).await?;
        }
        PolicyTarget::ServiceInRegion {
            service_id,
            region_id,
        } => {
            state.catalog.get_service(service_id).await?;
            state.catalog.get_region(region_id).await?;
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Op {
    Check,
    Create,
    Delete,
}

fn action(op: Op, target: &PolicyTarget) -> &'static str {
    match (op, target) {
        (Op::Check, PolicyTarget::Endpoint(_)) => "identity:check_policy_association_for_endpoint",
        (Op::Create, PolicyTarget::Endpoint(_)) => {
            "identity:create_policy_association_for_endpoint"
        }
        (Op::Delete, PolicyTarget::Endpoint(_)) => {
            "identity:delete_policy_association_for_endpoint"
        }
        (Op::Check, PolicyTarget::Service(_)) => "identity:check_policy_association_for_service",
        (Op::Create, PolicyTarget::Service(_)) => "identity:create_policy_association_for_service",
        (Op::Delete, PolicyTarget::Service(_)) => "identity:delete_policy_association_for_service",
        (Op::Check, PolicyTarget::ServiceInRegion { .. }) => {
            "identity:check_policy_association_for_region_and_service"
        }
        (Op::Create, PolicyTarget::ServiceInRegion { .. }) => {
            "identity:create_policy_association_for_region_and_service"
        }
        (Op::Delete, PolicyTarget::ServiceInRegion { .. }) => {
            "identity:delete_policy_association_for_region_and_service"
        }
    }
}

async fn run(
    caller: Caller,
    state: web::Data<AppState>,
    op: Op,
    policy_id: &str,
    target: PolicyTarget,
) -> ApiResult<HttpResponse> {
    caller.enforce(action(op, &target), Target::none())?;
    load(&state, policy_id, &target).await?;
    let ep = &state.endpoint_policy;
    match op {
        Op::Check => ep.check(policy_id, &target).await?,
        Op::Create => ep.associate(policy_id, &target).await?,
        Op::Delete => ep.unassociate(policy_id, &target).await?,
    }
    Ok(no_content())
}

fn endpoint_target(path: &(String, String)) -> PolicyTarget {
    PolicyTarget::Endpoint(path.1.clone())
}

fn service_target(path: &(String, String)) -> PolicyTarget {
    PolicyTarget::Service(path.1.clone())
}

fn region_target(path: &(String, String, String)) -> PolicyTarget {
    PolicyTarget::ServiceInRegion {
        service_id: path.1.clone(),
        region_id: path.2.clone(),
    }
}

macro_rules! handlers {
    ($check:ident, $create:ident, $delete:ident, $path:ty, $target:ident) => {
        async fn $check(
            caller: Caller,
            path: web::Path<$path>,
            state: web::Data<AppState>,
        ) -> ApiResult<HttpResponse> {
            run(caller, state, Op::Check, &path.0, $target(&path)).await
        }
        async fn $create(
            caller: Caller,
            path: web::Path<$path>,
            state: web::Data<AppState>,
        ) -> ApiResult<HttpResponse> {
            run(caller, state, Op::Create, &path.0, $target(&path)).await
        }
        async fn $delete(
            caller: Caller,
            path: web::Path<$path>,
            state: web::Data<AppState>,
        ) -> ApiResult<HttpResponse> {
            run(caller, state, Op::Delete, &path.0, $target(&path)).await
        }
    };
}

handlers!(
    check_endpoint,
    create_endpoint,
    delete_endpoint,
    (String, String),
    endpoint_target
);
handlers!(
    check_service,
    create_service,
    delete_service,
    (String, String),
    service_target
);
handlers!(
    check_region,
    create_region,
    delete_region,
    (String, String, String),
    region_target
);

/// `GET /v3/policies/{id}/OS-ENDPOINT-POLICY/endpoints`.
async fn endpoints_for_policy(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:list_endpoints_for_policy", Target::none())?;
    state.policies.get(&path).await?;
    let shown = state
        .endpoint_policy
        .endpoints_for_policy(&path)
        .await?
        .iter()
        .map(|e| {
            // Keystone lists these as stored, without the legacy `region` attribute
            // /v3/endpoints adds.
            let mut v = super::endpoints::render(&links, e);
            if let Some(m) = v.as_object_mut() {
                m.remove("region");
            }
            v
        })
        .collect();
    Ok(collection(&links, "endpoints", shown, None))
}

/// `GET /v3/endpoints/{id}/OS-ENDPOINT-POLICY/policy`. Keystone's self link names the
/// policy's id under `/v3/endpoints` (it wraps the member with that collection name).
async fn policy_for_endpoint(
    caller: Caller,
    links: Links,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    caller.enforce("identity:get_policy_for_endpoint", Target::none())?;
    state.catalog.get_endpoint(&path).await?;
    let policy = state.endpoint_policy.policy_for_endpoint(&path).await?;
    let mut body = super::policies::render(&links, &policy);
    if let Value::Object(m) = &mut body {
        m.insert("links".into(), links.entity("endpoints", &policy.id));
    }
    Ok(entity(StatusCode::OK, "policy", body))
}

pub fn routes(r: &mut Router) {
    r.add(
        resource("/v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints").get(endpoints_for_policy),
    )
    .add(
        resource("/v3/policies/{policy_id}/OS-ENDPOINT-POLICY/endpoints/{endpoint_id}")
            .get(check_endpoint)
            .put(create_endpoint)
            .delete(delete_endpoint),
    )
    .add(
        resource("/v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}")
            .get(check_service)
            .put(create_service)
            .delete(delete_service),
    )
    .add(
        resource(
            "/v3/policies/{policy_id}/OS-ENDPOINT-POLICY/services/{service_id}/regions/{region_id}",
        )
        .get(check_region)
        .put(create_region)
        .delete(delete_region),
    )
    .add(
        resource("/v3/endpoints/{endpoint_id}/OS-ENDPOINT-POLICY/policy").get(policy_for_endpoint),
    );
}
