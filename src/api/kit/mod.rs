//! The HTTP kit every resource family is built with: a route table (`router`), the
//! caller and `enforce` (`caller`), typed queries (`query`), bodies and attribute
//! checks (`input`), links and collections (`present`). A new family is a route
//! table plus thin handlers: caller -> enforce -> service -> present.

pub mod caller;
pub mod client;
pub mod input;
pub mod present;
pub mod query;
pub mod router;

pub use caller::{operator_view, Caller, Target};
pub use present::{
    collection, entity, json_response, no_content, page_links, Links, PageLinks, PageQuery,
};
pub use query::{Query, QueryPairs};
pub use router::{resource, Route, RouteInfo, Router};
