//! Roles and role assignments.

/// Keystone's target id for system assignments.
pub const SYSTEM_TARGET: &str = "all";

#[derive(Clone, Debug, PartialEq)]
pub struct Role {
    pub id: String,
    pub name: String,
    /// None for global roles.
    pub domain_id: Option<String>,
    pub description: String,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What an assignment grants a role on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Project,
    Domain,
    System,
}

/// Who holds an assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActorKind {
    User,
    Group,
}

/// Which assignment rows to read; `None` means "any". Keystone's driver-level
/// `list_role_assignments` filters, over the one table that also holds system grants.
#[derive(Clone, Debug, Default)]
pub struct AssignmentFilter {
    pub role_id: Option<String>,
    pub actor: Option<ActorKind>,
    pub actor_ids: Option<Vec<String>>,
    pub targets: Option<Vec<TargetKind>>,
    pub target_ids: Option<Vec<String>>,
    pub inherited: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub actor: ActorKind,
    pub actor_id: String,
    pub target: TargetKind,
    pub target_id: String,
    pub role_id: String,
    pub inherited: bool,
}
