//! The entities and value types every layer shares: the store maps rows to them,
//! services apply Keystone's rules to them, the API renders them. No SQL, no HTTP.

mod application_credential;
mod assignment;
mod catalog;
mod credential;
mod domain_config;
mod identity;
mod import;
mod keys;
mod limit;
mod oauth1;
mod page;
mod policy;
mod resource;
mod revoke;
mod trust;

pub use application_credential::*;
pub use assignment::*;
pub use catalog::*;
pub use credential::*;
pub use domain_config::*;
pub use identity::*;
pub use import::*;
pub use keys::*;
pub use limit::*;
pub use oauth1::*;
pub use page::*;
pub use policy::*;
pub use resource::*;
pub use revoke::*;
pub use trust::*;

/// A new entity id: 32 lower-case hex digits, as Keystone's `uuid.uuid4().hex`.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
