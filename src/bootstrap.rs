//! `keystone-rs bootstrap`: the effects of `keystone-manage bootstrap`, idempotent.
//!
//! Creates the default domain, the admin project and user, the roles
//! admin -> manager -> member -> reader (implied chain) plus `service`, grants the
//! admin role on the project and on the system, and registers the identity service
//! with its endpoints. Running it again changes nothing except a changed password
//! or endpoint URL, which it updates (as Keystone does).

use crate::api::AppState;
use crate::error::Result;
use crate::store::{
    ActorKind, Assignment, Domain, Endpoint, Project, Region, Role, Service, TargetKind, User,
    SYSTEM_TARGET,
};

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

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub async fn bootstrap(state: &AppState, o: &BootstrapOptions) -> Result<BootstrapReport> {
    let store = &state.store;
    let mut report = BootstrapReport::default();
    let domain_id = state.settings.identity.default_domain_id.clone();
    if store.get_domain(&domain_id).await?.is_none() {
        store
            .create_domain(&Domain {
                id: domain_id.clone(),
                name: "Default".into(),
                description: "The default domain".into(),
                enabled: true,
                extra: Default::default(),
            })
            .await?;
        report.created.push(format!("domain {domain_id}"));
    }
    let project = match store
        .get_project_by_name(&domain_id, &o.project_name)
        .await?
    {
        Some(p) => p,
        None => {
            let p = Project {
                id: new_id(),
                name: o.project_name.clone(),
                domain_id: domain_id.clone(),
                parent_id: None,
                description: "Bootstrap project for initializing the cloud.".into(),
                enabled: true,
                extra: Default::default(),
            };
            store.create_project(&p).await?;
            report.created.push(format!("project {}", p.name));
            p
        }
    };
    report.project_id = project.id.clone();

    let mut role_ids = std::collections::HashMap::new();
    let mut names = vec!["admin", "manager", "member", "reader", "service"];
    if !names.contains(&o.role_name.as_str()) {
        names.push(o.role_name.as_str());
    }
    for name in names {
        let role = match store.get_global_role_by_name(name).await? {
            Some(r) => r,
            None => {
                let r = Role {
                    id: new_id(),
                    name: name.to_string(),
                    domain_id: None,
                    description: String::new(),
                    extra: Default::default(),
                };
                store.create_role(&r).await?;
                report.created.push(format!("role {name}"));
                r
            }
        };
        role_ids.insert(name.to_string(), role.id);
    }
    for (prior, implied) in [
        ("admin", "manager"),
        ("manager", "member"),
        ("member", "reader"),
    ] {
        if let (Some(p), Some(i)) = (role_ids.get(prior), role_ids.get(implied)) {
            store.create_implied_role(p, i).await?;
        }
    }

    let user = match store.get_user_by_name(&domain_id, &o.username).await? {
        Some(u) => {
            let ok = state
                .identity
                .authenticate_password(&crate::identity::UserRef::Id(u.id.clone()), &o.password)
                .await
                .is_ok();
            if !ok {
                if !u.enabled {
                    let mut enabled = u.clone();
                    enabled.enabled = true;
                    state.identity.update_user(&enabled).await?;
                }
                state.identity.set_password(&u.id, &o.password).await?;
                report.updated.push(format!("password of user {}", u.name));
            }
            u
        }
        None => {
            let u = state
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
                    },
                    Some(&o.password),
                )
                .await?;
            report.created.push(format!("user {}", u.name));
            u
        }
    };
    report.user_id = user.id.clone();

    if let Some(admin_role) = role_ids.get(&o.role_name) {
        for (target, target_id) in [
            (TargetKind::Project, project.id.clone()),
            (TargetKind::System, SYSTEM_TARGET.to_string()),
        ] {
            store
                .add_assignment(&Assignment {
                    actor: ActorKind::User,
                    actor_id: user.id.clone(),
                    target,
                    target_id,
                    role_id: admin_role.clone(),
                    inherited: false,
                })
                .await?;
        }
    }

    if let Some(region) = &o.region_id {
        if store.get_region(region).await?.is_none() {
            store
                .create_region(&Region {
                    id: region.clone(),
                    description: String::new(),
                    parent_region_id: None,
                    extra: Default::default(),
                })
                .await?;
            report.created.push(format!("region {region}"));
        }
    }
    let services = store.list_services().await?;
    let service = match services
        .into_iter()
        .find(|s| s.service_type == "identity" && s.name == o.service_name)
    {
        Some(s) => s,
        None => {
            let s = Service {
                id: new_id(),
                service_type: "identity".into(),
                name: o.service_name.clone(),
                description: String::new(),
                enabled: true,
                extra: Default::default(),
            };
            store.create_service(&s).await?;
            report.created.push(format!("service {}", s.name));
            s
        }
    };
    let endpoints = store.list_endpoints().await?;
    for (interface, url) in [
        ("admin", &o.admin_url),
        ("public", &o.public_url),
        ("internal", &o.internal_url),
    ] {
        let Some(url) = url else { continue };
        let existing = endpoints.iter().find(|e| {
            e.service_id == service.id && e.interface == interface && e.region_id == o.region_id
        });
        match existing {
            Some(e) if &e.url == url => {}
            Some(e) => {
                store.update_endpoint_url(&e.id, url).await?;
                report.updated.push(format!("{interface} endpoint url"));
            }
            None => {
                store
                    .create_endpoint(&Endpoint {
                        id: new_id(),
                        service_id: service.id.clone(),
                        interface: interface.into(),
                        url: url.clone(),
                        region_id: o.region_id.clone(),
                        enabled: true,
                        extra: Default::default(),
                    })
                    .await?;
                report.created.push(format!("{interface} endpoint"));
            }
        }
    }
    Ok(report)
}
