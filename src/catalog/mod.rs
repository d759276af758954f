//! The service catalog in Keystone's token format.

use serde::Serialize;

use crate::error::Result;
use crate::store::Store;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CatalogEndpoint {
    pub id: String,
    pub interface: String,
    pub region_id: Option<String>,
    pub url: String,
    pub region: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CatalogService {
    pub endpoints: Vec<CatalogEndpoint>,
    pub id: String,
    #[serde(rename = "type")]
    pub service_type: String,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct CatalogProvider {
    store: Store,
}

impl CatalogProvider {
    pub fn new(store: Store) -> Self {
        CatalogProvider { store }
    }

    /// Enabled services with their enabled endpoints. `$(project_id)s`-style
    /// substitutions in URLs are filled from the token's project, as Keystone does;
    /// an endpoint whose URL needs a value the token lacks is left out.
    pub async fn catalog(
        &self,
        project_id: Option<&str>,
        user_id: &str,
    ) -> Result<Vec<CatalogService>> {
        let services = self.store.list_services().await?;
        let endpoints = self.store.list_endpoints().await?;
        let mut out = Vec::new();
        for s in services.into_iter().filter(|s| s.enabled) {
            let eps: Vec<CatalogEndpoint> = endpoints
                .iter()
                .filter(|e| e.enabled && e.service_id == s.id)
                .filter_map(|e| {
                    substitute(&e.url, project_id, user_id).map(|url| CatalogEndpoint {
                        id: e.id.clone(),
                        interface: e.interface.clone(),
                        region_id: e.region_id.clone(),
                        url,
                        region: e.region_id.clone(),
                    })
                })
                .collect();
            out.push(CatalogService {
                endpoints: eps,
                id: s.id,
                service_type: s.service_type,
                name: s.name,
            });
        }
        Ok(out)
    }
}

/// Keystone's endpoint URL templating: `$(project_id)s`, `$(tenant_id)s`, `$(user_id)s`.
fn substitute(url: &str, project_id: Option<&str>, user_id: &str) -> Option<String> {
    let mut out = url.to_string();
    for key in ["project_id", "tenant_id"] {
        let pattern = format!("$({key})s");
        if out.contains(&pattern) {
            out = out.replace(&pattern, project_id?);
        }
    }
    out = out.replace("$(user_id)s", user_id);
    if out.contains("$(") {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::substitute;

    #[test]
    fn templated_urls() {
        assert_eq!(
            substitute("http://c/v2.1/$(project_id)s", Some("p1"), "u").as_deref(),
            Some("http://c/v2.1/p1")
        );
        assert_eq!(substitute("http://c/$(tenant_id)s", None, "u"), None);
        assert_eq!(substitute("http://c/$(unknown)s", Some("p"), "u"), None);
        assert_eq!(
            substitute("http://c/v3", None, "u").as_deref(),
            Some("http://c/v3")
        );
    }
}
