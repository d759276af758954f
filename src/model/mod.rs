//! The entities and value types every layer shares: the store maps rows to them,
//! services apply Keystone's rules to them, the API renders them. No SQL, no HTTP.

mod assignment;
mod catalog;
mod identity;
mod resource;
mod revoke;

pub use assignment::*;
pub use catalog::*;
pub use identity::*;
pub use resource::*;
pub use revoke::*;
