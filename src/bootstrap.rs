//! `keystone-rs bootstrap`: the effects of `keystone-manage bootstrap`, idempotent.
//!
//! Creates the default domain, the admin project and user, the roles
//! admin -> manager -> member -> reader (implied chain) plus `service`, grants the
//! admin role on the project and on the system, and registers the identity service
//! with its endpoints. Running it again changes nothing except a changed password
//! or endpoint URL, which it updates (as Keystone does).

use crate::catalog::{EndpointFilters, EndpointPatch};
use crate::error::{Error, Result};
use crate::identity::UserRef;
use crate::model::{
    new_id, ActorKind, Assignment, Domain, Endpoint, Region, Role, Service, TargetKind, User,
    SYSTEM_TARGET,
};
use crate::resource::NewProject;
use crate::services::Services;

#[derive(Clone)]
pub struct BootstrapOptions {
    pub username: String,
    pub password: String,
    pub project_name: String,
    pub role_name: String,
    pub service_name: String,
    pub region_id: Option<String>,
    pub admin_url: Option<String>,
    pub public_url: Option<String>,
    pub internal_url: Option<String>,
}

impl std::fmt::Debug for BootstrapOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapOptions")
            .field("username", &self.username)
            .field("project_name", &self.project_name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub struct BootstrapReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub user_id: String,
    pub project_id: String,
}

/// A duplicate is what an idempotent step expects on a second run.
fn ignore_conflict(r: Result<()>) -> Result<()> {
    match r {
        Err(Error::Conflict { .. }) => Ok(()),
        other => other,
    }
}

/// Every step goes through the services, with their rules, like any other caller.
pub async fn bootstrap(services: &Services, o: &BootstrapOptions) -> Result<BootstrapReport> {
    let mut report = BootstrapReport::default();
    let domain_id = services.settings.identity.default_domain_id.clone();
    if services
        .resource
        .find_domain(Some(&domain_id), None)
        .await?
        .is_none()
    {
        services
            .resource
            .create_domain(Domain {
                id: domain_id.clone(),
                name: "Default".into(),
                description: "The default domain".into(),
                enabled: true,
                extra: Default::default(),
            })
            .await?;
        report.created.push(format!("domain {domain_id}"));
    }
    let project_id = match services
        .resource
        .find_project_by_name(&domain_id, &o.project_name)
        .await?
    {
        Some(p) => p.id,
        None => {
            let view = services
                .resource
                .create_project(NewProject {
                    id: new_id(),
                    name: o.project_name.clone(),
                    domain_id: domain_id.clone(),
                    parent_id: None,
                    description: "Bootstrap project for initializing the cloud.".into(),
                    enabled: true,
                    extra: Default::default(),
                    tags: Vec::new(),
                })
                .await?;
            report.created.push(format!("project {}", o.project_name));
            view.id().to_string()
        }
    };
    report.project_id = project_id.clone();

    let mut roles = std::collections::HashMap::new();
    let mut names = vec!["admin", "manager", "member", "reader", "service"];
    if !names.contains(&o.role_name.as_str()) {
        names.push(o.role_name.as_str());
    }
    for name in names {
        let found = services.assignment.list_roles(Some(name), None).await?;
        let role = match found.into_iter().next() {
            Some(r) => r,
            None => {
                let r = services
                    .assignment
                    .create_role(Role {
                        id: new_id(),
                        name: name.to_string(),
                        domain_id: None,
                        description: String::new(),
                        extra: Default::default(),
                    })
                    .await?;
                report.created.push(format!("role {name}"));
                r
            }
        };
        roles.insert(name.to_string(), role);
    }
    for (prior, implied) in [
        ("admin", "manager"),
        ("manager", "member"),
        ("member", "reader"),
    ] {
        if let (Some(p), Some(i)) = (roles.get(prior), roles.get(implied)) {
            ignore_conflict(services.assignment.create_implied_role(p, i, &[]).await)?;
        }
    }

    let by_name = UserRef::Name {
        name: o.username.clone(),
        domain_id: Some(domain_id.clone()),
        domain_name: None,
    };
    let user = match services.identity.find_user(&by_name).await? {
        Some(u) => {
            let ok = services
                .identity
                .authenticate_password(&UserRef::Id(u.id.clone()), &o.password)
                .await
                .is_ok();
            if !ok {
                if !u.enabled {
                    let mut enabled = u.clone();
                    enabled.enabled = true;
                    services.identity.update_user(&enabled).await?;
                }
                services.identity.set_password(&u.id, &o.password).await?;
                report.updated.push(format!("password of user {}", u.name));
            }
            u
        }
        None => {
            let u = services
                .identity
                .create_user(
                    User {
                        id: new_id(),
                        name: o.username.clone(),
                        domain_id: domain_id.clone(),
                        enabled: true,
                        default_project_id: None,
                        extra: Default::default(),
                        password_hash: None,
                        password_expires_at: None,
                        created_at: 0,
                        options: Default::default(),
                        login: Default::default(),
                    },
                    Some(&o.password),
                )
                .await?;
            report.created.push(format!("user {}", u.name));
            u
        }
    };
    report.user_id = user.id.clone();

    if let Some(admin_role) = roles.get(&o.role_name) {
        for (target, target_id) in [
            (TargetKind::Project, project_id.clone()),
            (TargetKind::System, SYSTEM_TARGET.to_string()),
        ] {
            services
                .assignment
                .create_grant(&Assignment {
                    actor: ActorKind::User,
                    actor_id: user.id.clone(),
                    target,
                    target_id,
                    role_id: admin_role.id.clone(),
                    inherited: false,
                })
                .await?;
        }
    }

    if let Some(region) = &o.region_id {
        match services.catalog.get_region(region).await {
            Ok(_) => {}
            Err(Error::NotFound(_)) => {
                services
                    .catalog
                    .create_region(Region {
                        id: region.clone(),
                        description: String::new(),
                        parent_region_id: None,
                        extra: Default::default(),
                    })
                    .await?;
                report.created.push(format!("region {region}"));
            }
            Err(e) => return Err(e),
        }
    }
    let existing = services
        .catalog
        .list_services(Some("identity"), Some(&o.service_name))
        .await?;
    let service = match existing.into_iter().next() {
        Some(s) => s,
        None => {
            let s = services
                .catalog
                .create_service(Service {
                    id: new_id(),
                    service_type: "identity".into(),
                    name: o.service_name.clone(),
                    description: String::new(),
                    enabled: true,
                    extra: Default::default(),
                })
                .await?;
            report.created.push(format!("service {}", s.name));
            s
        }
    };
    let endpoints = services
        .catalog
        .list_endpoints(&EndpointFilters {
            service_id: Some(service.id.clone()),
            ..Default::default()
        })
        .await?;
    for (interface, url) in [
        ("admin", &o.admin_url),
        ("public", &o.public_url),
        ("internal", &o.internal_url),
    ] {
        let Some(url) = url else { continue };
        let existing = endpoints
            .iter()
            .find(|e| e.interface == interface && e.region_id == o.region_id);
        match existing {
            Some(e) if &e.url == url => {}
            Some(e) => {
                let patch = EndpointPatch {
                    url: Some(url.clone()),
                    ..Default::default()
                };
                services.catalog.update_endpoint(&e.id, patch).await?;
                report.updated.push(format!("{interface} endpoint url"));
            }
            None => {
                let endpoint = Endpoint {
                    id: new_id(),
                    service_id: service.id.clone(),
                    interface: interface.into(),
                    url: url.clone(),
                    region_id: o.region_id.clone(),
                    enabled: true,
                    extra: Default::default(),
                };
                services.catalog.create_endpoint(endpoint, None).await?;
                report.created.push(format!("{interface} endpoint"));
            }
        }
    }
    Ok(report)
}
