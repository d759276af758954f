//! Unified limits (Keystone's `unified_limit_api`): registered limits, project and
//! domain limits, and the enforcement model that checks limits against the project
//! hierarchy. Quota enforcement itself happens in the services, through oslo.limit.

use crate::auth::missing;
use crate::config::EnforcementModel;
use crate::error::{Error, Result};
use crate::model::{
    Limit, LimitFilter, PageRequest, ProjectFilter, RegisteredLimit, RegisteredLimitPatch,
};
use crate::store::{RegisteredLimitWrite, Store, StoreError};

#[derive(Clone, Debug)]
pub struct LimitService {
    store: Store,
    model: EnforcementModel,
}

/// `GET /v3/limits/model`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    pub name: &'static str,
    pub description: &'static str,
}

impl EnforcementModel {
    pub fn info(self) -> ModelInfo {
        match self {
            EnforcementModel::Flat => ModelInfo {
                name: "flat",
                description: "Limit enforcement and validation does not take project hierarchy into consideration.",
            },
            EnforcementModel::StrictTwoLevel => ModelInfo {
                name: "strict_two_level",
                description: "This model requires project hierarchy never exceeds a depth of two",
            },
        }
    }

    /// The deepest project a model allows, domains not counted (Keystone's
    /// `MAX_PROJECT_TREE_DEPTH` less the domain level).
    pub fn max_project_depth(self) -> Option<usize> {
        match self {
            EnforcementModel::Flat => None,
            EnforcementModel::StrictTwoLevel => Some(2),
        }
    }
}

fn registered_not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find registered limit for {id}."))
}

fn limit_not_found(id: &str) -> Error {
    Error::not_found(format!("Could not find limit for {id}."))
}

fn duplicate(what: &str) -> impl FnOnce(StoreError) -> Error + '_ {
    move |e| match e {
        StoreError::Conflict { .. } => Error::Conflict {
            what: format!("{what} - Duplicate entry."),
        },
        other => other.into(),
    }
}

fn in_use(id: &str) -> Error {
    Error::validation_forbidden(format!(
        "Unable to update or delete registered limit {id} because there are project limits associated with it."
    ))
}

/// Python's `str()` of an optional id, as Keystone's messages print it.
fn py(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("None")
}

impl LimitService {
    pub fn new(store: Store, model: EnforcementModel) -> Self {
        LimitService { store, model }
    }

    pub fn model(&self) -> ModelInfo {
        self.model.info()
    }

    /// `_assert_resource_exist`: each referenced entity must exist (400 naming the
    /// attribute). A `project_id` that names a domain makes a domain limit.
    async fn assert_exist(
        &self,
        service_id: Option<&str>,
        region_id: Option<&str>,
        target: &str,
    ) -> Result<()> {
        if let Some(s) = service_id {
            if self.store.get_service(s).await?.is_none() {
                return Err(Error::validation(missing("service_id", target)));
            }
        }
        if let Some(r) = region_id {
            if self.store.get_region(r).await?.is_none() {
                return Err(Error::validation(missing("region_id", target)));
            }
        }
        Ok(())
    }

    async fn assert_owner_exists(&self, limit: &mut Limit) -> Result<()> {
        if let Some(p) = limit.project_id.clone() {
            if self.store.get_project(&p).await?.is_none() {
                if self.store.get_domain(&p).await?.is_some() {
                    limit.project_id = None;
                    limit.domain_id = Some(p);
                } else {
                    return Err(Error::validation(missing("project_id", "limit")));
                }
            }
        }
        if let Some(d) = &limit.domain_id {
            if self.store.get_domain(d).await?.is_none() {
                return Err(Error::validation(missing("domain_id", "limit")));
            }
        }
        Ok(())
    }

    pub async fn create_registered_limits(
        &self,
        new: Vec<RegisteredLimit>,
    ) -> Result<Vec<RegisteredLimit>> {
        for r in &new {
            self.assert_exist(
                Some(&r.service_id),
                r.region_id.as_deref(),
                "registered_limit",
            )
            .await?;
        }
        self.store
            .insert_registered_limits(&new)
            .await
            .map_err(duplicate("registered_limit"))?;
        Ok(new)
    }

    pub async fn list_registered_limits(
        &self,
        filter: &LimitFilter,
    ) -> Result<Vec<RegisteredLimit>> {
        Ok(self.store.list_registered_limits(filter).await?)
    }

    pub async fn get_registered_limit(&self, id: &str) -> Result<RegisteredLimit> {
        self.store
            .get_registered_limit(id)
            .await?
            .ok_or_else(|| registered_not_found(id))
    }

    pub async fn update_registered_limit(
        &self,
        id: &str,
        patch: RegisteredLimitPatch,
    ) -> Result<RegisteredLimit> {
        self.assert_exist(
            patch.service_id.as_deref(),
            patch.region_id.as_ref().and_then(|r| r.as_deref()),
            "registered_limit",
        )
        .await?;
        match self
            .store
            .update_registered_limit(id, &patch)
            .await
            .map_err(duplicate("registered_limit"))?
        {
            RegisteredLimitWrite::Done(r) => Ok(r),
            RegisteredLimitWrite::NotFound => Err(registered_not_found(id)),
            RegisteredLimitWrite::Referenced => Err(in_use(id)),
        }
    }

    pub async fn delete_registered_limit(&self, id: &str) -> Result<()> {
        match self.store.delete_registered_limit(id).await? {
            RegisteredLimitWrite::Done(_) => Ok(()),
            RegisteredLimitWrite::NotFound => Err(registered_not_found(id)),
            RegisteredLimitWrite::Referenced => Err(in_use(id)),
        }
    }

    /// All or nothing: every limit is checked, then all are written in one
    /// transaction.
    pub async fn create_limits(&self, mut new: Vec<Limit>) -> Result<Vec<Limit>> {
        for l in new.iter_mut() {
            self.assert_exist(Some(&l.service_id), l.region_id.as_deref(), "limit")
                .await?;
            self.assert_owner_exists(l).await?;
        }
        self.check_model(&new).await?;
        self.store
            .insert_limits(&new)
            .await
            .map_err(duplicate("limit"))?
            .ok_or_else(|| {
                Error::validation_forbidden(
                    "Unable to create a limit that has no corresponding registered limit.",
                )
            })
    }

    pub async fn list_limits(&self, filter: &LimitFilter) -> Result<Vec<Limit>> {
        Ok(self.store.list_limits(filter).await?)
    }

    /// What a domain-scoped caller may list: the domain's limits and its projects'.
    pub async fn list_limits_in_domain(
        &self,
        filter: &LimitFilter,
        domain_id: &str,
    ) -> Result<Vec<Limit>> {
        let projects = self.project_ids_in(domain_id).await?;
        Ok(self
            .store
            .list_limits(filter)
            .await?
            .into_iter()
            .filter(|l| match (&l.project_id, &l.domain_id) {
                (Some(p), _) => projects.contains(p),
                (None, Some(d)) => d == domain_id,
                (None, None) => false,
            })
            .collect())
    }

    async fn project_ids_in(&self, domain_id: &str) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .store
            .list_projects_filtered(
                &ProjectFilter {
                    domain_id: Some(domain_id.to_string()),
                    ..ProjectFilter::default()
                },
                &PageRequest::default(),
            )
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect())
    }

    pub async fn find_limit(&self, id: &str) -> Result<Option<Limit>> {
        Ok(self.store.get_limit(id).await?)
    }

    pub async fn get_limit(&self, id: &str) -> Result<Limit> {
        self.find_limit(id)
            .await?
            .ok_or_else(|| limit_not_found(id))
    }

    pub async fn update_limit(
        &self,
        id: &str,
        resource_limit: Option<i64>,
        description: Option<Option<String>>,
    ) -> Result<Limit> {
        let mut current = self.get_limit(id).await?;
        if let Some(v) = resource_limit {
            current.resource_limit = v;
        }
        self.check_model(std::slice::from_ref(&current)).await?;
        self.store
            .update_limit(id, resource_limit, description)
            .await?
            .ok_or_else(|| limit_not_found(id))
    }

    pub async fn delete_limit(&self, id: &str) -> Result<()> {
        if self.store.delete_limit(id).await? {
            Ok(())
        } else {
            Err(limit_not_found(id))
        }
    }

    /// The enforcement model's `check_limit` over a batch.
    async fn check_model(&self, limits: &[Limit]) -> Result<()> {
        if self.model == EnforcementModel::Flat {
            return Ok(());
        }
        for l in limits {
            if !self.strict_two_level_holds(l, limits).await? {
                let (level, id) = match &l.project_id {
                    Some(p) => ("project_id", p.as_str()),
                    None => ("domain_id", py(&l.domain_id)),
                };
                tracing::info!(
                    limit = %l.id,
                    "limit refused by the strict_two_level enforcement model"
                );
                return Err(Error::validation_forbidden(format!(
                    "Invalid resource limit: The resource limit ({level}: {id}, resource_name: {}, resource_limit: {}, service_id: {}, region_id: {}) doesn't satisfy current hierarchy model..",
                    l.resource_name,
                    l.resource_limit,
                    l.service_id,
                    py(&l.region_id)
                )));
            }
        }
        Ok(())
    }

    /// `StrictTwoLevelModel.check_limit` for one limit of a batch: a project's limit
    /// may not exceed its parent's (a limit for the parent in the same batch, else the
    /// parent domain's stored limit, else the registered default); a domain's limit may
    /// not be below any of its projects' limits. A zero parent value, as in Keystone,
    /// does not cap.
    async fn strict_two_level_holds(&self, l: &Limit, batch: &[Limit]) -> Result<bool> {
        let same = |x: &Limit| {
            x.service_id == l.service_id
                && x.region_id == l.region_id
                && x.resource_name == l.resource_name
        };
        let of_resource = || LimitFilter {
            service_id: Some(l.service_id.clone()),
            region_id: Some(l.region_id.clone()),
            resource_name: Some(l.resource_name.clone()),
            ..LimitFilter::default()
        };
        if let Some(project_id) = &l.project_id {
            let project = self
                .store
                .get_project(project_id)
                .await?
                .ok_or_else(|| Error::validation(missing("project_id", "limit")))?;
            let parent = project.parent_id.unwrap_or(project.domain_id);
            if let Some(p) = batch
                .iter()
                .find(|x| x.domain_id.as_deref() == Some(parent.as_str()) && same(x))
            {
                return Ok(l.resource_limit <= p.resource_limit);
            }
            let stored = self
                .store
                .list_limits(&LimitFilter {
                    domain_id: Some(parent),
                    ..of_resource()
                })
                .await?;
            let cap = match stored.first() {
                Some(p) => Some(p.resource_limit),
                None => self
                    .store
                    .list_registered_limits(&of_resource())
                    .await?
                    .first()
                    .map(|r| r.default_limit),
            };
            return Ok(cap.is_none_or(|c| c == 0 || l.resource_limit <= c));
        }
        let Some(domain_id) = &l.domain_id else {
            return Ok(true);
        };
        let projects = self.project_ids_in(domain_id).await?;
        let children = self
            .store
            .list_limits(&of_resource())
            .await?
            .into_iter()
            .filter(|c| c.project_id.as_ref().is_some_and(|p| projects.contains(p)))
            .collect::<Vec<_>>();
        Ok(children
            .iter()
            .all(|c| c.resource_limit == 0 || l.resource_limit >= c.resource_limit))
    }
}
